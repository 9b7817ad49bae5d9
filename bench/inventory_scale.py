#!/usr/bin/python3
"""Inventory of 100 ... 10,000 certificates through WinRM against winhost-sim: how wall time, bytes on the wire,
agent CPU time and agent peak memory grow with the store. One agent-side process per size (peak RSS per size).

usage: inventory_scale.py BUILD_DIR [OUT.md] [--sizes 100,1000,3000,10000] [--mode inventory|streamed|dom]

--mode inventory (default): CertStore::inventory(), the whole inventory held; streamed: CertStore::read_inventory()
drained one certificate at a time, none kept (how the jobs layer reads it since issue 14); dom: the path before
issue 14 (one JSON tree of the whole script output, then every entry).
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
p.add_argument("out", nargs="?")
p.add_argument("--sizes", default="100,1000,3000,10000")
p.add_argument("--repeat", type=int, default=3, help="runs per size; the median run is reported")
p.add_argument("--mode", choices=["inventory", "streamed", "dom"], default="inventory",
               help="what the agent side calls (see above)")
a = p.parse_args()

bench = os.path.join(a.build_dir, "bench", "wincert_bench_inventory_scale")
sim = os.path.join(a.build_dir, "sim", "winhost", "winhost-sim")
sizes = [int(s) for s in a.sizes.split(",")]
rows = []
with tempfile.TemporaryDirectory() as tmp:
    users = os.path.join(tmp, "users")
    with open(users, "w") as f:
        f.write("bench:Bench-Passw0rd\n")
    env = dict(os.environ, BENCH_PASSWORD="Bench-Passw0rd")
    for n in sizes:
        model = os.path.join(tmp, f"model-{n}.json")
        subprocess.run([bench, "generate", "--count", str(n), "--out", model], check=True)
        port_file = os.path.join(tmp, f"port-{n}")
        proc = subprocess.Popen([sim, "--listen", "127.0.0.1:0", "--port-file", port_file, "--users", users,
                                 "--allow-unencrypted", "--model", model, "--log-level", "warn",
                                 "--ps-start-ms", str(a.ps_start_ms)],
                                stdout=subprocess.DEVNULL)
        try:
            deadline = time.time() + 60
            while not (os.path.exists(port_file) and open(port_file).read().endswith("\n")):
                if time.time() > deadline or proc.poll() is not None:
                    raise SystemExit("winhost-sim did not start")
                time.sleep(0.05)
            url = f"http://127.0.0.1:{open(port_file).read().strip()}/wsman"
            runs = []
            for _ in range(a.repeat):
                out = subprocess.run([bench, "inventory", "--endpoint", url, "--user", "bench",
                                      "--password-env", "BENCH_PASSWORD", "--mode", a.mode],
                                     env=env, check=True, capture_output=True, text=True).stdout
                runs.append(json.loads(out))
            runs.sort(key=lambda r: r["wall_ms"])
            r = runs[len(runs) // 2]
            assert r["certificates"] == n and r["problems"] == 0, r
            rows.append(r)
            print(json.dumps(r), flush=True)
        finally:
            proc.terminate()
            proc.wait()

base = rows[0]
lines = [
    "# Inventory of one store through WinRM against winhost-sim, 100 to 10,000 certificates",
    "",
    f"`bench/inventory_scale.py` on {time.strftime('%Y-%m-%d')}, 2-core shared machine, RelWithDebInfo, HTTP + Basic on",
    "loopback, default MaxEnvelopeSize (500 KB). Agent side only (winhost-sim is another process); median of "
    f"{a.repeat} runs per size.",
    "Peak RSS is the agent process's maximum resident set (its baseline before the inventory is in the last column).",
    {"inventory": "Read with `inventory()` (`--mode inventory`): the whole inventory held.",
     "streamed": "Read with `read_inventory()` (`--mode streamed`): one certificate at a time, none kept.",
     "dom": "Read as before issue 14 (`--mode dom`): one JSON tree of the whole output, then every entry."}[a.mode],
    "",
    "| certificates | wall ms | agent CPU ms | CPU µs / cert | bytes received | bytes / cert | HTTP requests | peak RSS MB | RSS growth MB | baseline RSS MB |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]
for r in rows:
    n = r["certificates"]
    lines.append(
        f"| {n:,} | {r['wall_ms']:.0f} | {r['cpu_ms']:.0f} | {1000 * r['cpu_ms'] / n:.0f} | {r['bytes_received']:,} | "
        f"{r['bytes_received'] / n:.0f} | {r['http_requests']} | {r['peak_rss_kb'] / 1024:.1f} | "
        f"{(r['peak_rss_kb'] - r['rss_before_kb']) / 1024:.1f} | {r['rss_before_kb'] / 1024:.1f} |")
last = rows[-1]
k = last["certificates"] / base["certificates"]
lines += [
    "",
    f"From {base['certificates']:,} to {last['certificates']:,} certificates ({k:.0f}x): wall x{last['wall_ms'] / base['wall_ms']:.1f}, "
    f"agent CPU x{last['cpu_ms'] / max(base['cpu_ms'], 0.001):.1f}, bytes x{last['bytes_received'] / base['bytes_received']:.1f}, "
    f"RSS growth {(base['peak_rss_kb'] - base['rss_before_kb']) / 1024:.1f} -> {(last['peak_rss_kb'] - last['rss_before_kb']) / 1024:.1f} MB.",
]
text = "\n".join(lines) + "\n"
print(text)
if a.out:
    with open(a.out, "w") as f:
        f.write(text)
