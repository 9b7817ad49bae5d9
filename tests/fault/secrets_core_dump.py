#!/usr/bin/python3
"""Fault matrix, secret-hygiene row: the agent crashes (kill -SEGV) with its secrets loaded, and no core
is written.

The agent is started with RLIMIT_CORE unlimited (as a careless unit or shell would) in a directory with
core_pattern's default "core" file name. What is checked, honestly:
  1. /proc/PID/limits shows "Max core file size 0 0": the agent lowered its own limit (setrlimit);
  2. after SIGSEGV the kernel reports no core dumped (WCOREDUMP false) and no core file exists in its cwd
     (with PR_SET_DUMPABLE 0 no core is written even if the limit were raised again);
  3. control: /bin/sleep under the same settings does dump a core (WCOREDUMP true), so the check can
     fail. When core_pattern pipes to a helper (systemd-coredump, apport) or cores are off system-wide,
     the control shows whether the kernel would dump; if it would not, the test says so and only checks 1.
  4. if any core file appeared anyway, it must not contain the test secrets.
Usage: secrets_core_dump.py WINCERT_AGENT [unittest arguments]
"""
import json
import os
import resource
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import wincert_testsupport as ts  # noqa: E402

PASSWORD = "core-dump-PASSWORD-7f3a"


def unlimited_core():
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def crash(argv, cwd, ready=None, timeout=30):
    """Starts argv, waits until ready() (or 0.5 s), sends SIGSEGV; returns (pid, wait status, limits text)."""
    proc = subprocess.Popen(argv, cwd=cwd, preexec_fn=unlimited_core, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while ready is not None and not ready() and time.monotonic() < deadline:
        time.sleep(0.05)
    if ready is None:
        time.sleep(0.5)
    with open(f"/proc/{proc.pid}/limits") as f:
        limits = f.read()
    os.kill(proc.pid, signal.SIGSEGV)
    _, status = os.waitpid(proc.pid, 0)
    proc.returncode = -1  # reaped above
    return proc.pid, status, limits


def core_files(directory):
    return [os.path.join(directory, n) for n in os.listdir(directory) if n.startswith("core")]


def crash_with_secrets(agent):
    """Runs the checks above (each printed); returns the ones that failed."""
    with open("/proc/sys/kernel/core_pattern") as f:
        pattern = f.read().strip()
    print(f"   core_pattern: {pattern!r}")
    failed = []

    def check(condition, what, detail=""):
        print(f"  {'ok' if condition else 'FAIL'}  {what}" + ("" if condition else f": {detail}"), flush=True)
        if not condition:
            failed.append(what)

    with ts.TempDir("wincert-core-") as work_dir:
        work = work_dir.path
        control_dir = os.path.join(work, "control")
        os.makedirs(control_dir)
        _, control_status, _ = crash(["/bin/sleep", "30"], control_dir)
        kernel_dumps = os.WCOREDUMP(control_status)
        print(f"   control (/bin/sleep): core dumped = {kernel_dumps}")

        run_dir = os.path.join(work, "agent")
        os.makedirs(run_dir)
        secrets = os.path.join(run_dir, "secrets.json")
        with open(secrets, "w") as f:
            json.dump({"Password": PASSWORD}, f)
        os.chmod(secrets, 0o600)
        port = ts.refused_port()
        log_file = os.path.join(run_dir, "agent.log")
        config = os.path.join(run_dir, "agent.json")
        with open(config, "w") as f:
            json.dump({"AgentsServerUri": f"http://127.0.0.1:{port}/KeyfactorAgents", "OrchestratorName": "core",
                       "Username": "svc", "SecretsFile": secrets, "OutboxDirectory": os.path.join(run_dir, "state"),
                       "LogFile": log_file, "RetryInitialSeconds": 1}, f)

        def registering():
            try:
                with open(log_file) as f:
                    return "starting: orchestrator" in f.read()
            except FileNotFoundError:
                return False

        _, status, limits = crash([agent, "run", "--config", config], run_dir, registering)
        line = next((l for l in limits.splitlines() if l.startswith("Max core file size")), "")
        check(line.split()[4:6] == ["0", "0"], "the agent set RLIMIT_CORE to 0 itself", line)
        # An AddressSanitizer build catches the SIGSEGV itself, reports it and aborts (abort_on_error=1): SIGABRT.
        crash_signals = (signal.SIGSEGV, signal.SIGABRT) if os.environ.get("ASAN_OPTIONS") else (signal.SIGSEGV,)
        check(os.WIFSIGNALED(status) and os.WTERMSIG(status) in crash_signals, "the agent died of the crash signal",
              status)
        if kernel_dumps:
            check(not os.WCOREDUMP(status), "the kernel wrote no core for the agent (the control got one)")
        else:
            print("   the kernel dumps no core here even for the control: only the limit is checked")
        cores = core_files(run_dir)
        check(not cores, "no core file in the agent's directory", cores)
        for path in cores:
            with open(path, "rb") as f:
                check(PASSWORD.encode() not in f.read(), f"{path} does not contain the password")
        if failed:
            work_dir.keep()
    return failed


class SecretsCoreDumpTest(ts.TestCase):
    def test_a_crash_with_secrets_loaded_writes_no_core(self):
        failed = crash_with_secrets(os.path.abspath(ts.ARGS.agent))
        self.assertEqual(failed, [], "these checks failed (see the lines above)")


if __name__ == "__main__":
    ts.main(positional=("agent",), description=__doc__)
