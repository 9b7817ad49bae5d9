#!/usr/bin/python3
"""Fault matrix, outbox start-up rows, against the real `wincert-agent run` process:

  damaged outbox headers (wrong types, null, junk)  -> the agent starts, sets them aside, says why in its log
  OutboxDirectory unusable (a file; a read-only mount) -> exit 1 (RestartPreventExitStatus=1), reason in LogFile
  doctor: entries set aside are reported; a nearly full outbox file system (1 MiB tmpfs) fails the check

Usage: outbox_startup.py WINCERT_AGENT [unittest arguments]
Command is a refused loopback port: the agent keeps retrying registration, which is all these rows need.
"""
import json
import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import wincert_testsupport as ts  # noqa: E402
from wincert_testsupport import refused_port  # noqa: E402


def write_config(work, outbox, log_file):
    secrets = os.path.join(work, "secrets.json")
    with open(secrets, "w") as f:
        json.dump({"Password": "core-test-PASSWORD-1"}, f)
    os.chmod(secrets, 0o600)
    config = os.path.join(work, "agent.json")
    with open(config, "w") as f:
        json.dump({"AgentsServerUri": f"http://127.0.0.1:{refused_port()}/KeyfactorAgents",
                   "OrchestratorName": "fault-test", "Username": "svc", "SecretsFile": secrets,
                   "OutboxDirectory": outbox, "LogFile": log_file, "LogLevel": "debug",
                   "RetryInitialSeconds": 1, "RetryMaxSeconds": 2}, f)
    return config


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def check(condition, what, detail=""):
    if not condition:
        raise AssertionError(what + (f": {detail}" if detail else ""))
    print(f"  ok  {what}", flush=True)


def damaged_headers_do_not_block_start(agent, work):
    state = os.path.join(work, "state")
    box = os.path.join(state, "outbox")
    os.makedirs(box)
    body = b'{"JobId":"j"}'
    cases = {
        "0000000000000001.completion.entry": b'{"kind":"completion","job_id":null,"endpoint":"e","body_bytes":13}',
        "0000000000000002.inventory.entry": b'{"kind":"inventory","job_id":"j","endpoint":"e","part":"1","body_bytes":13}',
        "0000000000000003.completion.entry": b'\x00\xff junk',
        "0000000000000004.completion.entry": b"[" * 5000,
    }
    for name, header in cases.items():
        with open(os.path.join(box, name), "wb") as f:
            f.write(header + b"\n" + body)
    log_file = os.path.join(work, "agent.log")
    proc = subprocess.Popen([agent, "run", "--config", write_config(work, state, log_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        ts.wait_until(lambda: "starting: orchestrator" in read(log_file) or proc.poll() is not None, 30, 0.05,
                      "start-up")
        check(proc.poll() is None, "the agent is running despite 4 damaged outbox entries", read(log_file))
        log = read(log_file)
        check("'job_id' is not a string" in log, "the log names the null job_id")
        check("'part' is not an integer" in log, "the log names the text part")
        check("header is not valid JSON" in log and "nests objects/arrays deeper than" in log, "the log names junk and deep headers")
        check("refused" not in log.lower().split("starting: orchestrator")[0],
              "no message claims Command refused a damaged entry")
        aside = sorted(os.listdir(os.path.join(state, "outbox-corrupt")))
        check(aside == sorted(cases), "all four are in outbox-corrupt", aside)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    check(code == 0, "graceful stop exits 0", code)


def unusable_outbox_exits_1_and_logs(agent, work):
    not_a_dir = os.path.join(work, "state-file")
    with open(not_a_dir, "w") as f:
        f.write("x")
    log_file = os.path.join(work, "agent.log")
    proc = subprocess.run([agent, "run", "--config", write_config(work, not_a_dir, log_file)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    check(proc.returncode == 1, "OutboxDirectory a file: exit 1 (RestartPreventExitStatus=1)", proc.returncode)
    log = read(log_file)
    check("cannot start" in log and not_a_dir in log, "the reason reaches LogFile", log[-500:])


def read_only_outbox_exits_1_and_logs(agent, work):
    mnt = os.path.join(work, "ro")
    os.makedirs(mnt)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", mnt],
                                           capture_output=True).returncode != 0:
        raise unittest.SkipTest("the read-only mount row needs root and mount permission")
    try:
        log_file = os.path.join(work, "agent-ro.log")
        proc = subprocess.run([agent, "run", "--config", write_config(work, os.path.join(mnt, "state"), log_file)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        check(proc.returncode == 1, "OutboxDirectory on a read-only mount: exit 1", proc.returncode)
        check("cannot start" in read(log_file) and "Read-only file system" in read(log_file),
              "the reason (read-only file system) reaches LogFile", read(log_file)[-500:])
    finally:
        subprocess.run(["umount", mnt], capture_output=True)


def doctor_outbox_line(agent, config):
    out = subprocess.run([agent, "doctor", "--config", config], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=60).stdout.decode(errors="replace")
    return next((line for line in out.splitlines() if " outbox:" in line[:12]), out)


def doctor_reports_set_aside_and_low_space(agent, work):
    state = os.path.join(work, "state")
    os.makedirs(os.path.join(state, "outbox-corrupt"))
    with open(os.path.join(state, "outbox-corrupt", "0000000000000001.completion.entry"), "w") as f:
        f.write("x")
    line = doctor_outbox_line(agent, write_config(work, state, os.path.join(work, "agent.log")))
    check(line.startswith("OK") and "1 entry in outbox-corrupt (damaged, not delivered)" in line,
          "doctor names the damaged entry set aside", line)
    mnt = os.path.join(work, "small")
    os.makedirs(mnt)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt],
                                           capture_output=True).returncode != 0:
        raise unittest.SkipTest("the nearly-full-disk row needs root and mount permission")
    try:
        os.makedirs(os.path.join(mnt, "state"))
        line = doctor_outbox_line(agent, write_config(work, os.path.join(mnt, "state"), os.path.join(work, "d.log")))
        check(line.startswith("FAIL") and "KiB free" in line, "doctor fails the outbox on a nearly full disk", line)
    finally:
        subprocess.run(["umount", mnt], capture_output=True)


class OutboxStartupTest(ts.TestCase):
    """One test per row, each in its own temporary directory (kept when the row fails)."""

    def run_row(self, row):
        with ts.TempDir("wincert-fault-") as work:
            row(os.path.abspath(ts.ARGS.agent), work.path)

    def test_damaged_headers_do_not_block_start(self):
        self.run_row(damaged_headers_do_not_block_start)

    def test_unusable_outbox_exits_1_and_logs(self):
        self.run_row(unusable_outbox_exits_1_and_logs)

    def test_read_only_outbox_exits_1_and_logs(self):
        self.run_row(read_only_outbox_exits_1_and_logs)

    def test_doctor_reports_set_aside_and_low_space(self):
        self.run_row(doctor_reports_set_aside_and_low_space)


if __name__ == "__main__":
    ts.main(positional=("agent",), description=__doc__)
