// The JobTypeId table (agent/job_types.cpp): configured entries, pairings learnt from Command, the C agent's
// fixed GUIDs named in messages, the native configuration shape recognised; and the job runner completing a
// job it cannot dispatch as a Failure naming its JobTypeId instead of dropping it.
#include "agent/job_types.hpp"

#include <gtest/gtest.h>

namespace wincert::agent {
namespace {

using json = nlohmann::ordered_json;

constexpr const char* kInventoryType = "2c3a0a4f-8f3e-5d2a-9b1c-0e4f6a7b8c9d";

TEST(JobTypeTable, ConfiguredEntriesAreFoundIgnoringCase) {
  JobTypeTable table({{"2C3A0A4F-8F3E-5D2A-9B1C-0E4F6A7B8C9D", "CertStores.WinCert.Inventory"},
                      {"not-a-guid", "CertStores.WinCert.Management"},
                      {"00000000-0000-0000-0000-000000000000", "CertStores.IISU.Inventory"}});
  EXPECT_EQ(table.capability_for(kInventoryType), "CertStores.WinCert.Inventory");
  EXPECT_EQ(table.capability_for(" 2c3a0a4f-8f3e-5d2a-9b1c-0e4f6a7b8c9d "), "CertStores.WinCert.Inventory");
  EXPECT_EQ(table.size(), 1u) << "malformed ids and the all-zero placeholder are not keys";
  EXPECT_FALSE(table.capability_for("00000000-0000-0000-0000-000000000000"));
  EXPECT_FALSE(table.capability_for(""));
}

TEST(JobTypeTable, PairingsCommandShowedAreLearntButNeverOverrideTheConfiguration) {
  JobTypeTable table(std::map<std::string, std::string>{{kInventoryType, "CertStores.WinCert.Inventory"}});
  EXPECT_TRUE(table.learn("7d1e5b2a-1111-4222-8333-944455556666", "CertStores.IISU.Management"));
  EXPECT_FALSE(table.learn("7d1e5b2a-1111-4222-8333-944455556666", "CertStores.IISU.Management")) << "known";
  EXPECT_EQ(table.capability_for("7D1E5B2A-1111-4222-8333-944455556666"), "CertStores.IISU.Management");
  EXPECT_FALSE(table.learn(kInventoryType, "CertStores.WinSql.Inventory"));
  EXPECT_EQ(table.capability_for(kInventoryType), "CertStores.WinCert.Inventory");
  EXPECT_FALSE(table.learn("", "CertStores.IISU.Inventory"));
  EXPECT_FALSE(table.learn("7d1e5b2a-1111-4222-8333-944455556667", ""));
}

TEST(JobTypeTable, TheCAgentsFixedGuidsAreNamedAndAnUnknownOneSaysWhatToConfigure) {
  EXPECT_EQ(native_job_type_name("A809CE1F-1EEA-4738-A38E-15708C89C981"), "PEM inventory");
  EXPECT_EQ(native_job_type_name("0D8CF0C8-56CA-4B8A-B16A-C062018E170D"), "fetch logs");
  EXPECT_FALSE(native_job_type_name(kInventoryType));

  const std::string pem = undispatchable_message("a809ce1f-1eea-4738-a38e-15708c89c981");
  EXPECT_NE(pem.find("a809ce1f-1eea-4738-a38e-15708c89c981"), std::string::npos) << pem;
  EXPECT_NE(pem.find("native-agent PEM inventory"), std::string::npos) << pem;
  const std::string unknown = undispatchable_message(kInventoryType);
  EXPECT_NE(unknown.find(kInventoryType), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("JobTypes"), std::string::npos) << unknown;
  EXPECT_NE(undispatchable_message("").find("neither a Capability nor a JobTypeId"), std::string::npos);
}

TEST(NativeConfigurationShape, TheCAgentsShapesAreRecognisedAndTheUniversalOrchestratorsAreNot) {
  // reference 11.4: a Job wrapper for inventory and management, flat reenrollment.
  const auto inventory = json::parse(R"({"AuditId": 1001, "JobCancelled": false,
      "Result": {"Status": 1, "Error": null}, "InventoryEndpoint": "KeyfactorAgents/CertStoreInventory/Update",
      "Job": {"ClientMachine": "host1", "StorePath": "/etc/app/certs.pem", "Inventory": []}})");
  const auto management = json::parse(R"({"AuditId": 1003, "Job": {"OperationType": 2, "StorePath": "/x.pem",
      "Alias": "e6ac", "EntryContents": "MIIB", "Properties": "{}"}})");
  const auto reenrollment = json::parse(R"({"AuditId": 1005, "Subject": "CN=app", "KeyType": "RSA",
      "KeySize": 2048, "StorePath": "/app.pem", "EnrollEndpoint": "KeyfactorAgents/CertStoreReenrollment/Enroll",
      "Properties": "{\"separatePrivateKey\":\"false\"}"})");
  for (const auto* doc : {&inventory, &management, &reenrollment}) {
    auto shape = native_configuration_shape(*doc);
    ASSERT_TRUE(shape) << doc->dump();
    EXPECT_NE(shape->find("AgentPlatform 5"), std::string::npos) << *shape;
  }
  const auto uo = json::parse(R"({"Capability": "CertStores.WinCert.Inventory", "JobTypeId": "x",
      "CertificateStoreDetails": {"ClientMachine": "h", "StorePath": "My"}})");
  EXPECT_FALSE(native_configuration_shape(uo));
  const auto uo_without_capability = json::parse(R"({"CertificateStoreDetails": {"StorePath": "My"}})");
  EXPECT_FALSE(native_configuration_shape(uo_without_capability));
  const auto uo_wrapped = json::parse(R"({"Job": {"CertificateStoreDetails": {"StorePath": "My"}}})");
  EXPECT_FALSE(native_configuration_shape(uo_wrapped));
  EXPECT_FALSE(native_configuration_shape(json::array()));
}

}  // namespace
}  // namespace wincert::agent
