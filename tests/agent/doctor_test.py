#!/usr/bin/python3
"""`wincert-agent doctor` against real processes: command-sim (Basic, OAuth, HTTPS) and winhost-sim (Basic over
http with --allow-unencrypted), all on loopback with port 0.

Cases: everything OK (exit 0, every line OK, nothing registered in Command); a misspelled configuration key;
Command unreachable (refused port) and an unresolvable Command host; a wrong Command password (401); a WinRM
target refusing connections; a wrong WinRM password; HTTPS Command with an untrusted and then a trusted CA;
OAuth with a right and a wrong client secret; --target with credentials from the environment. Every run is
also checked for secrets: none of the passwords/secrets may appear in stdout or stderr (one run at trace level).

Usage: doctor_test.py WINCERT_AGENT COMMAND_SIM WINHOST_SIM
Prints one line per case and "N passed, M failed"; exits non-zero on any failure.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

AGENT, COMMAND_SIM, WINHOST_SIM = sys.argv[1:4]

COMMAND_USER, COMMAND_PASSWORD = "svc-agent", "Cmd-Doctor-Secret-71"
WINRM_USER, WINRM_PASSWORD = "admin", "WinRM-Doctor-Secret-93"
OAUTH_CLIENT, OAUTH_SECRET = "doctor-client", "OAuth-Doctor-Secret-55"
WRONG = "Wrong-Doctor-Pass-27"
SECRETS = [COMMAND_PASSWORD, WINRM_PASSWORD, OAUTH_SECRET, WRONG]
EM_DASH = "\u2014"

results = {"passed": 0, "failed": 0}


def case(fn):
    try:
        fn()
        results["passed"] += 1
        print("PASS %s" % fn.__name__, flush=True)
    except Exception as e:  # noqa: BLE001
        results["failed"] += 1
        print("FAIL %s: %s" % (fn.__name__, e), flush=True)
        traceback.print_exc(limit=4, file=sys.stdout)
    return fn


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


class Proc:
    """A child on port 0; its port is read from --port-file."""

    def __init__(self, argv, port_file, log, env=None):
        self.log = open(log, "w")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.p.poll() is not None:
                raise RuntimeError("%s exited with %s: %s" % (argv[0], self.p.returncode, open(log).read()))
            if os.path.exists(port_file) and open(port_file).read().strip():
                self.port = int(open(port_file).read().split()[0])
                return
            time.sleep(0.05)
        raise RuntimeError("%s did not write %s" % (argv[0], port_file))

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


WORK = tempfile.mkdtemp(prefix="wincert-doctor-")
procs = []


def path(name):
    return os.path.join(WORK, name)


def write(name, text, mode=0o600):
    with open(path(name), "w") as f:
        f.write(text)
    os.chmod(path(name), mode)
    return path(name)


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)


def start_sims():
    write("users", "%s:%s\n" % (COMMAND_USER, COMMAND_PASSWORD))
    write("winrm-users", "%s:%s\n" % (WINRM_USER, WINRM_PASSWORD))
    write("oauth-clients", "%s:%s\n" % (OAUTH_CLIENT, OAUTH_SECRET))
    command = Proc([COMMAND_SIM, "--listen", "127.0.0.1:0", "--port-file", path("command.port"), "--state",
                    path("command-state"), "--users", path("users"), "--auto-approve"],
                   path("command.port"), path("command.log"))
    procs.append(command)
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
    tls = Proc([COMMAND_SIM, "--listen", "127.0.0.1:0", "--port-file", path("tls.port"), "--state",
                path("tls-state"), "--tls-cert", path("server.pem"), "--tls-key", path("server.key"),
                "--users", path("users"), "--oauth-clients", path("oauth-clients"), "--auth", "basic,oauth"],
               path("tls.port"), path("tls.log"))
    procs.append(tls)
    winhost = Proc([WINHOST_SIM, "--listen", "127.0.0.1:0", "--port-file", path("winrm.port"), "--users",
                    path("winrm-users"), "--allow-unencrypted"], path("winrm.port"), path("winrm.log"))
    procs.append(winhost)
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
    p = subprocess.run([AGENT, "doctor", "--config", config_path] + list(args), capture_output=True, text=True,
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


def main():
    command_port, tls_port, winrm_port = start_sims()
    uri = "http://127.0.0.1:%d/KeyfactorAgents" % command_port
    machine = "127.0.0.1:%d" % winrm_port
    target = {"ClientMachine": machine, "WinRM Protocol": "http", "WinRM Authentication": "basic",
              "Username": WINRM_USER, "WinRM AllowUnencrypted": True}
    good_secrets = {"Password": COMMAND_PASSWORD, "DoctorPasswords": {machine: WINRM_PASSWORD}}
    base = dict(Username=COMMAND_USER)
    good = config("good", uri, [target], good_secrets, base)

    @case
    def all_ok():
        code, lines, p = doctor(good)
        expect(code == 0, "exit %d:\n%s%s" % (code, p.stdout, p.stderr))
        expect(all(l.startswith("OK   ") for l in lines), p.stdout)
        for check in ("config", "secrets", "files", "outbox", "command dns", "command tcp", "command auth"):
            line_of(lines, check)
        w = line_of(lines, "winrm " + machine)
        expect("host WINHOST01" in w and "build 20348" in w, w)
        # The probe registered nothing and left no state behind.
        agents = json.load(urllib.request.urlopen("http://127.0.0.1:%d/admin/agents" % command_port, timeout=10))
        expect(agents == [], "doctor registered an orchestrator: %s" % agents)
        expect(not os.path.exists(path("good-outbox")), "doctor created the outbox directory")

    @case
    def all_ok_at_trace_level_leaks_nothing():
        code, lines, p = doctor(good, "--log-level", "trace")
        expect(code == 0, p.stdout + p.stderr)
        expect(len(p.stderr) > 0, "trace logging produced nothing on stderr")

    @case
    def bad_config_key():
        bad = config("badkey", uri, [target], good_secrets, dict(base, MaxConcurentJobs=4))
        code, lines, p = doctor(bad)
        expect(code == 1, "exit %d" % code)
        l = line_of(lines, "config")
        expect(l.startswith("FAIL") and "MaxConcurentJobs: unknown key" in l, l)
        expect(not any(l.startswith("OK   command") for l in lines), "network checks ran on a bad config")

    @case
    def bad_doctor_target_key_and_missing_secret():
        t = dict(target)
        t["WinRM Prot"] = "http"
        bad = config("badtarget", uri, [t], {"DoctorPasswords": {}}, base)
        code, lines, p = doctor(bad)
        expect(code == 1, "exit %d" % code)
        expect("DoctorTargets[0].WinRM Prot: unknown key" in line_of(lines, "config"), p.stdout)
        expect(line_of(lines, "secrets").startswith("FAIL") and "Password" in line_of(lines, "secrets"), p.stdout)

    @case
    def command_unreachable():
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
        s.close()  # nothing listens there now
        cfg = config("unreachable", "http://127.0.0.1:%d/KeyfactorAgents" % dead, [target], good_secrets, base)
        code, lines, p = doctor(cfg)
        expect(code == 1, "exit %d" % code)
        l = line_of(lines, "command tcp")
        expect(l.startswith("FAIL") and "connection refused to 127.0.0.1:%d" % dead in l, l)
        expect(line_of(lines, "winrm " + machine).startswith("OK"), "the WinRM check should still pass")

    @case
    def command_dns_failure():
        cfg = config("nodns", "http://no-such-host.invalid/KeyfactorAgents", [], good_secrets, base)
        code, lines, p = doctor(cfg, "--timeout", "5")
        expect(code == 1, "exit %d" % code)
        l = line_of(lines, "command dns")
        expect(l.startswith("FAIL") and "cannot resolve 'no-such-host.invalid'" in l, l)

    @case
    def wrong_command_password():
        cfg = config("wrongpw", uri, [target], {"Password": WRONG, "DoctorPasswords": {machine: WINRM_PASSWORD}}, base)
        code, lines, p = doctor(cfg)
        expect(code == 1, "exit %d" % code)
        l = line_of(lines, "command auth")
        expect(l.startswith("FAIL") and "HTTP 401" in l and COMMAND_USER in l, l)
        expect(line_of(lines, "command tcp").startswith("OK"), p.stdout)

    @case
    def winrm_refused():
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
        s.close()
        dead_machine = "127.0.0.1:%d" % dead
        t = dict(target, ClientMachine=dead_machine)
        cfg = config("winrmrefused", uri, [t], {"Password": COMMAND_PASSWORD,
                                                "DoctorPasswords": {dead_machine: WINRM_PASSWORD}}, base)
        code, lines, p = doctor(cfg)
        expect(code == 1, "exit %d" % code)
        l = line_of(lines, "winrm " + dead_machine)
        expect(l.startswith("FAIL") and "connection refused to " + dead_machine in l and "winrm quickconfig" in l, l)
        expect(line_of(lines, "command auth").startswith("OK"), p.stdout)

    @case
    def winrm_wrong_password():
        cfg = config("winrmwrong", uri, [target], {"Password": COMMAND_PASSWORD, "DoctorPasswords": {machine: WRONG}},
                     base)
        code, lines, p = doctor(cfg)
        expect(code == 1, "exit %d" % code)
        l = line_of(lines, "winrm " + machine)
        expect(l.startswith("FAIL") and "authentication failed" in l and "HTTP 401" in l, l)

    @case
    def json_output():
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

    @case
    def cli_targets_from_environment():
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

    tls_uri = "https://127.0.0.1:%d/KeyfactorAgents" % tls_port
    token_url = "https://127.0.0.1:%d/oauth/token" % tls_port
    oauth = dict(BearerTokenUrl=token_url, ClientId=OAUTH_CLIENT)

    @case
    def https_untrusted_ca():
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

    @case
    def https_oauth_ok():
        cfg = config("tlsok", tls_uri, [], {"ClientSecret": OAUTH_SECRET}, dict(oauth, ServerCaFile=path("ca.pem")))
        code, lines, p = doctor(cfg)
        expect(code == 0, p.stdout + p.stderr)
        expect("verified against ServerCaFile" in line_of(lines, "command tls"), p.stdout)
        expect("token issued" in line_of(lines, "command oauth"), p.stdout)
        line_of(lines, "command auth")

    @case
    def oauth_wrong_secret():
        cfg = config("oauthbad", tls_uri, [], {"ClientSecret": WRONG}, dict(oauth, ServerCaFile=path("ca.pem")))
        code, lines, p = doctor(cfg)
        expect(code == 1, "exit %d" % code)
        l = line_of(lines, "command oauth")
        expect(l.startswith("FAIL") and "HTTP 401" in l and "ClientSecret" in l, l)


try:
    main()
except Exception as e:  # noqa: BLE001
    results["failed"] += 1
    print("FAIL setup: %s" % e, flush=True)
    traceback.print_exc(file=sys.stdout)
finally:
    for proc in procs:
        proc.stop()
    if results["failed"] == 0:
        shutil.rmtree(WORK, ignore_errors=True)
    else:
        print("work directory kept: " + WORK)
print("%d passed, %d failed" % (results["passed"], results["failed"]))
sys.exit(1 if results["failed"] else 0)
