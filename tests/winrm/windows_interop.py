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
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

SKIP = 77
USER, PASSWORD = "WINCERT\\alice", "Interop-Ntlm-S3cret"
REALM, KRB_USER, KRB_PASSWORD = "TEST.LOCAL", "alice", "Interop-Krb-S3cret"


def log(msg):
    print("windows_interop: %s" % msg, flush=True)


def run(cmd, env=None, stdin=None):
    p = subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError("%s failed: %s %s" % (" ".join(cmd), p.stdout, p.stderr))
    return p.stdout


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Realm:
    """A throwaway MIT realm with HTTP/localhost in a keytab (the layout of tests/support/krb5_kdc)."""

    def __init__(self, work):
        self.dir = os.path.join(work, "krb5")
        os.makedirs(self.dir)
        self.port = free_port()
        self.keytab = os.path.join(self.dir, "http.keytab")
        self.conf = os.path.join(self.dir, "krb5.conf")
        kdc_conf = os.path.join(self.dir, "kdc.conf")
        with open(self.conf, "w") as f:
            f.write("[libdefaults]\n default_realm = %s\n dns_lookup_kdc = false\n dns_lookup_realm = false\n"
                    " dns_canonicalize_hostname = false\n rdns = false\n udp_preference_limit = 1\n"
                    "[realms]\n %s = {\n  kdc = 127.0.0.1:%d\n }\n[domain_realm]\n localhost = %s\n"
                    % (REALM, REALM, self.port, REALM))
        with open(kdc_conf, "w") as f:
            f.write("[kdcdefaults]\n kdc_ports = %d\n kdc_tcp_ports = %d\n[realms]\n %s = {\n"
                    "  database_name = %s/principal\n  key_stash_file = %s/stash\n  acl_file = %s/kadm5.acl\n"
                    "  kdc_ports = %d\n  kdc_tcp_ports = %d\n  master_key_type = aes256-cts-hmac-sha1-96\n"
                    "  supported_enctypes = aes256-cts-hmac-sha1-96:normal\n }\n[logging]\n kdc = FILE:%s/kdc.log\n"
                    % (self.port, self.port, REALM, self.dir, self.dir, self.dir, self.port, self.port, self.dir))
        open(os.path.join(self.dir, "kadm5.acl"), "w").close()
        self.env = dict(os.environ, KRB5_CONFIG=self.conf, KRB5_KDC_PROFILE=kdc_conf,
                        KRB5CCNAME="FILE:" + os.path.join(self.dir, "ccache"), KRB5_KTNAME=self.keytab)
        run(["kdb5_util", "create", "-s", "-r", REALM, "-P", "master-" + uuid.uuid4().hex], self.env)
        run(["kadmin.local", "-r", REALM, "-q", "addprinc -pw %s %s" % (KRB_PASSWORD, KRB_USER)], self.env)
        run(["kadmin.local", "-r", REALM, "-q", "addprinc -randkey HTTP/localhost"], self.env)
        run(["kadmin.local", "-r", REALM, "-q", "ktadd -k %s HTTP/localhost" % self.keytab], self.env)
        self.proc = subprocess.Popen(["krb5kdc", "-n"], env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("krb5kdc did not start on port %d" % self.port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Sim:
    def __init__(self, binary, work, name, env, *args):
        self.name = name
        self.port_file = os.path.join(work, name + ".port")
        self.log_path = os.path.join(work, name + ".log")
        cmd = [binary, "--listen", "127.0.0.1:0", "--port-file", self.port_file, "--log-level", "debug",
               "--log-file", self.log_path] + list(args)
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            if os.path.exists(self.port_file):
                text = open(self.port_file).read().strip()
                if text:
                    self.port = int(text)
                    return
            if self.proc.poll() is not None:
                raise RuntimeError("winhost-sim (%s) exited early: %s" % (name, self.proc.stderr.read()))
            time.sleep(0.05)
        raise RuntimeError("winhost-sim (%s) did not start" % name)

    def url(self, https=False, host="127.0.0.1"):
        return "%s://%s:%d/wsman" % ("https" if https else "http", host, self.port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


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

    work = tempfile.mkdtemp(prefix="wincert-wine-interop-")
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
            realm = Realm(work)
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
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
