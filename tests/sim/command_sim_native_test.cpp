// command-sim: job-type GUIDs (Keyfactor's C agent's fixed PEM GUIDs, name-based ones for the other store
// types) and the configuration shape for an agent that registered with AgentPlatform 5 (Keyfactor's C
// agent, reference 11.3/11.4): every member the reference says that agent reads, with the JSON type it needs.
#include <gtest/gtest.h>

#include <set>

#include "common/encoding.hpp"
#include "tests/sim/command_sim_support.hpp"

namespace wincert::sim::command::testing {
namespace {

const std::vector<std::string> kCAgentCapabilities = {"CertStores.PEM.Inventory", "CertStores.PEM.Management",
                                                      "CertStores.PEM.Reenrollment", "Custom.FetchLogs"};
constexpr const char* kPemInventory = "a809ce1f-1eea-4738-a38e-15708c89c981";
constexpr const char* kPemManagement = "1d411b36-ae72-433f-9f3f-8593e836a1af";
constexpr const char* kPemReenrollment = "aa015d10-cffc-41f7-a9a4-c9615f6f3bdf";

Json type_named(const Json& types, const std::string& name) {
  for (const auto& t : types)
    if (t["Name"] == name) return t;
  return nullptr;
}

class CommandSimNativeTest : public SimFixture {
 protected:
  Registration native(const std::string& agent_id = "") {
    return register_agent(*http, "cagent-host", agent_id, kCAgentCapabilities, {}, {}, 5);
  }
};

TEST_F(CommandSimNativeTest, JobTypeIdsAreFixedForPemAndStablePerStoreTypeElsewhere) {
  start();
  const Json types = admin_get(*http, "/admin/store-types");
  ASSERT_EQ(types.size(), 4u) << types.dump();
  const Json pem = type_named(types, "PEM");
  ASSERT_TRUE(pem.is_object());
  EXPECT_EQ(pem["JobTypes"]["Inventory"]["JobTypeId"], kPemInventory);
  EXPECT_EQ(pem["JobTypes"]["Management"]["JobTypeId"], kPemManagement);
  EXPECT_EQ(pem["JobTypes"]["Reenrollment"]["JobTypeId"], kPemReenrollment);
  // Name-based (version 5) UUIDs of "CertStores.<ShortName>.<Family>": the same in every run and version.
  EXPECT_EQ(type_named(types, "WinCert")["JobTypes"]["Inventory"]["JobTypeId"], "53e464c5-e0d9-50ca-9676-d028bdd0e474");
  EXPECT_EQ(type_named(types, "IISU")["JobTypes"]["Management"]["JobTypeId"], "cef79e01-4658-5401-a614-17e6946e37d9");
  EXPECT_EQ(type_named(types, "WinCert")["JobTypes"]["Inventory"]["Capability"], "CertStores.WinCert.Inventory");
  std::set<std::string> distinct;
  for (const auto& t : types) {
    for (const auto& entry : t["JobTypes"]) {
      const std::string id = entry["JobTypeId"];
      ASSERT_EQ(id.size(), 36u) << id;
      distinct.insert(id);
      if (t["Name"] != "PEM") {
        EXPECT_EQ(id[14], '5') << id;  // version 5
      }
    }
  }
  EXPECT_EQ(distinct.size(), 12u);

  // The job list and the admin job view name jobs by them; a Universal Orchestrator still gets Capability.
  Registration reg = connect();
  const std::string store = create_store(reg.agent_id, "WinCert");
  const std::string inventory = schedule_job({{"Type", "Inventory"}, {"StoreId", store}});
  reg = connect();
  const Json entry = find_job(reg.jobs, inventory);
  EXPECT_EQ(entry["JobTypeId"], "53e464c5-e0d9-50ca-9676-d028bdd0e474");
  EXPECT_EQ(entry["Capability"], "CertStores.WinCert.Inventory");
  EXPECT_EQ(admin_get(*http, "/admin/jobs/" + inventory)["JobTypeId"], entry["JobTypeId"]);
  sim->restart();
  http = std::make_unique<HttpClient>(sim->port());
  EXPECT_EQ(admin_get(*http, "/admin/store-types"), types);
}

TEST_F(CommandSimNativeTest, APlatform5AgentGetsTheCAgentShapes) {
  start({"--auto-approve", "--endpoint-form", "absolute"});
  Registration reg = native();
  ASSERT_EQ(reg.status(), 1) << reg.http.body;
  // Session members the C agent needs whenever there is a token: both strings of at most 36 characters.
  ASSERT_TRUE(reg.response["Session"]["Token"].is_string());
  EXPECT_LE(reg.token.size(), 36u);
  ASSERT_TRUE(reg.response["Session"]["AgentId"].is_string());
  EXPECT_LE(reg.agent_id.size(), 36u);
  EXPECT_TRUE(reg.response["Session"]["HeartbeatInterval"].is_number_integer());

  // A null property under another spelling must not hide the default the C agent needs.
  const std::string store =
      create_store_with(*http, reg.agent_id, "PEM", "cagent-host",
                        {{"privateKeyPath", "/etc/app/app.key"}, {"SeparatePrivateKey", nullptr}});
  const Json pfx = admin_post(*http, "/admin/pfx", {{"Subject", "CN=pem.example.test"}, {"Password", "pw"}});
  const std::string inventory = schedule_job({{"Type", "Inventory"}, {"StoreId", store}, {"Schedule", "I_30"}});
  const std::string add = schedule_job({{"Type", "Add"}, {"StoreId", store}, {"Contents", pfx["Certificate"]}});
  const std::string thumbprint = pfx["Thumbprint"];
  const std::string remove = schedule_job({{"Type", "Remove"}, {"StoreId", store}, {"Alias", to_lower(thumbprint)}});
  const std::string reenroll = schedule_job(
      {{"Type", "Reenrollment"}, {"StoreId", store}, {"Subject", "CN=app.example.test"}, {"KeySize", "3072"}});
  // What the C agent cannot run is refused when it is scheduled.
  HttpResult pfx_add =
      http->post("/admin/jobs", {{"Type", "Add"}, {"StoreId", store}, {"Contents", pfx["Pfx"]}, {"PfxPassword", "pw"}});
  EXPECT_EQ(pfx_add.status, 400u) << pfx_add.body;
  EXPECT_NE(pfx_add.body.find("cannot add a PFX"), std::string::npos) << pfx_add.body;
  EXPECT_EQ(http->post("/admin/jobs", {{"Type", "Remove"}, {"StoreId", store}, {"Alias", "app-cert"}}).status, 400u);

  reg = native(reg.agent_id);
  ASSERT_EQ(reg.jobs.size(), 4u) << reg.jobs.dump();
  for (const auto& entry : reg.jobs) {
    // Strings, the fixed GUIDs, no Capability (never read), endpoints the C agent can resolve (not absolute).
    ASSERT_TRUE(entry["JobTypeId"].is_string());
    ASSERT_TRUE(entry["JobId"].is_string());
    EXPECT_FALSE(entry.contains("Capability")) << entry.dump();
    EXPECT_TRUE(entry["Priority"].is_number_integer());
    for (const char* endpoint : {"ConfigurationEndpoint", "CompletionEndpoint"}) {
      ASSERT_TRUE(entry[endpoint].is_string());
      EXPECT_EQ(entry[endpoint].get<std::string>().rfind("/KeyfactorAgents/", 0), 0u) << entry.dump();
    }
  }
  EXPECT_EQ(find_job(reg.jobs, inventory)["JobTypeId"], kPemInventory);
  EXPECT_EQ(find_job(reg.jobs, inventory)["Schedule"], "I_30");
  EXPECT_EQ(find_job(reg.jobs, add)["JobTypeId"], kPemManagement);
  EXPECT_EQ(find_job(reg.jobs, add)["Priority"], 3);
  EXPECT_TRUE(find_job(reg.jobs, add)["Schedule"].is_null());  // "immediate" is null, never "" or "I_0"
  EXPECT_EQ(find_job(reg.jobs, remove)["JobTypeId"], kPemManagement);
  EXPECT_EQ(find_job(reg.jobs, reenroll)["JobTypeId"], kPemReenrollment);

  auto expect_envelope = [](const Json& c) {
    ASSERT_TRUE(c["AuditId"].is_number_integer()) << c.dump();
    EXPECT_GT(c["AuditId"].get<std::int64_t>(), 0);
    ASSERT_TRUE(c["JobCancelled"].is_boolean());
    EXPECT_FALSE(c["JobCancelled"].get<bool>());
    EXPECT_EQ(c["Result"]["Status"], 1);
    // Nothing of the Universal Orchestrator's shape.
    for (const char* uo : {"CertificateStoreDetails", "LastInventory", "JobCertificate", "JobProperties",
                           "JobHistoryId", "Capability", "ServerUsername"})
      EXPECT_FALSE(c.contains(uo)) << uo << " in " << c.dump();
  };

  // Inventory: top-level InventoryEndpoint, Job {ClientMachine, StorePath, StorePassword, Category, Inventory}.
  const Json inv = configuration(reg, inventory);
  expect_envelope(inv);
  ASSERT_TRUE(inv["InventoryEndpoint"].is_string());
  ASSERT_TRUE(inv["Job"].is_object());
  EXPECT_EQ(inv["Job"]["ClientMachine"], "cagent-host");
  EXPECT_TRUE(inv["Job"]["StorePath"].is_string());
  EXPECT_TRUE(inv["Job"].contains("StorePassword"));
  EXPECT_TRUE(inv["Job"]["Category"].is_number_integer());
  ASSERT_TRUE(inv["Job"]["Inventory"].is_array());
  // The C agent's diff: a New item with its certificate; the next configuration's Job.Inventory has it.
  const std::string lower_thumb = to_lower(thumbprint);
  Json item = {{"Alias", lower_thumb},
               {"PrivateKeyEntry", false},
               {"ItemStatus", 1},
               {"UseChainLevel", false},
               {"Certificates", Json::array({pfx["Certificate"]})}};
  EXPECT_EQ(call_endpoint(*http, inv["InventoryEndpoint"], reg.token, inventory, {{"Inventory", Json::array({item})}})
                .json()["Result"]["Status"],
            1);
  EXPECT_EQ(complete(reg, inventory, inv["AuditId"]).json()["Result"]["Status"], 1);
  const Json inv2 = configuration(reg, inventory);
  ASSERT_EQ(inv2["Job"]["Inventory"].size(), 1u);
  EXPECT_EQ(inv2["Job"]["Inventory"][0]["Alias"], lower_thumb);  // a string: compared without a NULL check
  EXPECT_TRUE(inv2["Job"]["Inventory"][0]["PrivateKeyEntry"].is_boolean());

  // Management Add: Job {OperationType 2, StorePath, EntryContents (base64 DER), PrivateKeyEntry false, ...}.
  const Json add_config = configuration(reg, add);
  expect_envelope(add_config);
  const Json& a = add_config["Job"];
  ASSERT_TRUE(a.is_object());
  EXPECT_EQ(a["OperationType"], 2);
  EXPECT_TRUE(a["StorePath"].is_string());
  EXPECT_EQ(a["EntryContents"], pfx["Certificate"]);
  EXPECT_EQ(a["PrivateKeyEntry"], false);
  EXPECT_TRUE(a["Alias"].is_string());
  for (const char* member : {"ClientMachine", "StorePassword", "StoreType", "Category", "EntryPassword", "Thumbprint",
                             "PfxPassword", "Overwrite"})
    EXPECT_TRUE(a.contains(member)) << member;
  ASSERT_TRUE(a["Properties"].is_string());
  EXPECT_EQ(Json::parse(a["Properties"].get<std::string>())["privateKeyPath"], "/etc/app/app.key");

  // Management Remove: Alias = the SHA-1 thumbprint.
  const Json remove_config = configuration(reg, remove);
  expect_envelope(remove_config);
  EXPECT_EQ(remove_config["Job"]["OperationType"], 3);
  EXPECT_EQ(remove_config["Job"]["Alias"], lower_thumb);
  EXPECT_TRUE(remove_config["Job"]["StorePath"].is_string());
  EXPECT_TRUE(remove_config["Job"]["Properties"].is_string());

  // Reenrollment: flat, no Job wrapper.
  const Json re = configuration(reg, reenroll);
  expect_envelope(re);
  EXPECT_FALSE(re.contains("Job"));
  EXPECT_EQ(re["Subject"], "CN=app.example.test");
  EXPECT_EQ(re["KeyType"], "RSA");  // never null
  EXPECT_EQ(re["KeySize"], 3072);   // a number
  EXPECT_TRUE(re["StorePath"].is_string());
  EXPECT_TRUE(re.contains("StorePassword"));
  EXPECT_TRUE(re.contains("Entropy"));
  EXPECT_EQ(re["ClientMachine"], "cagent-host");
  ASSERT_TRUE(re["EnrollEndpoint"].is_string());
  ASSERT_TRUE(re["Properties"].is_string());
  const Json props = Json::parse(re["Properties"].get<std::string>());
  EXPECT_EQ(props["separatePrivateKey"], "false") << props.dump();  // its absence crashes the C agent
  EXPECT_FALSE(props.contains("SeparatePrivateKey")) << props.dump();
  EXPECT_TRUE(props["privateKeyPath"].is_string());
  // The CSR round trip and completion, as the C agent sends them.
  const Json enrolled = call_endpoint(*http, re["EnrollEndpoint"], reg.token, reenroll,
                                      {{"CSRText", make_csr_base64("CN=app.example.test", {})}})
                            .json();
  EXPECT_EQ(enrolled["Result"]["Status"], 1);
  EXPECT_TRUE(enrolled["Certificate"].is_string());
  const HttpResult done = call_endpoint(*http, find_job(reg.jobs, reenroll)["CompletionEndpoint"], reg.token, reenroll,
                                        {{"Status", 2}, {"AuditId", re["AuditId"]}, {"Message", ""}});
  EXPECT_EQ(done.json()["Result"]["Status"], 1);
  EXPECT_EQ(admin_get(*http, "/admin/history?job=" + reenroll)[0]["Result"], "Success");

  // A cancelled job says so in the same envelope.
  const Json remove_entry = find_job(reg.jobs, remove);
  admin_post(*http, "/admin/jobs/" + remove + "/cancel");
  reg = native(reg.agent_id);  // the cancellation ended the session
  EXPECT_FALSE(find_job(reg.jobs, remove).is_object());
  const Json cancelled = call_endpoint(*http, remove_entry["ConfigurationEndpoint"], reg.token, remove).json();
  EXPECT_EQ(cancelled["JobCancelled"], true);
  EXPECT_TRUE(cancelled["AuditId"].is_number_integer());
  EXPECT_EQ(cancelled["Result"]["Status"], 1);
}

TEST_F(CommandSimNativeTest, ANewPlatform5AgentGetsItsCertificateOnlyOnceApproved) {
  start({});
  const std::string csr = make_csr_base64("CN=cagent-host", {});
  Registration first = register_agent(*http, "cagent-host", "", kCAgentCapabilities, {}, csr, 5);
  EXPECT_EQ(first.status(), 2);
  // The C agent throws away what comes with a Warning: nothing is signed or recorded.
  EXPECT_TRUE(first.response["Session"]["Certificate"].is_null());
  EXPECT_EQ(admin_get(*http, "/admin/certificates").size(), 0u);
  admin_post(*http, "/admin/agents/cagent-host/approve");
  Registration approved = register_agent(*http, "cagent-host", "", kCAgentCapabilities, {}, csr, 5);
  EXPECT_EQ(approved.status(), 1);
  ASSERT_TRUE(approved.response["Session"]["Certificate"].is_string());
  EXPECT_EQ(approved.agent_id, first.agent_id);
  EXPECT_EQ(admin_get(*http, "/admin/certificates").size(), 1u);
}

}  // namespace
}  // namespace wincert::sim::command::testing
