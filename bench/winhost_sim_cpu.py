#!/usr/bin/python3
"""winhost-sim's CPU per WinRM operation: one winhost-sim playing N hosts (--hosts N, a `My` store of C
certificates each, --status-file as tests/e2e/stack.py runs it), and one client process running M inventories
spread over every host at once (one WinRS shell per host kept open, as the agent keeps it). winhost-sim's CPU
(utime + stime from /proc/<pid>/stat) is read before and after the inventories, so start-up is not counted.

usage: winhost_sim_cpu.py BUILD_DIR [--hosts 200] [--certs 50] [--operations 2000] [--no-status-file]
                          [--sim PATH_TO_WINHOST_SIM]
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

p = argparse.ArgumentParser()
p.add_argument("build_dir")
p.add_argument("--ps-start-ms", type=int, default=0,
                help="winhost-sim's PowerShell start cost per powershell.exe/runspace (default 0: the recorded "
                     "figures in bench/results were measured without it)")
p.add_argument("--hosts", type=int, default=200)
p.add_argument("--certs", type=int, default=50)
p.add_argument("--operations", type=int, default=2000, help="inventories in all")
p.add_argument("--no-status-file", action="store_true", help="run winhost-sim without --status-file")
p.add_argument("--sim", help="the winhost-sim binary (default: BUILD_DIR/sim/winhost/winhost-sim)")
a = p.parse_args()

bench = os.path.join(a.build_dir, "bench", "wincert_bench_inventory_scale")
sim = a.sim or os.path.join(a.build_dir, "sim", "winhost", "winhost-sim")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


with tempfile.TemporaryDirectory() as tmp:
    users = os.path.join(tmp, "users")
    with open(users, "w") as f:
        f.write("bench:Bench-Passw0rd\n")
    env = dict(os.environ, BENCH_PASSWORD="Bench-Passw0rd")
    model = os.path.join(tmp, "model.json")
    subprocess.run([bench, "generate", "--count", str(a.certs), "--out", model], check=True)
    port_file = os.path.join(tmp, "ports")
    status_file = os.path.join(tmp, "status.json")
    args = [sim, "--listen", "127.0.0.1:0", "--port-file", port_file, "--users", users, "--allow-unencrypted",
            "--model", model, "--log-level", "warn", "--hosts", str(a.hosts), "--ps-start-ms", str(a.ps_start_ms)]
    if not a.no_status_file:
        args += ["--status-file", status_file]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not (os.path.exists(port_file) and open(port_file).read().count("\n") == a.hosts):
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit("winhost-sim did not start")
            time.sleep(0.05)
        time.sleep(0.2)
        cpu_before = cpu_s(proc.pid)
        out = subprocess.run([bench, "load", "--ports-file", port_file, "--user", "bench", "--password-env",
                              "BENCH_PASSWORD", "--operations", str(a.operations)], env=env, check=True,
                             capture_output=True, text=True).stdout
        cpu_after = cpu_s(proc.pid)
        load = json.loads(out)
    finally:
        proc.terminate()
        exit_line = proc.communicate(timeout=60)[0].strip().splitlines()
    # The counters (summed over the hosts) that winhost-sim prints on exit.
    status = json.loads(exit_line[-1]) if exit_line else {}

sim_ms = 1000 * (cpu_after - cpu_before)
ops = load["operations"]
requests = status.get("requests")
result = {
    "hosts": a.hosts, "certs": a.certs, "status_file": not a.no_status_file, "operations": ops,
    "failed": load["failed"], "wall_s": load["wall_ms"] / 1000, "sim_cpu_s": sim_ms / 1000,
    "sim_cpu_ms_per_operation": sim_ms / max(ops, 1), "wsman_requests": requests,
    "sim_cpu_us_per_request": 1000 * sim_ms / requests if requests else None,
    "operations_per_s_per_core": 1000 * ops / sim_ms if sim_ms > 0 else None,
}
print(json.dumps(result))
