#!/usr/bin/python3
"""Scaling of one agent from 20 to 2,000 hosts (issue 14): runs bench/agent_load.py once per host count, each
run at one WinRM latency, and tabulates per run: agent CPU per job, agent peak RSS, RSS per host above the
idle agent, jobs/s at the agent and recorded by Command, job p99. CPU per job and RSS per host should stay
flat; the table says where they do not.

usage: agent_scaling.py BUILD_DIR [--sizes 20:10,200:10,2000:1] [--latency 20] [--idle-rss-mb 15.6]
                        [--out bench/results/agent_scaling]
  --sizes HOSTS:JOBS_PER_HOST,...   (2,000 hosts with 1 job each keeps the job count of 200 x 10)
  --idle-rss-mb                     the idle agent's RSS (bench/agent_idle_rss.py), subtracted before dividing
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("build_dir")
    p.add_argument("--ps-start-ms", type=int, default=0,
                    help="winhost-sim's PowerShell start cost per powershell.exe/runspace (default 0: the recorded "
                         "figures in bench/results were measured without it)")
    p.add_argument("--sizes", default="20:10,200:10,2000:1")
    p.add_argument("--latency", type=int, default=20)
    p.add_argument("--idle-rss-mb", type=float, default=15.6)
    p.add_argument("--out", default=os.path.join(HERE, "results", "agent_scaling"))
    a = p.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="wincert-scaling-") as work:
        for size in a.sizes.split(","):
            hosts, per_host = (int(x) for x in size.split(":"))
            out = os.path.join(work, f"load-{hosts}")
            cmd = [sys.executable, os.path.join(HERE, "agent_load.py"), a.build_dir, "--hosts", str(hosts),
                   "--jobs-per-host", str(per_host), "--latencies", str(a.latency), "--out", out,
                   "--delivery-window", "120", "--ps-start-ms", str(a.ps_start_ms)]
            print("running", " ".join(cmd[1:]), flush=True)
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            with open(out + ".json") as f:
                data = json.load(f)
            row = data["rows"][0] if isinstance(data, dict) else data[0]
            rows.append(row)

    lines = [
        f"# Agent scaling: 20 to 2,000 hosts at {a.latency} ms WinRM latency",
        "",
        "```",
        " ".join(["bench/agent_scaling.py", os.path.relpath(a.build_dir, REPO)] + sys.argv[2:]),
        "```",
        "",
        "Each row is one `bench/agent_load.py` run (command-sim, winhost-sim `--hosts N`, the agent; stores of 50 "
        "certificates; MaxConcurrentJobs 64, MaxJobsPerHost 2), all three processes on this 2-core machine. "
        f"RSS per host = (agent peak RSS − {a.idle_rss_mb} MB idle) / hosts.",
        "",
        "| hosts | jobs | agent jobs/s | recorded by Command per s | agent CPU ms / job | job p99 (ms) "
        "| agent peak RSS (MB) | RSS per host (KB) | WinRM shells | WinRM exchanges / job |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        per_host_kb = max(r["agent_peak_rss_mb"] - a.idle_rss_mb, 0.0) * 1024 / r["hosts"]
        exchanges = r.get("winrm_requests")
        lines.append(
            f"| {r['hosts']:,} | {r['jobs']:,} | {r['agent_jobs_per_s']:.0f} | {r['command_jobs_per_s']:.0f} | "
            f"{r['agent_cpu_ms_per_job']:.1f} | {r['run_ms_p99']:.0f} | {r['agent_peak_rss_mb']:.1f} | "
            f"{per_host_kb:.0f} | {r['winrm_shells']:,} | "
            f"{'n/a' if not exchanges else format(exchanges / r['jobs'], '.2f')} |")
    text = "\n".join(lines) + "\n"
    with open(a.out + ".md", "w") as f:
        f.write(text)
    with open(a.out + ".json", "w") as f:
        json.dump([{k: v for k, v in r.items() if not k.endswith("timeline")} for r in rows], f, indent=1)
    print(text)


if __name__ == "__main__":
    main()
