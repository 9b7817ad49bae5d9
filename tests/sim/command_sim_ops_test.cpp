// command-sim: persistence across restarts, fault injection, request size limits and the admin token.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <thread>

#include "common/encoding.hpp"
#include "sim/command/state.hpp"
#include "tests/sim/command_sim_support.hpp"

namespace wincert::sim::command::testing {
namespace {

using namespace std::chrono_literals;

class CommandSimOpsTest : public SimFixture {};

TEST_F(CommandSimOpsTest, StateSurvivesARestart) {
  start();
  Registration reg = connect();
  const std::string store = create_store(reg.agent_id, "WinSql");
  const std::string job = schedule_job({{"Type", "Inventory"}, {"StoreId", store}, {"Schedule", "I_15"}});
  const Json pfx = admin_post(*http, "/admin/pfx", {{"Subject", "CN=persist.example"}, {"Password", "Pfx-Secret-1"}});
  const std::string add =
      schedule_job({{"Type", "Add"}, {"StoreId", store}, {"Contents", pfx["Pfx"]}, {"PfxPassword", "Pfx-Secret-1"}});
  reg = connect();
  Json config = configuration(reg, job);
  const std::int64_t first_run = config["JobHistoryId"];
  Json item = {
      {"Alias", pfx["Thumbprint"]}, {"PrivateKeyEntry", true}, {"Certificates", Json::array({pfx["Certificate"]})}};
  call_endpoint(*http, config["InventoryEndpoint"], reg.token, job, {{"Inventory", Json::array({item})}});
  ASSERT_EQ(complete(reg, job, first_run).json()["Result"]["Status"], 1);
  const std::int64_t open_run = configuration(reg, add)["JobHistoryId"];  // started, not completed
  const Json ca_before = admin_get(*http, "/admin/ca");
  const Json agents_before = admin_get(*http, "/admin/agents");
  const Json stores_before = admin_get(*http, "/admin/stores");

  sim->restart();
  http = std::make_unique<HttpClient>(sim->port());

  EXPECT_EQ(admin_get(*http, "/admin/ca")["Thumbprint"], ca_before["Thumbprint"]);
  Json agents = admin_get(*http, "/admin/agents");
  ASSERT_EQ(agents.size(), 1u);
  EXPECT_EQ(agents[0]["AgentId"], reg.agent_id);
  EXPECT_EQ(agents[0]["StatusName"], "Approved");
  EXPECT_EQ(agents[0]["Capabilities"], agents_before[0]["Capabilities"]);
  EXPECT_EQ(admin_get(*http, "/admin/stores"), stores_before);
  Json inventory = admin_get(*http, "/admin/stores/" + store + "/inventory");
  ASSERT_EQ(inventory["Items"].size(), 1u);
  EXPECT_EQ(inventory["Items"][0]["Alias"], pfx["Thumbprint"]);
  EXPECT_EQ(admin_get(*http, "/admin/history").size(), 1u);
  EXPECT_EQ(admin_get(*http, "/admin/jobs").size(), 2u);

  // Sessions do not survive (the agent registers again); everything it was doing does.
  EXPECT_EQ(http->post("/KeyfactorAgents/Session/Heartbeat", {{"SessionToken", reg.token}}).json()["SessionValid"],
            false);
  Registration after = connect();
  EXPECT_EQ(after.agent_id, reg.agent_id);
  EXPECT_EQ(after.jobs.size(), 2u);
  EXPECT_EQ(complete(after, add, open_run).json()["Result"]["Status"], 1);
  // A completion recorded before the restart is still recognised as a duplicate.
  EXPECT_EQ(complete(after, job, first_run).json()["Result"]["Status"], 1);
  EXPECT_EQ(admin_get(*http, "/admin/counters")["DuplicateCompletions"], 1);
  EXPECT_EQ(admin_get(*http, "/admin/history").size(), 2u);
  // JobHistoryIds keep counting up.
  Json next = configuration(after, job);
  EXPECT_GT(next["JobHistoryId"].get<std::int64_t>(), open_run);
  // The Add job's PFX and password were persisted and still go out with the job configuration.
  EXPECT_EQ(configuration(after, job)["LastInventory"].size(), 1u);

  // The state is kept privately: the database and its write-ahead log.
  const std::string state_file = (dir.path() / "state" / "state.db").string();
  struct stat st {};
  ASSERT_EQ(::stat(state_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((state_file + "-wal").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(::stat((dir.path() / "state" / "ca.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Secrets never reach the log.
  EXPECT_EQ(sim->log().find("Pfx-Secret-1"), std::string::npos);
  EXPECT_EQ(sim->log().find("Passw0rd!"), std::string::npos);
}

TEST_F(CommandSimOpsTest, ADamagedStateFileStopsTheStartWithAReason) {
  std::filesystem::create_directories(dir.path() / "state");
  write_text((dir.path() / "state" / "state.json").string(), "{\"agents\": [{\"id\": 5, \"status\": \"Sleepy\"}]}");
  CommandSim broken(dir.path() / "state");
  try {
    broken.start();
    FAIL() << "command-sim started on a damaged state file";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("state file is damaged"), std::string::npos) << e.what();
  }
}

TEST_F(CommandSimOpsTest, AStateFileOfAnOlderCommandSimIsImportedOnce) {
  // A state.json as older command-sims wrote it: an orchestrator, a store and a completed run.
  State old;
  Agent agent;
  agent.id = "6f0c8a4e-27c1-4d0b-9a35-0d2f3c4b5a61";
  agent.client_machine = "orchestrator-1";
  agent.status = AgentStatus::kApproved;
  agent.capabilities = agent.approved_capabilities = {"CertStores.WinCert.Inventory"};
  old.agents[agent.id] = agent;
  Store store;
  store.id = "0b6f5d7e-9c1a-4e2b-8d3f-a1b2c3d4e5f6";
  store.client_machine = "winhost1";
  store.store_path = "My";
  store.agent_id = agent.id;
  store.orchestrator = agent.client_machine;
  old.stores[store.id] = store;
  HistoryEntry entry;
  entry.job_history_id = 1234;
  entry.job_id = "11111111-2222-4333-8444-555555555555";
  entry.store_id = store.id;
  entry.result = "Success";
  old.history[entry.job_history_id] = entry;
  std::filesystem::create_directories(dir.path() / "state");
  ASSERT_TRUE(StateFile((dir.path() / "state").string()).save(old).ok());

  start();
  EXPECT_EQ(admin_get(*http, "/admin/agents")[0]["AgentId"], agent.id);
  EXPECT_EQ(admin_get(*http, "/admin/stores")[0]["Id"], store.id);
  EXPECT_EQ(admin_get(*http, "/admin/history").size(), 1u);
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "state" / "state.json.imported"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "state" / "state.json"));
  // The orchestrator keeps its id, and JobHistoryIds continue after the imported ones.
  Registration reg = connect();
  EXPECT_EQ(reg.agent_id, agent.id);
  const std::string job = schedule_job({{"Type", "Inventory"}, {"StoreId", store.id}});
  reg = connect();
  EXPECT_GT(configuration(reg, job)["JobHistoryId"].get<std::int64_t>(), 1234);
}

TEST_F(CommandSimOpsTest, ASecondCommandSimOnTheSameStateDirectoryDoesNotStart) {
  start();
  CommandSim second(dir.path() / "state");
  try {
    second.start();
    FAIL() << "two command-sims run on one --state directory";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("another command-sim"), std::string::npos) << e.what();
  }
  EXPECT_EQ(admin_get(*http, "/admin/counters")["CompletionsRecorded"], 0);  // the first one is unharmed
}

TEST_F(CommandSimOpsTest, ADamagedStateDatabaseStopsTheStartWithAReason) {
  std::filesystem::create_directories(dir.path() / "state");
  write_text((dir.path() / "state" / "state.db").string(), std::string(4096, 'x'));
  CommandSim broken(dir.path() / "state");
  try {
    broken.start();
    FAIL() << "command-sim started on a damaged state database";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("state database is damaged"), std::string::npos) << e.what();
  }
}

TEST_F(CommandSimOpsTest, FailNextAnswersErrorsThenRecovers) {
  start();
  admin_post(*http, "/admin/faults", {{"FailNext", {{"Count", 2}, {"Status", 503}}}});
  EXPECT_EQ(admin_get(*http, "/admin/faults")["FailNext"]["Count"], 2);  // admin calls are never faulted
  Registration one = register_agent(*http, "orchestrator-1");
  EXPECT_EQ(one.http.status, 503u);
  EXPECT_EQ(one.http.header_values("retry-after").size(), 1u);
  EXPECT_EQ(register_agent(*http, "orchestrator-1").http.status, 503u);
  Registration three = register_agent(*http, "orchestrator-1");
  EXPECT_EQ(three.http.status, 200u);

  // Only matching paths, with another status.
  admin_post(*http, "/admin/faults", {{"FailNext", {{"Count", 1}, {"Status", 500}, {"PathContains", "heartbeat"}}}});
  EXPECT_EQ(register_agent(*http, "orchestrator-1").http.status, 200u);
  EXPECT_EQ(http->post("/KeyfactorAgents/Session/Heartbeat", {{"SessionToken", three.token}}).status, 500u);
  EXPECT_EQ(http->post("/KeyfactorAgents/Session/Heartbeat", {{"SessionToken", three.token}}).status, 200u);
  EXPECT_EQ(admin_get(*http, "/admin/counters")["InjectedErrors"], 3);
  EXPECT_EQ(http->post("/admin/faults", {{"FailNext", {{"Count", 1}, {"Status", 200}}}}).status, 400u);
  EXPECT_EQ(http->post("/admin/faults", {{"LatencyMs", -1}}).status, 400u);
}

TEST_F(CommandSimOpsTest, DroppedConnectionsByCountAndByTime) {
  start();
  admin_post(*http, "/admin/faults", {{"DropNext", 2}});
  HttpResult dropped = register_agent(*http, "orchestrator-1").http;
  EXPECT_EQ(dropped.status, 0u);
  EXPECT_FALSE(dropped.error.empty());
  EXPECT_EQ(register_agent(*http, "orchestrator-1").http.status, 0u);
  EXPECT_EQ(register_agent(*http, "orchestrator-1").http.status, 200u);

  admin_post(*http, "/admin/faults", {{"DropForSeconds", 1}});
  const auto begin = std::chrono::steady_clock::now();
  int drops = 0;
  for (;;) {
    HttpResult r = register_agent(*http, "orchestrator-1").http;
    if (r.status == 200) break;
    EXPECT_EQ(r.status, 0u);
    ++drops;
    ASSERT_LT(std::chrono::steady_clock::now() - begin, 10s) << "connections still dropped";
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_GE(drops, 3);
  EXPECT_GE(std::chrono::steady_clock::now() - begin, 900ms);
  EXPECT_EQ(admin_get(*http, "/admin/counters")["DroppedConnections"].get<int>(), 2 + drops);
}

TEST_F(CommandSimOpsTest, LatencyIsAddedToAgentResponses) {
  start();
  admin_post(*http, "/admin/faults", {{"LatencyMs", 400}});
  EXPECT_GE(register_agent(*http, "orchestrator-1").http.elapsed, 380ms);
  EXPECT_LT(http->get("/admin/faults").elapsed, 380ms);  // not the admin API
  admin_post(*http, "/admin/faults", {{"LatencyMs", 0}});
  EXPECT_LT(register_agent(*http, "orchestrator-1").http.elapsed, 380ms);
}

TEST_F(CommandSimOpsTest, RejectedCompletionsAreNotRecorded) {
  start();
  Registration reg = connect();
  const std::string store = create_store(reg.agent_id);
  const std::string job = schedule_job({{"Type", "Inventory"}, {"StoreId", store}});
  reg = connect();
  const std::int64_t run = configuration(reg, job)["JobHistoryId"];
  admin_post(*http, "/admin/faults", {{"RejectCompletions", {{"Count", 2}, {"Status", 500}}}});
  EXPECT_EQ(complete(reg, job, run).status, 500u);
  admin_post(*http, "/admin/faults", {{"RejectCompletions", {{"Count", 1}, {"Status", 503}}}});
  EXPECT_EQ(complete(reg, job, run).status, 503u);
  EXPECT_TRUE(admin_get(*http, "/admin/history").empty());
  EXPECT_EQ(complete(reg, job, run).json()["Result"]["Status"], 1);
  EXPECT_EQ(admin_get(*http, "/admin/history").size(), 1u);
  Json counters = admin_get(*http, "/admin/counters");
  EXPECT_EQ(counters["CompletionsRejected"], 2);
  EXPECT_EQ(counters["DuplicateCompletions"], 0);

  // DELETE clears every knob.
  admin_post(*http, "/admin/faults", {{"FailNext", 5}, {"DropNext", 5}, {"LatencyMs", 10}, {"RejectCompletions", 5}});
  EXPECT_EQ(http->request(boost::beast::http::verb::delete_, "/admin/faults").status, 200u);
  Json faults = admin_get(*http, "/admin/faults");
  EXPECT_EQ(faults["FailNext"]["Count"], 0);
  EXPECT_EQ(faults["DropNext"]["Count"], 0);
  EXPECT_EQ(faults["LatencyMs"], 0);
  EXPECT_EQ(faults["RejectCompletions"]["Count"], 0);
  EXPECT_EQ(register_agent(*http, "orchestrator-1").http.status, 200u);
}

TEST_F(CommandSimOpsTest, OversizedBodiesGet413) {
  start({"--auto-approve", "--max-body-mb", "1"});
  const std::string big = "{\"ClientMachine\":\"" + std::string(2u << 20, 'x') + "\"}";
  HttpResult r = http->request(boost::beast::http::verb::post, "/KeyfactorAgents/Session/Register", big);
  EXPECT_EQ(r.status, 413u) << r.error;
  EXPECT_EQ(register_agent(*http, "orchestrator-1").http.status, 200u);
  EXPECT_EQ(admin_get(*http, "/admin/counters")["Responses"]["413"], 1);
}

TEST_F(CommandSimOpsTest, AdminTokenWhenConfigured) {
  start({"--admin-token-env", "CMDSIM_ADMIN"}, {{"CMDSIM_ADMIN", "admin-t0ken"}});
  EXPECT_EQ(http->get("/admin/agents").status, 401u);
  EXPECT_EQ(http->get("/admin/agents", {{"X-Admin-Token", "wrong"}}).status, 401u);
  EXPECT_EQ(http->get("/admin/agents", {{"X-Admin-Token", "admin-t0ken"}}).status, 200u);
  EXPECT_EQ(http->get("/admin/agents", {{"Authorization", "Bearer admin-t0ken"}}).status, 200u);
  EXPECT_EQ(sim->log().find("admin-t0ken"), std::string::npos);
}

TEST_F(CommandSimOpsTest, CaFromFiles) {
  TestPki pki(dir.path(), "own-ca");
  start({"--auto-approve", "--ca-cert", pki.ca_file, "--ca-key", (dir.path() / "own-ca" / "ca.key").string()});
  EXPECT_EQ(admin_get(*http, "/admin/ca")["Pem"], read_text(pki.ca_file));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "state" / "ca.pem"));
  CommandSim half(dir.path() / "state2", {"--ca-cert", pki.ca_file});
  EXPECT_THROW(half.start(), std::runtime_error);
  CommandSim mismatched(dir.path() / "state3", {"--ca-cert", pki.ca_file, "--ca-key", pki.server_key});
  EXPECT_THROW(mismatched.start(), std::runtime_error);
}

TEST_F(CommandSimOpsTest, HostileInputNeverTakesItDown) {
  start();
  // A user name that is not UTF-8 (Basic credentials are bytes) is stored and listed without trouble.
  const std::string raw_user = std::string("bad\xff\xfe") + ":pw";
  Registration reg = register_agent(*http, "orchestrator-1", "", kDefaultCapabilities,
                                    {{"Authorization", "Basic " + base64_encode(raw_user)}});
  EXPECT_EQ(reg.http.status, 200u);
  EXPECT_EQ(http->get("/admin/agents").status, 200u);
  // Deep nesting, binary garbage, wrong types.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_EQ(http->request(boost::beast::http::verb::post, "/KeyfactorAgents/Session/Register", deep).status, 400u);
  EXPECT_EQ(http->request(boost::beast::http::verb::post, "/KeyfactorAgents/Session/Heartbeat",
                          std::string("\x00\x01\x02\xff", 4))
                .status,
            400u);
  EXPECT_EQ(http->post("/KeyfactorAgents/Session/Register", {{"ClientMachine", {1, 2}}, {"Capabilities", "x"}}).status,
            400u);
  EXPECT_EQ(http->post("/KeyfactorAgents/Session/Register", {{"ClientMachine", "m"}, {"AgentVersion", "1e999"}}).status,
            400u);
  EXPECT_EQ(http->post("/admin/stores", Json::array()).status, 400u);
  EXPECT_EQ(http->request(boost::beast::http::verb::post, "/admin/jobs", "{").status, 400u);
  EXPECT_EQ(http->get("/admin/history?store=%zz").status, 400u);
  EXPECT_EQ(register_agent(*http, "orchestrator-1").http.status, 200u);
}

}  // namespace
}  // namespace wincert::sim::command::testing
