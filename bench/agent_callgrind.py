#!/usr/bin/python3
"""Instructions per inventory job, counted by callgrind (repeatable where wall-clock figures are not).

Runs command-sim, winhost-sim (--hosts H, a `My` store of C certificates per host, model made by
`wincert_bench_inventory_scale generate`) and the agent from tests/e2e/stack.py, with ONE of the three
processes under `valgrind --tool=callgrind` with instrumentation off. After the agent holds an approved session,
instrumentation is switched on (`callgrind_control --instr=on`); then J immediate WinCert inventory jobs are
scheduled, and once command-sim has recorded every completion the counts are dumped (`callgrind_control -d`). So the figure covers the jobs alone:
configuration fetch, WinRM, parsing, outbox, delivery; for the simulators, what serving them cost.

Prints instructions per job and the top functions (inclusive and self) from callgrind_annotate, and writes
them to --out (Markdown); --profile keeps the raw callgrind file.

usage: agent_callgrind.py BUILD_DIR [--process agent|command-sim|winhost-sim] [--jobs 20] [--hosts 5]
                          [--certs 50] [--top 25] [--out bench/results/callgrind_agent] [--profile FILE]
"""
import argparse
import glob
import os
import re
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
from stack import Binaries, Stack, wait_until  # noqa: E402


def wrapper(directory, binary, out_file):
    """A shell script that runs `binary` under callgrind, with instrumentation off until the job phase starts."""
    path = os.path.join(directory, os.path.basename(binary) + "-callgrind.sh")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n"
                f"exec valgrind --tool=callgrind --callgrind-out-file={out_file} --instr-atstart=no "
                f"--separate-threads=no \"{binary}\" \"$@\"\n")
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


def callgrind_control(option, pid):
    subprocess.run(["callgrind_control", option, str(pid)], check=True, stdout=subprocess.DEVNULL)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("build_dir")
    p.add_argument("--ps-start-ms", type=int, default=0,
                    help="winhost-sim's PowerShell start cost per powershell.exe/runspace (default 0: the recorded "
                         "figures in bench/results were measured without it)")
    p.add_argument("--process", choices=("agent", "command-sim", "winhost-sim"), default="agent")
    p.add_argument("--jobs", type=int, default=20)
    p.add_argument("--hosts", type=int, default=5)
    p.add_argument("--certs", type=int, default=50)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--out", default=None, help="results path without suffix")
    p.add_argument("--profile", default=None, help="also keep the raw callgrind profile in this file")
    a = p.parse_args()
    out = a.out or os.path.join(HERE, "results", "callgrind_" + a.process.replace("-", "_"))

    b = os.path.abspath(a.build_dir)
    paths = {"agent": os.path.join(b, "agent", "wincert-agent"),
             "command-sim": os.path.join(b, "sim", "command", "command-sim"),
             "winhost-sim": os.path.join(b, "sim", "winhost", "winhost-sim")}
    with tempfile.TemporaryDirectory(prefix="wincert-callgrind-") as work:
        profile = os.path.join(work, "callgrind.out")
        paths[a.process] = wrapper(work, paths[a.process], profile)
        bins = Binaries(paths["agent"], paths["command-sim"], paths["winhost-sim"])
        model = os.path.join(work, f"model-{a.certs}.json")
        subprocess.run([os.path.join(b, "bench", "wincert_bench_inventory_scale"), "generate", "--count",
                        str(a.certs), "--out", model], check=True, stdout=subprocess.DEVNULL)
        agent_config = {"LogLevel": "info", "MaxConcurrentJobs": 8, "MaxJobsPerHost": 2,
                        "WinRM": {"IdleTimeoutSeconds": 300, "CommandTimeoutSeconds": 600}}
        with Stack(bins, hosts=a.hosts, model=model, agent_config=agent_config, ps_start_ms=a.ps_start_ms,
                   workdir=os.path.join(work, "stack")) as st:
            st.command.log_level = "warn"
            st.winhost.log_level = "warn"
            st.start(timeout=300)
            stores = [st.create_store("WinCert", store_path="My", host=h % a.hosts) for h in range(a.hosts)]
            st.admin.reset_counters()
            # The wrapper execs valgrind, so the process the stack started is the one callgrind counts.
            pid = {"agent": st.agent, "command-sim": st.command, "winhost-sim": st.winhost}[a.process].process.pid
            callgrind_control("--instr=on", pid)
            t0 = time.monotonic()
            for i in range(a.jobs):
                st.schedule("Inventory", stores[i % len(stores)])
            wait_until(lambda: st.admin.counters().get("CompletionsRecorded", 0) >= a.jobs, 900, 0.5,
                       f"{a.jobs} completions to be recorded")
            elapsed = time.monotonic() - t0
            callgrind_control("-d", pid)
            time.sleep(1)
        dumps = sorted(glob.glob(profile + "*"), key=os.path.getmtime)
        dump = next((d for d in reversed(dumps) if re.search(r"\.\d+$", d)), dumps[-1])
        annotate = subprocess.run(["callgrind_annotate", dump], capture_output=True, text=True).stdout
        inclusive = subprocess.run(["callgrind_annotate", "--inclusive=yes", dump], capture_output=True,
                                   text=True).stdout
        os.makedirs(os.path.dirname(out), exist_ok=True)
        if a.profile:  # the raw profile (about 1 MB), for callgrind_annotate or kcachegrind
            with open(a.profile, "w") as f, open(dump) as src:
                f.write(src.read())

    total = 0
    for line in annotate.splitlines():
        m = re.match(r"^\s*([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", line) or re.match(r"^([\d,]+)\s+PROGRAM TOTALS",
                                                                                    line)
        if m:
            total = int(m.group(1).replace(",", ""))
            break

    def top_lines(text):
        rows, started = [], False
        for line in text.splitlines():
            if "file:function" in line:
                started = True
                continue
            if started and line.strip() and not line.startswith("-"):
                rows.append(line.rstrip()[:200])  # template names run to kilobytes
            if len(rows) >= a.top:
                break
        return rows

    command = " ".join(["bench/agent_callgrind.py", os.path.relpath(b, REPO)] + sys.argv[2:])
    text = [f"# callgrind: {a.process}, {a.jobs} inventory jobs ({a.hosts} hosts, {a.certs} certificates per store)",
            "", "```", command, "```", "",
            f"Counted from the agent's approved session to the last completion recorded by command-sim "
            f"({elapsed:.1f} s under callgrind).", "",
            f"**{total:,} instructions in all, {total // max(a.jobs, 1):,} per job.**", "",
            "Top functions, self cost:", "", "```"] + top_lines(annotate) + ["```", "",
                                                                              "Top functions, inclusive:", "",
                                                                              "```"] + top_lines(inclusive) + ["```"]
    with open(out + ".md", "w") as f:
        f.write("\n".join(text) + "\n")
    print("\n".join(text[:12]))
    print(f"wrote {out}.md" + (f" and {a.profile}" if a.profile else ""))


if __name__ == "__main__":
    main()
