// The store-type definitions shipped for Command (config/store-types/) against the code, both ways:
// every name the job parser reads (jobs/store_properties.hpp's table, which the parser's reads are checked
// against at compile time) is declared with the right type and "required", every declared name is read,
// and the capabilities the definitions imply are exactly the ones the agent registers.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "jobs/capabilities.hpp"
#include "jobs/job_config.hpp"
#include "jobs/store_properties.hpp"

namespace wincert::jobs {
namespace {

using nlohmann::json;

constexpr StoreType kStoreTypes[] = {StoreType::kWinCert, StoreType::kIisu, StoreType::kWinSql};

std::string definition_path(StoreType type) {
  return std::string(WINCERT_SOURCE_DIR) + "/config/store-types/" + std::string(store_type_name(type)) + ".json";
}

json load_definition(StoreType type) {
  std::ifstream in(definition_path(type));
  if (!in) throw std::runtime_error("cannot read " + definition_path(type));
  return json::parse(in);
}

// The definition's Properties or EntryParameters entry named exactly `name`; nullptr when absent.
const json* declared_entry(const json& definition, PropertyScope scope, std::string_view name) {
  const char* list = scope == PropertyScope::kStore ? "Properties" : "EntryParameters";
  for (const json& item : definition.at(list)) {
    if (item.at("Name").get<std::string>() == name) return &item;
  }
  return nullptr;
}

// A job configuration carrying `properties` as Command sends them (a JSON string) and `job_properties`.
JobConfig parse_with(StoreType type, const json& properties, const json& job_properties) {
  json config = {
      {"Capability", "CertStores." + std::string(store_type_name(type)) + ".Management"},
      {"JobHistoryId", 1},
      {"OperationType", 2},
      {"CertificateStoreDetails", {{"ClientMachine", "web01"}, {"StorePath", "My"}, {"Properties", properties.dump()}}},
      {"JobProperties", job_properties}};
  auto parsed = parse_job_config(config.dump());
  if (!parsed.ok()) throw std::runtime_error(parsed.error().message);
  return std::move(parsed.value());
}

TEST(StoreTypes, EachDefinitionIsTheStoreTypeItsFileNames) {
  for (StoreType type : kStoreTypes) {
    SCOPED_TRACE(store_type_name(type));
    const json definition = load_definition(type);
    EXPECT_EQ(definition.at("ShortName"), store_type_name(type));
    EXPECT_EQ(definition.at("Capability"), store_type_name(type));
    EXPECT_EQ(definition.at("ServerRequired"), true);
    EXPECT_EQ(definition.at("LocalStore"), false);
    EXPECT_EQ(definition.at("PasswordOptions").at("StoreRequired"), false);
    for (const char* list : {"Properties", "EntryParameters"}) {
      std::set<std::string> names;
      for (const json& item : definition.at(list)) {
        EXPECT_TRUE(names.insert(item.at("Name").get<std::string>()).second) << "declared twice: " << item.at("Name");
        EXPECT_FALSE(item.at("DisplayName").get<std::string>().empty()) << item.at("Name");
        EXPECT_FALSE(item.at("Description").get<std::string>().empty()) << item.at("Name");
      }
    }
  }
}

// Code -> definitions: every name the agent reads is declared, spelled exactly, with its type and
// "required"; and nothing is declared for a store type the name does not belong to.
TEST(StoreTypes, EveryNameTheCodeReadsIsDeclaredWithItsTypeAndRequired) {
  std::size_t checked = 0;
  for (StoreType type : kStoreTypes) {
    const json definition = load_definition(type);
    for (const PropertySpec& spec : property_specs()) {
      SCOPED_TRACE(std::string(store_type_name(type)) + " " + std::string(spec.name));
      if (spec.scope == PropertyScope::kCommandSupplied) {
        // Command fills these in itself (reenrollment, renewals) or they are legacy: never declared.
        EXPECT_EQ(declared_entry(definition, PropertyScope::kStore, spec.name), nullptr);
        EXPECT_EQ(declared_entry(definition, PropertyScope::kEntry, spec.name), nullptr);
        continue;
      }
      const json* item = declared_entry(definition, spec.scope, spec.name);
      if (!spec.applies_to(type)) {
        EXPECT_EQ(item, nullptr) << "declared for a store type whose jobs do not read it";
        continue;
      }
      ASSERT_NE(item, nullptr) << "read by the agent but not declared (names are case-sensitive in Command)";
      EXPECT_EQ(item->at("Type"), property_type_name(spec.type));
      if (spec.scope == PropertyScope::kStore) {
        EXPECT_EQ(item->at("Required"), spec.required);
      } else {
        const json& when = item->at("RequiredWhen");
        EXPECT_EQ(when.at("OnAdd"), spec.required);
        EXPECT_EQ(when.at("OnRemove"), spec.required);
        EXPECT_EQ(when.at("OnReenrollment"), spec.required);
      }
      ++checked;
    }
  }
  // Store properties: WinCert 11, IISU 10 (no DeletePrivateKeyOnRemove), WinSql 12 (+ RestartService);
  // entry parameters: WinCert 1, IISU 7, WinSql 2.
  EXPECT_EQ(checked, 11u + 10u + 12u + 1u + 7u + 2u);
}

// Definitions -> code: every declared name is one the agent reads, for that store type and in that scope.
TEST(StoreTypes, EveryDeclaredNameIsReadByTheCode) {
  for (StoreType type : kStoreTypes) {
    const json definition = load_definition(type);
    for (PropertyScope scope : {PropertyScope::kStore, PropertyScope::kEntry}) {
      for (const json& item : definition.at(scope == PropertyScope::kStore ? "Properties" : "EntryParameters")) {
        const std::string name = item.at("Name");
        SCOPED_TRACE(std::string(store_type_name(type)) + " " + name);
        const PropertySpec* spec = find_property_spec(scope, name);
        ASSERT_NE(spec, nullptr) << "declared but the agent never reads it";
        EXPECT_EQ(spec->name, name) << "spelled differently from the code";
        EXPECT_TRUE(spec->applies_to(type));
      }
    }
  }
}

// The table -> the parser: each name, set on its own, lands in its parsed field (not in `other`).
TEST(StoreTypes, TheParserReadsEveryNameInTheTable) {
  using Probe = std::function<bool(const JobConfig&)>;
  const std::map<std::string_view, std::pair<std::string, Probe>> store_probes = {
      {property::kSpnWithPort, {"true", [](const JobConfig& c) { return c.store.properties.spn_with_port; }}},
      {property::kWinRmProtocol,
       {"https",
        [](const JobConfig& c) {
          return c.store.properties.winrm_protocol.value_or(StoreProperty{}).value == "https";
        }}},
      {property::kWinRmPort,
       {"5999",
        [](const JobConfig& c) { return c.store.properties.winrm_port.value_or(StoreProperty{}).value == "5999"; }}},
      {property::kServerUsername,
       {"probe-user", [](const JobConfig& c) { return c.store.properties.server_username == "probe-user"; }}},
      {property::kServerPassword,
       {"probe-pw",
        [](const JobConfig& c) {
          return c.store.properties.server_password && c.store.properties.server_password->reveal() == "probe-pw";
        }}},
      {property::kServerUseSsl, {"false", [](const JobConfig& c) { return !c.store.properties.server_use_ssl; }}},
      {property::kRestartService, {"true", [](const JobConfig& c) { return c.store.properties.restart_service; }}},
      {property::kWinRmAuthentication,
       {"kerberos",
        [](const JobConfig& c) {
          return c.store.properties.winrm_authentication.value_or(StoreProperty{}).value == "kerberos";
        }}},
      {property::kWinRmAllowUnencrypted,
       {"true", [](const JobConfig& c) { return c.store.properties.winrm_allow_unencrypted; }}},
      {property::kDeletePrivateKeyOnRemove,
       {"true", [](const JobConfig& c) { return c.store.properties.delete_private_key_on_remove; }}},
      {property::kJeaEndpointName,
       {"WincertAgent",
        [](const JobConfig& c) {
          return c.store.properties.jea_endpoint_name.value_or(StoreProperty{}).value == "WincertAgent";
        }}},
      {property::kExecutionMode,
       {"winrs",
        [](const JobConfig& c) {
          return c.store.properties.execution_mode.value_or(StoreProperty{}).value == "winrs";
        }}},
  };
  const std::map<std::string_view, std::function<std::optional<std::string>(const JobConfig&)>> job_probes = {
      {entry_parameter::kProviderName, [](const JobConfig& c) { return c.entry.provider_name; }},
      {entry_parameter::kSiteName, [](const JobConfig& c) { return c.entry.site_name; }},
      {entry_parameter::kPort, [](const JobConfig& c) { return c.entry.port; }},
      {entry_parameter::kIpAddress, [](const JobConfig& c) { return c.entry.ip_address; }},
      {entry_parameter::kHostName, [](const JobConfig& c) { return c.entry.host_name; }},
      {entry_parameter::kSniFlag, [](const JobConfig& c) { return c.entry.sni_flag; }},
      {entry_parameter::kProtocol, [](const JobConfig& c) { return c.entry.protocol; }},
      {entry_parameter::kInstanceName, [](const JobConfig& c) { return c.entry.instance_name; }},
      {entry_parameter::kRenewalThumbprint, [](const JobConfig& c) { return c.entry.renewal_thumbprint; }},
      {entry_parameter::kSan, [](const JobConfig& c) { return c.entry.san; }},
      {entry_parameter::kSubjectText,
       [](const JobConfig& c) { return std::optional<std::string>(c.reenrollment.subject); }},
      {entry_parameter::kKeyType, [](const JobConfig& c) { return c.reenrollment.key_type; }},
      {entry_parameter::kKeySize, [](const JobConfig& c) { return c.reenrollment.key_size; }},
  };

  for (const PropertySpec& spec : property_specs()) {
    SCOPED_TRACE(spec.name);
    if (spec.scope == PropertyScope::kStore) {
      auto probe = store_probes.find(spec.name);
      ASSERT_NE(probe, store_probes.end()) << "a store property in the table without a probe here";
      const JobConfig baseline = parse_with(StoreType::kWinCert, json::object(), json::object());
      EXPECT_FALSE(probe->second.second(baseline)) << "the probe must tell the value from the default";
      const JobConfig config =
          parse_with(StoreType::kWinCert, json{{std::string(spec.name), probe->second.first}}, json::object());
      EXPECT_TRUE(probe->second.second(config)) << "set, but the parsed field did not change";
      EXPECT_TRUE(config.store.properties.other.empty()) << "left unread in StoreProperties::other";
    } else {
      auto probe = job_probes.find(spec.name);
      ASSERT_NE(probe, job_probes.end()) << "a JobProperties name in the table without a probe here";
      // The legacy SAN entry parameter is parsed as type=value pairs.
      const std::string value = spec.name == entry_parameter::kSan ? "dns=probe.example.com" : "probe-value";
      const JobConfig config = parse_with(StoreType::kIisu, json::object(), json{{std::string(spec.name), value}});
      EXPECT_EQ(probe->second(config), std::optional<std::string>(value));
      EXPECT_NE(probe->second(parse_with(StoreType::kIisu, json::object(), json::object())),
                std::optional<std::string>(value));
    }
  }
  EXPECT_EQ(store_probes.size() + job_probes.size(), property_specs().size()) << "a probe for a name not in the table";
}

// A store created from a definition, with every property at its default, leaves nothing unread.
TEST(StoreTypes, AStoreWithEveryDeclaredPropertyParsesWithNothingLeftOver) {
  for (StoreType type : kStoreTypes) {
    SCOPED_TRACE(store_type_name(type));
    const json definition = load_definition(type);
    json properties = json::object();
    for (const json& item : definition.at("Properties")) {
      std::string value = item.at("DefaultValue");
      if (item.at("Type") == "MultipleChoice") value = value.substr(0, value.find(','));  // the first option
      properties[item.at("Name").get<std::string>()] = value;
    }
    json entries = json::object();
    for (const json& item : definition.at("EntryParameters")) {
      entries[item.at("Name").get<std::string>()] = item.at("DefaultValue");
    }
    const JobConfig config = parse_with(type, properties, entries);
    for (const auto& [name, value] : config.store.properties.other) ADD_FAILURE() << "left unread: " << name;
    EXPECT_EQ(config.store.properties.winrm_protocol->value, "https");
    EXPECT_EQ(config.store.properties.winrm_port->value, "5986");
    EXPECT_FALSE(config.store.properties.delete_private_key_on_remove) << "the key is kept unless asked for";
    EXPECT_EQ(config.entry.provider_name, std::optional<std::string>(""));
  }
}

// Definitions <-> capability registry: Inventory always, Management for Add/Remove, ReEnrollment for
// Enrollment; spelled exactly as registered with Command.
TEST(StoreTypes, CapabilitiesTheDefinitionsImplyAreExactlyTheRegisteredOnes) {
  std::set<std::string> implied;
  for (StoreType type : kStoreTypes) {
    const json definition = load_definition(type);
    const std::string prefix = "CertStores." + definition.at("Capability").get<std::string>() + ".";
    const json& ops = definition.at("SupportedOperations");
    implied.insert(prefix + "Inventory");
    if (ops.at("Add").get<bool>() || ops.at("Remove").get<bool>()) implied.insert(prefix + "Management");
    if (ops.at("Enrollment").get<bool>()) implied.insert(prefix + "ReEnrollment");
    EXPECT_FALSE(ops.at("Create").get<bool>());
    EXPECT_FALSE(ops.at("Discovery").get<bool>());
  }
  const auto names = make_default_registry().capability_names();
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()), implied);
  EXPECT_EQ(names.size(), implied.size());
  EXPECT_EQ(implied.size(), 9u);
}

}  // namespace
}  // namespace wincert::jobs
