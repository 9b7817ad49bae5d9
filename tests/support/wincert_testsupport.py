"""What every Python test of wincert-agent shares (Python 3 standard library only, Debian 12's /usr/bin/python3).

    import wincert_testsupport as ts

    * deadlines and waits:   ts.wait_until(predicate, timeout, interval, what); ts.DEFAULT_TIMEOUT
    * ports on loopback:     ts.free_port(), ts.refused_port()
    * child processes:       ts.Process(name, argv, log_path).start() / .stop() / .kill() / .output();
                             children die with the Python process (PR_SET_PDEATHSIG)
    * the simulators:        ts.Server(name, binary, args, workdir, hosts=1).start(): --listen 127.0.0.1:0, the
                             port(s) read from its --port-file (.port, .ports, .url()); ts.command_sim(...) and
                             ts.winhost_sim(...) add the usual arguments
    * temporary directories: ts.TempDir(prefix): removed on success, kept (and named) after a failure
    * a throwaway MIT realm: ts.Realm(workdir, realm, principals): kdb5_util + kadmin.local + krb5kdc on a port of
                             127.0.0.1, a keytab for HTTP/localhost, kinit(), stop()
    * the runner:            ts.TestCase (notes failures, so tearDownClass can keep the work directory);
                             ts.checks(test): a @check("name") decorator that runs a function as a subtest;
                             ts.main(positional=("agent", "command_sim", ...)): the binaries the test gets from
                             ctest, read into ts.ARGS, then stdlib unittest runs the module's tests (any further
                             arguments are unittest's: test names, -k PATTERN, -v)

Test files import it after putting this directory on sys.path:

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
"""
import argparse
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import uuid
import warnings

__all__ = ["TestSupportError", "ProcessExited", "DEFAULT_TIMEOUT", "REPO_ROOT", "SHARED_DIR", "ARGS",
           "wait_until", "free_port", "refused_port", "Process", "read_ports", "Server", "WinhostSimServer",
           "command_sim", "winhost_sim", "TempDir", "Realm", "run", "TestCase", "checks", "main"]

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED_DIR = os.path.join(os.path.dirname(REPO_ROOT), "shared")
# Generous for a loaded 2-core machine: a wait that runs out means something is really stuck.
DEFAULT_TIMEOUT = 120.0
# The binaries and paths a test was started with (ts.main fills it in).
ARGS = argparse.Namespace()


class TestSupportError(RuntimeError):
    """A process did not start, or a wait ran out of time."""


class ProcessExited(TestSupportError):
    """A process a wait depends on is gone: wait_until() gives up at once."""


# ---------------------------------------------------------------- deadlines and ports

def wait_until(predicate, timeout=DEFAULT_TIMEOUT, interval=0.1, what="condition"):
    """Calls predicate() until it returns a truthy value, which is returned; TestSupportError after `timeout` s.

    A TestSupportError/OSError/ValueError/KeyError raised by predicate counts as "not yet" (its text goes into
    the timeout message); ProcessExited ends the wait at once."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except ProcessExited:
            raise
        except (TestSupportError, OSError, ValueError, KeyError) as e:
            last = e
        if time.monotonic() >= deadline:
            raise TestSupportError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def free_port():
    """A loopback port that was free a moment ago (prefer --port-file; this is for the rare reuse case)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def refused_port():
    """A loopback port where nothing listens (connections are refused)."""
    return free_port()


def find_pwsh(explicit="", tools_file=""):
    """PowerShell 7 for the tests that drive a real one, in the order the C++ tests use: WINCERT_PWSH from the
    environment, `explicit` (the CMake setting), scripts/setup.sh's build/tools (its tools file), then PATH.
    None when there is none."""
    for candidate in (os.environ.get("WINCERT_PWSH"), explicit):
        if candidate and os.path.exists(candidate):
            return candidate
    if tools_file and os.path.exists(tools_file):
        with open(tools_file) as f:
            m = re.search(r'set\(WINCERT_PWSH_FOUND "([^"]+)"\)', f.read())
        if m and os.path.exists(m.group(1)):
            return m.group(1)
    return shutil.which("pwsh")


# ---------------------------------------------------------------- processes

_libc = None


def _die_with_parent():
    """preexec_fn: the child gets SIGKILL when the Python process that started it dies."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL("libc.so.6", use_errno=True)
        _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Process:
    """A child process with its output in a log file. stop() = SIGTERM then SIGKILL; kill() = SIGKILL."""

    def __init__(self, name, argv, log_path, env=None, cwd=None):
        self.name, self.argv, self.log_path, self.env, self.cwd = name, list(argv), log_path, env, cwd
        self.proc = None
        self._log = None

    def start(self):
        if self.running():
            raise TestSupportError(f"{self.name} is already running")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=self.env, cwd=self.cwd, preexec_fn=_die_with_parent)
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def returncode(self):
        return None if self.proc is None else self.proc.poll()

    def wait(self, timeout=DEFAULT_TIMEOUT):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TestSupportError(f"{self.name} (pid {self.proc.pid}) did not exit within {timeout:.0f} s") from None

    def stop(self, timeout=30.0):
        """SIGTERM, wait up to `timeout` s, then SIGKILL. Returns the exit code (negative: a signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close_log()
        return self.proc.returncode

    def kill(self, sig=signal.SIGKILL):
        """Sends `sig` (default SIGKILL) and, for SIGKILL, reaps the process."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        if sig == signal.SIGKILL:
            self.proc.wait()
            self._close_log()

    def _close_log(self):
        if self._log is not None:
            self._log.close()
            self._log = None

    def output(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""


def read_ports(path, count, proc, timeout=DEFAULT_TIMEOUT):
    """The ports a Process wrote to its --port-file (one per line, complete once `count` lines are there)."""
    def ready():
        if not proc.running():
            raise ProcessExited(f"{proc.name} exited with {proc.returncode()} before listening:\n"
                                f"{proc.output()[-3000:]}")
        try:
            with open(path, encoding="ascii") as f:
                text = f.read()
        except FileNotFoundError:
            return None
        lines = [line for line in text.split("\n") if line.strip()]
        if text.endswith("\n") and len(lines) >= count:
            return [int(line) for line in lines[:count]]
        return None
    return wait_until(ready, timeout, 0.05, f"{proc.name}'s port file")


class Server(Process):
    """A simulator (or any server taking --listen and --port-file) on port 0 of 127.0.0.1.

    start() runs `binary --listen 127.0.0.1:0 --port-file FILE ARGS...` and returns once the port file holds
    `hosts` ports (winhost-sim --hosts N writes one per host). start(same_port=True) after a stop() asks for
    the port it had (a restart clients see at the same endpoint), retrying while the port is still held."""

    def __init__(self, name, binary, args, workdir, hosts=1, env=None, log_path=None):
        self.workdir = workdir
        stem = re.sub(r"[^\w.-]+", "_", name).strip("_") + "-" + uuid.uuid4().hex[:8]
        self.port_file = os.path.join(workdir, stem + ".port")
        super().__init__(name, [binary], log_path or os.path.join(workdir, stem + ".log"), env=env)
        self.binary, self.args, self.hosts = binary, list(args), hosts
        self.ports = []

    def start(self, timeout=60.0, same_port=False):
        deadline = time.monotonic() + timeout
        again = same_port and bool(self.ports)
        listen = f"127.0.0.1:{self.ports[0]}" if again else "127.0.0.1:0"
        self.argv = [self.binary, "--listen", listen, "--port-file", self.port_file] + self.args
        while True:
            if os.path.exists(self.port_file):
                os.unlink(self.port_file)
            self._close_log()
            super().start()
            try:
                ports = read_ports(self.port_file, self.hosts, self, max(1.0, deadline - time.monotonic()))
                break
            except ProcessExited:
                # Rebinding the same port right after a stop can fail for a moment: retry until the deadline.
                if not again or time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)
            except Exception:
                self.stop()
                raise
        if again and ports != self.ports:
            self.stop()
            raise TestSupportError(f"{self.name} came back on port(s) {ports}, not {self.ports}")
        self.ports = ports
        return self

    @property
    def port(self):
        return self.ports[0]

    def url(self, path="", scheme="http", host="127.0.0.1", index=0):
        return f"{scheme}://{host}:{self.ports[index]}{path}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def command_sim(binary, workdir, *args, name="command-sim", state_dir=None, **kwargs):
    """command-sim with its state in workdir (or state_dir). Not started: call start()."""
    state = state_dir or os.path.join(workdir, f"{name}-state")
    return Server(name, binary, ["--state", state] + list(args), workdir, **kwargs)


class WinhostSimServer(Server):
    """winhost-sim with --status-file: status() is its counters (connections, commands, auth_failures, ...)."""

    def __init__(self, name, binary, args, workdir, status_file=None, hosts=1, **kwargs):
        super().__init__(name, binary, [], workdir, hosts=hosts, **kwargs)
        self.status_file = status_file or os.path.splitext(self.port_file)[0] + ".status.json"
        self.args = ["--status-file", self.status_file] + (["--hosts", str(hosts)] if hosts > 1 else []) + list(args)
        if "--ps-start-ms" not in self.args:
            # Tests are not about the host's PowerShell start cost (default 250 ms per powershell.exe and per
            # runspace): without it the suite's runtime stays what it was. A test about the cost passes its own.
            self.args += ["--ps-start-ms", "0"]

    def status(self):
        with open(self.status_file, encoding="utf-8") as f:
            return json.load(f)


def winhost_sim(binary, workdir, *args, name="winhost-sim", **kwargs):
    """winhost-sim (a WinhostSimServer). Not started: call start()."""
    return WinhostSimServer(name, binary, args, workdir, **kwargs)


# ---------------------------------------------------------------- temporary directories

class TempDir:
    """A temporary directory; close() removes it unless keep() was called (a failed test keeps its files and
    says where). As a context manager it keeps the directory when the block raises (a skip is no failure)."""

    def __init__(self, prefix="wincert-test-"):
        self.path = tempfile.mkdtemp(prefix=prefix)
        self._keep = False

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    def write(self, name, text, mode=0o600):
        path = self.join(name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def keep(self):
        self._keep = True

    def close(self):
        if self._keep:
            print(f"work directory kept: {self.path}", file=sys.stderr, flush=True)
        else:
            shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is not None and not issubclass(exc_type, unittest.SkipTest):
            self.keep()
        self.close()


# ---------------------------------------------------------------- commands and a throwaway realm

def run(cmd, env=None, stdin=None, timeout=60):
    """Runs a helper command (openssl, kadmin.local, ...); its stdout, or TestSupportError with its output."""
    p = subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise TestSupportError(f"{cmd[0]} failed ({p.returncode}): {p.stdout} {p.stderr}")
    return p.stdout


class Realm:
    """A throwaway MIT Kerberos realm (the same layout as tests/support/krb5_kdc): a KDC on a loopback port, the
    given user principals, HTTP/localhost in a keytab. `env` has KRB5_CONFIG, KRB5_KDC_PROFILE, KRB5CCNAME and
    KRB5_KTNAME for child processes; export() sets them in this process too (for GSSAPI clients in Python)."""

    def __init__(self, workdir, realm="TEST.LOCAL", principals=(), base_env=None, timeout=20.0):
        self.realm = realm
        self.principals = dict(principals)
        self.dir = os.path.join(workdir, "krb5")
        os.makedirs(self.dir)
        self.port = free_port()
        self.keytab = os.path.join(self.dir, "http.keytab")
        self.ccache = os.path.join(self.dir, "ccache")
        self.conf = os.path.join(self.dir, "krb5.conf")
        self.kdc_conf = os.path.join(self.dir, "kdc.conf")
        with open(self.conf, "w") as f:
            f.write("[libdefaults]\n default_realm = %s\n dns_lookup_kdc = false\n dns_lookup_realm = false\n"
                    " dns_canonicalize_hostname = false\n rdns = false\n udp_preference_limit = 1\n"
                    "[realms]\n %s = {\n  kdc = 127.0.0.1:%d\n }\n[domain_realm]\n localhost = %s\n"
                    % (realm, realm, self.port, realm))
        with open(self.kdc_conf, "w") as f:
            f.write("[kdcdefaults]\n kdc_ports = %d\n kdc_tcp_ports = %d\n[realms]\n %s = {\n"
                    "  database_name = %s/principal\n  key_stash_file = %s/stash\n  acl_file = %s/kadm5.acl\n"
                    "  kdc_ports = %d\n  kdc_tcp_ports = %d\n  master_key_type = aes256-cts-hmac-sha1-96\n"
                    "  supported_enctypes = aes256-cts-hmac-sha1-96:normal\n }\n[logging]\n kdc = FILE:%s/kdc.log\n"
                    % (self.port, self.port, realm, self.dir, self.dir, self.dir, self.port, self.port, self.dir))
        open(os.path.join(self.dir, "kadm5.acl"), "w").close()
        self.env = dict(base_env if base_env is not None else os.environ, KRB5_CONFIG=self.conf,
                        KRB5_KDC_PROFILE=self.kdc_conf, KRB5CCNAME="FILE:" + self.ccache, KRB5_KTNAME=self.keytab)
        run(["kdb5_util", "create", "-s", "-r", realm, "-P", "master-" + uuid.uuid4().hex], self.env)
        for user, password in self.principals.items():
            run(["kadmin.local", "-r", realm, "-q", "addprinc -pw %s %s" % (password, user)], self.env)
        run(["kadmin.local", "-r", realm, "-q", "addprinc -randkey HTTP/localhost"], self.env)
        run(["kadmin.local", "-r", realm, "-q", "ktadd -k %s HTTP/localhost" % self.keytab], self.env)
        self.kdc = Process("krb5kdc", ["krb5kdc", "-n"], os.path.join(self.dir, "krb5kdc.out"), env=self.env).start()

        def listening():
            if not self.kdc.running():
                raise ProcessExited(f"krb5kdc exited with {self.kdc.returncode()}: {self.kdc.output()[-2000:]}")
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        wait_until(listening, timeout, 0.1, f"the KDC of {realm} on port {self.port}")

    def export(self):
        """Points this process's GSSAPI (requests-kerberos, ...) at the realm."""
        for k in ("KRB5_CONFIG", "KRB5CCNAME", "KRB5_KTNAME"):
            os.environ[k] = self.env[k]

    def kinit(self, user=None):
        user = user or next(iter(self.principals))
        run(["kinit", "%s@%s" % (user, self.realm)], self.env, stdin=self.principals[user] + "\n")

    def stop(self):
        self.kdc.stop(timeout=10)


# ---------------------------------------------------------------- the runner

class TestCase(unittest.TestCase):
    """unittest.TestCase that remembers, per class, whether one of its tests failed (tearDownClass can then keep
    the work directory: `if cls.failed: work.keep()`)."""

    failed = False

    def run(self, result=None):
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        outcome = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            type(self).failed = True
        return outcome


def checks(test):
    """A decorator that runs the decorated function at once as a subtest of `test`, named by the decorator's
    argument: a long sequence of checks against one set of processes runs on, and each failure is reported.

        check = ts.checks(self)

        @check("ntlm wrong password is refused")
        def _():
            ...
    """
    def check(name):
        def run_now(fn):
            with test.subTest(name):
                fn()
            return fn
        return run_now
    return check


def main(positional=(), optional=(), description=None, argv=None, skip_exit_code=None):
    """Reads the test's own arguments into ARGS, then runs the calling module's unittest tests.

    positional: names of required arguments ("agent", "command_sim", ...); optional: names of positional
    path arguments that may be left out (None then). Arguments after them, and any starting with "-", go to unittest
    (test names such as "DoctorTest.test_all_ok", -k PATTERN, -v). Exits with unittest's status, or with
    skip_exit_code (ctest's SKIP_RETURN_CODE, 77) when every test that ran was skipped."""
    argv = list(sys.argv[1:] if argv is None else argv)
    mine, rest = [], []
    for arg in argv:
        if rest or arg.startswith("-"):
            rest.append(arg)
        elif len(mine) < len(positional):
            mine.append(arg)
        elif len(mine) < len(positional) + len(optional) and (os.sep in arg or os.path.exists(arg)):
            mine.append(arg)  # an optional argument is a path: a test name (Class.test_x) is unittest's
        else:
            rest.append(arg)
    if len(mine) < len(positional):
        names = " ".join(n.upper() for n in positional) + "".join(f" [{n.upper()}]" for n in optional)
        print(f"usage: {os.path.basename(sys.argv[0])} {names} [unittest arguments]"
              + (f"\n{description}" if description else ""), file=sys.stderr)
        sys.exit(2)
    for i, name in enumerate(list(positional) + list(optional)):
        setattr(ARGS, name, mine[i] if i < len(mine) else None)
    # Warnings shown once each, except ResourceWarning: the independent clients (requests, pywinrm) leave
    # keep-alive sockets to the simulators for the garbage collector, which is not what these tests check.
    warnings.simplefilter("default")
    warnings.simplefilter("ignore", ResourceWarning)
    program = unittest.main(module="__main__", argv=[sys.argv[0], "-v"] + rest, warnings=False, exit=False)
    result = program.result
    if not result.wasSuccessful():
        sys.exit(1)
    if skip_exit_code is not None and result.testsRun and len(result.skipped) == result.testsRun:
        sys.exit(skip_exit_code)
    sys.exit(0)
