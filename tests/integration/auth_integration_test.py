#!/usr/bin/python3
"""Authentication end to end with processes: winhost-sim with its real acceptors (gss-ntlmssp, MIT GSSAPI
with a keytab from a temporary real KDC, client certificates), driven by
  1. an independent client: Debian's python3-winrm (pywinrm 0.3.0) with requests-ntlm (NTLM + message
     encryption, CBT on HTTPS), requests-kerberos, and client certificates;
  2. our CLI (wincert-agent winrm exec/ps) with --auth ntlm|kerberos|negotiate|certificate at trace log level,
     checking the one-line errors and that no secret reaches either log.

Usage: auth_integration_test.py PATH/TO/winhost-sim [PATH/TO/wincert-agent] [unittest arguments]

NTLM in python (ntlm-auth) needs MD4, which OpenSSL 3 keeps in its legacy provider: the script re-executes
itself with OPENSSL_CONF pointing at a temporary config that activates the default and legacy providers.
Runs under stdlib unittest (tests/support/wincert_testsupport.py), every check a subtest; exits non-zero on any
failure. Further arguments go to unittest.
"""
import os
import subprocess
import sys
import tempfile
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import wincert_testsupport as ts  # noqa: E402

USER_NTLM, PASSWORD_NTLM = "WINCERT\\alice", "Ntlm-Pyw1nrm-Secret"
REALM, KRB_USER, KRB_PASSWORD = "TEST.LOCAL", "alice", "Krb-Pyw1nrm-Secret"
WRONG = "Wrong-Passw0rd-77"


def reexec_with_legacy_provider():
    if os.environ.get("WINCERT_AUTH_PYWINRM_CHILD") == "1":
        return
    work = tempfile.mkdtemp(prefix="wincert-ossl-")
    conf = os.path.join(work, "openssl.cnf")
    with open(conf, "w") as f:
        f.write("openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n"
                "[provider_sect]\ndefault = default_sect\nlegacy = legacy_sect\n"
                "[default_sect]\nactivate = 1\n[legacy_sect]\nactivate = 1\n")
    env = dict(os.environ, OPENSSL_CONF=conf, WINCERT_AUTH_PYWINRM_CHILD="1")
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


reexec_with_legacy_provider()

import winrm  # noqa: E402  (after the OPENSSL_CONF re-exec)
import winrm.exceptions  # noqa: E402

try:
    import urllib3
    urllib3.disable_warnings()
except Exception:  # pragma: no cover
    pass
for _var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    os.environ.pop(_var, None)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def clean_env():
    """The environment without our OPENSSL_CONF (the openssl CLI needs its default config for req/x509)."""
    env = dict(os.environ)
    env.pop("OPENSSL_CONF", None)
    return env


def run(cmd, env=None, stdin=None):
    return ts.run(cmd, clean_env() if env is None else env, stdin)


class Sim:
    """winhost-sim on port 0 (tests/support/wincert_testsupport.py), logging at trace level to a file of its own."""

    def __init__(self, work, *args):
        self.log_path = os.path.join(work, "sim-%s.log" % uuid.uuid4().hex)
        # --ps-start-ms 0: these tests are about authentication, not the host's PowerShell start cost.
        self.server = ts.Server("winhost-sim", ts.ARGS.winhost_sim, ["--log-level", "trace", "--log-file",
                                                                     self.log_path, "--ps-start-ms", "0"] + list(args),
                                work).start()
        self.port = self.server.port

    def url(self, https=False, host="127.0.0.1"):
        return self.server.url("/wsman", "https" if https else "http", host)

    def log(self):
        return open(self.log_path, encoding="utf-8", errors="replace").read()

    def stop(self):
        self.server.stop()


def openssl_cert(work, name, cn, ca=None):
    cert, key = os.path.join(work, name + ".pem"), os.path.join(work, name + ".key")
    if ca is None:
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=" + cn,
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:TRUE",
             "-keyout", key, "-out", cert])
    else:
        csr = os.path.join(work, name + ".csr")
        run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + cn, "-keyout", key,
             "-out", csr])
        run(["openssl", "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial", "-days", "2",
             "-out", cert])
    return cert, key


def thumbprint(cert):
    out = run(["openssl", "x509", "-in", cert, "-noout", "-fingerprint", "-sha1"])
    return out.strip().split("=", 1)[1].replace(":", "")


def agent(args, password=None, extra_env=None):
    """Runs wincert-agent at trace log level; returns (exit code, stdout, stderr)."""
    env = dict(os.environ)
    env.pop("WINCERT_PW", None)
    if password is not None:
        env["WINCERT_PW"] = password
    env.update(extra_env or {})
    p = subprocess.run([ts.ARGS.agent, "winrm"] + args[:1] + ["--log-level", "trace"] + args[1:], env=env,
                       capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


CLI_LOGS = []


def cli_checks(check, work, users, cert, key, client_cert, client_key, cert_map, ca, realm, start):
    http = start("--users", users, "--auth", "ntlm,negotiate,kerberos" if realm else "ntlm,negotiate",
                 *(["--keytab", realm.keytab] if realm else []))
    https = start("--users", users, "--auth", "ntlm,negotiate,kerberos,certificate" if realm else
                  "ntlm,negotiate,certificate", "--tls-cert", cert, "--tls-key", key, "--cbt", "strict",
                  "--cert-map", cert_map, "--client-ca", ca[0], *(["--keytab", realm.keytab] if realm else []))

    def ok(name, args, password, expect_out, extra_env=None):
        @check("cli " + name)
        def _():
            rc, out, err = agent(args, password, extra_env)
            CLI_LOGS.append(err)
            expect(rc == 0 and expect_out in out, "rc=%d out=%r err=%r" % (rc, out, err[-400:]))

    def fails(name, args, password, needle, extra_env=None):
        @check("cli " + name)
        def _():
            rc, out, err = agent(args, password, extra_env)
            CLI_LOGS.append(err)
            last = [l for l in err.splitlines() if l.startswith("wincert-agent: ")]
            expect(rc == 255 and last, "rc=%d err=%r" % (rc, err[-400:]))
            expect(needle in last[-1], "error line %r lacks %r" % (last[-1], needle))

    ntlm = ["--auth", "ntlm", "--user", USER_NTLM, "--password-env", "WINCERT_PW"]
    ok("ntlm http exec", ["exec", "--endpoint", http.url(host="localhost")] + ntlm + ["--", "echo", "cli-ntlm"],
       PASSWORD_NTLM, "cli-ntlm")
    ok("ntlm http ps echo script", ["ps", "--endpoint", http.url(host="localhost")] + ntlm +
       ["--command", "# wincert-op: echo\n", "--args-json", '{"via":"cli"}'], PASSWORD_NTLM, "cli")
    ok("ntlm https strict cbt", ["exec", "--endpoint", https.url(True, "localhost"), "--ca-file", cert] + ntlm +
       ["--", "echo", "cli-cbt"], PASSWORD_NTLM, "cli-cbt")
    fails("ntlm wrong password", ["exec", "--endpoint", http.url(host="localhost")] + ntlm + ["--", "echo", "x"],
          WRONG, "authentication failed for WINCERT\\alice at localhost:%d" % http.port)
    ok("certificate https", ["exec", "--endpoint", https.url(True, "localhost"), "--ca-file", cert, "--auth",
                             "certificate", "--client-cert", client_cert, "--client-key", client_key, "--",
                             "echo", "cli-cert"], None, "cli-cert")
    fails("certificate over http refused", ["exec", "--endpoint", http.url(host="localhost"), "--auth", "certificate",
                                            "--client-cert", client_cert, "--client-key", client_key, "--", "echo",
                                            "x"], None, "needs https")
    if realm:
        user = "%s@%s" % (KRB_USER, REALM)
        krb = ["--user", user, "--password-env", "WINCERT_PW"]
        for scheme in ("kerberos", "negotiate"):
            ok(scheme + " http password", ["exec", "--endpoint", http.url(host="localhost"), "--auth", scheme] + krb +
               ["--", "echo", "cli-" + scheme], KRB_PASSWORD, "cli-" + scheme)
            ok(scheme + " https ccache", ["exec", "--endpoint", https.url(True, "localhost"), "--ca-file", cert,
                                          "--auth", scheme, "--", "echo", "cc-" + scheme], None, "cc-" + scheme)
        fails("kerberos wrong password", ["exec", "--endpoint", http.url(host="localhost"), "--auth", "kerberos"] +
              krb + ["--", "echo", "x"], WRONG, "refused the password")
        fails("kerberos unknown user", ["exec", "--endpoint", http.url(host="localhost"), "--auth", "kerberos",
                                        "--user", "nobody@" + REALM, "--password-env", "WINCERT_PW", "--", "echo",
                                        "x"], WRONG, "unknown to the KDC")
        fails("kerberos wrong spn (IP address)", ["exec", "--endpoint", http.url(host="127.0.0.1"), "--auth",
                                                  "kerberos"] + krb + ["--", "echo", "x"], KRB_PASSWORD,
              "no service principal HTTP/127.0.0.1")
        fails("kerberos spn-with-port not registered", ["exec", "--endpoint", http.url(host="localhost"), "--auth",
                                                        "kerberos", "--spn-with-port"] + krb + ["--", "echo", "x"],
              KRB_PASSWORD, "HTTP/localhost:%d" % http.port)
        closed = os.path.join(work, "closed-krb5.conf")
        with open(realm.conf) as f:
            text = f.read().replace("127.0.0.1:%d" % realm.port, "127.0.0.1:9")
        with open(closed, "w") as f:
            f.write(text)
        fails("kerberos kdc unreachable", ["exec", "--endpoint", http.url(host="localhost"), "--auth", "kerberos"] +
              krb + ["--", "echo", "x"], KRB_PASSWORD, "cannot reach a KDC", {"KRB5_CONFIG": closed})
        ntlm_only = start("--users", users, "--auth", "ntlm")
        fails("server without the scheme", ["exec", "--endpoint", ntlm_only.url(host="localhost"), "--auth",
                                            "kerberos"] + krb + ["--", "echo", "x"], KRB_PASSWORD,
              "does not offer Kerberos")

    @check("cli: no secret in the client's trace logs")
    def _():
        expect(CLI_LOGS, "no client logs captured")
        text = "\n".join(CLI_LOGS)
        expect("trace" in text or "debug" in text, "the client logged nothing at trace level")
        for secret in (PASSWORD_NTLM, WRONG, KRB_PASSWORD):
            expect(secret not in text, "a password leaked into the client log")
        expect("TlRMTVNTUA" not in text, "an NTLM token leaked into the client log")


class AuthIntegrationTest(ts.TestCase):
    """One run: the sims, the realm and the CLI checks build on each other; every check is a subtest."""

    @classmethod
    def setUpClass(cls):
        cls.work = ts.TempDir("wincert-auth-pywinrm-")

    @classmethod
    def tearDownClass(cls):
        if cls.failed:
            cls.work.keep()
        cls.work.close()

    def test_authentication_end_to_end(self):
        self.run_checks(ts.checks(self), self.work.path)

    def run_checks(self, check, work):
        users = os.path.join(work, "users")
        with open(users, "w") as f:
            f.write("WINCERT:alice:%s\n" % PASSWORD_NTLM)
        cert, key = openssl_cert(work, "server", "localhost")
        ca = openssl_cert(work, "clientca", "Test Client CA")
        client_cert, client_key = openssl_cert(work, "client", "alice-client", ca=ca)
        cert_map = os.path.join(work, "certmap.json")
        with open(cert_map, "w") as f:
            f.write('{"%s": "WINCERT\\\\alice"}\n' % thumbprint(client_cert))
        sims = []
        realm = None

        def start(*args):
            s = Sim(work, *args)
            sims.append(s)
            return s

        try:
            http = start("--users", users, "--auth", "ntlm,negotiate")

            @check("ntlm http message_encryption=always: run_cmd + run_ps")
            def _():
                s = winrm.Session(http.url(), auth=(USER_NTLM, PASSWORD_NTLM), transport="ntlm",
                                  message_encryption="always")
                r = s.run_cmd("echo", ["hello", "ntlm"])
                expect(r.status_code == 0 and r.std_out == b"hello ntlm\r\n", "echo: %r" % (r.std_out,))
                r = s.run_ps("Write-Output 'ps over ntlm'")
                expect(r.status_code == 0 and b"ps over ntlm" in r.std_out, "run_ps: %r %r" % (r.std_out, r.std_err))

            @check("ntlm http message_encryption=auto encrypts too (http)")
            def _():
                s = winrm.Session(http.url(), auth=(USER_NTLM, PASSWORD_NTLM), transport="ntlm")
                expect(s.run_cmd("echo", ["auto"]).std_out == b"auto\r\n", "echo auto")

            @check("ntlm http message_encryption=never is refused (AllowUnencrypted=false)")
            def _():
                s = winrm.Session(http.url(), auth=(USER_NTLM, PASSWORD_NTLM), transport="ntlm",
                                  message_encryption="never")
                try:
                    s.run_cmd("echo", ["clear"])
                except (winrm.exceptions.WinRMTransportError, winrm.exceptions.WinRMError) as e:
                    expect("400" in str(e) or "401" in str(e), "unexpected error %s" % e)
                    return
                raise AssertionError("a clear SOAP body on HTTP was accepted")

            @check("ntlm wrong password is refused")
            def _():
                s = winrm.Session(http.url(), auth=(USER_NTLM, WRONG), transport="ntlm")
                try:
                    s.run_cmd("echo", ["x"])
                except winrm.exceptions.InvalidCredentialsError:
                    return
                raise AssertionError("wrong password accepted")

            https = start("--users", users, "--auth", "ntlm,negotiate,certificate", "--tls-cert", cert, "--tls-key", key,
                          "--cbt", "strict", "--cert-map", cert_map, "--client-ca", ca[0])

            @check("ntlm https with channel binding (--cbt strict)")
            def _():
                s = winrm.Session(https.url(True), auth=(USER_NTLM, PASSWORD_NTLM), transport="ntlm",
                                  server_cert_validation="ignore")
                expect(s.run_cmd("echo", ["cbt"]).std_out == b"cbt\r\n", "echo over https")

            @check("client certificate over https")
            def _():
                s = winrm.Session(https.url(True), auth=("", ""), transport="certificate", cert_pem=client_cert,
                                  cert_key_pem=client_key, server_cert_validation="ignore")
                r = s.run_cmd("echo", ["cert"])
                expect(r.std_out == b"cert\r\n", "echo with a client certificate: %r" % (r.std_out,))

            @check("client certificate not in the map is refused")
            def _():
                other_cert, other_key = openssl_cert(work, "stranger", "stranger", ca=ca)
                s = winrm.Session(https.url(True), auth=("", ""), transport="certificate", cert_pem=other_cert,
                                  cert_key_pem=other_key, server_cert_validation="ignore")
                try:
                    s.run_cmd("echo", ["x"])
                except winrm.exceptions.InvalidCredentialsError:
                    return
                raise AssertionError("an unmapped certificate was accepted")

            try:
                realm = ts.Realm(work, REALM, {KRB_USER: KRB_PASSWORD})
                realm.export()
                realm.kinit()
            except Exception as e:  # noqa: BLE001
                realm = None
                print("SKIP kerberos checks: cannot start a KDC: %s" % e, flush=True)
            if realm:
                krb_https = start("--auth", "kerberos,negotiate", "--keytab", realm.keytab, "--tls-cert", cert,
                                  "--tls-key", key, "--cbt", "relaxed")

                @check("kerberos https (requests-kerberos, mutual auth, --cbt relaxed)")
                def _():
                    s = winrm.Session(krb_https.url(True, "localhost"), auth=(None, None), transport="kerberos",
                                      server_cert_validation="ignore")
                    expect(s.run_cmd("echo", ["krb"]).std_out == b"krb\r\n", "echo over kerberos")

                krb_strict = start("--auth", "kerberos,negotiate", "--keytab", realm.keytab, "--tls-cert", cert,
                                   "--tls-key", key, "--cbt", "strict")

                @check("kerberos https --cbt strict: Debian's pykerberos sends no channel binding, so it is refused")
                def _():
                    import kerberos
                    expect(not hasattr(kerberos, "channelBindings"),
                           "pykerberos gained channelBindings: turn this into a success check")
                    try:
                        winrm.Session(krb_strict.url(True, "localhost"), auth=(None, None), transport="kerberos",
                                      server_cert_validation="ignore").run_cmd("echo", ["x"])
                        raise AssertionError("a Kerberos client without channel binding passed --cbt strict")
                    except winrm.exceptions.InvalidCredentialsError:
                        pass

                krb_http = start("--auth", "kerberos,negotiate", "--keytab", realm.keytab)

                @check("kerberos http: Debian's pykerberos cannot encrypt, so the sim refuses clear SOAP")
                def _():
                    import kerberos  # the C module requests-kerberos uses
                    expect(not hasattr(kerberos, "authGSSWinRMEncryptMessage"),
                           "pykerberos gained WinRM encryption: turn this into a success check")
                    try:
                        winrm.Session(krb_http.url(False, "localhost"), auth=(None, None), transport="kerberos",
                                      message_encryption="always").run_cmd("echo", ["x"])
                        raise AssertionError("message_encryption=always did not fail")
                    except winrm.exceptions.WinRMError as e:
                        expect("does not support" in str(e), str(e))
                    try:
                        winrm.Session(krb_http.url(False, "localhost"), auth=(None, None),
                                      transport="kerberos").run_cmd("echo", ["x"])
                        raise AssertionError("clear SOAP over HTTP after Kerberos was accepted")
                    except winrm.exceptions.WinRMTransportError as e:
                        expect("400" in str(e), str(e))

            if ts.ARGS.agent:
                cli_checks(check, work, users, cert, key, client_cert, client_key, cert_map, ca, realm, start)

            @check("no password in the sims' trace logs")
            def _():
                for s in sims:
                    text = s.log()
                    for secret in (PASSWORD_NTLM, WRONG, KRB_PASSWORD):
                        expect(secret not in text, "a password leaked into %s" % s.log_path)
                    expect("TlRMTVNTUA" not in text, "an NTLM token leaked into %s" % s.log_path)
        finally:
            for s in sims:
                s.stop()
            if realm:
                realm.stop()


if __name__ == "__main__":
    ts.main(positional=("winhost_sim",), optional=("agent",), description=__doc__)
