#!/usr/bin/python3
"""command-sim's state survives kill -9: what it acknowledged is in its SQLite database.

Starts command-sim as a process on a --state directory, drives it through the API (an orchestrator that
registers and is approved, stores, jobs of each kind, a PFX, configurations that open runs, an inventory
and completions, a cancellation, a store deletion), kills it with SIGKILL right after the last answer,
starts it again on the same directory and checks through the admin API that every change is there: agents,
stores, inventory, jobs and their states, history, issued certificates and JobHistoryIds that keep counting
up. A completion acknowledged before the kill is still recognised as a duplicate after it.
Usage: command_sim_kill9_test.py PATH/TO/command-sim [unittest arguments].
"""
import json
import os
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import wincert_testsupport as ts  # noqa: E402

MACHINE = "kill9-orchestrator"
CAPABILITIES = ["CertStores.WinCert.Inventory", "CertStores.WinCert.Management", "CertStores.IISU.Inventory"]


class Client:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def admin(self, method, path, body=None):
        status, answer = self.call(method, "/admin" + path, body)
        if status not in (200, 201):
            raise AssertionError(f"admin {method} {path} -> {status} {answer}")
        return answer

    def agent(self, route, body):
        status, answer = self.call("POST", "/KeyfactorAgents/" + route, body)
        if status != 200:
            raise AssertionError(f"{route} -> {status} {answer}")
        return answer

    def register(self, agent_id=""):
        return self.agent("Session/Register", {
            "AgentPlatform": 1, "AgentVersion": 563031557799936, "TenantId": "00000000-0000-0000-0000-000000000000",
            "ClientMachine": MACHINE, "AgentId": agent_id, "CSR": None, "Capabilities": CAPABILITIES,
            "ClientParameters": {}})


def a_certificate(client):
    """A base64 DER certificate from the simulator's CA (the leaf of a PFX it makes), for the inventory."""
    pfx = client.admin("POST", "/pfx", {"Subject": "CN=inventory.kill9.test", "Password": "pw"})
    return pfx["Certificate"], pfx["Thumbprint"]


class CommandSimKill9Test(ts.TestCase):
    def test_everything_acknowledged_before_a_kill_9_is_there_after_a_restart(self):
        with ts.TempDir("command-sim-kill9-") as work:
            state = os.path.join(work.path, "state")
            sim = ts.command_sim(ts.ARGS.command_sim, work.path, state_dir=state)
            sim.start()
            try:
                c = Client(sim.port)
                agent_id = c.register()["Session"]["AgentId"]
                c.admin("POST", f"/agents/{agent_id}/approve")
                stores = [c.admin("POST", "/stores", {"CertStoreType": "WinCert", "ClientMachine": f"h{i}.kill9.test",
                                                      "StorePath": "My", "AgentId": agent_id})["Id"] for i in range(3)]
                gone = c.admin("POST", "/stores", {"CertStoreType": "IISU", "ClientMachine": "gone.kill9.test",
                                                   "StorePath": "My", "AgentId": agent_id})["Id"]
                recurring = c.admin("POST", "/jobs", {"Type": "Inventory", "StoreId": stores[0],
                                                      "Schedule": {"Interval": {"Minutes": 5}}})["JobId"]
                once = [c.admin("POST", "/jobs", {"Type": "Inventory", "StoreId": s})["JobId"] for s in stores]
                cancelled = c.admin("POST", "/jobs", {"Type": "Remove", "StoreId": stores[1], "Alias": "old"})["JobId"]
                open_job = c.admin("POST", "/jobs", {"Type": "Remove", "StoreId": stores[2], "Alias": "x"})["JobId"]
                c.admin("POST", "/jobs", {"Type": "Inventory", "StoreId": gone})
                cert, thumbprint = a_certificate(c)

                token = c.register(agent_id)["Session"]["Token"]
                runs = {}
                for job in [recurring] + once:
                    runs[job] = c.agent("CertStoreInventory/Configuration",
                                        {"SessionToken": token, "JobId": job})["JobHistoryId"]
                open_run = c.agent("CertStoreManagement/Configuration",
                                   {"SessionToken": token, "JobId": open_job})["JobHistoryId"]
                update = c.agent("CertStoreInventory/Update", {
                    "SessionToken": token, "JobId": once[0],
                    "Inventory": [{"Alias": "web", "PrivateKeyEntry": True, "ItemStatus": 0, "Certificates": [cert]}]})
                self.assertEqual(update["Result"]["Status"], 1, update)
                for job in [recurring] + once:
                    done = c.agent("CertStoreInventory/Complete", {"SessionToken": token, "JobId": job, "Status": 2,
                                                                  "JobHistoryId": runs[job], "Message": "ok " + job})
                    self.assertEqual(done["Result"]["Status"], 1, done)
                c.admin("POST", f"/jobs/{cancelled}/cancel")
                c.admin("DELETE", f"/stores/{gone}")
                before = {
                    "agents": c.admin("GET", "/agents"),
                    "stores": c.admin("GET", "/stores"),
                    "jobs": c.admin("GET", "/jobs?all=1"),
                    "history": c.admin("GET", "/history"),
                    "issued": c.admin("GET", "/certificates"),
                    "inventory": c.admin("GET", f"/stores/{stores[0]}/inventory"),
                }
            finally:
                sim.kill()  # SIGKILL: no shutdown path runs

            sim = ts.command_sim(ts.ARGS.command_sim, work.path, state_dir=state)
            sim.start()
            try:
                c = Client(sim.port)
                after = {
                    "agents": c.admin("GET", "/agents"),
                    "stores": c.admin("GET", "/stores"),
                    "jobs": c.admin("GET", "/jobs?all=1"),
                    "history": c.admin("GET", "/history"),
                    "issued": c.admin("GET", "/certificates"),
                    "inventory": c.admin("GET", f"/stores/{stores[0]}/inventory"),
                }
                # Sessions live in memory on purpose; everything else is as it was.
                for agent in before["agents"] + after["agents"]:
                    agent.pop("Sessions", None)
                for key in before:
                    self.assertEqual(after[key], before[key], f"{key} after the kill -9")
                self.assertEqual(len(after["history"]), 4)
                self.assertEqual(len(after["stores"]), 3)
                self.assertEqual(after["inventory"]["Items"][0]["Thumbprints"], [thumbprint])
                states = {j["JobId"]: j["State"] for j in after["jobs"]}
                self.assertEqual(states[cancelled], "Cancelled")
                self.assertEqual(states[once[0]], "Done")
                self.assertEqual(states[recurring], "Scheduled")

                # The same orchestrator; a retried completion is a duplicate; the open run is still open;
                # JobHistoryIds keep counting up.
                session = c.register(agent_id)["Session"]
                self.assertEqual(session["AgentId"], agent_id)
                token = session["Token"]
                again = c.agent("CertStoreInventory/Complete", {"SessionToken": token, "JobId": once[1], "Status": 2,
                                                               "JobHistoryId": runs[once[1]]})
                self.assertEqual(again["Result"]["Status"], 1, again)
                self.assertEqual(c.admin("GET", "/counters")["DuplicateCompletions"], 1)
                done = c.agent("CertStoreManagement/Complete", {"SessionToken": token, "JobId": open_job, "Status": 2,
                                                               "JobHistoryId": open_run})
                self.assertEqual(done["Result"]["Status"], 1, done)
                nxt = c.agent("CertStoreInventory/Configuration", {"SessionToken": token, "JobId": recurring})
                self.assertGreater(nxt["JobHistoryId"], max(list(runs.values()) + [open_run]))
            except Exception:
                sys.stderr.write(sim.output()[-4000:])
                raise
            finally:
                sim.stop()
            self.assertTrue(os.path.exists(os.path.join(state, "state.db")))


if __name__ == "__main__":
    ts.main(positional=("command_sim",), description=__doc__)
