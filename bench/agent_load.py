#!/usr/bin/python3
"""End-to-end load benchmark of `wincert-agent run`: one command-sim, one winhost-sim playing N Windows hosts
(--hosts N, each with a `My` store of C certificates), one agent; J immediate WinCert inventory jobs per host,
all scheduled before the agent (re)starts so it meets the whole backlog at its first registration. Repeated
for each injected WinRM latency (winhost-sim --latency-ms).

Processes come from tests/e2e/stack.py (used read-only): command-sim with Basic auth, winhost-sim with Basic
over http, the agent with a generated configuration (MaxConcurrentJobs / MaxJobsPerHost from the options,
LogLevel info). command-sim's state directory is put on /dev/shm (it rewrites its whole state file on every
change); the agent's outbox stays on the disk.

Each latency's run has two phases:
  1. until the agent has finished every job (its log line "job X end: <status> in N ms": the result is in
     its durable outbox), with a stall check;
  2. until command-sim has recorded every completion, or --delivery-window seconds after phase 1 ended.

Measured per latency:
  * agent jobs/s: from the first to the last "job X end" line (log timestamps, ms);
  * Command jobs/s: completions recorded by command-sim (`CompletionsRecorded`, admin counters polled every
    0.1 s) from the first to the last one seen; history timestamps (1 s resolution) are a cross-check;
  * job latency p50/p99/max: "job X end: ... in N ms" (the job's start in the agent's scheduler -> result in
    the outbox), and the agent's start -> each job's end (queueing of the backlog included);
  * agent peak RSS: VmHWM from /proc/<pid>/status (sampled every 0.1 s and read at the end);
  * agent CPU-seconds per job: utime+stime from /proc/<pid>/stat when phase 1 ended, / jobs;
  * fsyncs per job: the agent is stopped (SIGTERM) at the end and its "stopped: ... N disk sync(s)" line
    (every fsync of the process: outbox commits, the AgentId) is divided by the jobs; agents without that
    line show "n/a";
  * the simulators' CPU-seconds over the same phase, to show where the two cores went.

usage: agent_load.py BUILD_DIR [--hosts 200] [--jobs-per-host 10] [--certs 50] [--latencies 0,20]
                     [--max-concurrent 64] [--max-per-host 2] [--delivery-window 60] [--out bench/results/agent_load]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
from stack import Binaries, Stack  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
END_LINE = re.compile(r"^(\S+) \S+ \[agent\] job \S+ end: (\w+) in (\d+) ms", re.M)


def proc_cpu_seconds(pid):
    """utime + stime of a process (seconds), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc_pid_stat(5)
    except (OSError, IndexError, ValueError):
        return None


def proc_status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def log_time(text):
    """Agent log timestamps: local time with milliseconds."""
    base, frac = text.split(".")
    return time.mktime(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + int(frac) / 1000.0


class Sampler(threading.Thread):
    """Every `interval` s: command-sim's CompletionsRecorded, the agent's finished jobs (its log, read
    incrementally), and the agent's VmHWM."""

    def __init__(self, admin, agent_pid, log_path, log_offset, interval=0.1):
        super().__init__(daemon=True)
        self.admin, self.pid, self.interval = admin, agent_pid, interval
        self.log_path, self.log_offset = log_path, log_offset
        self.recorded = []   # (monotonic, completions recorded by command-sim)
        self.finished = []   # (monotonic, jobs the agent finished)
        self.configs = []    # (monotonic, job configurations command-sim served)
        self.agent_done = 0
        self.command_done = 0
        self.peak_rss_kb = 0
        self.poll_errors = 0
        self.stop_event = threading.Event()
        self._partial = ""

    def _read_log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                f.seek(self.log_offset)
                chunk = f.read()
                self.log_offset = f.tell()
        except OSError:
            return
        text = self._partial + chunk
        cut = text.rfind("\n") + 1
        self._partial = text[cut:]
        self.agent_done += len(END_LINE.findall(text[:cut]))

    def run(self):
        while not self.stop_event.is_set():
            now = time.monotonic()
            try:
                counters = self.admin.counters()
                self.command_done = counters.get("CompletionsRecorded", 0)
                self.recorded.append((now, self.command_done))
                self.configs.append((now, counters.get("Requests", {}).get("CertStoreInventory/Configuration", 0)))
            except Exception:  # noqa: BLE001  (a busy simulator: try again)
                self.poll_errors += 1
            self._read_log()
            self.finished.append((now, self.agent_done))
            hwm = proc_status_kb(self.pid, "VmHWM")
            if hwm:
                self.peak_rss_kb = max(self.peak_rss_kb, hwm)
            self.stop_event.wait(self.interval)


def run_one(bins, model, latency, a, workdir):
    agent_config = {"MaxConcurrentJobs": a.max_concurrent, "MaxJobsPerHost": a.max_per_host,
                    "LogLevel": a.agent_log_level, "HeartbeatIntervalSeconds": 5, "ShutdownGraceSeconds": 10,
                    "WinRM": {"IdleTimeoutSeconds": 300, "CommandTimeoutSeconds": 300,
                              "ExecutionMode": a.execution_mode}}
    t_setup = time.monotonic()
    st = Stack(bins, hosts=a.hosts, latency_ms=latency, model=model, agent_config=agent_config, ps_start_ms=a.ps_start_ms,
               workdir=os.path.join(workdir, f"latency-{latency}"), keep=a.keep)
    # Quiet simulators: their per-request log lines would cost CPU the agent needs.
    st.command.log_level = "warn"
    st.winhost.log_level = "warn"
    shm = None
    if a.command_state_tmpfs and os.path.isdir("/dev/shm"):
        # command-sim's state.db (SQLite, WAL) on tmpfs: its writes then cost CPU only.
        shm = tempfile.mkdtemp(prefix="wincert-load-command-state-", dir="/dev/shm")
        os.symlink(shm, st.command.state_dir)
    outbox_shm = None
    if a.agent_outbox_tmpfs:
        # For comparison only: the agent's outbox (and AgentId) on tmpfs, so its fsyncs cost nothing.
        outbox_shm = tempfile.mkdtemp(prefix="wincert-load-agent-state-", dir="/dev/shm")
        os.symlink(outbox_shm, os.path.join(st.workdir, "agent-state"))
    load_before = os.getloadavg()
    try:
        row = measure(st, latency, a, t_setup)
        row["loadavg_before"] = [round(x, 2) for x in load_before]
        row["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        row["agent_outbox_tmpfs"] = a.agent_outbox_tmpfs
        return row
    finally:
        for d in (shm, outbox_shm):
            if d:
                shutil.rmtree(d, ignore_errors=True)


def measure(st, latency, a, t_setup):
    with st:
        st.start()
        # Everything is scheduled while the agent is stopped: at its next registration it gets the whole
        # backlog in one job list (scheduling 2,000 jobs one POST at a time would otherwise pace the run).
        st.agent.stop()
        stores = [st.create_store("WinCert", store_path="My", host=h) for h in range(a.hosts)]
        jobs = [st.schedule("Inventory", s)["JobId"] for _ in range(a.jobs_per_host) for s in stores]
        total = len(jobs)
        setup_s = time.monotonic() - t_setup
        st.admin.reset_counters()
        cmd_pid, win_pid = st.command.process.pid, st.winhost.process.pid
        cmd_cpu0, win_cpu0 = proc_cpu_seconds(cmd_pid), proc_cpu_seconds(win_pid)
        log_offset = os.path.getsize(st.agent.log_path) if os.path.exists(st.agent.log_path) else 0

        t0 = time.monotonic()
        st.agent.start()
        pid = st.agent.process.pid
        sampler = Sampler(st.admin, pid, st.agent.log_path, log_offset)
        sampler.start()

        def wait_for(done, what, limit):
            stalled_since, last = time.monotonic(), -1
            while True:
                count = done()
                if count >= total:
                    return True
                now = time.monotonic()
                if count != last:
                    stalled_since, last = now, count
                if limit is not None and now > limit:
                    return False
                if now - stalled_since > a.stall or now > t0 + a.timeout:
                    sampler.stop_event.set()
                    raise SystemExit(f"latency {latency} ms: {what} {count}/{total}, no progress for "
                                     f"{now - stalled_since:.0f} s; see {st.workdir} (--keep keeps it)")
                if not st.agent.running():
                    raise SystemExit(f"the agent exited: {st.agent.output()[-2000:]}")
                time.sleep(0.1)

        # Phase 1: the agent runs every job.
        wait_for(lambda: sampler.agent_done, "jobs finished by the agent", None)
        t_agent = time.monotonic()
        agent_cpu = proc_cpu_seconds(pid)
        cmd_cpu = proc_cpu_seconds(cmd_pid) - cmd_cpu0
        win_cpu = proc_cpu_seconds(win_pid) - win_cpu0
        counters_at_agent_done = st.admin.counters()
        # Phase 2: Command records them (bounded).
        all_recorded = wait_for(lambda: sampler.command_done, "completions recorded by command-sim",
                                t_agent + a.delivery_window)
        t_end = time.monotonic()
        agent_cpu_end = proc_cpu_seconds(pid)
        cmd_cpu_end = proc_cpu_seconds(cmd_pid) - cmd_cpu0
        peak = max(sampler.peak_rss_kb, proc_status_kb(pid, "VmHWM") or 0)
        sampler.stop_event.set()
        sampler.join()

        history = st.admin.history()
        results = {}
        for h in history:
            results[h["Result"]] = results.get(h["Result"], 0) + 1
        counters = st.admin.counters()
        status = st.winhost.status()
        state_files = [os.path.join(st.command.state_dir, f) for f in ("state.db", "state.db-wal")]
        state_mb = (sum(os.path.getsize(f) for f in state_files if os.path.exists(f)) / 1e6
                    if os.path.exists(state_files[0]) else float("nan"))
        outbox_files = len(st.agent.outbox_files())
        st.agent.stop()  # its last line counts the disk syncs
        with open(st.agent.log_path, encoding="utf-8", errors="replace") as f:
            f.seek(log_offset)
            log = f.read()

    ends = END_LINE.findall(log)
    agent_results = {}
    for _, status_name, _ in ends:
        agent_results[status_name] = agent_results.get(status_name, 0) + 1
    run_ms = [int(ms) for _, _, ms in ends]
    first_line = re.search(r"^(\S+) ", log, re.M)
    t_log0 = log_time(first_line.group(1))
    end_times = sorted(log_time(t) for t, _, _ in ends)
    since_start_ms = [1000 * (t - t_log0) for t in end_times]
    rec = sampler.recorded
    recorded = rec[-1][1] if rec else 0
    first_rec = next((t for t, c in rec if c >= 1), None)
    last_rec = next((t for t, c in rec if c >= recorded), None)
    command_rate = (recorded - 1) / (last_rec - first_rec) if recorded > 1 and last_rec > first_rec else float("nan")
    syncs = re.search(r"stopped: .* (\d+) disk sync\(s\)", log)
    commits = re.search(r"(\d+) outbox commit\(s\) for (\d+) entries", log)
    hist_end = sorted(time.mktime(time.strptime(h["OperationEnd"], "%Y-%m-%dT%H:%M:%SZ")) for h in history)
    row = {
        "latency_ms": latency, "hosts": a.hosts, "jobs": total, "certs_per_store": a.certs,
        "max_concurrent_jobs": a.max_concurrent, "max_jobs_per_host": a.max_per_host,
        "agent_results": agent_results, "command_results": results, "all_recorded": all_recorded,
        "recorded": recorded, "outbox_files_left": outbox_files,
        "agent_log_errors": len(re.findall(r"^\S+ (?:error|critical) ", log, re.M)),
        "agent_log_warnings": len(re.findall(r"^\S+ warning ", log, re.M)),
        "agent_jobs_per_s": (len(end_times) - 1) / (end_times[-1] - end_times[0]),
        "agent_first_end_s": end_times[0] - t_log0, "agent_last_end_s": end_times[-1] - t_log0,
        "command_jobs_per_s": command_rate,
        "command_jobs_per_s_history": (len(hist_end) - 1) / max(1.0, hist_end[-1] - hist_end[0]) if hist_end else 0,
        "command_first_s": (first_rec - t0) if first_rec else float("nan"),
        "command_last_s": (last_rec - t0) if last_rec else float("nan"),
        "phase1_s": t_agent - t0, "phase2_s": t_end - t_agent,
        "run_ms_p50": percentile(run_ms, 50), "run_ms_p99": percentile(run_ms, 99), "run_ms_max": max(run_ms),
        "since_start_s_p50": percentile(since_start_ms, 50) / 1000, "since_start_s_p99": percentile(since_start_ms, 99) / 1000,
        "agent_peak_rss_mb": peak / 1024.0,
        "agent_disk_syncs": int(syncs.group(1)) if syncs else None,
        "agent_fsyncs_per_job": int(syncs.group(1)) / total if syncs else None,
        "agent_outbox_commits": int(commits.group(1)) if commits else None,
        "agent_outbox_committed_entries": int(commits.group(2)) if commits else None,
        "agent_cpu_s": agent_cpu, "agent_cpu_ms_per_job": 1000.0 * agent_cpu / total, "agent_cpu_s_end": agent_cpu_end,
        "command_sim_cpu_s": cmd_cpu, "winhost_sim_cpu_s": win_cpu, "command_sim_cpu_s_end": cmd_cpu_end,
        "command_state_mb": state_mb,
        "config_fetches_at_agent_done": counters_at_agent_done.get("Requests", {}).get("CertStoreInventory/Configuration"),
        "recorded_at_agent_done": counters_at_agent_done.get("CompletionsRecorded"),
        "command_requests": counters.get("Requests", {}), "registrations": counters.get("Registrations"),
        "winrm_connections": status.get("connections"), "winrm_shells": status.get("shells_created"),
        "winrm_commands": status.get("commands"),
        "winrm_requests": status.get("requests"), "winrm_requests_by_action": status.get("requests_by_action", {}),
        "winrm_max_commands_per_host": status.get("max_commands_running_per_host"),
        "setup_s": setup_s, "poll_errors": sampler.poll_errors,
        "finished_timeline": [(round(t - t0, 2), c) for t, c in sampler.finished],
        "recorded_timeline": [(round(t - t0, 2), c) for t, c in rec],
        "config_timeline": [(round(t - t0, 2), c) for t, c in sampler.configs],
        "configs_all_served_s": next((round(t - t0, 2) for t, c in sampler.configs if c >= total), None),
    }
    return row


def fmt_counts(d):
    return ", ".join(f"{k} {v:,}" for k, v in sorted(d.items())) or "none"


def write_results(rows, a, command_line, out):
    with open(out + ".json", "w") as f:
        json.dump(rows, f, indent=1)
    r0 = rows[0]
    lines = [
        f"# End-to-end load: one agent, {r0['hosts']} Windows hosts, {r0['jobs']:,} inventory jobs per latency",
        "",
        f"`bench/agent_load.py` on {time.strftime('%Y-%m-%d')}: command-sim + winhost-sim `--hosts {r0['hosts']}` "
        f"(a `My` store of {r0['certs_per_store']} certificates on every host, model made by "
        "`wincert_bench_inventory_scale generate`) + `wincert-agent run`, on one 2-core machine shared with other "
        "engineers' builds (RelWithDebInfo, Debian 12), HTTP + Basic on loopback. "
        f"{r0['jobs'] // r0['hosts']} immediate WinCert inventory jobs per host ({r0['jobs']:,} in all), scheduled "
        "through command-sim's admin API while the agent was stopped, so the agent meets the whole backlog at its "
        f"first registration. Agent: `MaxConcurrentJobs` {r0['max_concurrent_jobs']}, `MaxJobsPerHost` "
        f"{r0['max_jobs_per_host']}, `WinRM.ExecutionMode` {a.execution_mode} "
        f"(winhost-sim `--ps-start-ms {a.ps_start_ms}`), `LogLevel` info, outbox " +
        ("on /dev/shm" if r0["agent_outbox_tmpfs"] else "on the disk") + "; command-sim's state directory on /dev/shm.",
        "",
        "```",
        command_line,
        "```",
        "",
        "| WinRM latency | jobs | agent: results | agent jobs/s | job run p50 / p99 / max (ms) "
        "| agent start → job end p50 / p99 (s) | agent peak RSS (MB) | agent CPU ms / job | agent fsyncs / job "
        "| Command: recorded | Command jobs/s | CPU s agent / command-sim / winhost-sim |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        recorded = f"{r['recorded']:,} of {r['jobs']:,}" + ("" if r["all_recorded"] else
                                                           f" in {r['phase1_s'] + r['phase2_s']:.0f} s")
        lines.append(
            f"| {r['latency_ms']} ms | {r['jobs']:,} | {fmt_counts(r['agent_results'])} | {r['agent_jobs_per_s']:.1f} | "
            f"{r['run_ms_p50']:.0f} / {r['run_ms_p99']:.0f} / {r['run_ms_max']:.0f} | "
            f"{r['since_start_s_p50']:.1f} / {r['since_start_s_p99']:.1f} | "
            f"{r['agent_peak_rss_mb']:.1f} | {r['agent_cpu_ms_per_job']:.1f} | "
            f"{'n/a' if r.get('agent_fsyncs_per_job') is None else format(r['agent_fsyncs_per_job'], '.2f')} | {recorded} "
            f"({fmt_counts(r['command_results'])}) | {r['command_jobs_per_s']:.1f} | "
            f"{r['agent_cpu_s']:.1f} / {r['command_sim_cpu_s']:.1f} / {r['winhost_sim_cpu_s']:.1f} |")
    lines += [
        "",
        "How each figure is measured:",
        "",
        "* **agent jobs/s**: (jobs − 1) / (last − first) over the agent's log lines `job X end: <status> in N ms` "
        "(ms timestamps): a job is finished for the agent when its result is in the durable outbox.",
        "* **job run p50/p99/max**: the `in N ms` of those lines — from the job's start in the agent's scheduler "
        "to its result in the outbox (WinRM shell + script + parsing + outbox write); time queued behind other jobs "
        "is not in it. **agent start → job end**: from the agent's first log line to each job's end line "
        "(registration, configuration fetches and the queueing of the whole backlog included).",
        "* **Command jobs/s**: completions recorded by command-sim (`CompletionsRecorded` of its admin counters, "
        "polled every 0.1 s): (recorded − 1) / (last − first recorded). Cross-check from the history's "
        "`OperationEnd` (1 s resolution): " +
        ", ".join(f"{r['latency_ms']} ms: {r['command_jobs_per_s_history']:.1f}/s" for r in rows) + ".",
        "* **agent peak RSS**: `VmHWM` from `/proc/<pid>/status` (sampled every 0.1 s, read at the end). "
        "**agent CPU**: utime + stime from `/proc/<pid>/stat` when the agent had finished every job (start-up, "
        "registration, 2,000 configuration fetches, the jobs and the deliveries made until then), / jobs. The CPU "
        "columns cover the same interval (agent start → last job end) for the three processes.",
        "",
        "Per run (`agent_load.json` has everything, including both timelines):",
        "",
    ]
    for r in rows:
        lines.append(
            f"* {r['latency_ms']} ms: agent finished jobs from {r['agent_first_end_s']:.1f} s to "
            f"{r['agent_last_end_s']:.1f} s after its start; by then command-sim had served "
            f"{r['config_fetches_at_agent_done']:,} configuration requests (all {r['jobs']:,} by "
            f"{r.get('configs_all_served_s') or float('nan'):.1f} s) and recorded "
            f"{r['recorded_at_agent_done']:,} completions; it recorded {r['recorded']:,} of {r['jobs']:,} by the end "
            f"({r['phase1_s'] + r['phase2_s']:.0f} s; {r['outbox_files_left']:,} outbox files still waiting; "
            f"command-sim state {r['command_state_mb']:.1f} MB, command-sim CPU {r['command_sim_cpu_s_end']:.0f} s "
            f"vs agent {r['agent_cpu_s_end']:.0f} s). {r['registrations']} registration(s); WinRM connections "
            f"{r['winrm_connections']}, shells {r['winrm_shells']}, commands {r['winrm_commands']}, max commands at "
            f"once on one host {r['winrm_max_commands_per_host']}"
            + (f"; WinRM exchanges {r['winrm_requests']:,} = {r['winrm_requests'] / r['jobs']:.2f} per job "
               f"({fmt_counts(r['winrm_requests_by_action'])}), so the issue's p99 bound 10 × RTT × exchanges is "
               f"{10 * r['latency_ms'] * r['winrm_requests'] / r['jobs']:.0f} ms against a p99 of "
               f"{r['run_ms_p99']:.0f} ms" if r.get("winrm_requests") else "")
            + f"; agent log errors {r['agent_log_errors']}, "
            f"warnings {r['agent_log_warnings']}; set-up (stack start, {r['hosts']} stores, {r['jobs']:,} jobs) "
            f"{r['setup_s']:.0f} s; load average (1 min) {r['loadavg_before'][0]} before, "
            f"{r['loadavg_after'][0]} after" + ("; agent outbox on /dev/shm" if r["agent_outbox_tmpfs"] else "") + ".")
    if a.notes:
        lines += ["", a.notes]
    lines += ["", "Plot: `agent_load.png` — jobs finished by the agent (solid), completions recorded by command-sim "
              "(dashed) and job configurations fetched by the agent (dotted) over time, per latency.", ""]
    with open(out + ".md", "w") as f:
        f.write("\n".join(lines))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8.5, 4.8))
    for i, r in enumerate(rows):
        color = f"C{i}"
        ax.plot([t for t, _ in r["finished_timeline"]], [c for _, c in r["finished_timeline"]], color=color,
                label=f"{r['latency_ms']} ms: finished by the agent ({r['agent_jobs_per_s']:.0f} jobs/s)")
        ax.plot([t for t, _ in r["recorded_timeline"]], [c for _, c in r["recorded_timeline"]], color=color,
                linestyle="--", label=f"{r['latency_ms']} ms: recorded by command-sim ({r['command_jobs_per_s']:.1f} jobs/s)")
        if r.get("config_timeline"):
            ax.plot([t for t, _ in r["config_timeline"]], [c for _, c in r["config_timeline"]], color=color,
                    linestyle=":", label=f"{r['latency_ms']} ms: configurations fetched by the agent")
    ax.set_xlabel("seconds since the agent started")
    ax.set_ylabel("jobs")
    ax.set_title(f"wincert-agent: {r0['jobs']:,} inventory jobs on {r0['hosts']} hosts, WinRM latency 0 / 20 ms "
                 f"(MaxConcurrentJobs {r0['max_concurrent_jobs']}, MaxJobsPerHost {r0['max_jobs_per_host']})",
                 fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out + ".png", dpi=120)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("build_dir")
    p.add_argument("--ps-start-ms", type=int, default=0,
                    help="winhost-sim's PowerShell start cost per powershell.exe/runspace (default 0: the recorded "
                         "figures in bench/results were measured without it)")
    p.add_argument("--execution-mode", default="psrp", choices=["psrp", "winrs"],
                   help="the agent's WinRM.ExecutionMode: PowerShell remoting (default) or WinRS")
    p.add_argument("--hosts", type=int, default=200)
    p.add_argument("--jobs-per-host", type=int, default=10)
    p.add_argument("--certs", type=int, default=50, help="certificates in every host's My store")
    p.add_argument("--latencies", default="0,20", help="winhost-sim --latency-ms values, comma-separated")
    p.add_argument("--max-concurrent", type=int, default=64, help="agent MaxConcurrentJobs")
    p.add_argument("--max-per-host", type=int, default=2, help="agent MaxJobsPerHost")
    p.add_argument("--delivery-window", type=float, default=60,
                   help="seconds to wait for command-sim to record the rest after the agent finished every job")
    p.add_argument("--timeout", type=float, default=900, help="seconds one latency's run may take")
    p.add_argument("--stall", type=float, default=60, help="seconds without progress that count as a stall")
    p.add_argument("--out", default=os.path.join(HERE, "results", "agent_load"), help="results path without suffix")
    p.add_argument("--notes", default="", help="a paragraph (Markdown) added to the results file")
    p.add_argument("--keep", action="store_true", help="keep the work directories (logs, state)")
    p.add_argument("--no-command-state-tmpfs", dest="command_state_tmpfs", action="store_false",
                   help="keep command-sim's state directory on the disk (default: on /dev/shm)")
    p.add_argument("--agent-outbox-tmpfs", action="store_true",
                   help="put the agent's OutboxDirectory on /dev/shm too (comparison: what its fsyncs cost)")
    p.add_argument("--agent-log-level", default="info", help="agent LogLevel (the job lines need info or lower)")
    a = p.parse_args()

    b = os.path.abspath(a.build_dir)
    bins = Binaries(os.path.join(b, "agent", "wincert-agent"), os.path.join(b, "sim", "command", "command-sim"),
                    os.path.join(b, "sim", "winhost", "winhost-sim"))
    generator = os.path.join(b, "bench", "wincert_bench_inventory_scale")
    command_line = " ".join(["bench/agent_load.py", os.path.relpath(b, REPO)] + sys.argv[2:])
    rows = []
    work_dir = tempfile.TemporaryDirectory(prefix="wincert-load-")
    with work_dir as work:
        if a.keep:
            work = tempfile.mkdtemp(prefix="wincert-load-kept-")
            print(f"keeping the work directories under {work}", flush=True)
        model = os.path.join(work, f"model-{a.certs}.json")
        subprocess.run([generator, "generate", "--count", str(a.certs), "--out", model], check=True,
                       stdout=subprocess.DEVNULL)
        for latency in [int(x) for x in a.latencies.split(",")]:
            row = run_one(bins, model, latency, a, work)
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if not k.endswith("timeline")}), flush=True)
    write_results(rows, a, command_line, a.out)
    print(f"wrote {a.out}.md, {a.out}.json and {a.out}.png")


if __name__ == "__main__":
    main()
