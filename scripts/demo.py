#!/usr/bin/python3
"""The demo: wincert-agent doing a certificate administrator's day against a simulated Command and a
simulated Windows server, on loopback.

    command-sim   plays Keyfactor Command (Orchestrators API, admin API, a CA)
    winhost-sim   plays WEB01, a Windows Server 2022 with IIS (Default Web Site, Intranet), SQL Server
                  (MSSQLSERVER, SQLEXPRESS) and a few certificates, reached over real WS-Management
    wincert-agent run --config FILE, the orchestrator

Scenario: the agent registers; the administrator approves it; inventory of a WinCert, an IISU and a WinSql
store; a certificate is added with an IIS binding; it is renewed with a key generated on the host (ODKG);
the replaced certificate is removed; a last IIS inventory. Then a table of command-sim's job history.

Usage: demo.py [WINCERT_AGENT COMMAND_SIM WINHOST_SIM]   (default: build/default). Exit 0 iff every job succeeded.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "e2e"))
from stack import IIS_ENTRY, Binaries, Stack, StackError, wait_until  # noqa: E402

SITE_HOST = "shop.example.test"


def say(text=""):
    print(text, flush=True)


def host_summary(st):
    m = st.winhost.model()
    my = st.winhost.store_thumbprints("My")
    say(f"  host {m.get('hostname')} (Windows build {m.get('os_build')}): {len(my)} certificate(s) in My")
    for site in m.get("iis", {}).get("sites", []):
        for b in site.get("bindings", []):
            if b.get("protocol") == "https":
                say(f"    IIS  {site['name']:<17} https {b['binding_information']:<26} -> "
                    f"{(b.get('certificate_hash') or '-')[:12]}")
    for i in m.get("sql", {}).get("instances", []):
        say(f"    SQL  {i['name']:<17} certificate {(i.get('certificate') or '-')[:12].upper()}")


def run_jobs(st, label, jobs, timeout=120):
    """jobs: [(description, store type, job)] -> waits for all; prints one line each."""
    t0 = time.monotonic()
    done = st.wait_jobs([j for _, _, j in jobs], timeout)
    for what, store_type, job in jobs:
        entry = done[job["JobId"]][0]
        say(f"  {entry['Result']:<8} {what} ({store_type})")
    say(f"  [{label}: {len(jobs)} job(s) in {time.monotonic() - t0:.1f} s]")
    return {job["JobId"]: done[job["JobId"]][0] for _, _, job in jobs}


def main(argv):
    started = time.monotonic()
    bins = Binaries.from_args(argv[1:4])
    labels = {}  # JobId -> (what, store type)
    # ps_start_ms=None: the demo keeps winhost-sim's realistic PowerShell start cost (--ps-start-ms 250).
    with Stack(bins, agent_name="wincert-demo", agent_config={"MaxJobsPerHost": 2}, ps_start_ms=None) as st:
        say("== Starting command-sim (Keyfactor Command) and winhost-sim (a Windows server) on loopback")
        st.command.start()
        st.winhost.start()
        say(f"  command-sim  {st.command.url}")
        say(f"  winhost-sim  http://{st.winhost.client_machine()}/wsman (Basic, AllowUnencrypted)")
        host_summary(st)

        say("\n== The agent registers; the administrator approves it in Command")
        st.start(approve=False)
        agent = wait_until(lambda: next((a for a in st.admin.agents() if a["ClientMachine"] == "wincert-demo"), None),
                           60, 0.1, "the registration")
        say(f"  orchestrator 'wincert-demo' registered as {agent['AgentId']}: {agent['StatusName']}, "
            f"{len(agent.get('Capabilities') or [])} capabilities")
        approved = st.approve_agent()
        say(f"  approved: {approved['StatusName']}")

        stores = {t: st.create_store(t) for t in ("WinCert", "IISU", "WinSql")}
        say(f"  stores: WinCert, IISU and WinSql on {st.winhost.client_machine()} (StorePath My)")

        def track(what, store_type, job):
            labels[job["JobId"]] = (what, store_type)
            return (what, store_type, job)

        def schedule(what, store_type, kind, **fields):
            return track(what, store_type, st.schedule(kind, stores[store_type], **fields))

        say("\n== Inventory of the three stores")
        run_jobs(st, "inventory", [schedule("inventory", t, "Inventory") for t in stores])
        for t, s in stores.items():
            say(f"  Command now knows {len(st.admin.inventory(s['Id'])['Items'])} {t} item(s)")

        say(f"\n== Add a certificate for {SITE_HOST} with an IIS binding (https *:443:{SITE_HOST}, SNI)")
        pfx = st.make_pfx(f"CN={SITE_HOST}", sans={"dns": [SITE_HOST]})
        entry = dict(IIS_ENTRY, HostName=SITE_HOST, SniFlag="1")
        run_jobs(st, "add", [track("add + IIS binding", "IISU", st.add_pfx(stores["IISU"], pfx, entry=entry))])
        say(f"  {pfx['Thumbprint']} is now bound to Default Web Site *:443:{SITE_HOST}")

        say("\n== Renew it with a key generated on the host (reenrollment: CSR on WEB01, signed by Command's CA)")
        res = run_jobs(st, "reenrollment", [schedule("reenroll (key made on host)", "IISU", "Reenrollment",
                                                     Subject=f"CN={SITE_HOST}, O=Demo", SANs={"dns": [SITE_HOST]},
                                                     KeyType="RSA", KeySize="2048", EntryParameters=entry)])
        renewed = re.search(r"certificate ([0-9A-F]{40})", next(iter(res.values()))["Message"])
        say(f"  the binding now carries {renewed.group(1) if renewed else '(see history)'}")

        say("\n== Remove the replaced certificate, then a last IIS inventory")
        run_jobs(st, "remove", [schedule("remove replaced certificate", "WinCert", "Remove",
                                         Alias=pfx["Thumbprint"])])
        run_jobs(st, "inventory", [schedule("inventory", "IISU", "Inventory")])
        host_summary(st)

        st.agent.stop()  # graceful: the log is complete
        history = st.admin.history()
        durations = {m.group(1): int(m.group(2))
                     for m in re.finditer(r"job (\S+) end: \w+ in (\d+) ms", st.agent.log())}

        say("\n== Command's job history")
        header = f"  {'#':>2}  {'job':<29} {'store':<8} {'result':<8} {'duration':>9}  message"
        say(header)
        say("  " + "-" * (len(header) + 50))
        ok = True
        for n, h in enumerate(history, 1):
            what, store_type = labels.get(h["JobId"], (h["OperationType"].lower(), "?"))
            ms = durations.get(h["JobId"])
            duration = f"{ms} ms" if ms is not None else "-"
            message = re.sub(r"^.*?\(job [0-9a-f-]+\): ", "", h["Message"] or "")
            message = re.sub(r"\b([0-9A-F]{12})[0-9A-F]{28}\b", r"\1..", message)  # short thumbprints
            say(f"  {n:>2}  {what:<29} {store_type:<8} {h['Result']:<8} {duration:>9}  {message}")
            ok = ok and h["Result"] == "Success"
        say()
        c = st.admin.counters()
        say(f"  {len(history)} job(s), {sum(h['Result'] == 'Success' for h in history)} succeeded; "
            f"Command saw {c['Registrations']} registration(s), {c['CsrsSigned']} CSR(s) signed, "
            f"{c['InventorySubmissions']} inventory submission(s)")
        say(f"  demo finished in {time.monotonic() - started:.1f} s: {'every job succeeded' if ok else 'FAILURES'}")
        return 0 if ok and len(history) == len(labels) else 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except StackError as e:
        print(f"demo failed: {e}", file=sys.stderr)
        sys.exit(1)
