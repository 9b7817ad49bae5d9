#!/usr/bin/python3
"""winhost-sim --hosts N, checked with an independent client (Debian's python3-winrm): every port is its own host
(its own hostname and counters), and the per-host concurrency high-water mark counts commands that really ran at
the same time. Usage: multi_host_test.py PATH/TO/winhost-sim
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import winrm

SIM = sys.argv[1]
USER, PASSWORD = "loadtest", "Hosts-Passw0rd"


def wait_for(path, lines, proc):
    deadline = time.time() + 60
    while time.time() < deadline:
        if os.path.exists(path):
            text = open(path).read()
            if text.count("\n") >= lines:
                return text.split()
        if proc.poll() is not None:
            raise SystemExit("winhost-sim exited early")
        time.sleep(0.05)
    raise SystemExit("winhost-sim did not write its ports")


def session(port):
    return winrm.Session("http://127.0.0.1:%s/wsman" % port, auth=(USER, PASSWORD), transport="basic")


with tempfile.TemporaryDirectory() as tmp:
    users = os.path.join(tmp, "users")
    with open(users, "w") as f:
        f.write("%s:%s\n" % (USER, PASSWORD))
    port_file, status_file = os.path.join(tmp, "ports"), os.path.join(tmp, "status.json")
    proc = subprocess.Popen([SIM, "--listen", "127.0.0.1:0", "--port-file", port_file, "--status-file", status_file,
                             "--users", users, "--allow-unencrypted", "--hosts", "3", "--log-level", "warn"],
                            stdout=subprocess.DEVNULL)
    try:
        ports = wait_for(port_file, 3, proc)
        assert len(set(ports)) == 3, ports
        names = [session(p).run_cmd("hostname").std_out.decode().strip() for p in ports]
        assert names[0] != names[1] and names[1].endswith("-1") and names[2].endswith("-2"), names
        print("PASS three hosts on three ports:", names)

        # Two commands at once on host 2 (each `timeout /t 1` sleeps a second), one on host 1.
        threads = [threading.Thread(target=lambda p=p: session(p).run_cmd("timeout", ["/t", "1"]))
                   for p in (ports[2], ports[2], ports[1])]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        status = json.load(open(status_file))
        per_host = [h["max_commands_running"] for h in status["hosts"]]
        assert per_host == [1, 1, 2], per_host
        assert status["max_commands_running_per_host"] == 2, status
        assert [h["commands"] for h in status["hosts"]] == [1, 2, 3], status["hosts"]
        assert status["commands"] == 6, status
        print("PASS per-host concurrency high-water marks:", per_host)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
print("2 passed, 0 failed")
