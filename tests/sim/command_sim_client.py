#!/usr/bin/python3
"""An independent client for command-sim: Python's urllib (not our C++ client) plays an orchestrator.

It starts command-sim with Basic authentication on a free port, registers (New, awaiting approval),
has the admin API approve it and schedule an Add job with a PFX made by the simulator's CA, learns
about the job through a heartbeat that says the session is no longer valid, registers again, fetches
the job configuration from the endpoint it was handed, checks its Universal Orchestrator shape, and
completes it. Usage: command_sim_client.py PATH/TO/command-sim [unittest arguments]; exit status 0 on success.
"""
import base64
import json
import os
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import wincert_testsupport as ts  # noqa: E402

USER = "KEYFACTOR\\svc-orchestrator"
PASSWORD = "py-Passw0rd:x"


class Sim:
    """command-sim with Basic authentication, on port 0 of 127.0.0.1 (tests/support/wincert_testsupport.py)."""

    def __init__(self, binary, work):
        users = work.write("users", f"{USER}:{PASSWORD}\n")
        self.server = ts.command_sim(binary, work.path, "--users", users).start()
        self.base = self.server.url()

    def stop(self):
        self.server.stop()

    def log(self):
        return self.server.output()

    def call(self, method, path, body=None, auth=True):
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        req.add_header("Accept", "application/json")
        if auth:
            token = base64.b64encode(f"{USER}:{PASSWORD}".encode("utf-8")).decode("ascii")
            req.add_header("Authorization", "Basic " + token)
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def agent(self, path, body):
        return self.call("POST", "/KeyfactorAgents" + path, body)

    def admin(self, method, path, body=None):
        status, answer = self.call(method, "/admin" + path, body, auth=False)
        check(status in (200, 201), f"admin {method} {path} -> {status} {answer}")
        return answer


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def resolve(endpoint):
    """Absolute URL, '/'-rooted path, or 'KeyfactorAgents/'-prefixed path below the base URL."""
    if endpoint.startswith("http://") or endpoint.startswith("https://"):
        return "/" + endpoint.split("/", 3)[3]
    if endpoint.startswith("/"):
        return endpoint
    if endpoint.lower().startswith("keyfactoragents/"):
        endpoint = endpoint[len("KeyfactorAgents/"):]
    return "/KeyfactorAgents/" + endpoint


def register(sim, agent_id=""):
    status, answer = sim.agent("/Session/Register", {
        "AgentPlatform": 1, "AgentVersion": 563031557799936, "TenantId": "00000000-0000-0000-0000-000000000000",
        "ClientMachine": "py-orchestrator", "AgentId": agent_id, "CSR": None,
        "Capabilities": ["CertStores.IISU.Inventory", "CertStores.IISU.Management"], "ClientParameters": {}})
    check(status == 200, f"register -> {status} {answer}")
    return answer


def run(sim):
    status, answer = sim.call("POST", "/KeyfactorAgents/Session/Register", {"ClientMachine": "x"}, auth=False)
    check(status == 401, f"unauthenticated register -> {status}")

    first = register(sim)
    check(first["Result"]["Status"] == 2, f"a new orchestrator awaits approval: {first['Result']}")
    agent_id = first["Session"]["AgentId"]
    token = first["Session"]["Token"]
    check(first["Session"]["Jobs"] == [], "no jobs before approval")

    sim.admin("POST", f"/agents/{agent_id}/approve")
    store = sim.admin("POST", "/stores", {
        "CertStoreType": "IISU", "ClientMachine": "iis01.example.test", "StorePath": "My", "AgentId": agent_id,
        "Properties": {"WinRM Protocol": "https", "WinRM Port": 5986, "ServerUsername": "admin",
                       "ServerPassword": "winrm-pw", "WinRM Authentication": "ntlm"}})
    pfx = sim.admin("POST", "/pfx", {"Subject": "CN=py.example.test", "Password": "pfx-pw",
                                     "SANs": {"dns": ["py.example.test"]}})
    job = sim.admin("POST", "/jobs", {
        "Type": "Add", "StoreId": store["Id"], "Contents": pfx["Pfx"], "PfxPassword": "pfx-pw",
        "Overwrite": True, "EntryParameters": {"SiteName": "Default Web Site", "Port": "443", "Protocol": "https"}})

    status, beat = sim.agent("/Session/Heartbeat", {"AgentPlatform": 5, "ClientMachine": "py-orchestrator",
                                                   "SessionToken": token})
    check(status == 200 and beat["SessionValid"] is False, f"heartbeat after approval -> {beat}")

    second = register(sim, agent_id)
    check(second["Result"]["Status"] == 1, f"approved registration: {second['Result']}")
    check(second["Session"]["AgentId"] == agent_id, "the AgentId is kept")
    jobs = second["Session"]["Jobs"]
    check(len(jobs) == 1 and jobs[0]["JobId"] == job["JobId"], f"job list: {jobs}")
    entry = jobs[0]
    check(entry["Schedule"] is None and entry["Priority"] == 3, f"an immediate Add: {entry}")
    token = second["Session"]["Token"]

    status, config = sim.call("POST", resolve(entry["ConfigurationEndpoint"]),
                              {"SessionToken": token, "JobId": entry["JobId"]})
    check(status == 200, f"configuration -> {status} {config}")
    check(config["JobCancelled"] is False, "not cancelled")
    check(config["OperationType"] == 2 and config["Capability"] == "CertStores.IISU.Management", "Add job")
    details = config["CertificateStoreDetails"]
    check(isinstance(details["Properties"], str), "Properties is a JSON string")
    props = json.loads(details["Properties"])
    check(props["WinRM Port"] == "5986" and props["WinRM Authentication"] == "ntlm", f"store properties: {props}")
    check(base64.b64decode(config["JobCertificate"]["Contents"])[:1] == b"\x30", "the PFX is base64 DER")
    check(config["JobCertificate"]["PrivateKeyPassword"] == "pfx-pw", "PFX password")
    check(config["JobProperties"]["SiteName"] == "Default Web Site", "entry parameters")
    audit = config["JobHistoryId"]
    check(config["AuditId"] == audit, "AuditId is the JobHistoryId")

    completion = {"SessionToken": token, "JobId": entry["JobId"], "Status": 2, "AuditId": audit, "Message": ""}
    for _ in range(2):  # the second one is a retry: acknowledged, not recorded again
        status, done = sim.call("POST", resolve(entry["CompletionEndpoint"]), completion)
        check(status == 200 and done["Result"]["Status"] == 1, f"completion -> {status} {done}")

    history = sim.admin("GET", f"/history?job={entry['JobId']}")
    check(len(history) == 1 and history[0]["Result"] == "Success", f"history: {history}")
    check(sim.admin("GET", "/counters")["DuplicateCompletions"] == 1, "one duplicate counted")
    check(register(sim, agent_id)["Session"]["Jobs"] == [], "a completed immediate job is gone")


class CommandSimClientTest(ts.TestCase):
    def test_register_fetch_and_complete_an_add_job_with_urllib(self):
        with ts.TempDir("command-sim-py-") as work:
            sim = Sim(ts.ARGS.command_sim, work)
            try:
                run(sim)
            except Exception:
                sim.stop()
                sys.stderr.write(sim.log())  # the simulator's side of the failure
                raise
            sim.stop()
            log = sim.log()
            for secret in (PASSWORD, "pfx-pw", "winrm-pw"):
                self.assertNotIn(secret, log, "a secret reached command-sim's log")


if __name__ == "__main__":
    ts.main(positional=("command_sim",), description=__doc__)
