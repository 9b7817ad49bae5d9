#!/usr/bin/python3
"""Fault matrix, Command endpoints (issue 12): command-sim answers one endpoint with garbage, a huge body,
JSON nested 70,000 levels deep, or wrong-typed JSON (its ReplaceBody fault: the request is handled, then
the body replaced), while the real wincert-agent runs against it with winhost-sim behind. For every
endpoint and every kind: the agent stays up, a job hit by the fault ends with a clear status in Command,
the agent recovers when the fault is gone, and no secret reaches its log.

    command_faults.py --list
    command_faults.py CASE AGENT COMMAND_SIM WINHOST_SIM
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from stack import wait_until  # noqa: E402
from scenarios import case_tests, check, job_id, run_case, step  # noqa: E402

# The fault kinds, as command-sim's ReplaceBody knob makes them.
KINDS = {
    "garbage": {"Generate": "garbage", "Size": 4096},
    "huge": {"Generate": "huge", "Size": 20 * 1024 * 1024},  # beyond the 16 MiB of a reply, under the 64 of a job
    "deep": {"Generate": "deep", "Size": 70000},             # the audit's crash: about 140 KB
    "wrong_typed": {"Body": '{"Result":{"Status":"1","Error":[{}]},"Session":{"Token":["x"],"Jobs":{"a":1},'
                            '"HeartbeatInterval":1e308},"SessionValid":{},"AuditId":1e300,"Job":7,'
                            '"JobCancelled":"perhaps","InventoryEndpoint":{"x":1},"Certificate":[1]}'},
}
CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def replace(st, path_contains, kind, count=1):
    knob = {"Count": count, "PathContains": path_contains}
    knob.update(KINDS[kind])
    st.admin.set_faults(ReplaceBody=knob)


def wait_consumed(st, timeout=120):
    wait_until(lambda: st.admin.get("/faults")["ReplaceBody"]["Count"] == 0, timeout, 0.2,
               "the replaced body to be served")


def agent_up(st, what):
    time.sleep(1.5)  # a crash from the reply would show within this
    check(st.agent.running(), f"{what}: the agent is still running")


def recovers(st, store, what):
    st.admin.clear_faults()
    entry = st.wait_job(st.schedule("Inventory", store), 180)
    check(entry["Result"] == "Success", f"{what}: after the fault, a job runs to Success", entry)


def no_secrets(st):
    with open(st.agent.log_path, encoding="utf-8", errors="replace") as f:
        log = f.read()
    leaked = [s for s in st.secrets if s and len(s) >= 6 and s in log]
    check(not leaked, "no secret in the agent's log", [s[:4] + "..." for s in leaked])


def job_failed_clearly(entry, what, words=None):
    message = entry.get("Message", "")
    check(entry["Result"] == "Failure" and message and (words is None or any(w in message for w in words)),
          f"{what}: the job ends in Failure saying why", f"{entry['Result']}: {message[:300]}")


@case
def register(run):
    """Register answered with each fault kind: no crash, the agent keeps trying, then registers."""
    st = run.stack()
    st.start()
    store = st.create_store("WinCert")
    for kind in KINDS:
        step(f"Register -> {kind}")
        replace(st, "Session/Register", kind)
        st.admin.invalidate_sessions()  # the next heartbeat says so; the agent registers again
        wait_consumed(st)
        agent_up(st, f"Register {kind}")
        recovers(st, store, f"Register {kind}")
    no_secrets(st)


@case
def heartbeat(run):
    """Heartbeat answered with each fault kind: no crash, heartbeats go on."""
    st = run.stack()
    st.start()
    store = st.create_store("WinCert")
    for kind in KINDS:
        step(f"Heartbeat -> {kind}")
        replace(st, "Session/Heartbeat", kind, count=2)
        wait_consumed(st)
        agent_up(st, f"Heartbeat {kind}")
    recovers(st, store, "Heartbeat faults")
    no_secrets(st)


@case
def job_list(run):
    """A job list (Session.Jobs in the Register reply) with wrong-typed entries and schedules: skipped."""
    st = run.stack()
    st.start()
    store = st.create_store("WinCert")
    body = ('{"Session":{"Token":"t","AgentId":"a","HeartbeatInterval":0.02,"Jobs":[1,"x",null,[],'
            '{"JobId":{},"Schedule":"Interval:99999999999999999999","Priority":1e300,"ConfigurationEndpoint":7},'
            '{"JobId":"j","Schedule":"Weekly_' + "9" * 5000 + '","ConfigurationEndpoint":"http://127.0.0.1:1/x"}]},'
            '"Result":{"Status":1}}')
    st.admin.set_faults(ReplaceBody={"Count": 1, "PathContains": "Session/Register", "Body": body})
    st.admin.invalidate_sessions()
    wait_consumed(st)
    agent_up(st, "a hostile job list")
    recovers(st, store, "a hostile job list")
    no_secrets(st)


@case
def job_configuration(run):
    """The job configuration answered with each fault kind: the job ends in Failure naming the problem."""
    st = run.stack()
    st.start()
    store = st.create_store("WinCert")
    for kind in KINDS:
        step(f"configuration -> {kind}")
        replace(st, "/Configuration", kind)
        entry = st.wait_job(st.schedule("Inventory", store), 180)
        # huge: 20 MiB is under the 64 MiB of a configuration, so it is parsed (once) and the job fails on
        # what the padded envelope lacks (a store); the others are refused as they arrive.
        job_failed_clearly(entry, f"configuration {kind}", None if kind == "huge" else
                           ["configuration", "JSON", "deeper than 64", "not usable"])
        agent_up(st, f"configuration {kind}")
    recovers(st, store, "configuration faults")
    no_secrets(st)


@case
def completion(run):
    """The completion answered with each fault kind (after command-sim recorded it): no crash, the result
    is in Command exactly once."""
    st = run.stack()
    st.start()
    store = st.create_store("WinCert")
    for kind in KINDS:
        step(f"completion -> {kind}")
        replace(st, "/Complete", kind)
        job = st.schedule("Inventory", store)
        entries = st.wait_jobs([job], 180)[job_id(job)]
        wait_consumed(st)
        agent_up(st, f"completion {kind}")
        time.sleep(2)  # a redelivery, if any, is acknowledged as a duplicate and not recorded again
        check(len(st.history_by_job()[job_id(job)]) == 1, f"completion {kind}: the result is recorded once",
              entries)
    recovers(st, store, "completion faults")
    no_secrets(st)


@case
def inventory(run):
    """The inventory update answered with each fault kind: no crash, the job still ends with a status."""
    st = run.stack()
    st.start()
    store = st.create_store("WinCert")
    for kind in KINDS:
        step(f"inventory -> {kind}")
        replace(st, "/Update", kind)
        entry = st.wait_job(st.schedule("Inventory", store), 180)
        check(entry["Result"] in ("Success", "Failure", "Warning"), f"inventory {kind}: the job ends with a status",
              entry)
        agent_up(st, f"inventory {kind}")
    recovers(st, store, "inventory faults")
    no_secrets(st)


@case
def enroll(run):
    """The CSR submission (reenrollment) answered with each fault kind: the job ends in Failure."""
    st = run.stack()
    st.start()
    store = st.create_store("WinCert")
    for kind in KINDS:
        step(f"enroll -> {kind}")
        replace(st, "/Enroll", kind)
        entry = st.wait_job(st.schedule("Reenrollment", store, Subject=f"CN=fault-{kind}.test"), 180)
        job_failed_clearly(entry, f"enroll {kind}", ["CSR", "certificate", "Certificate", "enroll", "Enroll",
                                                     "JSON", "deeper", "MiB"])
        agent_up(st, f"enroll {kind}")
    recovers(st, store, "enroll faults")
    no_secrets(st)


CommandFaults = case_tests("CommandFaults", CASES, "fault command")

if __name__ == "__main__":
    sys.exit(run_case(CommandFaults, CASES, sys.argv, __doc__))
