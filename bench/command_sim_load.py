#!/usr/bin/python3
"""command-sim alone under load: how many job completions per second it records.

Starts command-sim (--auto-approve, no agent authentication, --log-level warn) on a fresh --state directory,
registers one orchestrator, creates --stores stores with --jobs immediate Inventory jobs spread over them
(admin API), registers again to get the job list, fetches every job's configuration (this opens its run: a
JobHistoryId) and then posts one completion per job over --connections concurrent keep-alive connections.
Only the completion phase is timed for the headline figure; the setup phases are reported too. Every
completion must be answered with Result Status 1, and /admin/counters must show them all recorded.

The client is asyncio with plain HTTP/1.1 over keep-alive sockets (one process, light on CPU), so on a 2-core
machine most of a core is left to command-sim.

With --callgrind, command-sim runs under valgrind's callgrind with collection switched on (callgrind_control)
for the completion phase only: instructions per completion, a figure the machine's load does not move (user
space only: the kernel's share of writes and sockets is not in it). Rates under callgrind mean nothing.

Usage (repeat the figures of bench/results/command_sim_sqlite.md):
    /usr/bin/python3 bench/command_sim_load.py build/default/sim/command/command-sim --jobs 4000
    /usr/bin/python3 bench/command_sim_load.py build/default/sim/command/command-sim --jobs 300 --stores 20 --callgrind
"""
import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "support"))
import wincert_testsupport as ts  # noqa: E402

MACHINE = "bench-orchestrator"
CAPABILITIES = ["CertStores.WinCert.Inventory", "CertStores.WinCert.Management"]


class Connection:
    """One keep-alive HTTP/1.1 connection: request() sends a POST/GET and reads the whole response."""

    def __init__(self, port):
        self.port = port
        self.reader = self.writer = None

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def request(self, method, path, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n\r\n").encode()
        self.writer.write(head + data)
        status_line = await asyncio.wait_for(self.reader.readline(), 30)
        if not status_line:
            raise RuntimeError(f"{method} {path}: connection closed")
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        payload = await self.reader.readexactly(length) if length else b""
        return status, (json.loads(payload) if payload[:1] in (b"{", b"[") else payload)

    def close(self):
        if self.writer is not None:
            self.writer.close()


async def call(conn, method, path, body=None, expect=(200, 201)):
    status, answer = await conn.request(method, path, body)
    if status not in expect:
        raise RuntimeError(f"{method} {path} -> HTTP {status}: {str(answer)[:300]}")
    return answer


async def run_phase(port, connections, items, make_request, check):
    """Sends make_request(item) for every item over `connections` keep-alive connections; returns seconds."""
    queue = list(reversed(items))
    conns = [Connection(port) for _ in range(connections)]
    await asyncio.gather(*(c.open() for c in conns))

    async def worker(conn):
        while queue:
            item = queue.pop()
            method, path, body = make_request(item)
            check(item, await call(conn, method, path, body))

    begin = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - begin
    for c in conns:
        c.close()
    return elapsed


def register_body():
    return {"AgentPlatform": 1, "AgentVersion": 563031557799936, "TenantId": "00000000-0000-0000-0000-000000000000",
            "ClientMachine": MACHINE, "AgentId": "", "CSR": None, "Capabilities": CAPABILITIES,
            "ClientParameters": {}}


async def bench(port, pid, args):
    admin = Connection(port)
    await admin.open()
    figures = {}
    reg = await call(admin, "POST", "/KeyfactorAgents/Session/Register", register_body())
    agent_id = reg["Session"]["AgentId"]

    # Stores (each without a schedule) and the immediate jobs, created over the same connections.
    store_ids = []

    def store_request(i):
        return "POST", "/admin/stores", {"CertStoreType": "WinCert", "ClientMachine": f"host{i:05d}.bench.test:5985",
                                         "StorePath": "My", "AgentId": agent_id}
    figures["stores_s"] = await run_phase(port, args.connections, list(range(args.stores)), store_request,
                                          lambda i, answer: store_ids.append(answer["Id"]))

    def job_request(i):
        return "POST", "/admin/jobs", {"Type": "Inventory", "StoreId": store_ids[i % len(store_ids)]}
    figures["jobs_s"] = await run_phase(port, args.connections, list(range(args.jobs)), job_request,
                                        lambda i, answer: None)

    reg = await call(admin, "POST", "/KeyfactorAgents/Session/Register", dict(register_body(), AgentId=agent_id))
    token = reg["Session"]["Token"]
    job_ids = [j["JobId"] for j in reg["Session"]["Jobs"]]
    if len(job_ids) != args.jobs:
        raise RuntimeError(f"the registration listed {len(job_ids)} jobs, not {args.jobs}")

    runs = {}

    def config_request(job_id):
        return "POST", "/KeyfactorAgents/CertStoreInventory/Configuration", {"SessionToken": token, "JobId": job_id}

    def config_check(job_id, answer):
        runs[job_id] = answer["JobHistoryId"]
    figures["configurations_s"] = await run_phase(port, args.connections, job_ids, config_request, config_check)

    def complete_request(job_id):
        return "POST", "/KeyfactorAgents/CertStoreInventory/Complete", {
            "SessionToken": token, "JobId": job_id, "Status": 2, "JobHistoryId": runs[job_id], "Message": ""}

    def complete_check(job_id, answer):
        if answer["Result"]["Status"] != 1:
            raise RuntimeError(f"completion of {job_id}: {answer}")
    cpu_before = cpu_seconds(pid)
    if args.callgrind:
        subprocess.run(["callgrind_control", "-i", "on", str(pid)], check=True, stdout=subprocess.DEVNULL)
    figures["completions_s"] = await run_phase(port, args.connections, job_ids, complete_request, complete_check)
    if args.callgrind:
        subprocess.run(["callgrind_control", "-i", "off", str(pid)], check=True, stdout=subprocess.DEVNULL)
    figures["completion_cpu_s"] = cpu_seconds(pid) - cpu_before

    counters = await call(admin, "GET", "/admin/counters")
    if counters["CompletionsRecorded"] != args.jobs:
        raise RuntimeError(f"command-sim recorded {counters['CompletionsRecorded']} completions, not {args.jobs}")
    admin.close()
    return figures


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command_sim", help="path to the command-sim binary")
    parser.add_argument("--jobs", type=int, default=4000, help="immediate Inventory jobs, one completion each")
    parser.add_argument("--stores", type=int, default=200, help="stores the jobs are spread over")
    parser.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections")
    parser.add_argument("--extra", action="append", default=[], help="one more command-sim argument (repeatable)")
    parser.add_argument("--callgrind", action="store_true", help="count instructions per completion (valgrind)")
    parser.add_argument("--json", help="also write the figures here as JSON")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="command-sim-bench-")
    binary = os.path.abspath(args.command_sim)
    callgrind_out = os.path.join(work, "callgrind.out")
    if args.callgrind:
        # exec: valgrind keeps the pid callgrind_control is given.
        binary = os.path.join(work, "command-sim-under-callgrind")
        with open(binary, "w", encoding="utf-8") as f:
            f.write(f"#!/bin/sh\nexec valgrind --tool=callgrind --instr-atstart=no "
                    f"--callgrind-out-file={callgrind_out} {os.path.abspath(args.command_sim)} \"$@\"\n")
        os.chmod(binary, 0o755)
    server = ts.command_sim(binary, work, "--auto-approve", "--log-level", "warn",
                            "--no-invalidate-on-schedule", *args.extra)
    try:
        server.start()
        cpu_before = cpu_seconds(server.proc.pid)
        figures = asyncio.run(bench(server.port, server.proc.pid, args))
        cpu = cpu_seconds(server.proc.pid) - cpu_before
        state_bytes = sum(os.path.getsize(os.path.join(server.args[1], f)) for f in os.listdir(server.args[1]))
    except Exception:
        sys.stderr.write(server.output()[-3000:])
        raise
    finally:
        server.stop()
    instructions = None
    if args.callgrind:
        with open(callgrind_out, encoding="utf-8") as f:
            totals = [line for line in f if line.startswith("totals:") or line.startswith("summary:")]
        instructions = int(totals[-1].split()[1])
    shutil.rmtree(work, ignore_errors=True)

    n = args.jobs
    result = {
        "jobs": n, "stores": args.stores, "connections": args.connections, "extra": args.extra,
        "stores_per_s": args.stores / figures["stores_s"], "jobs_created_per_s": n / figures["jobs_s"],
        "configurations_per_s": n / figures["configurations_s"], "completions_per_s": n / figures["completions_s"],
        "command_sim_cpu_s": cpu, "cpu_us_per_completion": figures["completion_cpu_s"] / n * 1e6, "state_dir_bytes": state_bytes,
        "client_cpu_s": resource.getrusage(resource.RUSAGE_SELF).ru_utime,
    }
    if instructions is not None:
        result["instructions_per_completion"] = instructions / n
    print(f"command-sim {' '.join(args.extra) or '(defaults)'}: {n} jobs on {args.stores} stores, "
          f"{args.connections} connections")
    print(f"  stores created      {result['stores_per_s']:10.0f} /s")
    print(f"  jobs created        {result['jobs_created_per_s']:10.0f} /s")
    print(f"  configurations      {result['configurations_per_s']:10.0f} /s")
    print(f"  completions recorded{result['completions_per_s']:10.0f} /s")
    print(f"  command-sim CPU {result['cpu_us_per_completion']:.0f} us per completion, {cpu:.2f} s in all phases; "
          f"state directory {state_bytes / 1e6:.1f} MB")
    if instructions is not None:
        print(f"  callgrind: {instructions / n:,.0f} instructions per completion (user space, command-sim)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
