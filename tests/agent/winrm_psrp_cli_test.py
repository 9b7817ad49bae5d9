#!/usr/bin/python3
"""`wincert-agent winrm ps --psrp --pwsh PWSH` as a process against a real PowerShell 7 (`pwsh -s`): each output
object on its own line (strings as they are, numbers in invariant form, other objects as their ToString), error
records on stderr as "error: <message>", warnings as "warning: ...", exit 0 when the pipeline completed, 1 when
it failed, 255 when the connection failed; a command called by name with --input-json on a restricted
(NoLanguage) endpoint; and the option checks. Exit 77 (skipped) without pwsh, except under
CI=true.

usage: winrm_psrp_cli_test.py AGENT [--pwsh PATH] [--tools-file build/tools/powershell-tools.cmake]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import wincert_testsupport as ts  # noqa: E402


def run(agent, *arguments):
    env = dict(os.environ, POWERSHELL_TELEMETRY_OPTOUT="1", POWERSHELL_UPDATECHECK="Off", NO_COLOR="1")
    p = subprocess.run([agent, "winrm", "ps", *arguments], capture_output=True, text=True, timeout=120, env=env)
    return p.returncode, p.stdout, p.stderr


def check(condition, what, output):
    if not condition:
        raise AssertionError(f"{what}\n--- output ---\n{output}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("agent")
    parser.add_argument("--pwsh", default="")
    parser.add_argument("--tools-file", default="")
    args = parser.parse_args()
    pwsh = ts.find_pwsh(args.pwsh, args.tools_file)
    if not pwsh:
        if os.environ.get("CI") == "true":
            print("pwsh not found and CI=true: run scripts/setup.sh")
            return 1
        print("SKIPPED: pwsh (PowerShell 7) not found; run scripts/setup.sh or set WINCERT_PWSH")
        return 77

    code, out, err = run(args.agent, "--psrp", "--pwsh", pwsh, "--command",
                         "'h\u00e9llo'; 42; 1.5; $true; Write-Warning 'expires soon'; "
                         "Write-Error 'the store is locked'; @{a=1}")
    check(code == 0, f"a completed pipeline exits 0 (got {code})", out + err)
    check(out.splitlines() == ["h\u00e9llo", "42", "1.5", "True", "System.Collections.Hashtable"],
          "one output object per line", out)
    check("warning: expires soon" in err.splitlines(), "warnings on stderr", err)
    check("error: the store is locked" in err.splitlines(), "error records on stderr", err)

    code, out, err = run(args.agent, "--psrp", "--pwsh", pwsh, "--command", "'before'; throw 'boom'")
    check(code == 1, f"a failed pipeline exits 1 (got {code})", out + err)
    check(out.splitlines() == ["before"], "output before the throw", out)
    check("error: boom" in err.splitlines(), "the exception on stderr", err)

    code, out, err = run(args.agent, "--psrp", "--pwsh", pwsh, "--command", "Read-Host -Prompt 'password'")
    check(code == 1, f"Read-Host without a host fails instead of waiting (got {code})", out + err)

    # A command by name with its JSON argument (--input-json), on a JEA-like endpoint: a local pwsh server
    # restricted by a session configuration (NoLanguage, only Invoke-WincertEcho of the module visible).
    module = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "certstore", "ps", "WincertOps.psd1")
    with tempfile.TemporaryDirectory(prefix="wincert-psrp-cli-") as tmp:
        pssc = os.path.join(tmp, "restricted.pssc")
        with open(pssc, "w") as f:
            f.write("@{\n SchemaVersion = '2.0.0.0'\n SessionType = 'RestrictedRemoteServer'\n"
                    f" ModulesToImport = @('{os.path.abspath(module)}')\n VisibleFunctions = @('Invoke-WincertEcho')\n}}\n")
        restricted = os.path.join(tmp, "pwsh-restricted")
        with open(restricted, "w") as f:
            f.write(f'#!/bin/sh\nexec "{pwsh}" "$@" -ConfigurationFile "{pssc}"\n')
        os.chmod(restricted, 0o755)
        code, out, err = run(args.agent, "--psrp", "--pwsh", restricted, "--command", "Invoke-WincertEcho",
                             "--input-json", '{"store":"My","n":1}')
        check(code == 0, f"a command called by name with --input-json exits 0 (got {code})", out + err)
        check(json.loads(out) == {"store": "My", "n": 1}, "the function's JSON on stdout", out)
        code, out, err = run(args.agent, "--psrp", "--pwsh", restricted, "--command", "Get-Date")
        check(code == 1 and "no-language mode" in err, "script text is refused by a NoLanguage endpoint", out + err)

    # The connection fails: 255 and a message saying what failed.
    code, out, err = run(args.agent, "--psrp", "--pwsh", "/bin/false", "--command", "1")
    check(code == 255, f"a server that exits at once gives 255 (got {code})", out + err)
    check("wincert-agent:" in err, "a message on stderr", err)

    # Option checks: --ssh needs --psrp; an unreachable WS-Man endpoint is a local error naming it; --ssh needs
    # --known-hosts. (PSRP over WS-Man itself: winrm_psrp_wsman_cli_test.py.)
    code, out, err = run(args.agent, "--ssh", "127.0.0.1", "--command", "1")
    check(code != 0 and "need --psrp" in err, "--ssh without --psrp is refused", out + err)
    code, out, err = run(args.agent, "--psrp", "--endpoint", "http://127.0.0.1:1/wsman", "--command", "1")
    check(code == 255 and "127.0.0.1:1" in err, "an unreachable WS-Man endpoint gives 255 and names it", out + err)
    code, out, err = run(args.agent, "--psrp", "--ssh", "127.0.0.1:1", "--user", "u", "--command", "1")
    check(code == 255 and "--known-hosts" in err, "--ssh needs --known-hosts", out + err)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
