#!/usr/bin/python3
"""The Debian package: built with CPack, checked by lintian, installed into and purged from a throwaway root.

Usage: deb_package_test.py BUILD_DIR
  BUILD_DIR  the default build (wincert-agent built); `cpack -G DEB` runs there first.

How the install is tested (and how far it goes): `dpkg --root=ROOT --force-script-chrootless` unpacks the package
into an empty directory with its own dpkg database and runs the real maintainer scripts with DPKG_ROOT=ROOT, the
way Debian's DPKG_ROOT bootstrap does. The scripts create the user with `systemd-sysusers --root`, the directories
with `systemd-tmpfiles --root` (names resolved in ROOT's /etc/passwd) and enable the unit with deb-systemd-helper,
all of which honour DPKG_ROOT; with DPKG_ROOT set they never call systemctl. The "started only once configured"
decisions are checked separately by running postinst/prerm with stubbed tools (maintainer_script_decisions), and the
unit's ConditionPathExists= holds the service back at boot; no live systemd starts anything here.
`--force-depends` because the empty root has no libc6/libssl3 (the host's libraries run the installed binary).
The root is a temporary directory, not a chroot, so nothing needs privileges beyond --force-not-root.
Exits 0 when every check holds, 1 otherwise, 77 (skipped) when lintian or dpkg tools are missing.
"""
import glob
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import wincert_testsupport as ts  # noqa: E402

SKIP = 77
UNIT = "lib/systemd/system/wincert-agent.service"
failures = []


def check(condition, what, detail=None):
    if condition:
        print(f"  ok  {what}", flush=True)
    else:
        print(f"  FAIL {what}" + (f": {detail}" if detail is not None else ""), flush=True)
        failures.append(what)
    return condition


def run(argv, **kw):
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, errors="replace", **kw)
    print(f"     $ {' '.join(argv)}  -> {proc.returncode} ({time.monotonic() - t0:.1f} s)", flush=True)
    return proc


def ids(root, db):
    """name -> numeric id from ROOT/etc/passwd or ROOT/etc/group."""
    out = {}
    path = os.path.join(root, "etc", db)
    if os.path.exists(path):
        for line in open(path, encoding="utf-8"):
            fields = line.strip().split(":")
            if len(fields) >= 3:
                out[fields[0]] = int(fields[2])
    return out


def mode_owner(path):
    st = os.lstat(path)
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def maintainer_script_decisions(work):
    """The start/no-start decisions of postinst and prerm on a live systemd, which the --root install cannot reach
    (with DPKG_ROOT set the scripts leave systemctl alone): the scripts run with every tool they call replaced by a
    stub that logs its arguments, /run/systemd/system pointed at a directory of the test and the configuration path
    at a file of the test. Nothing on this machine is touched."""
    print("-- postinst / prerm decisions with a (stubbed) live systemd", flush=True)
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "packaging", "debian")
    stubs, run_dir = os.path.join(work, "stubs"), os.path.join(work, "run-systemd")
    os.makedirs(stubs)
    os.makedirs(run_dir)
    calls = os.path.join(work, "calls.log")
    for tool in ("systemd-sysusers", "systemd-tmpfiles", "deb-systemd-helper", "deb-systemd-invoke", "systemctl"):
        with open(os.path.join(stubs, tool), "w") as f:
            f.write(f'#!/bin/sh\necho "{tool} $*" >>"{calls}"\n')
        os.chmod(os.path.join(stubs, tool), 0o755)
    config = os.path.join(work, "agent.json")
    scripts = {}
    for name in ("postinst", "prerm"):
        text = open(os.path.join(source, name)).read().replace("/run/systemd/system", run_dir)
        text = text.replace("config=/etc/wincert-agent/agent.json", f"config={config}")
        scripts[name] = os.path.join(work, name)
        with open(scripts[name], "w") as f:
            f.write(text)
        os.chmod(scripts[name], 0o755)
    env = dict(os.environ, PATH=stubs + ":/usr/bin:/bin")
    env.pop("DPKG_ROOT", None)

    def run_script(name, *args, configured):
        if configured:
            open(config, "w").close()
        elif os.path.exists(config):
            os.remove(config)
        if os.path.exists(calls):
            os.remove(calls)
        proc = subprocess.run([scripts[name]] + list(args), env=env, capture_output=True, text=True)
        log = open(calls).read() if os.path.exists(calls) else ""
        return proc.returncode, proc.stdout, log

    rc, out, log = run_script("postinst", "configure", "", configured=False)
    check(rc == 0 and "deb-systemd-helper enable wincert-agent.service" in log and "deb-systemd-invoke" not in log
          and "configure it first" in out, "fresh install, no agent.json: enabled, not started, the admin is told", log)
    rc, out, log = run_script("postinst", "configure", "", configured=True)
    check(rc == 0 and "deb-systemd-invoke start wincert-agent.service" in log, "fresh install, agent.json there: started",
          log)
    rc, out, log = run_script("postinst", "configure", "0.1.0-1", configured=True)
    check(rc == 0 and "deb-systemd-invoke restart wincert-agent.service" in log, "upgrade, configured: restarted", log)
    rc, out, log = run_script("postinst", "configure", "0.1.0-1", configured=False)
    check(rc == 0 and "deb-systemd-invoke" not in log and "configure it first" not in out,
          "upgrade, not configured: not started, no note", log)
    rc, out, log = run_script("prerm", "remove", configured=True)
    check(rc == 0 and "deb-systemd-invoke stop wincert-agent.service" in log, "prerm remove: stopped", log)
    rc, out, log = run_script("prerm", "upgrade", "0.1.0-2", configured=True)
    check(rc == 0 and "deb-systemd-invoke" not in log, "prerm upgrade: kept running until postinst restarts it", log)


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    build = os.path.abspath(argv[1])
    for tool in ("cpack", "dpkg", "dpkg-deb", "lintian", "systemd-analyze", "systemd-sysusers", "systemd-tmpfiles"):
        if shutil.which(tool) is None:
            print(f"SKIP: {tool} is missing (scripts/setup.sh installs it)")
            return SKIP

    print("-- cpack -G DEB", flush=True)
    for old in glob.glob(os.path.join(build, "packages", "wincert-agent_*.deb")):
        os.remove(old)
    proc = run(["cpack", "-G", "DEB", "--config", os.path.join(build, "CPackConfig.cmake")], cwd=build)
    if not check(proc.returncode == 0, "cpack builds the package", proc.stdout[-2000:] + proc.stderr[-2000:]):
        return 1
    debs = glob.glob(os.path.join(build, "packages", "wincert-agent_*.deb"))
    if not check(len(debs) == 1, "one wincert-agent_*.deb in packages/", debs):
        return 1
    deb = debs[0]
    print(f"     {os.path.basename(deb)}: {os.path.getsize(deb) // 1024} KiB")

    print("-- control fields and contents", flush=True)
    info = run(["dpkg-deb", "-f", deb]).stdout
    fields = dict(line.split(": ", 1) for line in info.splitlines() if ": " in line and not line.startswith(" "))
    depends = fields.get("Depends", "")
    check(all(lib in depends for lib in ("libc6", "libssl3", "libstdc++6", "libgssapi-krb5-2", "adduser")),
          f"Depends from dpkg-shlibdeps: {depends}")
    check(fields.get("Section") == "admin" and fields.get("Priority") == "optional", "Section admin, Priority optional")
    listing = run(["dpkg-deb", "-c", deb]).stdout
    for path in ("./usr/bin/wincert-agent", "./" + UNIT, "./usr/lib/sysusers.d/wincert-agent.conf",
                 "./usr/lib/tmpfiles.d/wincert-agent.conf", "./usr/share/doc/wincert-agent/examples/agent.example.json",
                 "./usr/share/doc/wincert-agent/copyright", "./usr/share/doc/wincert-agent/changelog.Debian.gz",
                 "./usr/share/man/man8/wincert-agent.8.gz", "./usr/share/lintian/overrides/wincert-agent"):
        check(f" {path}\n" in listing + "\n" or f" {path} " in listing, f"ships {path[1:]}")
    check("command-sim" not in listing and "winhost-sim" not in listing, "the simulators do not ship")
    check("./etc/" not in listing, "no live configuration in /etc (the example is under /usr/share/doc)")

    print("-- lintian", flush=True)
    proc = run(["lintian", "--display-info", "--show-overrides", "--tag-display-limit", "0", deb])
    tags = [line for line in proc.stdout.splitlines() if line[:2] in ("E:", "W:", "I:")]
    overridden = [line for line in proc.stdout.splitlines() if line.startswith("O:")]
    for line in overridden:
        print(f"     overridden (reason in packaging/debian/lintian-overrides): {line}")
    check(not tags, "lintian: no error, warning or info tag left", "\n" + "\n".join(tags))

    work = tempfile.mkdtemp(prefix="wincert-deb-")
    root = os.path.join(work, "root")
    try:
        print("-- dpkg --root: install into an empty root", flush=True)
        for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"):
            os.makedirs(os.path.join(root, d))
        open(os.path.join(root, "var/lib/dpkg/status"), "w").close()
        with open(os.path.join(root, "etc/passwd"), "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\n")
        with open(os.path.join(root, "etc/group"), "w") as f:
            f.write("root:x:0:\n")
        dpkg = ["dpkg", f"--root={root}", "--log=/dev/null", "--force-not-root", "--force-script-chrootless",
                "--force-depends"]
        proc = run(dpkg + ["-i", deb])
        print("\n".join("       " + line for line in (proc.stdout + proc.stderr).splitlines()[-8:]))
        if not check(proc.returncode == 0, "dpkg -i into the throwaway root", proc.stderr[-2000:]):
            return 1
        check("not started: configure it first" in proc.stdout, "postinst says the service waits for agent.json")

        users, groups = ids(root, "passwd"), ids(root, "group")
        uid, gid = users.get("wincert-agent"), groups.get("wincert-agent")
        check(uid is not None and 0 < uid < 1000 and gid is not None, f"system user wincert-agent ({uid}:{gid})")
        passwd_line = [l for l in open(os.path.join(root, "etc/passwd")) if l.startswith("wincert-agent:")]
        check(passwd_line and passwd_line[0].rstrip().endswith(":/var/lib/wincert-agent:/usr/sbin/nologin"),
              "its home is /var/lib/wincert-agent, no login shell", passwd_line)
        expect = {
            "etc/wincert-agent": (0o750, 0, gid),
            "etc/wincert-agent/secrets.json": (0o600, uid, gid),
            "var/lib/wincert-agent": (0o700, uid, gid),
            "usr/bin/wincert-agent": (0o755, os.getuid(), os.getgid()),
            UNIT: (0o644, os.getuid(), os.getgid()),
        }
        for path, want in expect.items():
            full = os.path.join(root, path)
            got = mode_owner(full) if os.path.exists(full) else None
            check(got == want, f"/{path} mode {oct(want[0])} owner {want[1]}:{want[2]}", got)
        with open(os.path.join(root, "etc/wincert-agent/secrets.json")) as f:
            check(f.read().strip() == "{}", "secrets.json starts as an empty JSON object")
        wants = os.path.join(root, "etc/systemd/system/multi-user.target.wants/wincert-agent.service")
        check(os.path.islink(wants) and os.readlink(wants) == "/" + UNIT, "the unit is enabled (multi-user.target)",
              os.readlink(wants) if os.path.islink(wants) else None)
        check(not os.path.exists(os.path.join(root, "etc/wincert-agent/agent.json")), "no agent.json: not configured")

        proc = run([os.path.join(root, "usr/bin/wincert-agent"), "version"])
        check(proc.returncode == 0 and proc.stdout.strip(), f"the installed (stripped) binary runs: {proc.stdout.strip()}")

        print("-- the unit", flush=True)
        unit = open(os.path.join(root, UNIT)).read()
        for line in ("User=wincert-agent", "ExecStart=/usr/bin/wincert-agent run --config /etc/wincert-agent/agent.json",
                     "ConditionPathExists=/etc/wincert-agent/agent.json", "StateDirectory=wincert-agent",
                     "ConfigurationDirectory=wincert-agent", "LimitCORE=0"):
            check(f"\n{line}\n" in unit, line)
        # verify starts a transaction, so the root needs the targets the unit hangs off (sysinit.target,
        # network-online.target, ...): the host's unit directory is copied in for this step and removed after.
        # MANPATH lets it find the Documentation= man page in the root. It checks the syntax of every line, the
        # ExecStart binary in the root and the dependencies; a bad value is a complaint on stderr.
        host_units = os.path.join(root, "usr/lib/systemd/system")
        shutil.copytree("/usr/lib/systemd/system", host_units, symlinks=True)
        proc = run(["systemd-analyze", "verify", f"--root={root}", "/" + UNIT],
                   env=dict(os.environ, MANPATH=os.path.join(root, "usr/share/man")))
        shutil.rmtree(os.path.join(root, "usr/lib/systemd"))
        check(proc.returncode == 0 and not proc.stderr.strip(), "systemd-analyze verify --root: no complaint",
              proc.stderr.strip())
        proc = run(["systemd-analyze", "security", "--offline=true", f"--root={root}", "--no-pager", "/" + UNIT])
        summary = [l for l in proc.stdout.splitlines() if "Overall exposure level" in l]
        check(proc.returncode == 0 and summary, f"systemd-analyze security: {summary[0].split('→ ')[-1] if summary else '?'}",
              proc.stdout[-800:] + proc.stderr[-800:])
        if summary:
            score = float(summary[0].split("level for")[1].split(":")[1].split()[0])
            check(score <= 2.5, f"exposure {score} <= 2.5 (systemd's 'OK' band)")

        print("-- the administrator configures it; reinstalling (an upgrade) keeps configuration and modes", flush=True)
        with open(os.path.join(root, "etc/wincert-agent/agent.json"), "w") as f:
            f.write('{"AgentsServerUri": "https://command.example.com/KeyfactorAgents"}\n')
        with open(os.path.join(root, "etc/wincert-agent/secrets.json"), "w") as f:
            f.write('{"Password": "not-a-real-one"}\n')
        with open(os.path.join(root, "var/lib/wincert-agent/agent-id"), "w") as f:
            f.write("kept\n")
        proc = run(dpkg + ["-i", deb])
        check(proc.returncode == 0, "dpkg -i again (upgrade path)", proc.stderr[-2000:])
        check("not started" not in proc.stdout, "no 'configure it first' note once agent.json exists")
        check("not-a-real-one" in open(os.path.join(root, "etc/wincert-agent/secrets.json")).read(),
              "the secrets file is kept")
        check(mode_owner(os.path.join(root, "etc/wincert-agent/secrets.json")) == (0o600, uid, gid),
              "secrets.json still 0600 wincert-agent")

        print("-- remove, then purge", flush=True)
        proc = run(dpkg + ["-r", "wincert-agent"])
        check(proc.returncode == 0, "dpkg -r", proc.stderr[-2000:])
        check(not os.path.exists(os.path.join(root, "usr/bin/wincert-agent")) and
              not os.path.exists(os.path.join(root, UNIT)), "remove: the binary and the unit are gone")
        check(os.path.exists(os.path.join(root, "etc/wincert-agent/agent.json")) and
              os.path.exists(os.path.join(root, "var/lib/wincert-agent/agent-id")),
              "remove: configuration and state stay")
        proc = run(dpkg + ["-P", "wincert-agent"])
        check(proc.returncode == 0, "dpkg -P", proc.stderr[-2000:])
        for path in ("etc/wincert-agent", "var/lib/wincert-agent", "etc/systemd/system/multi-user.target.wants/"
                     "wincert-agent.service", "usr/share/doc/wincert-agent"):
            check(not os.path.lexists(os.path.join(root, path)), f"purge: /{path} is gone")
        status = run(["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f=${Status}", "wincert-agent"])
        check("installed" not in status.stdout or "not-installed" in status.stdout,
              f"dpkg no longer lists it ({status.stdout.strip() or 'unknown'})")
        leftovers = []
        for dirpath, dirnames, filenames in os.walk(root):
            for name in filenames:
                rel = os.path.relpath(os.path.join(dirpath, name), root)
                if not rel.startswith(("var/lib/dpkg/", "etc/passwd", "etc/group", "etc/shadow", "etc/gshadow", "etc/.pwd.lock",
                                       "var/lib/systemd/deb-systemd-helper")):
                    leftovers.append(rel)
        check(not leftovers, "purge leaves only dpkg's database and the user (Debian keeps system users)", leftovers)
        maintainer_script_decisions(os.path.join(work, "scripts"))
    finally:
        if os.environ.get("PKG_KEEP") == "1":
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)

    print("PASS" if not failures else f"FAIL ({len(failures)} check(s))")
    return 0 if not failures else 1


class DebPackageTest(ts.TestCase):
    def test_deb_package(self):
        code = main([sys.argv[0]] + [ts.ARGS.build])
        if code == SKIP:
            self.skipTest("a prerequisite is missing (see the SKIP line above)")
        self.assertEqual(code, 0, "see the FAIL lines above")


if __name__ == "__main__":
    ts.main(positional=('build',), description=__doc__, skip_exit_code=SKIP)
