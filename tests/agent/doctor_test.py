#!/usr/bin/python3
"""`wincert-agent doctor` against real processes: command-sim (Basic, OAuth, HTTPS) and winhost-sim (Basic over
http with --allow-unencrypted), all on loopback with port 0.

Cases: everything OK (exit 0, every line OK, nothing registered in Command); a misspelled configuration key;
Command unreachable (refused port) and an unresolvable Command host; a wrong Command password (401); a WinRM
target refusing connections; a wrong WinRM password; HTTPS Command with an untrusted and then a trusted CA;
OAuth with a right and a wrong client secret; --target with credentials from the environment. Every run is
also checked for secrets: none of the passwords/secrets may appear in stdout or stderr (one run at trace level).

Usage: doctor_test.py WINCERT_AGENT COMMAND_SIM WINHOST_SIM [unittest arguments, e.g. DoctorTest.test_all_ok]
Runs under stdlib unittest (tests/support/wincert_testsupport.py); exits non-zero on any failure.
"""
import json
import os
import subprocess
import sys
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import wincert_testsupport as ts  # noqa: E402

COMMAND_USER, COMMAND_PASSWORD = "svc-agent", "Cmd-Doctor-Secret-71"
WINRM_USER, WINRM_PASSWORD = "admin", "WinRM-Doctor-Secret-93"
OAUTH_CLIENT, OAUTH_SECRET = "doctor-client", "OAuth-Doctor-Secret-55"
WRONG = "Wrong-Doctor-Pass-27"
SECRETS = [COMMAND_PASSWORD, WINRM_PASSWORD, OAUTH_SECRET, WRONG]
EM_DASH = "\u2014"

WORK = None  # ts.TempDir of the run (setUpClass)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def path(name):
    return WORK.join(name)


def write(name, text, mode=0o600):
    return WORK.write(name, text, mode)


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)


def start_sims(procs):
    write("users", "%s:%s\n" % (COMMAND_USER, COMMAND_PASSWORD))
    write("winrm-users", "%s:%s\n" % (WINRM_USER, WINRM_PASSWORD))
    write("oauth-clients", "%s:%s\n" % (OAUTH_CLIENT, OAUTH_SECRET))
    command = ts.command_sim(ts.ARGS.command_sim, WORK.path, "--users", path("users"), "--auto-approve",
                             name="command")
    procs.append(command.start())
    # HTTPS + OAuth: a self-signed CA and a server certificate for 127.0.0.1.
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", path("ca.key"), "-out", path("ca.pem"),
            "-days", "2", "-subj", "/CN=doctor test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", path("server.key"), "-out", path("server.csr"),
            "-subj", "/CN=127.0.0.1")
    write("san.ext", "subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", path("server.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
            "-CAcreateserial", "-out", path("server.pem"), "-days", "2", "-extfile", path("san.ext"))
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", path("other-ca.key"), "-out",
            path("other-ca.pem"), "-days", "2", "-subj", "/CN=unrelated CA")
    tls = ts.command_sim(ts.ARGS.command_sim, WORK.path, "--tls-cert", path("server.pem"), "--tls-key",
                         path("server.key"), "--users", path("users"), "--oauth-clients", path("oauth-clients"),
                         "--auth", "basic,oauth", name="tls")
    procs.append(tls.start())
    # --ps-start-ms 0: doctor's probes are not about the host's PowerShell start cost.
    winhost = ts.Server("winrm", ts.ARGS.winhost_sim,
                        ["--users", path("winrm-users"), "--allow-unencrypted", "--ps-start-ms", "0"], WORK.path)
    procs.append(winhost.start())
    return command.port, tls.port, winhost.port


def config(name, server_uri, targets, secrets, extra=None):
    """Writes NAME.json + NAME.secrets.json; returns the config path."""
    secrets_path = write(name + ".secrets.json", json.dumps(secrets))
    doc = {"AgentsServerUri": server_uri, "OrchestratorName": "doctor-test", "SecretsFile": secrets_path,
           "OutboxDirectory": path(name + "-outbox"), "DoctorTargets": targets,
           "ServerConnectTimeoutSeconds": 5, "ServerTimeoutSeconds": 10,
           "WinRM": {"ConnectTimeoutSeconds": 5, "OperationTimeoutSeconds": 5}}
    doc.update(extra or {})
    return write(name + ".json", json.dumps(doc, indent=1), 0o644)


def doctor(config_path, *args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WINCERT_")}
    env.update(env_extra or {})
    p = subprocess.run([ts.ARGS.agent, "doctor", "--config", config_path] + list(args), capture_output=True, text=True,
                       timeout=120, env=env)
    if os.environ.get("DOCTOR_TEST_VERBOSE"):
        print("$ wincert-agent doctor --config %s %s\n%s" % (os.path.basename(config_path), " ".join(args), p.stdout))
    for secret in SECRETS:
        expect(secret not in p.stdout and secret not in p.stderr, "a secret appears in the output:\n" + p.stdout + p.stderr)
    lines = [l for l in p.stdout.splitlines() if l.startswith("OK   ") or l.startswith("FAIL ")]
    for line in lines:
        if line.startswith("FAIL "):
            expect((" %s fix: " % EM_DASH) in line, "a FAIL line without a fix: " + line)
    return p.returncode, lines, p


def line_of(lines, check):
    for line in lines:
        if line[5:].startswith(check + ":"):
            return line
    raise AssertionError("no line for check '%s' in:\n%s" % (check, "\n".join(lines)))


class DoctorTest(ts.TestCase):
    """The cases share one command-sim (HTTP), one command-sim (HTTPS + OAuth) and one winhost-sim."""

    @classmethod
    def setUpClass(cls):
        # The addresses and configurations every case uses (module globals, as the cases read them).
        global WORK, command_port, uri, machine, target, good_secrets, base, good, tls_uri, token_url, oauth
        WORK = ts.TempDir("wincert-doctor-")
        cls.procs = []
        try:
            command_port, tls_port, winrm_port = start_sims(cls.procs)
        except Exception:
            cls.failed = True
            cls.tearDownClass()
            raise
        uri = "http://127.0.0.1:%d/KeyfactorAgents" % command_port
        machine = "127.0.0.1:%d" % winrm_port
        target = {"ClientMachine": machine, "WinRM Protocol": "http", "WinRM Authentication": "basic",
                  "Username": WINRM_USER, "WinRM AllowUnencrypted": True}
        good_secrets = {"Password": COMMAND_PASSWORD, "DoctorPasswords": {machine: WINRM_PASSWORD}}
        base = dict(Username=COMMAND_USER)
        good = config("good", uri, [target], good_secrets, base)
        tls_uri = "https://127.0.0.1:%d/KeyfactorAgents" % tls_port
        token_url = "https://127.0.0.1:%d/oauth/token" % tls_port
        oauth = dict(BearerTokenUrl=token_url, ClientId=OAUTH_CLIENT)

    @classmethod
    def tearDownClass(cls):
        for proc in cls.procs:
            proc.stop()
        if cls.failed:
            WORK.keep()
        WORK.close()

    def test_all_ok(self):
        code, lines, p = doctor(good)
        expect(code == 0, "exit %d:\n%s%s" % (code, p.stdout, p.stderr))
        expect(all(l.startswith("OK   ") for l in lines), p.stdout)
        for check in ("config", "secrets", "files", "outbox", "command dns", "command tcp", "command auth"):
            line_of(lines, check)
        w = line_of(lines, "winrm " + machine)
        expect("host WINHOST01" in w and "build 20348" in w, w)
        # Both execution modes were tried, and the report says which the host accepts and which the agent uses.
        expect("modes: psrp (Microsoft.PowerShell) ok, winrs ok; the agent uses psrp" in w, w)
        # The probe registered nothing and left no state behind.
        agents = json.load(urllib.request.urlopen("http://127.0.0.1:%d/admin/agents" % command_port, timeout=10))
        expect(agents == [], "doctor registered an orchestrator: %s" % agents)
        expect(not os.path.exists(path("good-outbox")), "doctor created the outbox directory")

    def test_all_ok_at_trace_level_leaks_nothing(self):
        code, lines, p = doctor(good, "--log-level", "trace")
        expect(code == 0, p.stdout + p.stderr)
        expect(len(p.stderr) > 0, "trace logging produced nothing on stderr")

    def test_bad_config_key(self):
        bad = config("badkey", uri, [target], good_secrets, dict(base, MaxConcurentJobs=4))
        code, lines, p = doctor(bad)
        expect(code == 1, "exit %d" % code)
        l = line_of(lines, "config")
        expect(l.startswith("FAIL") and "MaxConcurentJobs: unknown key" in l, l)
        expect(not any(l.startswith("OK   command") for l in lines), "network checks ran on a bad config")

    def test_bad_doctor_target_key_and_missing_secret(self):
        t = dict(target)
        t["WinRM Prot"] = "http"
        bad = config("badtarget", uri, [t], {"DoctorPasswords": {}}, base)
        code, lines, p = doctor(bad)
        expect(code == 1, "exit %d" % code)
        expect("DoctorTargets[0].WinRM Prot: unknown key" in line_of(lines, "config"), p.stdout)
        expect(line_of(lines, "secrets").startswith("FAIL") and "Password" in line_of(lines, "secrets"), p.stdout)

    def test_command_unreachable(self):
        dead = ts.refused_port()
        cfg = config("unreachable", "http://127.0.0.1:%d/KeyfactorAgents" % dead, [target], good_secrets, base)
        code, lines, p = doctor(cfg)
        expect(code == 1, "exit %d" % code)
        l = line_of(lines, "command tcp")
        expect(l.startswith("FAIL") and "connection refused to 127.0.0.1:%d" % dead in l, l)
        expect(line_of(lines, "winrm " + machine).startswith("OK"), "the WinRM check should still pass")

    def test_command_dns_failure(self):
        cfg = config("nodns", "http://no-such-host.invalid/KeyfactorAgents", [], good_secrets, base)
        code, lines, p = doctor(cfg, "--timeout", "5")
        expect(code == 1, "exit %d" % code)
        l = line_of(lines, "command dns")
        expect(l.startswith("FAIL") and "cannot resolve 'no-such-host.invalid'" in l, l)

    def test_wrong_command_password(self):
        cfg = config("wrongpw", uri, [target], {"Password": WRONG, "DoctorPasswords": {machine: WINRM_PASSWORD}}, base)
        code, lines, p = doctor(cfg)
        expect(code == 1, "exit %d" % code)
        l = line_of(lines, "command auth")
        expect(l.startswith("FAIL") and "HTTP 401" in l and COMMAND_USER in l, l)
        expect(line_of(lines, "command tcp").startswith("OK"), p.stdout)

    def test_winrm_refused(self):
        dead = ts.refused_port()
        dead_machine = "127.0.0.1:%d" % dead
        t = dict(target, ClientMachine=dead_machine)
        cfg = config("winrmrefused", uri, [t], {"Password": COMMAND_PASSWORD,
                                                "DoctorPasswords": {dead_machine: WINRM_PASSWORD}}, base)
        code, lines, p = doctor(cfg)
        expect(code == 1, "exit %d" % code)
        l = line_of(lines, "winrm " + dead_machine)
        expect(l.startswith("FAIL") and "connection refused to " + dead_machine in l and "winrm quickconfig" in l, l)
        expect(line_of(lines, "command auth").startswith("OK"), p.stdout)

    def test_winrm_wrong_password(self):
        cfg = config("winrmwrong", uri, [target], {"Password": COMMAND_PASSWORD, "DoctorPasswords": {machine: WRONG}},
                     base)
        code, lines, p = doctor(cfg)
        expect(code == 1, "exit %d" % code)
        l = line_of(lines, "winrm " + machine)
        expect(l.startswith("FAIL") and "authentication failed" in l and "HTTP 401" in l, l)

    def test_json_output(self):
        code, _, p = doctor(good, "--json")
        expect(code == 0, "exit %d:\n%s%s" % (code, p.stdout, p.stderr))
        doc = json.loads(p.stdout)  # one JSON document, nothing else on stdout
        expect(doc["status"] == "ok" and doc["checks_failed"] == 0 and doc["checks_total"] == len(doc["checks"]), doc)
        names = [c["name"] for c in doc["checks"]]
        for check in ("config", "secrets", "files", "outbox", "command dns", "command tcp", "command auth",
                      "winrm " + machine):
            expect(check in names, "no %r check in %s" % (check, names))
        for c in doc["checks"]:
            expect(set(c) == {"name", "target", "status", "detail", "hint"} and c["status"] == "ok", c)
        by_name = {c["name"]: c for c in doc["checks"]}
        expect(by_name["winrm " + machine]["target"] == machine, by_name["winrm " + machine])
        expect(by_name["command tcp"]["target"] == uri, by_name["command tcp"])
        # A failing run: same exit code as the text output, status fail, a hint on every failed check.
        cfg = config("jsonwrong", uri, [target], {"Password": COMMAND_PASSWORD, "DoctorPasswords": {machine: WRONG}},
                     base)
        code, _, p = doctor(cfg, "--json")
        expect(code == 1, "exit %d" % code)
        doc = json.loads(p.stdout)
        failed = [c for c in doc["checks"] if c["status"] == "fail"]
        expect(doc["status"] == "fail" and doc["checks_failed"] == len(failed) == 1, doc)
        expect(failed[0]["name"] == "winrm " + machine and "HTTP 401" in failed[0]["detail"] and failed[0]["hint"],
               failed[0])
        # The error the hint was chosen from: its code's name and its detail fields.
        expect(failed[0].get("error_code") == "unauthenticated" and
               failed[0].get("error_detail", {}).get("http_status") == 401, failed[0])
        # A configuration that does not load: a fail document and a note, still exit 1.
        bad = config("jsonbadkey", uri, [target], good_secrets, dict(base, MaxConcurentJobs=4))
        code, _, p = doctor(bad, "--json")
        doc = json.loads(p.stdout)
        expect(code == 1 and doc["status"] == "fail" and doc["notes"], doc)
        config_check = [c for c in doc["checks"] if c["name"] == "config"][0]
        expect(config_check["status"] == "fail" and config_check.get("error_code") == "invalid_argument", config_check)

    def test_cli_targets_from_environment(self):
        cfg = config("cli", uri, [], {"Password": COMMAND_PASSWORD}, base)
        env = {"WINCERT_DOCTOR_USER": WINRM_USER, "WINCERT_DOCTOR_PASSWORD": WINRM_PASSWORD}
        code, lines, p = doctor(cfg, "--target", machine, "--target-auth", "basic", "--target-allow-unencrypted",
                                env_extra=env)
        expect(code == 0, p.stdout + p.stderr)
        expect("host WINHOST01" in line_of(lines, "winrm " + machine), p.stdout)
        code, lines, p = doctor(cfg, "--target", machine, "--target-auth", "basic", "--target-allow-unencrypted",
                                env_extra={"WINCERT_DOCTOR_USER": WINRM_USER, "WINCERT_DOCTOR_PASSWORD": WRONG})
        expect(code == 1 and "authentication failed" in line_of(lines, "winrm " + machine), p.stdout)
        code, lines, p = doctor(cfg, "--target", machine, "--target-auth", "basic", "--target-allow-unencrypted",
                                env_extra={"WINCERT_DOCTOR_USER": WINRM_USER})
        l = line_of(lines, "winrm " + machine)
        expect(code == 1 and "no password" in l and "WINCERT_DOCTOR_PASSWORD" in l, l)
        # A JEA endpoint: PowerShell remoting to that configuration only (WinRS cannot reach it).
        code, lines, p = doctor(cfg, "--target", machine, "--target-auth", "basic", "--target-allow-unencrypted",
                                "--target-jea-endpoint", "WincertAgent", env_extra=env)
        l = line_of(lines, "winrm " + machine)
        expect(code == 0 and "psrp (WincertAgent) ok, winrs failed: not tried" in l, l)
        code, lines, p = doctor(cfg, "--target", machine, "--target-auth", "basic", "--target-allow-unencrypted",
                                "--target-jea-endpoint", "NoSuchEndpoint", env_extra=env)
        l = line_of(lines, "winrm " + machine)
        expect(code == 1 and "NoSuchEndpoint" in l, l)


    def test_https_untrusted_ca(self):
        cfg = config("tlsbad", tls_uri, [], {"Password": COMMAND_PASSWORD}, dict(base, ServerCaFile=path("other-ca.pem")))
        code, lines, p = doctor(cfg)
        expect(code == 1, "exit %d" % code)
        failing = [l for l in lines if l.startswith("FAIL")]
        expect(len(failing) == 1, p.stdout)
        l = line_of(lines, "command tls")
        expect(l.startswith("FAIL") and "not trusted" in l and "ServerCaFile" in l, l)
        # The same over OAuth: the token request meets the untrusted certificate first.
        cfg = config("tlsbad2", tls_uri, [], {"ClientSecret": OAUTH_SECRET}, dict(oauth, ServerCaFile=path("other-ca.pem")))
        code, lines, p = doctor(cfg)
        l = line_of(lines, "command oauth")
        expect(code == 1 and l.startswith("FAIL") and "not trusted" in l, l)

    def test_https_oauth_ok(self):
        cfg = config("tlsok", tls_uri, [], {"ClientSecret": OAUTH_SECRET}, dict(oauth, ServerCaFile=path("ca.pem")))
        code, lines, p = doctor(cfg)
        expect(code == 0, p.stdout + p.stderr)
        expect("verified against ServerCaFile" in line_of(lines, "command tls"), p.stdout)
        expect("token issued" in line_of(lines, "command oauth"), p.stdout)
        line_of(lines, "command auth")

    def test_oauth_wrong_secret(self):
        cfg = config("oauthbad", tls_uri, [], {"ClientSecret": WRONG}, dict(oauth, ServerCaFile=path("ca.pem")))
        code, lines, p = doctor(cfg)
        expect(code == 1, "exit %d" % code)
        l = line_of(lines, "command oauth")
        expect(l.startswith("FAIL") and "HTTP 401" in l and "ClientSecret" in l, l)


if __name__ == "__main__":
    ts.main(positional=("agent", "command_sim", "winhost_sim"), description=__doc__)
