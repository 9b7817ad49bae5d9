#!/usr/bin/python3
"""Tests of the shared Python test support (wincert_testsupport.py), with a tiny Python server standing in for the
simulators: it takes --listen HOST:PORT and --port-file FILE like command-sim and winhost-sim.

Usage: wincert_testsupport_test.py [unittest arguments]
"""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wincert_testsupport as ts  # noqa: E402

# A server like the simulators: binds --listen (port 0: any), writes --port-file once listening (N lines with
# --hosts N), serves until SIGTERM. --fail-first: exits 3 at once (a port still held, say), the next start works.
FAKE_SERVER = r'''
import os, signal, socket, sys, time
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
marker = args.get("--fail-first")
if marker and not os.path.exists(marker):
    open(marker, "w").close()
    sys.exit(3)
if "--exit" in args:
    print("cannot listen", flush=True)
    sys.exit(int(args["--exit"]))
host, port = args["--listen"].rsplit(":", 1)
socks = []
for i in range(int(args.get("--hosts", "1"))):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port) if i == 0 else 0))
    s.listen()
    socks.append(s)
with open(args["--port-file"] + ".tmp", "w") as f:
    f.write("".join("%d\n" % s.getsockname()[1] for s in socks))
os.rename(args["--port-file"] + ".tmp", args["--port-file"])
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    time.sleep(1)
'''


class WaitUntilTest(unittest.TestCase):
    def test_returns_the_first_truthy_value(self):
        calls = []

        def third_time():
            calls.append(1)
            return len(calls) if len(calls) >= 3 else None
        self.assertEqual(ts.wait_until(third_time, 5, 0.01), 3)

    def test_times_out_with_what_it_waited_for_and_the_last_error(self):
        def never():
            raise OSError("connection refused")
        with self.assertRaises(ts.TestSupportError) as caught:
            ts.wait_until(never, 0.2, 0.05, "the thing")
        self.assertIn("the thing", str(caught.exception))
        self.assertIn("connection refused", str(caught.exception))

    def test_a_process_that_exited_ends_the_wait_at_once(self):
        def gone():
            raise ts.ProcessExited("gone")
        with self.assertRaises(ts.ProcessExited):
            ts.wait_until(gone, 60, 0.05)


class ServerTest(unittest.TestCase):
    def setUp(self):
        self.work = ts.TempDir("wincert-testsupport-")
        self.addCleanup(self.work.close)
        self.script = self.work.write("fake_server.py", FAKE_SERVER, 0o644)
        # A "binary" the way the simulators are one: an executable taking the server's arguments.
        self.binary = self.work.write("fake-server", "#!/bin/sh\nexec %s %s \"$@\"\n" % (sys.executable, self.script),
                                      0o755)

    def test_reads_the_port_and_stops(self):
        server = ts.Server("fake", self.binary, [], self.work.path).start(10)
        self.assertTrue(server.running())
        self.assertGreater(server.port, 0)
        self.assertEqual(server.url("/x"), "http://127.0.0.1:%d/x" % server.port)
        self.assertEqual(server.stop(), 0)
        self.assertFalse(server.running())

    def test_one_port_per_host(self):
        server = ts.Server("fake", self.binary, ["--hosts", "3"], self.work.path, hosts=3).start(10)
        self.addCleanup(server.stop)
        self.assertEqual(len(set(server.ports)), 3)

    def test_a_server_that_exits_is_reported_with_its_output(self):
        with self.assertRaises(ts.ProcessExited) as caught:
            ts.Server("fake", self.binary, ["--exit", "4"], self.work.path).start(10)
        self.assertIn("exited with 4", str(caught.exception))
        self.assertIn("cannot listen", str(caught.exception))

    def test_a_restart_gets_the_same_port_after_a_failed_attempt(self):
        marker = self.work.join("failed-once")
        server = ts.Server("fake", self.binary, [], self.work.path).start(10)
        self.addCleanup(server.stop)
        port = server.port
        server.stop()
        server.args = ["--fail-first", marker]
        server.start(20, same_port=True)
        self.assertTrue(os.path.exists(marker), "the first restart attempt should have failed")
        self.assertEqual(server.port, port)


class TempDirTest(unittest.TestCase):
    def test_removed_on_success_kept_on_failure_not_on_skip(self):
        with ts.TempDir() as ok:
            pass
        self.assertFalse(os.path.exists(ok.path))
        with self.assertRaises(unittest.SkipTest):
            with ts.TempDir() as skipped:
                raise unittest.SkipTest("no tool")
        self.assertFalse(os.path.exists(skipped.path))
        with self.assertRaises(AssertionError):
            with ts.TempDir() as failed:
                raise AssertionError("a check failed")
        self.assertTrue(os.path.exists(failed.path))
        failed._keep = False
        failed.close()


class MainTest(unittest.TestCase):
    """ts.main as a test file uses it: its arguments, unittest's, and the exit codes ctest reads."""

    def run_test_file(self, body, *argv):
        work = ts.TempDir("wincert-testsupport-main-")
        self.addCleanup(work.close)
        path = work.write("t.py", "import sys, unittest\nsys.path.insert(0, %r)\nimport wincert_testsupport as ts\n"
                          % os.path.dirname(os.path.abspath(__file__)) + body, 0o644)
        return subprocess.run([sys.executable, path] + list(argv), capture_output=True, text=True, timeout=60)

    def test_arguments_and_exit_codes(self):
        body = ("class T(ts.TestCase):\n"
                "    def test_args(self):\n        self.assertEqual((ts.ARGS.agent, ts.ARGS.extra), ('A', None))\n"
                "    def test_fails(self):\n        self.fail('no')\n"
                "    def test_skips(self):\n        self.skipTest('no tool')\n"
                "ts.main(positional=('agent',), optional=('extra',), skip_exit_code=77)\n")
        self.assertEqual(self.run_test_file(body, "A", "T.test_args").returncode, 0)
        with_extra = body.replace("('A', None)", "('A', '/x/y')")
        self.assertEqual(self.run_test_file(with_extra, "A", "/x/y", "T.test_args").returncode, 0)
        self.assertEqual(self.run_test_file(body, "A", "T.test_fails").returncode, 1)
        self.assertEqual(self.run_test_file(body, "A", "T.test_skips").returncode, 77)
        self.assertEqual(self.run_test_file(body, "A", "T.test_skips", "T.test_args").returncode, 0)
        usage = self.run_test_file(body)
        self.assertEqual(usage.returncode, 2)
        self.assertIn("usage:", usage.stderr)

    def test_checks_run_on_after_a_failure_and_mark_the_class_failed(self):
        body = ("class T(ts.TestCase):\n"
                "    def test_checks(self):\n"
                "        check = ts.checks(self)\n"
                "        @check('first')\n        def _():\n            raise AssertionError('first broke')\n"
                "        @check('second')\n        def _():\n            print('second ran')\n"
                "    @classmethod\n    def tearDownClass(cls):\n        print('failed=%s' % cls.failed)\n"
                "ts.main()\n")
        p = self.run_test_file(body)
        self.assertEqual(p.returncode, 1)
        self.assertIn("second ran", p.stdout)
        self.assertIn("failed=True", p.stdout)
        self.assertIn("first broke", p.stderr)


if __name__ == "__main__":
    ts.main(description=__doc__)
