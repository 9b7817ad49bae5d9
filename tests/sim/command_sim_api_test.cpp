// command-sim: registration, approval, sessions, heartbeat, auth-certificate renewal and endpoint URL
// forms, over real HTTP against the command-sim binary.
#include <gtest/gtest.h>

#include <set>

#include "certstore/x509.hpp"
#include "common/encoding.hpp"
#include "tests/sim/command_sim_support.hpp"

namespace wincert::sim::command::testing {
namespace {

using boost::beast::http::verb;

HttpResult heartbeat(const HttpClient& http, const std::string& token) {
  return http.post("/KeyfactorAgents/Session/Heartbeat", {{"AgentPlatform", 5},
                                                          {"TenantId", "00000000-0000-0000-0000-000000000000"},
                                                          {"ClientMachine", "orchestrator-1"},
                                                          {"SessionToken", token}});
}

class CommandSimSessionTest : public SimFixture {};

TEST_F(CommandSimSessionTest, NewAgentAwaitsApprovalKeepsItsIdAndGetsJobsOnceApproved) {
  start({});
  Registration first = register_agent(*http, "orchestrator-1");
  ASSERT_EQ(first.http.status, 200u) << first.http.body;
  EXPECT_EQ(first.status(), 2);  // Warning: session granted, no jobs
  // No documented code for "awaiting approval" (reference 2 and 11.2): none, the message says it.
  EXPECT_EQ(first.code(), "");
  EXPECT_EQ(first.response["Result"]["Error"]["Code"], 0);
  EXPECT_NE(first.message().find("awaiting approval"), std::string::npos) << first.message();
  EXPECT_FALSE(first.token.empty());
  ASSERT_EQ(first.agent_id.size(), 36u);
  EXPECT_TRUE(first.jobs.empty());
  EXPECT_EQ(first.response["Session"]["HeartbeatInterval"], 5);
  EXPECT_EQ(first.response["Session"]["ClientMachine"], "orchestrator-1");

  // A store and a job for it: a New orchestrator still gets nothing.
  const std::string store = create_store(first.agent_id);
  const std::string job = schedule_job({{"Type", "Inventory"}, {"StoreId", store}});
  Registration again = register_agent(*http, "orchestrator-1", first.agent_id);
  EXPECT_EQ(again.agent_id, first.agent_id);  // the AgentId is reused
  EXPECT_EQ(again.status(), 2);
  EXPECT_EQ(again.code(), "");
  EXPECT_TRUE(again.jobs.empty());
  Json agents = admin_get(*http, "/admin/agents");
  ASSERT_EQ(agents.size(), 1u);
  EXPECT_EQ(agents[0]["StatusName"], "New");
  EXPECT_EQ(agents[0]["Status"], 1);

  // Approval invalidates the session so the next heartbeat makes the agent register again.
  EXPECT_EQ(heartbeat(*http, again.token).json()["SessionValid"], true);
  Json approved = admin_post(*http, "/admin/agents/" + first.agent_id + "/approve");
  EXPECT_EQ(approved["StatusName"], "Approved");
  Json hb = heartbeat(*http, again.token).json();
  EXPECT_EQ(hb["SessionValid"], false);
  EXPECT_EQ(hb["Result"]["Status"], 1);
  Registration approved_reg = register_agent(*http, "orchestrator-1", first.agent_id);
  EXPECT_EQ(approved_reg.status(), 1);
  EXPECT_TRUE(approved_reg.response["Result"]["Error"].is_null());
  ASSERT_EQ(approved_reg.jobs.size(), 1u);
  EXPECT_EQ(approved_reg.jobs[0]["JobId"], job);
  EXPECT_EQ(heartbeat(*http, approved_reg.token).json()["SessionValid"], true);
}

TEST_F(CommandSimSessionTest, UnknownAgentIdFallsBackToTheOrchestratorName) {
  start();
  Registration first = connect();
  Registration again = register_agent(*http, "orchestrator-1", "6f1c3a52-0000-4000-8000-000000000000");
  EXPECT_EQ(again.agent_id, first.agent_id);
  Registration other = register_agent(*http, "orchestrator-2");
  EXPECT_NE(other.agent_id, first.agent_id);
  EXPECT_EQ(admin_get(*http, "/admin/agents").size(), 2u);
}

TEST_F(CommandSimSessionTest, DisapprovedAgentGetsNoSessionAndItsSessionsEnd) {
  start();
  Registration reg = connect();
  ASSERT_EQ(reg.status(), 1);
  admin_post(*http, "/admin/agents/" + reg.agent_id + "/disapprove");
  EXPECT_EQ(heartbeat(*http, reg.token).json()["SessionValid"], false);
  Registration refused = register_agent(*http, "orchestrator-1", reg.agent_id);
  EXPECT_EQ(refused.http.status, 200u);
  EXPECT_EQ(refused.status(), 3);
  EXPECT_EQ(refused.code(), "");  // no documented code for "disapproved"
  EXPECT_NE(refused.message().find("disapproved"), std::string::npos) << refused.message();
  EXPECT_TRUE(refused.response["Session"].is_null());
  // Reset returns it to New; approval lets it work again.
  admin_post(*http, "/admin/agents/orchestrator-1/reset");  // by name works too
  Registration reset = register_agent(*http, "orchestrator-1", reg.agent_id);
  EXPECT_EQ(reset.status(), 2);
  EXPECT_NE(reset.message().find("awaiting approval"), std::string::npos) << reset.message();
  admin_post(*http, "/admin/agents/" + reg.agent_id + "/approve");
  EXPECT_EQ(register_agent(*http, "orchestrator-1", reg.agent_id).status(), 1);
}

TEST_F(CommandSimSessionTest, ANewCapabilityNeedsApprovalAgain) {
  start({});
  Registration reg = register_agent(*http, "orchestrator-1", "", {"CertStores.WinCert.Inventory"});
  admin_post(*http, "/admin/agents/" + reg.agent_id + "/approve");
  EXPECT_EQ(register_agent(*http, "orchestrator-1", reg.agent_id, {"CertStores.WinCert.Inventory"}).status(), 1);
  // Fewer capabilities are fine; a new one sends the orchestrator back to New.
  EXPECT_EQ(register_agent(*http, "orchestrator-1", reg.agent_id, {}).status(), 1);
  Registration grown = register_agent(*http, "orchestrator-1", reg.agent_id,
                                      {"CertStores.WinCert.Inventory", "CertStores.IISU.Inventory"});
  EXPECT_EQ(grown.status(), 2);
  EXPECT_NE(grown.message().find("awaiting approval"), std::string::npos) << grown.message();
  EXPECT_EQ(admin_get(*http, "/admin/agents/" + reg.agent_id)["StatusName"], "New");
}

// Capabilities match case-insensitively: an orchestrator that approved with "Reenrollment" (earlier agents)
// and now registers the extension manifest's "ReEnrollment" is not sent back to New.
TEST_F(CommandSimSessionTest, ACapabilityRespeltIsNotANewCapability) {
  start({});
  Registration reg = register_agent(*http, "orchestrator-1", "", {"CertStores.WinCert.Reenrollment"});
  admin_post(*http, "/admin/agents/" + reg.agent_id + "/approve");
  Registration respelt = register_agent(*http, "orchestrator-1", reg.agent_id, {"CertStores.WinCert.ReEnrollment"});
  EXPECT_EQ(respelt.status(), 1) << respelt.code();
  EXPECT_EQ(admin_get(*http, "/admin/agents/" + reg.agent_id)["StatusName"], "Approved");
}

TEST_F(CommandSimSessionTest, HeartbeatSessionValidUntilInvalidated) {
  start();
  Registration reg = connect();
  Json hb = heartbeat(*http, reg.token).json();
  EXPECT_EQ(hb["SessionValid"], true);
  EXPECT_EQ(hb["HeartbeatInterval"], 5);
  EXPECT_EQ(heartbeat(*http, "00000000-1111-2222-3333-444444444444").json()["SessionValid"], false);
  EXPECT_EQ(heartbeat(*http, "").json()["SessionValid"], false);

  // Per agent, then all sessions (the fault-injection knob).
  Json n = admin_post(*http, "/admin/sessions/invalidate", {{"AgentId", reg.agent_id}});
  EXPECT_EQ(n["Invalidated"], 1);
  EXPECT_EQ(heartbeat(*http, reg.token).json()["SessionValid"], false);
  Registration again = connect();
  EXPECT_EQ(heartbeat(*http, again.token).json()["SessionValid"], true);
  admin_post(*http, "/admin/faults", {{"InvalidateSessions", true}});
  EXPECT_EQ(heartbeat(*http, again.token).json()["SessionValid"], false);
  // A job call with a dead session says so in the Result.
  Json r = call_endpoint(*http, "KeyfactorAgents/CertStoreInventory/Configuration", again.token,
                         "00000000-0000-0000-0000-000000000000")
               .json();
  EXPECT_EQ(r["Result"]["Status"], 3);
  EXPECT_EQ(r["Result"]["Error"]["CodeString"], "A0100012");
  EXPECT_GE(admin_get(*http, "/admin/counters")["SessionsInvalidated"].get<int>(), 2);
}

TEST_F(CommandSimSessionTest, HeartbeatIntervalIsConfigurable) {
  start({"--auto-approve", "--heartbeat-minutes", "1"});
  Registration reg = connect();
  EXPECT_EQ(reg.response["Session"]["HeartbeatInterval"], 1);
  admin_put(*http, "/admin/settings", {{"HeartbeatMinutes", 2}});
  EXPECT_EQ(heartbeat(*http, reg.token).json()["HeartbeatInterval"], 2);
}

TEST_F(CommandSimSessionTest, InvalidHeartbeatIntervalsAreRefused) {
  start({"--auto-approve", "--heartbeat-minutes", "3"});
  for (int minutes : {0, -1, 1441}) {
    HttpResult r = http->request(boost::beast::http::verb::put, "/admin/settings",
                                 Json{{"HeartbeatMinutes", minutes}}.dump(), {{"Content-Type", "application/json"}});
    EXPECT_EQ(r.status, 400u) << minutes << ": " << r.body;
    EXPECT_NE(r.body.find("HeartbeatMinutes must be 1..1440"), std::string::npos) << r.body;
  }
  EXPECT_EQ(admin_get(*http, "/admin/settings")["HeartbeatMinutes"], 3);
  Registration reg = connect();
  EXPECT_EQ(reg.response["Session"]["HeartbeatInterval"], 3);
  EXPECT_EQ(heartbeat(*http, reg.token).json()["HeartbeatInterval"], 3);
  admin_put(*http, "/admin/settings", {{"HeartbeatMinutes", 1440}});
  EXPECT_EQ(heartbeat(*http, reg.token).json()["HeartbeatInterval"], 1440);

  // Nor can it start with one.
  CommandSim zero(dir.path() / "zero-state", {"--heartbeat-minutes", "0"});
  EXPECT_ANY_THROW(zero.start()) << "command-sim started with HeartbeatInterval 0";
}

TEST_F(CommandSimSessionTest, AuthCertificateRenewalRequestedAndRequired) {
  start();
  Registration reg = connect();
  const Json ca = admin_get(*http, "/admin/ca");
  const std::string ca_der = *base64_decode(ca["Certificate"].get<std::string>());

  // Requested (A0100007): Warning, session and jobs granted.
  admin_post(*http, "/admin/agents/" + reg.agent_id + "/auth-cert-renewal", {{"Mode", "request"}});
  Registration requested = register_agent(*http, "orchestrator-1", reg.agent_id);
  EXPECT_EQ(requested.status(), 2);
  EXPECT_EQ(requested.code(), "A0100007");
  EXPECT_FALSE(requested.token.empty());

  // Required (A0100008): Error and no session until the agent sends a CSR.
  admin_post(*http, "/admin/agents/" + reg.agent_id + "/auth-cert-renewal", {{"Mode", "require"}});
  Registration required = register_agent(*http, "orchestrator-1", reg.agent_id);
  EXPECT_EQ(required.status(), 3);
  EXPECT_EQ(required.code(), "A0100008");
  EXPECT_TRUE(required.response["Session"].is_null());

  const std::string csr = make_csr_base64("CN=orchestrator-1", {});
  Registration renewed = register_agent(*http, "orchestrator-1", reg.agent_id, kDefaultCapabilities, {}, csr);
  EXPECT_EQ(renewed.status(), 1) << renewed.http.body;
  ASSERT_TRUE(renewed.response["Session"]["Certificate"].is_string());
  const std::string der = *base64_decode(renewed.response["Session"]["Certificate"].get<std::string>());
  std::string why;
  EXPECT_TRUE(verifies_against(der, ca_der, &why)) << why;
  auto info = certstore::parse_certificate_der(der);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->subject, "CN=orchestrator-1");
  Json agent = admin_get(*http, "/admin/agents/" + reg.agent_id);
  EXPECT_EQ(agent["AuthCertificateReenrollment"], "None");
  EXPECT_EQ(agent["Thumbprint"], info->thumbprint);
  // A broken CSR is a warning, not a lost session.
  Registration broken = register_agent(*http, "orchestrator-1", reg.agent_id, kDefaultCapabilities, {}, "bm90IGEgY3Ny");
  EXPECT_EQ(broken.status(), 2);
  EXPECT_EQ(broken.code(), "");  // no documented code for a CSR that was not signed
  EXPECT_NE(broken.message().find("CSR was not signed"), std::string::npos) << broken.message();
  EXPECT_FALSE(broken.token.empty());
}

TEST_F(CommandSimSessionTest, EndpointFormsAllResolveToWorkingEndpoints) {
  start();
  const std::string store = create_store("orchestrator-1");  // by name, before the agent exists
  const std::string job = schedule_job({{"Type", "Inventory"}, {"StoreId", store}, {"Schedule", "I_60"}});
  for (const std::string form : {"prefixed", "rooted", "absolute"}) {
    admin_put(*http, "/admin/settings", {{"EndpointForm", form}});
    Registration reg = connect();
    ASSERT_EQ(reg.jobs.size(), 1u) << form;
    const std::string url = reg.jobs[0]["ConfigurationEndpoint"].get<std::string>();
    if (form == "prefixed") {
      EXPECT_EQ(url, "KeyfactorAgents/CertStoreInventory/Configuration");
    } else if (form == "rooted") {
      EXPECT_EQ(url, "/KeyfactorAgents/CertStoreInventory/Configuration");
    } else {
      EXPECT_EQ(
          url, "http://127.0.0.1:" + std::to_string(sim->port()) + "/KeyfactorAgents/CertStoreInventory/Configuration");
    }
    Json config = configuration(reg, job);
    EXPECT_EQ(config["JobId"], job) << form;
    const std::string inventory_url = config["InventoryEndpoint"].get<std::string>();
    EXPECT_EQ(resolve_endpoint(inventory_url), "/KeyfactorAgents/CertStoreInventory/Update") << inventory_url;
    EXPECT_EQ(complete(reg, job, config["JobHistoryId"].get<std::int64_t>()).json()["Result"]["Status"], 1);
  }
  // rotate: consecutive URLs take the three forms in turn.
  admin_put(*http, "/admin/settings", {{"EndpointForm", "rotate"}, {"PublicUrl", "http://command.example:8080/"}});
  Registration reg = connect();
  Json config = configuration(reg, job);
  std::set<std::string> kinds;
  for (const std::string& url :
       {reg.jobs[0]["ConfigurationEndpoint"].get<std::string>(), reg.jobs[0]["CompletionEndpoint"].get<std::string>(),
        config["InventoryEndpoint"].get<std::string>()}) {
    kinds.insert(url.starts_with("http://command.example:8080/KeyfactorAgents/") ? "absolute"
                 : url.starts_with("/")                                          ? "rooted"
                                                                                 : "prefixed");
  }
  EXPECT_EQ(kinds.size(), 3u);
}

TEST_F(CommandSimSessionTest, EndpointFormFlagAndBasePath) {
  start({"--auto-approve", "--endpoint-form", "rooted", "--base-path", "/Keyfactor/Agents"});
  Json body = {{"ClientMachine", "orchestrator-1"}, {"Capabilities", kDefaultCapabilities}};
  EXPECT_EQ(http->post("/KeyfactorAgents/Session/Register", body).status, 404u);
  HttpResult r = http->post("/Keyfactor/Agents/Session/Register", body);
  ASSERT_EQ(r.status, 200u) << r.body;
  const std::string agent = r.json()["Session"]["AgentId"];
  schedule_job({{"Type", "Inventory"}, {"StoreId", create_store(agent)}});
  Json jobs = http->post("/keyfactor/agents/session/register", body).json()["Session"]["Jobs"];  // case-insensitive
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0]["ConfigurationEndpoint"], "/Keyfactor/Agents/CertStoreInventory/Configuration");
}

TEST_F(CommandSimSessionTest, ProtocolEdges) {
  start();
  EXPECT_EQ(http->get("/KeyfactorAgents/Session/Register").status, 405u);
  EXPECT_EQ(http->post("/KeyfactorAgents/Session/Nope", Json::object()).status, 404u);
  HttpResult bad = http->request(verb::post, "/KeyfactorAgents/Session/Register", "{not json");
  EXPECT_EQ(bad.status, 400u);
  EXPECT_EQ(bad.json()["Result"]["Status"], 3);
  EXPECT_EQ(http->post("/KeyfactorAgents/Session/Register", Json::object()).status, 400u);  // ClientMachine missing
  // Field names are matched case-insensitively, like ASP.NET's binder; a UTF-8 BOM is tolerated.
  HttpResult lower = http->request(verb::post, "/KeyfactorAgents/Session/Register",
                                   "\xEF\xBB\xBF{\"clientmachine\":\"orchestrator-9\",\"capabilities\":[]}");
  EXPECT_EQ(lower.status, 200u) << lower.body;
  EXPECT_EQ(lower.json()["Session"]["ClientMachine"], "orchestrator-9");
  EXPECT_EQ(http->get("/admin/nothing-here").status, 404u);
  Json counters = admin_get(*http, "/admin/counters");
  EXPECT_EQ(counters["Requests"]["Session/Register"], 4);  // the GET counts too
  EXPECT_EQ(counters["Responses"]["405"], 1);
}

}  // namespace
}  // namespace wincert::sim::command::testing
