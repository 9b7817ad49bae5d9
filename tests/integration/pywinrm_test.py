#!/usr/bin/python3
"""Cross-checks winhost-sim against an independent WinRM client: Debian's python3-winrm (pywinrm).

Usage: pywinrm_test.py PATH/TO/winhost-sim [FIXTURES_DIR] [unittest arguments]

Starts the simulator on 127.0.0.1 (port 0, --port-file), over HTTPS (certificate made here with the openssl
CLI) and over plain HTTP, and drives it with winrm.Session (run_cmd, run_ps) and winrm.Protocol.
Runs under stdlib unittest (tests/support/wincert_testsupport.py): one test per simulator, its checks as
subtests; exits non-zero on any failure.
"""
import base64
import json
import os
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET

import winrm
import winrm.exceptions
import xmltodict

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import wincert_testsupport as ts  # noqa: E402

try:
    import urllib3
    urllib3.disable_warnings()
except Exception:  # pragma: no cover - only silences InsecureRequestWarning
    pass

# pywinrm 0.3.0 lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override server_cert_validation='ignore'; the
# validated check below passes ca_trust_path explicitly instead.
for _var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    os.environ.pop(_var, None)

USER, PASSWORD = "vagrant", "Passw0rd!"


def fixtures():
    return ts.ARGS.fixtures or os.path.join(ts.SHARED_DIR, "fixtures")


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


class Sim:
    """winhost-sim on port 0 (tests/support/wincert_testsupport.py), its log in a file of its own so that its
    output is the counters line it prints on SIGTERM."""

    def __init__(self, work, *args):
        self.counters = None
        log_file = work.join("sim-%s.log" % uuid.uuid4().hex)
        self.server = ts.winhost_sim(ts.ARGS.winhost_sim, work.path, "--log-level", "debug", "--log-file", log_file,
                                     *args).start()
        self.port = self.server.port
        self.status = self.server.status

    def stop(self):
        """SIGTERM; returns the counters line the sim prints on exit (None if it printed none)."""
        if not self.server.running():
            return self.counters
        self.server.stop()
        lines = [l for l in self.server.output().splitlines() if l.startswith("{")]
        self.counters = json.loads(lines[-1]) if lines else None
        return self.counters


def clixml_errors(stderr_bytes):
    """Error text of a CLIXML stderr stream (pypsrp's sanitise_clixml rules: S nodes with S="Error")."""
    text = stderr_bytes.decode("utf-8")
    expect(text.startswith("#< CLIXML\r\n"), "stderr is not CLIXML: %r" % text[:80])
    root = ET.fromstring(text[len("#< CLIXML\r\n"):])
    ns = "{http://schemas.microsoft.com/powershell/2004/04}"
    parts = [s.text or "" for s in root.iter(ns + "S") if s.get("S") == "Error"]
    return "".join(parts).replace("_x000D__x000A_", "\n")


def encoded_ps(script):
    return "powershell -encodedcommand %s" % base64.b64encode(script.encode("utf_16_le")).decode("ascii")


def send_stdin(protocol, shell_id, command_id, data, end=True):
    """WinRS Send through Protocol.send_message (pywinrm 0.3 has no send helper)."""
    req = {"env:Envelope": protocol._get_soap_header(
        resource_uri="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd",
        action="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send",
        shell_id=shell_id)}
    stream = req["env:Envelope"].setdefault("env:Body", {}).setdefault("rsp:Send", {}).setdefault("rsp:Stream", {})
    stream["@Name"] = "stdin"
    stream["@CommandId"] = command_id
    if end:
        stream["@End"] = "true"
    stream["#text"] = base64.b64encode(data).decode("ascii")
    return protocol.send_message(xmltodict.unparse(req))


class PywinrmTest(ts.TestCase):
    """Each test starts its own winhost-sim; the checks of one test are subtests (all run, each reported)."""

    @classmethod
    def setUpClass(cls):
        cls.work = ts.TempDir("winhost-pywinrm-")
        cls.users = cls.work.write("users", "%s:%s\nDOMAIN:alice:s3cret\n" % (USER, PASSWORD))
        cls.cert, cls.key = cls.work.join("cert.pem"), cls.work.join("key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", cls.key, "-out",
                        cls.cert, "-days", "2", "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @classmethod
    def tearDownClass(cls):
        if cls.failed:
            cls.work.keep()
        cls.work.close()

    def sim(self, *args):
        """A winhost-sim for this test, stopped at its end (stop() earlier returns its counters)."""
        sim = Sim(self.work, *args)
        self.addCleanup(sim.stop)
        return sim

    def test_basic_over_https(self):
        users, cert, key = self.users, self.cert, self.key
        sim = self.sim("--users", users, "--tls-cert", cert, "--tls-key", key)
        url = "https://127.0.0.1:%d/wsman" % sim.port
        session = winrm.Session(url, auth=(USER, PASSWORD), transport="ssl", server_cert_validation="ignore")

        with self.subTest("https run_cmd echo"):
            r = session.run_cmd("echo", ["hello", "world"])
            expect(r.status_code == 0, "exit %s" % r.status_code)
            expect(r.std_out == b"hello world\r\n", "stdout %r" % r.std_out)
            expect(r.std_err == b"", "stderr %r" % r.std_err)

        with self.subTest("https run_cmd exit codes"):
            expect(session.run_cmd("exit 3").status_code == 3, "exit 3")
            expect(session.run_cmd("cmd", ["/c", "exit", "5"]).status_code == 5, "cmd /c exit 5")
            expect(session.run_cmd("cmd /c exit 0").status_code == 0, "cmd /c exit 0")

        with self.subTest("https run_cmd stderr and exit code (as recorded in test_winrs_stderr_rc.yml)"):
            r = session.run_cmd("cmd.exe", ["/c echo out && echo err>&2 && exit 1"])
            expect(r.std_out == b"out \r\n", "stdout %r" % r.std_out)
            expect(r.std_err == b"err \r\n", "stderr %r" % r.std_err)
            expect(r.status_code == 1, "exit %s" % r.status_code)

        with self.subTest("https unknown command gives the cmd.exe error"):
            r = session.run_cmd("no-such-tool", ["--x"])
            expect(r.status_code == 1, "exit %s" % r.status_code)
            expect(r.std_err == b"'no-such-tool' is not recognized as an internal or external command,\r\n"
                                b"operable program or batch file.\r\n", "stderr %r" % r.std_err)

        with self.subTest("https CA-validated TLS with ca_trust_path"):
            validated = winrm.Session("https://localhost:%d/wsman" % sim.port, auth=(USER, PASSWORD), transport="ssl",
                                      ca_trust_path=cert)
            expect(validated.run_cmd("echo", ["tls"]).std_out == b"tls\r\n", "validated echo")

        with self.subTest("https Protocol: codepage 65001 unicode, environment, working directory"):
            p = winrm.Protocol(url, transport="ssl", username=USER, password=PASSWORD, server_cert_validation="ignore")
            shell = p.open_shell(codepage=65001, env_vars={"WINCERT_VAR": "from pywinrm"}, working_directory="C:\\temp")
            try:
                cid = p.run_command(shell, "echo", ["caf\u00e9 \u2603 \u3053\u3093\u306b\u3061\u306f"])
                out, err, rc = p.get_command_output(shell, cid)
                p.cleanup_command(shell, cid)
                expect(out == "caf\u00e9 \u2603 \u3053\u3093\u306b\u3061\u306f\r\n".encode("utf-8"), "stdout %r" % out)
                expect(rc == 0 and err == b"", "rc %s err %r" % (rc, err))
                cid = p.run_command(shell, "set", ["WINCERT"])
                out, err, rc = p.get_command_output(shell, cid)
                p.cleanup_command(shell, cid)
                expect(out == b"WINCERT_VAR=from pywinrm\r\n", "set %r" % out)
                cid = p.run_command(shell, "cd")
                out, _, _ = p.get_command_output(shell, cid)
                p.cleanup_command(shell, cid)
                expect(out == b"C:\\temp\r\n", "cd %r" % out)
            finally:
                p.close_shell(shell)

        with self.subTest("https codepage 437 (pywinrm default) cannot show non-ASCII"):
            r = session.run_cmd("echo", ["caf\u00e9"])
            expect(r.std_out == b"caf?\r\n", "stdout %r" % r.std_out)

        with self.subTest("https stdin via Protocol.send_message (findstr copies stdin)"):
            p = winrm.Protocol(url, transport="ssl", username=USER, password=PASSWORD, server_cert_validation="ignore")
            shell = p.open_shell()
            try:
                cid = p.run_command(shell, 'findstr "^"', console_mode_stdin=False)
                send_stdin(p, shell, cid, b"first line\r\nsecond", end=False)
                send_stdin(p, shell, cid, b" line\n", end=True)
                out, err, rc = p.get_command_output(shell, cid)
                p.cleanup_command(shell, cid)
                expect(out == b"first line\r\nsecond line\r\n", "stdout %r" % out)
                expect(rc == 0, "rc %s" % rc)
            finally:
                p.close_shell(shell)

        with self.subTest("https run_ps Write-Output"):
            r = session.run_ps("$ProgressPreference = 'SilentlyContinue'\nWrite-Output 'hello from ps'")
            expect(r.status_code == 0, "exit %s" % r.status_code)
            expect(r.std_out == b"hello from ps\r\n", "stdout %r" % r.std_out)

        with self.subTest("https run_ps exit N"):
            r = session.run_ps("Write-Host 'bye'; exit 7")
            expect(r.status_code == 7, "exit %s" % r.status_code)
            expect(r.std_out == b"bye\n", "stdout %r" % r.std_out)

        with self.subTest("https run_ps Write-Error gives a CLIXML error record and exit 1"):
            # pywinrm 0.3.0's run_ps post-processes stderr with str methods on bytes (TypeError on Python 3), so
            # the same command run_ps sends is run through run_cmd and the CLIXML is decoded here.
            r = session.run_cmd(encoded_ps("Write-Output 'before'\nWrite-Error 'it broke'"))
            expect(r.status_code == 1, "exit %s" % r.status_code)
            expect(r.std_out == b"before\r\n", "stdout %r" % r.std_out)
            text = clixml_errors(r.std_err)
            expect("it broke" in text and "WriteErrorException" in text, "errors %r" % text)
            try:
                session.run_ps("Write-Error 'x'")
            except TypeError:
                pass  # the known pywinrm 0.3.0 bytes/str bug, not the server's

        with self.subTest("https run_ps unknown cmdlet is CommandNotFoundException"):
            r = session.run_cmd(encoded_ps("Get-Frobnicator -Now"))
            expect(r.status_code == 1, "exit %s" % r.status_code)
            text = clixml_errors(r.std_err)
            expect("The term 'Get-Frobnicator' is not recognized as the name of a cmdlet" in text, "errors %r" % text)

        with self.subTest("https run_ps '# wincert-op: host-info'"):
            r = session.run_ps("# wincert-op: host-info\n")
            expect(r.status_code == 0, "exit %s err %r" % (r.status_code, r.std_err))
            info = json.loads(r.std_out.decode("utf-8"))
            expect(info == {"Hostname": "WINHOST01", "OsBuild": 20348, "OsVersion": "10.0.20348",
                            "PsVersion": "5.1.20348.2582"}, "host-info %r" % info)
            expect(r.std_out.endswith(b"}\r\n"), "one JSON document + CRLF")

        with self.subTest("https long-running command across OperationTimeout faults"):
            before = sim.status()["timeouts"]
            slow = winrm.Session(url, auth=(USER, PASSWORD), transport="ssl", server_cert_validation="ignore",
                                 operation_timeout_sec=1, read_timeout_sec=10)
            start = time.time()
            r = slow.run_cmd("ping", ["-n", "4", "127.0.0.1"])
            elapsed = time.time() - start
            expect(r.status_code == 0, "exit %s" % r.status_code)
            expect(b"Reply from 127.0.0.1" in r.std_out, "stdout %r" % r.std_out[:100])
            expect(elapsed >= 2.5, "returned after %.1f s, expected ~3 s" % elapsed)
            expect(sim.status()["timeouts"] > before, "no w:TimedOut fault was sent")

        with self.subTest("https invalid ShellId surfaces the real fault code"):
            p = winrm.Protocol(url, transport="ssl", username=USER, password=PASSWORD, server_cert_validation="ignore")
            try:
                p.run_command("00000000-0000-0000-0000-000000000000", "echo hi")
                raise AssertionError("no fault")
            except winrm.exceptions.WinRMError as e:
                expect("2150858843" in str(e) and "InvalidSelectors" in str(e), str(e))

        with self.subTest("https wrong password is refused"):
            bad = winrm.Session(url, auth=(USER, "wrong"), transport="ssl", server_cert_validation="ignore")
            try:
                bad.run_cmd("echo", ["x"])
                raise AssertionError("accepted a wrong password")
            except winrm.exceptions.InvalidCredentialsError:
                pass

        counters = sim.stop()

        with self.subTest("counters printed on SIGTERM"):
            expect(counters is not None, "no JSON line on stdout")
            expect(counters["shells_created"] >= 10 and counters["commands"] >= 10, "counters %r" % counters)
            expect(counters["requests_by_action"].get("Create", 0) == counters["shells_created"], "Create count")
            expect(counters["auth_failures"] >= 1, "auth failures %r" % counters)
            expect(counters["shells_open"] == 0, "shells left open %r" % counters)

    def test_basic_over_http_with_allow_unencrypted(self):
        users = self.users
        http_sim = self.sim("--users", users, "--allow-unencrypted")

        with self.subTest("http with --allow-unencrypted: run_cmd and run_ps"):
            s = winrm.Session("http://127.0.0.1:%d/wsman" % http_sim.port, auth=(USER, PASSWORD), transport="basic")
            r = s.run_cmd("echo", ["plain"])
            expect(r.std_out == b"plain\r\n" and r.status_code == 0, "echo %r" % r.std_out)
            r = s.run_ps("'single quoted'")
            expect(r.std_out == b"single quoted\r\n", "run_ps %r" % r.std_out)
            s2 = winrm.Session("127.0.0.1:%d" % http_sim.port, auth=("DOMAIN\\alice", "s3cret"), transport="plaintext")
            expect(s2.run_cmd("whoami").std_out == b"domain\\alice\r\n", "whoami")

        http_sim.stop()

    def test_http_without_allow_unencrypted(self):
        users = self.users
        strict = self.sim("--users", users)

        with self.subTest("http without --allow-unencrypted refuses Basic (401)"):
            s = winrm.Session("http://127.0.0.1:%d/wsman" % strict.port, auth=(USER, PASSWORD), transport="basic")
            try:
                s.run_cmd("echo", ["x"])
                raise AssertionError("Basic over plain HTTP was accepted")
            except winrm.exceptions.InvalidCredentialsError:
                pass
            expect(strict.status()["auth_failures"] >= 1, "auth failure not counted")

        strict.stop()

    def test_replay_of_a_recorded_transcript(self):
        transcript = os.path.join(fixtures(), "winrm/pypsrp/test_winrs_standard.yml")
        if not os.path.exists(transcript):
            self.skipTest("%s not found" % transcript)
        replay = self.sim("--replay", transcript)
        s = winrm.Session("http://127.0.0.1:%d/wsman" % replay.port, auth=("any", "thing"), transport="basic")
        r = s.run_cmd("cmd.exe", ["/c", "echo", "hi"])
        expect(r.std_out == b"hi\r\n" and r.status_code == 0, "replayed %r %s" % (r.std_out, r.status_code))


if __name__ == "__main__":
    ts.main(positional=("winhost_sim",), optional=("fixtures",), description=__doc__)
