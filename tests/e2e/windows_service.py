#!/usr/bin/python3
"""End to end on the Windows build: wincert-agent.exe installed and started as a Windows service under Wine,
against command-sim running natively on loopback, carrying out Inventory, Add, Reenrollment and Remove jobs on a
"|LocalMachine" WinCert store (Wine's real crypt32/ncrypt), then stopped cleanly and uninstalled.

Usage: windows_service.py AGENT_EXE COMMAND_SIM WINE_RUN TEMPLATE_PREFIX
  AGENT_EXE        the Windows wincert-agent.exe
  COMMAND_SIM      the native (Linux build's) command-sim
  WINE_RUN         cmake/wine-run.sh
  TEMPLATE_PREFIX  a ready Wine prefix; it is copied, so the service and its store changes stay in this test
Exits 0 when every check holds, 1 when one fails, 77 (skipped) when command-sim has not been built.
E2E_KEEP=1 keeps the temporary directory.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stack import CommandSim, StackError, _random_secret, wait_until  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import wincert_testsupport as ts  # noqa: E402

SKIP = 77
SERVICE = "wincert-e2e"
MACHINE = "wine-host|LocalMachine"  # agent mode: the store is this machine's, reached through CryptoAPI
# Wine 8's CNG key storage provider does not persist keys (certstore/local/README.md), so the jobs name a legacy
# CSP, as a job's ProviderName entry parameter may; on Windows the default (the Software KSP) is used.
PROVIDER = {"ProviderName": "Microsoft Enhanced RSA and AES Cryptographic Provider"}


def check(condition, what, detail=None):
    if not condition:
        raise AssertionError(what + (f": {detail}" if detail is not None else ""))
    print(f"  ok  {what}", flush=True)


def step(text):
    print(f"-- {text}", flush=True)


def winpath(path):
    """A Linux path as the Windows program sees it (Wine maps / to Z:)."""
    return "Z:" + os.path.abspath(path).replace("/", "\\")


class Wine:
    def __init__(self, wine_run, prefix):
        self.wine_run, self.prefix = wine_run, prefix
        self.env = dict(os.environ, WINCERT_WINESERVER_PERSIST="60")

    def run(self, *argv, timeout=180, check_rc=True):
        t0 = time.monotonic()
        proc = subprocess.run([self.wine_run, self.prefix] + list(argv), env=self.env, capture_output=True,
                              text=True, errors="replace", timeout=timeout, stdin=subprocess.DEVNULL)
        out = (proc.stdout + proc.stderr).strip()
        print(f"     $ {' '.join(os.path.basename(a) if i == 0 else a for i, a in enumerate(argv))}"
              f"  -> {proc.returncode} ({time.monotonic() - t0:.1f} s)")
        for line in out.splitlines()[-6:]:
            print(f"       {line}")
        if check_rc and proc.returncode != 0:
            raise AssertionError(f"{argv} exited with {proc.returncode}: {out[-2000:]}")
        return proc.returncode, out

    def kill_server(self):
        env = dict(self.env, WINEPREFIX=self.prefix)
        subprocess.run(["/usr/lib/wine/wineserver", "-k"], env=env, capture_output=True, timeout=60)


def main(argv):
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    agent_exe, command_sim, wine_run, template = argv[1:5]
    if not os.access(command_sim, os.X_OK):
        print(f"SKIP: command-sim is not built at {command_sim} (build the Linux preset first)")
        return SKIP
    keep = os.environ.get("E2E_KEEP") == "1"
    workdir = tempfile.mkdtemp(prefix="wincert-winsvc-")
    prefix = os.path.join(workdir, "wineprefix")
    user, password = "KEYFACTOR\\svc-orchestrator", _random_secret("cmd-Pw")
    command = CommandSim(command_sim, workdir, user, password)
    wine = Wine(wine_run, prefix)
    log_path = os.path.join(workdir, "wincert-agent.log")  # the service's default: beside its configuration
    ok = False
    try:
        step("a Wine prefix of its own (copied from the build's) and command-sim on loopback")
        t0 = time.monotonic()
        shutil.copytree(template, prefix, symlinks=True)
        print(f"     (prefix copied in {time.monotonic() - t0:.1f} s)")
        # Every Windows machine has LocalMachine\My; a fresh Wine prefix gets it only once something is put there.
        wine.run("reg.exe", "add", "HKLM\\Software\\Microsoft\\SystemCertificates\\My\\Certificates", "/f")
        command.start()
        admin = command.admin

        config_path = os.path.join(workdir, "agent.json")
        with open(os.path.join(workdir, "agent-secrets.json"), "w", encoding="utf-8") as f:
            json.dump({"Password": password}, f)
        with open(config_path, "w", encoding="utf-8") as f:
            json.dump({
                "AgentsServerUri": command.url,
                "OrchestratorName": "wine-orchestrator",
                "Username": user,
                "SecretsFile": "agent-secrets.json",   # relative: beside the configuration
                "OutboxDirectory": "agent-state",
                "LogLevel": "debug",
                "HeartbeatIntervalSeconds": 1,
                "JobPollIntervalSeconds": 0,
                "RetryInitialSeconds": 1,
                "RetryMaxSeconds": 4,
                "ShutdownGraceSeconds": 20,
                "OutboxFlushSeconds": 10,
                "ServerConnectTimeoutSeconds": 5,
            }, f, indent=1)

        step("service install / start (the Service Control Manager of Wine starts `service run`)")
        rc, out = wine.run(agent_exe, "service", "install", "--config", winpath(config_path), "--name", SERVICE,
                           "--manual")
        check("installed service 'wincert-e2e'" in out, "service install reports the service and its command line",
              out)
        # Wine shows a file's DACL as its mode bits: with only SYSTEM, Administrators and the account left, the
        # "others" bits are gone from the configuration directory, the configuration and the secrets file.
        modes = {os.path.basename(p) or p: oct(os.stat(p).st_mode & 0o777)
                 for p in (workdir, config_path, os.path.join(workdir, "agent-secrets.json"))}
        check("restricted to SYSTEM, Administrators" in out and
              all(int(m, 8) & 0o007 == 0 for m in modes.values()),
              f"service install restricted the configuration directory and its files to their owners {modes}", out)
        rc, out = wine.run(agent_exe, "service", "start", "--name", SERVICE, "--timeout", "60")
        check("is running" in out, "service start: the SCM reports it running", out)

        def registered():
            for a in admin.agents():
                if a["ClientMachine"].lower() == "wine-orchestrator":
                    return a
            return None
        agent = wait_until(registered, 60, 0.2, "the service's orchestrator to register with command-sim")
        admin.approve(agent["AgentId"])
        wait_until(lambda: admin.agent(agent["AgentId"]).get("Status") == 2 and
                   admin.agent(agent["AgentId"]).get("Sessions", 0) >= 1, 60, 0.2, "an approved session")
        check(True, f"the service registered as {agent['AgentId']} and holds an approved session")

        # Opted in, so the Remove step below also deletes the keys the jobs made in the Wine prefix.
        store = admin.create_store("WinCert", MACHINE, "My", agent["AgentId"], {"DeletePrivateKeyOnRemove": "true"})

        def run_job(kind, **fields):
            body = {"Type": kind, "StoreId": store["Id"]}
            body.update(fields)
            job = admin.schedule(body)
            t0 = time.monotonic()

            def done():
                entries = [h for h in admin.history() if h["JobId"] == job["JobId"]]
                return entries or None
            entries = wait_until(done, 180, 0.2, f"{kind} job in command-sim's history")
            check(len(entries) == 1 and entries[0]["Result"] == "Success",
                  f"{kind}: Success in command-sim's history in {time.monotonic() - t0:.1f} s "
                  f"({entries[0]['Message'][:160]})", [(e["Result"], e["Message"]) for e in entries])
            return job

        def inventory():
            return {item["Alias"]: item for item in admin.inventory(store["Id"])["Items"]}

        step("Inventory of LocalMachine\\My through CryptoAPI")
        run_job("Inventory")
        before = inventory()
        print(f"     ({len(before)} certificate(s) in My)")

        step("Management Add: a PFX from command-sim's CA into My, key in the machine key set")
        pfx_password = _random_secret("pfx-Pw")
        pfx = admin.make_pfx("CN=wine-e2e.test", pfx_password, {"dns": ["wine-e2e.test"]})
        run_job("Add", Contents=pfx["Pfx"], PfxPassword=pfx_password, Alias=pfx["Thumbprint"], Overwrite=False,
                EntryParameters=PROVIDER)
        run_job("Inventory")
        items = inventory()
        added = pfx["Thumbprint"].upper()
        check(added in items and items[added].get("PrivateKeyEntry"),
              f"inventory has the added certificate {added} with its private key", items.get(added))

        step("Reenrollment: RSA 2048 key made in the machine key set, CSR signed by command-sim's CA")
        job = run_job("Reenrollment", Subject="CN=wine-reenroll.test, O=E2E", SANs={"dns": ["wine-reenroll.test"]},
                      KeyType="RSA", KeySize="2048", EntryParameters=PROVIDER)
        issued = [c for c in admin.certificates() if c.get("JobId") == job["JobId"]]
        check(len(issued) == 1 and "wine-reenroll.test" in issued[0].get("Subject", ""),
              "command-sim's CA issued a certificate for the job's CSR", issued)
        renewed = issued[0]["Thumbprint"].upper()
        run_job("Inventory")
        items = inventory()
        check(renewed in items and items[renewed].get("PrivateKeyEntry"),
              f"inventory has the issued certificate {renewed}, joined to the generated key", items.get(renewed))

        step("Remove both certificates (and their keys)")
        run_job("Remove", Alias=added)
        run_job("Remove", Alias=renewed)
        run_job("Inventory")
        items = inventory()
        check(added not in items and renewed not in items and set(items) == set(before),
              "the final inventory equals the first one", sorted(set(items) ^ set(before)))

        step("service stop: graceful, STOPPED with exit code 0; uninstall")
        rc, out = wine.run(agent_exe, "service", "stop", "--name", SERVICE, "--timeout", "90")
        check("stopped (exit code 0)" in out, "service stop: the agent drained and stopped with exit code 0", out)
        with open(log_path, encoding="utf-8", errors="replace") as f:
            log = f.read()
        check("stop requested" in log, "the service log (beside the configuration) records the stop request")
        check(password not in log and pfx_password not in log, "no Command or PFX password in the service log")
        outbox = os.path.join(workdir, "agent-state", "outbox")
        left = [n for n in os.listdir(outbox) if n.endswith(".entry")] if os.path.isdir(outbox) else []
        check(not left, "the outbox is empty: every result reached command-sim", left)
        c = admin.counters()
        check(c["CompletionsRejected"] == 0 and c["DuplicateCompletions"] == 0,
              f"command-sim: {c['CompletionsRecorded']} completions, none rejected or duplicated", c)
        rc, out = wine.run(agent_exe, "service", "uninstall", "--name", SERVICE)
        check("uninstalled" in out, "service uninstall", out)
        rc, out = wine.run(agent_exe, "service", "start", "--name", SERVICE, check_rc=False)
        check(rc != 0 and "no service" in out, "starting it again says it is not installed", out)
        ok = True
    except (AssertionError, StackError, subprocess.TimeoutExpired) as e:
        print(f"FAILED: {e}", flush=True)
        for path in (log_path, command.log_path):
            if os.path.exists(path):
                with open(path, encoding="utf-8", errors="replace") as f:
                    tail = f.read().splitlines()[-60:]
                print(f"----- last {len(tail)} lines of {os.path.basename(path)}")
                print("\n".join(tail))
    finally:
        try:
            command.stop(timeout=20)
        except Exception as e:  # noqa: BLE001  (cleanup goes on)
            print(f"stopping command-sim: {e}", file=sys.stderr)
        wine.kill_server()
        if keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


class WindowsServiceTest(ts.TestCase):
    def test_service_runs_jobs_under_wine(self):
        code = main([sys.argv[0]] + [ts.ARGS.agent_exe, ts.ARGS.command_sim, ts.ARGS.wine_run, ts.ARGS.template_prefix])
        if code == SKIP:
            self.skipTest("a prerequisite is missing (see the SKIP line above)")
        self.assertEqual(code, 0, "see the FAIL lines above")


if __name__ == "__main__":
    ts.main(positional=('agent_exe', 'command_sim', 'wine_run', 'template_prefix'), description=__doc__, skip_exit_code=SKIP)
