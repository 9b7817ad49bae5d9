#!/usr/bin/python3
"""`wincert-agent replay` of a store whose 'WinRM Protocol' is ssh (PowerShell over SSH), end to end against a
real OpenSSH server started here on a loopback port (its own host key and sshd_config, `Subsystem powershell
<pwsh> -sshs`), running the real PowerShell 7 and the WincertOps module loaded into its runspace:

- the shipped WinCertInventory.json fixture (it says "WinRm Protocol": "ssh"), pointed at this sshd with the
  client key in ServerPassword: the inventory runs on the host. Linux has no Cert:\\ drive, so the module answers
  StoreNotFound, and the job is a Failure that says the store does not exist (not a transport error);
- the same job with the wrong key: a Failure naming the refused account, no secret in the output;
- an unknown host key (empty known-hosts file): a Failure naming the host key and the file; with
  --ssh-trust-on-first-use the key is recorded and the run reaches the host.

Exit 77 (skipped) without sshd, ssh-keygen, pwsh or root, except under CI=true (then a failure).

usage: replay_ssh_test.py AGENT SHARED_DIR [--pwsh PATH] [--tools-file build/tools/powershell-tools.cmake]
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import wincert_testsupport as ts  # noqa: E402

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "/usr/bin/ssh-keygen"


def skip(reason):
    if os.environ.get("CI") == "true":
        print(f"{reason} and CI=true")
        sys.exit(1)
    print(f"SKIPPED: {reason}")
    sys.exit(77)


def check(condition, what, output):
    if not condition:
        raise AssertionError(f"{what}\n--- output ---\n{output}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("agent")
    parser.add_argument("shared")
    parser.add_argument("--pwsh", default="")
    parser.add_argument("--tools-file", default="")
    args = parser.parse_args()
    pwsh = ts.find_pwsh(args.pwsh, args.tools_file)
    if not (os.path.exists(SSHD) and os.path.exists(SSH_KEYGEN)):
        skip("OpenSSH's sshd or ssh-keygen not found (scripts/setup.sh installs openssh-server)")
    if not pwsh:
        skip("pwsh (PowerShell 7) not found; run scripts/setup.sh or set WINCERT_PWSH")
    if os.geteuid() != 0:
        skip("sshd needs root here (its privilege separation)")
    os.makedirs("/run/sshd", exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="wincert-replay-ssh-") as tmp:
        for name, extra in (("host_key", ["-t", "ed25519"]), ("client_key", ["-t", "ecdsa", "-m", "PEM"]),
                            ("stranger_key", ["-t", "ecdsa", "-m", "PEM"])):
            subprocess.run([SSH_KEYGEN, "-q", "-f", os.path.join(tmp, name), "-N", "", "-C", "wincert-test", *extra],
                           check=True)
        shutil.copy(os.path.join(tmp, "client_key.pub"), os.path.join(tmp, "authorized_keys"))
        port = ts.free_port()
        config = os.path.join(tmp, "sshd_config")
        with open(config, "w") as f:
            f.write(f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp}/host_key\nPidFile none\n"
                    f"AuthorizedKeysFile {tmp}/authorized_keys\nStrictModes no\nPermitRootLogin yes\nUsePAM no\n"
                    "PasswordAuthentication no\nLogLevel VERBOSE\n"
                    f"Subsystem powershell {pwsh} -sshs -NoLogo -NoProfile\n"
                    "SetEnv POWERSHELL_TELEMETRY_OPTOUT=1 POWERSHELL_UPDATECHECK=Off\n")
        log = open(os.path.join(tmp, "sshd.log"), "w")
        sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", config], stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or sshd.poll() is not None:
                        raise AssertionError("sshd did not start: " + open(log.name).read())
                    time.sleep(0.05)
            known_hosts = os.path.join(tmp, "known_hosts")
            with open(known_hosts, "w") as f:
                f.write(f"[127.0.0.1]:{port} " + open(os.path.join(tmp, "host_key.pub")).read())
            job = os.path.join(args.shared, "fixtures", "jobs", "WinCertInventory.json")

            def replay(key_file, known, *extra):
                env = dict(os.environ, WINCERT_TEST_SSH_KEY=open(key_file).read(),
                           POWERSHELL_TELEMETRY_OPTOUT="1")
                p = subprocess.run([args.agent, "replay", job,
                                    "--set", f"CertificateStoreDetails.ClientMachine=127.0.0.1:{port}",
                                    "--set", "ServerUsername=root", "--set-env", "ServerPassword=WINCERT_TEST_SSH_KEY",
                                    "--ssh-known-hosts", known, "--connect-timeout", "30", *extra],
                                   capture_output=True, text=True, timeout=180, env=env)
                out = p.stdout + p.stderr
                check("BEGIN" not in out, "no private key text in the output", out)
                doc = json.loads(p.stdout) if p.stdout.strip() else {}
                result = doc.get("JobResult", {})
                return p.returncode, result.get("Result"), result.get("FailureMessage") or "", out

            # The inventory reaches the host's PowerShell: the module answers that the store does not exist.
            code, status, message, out = replay(os.path.join(tmp, "client_key"), known_hosts)
            check(code == 2 and status == 4, f"a Failure result (exit {code}, Result {status})", out)
            print("inventory over ssh:", message)
            check("does not exist" in message, "the host's own answer: the store LocalMachine\\My does not exist",
                  out)

            # A key the server does not accept.
            code, status, message, out = replay(os.path.join(tmp, "stranger_key"), known_hosts)
            check(code == 2 and status == 4, f"a Failure for a refused key (exit {code}, Result {status})", out)
            check("root" in message, "the refused account is named", out)

            # An unknown host key: refused, then accepted once with trust on first use.
            empty = os.path.join(tmp, "empty_known_hosts")
            open(empty, "w").close()
            code, status, message, out = replay(os.path.join(tmp, "client_key"), empty)
            check(code == 2 and status == 4, f"a Failure for an unknown host key (exit {code})", out)
            check("host key" in message.lower() and empty in message, "the host key and the file are named", out)
            code, status, message, out = replay(os.path.join(tmp, "client_key"), empty, "--ssh-trust-on-first-use")
            check("does not exist" in message, "trust on first use reaches the host", out)
            check(f"127.0.0.1]:{port}" in open(empty).read(), "the key was recorded", open(empty).read())
        finally:
            sshd.terminate()
            sshd.wait(timeout=10)
            log.close()
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
