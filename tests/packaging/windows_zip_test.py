#!/usr/bin/python3
"""The Windows package: the zip made by `cpack -G ZIP` in the Windows build, unpacked and installed under Wine with
its own install.cmd (Wine's cmd.exe; Wine's powershell.exe is a stub, so the installer is a batch file), then
upgraded (install.cmd again) and removed with uninstall.cmd.

Usage: windows_zip_test.py BUILD_DIR WINE_RUN TEMPLATE_PREFIX
  BUILD_DIR        the Windows (mingw-w64) build, wincert-agent.exe built
  WINE_RUN         cmake/wine-run.sh
  TEMPLATE_PREFIX  a ready Wine prefix; it is copied, so the service this test installs stays in the test
The service runs against an unreachable Command (the agent retries with backoff); the jobs themselves are the
service end-to-end test's business (tests/e2e/windows_service.py).
Exits 0 when every check holds, 1 otherwise, 77 (skipped) when Wine or objdump is missing.
PKG_KEEP=1 keeps the temporary directory.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import wincert_testsupport as ts  # noqa: E402

SKIP = 77
OBJDUMP = "x86_64-w64-mingw32-objdump"
# DLLs every Windows has: the zip must not need anything else (the mingw runtime and OpenSSL are linked statically).
SYSTEM_DLL = re.compile(r"^(kernel32|advapi32|user32|ws2_32|wsock32|mswsock|crypt32|ncrypt|bcrypt|secur32|sspicli|"
                        r"msvcrt|ucrtbase|shell32|ole32|oleaut32|rpcrt4|iphlpapi|dnsapi|userenv|netapi32|wtsapi32|"
                        r"gdi32|shlwapi|version|dbghelp|api-ms-win-[a-z0-9-]+)\.dll$", re.IGNORECASE)
failures = []


def check(condition, what, detail=None):
    if condition:
        print(f"  ok  {what}", flush=True)
    else:
        print(f"  FAIL {what}" + (f": {detail}" if detail is not None else ""), flush=True)
        failures.append(what)
    return condition


class Wine:
    def __init__(self, wine_run, prefix):
        self.wine_run, self.prefix = wine_run, prefix
        self.env = dict(os.environ, WINCERT_WINESERVER_PERSIST="60")

    def run(self, *argv, timeout=240):
        t0 = time.monotonic()
        proc = subprocess.run([self.wine_run, self.prefix] + list(argv), env=self.env, capture_output=True,
                              text=True, errors="replace", timeout=timeout, stdin=subprocess.DEVNULL)
        out = (proc.stdout + proc.stderr).replace("\r", "").strip()
        print(f"     $ {' '.join(argv)}  -> {proc.returncode} ({time.monotonic() - t0:.1f} s)", flush=True)
        for line in out.splitlines()[-8:]:
            print(f"       {line}")
        return proc.returncode, out

    def kill_server(self):
        subprocess.run(["/usr/lib/wine/wineserver", "-k"], env=dict(self.env, WINEPREFIX=self.prefix),
                       capture_output=True, timeout=60)


def winpath(path):
    return "Z:" + os.path.abspath(path).replace("/", "\\")


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    build, wine_run, template = (os.path.abspath(a) for a in argv[1:4])
    if shutil.which(OBJDUMP) is None or not os.path.exists("/usr/lib/wine/wine64"):
        print(f"SKIP: {OBJDUMP} or wine64 is missing (scripts/setup.sh installs them)")
        return SKIP
    source = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

    print("-- cpack -G ZIP", flush=True)
    for old in glob.glob(os.path.join(build, "packages", "wincert-agent-*.zip")):
        os.remove(old)
    t0 = time.monotonic()
    proc = subprocess.run(["cpack", "-G", "ZIP", "--config", os.path.join(build, "CPackConfig.cmake")], cwd=build,
                          capture_output=True, text=True)
    print(f"     cpack -> {proc.returncode} ({time.monotonic() - t0:.1f} s)")
    if not check(proc.returncode == 0, "cpack builds the zip", proc.stdout[-2000:] + proc.stderr[-2000:]):
        return 1
    zips = glob.glob(os.path.join(build, "packages", "wincert-agent-*-win64.zip"))
    if not check(len(zips) == 1, "one wincert-agent-*-win64.zip in packages/", zips):
        return 1
    print(f"     {os.path.basename(zips[0])}: {os.path.getsize(zips[0]) // 1024} KiB")

    work = tempfile.mkdtemp(prefix="wincert-zip-")
    prefix = os.path.join(work, "wineprefix")
    wine = Wine(wine_run, prefix)
    try:
        print("-- the zip's contents", flush=True)
        with zipfile.ZipFile(zips[0]) as z:
            names = z.namelist()
            z.extractall(os.path.join(work, "unpacked"))
        top = {n.split("/")[0] for n in names}
        check(len(top) == 1, f"one top-level directory {sorted(top)}")
        unpacked = os.path.join(work, "unpacked", sorted(top)[0])
        for name in ("wincert-agent.exe", "install.cmd", "uninstall.cmd", "agent.example.json", "README.md"):
            check(os.path.isfile(os.path.join(unpacked, name)), f"has {name}")
        for optional in ("store-types", "jea"):
            if os.path.isdir(os.path.join(source, "config", optional)):
                check(os.path.isdir(os.path.join(unpacked, optional)), f"has {optional}/ (config/{optional} exists)")
        check(not [n for n in names if re.search(r"(command|winhost)-sim", n)], "the simulators do not ship")
        with open(os.path.join(unpacked, "install.cmd"), "rb") as f:
            check(b"\r\n" in f.read() , "install.cmd has CRLF line endings")
        example_text = open(os.path.join(unpacked, "agent.example.json"), encoding="utf-8").read()
        example = json.loads(example_text)
        check("/etc/wincert-agent" not in example_text and "/var/lib" not in example_text and
              example["SecretsFile"] == "secrets.json" and example["OutboxDirectory"] == "state",
              "the example configuration uses paths beside itself (secrets.json, state)")

        imports = subprocess.run([OBJDUMP, "-p", os.path.join(unpacked, "wincert-agent.exe")], capture_output=True,
                                 text=True).stdout
        dlls = sorted({m.group(1) for m in re.finditer(r"DLL Name: (\S+)", imports)})
        check(dlls and all(SYSTEM_DLL.match(d) for d in dlls),
              f"wincert-agent.exe imports only Windows DLLs ({', '.join(dlls)})",
              [d for d in dlls if not SYSTEM_DLL.match(d)])

        print("-- a Wine prefix of its own", flush=True)
        t0 = time.monotonic()
        shutil.copytree(template, prefix, symlinks=True)
        print(f"     (prefix copied in {time.monotonic() - t0:.1f} s)")
        program_data = os.path.join(prefix, "drive_c", "ProgramData", "wincert-agent")
        program_files = os.path.join(prefix, "drive_c", "Program Files", "wincert-agent")
        install_cmd = winpath(os.path.join(unpacked, "install.cmd"))

        print("-- install.cmd, first run: the configuration to edit, no service yet", flush=True)
        rc, out = wine.run("cmd.exe", "/c", install_cmd)
        check(rc == 2 and "run install.cmd again" in out, "exit code 2 and the next step", out)
        config_path = os.path.join(program_data, "agent.json")
        check(os.path.isfile(config_path), "%ProgramData%\\wincert-agent\\agent.json created from the example")
        check(os.path.isfile(os.path.join(program_data, "secrets.json")) and
              open(os.path.join(program_data, "secrets.json")).read().strip() == "{}", "an empty secrets.json beside it")
        check(not os.path.exists(program_files), "nothing installed into Program Files yet")

        print("-- the administrator edits the example; install.cmd again: installed and started", flush=True)
        config = json.load(open(config_path, encoding="utf-8"))
        config.update({"AgentsServerUri": "http://127.0.0.1:9/KeyfactorAgents", "OrchestratorName": "zip-test",
                       "ServerCaFile": "", "RetryMaxSeconds": 5, "ShutdownGraceSeconds": 5, "OutboxFlushSeconds": 2})
        config["WinRM"]["CaFile"] = ""
        with open(config_path, "w", encoding="utf-8") as f:
            json.dump(config, f, indent=1)
        with open(os.path.join(program_data, "secrets.json"), "w", encoding="utf-8") as f:
            json.dump({"Password": "zip-test-password"}, f)
        rc, out = wine.run("cmd.exe", "/c", install_cmd)
        check(rc == 0 and "installed service 'wincert-agent'" in out and "is running" in out,
              "install.cmd registers the service and the SCM reports it running", out)
        check(os.path.isfile(os.path.join(program_files, "wincert-agent.exe")) and
              os.path.isfile(os.path.join(program_files, "uninstall.cmd")),
              "the program is in %ProgramFiles%\\wincert-agent")
        rc, out = wine.run("reg.exe", "query", "HKLM\\System\\CurrentControlSet\\Services\\wincert-agent",
                           "/v", "ImagePath")
        check(rc == 0 and "Program Files\\wincert-agent\\wincert-agent.exe" in out and
              "ProgramData\\wincert-agent\\agent.json" in out and "service run" in out,
              "the service runs the installed copy with the ProgramData configuration", out)

        print("-- install.cmd once more (an upgrade): the running service is replaced", flush=True)
        rc, out = wine.run("cmd.exe", "/c", install_cmd, "--no-start")
        check(rc == 0 and "installed service 'wincert-agent'" in out, "reinstalled without starting", out)

        print("-- uninstall.cmd", flush=True)
        rc, out = wine.run("cmd.exe", "/c", winpath(os.path.join(unpacked, "uninstall.cmd")))
        check(rc == 0 and "uninstalled service 'wincert-agent'" in out, "the service is removed", out)
        rc, out = wine.run("reg.exe", "query", "HKLM\\System\\CurrentControlSet\\Services\\wincert-agent")
        check(rc != 0, "its registry key is gone")
        check(not os.path.exists(os.path.join(program_files, "wincert-agent.exe")), "the program directory is gone")
        check(os.path.isfile(config_path) and os.path.isfile(os.path.join(program_data, "secrets.json")),
              "the configuration and secrets stay in %ProgramData%")
    except subprocess.TimeoutExpired as e:
        check(False, f"timed out: {e}")
    finally:
        wine.kill_server()
        if os.environ.get("PKG_KEEP") == "1":
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)

    print("PASS" if not failures else f"FAIL ({len(failures)} check(s))")
    return 0 if not failures else 1


class WindowsZipTest(ts.TestCase):
    def test_windows_zip(self):
        code = main([sys.argv[0]] + [ts.ARGS.build, ts.ARGS.wine_run, ts.ARGS.wine_prefix])
        if code == SKIP:
            self.skipTest("a prerequisite is missing (see the SKIP line above)")
        self.assertEqual(code, 0, "see the FAIL lines above")


if __name__ == "__main__":
    ts.main(positional=('build', 'wine_run', 'wine_prefix'), description=__doc__, skip_exit_code=SKIP)
