#!/usr/bin/python3
"""Resident memory of an idle `wincert-agent run` (issue 14 target: <= 15 MB idle).

Starts command-sim, winhost-sim (--hosts H) and the agent from tests/e2e/stack.py, approves the agent, and
samples /proc/<pid>/status three times:
  1. idle after start-up: registered, approved session, no jobs (after --settle seconds);
  2. during a burst of J immediate inventory jobs per host (VmHWM);
  3. idle again, --settle seconds after the last result was recorded by command-sim (the memory a long-lived
     agent keeps after work: allocator caches, warm WinRM connections until their idle timeout).
Reports VmRSS (and its anonymous / file parts), VmHWM and threads at each point.

usage: agent_idle_rss.py BUILD_DIR [--hosts 20] [--jobs-per-host 5] [--settle 10] [--out FILE.md]
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
from stack import Binaries, Stack, wait_until  # noqa: E402


def proc_status(pid):
    """The memory and thread lines of /proc/<pid>/status, in kB (Threads as a count)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "Threads"):
                out[key] = int(value.split()[0])
    out["Pss"] = pss_kb(pid)
    return out


def pss_kb(pid):
    """Proportional set size: shared pages divided among the processes mapping them (smaps_rollup)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_by_mapping(pid, top=8):
    """The largest contributors to VmRSS, from /proc/<pid>/smaps: [(kB, file or [heap]/[anon])]."""
    totals, current = {}, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            fields = line.split()
            if "-" in fields[0] and not fields[0].endswith(":"):
                current = os.path.basename(fields[5]) if len(fields) > 5 else "[anonymous]"
            elif fields[0] == "Rss:":
                totals[current] = totals.get(current, 0) + int(fields[1])
    return sorted(((kb, name) for name, kb in totals.items()), reverse=True)[:top]


def row(label, status):
    mb = lambda kb: f"{kb / 1024:.1f}"  # noqa: E731
    return (f"| {label} | {mb(status['VmRSS'])} | {mb(status['RssAnon'])} | {mb(status['RssFile'])} | "
            f"{mb(status['Pss'])} | {mb(status['VmHWM'])} | {status['Threads']} |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("build_dir")
    p.add_argument("--ps-start-ms", type=int, default=0,
                    help="winhost-sim's PowerShell start cost per powershell.exe/runspace (default 0: the recorded "
                         "figures in bench/results were measured without it)")
    p.add_argument("--hosts", type=int, default=20)
    p.add_argument("--jobs-per-host", type=int, default=5)
    p.add_argument("--settle", type=float, default=10.0)
    p.add_argument("--out")
    a = p.parse_args()

    b = a.build_dir
    bins = Binaries(os.path.join(b, "agent", "wincert-agent"), os.path.join(b, "sim", "command", "command-sim"),
                    os.path.join(b, "sim", "winhost", "winhost-sim"))
    agent_config = {"LogLevel": "info", "HeartbeatIntervalSeconds": 5}
    rows = []
    with Stack(bins, hosts=a.hosts, agent_config=agent_config, ps_start_ms=a.ps_start_ms) as st:
        st.start()
        pid = st.agent.process.pid
        time.sleep(a.settle)
        rows.append(row(f"idle after start-up ({a.settle:.0f} s after approval)", proc_status(pid)))
        mappings = rss_by_mapping(pid)

        st.admin.reset_counters()
        stores = [st.create_store("WinCert", store_path="My", host=h) for h in range(a.hosts)]
        jobs = [st.schedule("Inventory", s)["JobId"] for _ in range(a.jobs_per_host) for s in stores]
        total = len(jobs)

        def all_recorded():
            return st.admin.counters().get("CompletionsRecorded", 0) >= total
        t0 = time.monotonic()
        wait_until(all_recorded, 300, 0.5, f"{total} jobs to be recorded")
        burst_s = time.monotonic() - t0
        rows.append(row(f"right after {total} inventory jobs on {a.hosts} hosts ({burst_s:.1f} s)", proc_status(pid)))
        time.sleep(a.settle)
        rows.append(row(f"idle again ({a.settle:.0f} s later)", proc_status(pid)))

    table = ["| agent state | VmRSS MB | anonymous MB | file-backed MB | PSS MB | VmHWM MB | threads |",
             "|---|---:|---:|---:|---:|---:|---:|"] + rows
    table += ["", "Largest parts of the idle RSS after start-up (/proc/<pid>/smaps):", "",
              "| mapping | RSS MB |", "|---|---:|"]
    table += [f"| {name} | {kb / 1024:.1f} |" for kb, name in mappings]
    command = " ".join(["bench/agent_idle_rss.py", os.path.relpath(a.build_dir, REPO)] + sys.argv[2:])
    header = ["# Agent memory: idle, after a burst, idle again (issue 14 target: <= 15 MB idle)", "", "```", command,
              "```", "",
              "VmRSS counts every resident page, shared library code included; PSS divides shared pages among the "
              "processes mapping them. Anonymous memory is what the agent itself allocated.", ""]
    text = "\n".join(header + table)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
