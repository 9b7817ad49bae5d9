#include "jobs/capabilities.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <set>

#include "test_util.hpp"

namespace wincert::jobs {
namespace {

TEST(Capability, ParsedCaseInsensitively) {
  auto key = parse_capability("CertStores.IISU.ReEnrollment");
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->store, StoreType::kIisu);
  EXPECT_EQ(key->kind, JobKind::kReenrollment);
  EXPECT_EQ(key->name(), "CertStores.IISU.ReEnrollment");  // the extension manifest's spelling
  key = parse_capability("CertStores.IISU.Reenrollment");  // Command's own store types' spelling
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->name(), "CertStores.IISU.ReEnrollment");
  key = parse_capability("certstores.winsql.management");
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->name(), "CertStores.WinSql.Management");
  for (const char* bad :
       {"CertStores.WinAdfs.Management", "CertStores.IISU.Discovery", "Custom.FetchLogs", "CertStores.IISU", ""}) {
    auto r = parse_capability(bad);
    ASSERT_FALSE(r.ok()) << bad;
    if (*bad) {
      EXPECT_NE(r.error().message.find(bad), std::string::npos) << r.error().message;
    }
  }
}

TEST(Capability, RegistryFindsHandlersForEveryFixture) {
  CapabilityRegistry registry = make_default_registry();
  for (const char* name :
       {"Management.json", "ManagementRemove.json", "WinCertInventory.json", "WinIISInventory.json"}) {
    auto config = parse_job_config(testing::read_fixture(name));
    ASSERT_TRUE(config.ok());
    EXPECT_TRUE(registry.find(config->capability).ok()) << config->capability;
  }
  auto missing = registry.find("CertStores.WinAdfs.Inventory");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("CertStores.WinAdfs.Inventory"), std::string::npos);
}

// The capabilities Command expects for a store type follow from its definition: Inventory always,
// Management when Add or Remove is supported, ReEnrollment (the manifest's spelling) when Enrollment is.
TEST(Capability, RegistrationListMatchesTheIntegrationManifest) {
  auto manifest = nlohmann::json::parse(testing::read_fixture("integration-manifest.json"));
  std::set<std::string> implied;
  for (const auto& store_type : manifest["about"]["orchestrator"]["store_types"]) {
    const std::string capability = store_type["Capability"];
    if (capability != "WinCert" && capability != "IISU" && capability != "WinSql") continue;
    const auto& ops = store_type["SupportedOperations"];
    implied.insert("CertStores." + capability + ".Inventory");
    if (ops["Add"].get<bool>() || ops["Remove"].get<bool>()) implied.insert("CertStores." + capability + ".Management");
    if (ops["Enrollment"].get<bool>()) implied.insert("CertStores." + capability + ".ReEnrollment");
  }
  ASSERT_EQ(implied.size(), 8u);  // WinSql has no Enrollment in the store-type definition

  const auto names = make_default_registry().capability_names();
  const std::set<std::string> registered(names.begin(), names.end());
  EXPECT_EQ(registered.size(), names.size()) << "no duplicates";
  for (const auto& c : implied) EXPECT_TRUE(registered.count(c)) << c << " is missing from the registration list";
  std::set<std::string> extra;
  for (const auto& c : registered) {
    if (!implied.count(c)) extra.insert(c);
  }
  // The one extra is deliberate: the extension's own manifest.json registers WinSql reenrollment too
  // (and config/store-types/WinSql.json declares Enrollment; see store_types_test.cpp).
  EXPECT_EQ(extra, std::set<std::string>{"CertStores.WinSql.ReEnrollment"});
}

TEST(JobResultJson, StatusNumbersAndShape) {
  EXPECT_EQ(static_cast<int>(JobStatus::kSuccess), 2);
  EXPECT_EQ(static_cast<int>(JobStatus::kWarning), 3);
  EXPECT_EQ(static_cast<int>(JobStatus::kFailure), 4);
  auto j = to_json(JobResult::failure(26009, "boom"));
  EXPECT_EQ(j.dump(), R"({"Result":4,"JobHistoryId":26009,"FailureMessage":"boom"})");
  EXPECT_EQ(to_json(JobResult::warning(1, "w"))["Result"], 3);
  EXPECT_EQ(to_json(JobResult::success(1))["Result"], 2);
}

TEST(JobResultJson, InventoryItem) {
  InventoryItem item;
  item.alias = "ABC";
  item.private_key_entry = true;
  item.certificates = {"TUlJQg=="};
  item.parameters = {{"SiteName", "Default Web Site"}, {"Port", "443"}};
  EXPECT_EQ(to_json(item).dump(),
            R"({"Alias":"ABC","PrivateKeyEntry":true,"ItemStatus":0,"UseChainLevel":false,"Certificates":["TUlJQg=="],)"
            R"("Parameters":{"SiteName":"Default Web Site","Port":"443"}})");
  EXPECT_EQ(to_json(std::vector<InventoryItem>{item, item}).size(), 2u);
}

TEST(JobResultJson, FailureMessageNamesJobStoreAndHost) {
  JobLabel label{"Management Add", "My", "web01", "5f5addc3-afc9-4789-a0fe-04c6e623c233"};
  EXPECT_EQ(failure_message(label, "the PFX password is wrong"),
            "Management Add failed on store 'My' at host 'web01' (job 5f5addc3-afc9-4789-a0fe-04c6e623c233): "
            "the PFX password is wrong");
}

}  // namespace
}  // namespace wincert::jobs
