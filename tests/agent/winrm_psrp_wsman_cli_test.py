#!/usr/bin/python3
"""`wincert-agent winrm ps --psrp --endpoint URL` as a process against winhost-sim's PowerShell resource: the agent's
module loaded (--with-module) and an operation called by name with its JSON argument; script text run on the full
endpoint; the JEA endpoint (--configuration-name WincertAgent) taking the operation but refusing script text; an
unknown configuration name failing clearly; --repeat reporting two HTTP exchanges per warm pipeline.

usage: winrm_psrp_wsman_cli_test.py AGENT WINHOST_SIM
"""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import wincert_testsupport as ts  # noqa: E402

PASSWORD = "cli-password"


def check(condition, what, output):
    if not condition:
        raise AssertionError(f"{what}\n--- output ---\n{output}")


def main():
    agent, sim_binary = sys.argv[1], sys.argv[2]
    with ts.TempDir(prefix="wincert-psrp-wsman-cli-") as tmp:
        users = tmp.write("users", f"cli:{PASSWORD}\n")
        with ts.winhost_sim(sim_binary, tmp.path, "--users", users, "--allow-unencrypted") as sim:
            sim.start()
            endpoint = sim.url("/wsman")

            def run(*arguments):
                env = dict(os.environ, CLI_PASSWORD=PASSWORD)
                p = subprocess.run([agent, "winrm", "ps", "--psrp", "--endpoint", endpoint, "--auth", "basic",
                                    "--user", "cli", "--password-env", "CLI_PASSWORD", "--allow-unencrypted",
                                    *arguments], capture_output=True, text=True, timeout=120, env=env)
                return p.returncode, p.stdout, p.stderr

            # The agent's operation, as the agent calls it: module first, then the function by name.
            code, out, err = run("--with-module", "--command", "Invoke-WincertHostInfo", "--input-json", "{}")
            check(code == 0, f"the operation completes (exit {code})", out + err)
            info = json.loads(out)
            check("Hostname" in info, "the operation's JSON document on stdout", out)

            # Without the module the function does not exist in a fresh runspace: the pipeline fails (exit 1).
            code, out, err = run("--command", "Invoke-WincertHostInfo", "--input-json", "{}")
            check(code == 1 and "error:" in err, f"a missing function fails the pipeline (exit {code})", out + err)

            # Script text on the full endpoint.
            code, out, err = run("--command", "Write-Output 'hello'; Write-Warning 'careful'")
            check(code == 0 and out.splitlines() == ["hello"], "script text runs on the full endpoint", out + err)
            check("warning: careful" in err.splitlines(), "the warning on stderr", err)

            # The JEA endpoint: the operation is there without loading anything; script text is refused.
            code, out, err = run("--configuration-name", "WincertAgent", "--command", "Invoke-WincertHostInfo",
                                 "--input-json", "{}")
            check(code == 0 and "Hostname" in json.loads(out), f"JEA runs the operation (exit {code})", out + err)
            code, out, err = run("--configuration-name", "WincertAgent", "--command", "Get-Date")
            check(code == 1 and "error:" in err, f"JEA refuses script text (exit {code})", out + err)

            # An endpoint the host does not have.
            code, out, err = run("--configuration-name", "NoSuchEndpoint", "--command", "1")
            check(code == 255 and "NoSuchEndpoint" in err, f"an unknown configuration fails clearly (exit {code})",
                     out + err)

            # Warm pipelines: two HTTP exchanges each (Command, Receive).
            code, out, err = run("--with-module", "--command", "Invoke-WincertHostInfo", "--input-json", "{}",
                                 "--repeat", "5")
            check(code == 0 and out.count("Hostname") == 5, f"five runs (exit {code})", out + err)
            m = re.search(r"runs=5 .*http_requests=(\d+)", err)
            check(m and int(m.group(1)) == 10, "two HTTP exchanges per warm pipeline", err)
            status = sim.status()
            check(status["psrp_pools_opened"] == 6, "each invocation but the unknown endpoint opened a pool", status)
            check(status["shells_open"] == 0, "every pool was deleted", status)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
