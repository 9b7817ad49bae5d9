#!/usr/bin/python3
"""winhost-sim as a process serving PowerShell remoting: the real pypsrp requests recorded against Windows
(fixtures/winrm/pypsrp-psrp/test_psrp_open_runspace.yml) sent over HTTP with Basic auth, the responses decoded
here (fragments, message types) as a client reads them, the --ps-start-ms cost seen before RUNSPACEPOOL_STATE
Opened, the counters in the status file, and the fault for an unknown session configuration.
Usage: psrp_process_test.py PATH/TO/winhost-sim [unittest arguments]
"""
import base64
import os
import re
import struct
import sys
import time
import urllib.error
import urllib.request

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import wincert_testsupport as ts  # noqa: E402

USER, PASSWORD = "psrp-user", "Psrp-Passw0rd"
FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "fixtures", "winrm",
                       "pypsrp-psrp", "test_psrp_open_runspace.yml")
PS_START_MS = 300


def post(port, body):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/wsman", data=body.encode("utf-8"), method="POST")
    request.add_header("Content-Type", "application/soap+xml;charset=UTF-8")
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    request.add_header("Authorization", "Basic " + token)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8")


def message_types(response):
    """PSRP message types of the rsp:Stream fragments of a ReceiveResponse (whole messages, as Windows sends)."""
    types = []
    for stream in re.findall(r"<rsp:Stream[^>]*>([^<]+)</rsp:Stream>", response):
        data = base64.b64decode(stream)
        while data:
            _, _, flags, length = struct.unpack(">QQBI", data[:21])
            blob, data = data[21:21 + length], data[21 + length:]
            if flags & 0x01:
                types.append(struct.unpack("<I", blob[4:8])[0])
    return types


class PsrpProcessTest(ts.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = ts.TempDir("winhost-psrp-")
        users = cls.work.write("users", f"{USER}:{PASSWORD}\n")
        cls.sim = ts.winhost_sim(ts.ARGS.winhost_sim, cls.work.path, "--users", users, "--allow-unencrypted",
                                 "--log-level", "warn", "--ps-start-ms", str(PS_START_MS))
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

    def test_1_recorded_pypsrp_open_and_close(self):
        with open(FIXTURE, encoding="utf-8") as f:
            exchanges = yaml.safe_load(f)["messages"]
        requests = [e["request"] for e in exchanges]
        started = time.monotonic()
        status, body = post(self.sim.port, requests[0])
        self.assertEqual(status, 200, body)
        self.assertIn("<x:ResourceCreated>", body)
        self.assertIn("<rsp:ShellId>76056A84-51DC-4F24-9262-CA2A55464B2B</rsp:ShellId>", body)
        status, body = post(self.sim.port, requests[1])
        self.assertEqual(status, 200, body)
        self.assertEqual(message_types(body), [0x00010002, 0x00021009])  # SESSION_CAPABILITY, APPLICATION_PRIVATE_DATA
        status, body = post(self.sim.port, requests[2])
        opened_after = time.monotonic() - started
        self.assertEqual(status, 200, body)
        self.assertEqual(message_types(body), [0x00021005])  # RUNSPACEPOOL_STATE
        self.assertGreaterEqual(opened_after, PS_START_MS / 1000.0 * 0.95)
        status, body = post(self.sim.port, requests[3])
        self.assertEqual(status, 200, body)
        self.assertIn("DeleteResponse", body)
        counters = self.sim.status()
        self.assertEqual(counters["psrp_pools_opened"], 1, counters)
        self.assertEqual(counters["psrp_runspaces_started"], 1, counters)
        self.assertEqual(counters["requests_by_action"].get("Receive"), 2, counters)

    def test_2_unknown_session_configuration(self):
        with open(FIXTURE, encoding="utf-8") as f:
            create = yaml.safe_load(f)["messages"][0]["request"]
        create = create.replace("/powershell/Microsoft.PowerShell<", "/powershell/NoSuchEndpoint<")
        status, body = post(self.sim.port, create)
        self.assertEqual(status, 500, body)
        self.assertIn('Code="2150858752"', body)
        self.assertIn("Cannot find the NoSuchEndpoint session configuration", body)


if __name__ == "__main__":
    ts.main(positional=("winhost_sim",), description=__doc__)
