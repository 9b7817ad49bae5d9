#!/usr/bin/python3
"""Interop under Wine: the Windows-built WinRM client (winrm_windows_interop_tests.exe) against the native
Linux winhost-sim on loopback.

Starts
  - winhost-sim over HTTPS (Basic, NTLM, Negotiate; a throwaway self-signed certificate the client trusts
    through its CA file),
  - winhost-sim over HTTP (NTLM, Negotiate, Kerberos; message encryption required as on Windows), with the
    keytab of a throwaway MIT realm (krb5kdc on a loopback port) when the KDC tools are installed,
then runs the test program under Wine (cmake/wine-run.sh) with the endpoints and credentials in
WINCERT_INTEROP_* variables, and KRB5_CONFIG/KRB5CCNAME for Wine's Kerberos SSP (which calls the host's
MIT libraries). Stops everything afterwards.

Exit code: the test program's; 77 (ctest SKIP_RETURN_CODE) when winhost-sim is not built.
Usage: windows_interop.py --sim PATH --wine-run cmake/wine-run.sh --wine-prefix DIR --test-exe PATH [gtest args]
"""
import argparse
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import wincert_testsupport as ts  # noqa: E402

SKIP = 77
USER, PASSWORD = "WINCERT\\alice", "Interop-Ntlm-S3cret"
REALM, KRB_USER, KRB_PASSWORD = "TEST.LOCAL", "alice", "Interop-Krb-S3cret"


def log(msg):
    print("windows_interop: %s" % msg, flush=True)


def run(cmd, env=None, stdin=None):
    return ts.run(cmd, env, stdin, timeout=120)


class Sim:
    """winhost-sim on port 0 (tests/support/wincert_testsupport.py), its log in WORK/NAME.log."""

    def __init__(self, binary, work, name, env, *args):
        self.name = name
        self.log_path = os.path.join(work, name + ".log")
        # --ps-start-ms 0: interop, not the host's PowerShell start cost.
        self.server = ts.Server(f"winhost-sim ({name})", binary, ["--log-level", "debug", "--log-file", self.log_path,
                                                                   "--ps-start-ms", "0"] + list(args), work,
                                env=env).start()
        self.port = self.server.port

    def url(self, https=False, host="127.0.0.1"):
        return self.server.url("/wsman", "https" if https else "http", host)

    def stop(self):
        self.server.stop()


def self_signed_certificate(work):
    cert, key = os.path.join(work, "server.pem"), os.path.join(work, "server.key")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:TRUE",
         "-keyout", key, "-out", cert])
    return cert, key


def windows_path(path):
    """A Linux path as Wine's Z: drive sees it (Z: maps to /)."""
    return "Z:" + path.replace("/", "\\")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sim", required=True)
    parser.add_argument("--wine-run", required=True)
    parser.add_argument("--wine-prefix", required=True)
    parser.add_argument("--test-exe", required=True)
    args, gtest_args = parser.parse_known_args()

    if not os.access(args.sim, os.X_OK):
        log("SKIP: winhost-sim is not at %s; build the Linux tree first (cmake --preset default && "
            "cmake --build --preset default), or point WINCERT_HOST_BUILD_DIR at a Linux build" % args.sim)
        return SKIP
    have_kdc = all(shutil.which(tool) for tool in ("kdb5_util", "kadmin.local", "krb5kdc"))

    work_dir = ts.TempDir("wincert-wine-interop-")
    work = work_dir.path
    started = []
    realm = None
    try:
        users = os.path.join(work, "users")
        with open(users, "w") as f:
            f.write("WINCERT:alice:%s\n" % PASSWORD)
        cert, key = self_signed_certificate(work)
        sim_env = dict(os.environ)
        auth = "ntlm,negotiate"
        kerberos_args = []
        if have_kdc:
            realm = ts.Realm(work, REALM, {KRB_USER: KRB_PASSWORD})
            sim_env = dict(realm.env)
            auth += ",kerberos"
            kerberos_args = ["--keytab", realm.keytab]
        else:
            log("Kerberos cases skipped: kdb5_util/kadmin.local/krb5kdc not installed (krb5-kdc, krb5-admin-server)")
        https = Sim(args.sim, work, "https", sim_env, "--users", users, "--auth", "basic,ntlm,negotiate",
                    "--tls-cert", cert, "--tls-key", key)
        started.append(https)
        http = Sim(args.sim, work, "http", sim_env, "--users", users, "--auth", auth, *kerberos_args)
        started.append(http)

        env = dict(os.environ)
        env.update({
            "WINCERT_INTEROP_HTTPS_URL": https.url(True, "localhost"),
            "WINCERT_INTEROP_CA_FILE": windows_path(cert),
            "WINCERT_INTEROP_HTTP_URL": http.url(),
            "WINCERT_INTEROP_USER": USER,
            "WINCERT_INTEROP_PASSWORD": PASSWORD,
            # Wine's Kerberos SSP reads the host's krb5 configuration and caches its tickets in the default
            # ccache: both point into the work directory, never at the machine's.
            "KRB5CCNAME": "FILE:" + os.path.join(work, "wine-ccache"),
        })
        if realm:
            env.update({
                "KRB5_CONFIG": realm.conf,
                "WINCERT_INTEROP_KRB_URL": http.url(host="localhost"),  # SPN HTTP/localhost
                "WINCERT_INTEROP_KRB_USER": "%s@%s" % (KRB_USER, REALM),
                "WINCERT_INTEROP_KRB_PASSWORD": KRB_PASSWORD,
            })
        else:
            # Without a realm, the Kerberos error case still runs against a configuration with no KDC at all.
            no_kdc = os.path.join(work, "no-kdc-krb5.conf")
            with open(no_kdc, "w") as f:
                f.write("[libdefaults]\n dns_lookup_kdc = false\n dns_lookup_realm = false\n")
            env["KRB5_CONFIG"] = no_kdc
        env.pop("WINEDEBUG", None)
        cmd = [args.wine_run, args.wine_prefix, args.test_exe] + gtest_args
        log("running %s" % " ".join(cmd))
        result = subprocess.run(cmd, env=env, timeout=540)
        if result.returncode != 0:
            for sim in started:
                tail = open(sim.log_path, encoding="utf-8", errors="replace").read()[-3000:]
                log("winhost-sim (%s) log tail:\n%s" % (sim.name, tail))
        return result.returncode
    finally:
        for sim in started:
            sim.stop()
        if realm:
            realm.stop()
        work_dir.close()


if __name__ == "__main__":
    sys.exit(main())
