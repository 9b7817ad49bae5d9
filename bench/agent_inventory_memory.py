#!/usr/bin/python3
"""Agent memory for one large inventory job, end to end (issue 14: memory per job in kilobytes; inventories
stream into the outbox in parts of bounded size).

For each store size: command-sim + winhost-sim (one host whose My store holds N generated certificates) + a
`wincert-agent run` started idle (registered, approved); then one immediate WinCert inventory job. Reads the
agent's VmHWM (peak resident set) before the job and after Command recorded it: the growth is what the job cost.
Also reports the inventory POSTs Command received (the parts) and the job's time.

usage: agent_inventory_memory.py BUILD_DIR [--sizes 1000,10000] [--part-kb 256,10240] [--agent BINARY]
                                 [--execution-mode psrp] [--out FILE.md]
  --part-kb: InventoryPartSizeKb values to compare ("default" = leave it out of the configuration: for an
             agent older than the setting, given with --agent).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
from stack import Binaries, Stack, wait_until  # noqa: E402

END_LINE = re.compile(r"\[agent\] job \S+ end: (\w+) in (\d+) ms")


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def run_one(bins, model, certs, part_kb, a):
    config = {"LogLevel": "info", "HeartbeatIntervalSeconds": 2,
              "WinRM": {"ExecutionMode": a.execution_mode, "CommandTimeoutSeconds": 300}}
    if part_kb != "default":
        config["InventoryPartSizeKb"] = int(part_kb)
    with Stack(bins, hosts=1, model=model, agent_config=config) as st:
        st.start()
        pid = st.agent.process.pid
        store = st.create_store("WinCert", store_path="My")
        time.sleep(a.settle)
        before_hwm, before_rss = status_kb(pid, "VmHWM"), status_kb(pid, "VmRSS")
        st.admin.reset_counters()
        t0 = time.monotonic()
        st.schedule("Inventory", store)
        wait_until(lambda: st.admin.counters().get("CompletionsRecorded", 0) >= 1, 300, 0.05,
                   "the inventory job to be recorded")
        seconds = time.monotonic() - t0
        after_hwm = status_kb(pid, "VmHWM")
        requests = st.admin.counters().get("Requests", {})
        posts = sum(v for k, v in requests.items()
                    if "inventory" in k.lower() and not any(w in k.lower() for w in ("configuration", "complete")))
        history = st.admin.history()
        result = history[-1]["Result"] if history else "?"
        inventory = st.admin.inventory(store["Id"])
        recorded = len(inventory.get("Items", []))
        ends = END_LINE.findall(st.agent.log())
        job_ms = int(ends[-1][1]) if ends else -1
    return {"certs": certs, "part_kb": part_kb, "before_hwm_kb": before_hwm, "before_rss_kb": before_rss,
            "after_hwm_kb": after_hwm, "growth_kb": after_hwm - before_hwm, "seconds": seconds,
            "inventory_posts": posts, "result": result, "recorded_items": recorded, "job_ms": job_ms}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("build_dir")
    p.add_argument("--agent", help="agent binary (default: BUILD_DIR/agent/wincert-agent)")
    p.add_argument("--sizes", default="1000,10000")
    p.add_argument("--part-kb", default="256,10240")
    p.add_argument("--execution-mode", default="psrp", choices=["psrp", "winrs"])
    p.add_argument("--settle", type=float, default=3.0, help="seconds idle before the job (baseline)")
    p.add_argument("--label", default="", help="what this agent is, for the table")
    p.add_argument("--out")
    a = p.parse_args()

    b = os.path.abspath(a.build_dir)
    bins = Binaries(a.agent or os.path.join(b, "agent", "wincert-agent"),
                    os.path.join(b, "sim", "command", "command-sim"), os.path.join(b, "sim", "winhost", "winhost-sim"))
    generator = os.path.join(b, "bench", "wincert_bench_inventory_scale")
    rows = []
    with tempfile.TemporaryDirectory(prefix="wincert-invmem-") as work:
        for certs in [int(x) for x in a.sizes.split(",")]:
            model = os.path.join(work, f"model-{certs}.json")
            subprocess.run([generator, "generate", "--count", str(certs), "--out", model], check=True,
                           stdout=subprocess.DEVNULL)
            for part_kb in a.part_kb.split(","):
                row = run_one(bins, model, certs, part_kb, a)
                print(row, flush=True)
                rows.append(row)

    mb = lambda kb: f"{kb / 1024:.1f}"  # noqa: E731
    lines = ["| agent | certificates | InventoryPartSizeKb | job result | items Command recorded | inventory POSTs | "
             "job run ms (agent) | VmHWM before MB | VmHWM after MB | growth MB | growth KB / 1,000 certs |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {a.label or 'this build'} | {r['certs']:,} | {r['part_kb']} | {r['result']} | "
                     f"{r['recorded_items']:,} | {r['inventory_posts']} | {r['job_ms']} | {mb(r['before_hwm_kb'])} | "
                     f"{mb(r['after_hwm_kb'])} | {mb(r['growth_kb'])} | {r['growth_kb'] * 1000 // r['certs']:,} |")
    command = " ".join(["bench/agent_inventory_memory.py", os.path.relpath(b, REPO)] + sys.argv[2:])
    text = "\n".join(["```", command, "```", ""] + lines)
    print(text)
    if a.out:
        with open(a.out, "a") as f:
            f.write(text + "\n\n")


if __name__ == "__main__":
    main()
