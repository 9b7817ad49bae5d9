// command-sim: schedules, job configurations (checked against the Universal Orchestrator fixtures),
// inventory, reenrollment CSR signing, completions (dedup), cancellation and the test-PFX admin call.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "certstore/pkcs12.hpp"
#include "certstore/x509.hpp"
#include "common/encoding.hpp"
#include "common/secret.hpp"
#include "sim/command/json_util.hpp"
#include "tests/sim/command_sim_support.hpp"
#include "tests/support/result_matchers.hpp"

namespace wincert::sim::command::testing {
namespace {

using certstore::SanType;

Json load_fixture(const std::string& name) {
  std::string text = read_text(std::string(WINCERT_SHARED_DIR) + "/fixtures/jobs/" + name);
  if (text.starts_with("\xEF\xBB\xBF")) text = text.substr(3);
  return Json::parse(text);
}

// Every member of the fixture exists in ours with the same JSON type (null on either side matches
// anything: the fixtures hold nulls where a real job has values and vice versa), recursively for objects
// and for the first element of arrays.
void expect_same_shape(const Json& fixture, const Json& ours, const std::string& path) {
  if (fixture.is_null() || ours.is_null()) return;
  ASSERT_EQ(fixture.type_name(), std::string(ours.type_name())) << path;
  if (fixture.is_object()) {
    for (auto it = fixture.begin(); it != fixture.end(); ++it) {
      ASSERT_TRUE(ours.contains(it.key())) << path << "." << it.key() << " is missing in " << ours.dump();
      expect_same_shape(it.value(), ours[it.key()], path + "." + it.key());
    }
  } else if (fixture.is_array() && !fixture.empty() && !ours.empty()) {
    expect_same_shape(fixture[0], ours[0], path + "[0]");
  }
}

class CommandSimJobsTest : public SimFixture {};

TEST_F(CommandSimJobsTest, SchedulesAsTheSessionCarriesThem) {
  start();
  Registration reg = connect();
  const std::string store = create_store(reg.agent_id);
  const std::vector<std::pair<Json, Json>> cases = {
      {nullptr, nullptr},
      {{{"Immediate", true}}, nullptr},
      {{{"Interval", {{"Minutes", 30}}}}, "I_30"},
      {{{"Daily", {{"Time", "09:30"}}}}, "D_09:30"},
      {{{"Weekly", {{"Days", {"Monday", "Wednesday", "Friday"}}, {"Time", "09:30"}}}}, "W_246_09:30"},
      {{{"Weekly", {{"Days", {0, 6}}, {"Time", "2030-01-01T23:59:00Z"}}}}, "W_17_23:59"},
      {{{"Monthly", {{"Day", "L"}, {"Time", "23:59"}}}}, "M_L_23:59"},
      {{{"Monthly", {{"Day", 15}, {"Time", "00:00"}}}}, "M_15_00:00"},
      {{{"ExactlyOnce", {{"Time", "2030-01-02T03:04:05Z"}}}}, "O_2030-01-02T03:04"},
      {"I_5", "I_5"},
      {"W_1_12:00", "W_1_12:00"},
  };
  std::vector<std::pair<std::string, Json>> jobs;
  for (const auto& [schedule, wire] : cases) {
    Json body = {{"Type", "Inventory"}, {"StoreId", store}};
    if (!schedule.is_null()) body["Schedule"] = schedule;
    jobs.emplace_back(schedule_job(body), wire);
  }
  Registration again = connect();
  ASSERT_EQ(again.jobs.size(), cases.size());
  for (const auto& [id, wire] : jobs) {
    Json entry = find_job(again.jobs, id);
    ASSERT_TRUE(entry.is_object()) << id;
    EXPECT_EQ(entry["Schedule"], wire) << entry.dump();
    EXPECT_TRUE(entry["Cron"].is_null());
    EXPECT_EQ(entry["Priority"], 5);
    EXPECT_EQ(entry["Capability"], "CertStores.WinCert.Inventory");
    EXPECT_EQ(entry["JobTypeId"].get<std::string>().size(), 36u);
  }
  for (const Json& bad : {Json("I_0"), Json("X_1"), Json("D_25:00"), Json("W_8_09:00"), Json("M_32_09:00"),
                          Json({{"Interval", {{"Minutes", 0}}}}),
                          Json({{"Weekly", {{"Days", {"Funday"}}, {"Time", "09:00"}}}}), Json({{"Sometimes", true}})}) {
    HttpResult r = http->post("/admin/jobs", {{"Type", "Inventory"}, {"StoreId", store}, {"Schedule", bad}});
    EXPECT_EQ(r.status, 400u) << bad.dump() << " " << r.body;
  }
}

TEST_F(CommandSimJobsTest, IntervalJobsReappearOneShotJobsDoNot) {
  start();
  Registration reg = connect();
  const std::string store = create_store(reg.agent_id);
  const std::string interval =
      schedule_job({{"Type", "Inventory"}, {"StoreId", store}, {"Schedule", {{"Interval", {{"Minutes", 1}}}}}});
  const std::string once =
      schedule_job({{"Type", "Inventory"}, {"StoreId", store}, {"Schedule", "O_2030-01-01T00:00"}});
  const std::string now = schedule_job({{"Type", "Inventory"}, {"StoreId", store}});
  reg = connect();
  ASSERT_EQ(reg.jobs.size(), 3u);
  std::set<std::int64_t> history_ids;
  for (int round = 0; round < 3; ++round) {
    Json config = configuration(reg, interval);
    const std::int64_t run = config["JobHistoryId"].get<std::int64_t>();
    EXPECT_EQ(config["AuditId"], run);
    history_ids.insert(run);
    // Fetching the configuration again before completing gives the same run.
    EXPECT_EQ(configuration(reg, interval)["JobHistoryId"], run);
    EXPECT_EQ(complete(reg, interval, run).json()["Result"]["Status"], 1);
    reg = connect();
    EXPECT_TRUE(find_job(reg.jobs, interval).is_object()) << "round " << round;
  }
  EXPECT_EQ(history_ids.size(), 3u);  // every occurrence is its own JobHistoryId
  for (const std::string& one_shot : {once, now}) {
    Json config = configuration(reg, one_shot);
    EXPECT_EQ(
        complete(reg, one_shot, config["JobHistoryId"].get<std::int64_t>(), 4, "it broke").json()["Result"]["Status"],
        1);
  }
  reg = connect();
  EXPECT_EQ(reg.jobs.size(), 1u);
  EXPECT_TRUE(find_job(reg.jobs, interval).is_object());
  // A finished one-shot job's configuration is refused with a readable reason.
  Json late = call_endpoint(*http, "KeyfactorAgents/CertStoreInventory/Configuration", reg.token, now).json();
  EXPECT_EQ(late["Result"]["Status"], 3);
  // No documented code for this (reference 2): Status 3, no code, the reason in the message.
  EXPECT_EQ(late["Result"]["Error"]["CodeString"], "");
  EXPECT_NE(late["Result"]["Error"]["Message"].get<std::string>().find("has completed"), std::string::npos);
  Json history = admin_get(*http, "/admin/history?job=" + interval);
  EXPECT_EQ(history.size(), 3u);
  EXPECT_EQ(admin_get(*http, "/admin/history?result=Failure").size(), 2u);
  EXPECT_EQ(admin_get(*http, "/admin/history?store=" + store).size(), 5u);
  EXPECT_EQ(admin_get(*http, "/admin/jobs?all=1").size(), 3u);
  EXPECT_EQ(admin_get(*http, "/admin/jobs").size(), 1u);
}

TEST_F(CommandSimJobsTest, ConfigurationsHaveTheUniversalOrchestratorShape) {
  start();
  Registration reg = connect();
  const std::string iis = create_store(reg.agent_id, "IISU", "192.168.230.170");
  const std::string wincert = create_store(reg.agent_id, "WinCert", "vmlabsvr1");
  Json pfx = admin_post(*http, "/admin/pfx", {{"Subject", "CN=www.example.com"}, {"Password", "sldfklsdfsldjfk"}});
  const std::string add =
      schedule_job({{"Type", "Add"},
                    {"StoreId", iis},
                    {"Contents", pfx["Pfx"]},
                    {"PfxPassword", "sldfklsdfsldjfk"},
                    {"Overwrite", true},
                    {"EntryParameters", {{"SiteName", "Default Web Site"}, {"Port", "8443"}, {"sniflag", "1"}}}});
  const std::string remove = schedule_job({{"Type", "Remove"},
                                           {"StoreId", iis},
                                           {"Alias", "D263D275D35E881C2AAFAC6AAC1E59AE384DB486"},
                                           {"EntryParameters", {{"SiteName", "Default Web Site"}}}});
  const std::string inventory = schedule_job({{"Type", "Inventory"}, {"StoreId", wincert}});
  reg = connect();

  Json add_config = configuration(reg, add);
  expect_same_shape(load_fixture("Management.json"), add_config, "Management");
  EXPECT_EQ(add_config["OperationType"], 2);
  EXPECT_EQ(add_config["Overwrite"], true);
  EXPECT_EQ(add_config["Capability"], "CertStores.IISU.Management");
  EXPECT_EQ(add_config["JobCertificate"]["Contents"], pfx["Pfx"]);
  EXPECT_EQ(add_config["JobCertificate"]["PrivateKeyPassword"], "sldfklsdfsldjfk");
  EXPECT_EQ(add_config["JobCertificate"]["Thumbprint"], pfx["Thumbprint"]);
  EXPECT_EQ(add_config["JobProperties"]["Port"], "8443");
  EXPECT_EQ(add_config["JobProperties"]["SniFlag"], "1");    // the store type's spelling wins
  EXPECT_EQ(add_config["JobProperties"]["IPAddress"], "*");  // a default, as Command prefills it
  EXPECT_TRUE(add_config["JobProperties"]["HostName"].is_null());
  EXPECT_EQ(add_config["JobCancelled"], false);
  EXPECT_EQ(add_config["RequestStatus"], 1);
  EXPECT_EQ(add_config["AuditId"], add_config["JobHistoryId"]);
  EXPECT_EQ(add_config["Result"]["Status"], 1);
  const Json& details = add_config["CertificateStoreDetails"];
  EXPECT_EQ(details["ClientMachine"], "192.168.230.170");
  EXPECT_EQ(details["StorePath"], "My");
  EXPECT_TRUE(details["Type"].is_number_integer());
  ASSERT_TRUE(details["Properties"].is_string());  // a JSON string holding an object
  Json props = Json::parse(details["Properties"].get<std::string>());
  EXPECT_EQ(props["WinRM Protocol"], "http");
  EXPECT_EQ(props["WinRM Port"], "5985");
  EXPECT_EQ(props["ServerUsername"], "vagrant");
  EXPECT_EQ(props["ServerPassword"], "Passw0rd!");
  EXPECT_EQ(props["WinRM Authentication"], "basic");
  EXPECT_EQ(props["spnwithport"], "false");
  EXPECT_EQ(props["ServerUseSsl"], "true");
  EXPECT_EQ(add_config["ServerUsername"], "vagrant");
  EXPECT_EQ(add_config["ServerPassword"], "Passw0rd!");

  Json remove_config = configuration(reg, remove);
  expect_same_shape(load_fixture("ManagementRemove.json"), remove_config, "ManagementRemove");
  EXPECT_EQ(remove_config["OperationType"], 3);
  EXPECT_EQ(remove_config["JobCertificate"]["Alias"], "D263D275D35E881C2AAFAC6AAC1E59AE384DB486");
  EXPECT_EQ(remove_config["JobCertificate"]["Contents"], "");
  EXPECT_TRUE(remove_config["JobCertificate"]["PrivateKeyPassword"].is_null());

  Json inv_config = configuration(reg, inventory);
  expect_same_shape(load_fixture("WinCertInventory.json"), inv_config, "WinCertInventory");
  expect_same_shape(load_fixture("WinIISInventory.json"), inv_config, "WinIISInventory");
  EXPECT_TRUE(inv_config["JobProperties"].is_null());
  EXPECT_FALSE(inv_config.contains("OperationType"));
  EXPECT_EQ(inv_config["Capability"], "CertStores.WinCert.Inventory");
  EXPECT_EQ(inv_config["CertificateStoreDetails"]["StorePassword"], "");
  EXPECT_TRUE(inv_config["InventoryEndpoint"].is_string());
  EXPECT_TRUE(inv_config["LastInventory"].is_array());
  // The admin view never shows the secrets.
  Json job = admin_get(*http, "/admin/jobs/" + add);
  EXPECT_EQ(job.dump().find("sldfklsdfsldjfk"), std::string::npos);
  EXPECT_EQ(admin_get(*http, "/admin/stores/" + iis).dump().find("Passw0rd!"), std::string::npos);
  // Using another family's endpoints for a job is refused.
  Json wrong = call_endpoint(*http, "KeyfactorAgents/CertStoreManagement/Configuration", reg.token, inventory).json();
  EXPECT_EQ(wrong["Result"]["Status"], 3);
  EXPECT_EQ(wrong["Result"]["Error"]["CodeString"], "");
  EXPECT_NE(wrong["Result"]["Error"]["Message"].get<std::string>().find("use its own endpoints"), std::string::npos);
}

TEST_F(CommandSimJobsTest, InventorySnapshotsDiffsAndReadBack) {
  start();
  Registration reg = connect();
  const std::string store = create_store(reg.agent_id);
  const std::string job = schedule_job({{"Type", "Inventory"}, {"StoreId", store}, {"Schedule", "I_10"}});
  reg = connect();
  std::vector<Json> certs;
  for (const char* cn : {"CN=a.example", "CN=b.example", "CN=c.example"})
    certs.push_back(admin_post(*http, "/admin/pfx", {{"Subject", cn}, {"Password", "x"}}));
  const Json ca_b64 = admin_get(*http, "/admin/ca")["Certificate"];
  auto item = [&](const Json& c, int status) {
    return Json{{"Alias", c["Thumbprint"]},
                {"PrivateKeyEntry", true},
                {"ItemStatus", status},
                {"UseChainLevel", true},
                {"Certificates", {c["Certificate"], ca_b64}},
                {"Parameters", {{"ProviderName", "Microsoft Software Key Storage Provider"}}}};
  };
  Json config = configuration(reg, job);
  const std::string update = config["InventoryEndpoint"];
  // A full snapshot (ItemStatus 0), split in two parts of the same run: both parts count.
  Json part1 = call_endpoint(*http, update, reg.token, job, {{"Inventory", Json::array({item(certs[0], 0)})}}).json();
  EXPECT_EQ(part1["Result"]["Status"], 1) << part1.dump();
  call_endpoint(*http, update, reg.token, job, {{"Inventory", Json::array({item(certs[1], 0)})}});
  Json inv = admin_get(*http, "/admin/stores/" + store + "/inventory");
  ASSERT_EQ(inv["Items"].size(), 2u);
  EXPECT_EQ(inv["Items"][0]["Alias"], certs[0]["Thumbprint"]);
  EXPECT_EQ(inv["Items"][0]["Certificates"].size(), 2u);
  EXPECT_EQ(inv["Items"][0]["Thumbprints"][0], certs[0]["Thumbprint"]);
  EXPECT_EQ(inv["Items"][0]["Parameters"]["ProviderName"], "Microsoft Software Key Storage Provider");
  EXPECT_EQ(inv["Items"][0]["UseChainLevel"], true);
  complete(reg, job, config["JobHistoryId"]);

  // The next run's LastInventory is what was submitted; a new snapshot replaces it.
  config = configuration(reg, job);
  ASSERT_EQ(config["LastInventory"].size(), 2u);
  EXPECT_EQ(config["LastInventory"][0]["Thumbprints"][0], certs[0]["Thumbprint"]);
  EXPECT_EQ(config["LastInventory"][0]["PrivateKeyEntry"], true);
  call_endpoint(*http, update, reg.token, job, {{"Inventory", Json::array({item(certs[2], 0)})}});
  inv = admin_get(*http, "/admin/stores/" + store + "/inventory");
  ASSERT_EQ(inv["Items"].size(), 1u);
  EXPECT_EQ(inv["Items"][0]["Alias"], certs[2]["Thumbprint"]);
  complete(reg, job, config["JobHistoryId"]);

  // A diff as the C agent sends it: New with certificates, Unchanged/Deleted without.
  config = configuration(reg, job);
  Json diff = {item(certs[0], 1),
               {{"Alias", certs[2]["Thumbprint"]},
                {"ItemStatus", 3},
                {"PrivateKeyEntry", false},
                {"Certificates", Json::array()}}};
  call_endpoint(*http, update, reg.token, job, {{"Inventory", diff}});
  inv = admin_get(*http, "/admin/stores/" + store + "/inventory");
  ASSERT_EQ(inv["Items"].size(), 1u);
  EXPECT_EQ(inv["Items"][0]["Alias"], certs[0]["Thumbprint"]);
  // An empty snapshot empties the store; garbage is refused without touching it.
  Json garbage =
      call_endpoint(
          *http, update, reg.token, job,
          {{"Inventory", Json::array({{{"Alias", "x"}, {"Certificates", Json::array({"bm90IGEgY2VydA=="})}}})}})
          .json();
  EXPECT_EQ(garbage["Result"]["Status"], 3);
  EXPECT_EQ(garbage["Result"]["Error"]["CodeString"], "");
  EXPECT_NE(garbage["Result"]["Error"]["Message"].get<std::string>().find("not a base64 DER certificate"),
            std::string::npos);
  EXPECT_EQ(admin_get(*http, "/admin/stores/" + store + "/inventory")["Items"].size(), 1u);
  EXPECT_EQ(
      http->post(resolve_endpoint(update), {{"SessionToken", reg.token}, {"JobId", job}, {"Inventory", "no"}}).status,
      400u);
  call_endpoint(*http, update, reg.token, job, {{"Inventory", Json::array()}});
  EXPECT_EQ(admin_get(*http, "/admin/stores/" + store + "/inventory")["Items"].size(), 0u);
  EXPECT_EQ(admin_get(*http, "/admin/counters")["InventorySubmissions"], 5);
}

TEST_F(CommandSimJobsTest, ReenrollmentSignsTheCsrWithTheCa) {
  start();
  Registration reg = connect();
  const std::string store = create_store(reg.agent_id, "IISU");
  const std::string job =
      schedule_job({{"Type", "Reenrollment"},
                    {"StoreId", store},
                    {"Subject", "CN=odkg.example.com, O=Example, C=US"},
                    {"SANs", {{"dns", {"odkg.example.com", "www.odkg.example.com"}}, {"ip4", {"10.0.0.7"}}}},
                    {"KeyType", "RSA"},
                    {"KeySize", 2048},
                    {"ProviderName", "Microsoft Software Key Storage Provider"},
                    {"EntryParameters", {{"SiteName", "Default Web Site"}}}});
  reg = connect();
  Json entry = find_job(reg.jobs, job);
  EXPECT_EQ(entry["Capability"], "CertStores.IISU.ReEnrollment");  // as agents register it
  EXPECT_EQ(entry["Priority"], 4);
  Json config = configuration(reg, job);
  EXPECT_EQ(config["JobProperties"]["subjectText"], "CN=odkg.example.com, O=Example, C=US");
  EXPECT_EQ(config["JobProperties"]["keyType"], "RSA");
  EXPECT_EQ(config["JobProperties"]["keySize"], "2048");
  EXPECT_EQ(config["JobProperties"]["ProviderName"], "Microsoft Software Key Storage Provider");
  EXPECT_EQ(config["JobProperties"]["SiteName"], "Default Web Site");
  EXPECT_EQ(config["SANs"]["dns"].size(), 2u);
  EXPECT_EQ(config["SANs"]["ip4"][0], "10.0.0.7");
  EXPECT_TRUE(config.contains("Alias"));
  EXPECT_TRUE(config.contains("Overwrite"));
  ASSERT_TRUE(config["EnrollEndpoint"].is_string());

  const std::string csr = make_csr_base64("CN=odkg.example.com, O=Example, C=US",
                                          {"dns:odkg.example.com", "dns:www.odkg.example.com", "ip:10.0.0.7"});
  HttpResult r = call_endpoint(*http, config["EnrollEndpoint"], reg.token, job, {{"CSRText", csr}});
  ASSERT_EQ(r.status, 200u) << r.body;
  Json answer = r.json();
  EXPECT_EQ(answer["Result"]["Status"], 1);
  ASSERT_TRUE(answer["Certificate"].is_string());
  const std::string der = *base64_decode(answer["Certificate"].get<std::string>());
  const std::string ca_der = *base64_decode(admin_get(*http, "/admin/ca")["Certificate"].get<std::string>());
  std::string why;
  EXPECT_TRUE(verifies_against(der, ca_der, &why)) << why;
  auto info = certstore::parse_certificate_der(der);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->subject, "CN=odkg.example.com, O=Example, C=US");
  EXPECT_EQ(info->issuer, "CN=command-sim CA, O=wincert-agent simulator");
  const std::vector<certstore::SubjectAltName> expected = {
      {SanType::kDns, "odkg.example.com"}, {SanType::kDns, "www.odkg.example.com"}, {SanType::kIp, "10.0.0.7"}};
  EXPECT_EQ(info->sans, expected);
  // A year of validity (the default).
  const auto seconds = *parse_iso8601(info->not_after) - *parse_iso8601(info->not_before);
  EXPECT_NEAR(static_cast<double>(seconds) / 86400.0, 365.0, 0.01);
  // PEM is accepted as well (the UO hands certreq's PEM output over).
  const std::string pem = "-----BEGIN NEW CERTIFICATE REQUEST-----\n" + make_csr_base64("CN=pem.example.com", {}) +
                          "\n-----END NEW CERTIFICATE REQUEST-----\n";
  EXPECT_EQ(
      call_endpoint(*http, config["EnrollEndpoint"], reg.token, job, {{"CSRText", pem}}).json()["Result"]["Status"], 1);
  Json bad = call_endpoint(*http, config["EnrollEndpoint"], reg.token, job, {{"CSRText", "bm90IGEgQ1NS"}}).json();
  EXPECT_EQ(bad["Result"]["Status"], 3);
  EXPECT_EQ(bad["Result"]["Error"]["CodeString"], "");
  EXPECT_NE(bad["Result"]["Error"]["Message"].get<std::string>().find("CSR was not signed"), std::string::npos);
  EXPECT_TRUE(bad["Certificate"].is_null());
  Json issued = admin_get(*http, "/admin/certificates");
  int reenrollments = 0;
  for (const auto& c : issued) {
    if (c["Purpose"] == "reenrollment") {
      ++reenrollments;
      EXPECT_EQ(c["JobId"], job);
      EXPECT_EQ(c["JobHistoryId"], config["JobHistoryId"]);
    }
  }
  EXPECT_EQ(reenrollments, 2);
  EXPECT_EQ(complete(reg, job, config["JobHistoryId"]).json()["Result"]["Status"], 1);
}

TEST_F(CommandSimJobsTest, CompletionsAreRecordedOnceAndChecked) {
  start();
  Registration reg = connect();
  const std::string store = create_store(reg.agent_id);
  const std::string job = schedule_job({{"Type", "Remove"}, {"StoreId", store}, {"Alias", "ABCD"}});
  const std::string other = schedule_job({{"Type", "Inventory"}, {"StoreId", store}, {"Schedule", "I_5"}});
  reg = connect();
  // Completing before fetching the configuration: there is no run to complete.
  Json early = complete(reg, job, 0).json();
  EXPECT_EQ(early["Result"]["Status"], 3);
  EXPECT_EQ(early["Result"]["Error"]["CodeString"], "");
  EXPECT_NE(early["Result"]["Error"]["Message"].get<std::string>().find("fetch its configuration first"),
            std::string::npos);
  Json config = configuration(reg, job);
  const std::int64_t run = config["JobHistoryId"];
  Json wrong = complete(reg, job, run + 12345).json();
  EXPECT_EQ(wrong["Result"]["Status"], 3);
  EXPECT_EQ(complete(reg, job, run, 3, "Removed, with a warning").json()["Result"]["Status"], 1);
  // The same completion again (a retry after a lost response): acknowledged, not recorded twice.
  EXPECT_EQ(complete(reg, job, run, 3, "Removed, with a warning").json()["Result"]["Status"], 1);
  EXPECT_EQ(complete(reg, job, run, 2).json()["Result"]["Status"], 1);
  Json history = admin_get(*http, "/admin/history?job=" + job);
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0]["JobHistoryId"], run);
  EXPECT_EQ(history[0]["Result"], "Warning");
  EXPECT_EQ(history[0]["Status"], 3);
  EXPECT_EQ(history[0]["Message"], "Removed, with a warning");
  EXPECT_EQ(history[0]["OperationType"], "Remove");
  EXPECT_EQ(history[0]["JobType"], "Management");
  EXPECT_EQ(history[0]["AgentMachine"], "orchestrator-1");
  EXPECT_EQ(history[0]["ClientMachine"], "winhost1");
  EXPECT_FALSE(history[0]["OperationStart"].get<std::string>().empty());
  EXPECT_FALSE(history[0]["OperationEnd"].get<std::string>().empty());
  Json counters = admin_get(*http, "/admin/counters");
  EXPECT_EQ(counters["DuplicateCompletions"], 2);
  EXPECT_EQ(counters["CompletionsRecorded"], 1);
  // Another job's AuditId is not this job's.
  Json other_config = configuration(reg, other);
  Json crossed = call_endpoint(*http, "KeyfactorAgents/CertStoreInventory/Complete", reg.token, other,
                               {{"Status", 2}, {"AuditId", run}})
                     .json();
  EXPECT_EQ(crossed["Result"]["Status"], 3);
  // The UO's JobResult names (Result, JobHistoryId, FailureMessage) are understood as well.
  Json uo = call_endpoint(
                *http, "KeyfactorAgents/CertStoreInventory/Complete", reg.token, other,
                {{"Result", "Failure"}, {"JobHistoryId", other_config["JobHistoryId"]}, {"FailureMessage", "no route"}})
                .json();
  EXPECT_EQ(uo["Result"]["Status"], 1);
  Json h = admin_get(*http, "/admin/history?job=" + other);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0]["Result"], "Failure");
  EXPECT_EQ(h[0]["Message"], "no route");
  EXPECT_EQ(http->post("/KeyfactorAgents/CertStoreInventory/Complete",
                       {{"SessionToken", reg.token}, {"JobId", other}, {"Status", 9}})
                .status,
            400u);
}

TEST_F(CommandSimJobsTest, CancelledJobsAreReportedAsCancelled) {
  start();
  Registration reg = connect();
  const std::string store = create_store(reg.agent_id);
  const std::string before = schedule_job({{"Type", "Inventory"}, {"StoreId", store}});
  const std::string during = schedule_job({{"Type", "Inventory"}, {"StoreId", store}, {"Schedule", "I_5"}});
  reg = connect();
  ASSERT_EQ(reg.jobs.size(), 2u);
  Json during_config = configuration(reg, during);
  admin_post(*http, "/admin/jobs/" + before + "/cancel");
  EXPECT_EQ(http->request(boost::beast::http::verb::delete_, "/admin/jobs/" + during).status, 200u);
  // The old session's configuration calls still answer, with JobCancelled.
  Registration stale = reg;
  stale.token = connect().token;  // cancellation invalidated the old session
  Json cancelled = configuration(stale, before);
  EXPECT_EQ(cancelled["JobCancelled"], true);
  EXPECT_EQ(cancelled["Result"]["Status"], 1);
  // A job that was running when it was cancelled: its completion is recorded and answered with JobCancelled.
  Json done = complete(stale, during, during_config["JobHistoryId"]).json();
  EXPECT_EQ(done["JobCancelled"], true);
  EXPECT_EQ(done["Result"]["Status"], 2);
  Json history = admin_get(*http, "/admin/history?job=" + during);
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0]["Cancelled"], true);
  EXPECT_TRUE(connect().jobs.empty());
  EXPECT_EQ(admin_get(*http, "/admin/jobs/" + before)["State"], "Cancelled");
  EXPECT_EQ(http->post("/admin/jobs/" + during + "/cancel", Json::object()).status, 200u);
  EXPECT_EQ(http->post("/admin/jobs/nope/cancel", Json::object()).status, 404u);
}

TEST_F(CommandSimJobsTest, ScheduleChangesInvalidateTheAgentsSession) {
  start();
  Registration reg = connect();
  const std::string store = create_store(reg.agent_id);
  auto valid = [&](const std::string& token) {
    return http->post("/KeyfactorAgents/Session/Heartbeat", {{"SessionToken", token}})
        .json()["SessionValid"]
        .get<bool>();
  };
  EXPECT_TRUE(valid(reg.token));
  schedule_job({{"Type", "Inventory"}, {"StoreId", store}});
  EXPECT_FALSE(valid(reg.token));
  // Switched off, the agent learns about new jobs only when it registers on its own.
  admin_put(*http, "/admin/settings", {{"InvalidateOnSchedule", false}});
  reg = connect();
  schedule_job({{"Type", "Inventory"}, {"StoreId", store}});
  EXPECT_TRUE(valid(reg.token));
  EXPECT_EQ(connect().jobs.size(), 2u);
}

TEST_F(CommandSimJobsTest, OnlyJobsForRegisteredCapabilitiesAreHandedOut) {
  start();
  Registration reg =
      register_agent(*http, "orchestrator-1", "", {"CertStores.WinCert.Inventory", "CertStores.IISU.ReEnrollment"});
  const std::string wincert = create_store(reg.agent_id, "WinCert");
  const std::string iis = create_store(reg.agent_id, "IISU");
  const std::string listed = schedule_job({{"Type", "Inventory"}, {"StoreId", wincert}});
  const std::string unregistered = schedule_job({{"Type", "Inventory"}, {"StoreId", iis}});
  const std::string management = schedule_job({{"Type", "Remove"}, {"StoreId", wincert}, {"Alias", "ABCD"}});
  const std::string reenroll = schedule_job({{"Type", "Reenrollment"}, {"StoreId", iis}, {"Subject", "CN=a"}});
  // The capability test knob does not hide a job: the store type's capability decides.
  const std::string knob = schedule_job({{"Type", "Inventory"},
                                         {"StoreId", wincert},
                                         {"Capability", "CertStores.WinAdfs.Inventory"},
                                         {"Schedule", "I_5"}});

  reg = register_agent(*http, "orchestrator-1", reg.agent_id,
                       {"certstores.wincert.inventory", "CertStores.IISU.Reenrollment"});  // any case
  std::set<std::string> ids;
  for (const auto& entry : reg.jobs) ids.insert(entry["JobId"].get<std::string>());
  EXPECT_EQ(ids, (std::set<std::string>{listed, reenroll, knob}));

  const Json withheld = admin_get(*http, "/admin/jobs/" + unregistered);
  EXPECT_EQ(withheld["HandedOut"], false);
  EXPECT_EQ(withheld["WithheldBecause"],
            "the orchestrator 'orchestrator-1' did not register the capability CertStores.IISU.Inventory");
  EXPECT_EQ(admin_get(*http, "/admin/jobs/" + management)["WithheldBecause"],
            "the orchestrator 'orchestrator-1' did not register the capability CertStores.WinCert.Management");
  const Json handed = admin_get(*http, "/admin/jobs/" + listed);
  EXPECT_EQ(handed["HandedOut"], true);
  EXPECT_TRUE(handed["WithheldBecause"].is_null());

  // Registering the capability lists the job (auto-approve: no re-approval needed here).
  reg = register_agent(*http, "orchestrator-1", reg.agent_id,
                       {"CertStores.WinCert.Inventory", "CertStores.IISU.Inventory", "CertStores.IISU.ReEnrollment"});
  EXPECT_TRUE(find_job(reg.jobs, unregistered).is_object());
  EXPECT_EQ(admin_get(*http, "/admin/jobs/" + unregistered)["HandedOut"], true);

  // A store for an orchestrator that has not registered yet says so.
  const std::string later = create_store_with(*http, "orchestrator-later");
  const std::string waiting = schedule_job({{"Type", "Inventory"}, {"StoreId", later}});
  EXPECT_EQ(admin_get(*http, "/admin/jobs/" + waiting)["WithheldBecause"],
            "no orchestrator named 'orchestrator-later' has registered yet (the store's orchestrator)");
}

TEST_F(CommandSimJobsTest, ChainedInventoryAfterManagement) {
  start({"--auto-approve", "--chain-inventory"});
  Registration reg = connect();
  const std::string store = create_store(reg.agent_id);
  const std::string job = schedule_job({{"Type", "Remove"}, {"StoreId", store}, {"Alias", "ABCD"}});
  reg = connect();
  Json config = configuration(reg, job);
  Json done = complete(reg, job, config["JobHistoryId"]).json();
  ASSERT_TRUE(done["InventoryJob"].is_string()) << done.dump();
  reg = connect();
  Json chained = find_job(reg.jobs, done["InventoryJob"]);
  ASSERT_TRUE(chained.is_object());
  EXPECT_EQ(chained["Capability"], "CertStores.WinCert.Inventory");
  EXPECT_TRUE(chained["Schedule"].is_null());
}

TEST_F(CommandSimJobsTest, TestPfxForAddJobs) {
  start();
  Json pfx = admin_post(*http, "/admin/pfx",
                        {{"Subject", "CN=add.example.com, O=Example"},
                         {"Password", "p@ss w0rd+$"},
                         {"SANs", {{"dns", {"add.example.com"}}, {"ip", {"192.0.2.1"}}}},
                         {"FriendlyName", "add test"}});
  const std::string der = *base64_decode(pfx["Pfx"].get<std::string>());
  auto opened = certstore::open_pfx(der, Secret("p@ss w0rd+$"), "test");
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  ASSERT_TRUE(opened->leaf.has_value());
  EXPECT_TRUE(opened->has_private_key);
  EXPECT_TRUE(opened->key_matches_leaf);
  EXPECT_EQ(opened->leaf->info.subject, "CN=add.example.com, O=Example");
  EXPECT_EQ(opened->leaf->info.thumbprint, pfx["Thumbprint"]);
  EXPECT_EQ(opened->leaf->friendly_name, "add test");
  EXPECT_EQ(opened->leaf->info.sans.size(), 2u);
  ASSERT_EQ(opened->chain.size(), 1u);  // the CA comes along
  EXPECT_EQ(opened->chain[0].info.subject, "CN=command-sim CA, O=wincert-agent simulator");
  EXPECT_THAT(certstore::open_pfx(der, Secret("wrong"), "test"), HasCode(ErrorCode::kInvalidArgument));
  // EC keys and legacy (3DES) encryption for old Windows versions.
  Json ec = admin_post(*http, "/admin/pfx",
                       {{"Subject", "CN=ec.example.com"},
                        {"Password", "pw"},
                        {"KeyType", "ECC"},
                        {"KeySize", "P-384"},
                        {"Legacy", true}});
  auto ec_opened = certstore::open_pfx(*base64_decode(ec["Pfx"].get<std::string>()), Secret("pw"), "ec");
  ASSERT_TRUE(ec_opened.ok()) << ec_opened.error().message;
  EXPECT_EQ(ec_opened->leaf->info.key.curve, "P-384");
  EXPECT_EQ(http->post("/admin/pfx", {{"Subject", "nonsense"}}).status, 400u);
  EXPECT_EQ(http->post("/admin/pfx", {{"Subject", "CN=x"}, {"KeyType", "DSA"}}).status, 400u);

  // An Add job with a wrong PFX password is refused at scheduling time, without echoing the password.
  Registration reg = connect();
  const std::string store = create_store(reg.agent_id);
  HttpResult bad = http->post(
      "/admin/jobs", {{"Type", "Add"}, {"StoreId", store}, {"Contents", pfx["Pfx"]}, {"PfxPassword", "Sup3rSecret!"}});
  EXPECT_EQ(bad.status, 400u);
  EXPECT_EQ(bad.body.find("Sup3rSecret!"), std::string::npos);
  EXPECT_EQ(http->post("/admin/jobs", {{"Type", "Remove"}, {"StoreId", store}}).status, 400u);
  EXPECT_EQ(http->post("/admin/jobs", {{"Type", "Inventory"}, {"StoreId", "nope"}}).status, 400u);
  EXPECT_EQ(http->post("/admin/jobs", {{"Type", "Discovery"}, {"StoreId", store}}).status, 400u);
  // DER contents without a password are a certificate-only Add.
  const std::string add = schedule_job({{"Type", "Add"}, {"StoreId", store}, {"Contents", pfx["Certificate"]}});
  reg = connect();
  Json config = configuration(reg, add);
  EXPECT_TRUE(config["JobCertificate"]["PrivateKeyPassword"].is_null());
  EXPECT_EQ(config["JobCertificate"]["Thumbprint"], pfx["Thumbprint"]);
}

}  // namespace
}  // namespace wincert::sim::command::testing
