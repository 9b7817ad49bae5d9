#!/usr/bin/python3
"""winhost-sim --hosts N, checked with an independent client (Debian's python3-winrm): every port is its own host
(its own hostname and counters), and the per-host concurrency high-water mark counts commands that really ran at
the same time. Usage: multi_host_test.py PATH/TO/winhost-sim [unittest arguments]
"""
import os
import sys
import threading
import unittest

import winrm

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import wincert_testsupport as ts  # noqa: E402

USER, PASSWORD = "loadtest", "Hosts-Passw0rd"


def session(port):
    return winrm.Session("http://127.0.0.1:%s/wsman" % port, auth=(USER, PASSWORD), transport="basic")


class MultiHostTest(ts.TestCase):
    """One winhost-sim --hosts 3 for both cases, run in name order: the second checks the counters of both."""

    @classmethod
    def setUpClass(cls):
        cls.work = ts.TempDir("winhost-multi-host-")
        users = cls.work.write("users", "%s:%s\n" % (USER, PASSWORD))
        cls.sim = ts.winhost_sim(ts.ARGS.winhost_sim, cls.work.path, "--users", users, "--allow-unencrypted",
                                 "--log-level", "warn", hosts=3)
        try:
            cls.sim.start()
        except Exception:
            cls.work.keep()
            cls.work.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()
        if cls.failed:
            cls.work.keep()
        cls.work.close()

    def test_1_three_hosts_on_three_ports(self):
        ports = self.sim.ports
        self.assertEqual(len(set(ports)), 3, ports)
        names = [session(p).run_cmd("hostname").std_out.decode().strip() for p in ports]
        self.assertTrue(names[0] != names[1] and names[1].endswith("-1") and names[2].endswith("-2"), names)

    def test_2_per_host_concurrency_high_water_marks(self):
        ports = self.sim.ports
        # Two commands at once on host 2 (each `timeout /t 1` sleeps a second), one on host 1.
        threads = [threading.Thread(target=lambda p=p: session(p).run_cmd("timeout", ["/t", "1"]))
                   for p in (ports[2], ports[2], ports[1])]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        status = self.sim.status()
        per_host = [h["max_commands_running"] for h in status["hosts"]]
        self.assertEqual(per_host, [1, 1, 2])
        self.assertEqual(status["max_commands_running_per_host"], 2, status)
        # Counted with the hostname commands of test_1 (one per host).
        self.assertEqual([h["commands"] for h in status["hosts"]], [1, 2, 3], status["hosts"])
        self.assertEqual(status["commands"], 6, status)


if __name__ == "__main__":
    ts.main(positional=("winhost_sim",), description=__doc__)
