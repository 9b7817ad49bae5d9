#!/usr/bin/python3
"""Side-by-side: `wincert-agent winrm ps --repeat N` versus python3-winrm at its best (one Protocol, one
shell reused) running the same small PowerShell script N times against one winhost-sim with injected latency.
Also counts HTTP exchanges per invocation, cold (new connection and shell) and warm, from the sim's counters.

Usage: winrm_vs_pywinrm.py BUILD_DIR [--runs 20] [--latency-ms 20] [--out bench/results/winrm_vs_pywinrm.md]
Reported, not asserted: the numbers go to the results file and stdout."""
import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time

import winrm

SCRIPT = "# wincert-op: host-info\n$ErrorActionPreference = 'Stop'\n"


def start_sim(sim, work, latency_ms, ps_start_ms=0):
    port_file = os.path.join(work, f"port-{latency_ms}")
    status_file = os.path.join(work, f"status-{latency_ms}.json")
    for stale in (port_file, status_file):
        if os.path.exists(stale):
            os.remove(stale)
    users = os.path.join(work, "users")
    with open(users, "w") as f:
        f.write("bench:bench-password\n")
    proc = subprocess.Popen([sim, "--listen", "127.0.0.1:0", "--port-file", port_file, "--users", users,
                             "--allow-unencrypted", "--latency-ms", str(latency_ms), "--status-file", status_file,
                             "--ps-start-ms", str(ps_start_ms)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if os.path.exists(port_file) and open(port_file).read().strip():
            break
        time.sleep(0.05)
    return proc, int(open(port_file).read().strip()), status_file


def requests_seen(status_file):
    with open(status_file) as f:
        status = json.load(f)
    return status["requests"]["total"] if isinstance(status["requests"], dict) else status["requests"]


def run_pywinrm(endpoint, runs):
    proto = winrm.Protocol(endpoint, transport="plaintext", username="bench", password="bench-password",
                           operation_timeout_sec=20, read_timeout_sec=30)
    encoded = base64.b64encode(SCRIPT.encode("utf-16-le")).decode()
    start = time.perf_counter()
    shell = proto.open_shell(codepage=65001)
    for _ in range(runs):
        cid = proto.run_command(shell, "powershell -NoProfile -NonInteractive -EncodedCommand " + encoded)
        out, err, rc = proto.get_command_output(shell, cid)
        proto.cleanup_command(shell, cid)
        assert rc == 0 and b"Hostname" in out, (rc, out, err)
    proto.close_shell(shell)
    return time.perf_counter() - start


def run_agent(agent, endpoint, script_path, runs):
    env = dict(os.environ, BENCH_PASSWORD="bench-password")
    cmd = [agent, "winrm", "ps", "--endpoint", endpoint, "--auth", "basic", "--user", "bench",
           "--password-env", "BENCH_PASSWORD", "--allow-unencrypted", "--script", script_path]
    if runs > 1:
        cmd += ["--repeat", str(runs)]
    start = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if res.returncode != 0 or "Hostname" not in res.stdout:
        sys.exit(f"wincert-agent failed ({res.returncode}): {res.stderr.strip()}")
    return elapsed, res.stderr.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--ps-start-ms", type=int, default=0,
                    help="winhost-sim's PowerShell start cost per powershell.exe/runspace (default 0: the recorded "
                         "figures in bench/results were measured without it)")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--latency-ms", type=int, default=20)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "winrm_vs_pywinrm.md"))
    a = ap.parse_args()
    sim = os.path.join(a.build_dir, "sim", "winhost", "winhost-sim")
    agent = os.path.join(a.build_dir, "agent", "wincert-agent")

    with tempfile.TemporaryDirectory() as work:
        script_path = os.path.join(work, "host-info.ps1")
        with open(script_path, "w") as f:
            f.write(SCRIPT)

        # Round trips per invocation, on a sim without latency.
        proc, port, status = start_sim(sim, work, 0, a.ps_start_ms)
        endpoint = f"http://127.0.0.1:{port}/wsman"
        try:
            before = requests_seen(status)
            _, summary1 = run_agent(agent, endpoint, script_path, 1)
            cold = requests_seen(status) - before
            before = requests_seen(status)
            _, summary2 = run_agent(agent, endpoint, script_path, 11)
            ten_more = requests_seen(status) - before
            warm = (ten_more - cold) / 10
        finally:
            proc.terminate(); proc.wait()

        proc, port, status = start_sim(sim, work, a.latency_ms, a.ps_start_ms)
        endpoint = f"http://127.0.0.1:{port}/wsman"
        try:
            py_time = run_pywinrm(endpoint, a.runs)
            agent_time, summary = run_agent(agent, endpoint, script_path, a.runs)
        finally:
            proc.terminate(); proc.wait()

    ratio = py_time / agent_time
    report = f"""# wincert-agent vs python3-winrm, same winhost-sim

Workload: {a.runs} runs of the same small PowerShell script (`# wincert-op: host-info`), winhost-sim with
`--latency-ms {a.latency_ms}` on loopback, Basic over HTTP (`--allow-unencrypted`).
pywinrm at its best: one `winrm.Protocol`, one shell opened once and reused, Command/Receive/Signal per run.
wincert-agent: `winrm ps --repeat {a.runs}` (one process, one connection, one shell; the time includes process start).

| client | wall time | per run |
| --- | --- | --- |
| python3-winrm 0.3 (Protocol, shell reused) | {py_time*1000:.0f} ms | {py_time*1000/a.runs:.1f} ms |
| wincert-agent winrm ps --repeat {a.runs} | {agent_time*1000:.0f} ms | {agent_time*1000/a.runs:.1f} ms |

Ratio (pywinrm / wincert-agent): **{ratio:.2f}x**

HTTP exchanges per `winrm ps` invocation (sim counters, no latency): cold (new connection, config Get, shell
Create, Command, Receive, Signal, Delete) = {cold}; warm (shell reused, inline script) = {warm:.1f} (target: at most 3).

Agent summary line: `{summary}`
"""
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(report)
    print(report)


if __name__ == "__main__":
    main()
