#include "jobs/job_config.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/peer_json.hpp"
#include "test_util.hpp"

namespace wincert::jobs {
namespace {

using testing::read_fixture;

JobConfig parse_ok(const std::string& text) {
  auto parsed = parse_job_config(text);
  EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.error().message);
  if (!parsed.ok()) return {};
  return std::move(parsed).value();
}

std::string parse_error(const std::string& text) {
  auto parsed = parse_job_config(text);
  EXPECT_FALSE(parsed.ok());
  return parsed.ok() ? std::string() : parsed.error().message;
}

TEST(JobConfigFixtures, EveryFixtureStartsWithABomAndParses) {
  for (const char* name :
       {"Management.json", "ManagementRemove.json", "WinCertInventory.json", "WinIISInventory.json"}) {
    const std::string text = read_fixture(name);
    ASSERT_EQ(text.substr(0, 3), "\xEF\xBB\xBF") << name;
    auto parsed = parse_job_config(text);
    EXPECT_TRUE(parsed.ok()) << name << ": " << (parsed.ok() ? "" : parsed.error().message);
  }
}

TEST(JobConfigFixtures, ManagementAdd) {
  JobConfig c = parse_ok(read_fixture("Management.json"));
  EXPECT_EQ(c.capability, "CertStores.IISU.Management");
  EXPECT_EQ(c.job_id, "5f5addc3-afc9-4789-a0fe-04c6e623c233");
  EXPECT_EQ(c.job_type_id, "00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(c.job_history_id, 26009);
  ASSERT_TRUE(c.operation_type.has_value());
  EXPECT_EQ(*c.operation_type, OperationType::kAdd);
  EXPECT_FALSE(c.overwrite);
  EXPECT_FALSE(c.job_cancelled);
  EXPECT_TRUE(c.last_inventory.empty());
  EXPECT_EQ(c.store.client_machine, "ClientMachineGoesHere");
  EXPECT_EQ(c.store.store_path, "StorePathGoesHere");
  EXPECT_EQ(c.store.type, 104);
  // Properties arrived as a JSON string and was parsed again; the 1.x key spelling is kept.
  const StoreProperties& p = c.store.properties;
  ASSERT_TRUE(p.winrm_protocol.has_value());
  EXPECT_EQ(p.winrm_protocol->key, "WinRm Protocol");
  EXPECT_EQ(p.winrm_protocol->value, "ProtocolGoesHere");
  ASSERT_TRUE(p.winrm_port.has_value());
  EXPECT_EQ(p.winrm_port->key, "WinRm Port");
  EXPECT_EQ(p.winrm_port->value, "WinRmPortGoesHere");
  EXPECT_FALSE(p.spn_with_port);
  EXPECT_TRUE(p.server_use_ssl);
  ASSERT_TRUE(c.job_certificate.has_value());
  EXPECT_EQ(c.job_certificate->contents.reveal(), "CertificateContentGoesHere");
  EXPECT_EQ(c.job_certificate->private_key_password.reveal(), "sldfklsdfsldjfk");
  EXPECT_EQ(c.job_certificate->alias, "");
  EXPECT_FALSE(c.job_certificate->thumbprint.has_value());
  EXPECT_EQ(c.entry.site_name, "SiteNameGoesHere");
  EXPECT_EQ(c.entry.port, "IISPortGoesHere");
  EXPECT_EQ(c.entry.ip_address, "IPAddressGoesHere");
  EXPECT_EQ(c.entry.sni_flag, "SniFlagGoesHere");
  EXPECT_EQ(c.entry.protocol, "ProtocolGoesHere");
  EXPECT_FALSE(c.entry.host_name.has_value());  // null = absent
  EXPECT_FALSE(c.entry.provider_name.has_value());
  EXPECT_FALSE(c.entry.san.has_value());
  EXPECT_EQ(c.server_username, "UserNameGoesHere");
  EXPECT_EQ(c.server_password.reveal(), "PasswordGoesHere");
}

TEST(JobConfigFixtures, ManagementRemoveFallsBackToPropertiesCredentialsWhenTopLevelIsNull) {
  JobConfig c = parse_ok(read_fixture("ManagementRemove.json"));
  EXPECT_EQ(*c.operation_type, OperationType::kRemove);
  EXPECT_EQ(c.job_history_id, 26019);
  EXPECT_EQ(c.job_certificate->alias, "D263D275D35E881C2AAFAC6AAC1E59AE384DB486");
  EXPECT_TRUE(c.job_certificate->contents.empty());
  EXPECT_TRUE(c.job_certificate->private_key_password.empty());
  EXPECT_EQ(c.server_username, "UserNameGoesHere");  // from Properties: the top level is null
  EXPECT_EQ(c.server_password.reveal(), "PasswordGoesHere");
}

TEST(JobConfigFixtures, WinCertInventory) {
  JobConfig c = parse_ok(read_fixture("WinCertInventory.json"));
  EXPECT_EQ(c.capability, "CertStores.WinCert.Inventory");
  EXPECT_FALSE(c.operation_type.has_value());
  EXPECT_FALSE(c.job_certificate.has_value());
  EXPECT_TRUE(c.job_properties.empty());  // JobProperties: null
  ASSERT_EQ(c.last_inventory.size(), 1u);
  EXPECT_EQ(c.last_inventory[0].alias, "479D92068614E33B3CB84123AF76F1C40DF4B6F6");
  EXPECT_TRUE(c.last_inventory[0].private_key_entry);
  EXPECT_EQ(c.last_inventory[0].thumbprints, std::vector<std::string>{"479D92068614E33B3CB84123AF76F1C40DF4B6F6"});
  EXPECT_EQ(c.store.client_machine, "vmlabsvr1");
  EXPECT_EQ(c.store.store_path, "My");
  EXPECT_EQ(c.store.properties.winrm_protocol->value, "ssh");
  EXPECT_EQ(c.store.properties.winrm_port->value, "5985");
  EXPECT_FALSE(c.store.properties.server_username.has_value());  // null inside Properties
  EXPECT_EQ(c.server_username, "UserNameGoesHere");              // the top level wins
}

TEST(JobConfigFixtures, WinIisInventoryWithoutCredentials) {
  JobConfig c = parse_ok(read_fixture("WinIISInventory.json"));
  EXPECT_EQ(c.capability, "CertStores.IISU.Inventory");
  EXPECT_EQ(c.store.client_machine, "192.168.230.170");
  EXPECT_FALSE(c.server_username.has_value());
  EXPECT_TRUE(c.server_password.empty());
}

TEST(JobConfig, WithoutBomAndWithPropertiesAsObject) {
  const std::string text = R"({"Capability":"CertStores.WinCert.Inventory","JobHistoryId":"7",
    "CertificateStoreDetails":{"ClientMachine":"web01","StorePath":"My",
      "Properties":{"WinRM Protocol":"https","WinRM Port":5986,"spnwithport":true}}})";
  JobConfig c = parse_ok(text);
  EXPECT_EQ(c.job_history_id, 7);
  EXPECT_EQ(c.store.properties.winrm_protocol->value, "https");
  EXPECT_EQ(c.store.properties.winrm_port->value, "5986");
  EXPECT_TRUE(c.store.properties.spn_with_port);
}

TEST(JobConfig, NullsAnywhereAreAbsent) {
  const std::string text = R"({"Capability":null,"JobHistoryId":null,"JobCancelled":null,"Overwrite":null,
    "LastInventory":null,"JobCertificate":null,"JobProperties":null,"SANs":null,"OperationType":null,
    "CertificateStoreDetails":{"ClientMachine":null,"StorePath":null,"Properties":null,"Type":null}})";
  JobConfig c = parse_ok(text);
  EXPECT_EQ(c.capability, "");
  EXPECT_FALSE(c.job_certificate.has_value());
  EXPECT_FALSE(c.operation_type.has_value());
  EXPECT_FALSE(c.has_sans);
}

TEST(JobConfig, StorePropertyKeysAreCaseInsensitive) {
  const std::string text =
      R"({"CertificateStoreDetails":{"Properties":"{\"WINRM PROTOCOL\":\"https\",\"winrm port\":\"5999\",\"SpnWithPort\":\"TRUE\",\"restartservice\":\"True\",\"winrm authentication\":\"kerberos\",\"WinRM AllowUnencrypted\":\"FALSE\",\"serverusername\":\"svc\",\"Custom\":\"x\"}"}})";
  JobConfig c = parse_ok(text);
  const StoreProperties& p = c.store.properties;
  EXPECT_EQ(p.winrm_protocol->value, "https");
  EXPECT_EQ(p.winrm_protocol->key, "WINRM PROTOCOL");
  EXPECT_EQ(p.winrm_port->value, "5999");
  EXPECT_TRUE(p.spn_with_port);
  EXPECT_TRUE(p.restart_service);
  EXPECT_EQ(p.winrm_authentication->value, "kerberos");
  EXPECT_FALSE(p.winrm_allow_unencrypted);
  EXPECT_EQ(c.server_username, "svc");
  EXPECT_EQ(p.other.at("custom"), "x");  // case-insensitive map
}

TEST(JobConfig, BooleansAsStringsOrBools) {
  JobConfig a = parse_ok(
      R"({"Overwrite":"TRUE","JobCancelled":true,"CertificateStoreDetails":{"Properties":"{\"RestartService\":\"false\",\"WinRM AllowUnencrypted\":true}"}})");
  EXPECT_TRUE(a.overwrite);
  EXPECT_TRUE(a.job_cancelled);
  EXPECT_FALSE(a.store.properties.restart_service);
  EXPECT_TRUE(a.store.properties.winrm_allow_unencrypted);

  std::string error = parse_error(R"({"CertificateStoreDetails":{"Properties":"{\"spnwithport\":\"yes\"}"}})");
  EXPECT_NE(error.find("CertificateStoreDetails.Properties.spnwithport"), std::string::npos) << error;
  EXPECT_NE(parse_error(R"({"Overwrite":"maybe"})").find("Overwrite"), std::string::npos);
}

TEST(JobConfig, OperationTypeNumbers) {
  EXPECT_EQ(*parse_ok(R"({"OperationType":2})").operation_type, OperationType::kAdd);
  EXPECT_EQ(*parse_ok(R"({"OperationType":"3"})").operation_type, OperationType::kRemove);
  EXPECT_EQ(*parse_ok(R"({"OperationType":4})").operation_type, OperationType::kCreate);
  std::string error = parse_error(R"({"OperationType":42})");
  EXPECT_NE(error.find("OperationType 42"), std::string::npos) << error;
  EXPECT_NE(parse_error(R"({"OperationType":"Add"})").find("OperationType"), std::string::npos);
}

TEST(JobConfig, MalformedFieldsAreNamed) {
  EXPECT_NE(parse_error("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(parse_error("[1,2]").find("JSON object"), std::string::npos);
  EXPECT_NE(parse_error(R"({"JobHistoryId":"abc"})").find("JobHistoryId"), std::string::npos);
  EXPECT_NE(parse_error(R"({"CertificateStoreDetails":[1]})").find("CertificateStoreDetails"), std::string::npos);
  EXPECT_NE(parse_error(R"({"CertificateStoreDetails":{"ClientMachine":{"a":1}}})")
                .find("CertificateStoreDetails.ClientMachine"),
            std::string::npos);
  EXPECT_NE(parse_error(R"({"LastInventory":[{"Thumbprints":"x"}]})").find("LastInventory[0].Thumbprints"),
            std::string::npos);
  EXPECT_NE(parse_error(R"({"JobProperties":[1]})").find("JobProperties"), std::string::npos);
  EXPECT_NE(parse_error(R"({"SANs":{"dns":[1]}})").find("SANs.dns"), std::string::npos);
}

TEST(JobConfig, BrokenPropertiesStringNamesTheFieldAndNeverQuotesIt) {
  // A password inside a broken Properties string must not come back in the message.
  const std::string text =
      R"({"CertificateStoreDetails":{"Properties":"{\"ServerPassword\":\"Sup3rSecret!\", broken"}})";
  std::string error = parse_error(text);
  EXPECT_EQ(error.rfind("CertificateStoreDetails.Properties is not valid JSON: ", 0), 0u) << error;
  EXPECT_EQ(error.find("Sup3rSecret"), std::string::npos) << error;

  std::string typed = parse_error(R"({"ServerPassword":{"vault":"Sup3rSecret!"}})");
  EXPECT_NE(typed.find("ServerPassword"), std::string::npos);
  EXPECT_EQ(typed.find("Sup3rSecret"), std::string::npos);
  std::string pfx = parse_error(R"({"JobCertificate":{"PrivateKeyPassword":["Sup3rSecret!"]}})");
  EXPECT_NE(pfx.find("JobCertificate.PrivateKeyPassword"), std::string::npos);
  EXPECT_EQ(pfx.find("Sup3rSecret"), std::string::npos);
}

TEST(JobConfig, TopLevelCredentialsWinOverProperties) {
  JobConfig c = parse_ok(R"({"ServerUsername":"DOMAIN\\top","ServerPassword":"top-pw",
    "CertificateStoreDetails":{"Properties":"{\"ServerUsername\":\"inner\",\"ServerPassword\":\"inner-pw\"}"}})");
  EXPECT_EQ(c.server_username, "DOMAIN\\top");
  EXPECT_EQ(c.server_password.reveal(), "top-pw");
}

TEST(JobConfig, EntryParametersAndJobPropertiesAsText) {
  JobConfig c = parse_ok(R"({"JobProperties":{"SiteName":"Default Web Site","Port":443,"SniFlag":true,
     "InstanceName":"A,B","RenewalThumbprint":"ab","Extra":{"x":1},"Gone":null}})");
  EXPECT_EQ(c.entry.site_name, "Default Web Site");
  EXPECT_EQ(c.entry.port, "443");
  EXPECT_EQ(c.entry.sni_flag, "true");
  EXPECT_EQ(c.entry.instance_name, "A,B");
  EXPECT_EQ(c.entry.renewal_thumbprint, "ab");
  EXPECT_EQ(c.job_properties.at("extra"), R"({"x":1})");
  EXPECT_EQ(c.job_properties.count("Gone"), 0u);
}

TEST(Sans, KeysNormalisedAsSanBuilder) {
  EXPECT_EQ(normalize_san_key("DNS"), "dns");
  EXPECT_EQ(normalize_san_key("ip"), "ipaddress");
  EXPECT_EQ(normalize_san_key("ip4"), "ipaddress");
  EXPECT_EQ(normalize_san_key(" IP6 "), "ipaddress");
  EXPECT_EQ(normalize_san_key("rfc822"), "email");
  EXPECT_EQ(normalize_san_key("Email"), "email");
  EXPECT_EQ(normalize_san_key("URI"), "uri");
  EXPECT_EQ(normalize_san_key("upn"), "upn");
  EXPECT_EQ(normalize_san_key("OtherName"), "othername");
}

TEST(Sans, ReenrollmentSansMapInOrder) {
  // The extension's SANsUnitTests shape: dns twice, an IP, an email.
  JobConfig c = parse_ok(R"({"SANs":{"dns":["example.com"," www.example.com ",""],"ip4":["192.168.1.1"],
     "rfc822":["admin@example.com"],"ip6":["2001:db8::1"],"upn":["svc@corp"],"uri":["https://x"]},
     "JobProperties":{"subjectText":"CN=web01,O=Keyfactor\\, Inc","keyType":"ECC","keySize":"P-256","ProviderName":"Microsoft Software Key Storage Provider",
       "SAN":"dns=legacy.example.com"}})");
  EXPECT_TRUE(c.has_sans);
  EXPECT_EQ(san_string(c.reenrollment.sans),
            "dns=example.com&dns=www.example.com&ipaddress=192.168.1.1&email=admin@example.com&ipaddress=2001:db8::1"
            "&upn=svc@corp&uri=https://x");
  EXPECT_EQ(c.reenrollment.subject, "CN=web01,O=Keyfactor\\, Inc");
  EXPECT_EQ(c.reenrollment.key_type, "ECC");
  EXPECT_EQ(c.reenrollment.key_size, "P-256");
  EXPECT_EQ(c.entry.provider_name, "Microsoft Software Key Storage Provider");
}

TEST(Sans, LegacySanEntryParameterWhenNoSansMap) {
  JobConfig c = parse_ok(R"({"JobProperties":{"SAN":"dns=a.com&DNS=b.com&ip=10.0.0.1&"}})");
  EXPECT_FALSE(c.has_sans);
  EXPECT_EQ(san_string(c.reenrollment.sans), "dns=a.com&dns=b.com&ipaddress=10.0.0.1");
  EXPECT_NE(parse_error(R"({"JobProperties":{"SAN":"a.com"}})").find("JobProperties.SAN"), std::string::npos);
}

TEST(Override, ClientMachineAndKeysInsideThePropertiesString) {
  std::string text = read_fixture("Management.json");
  auto edited = set_override(text, "CertificateStoreDetails.ClientMachine", "127.0.0.1:45123");
  ASSERT_TRUE(edited.ok()) << edited.error().message;
  edited = apply_override(edited.value(), "CertificateStoreDetails.Properties.WinRm Port=5985");
  ASSERT_TRUE(edited.ok()) << edited.error().message;
  edited = apply_override(edited.value(), "certificatestoredetails.properties.winrm protocol=http");  // any case
  ASSERT_TRUE(edited.ok()) << edited.error().message;
  edited = apply_override(edited.value(), "Overwrite=true");
  ASSERT_TRUE(edited.ok());
  edited = apply_override(edited.value(), "JobProperties.SiteName=Default Web Site");
  ASSERT_TRUE(edited.ok());
  edited = apply_override(edited.value(), "CertificateStoreDetails.Properties.WinRM Authentication=basic");
  ASSERT_TRUE(edited.ok());

  // Properties is still a JSON string after the edit, as the UO would send it.
  auto raw = nlohmann::json::parse(edited.value());
  ASSERT_TRUE(raw["CertificateStoreDetails"]["Properties"].is_string());
  EXPECT_TRUE(raw["Overwrite"].is_boolean());

  JobConfig c = parse_ok(edited.value());
  EXPECT_EQ(c.store.client_machine, "127.0.0.1:45123");
  EXPECT_EQ(c.store.properties.winrm_port->key, "WinRm Port");  // existing key edited, not duplicated
  EXPECT_EQ(c.store.properties.winrm_port->value, "5985");
  EXPECT_EQ(c.store.properties.winrm_protocol->value, "http");
  EXPECT_EQ(c.store.properties.winrm_authentication->value, "basic");
  EXPECT_TRUE(c.overwrite);
  EXPECT_EQ(c.entry.site_name, "Default Web Site");
  EXPECT_EQ(c.job_history_id, 26009);
}

TEST(Override, ValueTypesAndErrors) {
  auto edited = set_override(R"({"JobHistoryId":1,"Name":"x"})", "JobHistoryId", "99");
  ASSERT_TRUE(edited.ok());
  EXPECT_EQ(nlohmann::json::parse(edited.value())["JobHistoryId"], 99);
  EXPECT_FALSE(set_override(R"({"JobHistoryId":1})", "JobHistoryId", "abc").ok());
  edited = set_override(R"({"Name":"x"})", "Name", "42");
  ASSERT_TRUE(edited.ok());
  EXPECT_EQ(nlohmann::json::parse(edited.value())["Name"], "42");  // a string stays a string
  EXPECT_FALSE(set_override(R"({"A":[1]})", "A.B", "1").ok());
  EXPECT_FALSE(apply_override("{}", "NoEqualsSign").ok());
  EXPECT_FALSE(set_override("{", "A", "1").ok());
}

// LastInventory read while the text is parsed (LastInventoryReader) gives what the tree would have given, and
// leaves only an empty array in the tree.
std::vector<PreviousInventoryItem> read_with_tree(const std::string& text) {
  auto root = nlohmann::ordered_json::parse(text);
  auto parsed = parse_job_config_document(std::move(root));
  EXPECT_TRUE(parsed.ok()) << parsed.error().message;
  return parsed.ok() ? parsed->last_inventory : std::vector<PreviousInventoryItem>{};
}

TEST(LastInventoryReader, TakesEntriesOutWhileParsingAndMatchesTheTree) {
  const std::string text = R"({"Capability":"CertStores.WinCert.Inventory","LastInventory":[
      {"Alias":"A1","PrivateKeyEntry":true,"Thumbprints":["T1","T2"]}, null,
      {"Alias":"A2","PrivateKeyEntry":false,"Thumbprints":[]}],
      "JobProperties":{"LastInventory":[{"Alias":"not an inventory"}]}})";
  LastInventoryReader reader;
  auto root = parse_peer_ordered_json(text, peer_json_limits::kJobConfiguration, "the job", reader.callback());
  ASSERT_TRUE(root.ok());
  EXPECT_TRUE(root->at("LastInventory").empty());                       // out of the tree
  EXPECT_EQ(root->at("JobProperties").at("LastInventory").size(), 1u);  // a member of that name elsewhere stays
  auto parsed = parse_job_config_document(std::move(root.value()), &reader);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const auto expected = read_with_tree(text);
  ASSERT_EQ(parsed->last_inventory.size(), 2u);
  ASSERT_EQ(expected.size(), 2u);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(parsed->last_inventory[i].alias, expected[i].alias);
    EXPECT_EQ(parsed->last_inventory[i].private_key_entry, expected[i].private_key_entry);
    EXPECT_EQ(parsed->last_inventory[i].thumbprints, expected[i].thumbprints);
  }
  EXPECT_EQ(parsed->last_inventory[0].thumbprints, (std::vector<std::string>{"T1", "T2"}));
}

TEST(LastInventoryReader, ReadsTheJobWrapperToo) {
  LastInventoryReader reader;
  auto root = parse_peer_ordered_json(R"({"Job":{"LastInventory":[{"Alias":"W"}]},"LastInventory":[{"Alias":"T"}]})",
                                      peer_json_limits::kJobConfiguration, "the job", reader.callback());
  ASSERT_TRUE(root.ok());
  EXPECT_TRUE(root->at("Job").at("LastInventory").empty());
  EXPECT_TRUE(root->at("LastInventory").empty());
  auto items = reader.take();
  ASSERT_TRUE(items.ok());
  ASSERT_EQ(items->size(), 2u);
  EXPECT_EQ((*items)[0].alias, "W");
  EXPECT_EQ((*items)[1].alias, "T");
}

TEST(LastInventoryReader, NamesTheEntryThatCannotBeRead) {
  EXPECT_NE(parse_error(R"({"LastInventory":[{"Alias":"ok"},null,7]})").find("LastInventory[2] must be an object"),
            std::string::npos);
  EXPECT_NE(parse_error(R"({"LastInventory":[null,{"Alias":"ok","Thumbprints":[1]}]})")
                .find("LastInventory[1].Thumbprints must hold strings"),
            std::string::npos);
  EXPECT_NE(parse_error(R"({"LastInventory":{"Alias":"x"}})").find("LastInventory must be an array"),
            std::string::npos);
}

}  // namespace
}  // namespace wincert::jobs
