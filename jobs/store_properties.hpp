// The one table of the names wincert-agent reads from a job: store properties (custom fields in
// CertificateStoreDetails.Properties), entry parameters (per-certificate JobProperties declared in the
// store type) and the JobProperties Command fills in itself for reenrollment. The job-configuration
// parser reads every name from here, and tests/jobs/store_types_test.cpp checks this table against the
// store-type definitions admins import into Command (config/store-types/), in both directions.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace wincert::jobs {

enum class StoreType { kWinCert, kIisu, kWinSql };

// Where a name is read from.
enum class PropertyScope {
  kStore,            // CertificateStoreDetails.Properties: the store type's "Properties"
  kEntry,            // JobProperties: the store type's "EntryParameters"
  kCommandSupplied,  // JobProperties Command adds itself (reenrollment) or a legacy one: not declared
};

// The store-type definition's "Type" of a property or entry parameter.
enum class PropertyType { kBool, kString, kSecret, kMultipleChoice };
std::string_view property_type_name(PropertyType type);  // "Bool", "String", "Secret", "MultipleChoice"

// Bit set of the store types a name belongs to.
inline constexpr std::uint8_t store_type_bit(StoreType type) { return std::uint8_t(1u << static_cast<unsigned>(type)); }
inline constexpr std::uint8_t kAllStoreTypes = 0b111;

struct PropertySpec {
  std::string_view name;  // exactly as declared in Command (matched case-insensitively when read)
  PropertyScope scope;
  PropertyType type;
  std::uint8_t store_types;  // store_type_bit() of each store type that declares it
  // Store property: "Required". Entry parameter: RequiredWhen OnAdd, OnRemove and OnReenrollment.
  bool required;
  bool applies_to(StoreType type) const { return (store_types & store_type_bit(type)) != 0; }
};

// The names, one constant each, so the readers and the table cannot drift apart.
namespace property {
inline constexpr std::string_view kSpnWithPort = "spnwithport";
inline constexpr std::string_view kWinRmProtocol = "WinRM Protocol";
inline constexpr std::string_view kWinRmPort = "WinRM Port";
inline constexpr std::string_view kServerUsername = "ServerUsername";
inline constexpr std::string_view kServerPassword = "ServerPassword";
inline constexpr std::string_view kServerUseSsl = "ServerUseSsl";
inline constexpr std::string_view kWinRmAuthentication = "WinRM Authentication";           // ours
inline constexpr std::string_view kWinRmAllowUnencrypted = "WinRM AllowUnencrypted";       // ours
inline constexpr std::string_view kRestartService = "RestartService";                      // WinSql
inline constexpr std::string_view kDeletePrivateKeyOnRemove = "DeletePrivateKeyOnRemove";  // ours
inline constexpr std::string_view kJeaEndpointName = "JEAEndpointName";                    // the extension 4.0's
inline constexpr std::string_view kExecutionMode = "ExecutionMode";                        // ours: psrp | winrs
}  // namespace property

namespace entry_parameter {
inline constexpr std::string_view kProviderName = "ProviderName";
inline constexpr std::string_view kSiteName = "SiteName";
inline constexpr std::string_view kPort = "Port";
inline constexpr std::string_view kIpAddress = "IPAddress";
inline constexpr std::string_view kHostName = "HostName";
inline constexpr std::string_view kSniFlag = "SniFlag";
inline constexpr std::string_view kProtocol = "Protocol";
inline constexpr std::string_view kInstanceName = "InstanceName";
// Command-supplied / legacy JobProperties (PropertyScope::kCommandSupplied).
inline constexpr std::string_view kRenewalThumbprint = "RenewalThumbprint";  // Command, on renewals
inline constexpr std::string_view kSan = "SAN";                              // removed from the manifest in 3.0
inline constexpr std::string_view kSubjectText = "subjectText";              // reenrollment
inline constexpr std::string_view kKeyType = "keyType";
inline constexpr std::string_view kKeySize = "keySize";
}  // namespace entry_parameter

namespace specs {
inline constexpr std::uint8_t kWinCert = store_type_bit(StoreType::kWinCert);
inline constexpr std::uint8_t kIisu = store_type_bit(StoreType::kIisu);
inline constexpr std::uint8_t kWinSql = store_type_bit(StoreType::kWinSql);

// The order of the store-type definitions in config/store-types/.
inline constexpr PropertySpec kPropertySpecs[] = {
    // Store properties the extension declares (reference §1.1).
    PropertySpec{property::kSpnWithPort, PropertyScope::kStore, PropertyType::kBool, kAllStoreTypes, false},
    PropertySpec{property::kWinRmProtocol, PropertyScope::kStore, PropertyType::kMultipleChoice, kAllStoreTypes, true},
    PropertySpec{property::kWinRmPort, PropertyScope::kStore, PropertyType::kString, kAllStoreTypes, true},
    PropertySpec{property::kServerUsername, PropertyScope::kStore, PropertyType::kSecret, kAllStoreTypes, false},
    PropertySpec{property::kServerPassword, PropertyScope::kStore, PropertyType::kSecret, kAllStoreTypes, false},
    PropertySpec{property::kServerUseSsl, PropertyScope::kStore, PropertyType::kBool, kAllStoreTypes, true},
    PropertySpec{property::kRestartService, PropertyScope::kStore, PropertyType::kBool, kWinSql, true},
    // Store properties of wincert-agent's own (jobs/DIFFERENCES.md).
    // A String, not a MultipleChoice: empty must stay possible (= the agent's WinRM.DefaultAuth).
    PropertySpec{property::kWinRmAuthentication, PropertyScope::kStore, PropertyType::kString, kAllStoreTypes, false},
    PropertySpec{property::kWinRmAllowUnencrypted, PropertyScope::kStore, PropertyType::kBool, kAllStoreTypes, false},
    // Only the WinCert and WinSql removes delete certificates by thumbprint; IISU Remove never deletes a key.
    PropertySpec{property::kDeletePrivateKeyOnRemove, PropertyScope::kStore, PropertyType::kBool, kWinCert | kWinSql,
                 false},
    // The extension 4.0's JEA endpoint (a PowerShell session configuration name), and how operations reach the
    // host (empty = the agent's WinRM.ExecutionMode).
    PropertySpec{property::kJeaEndpointName, PropertyScope::kStore, PropertyType::kString, kAllStoreTypes, false},
    PropertySpec{property::kExecutionMode, PropertyScope::kStore, PropertyType::kString, kAllStoreTypes, false},

    // Entry parameters (reference §1.2).
    PropertySpec{entry_parameter::kPort, PropertyScope::kEntry, PropertyType::kString, kIisu, false},
    PropertySpec{entry_parameter::kIpAddress, PropertyScope::kEntry, PropertyType::kString, kIisu, true},
    PropertySpec{entry_parameter::kHostName, PropertyScope::kEntry, PropertyType::kString, kIisu, false},
    PropertySpec{entry_parameter::kSiteName, PropertyScope::kEntry, PropertyType::kString, kIisu, true},
    PropertySpec{entry_parameter::kSniFlag, PropertyScope::kEntry, PropertyType::kString, kIisu, false},
    PropertySpec{entry_parameter::kProtocol, PropertyScope::kEntry, PropertyType::kMultipleChoice, kIisu, true},
    PropertySpec{entry_parameter::kInstanceName, PropertyScope::kEntry, PropertyType::kString, kWinSql, false},
    PropertySpec{entry_parameter::kProviderName, PropertyScope::kEntry, PropertyType::kString, kAllStoreTypes, false},

    // JobProperties Command supplies itself, or that only old store types declare: read, never declared.
    PropertySpec{entry_parameter::kRenewalThumbprint, PropertyScope::kCommandSupplied, PropertyType::kString,
                 kAllStoreTypes, false},
    PropertySpec{entry_parameter::kSan, PropertyScope::kCommandSupplied, PropertyType::kString, kAllStoreTypes, false},
    PropertySpec{entry_parameter::kSubjectText, PropertyScope::kCommandSupplied, PropertyType::kString, kAllStoreTypes,
                 false},
    PropertySpec{entry_parameter::kKeyType, PropertyScope::kCommandSupplied, PropertyType::kString, kAllStoreTypes,
                 false},
    PropertySpec{entry_parameter::kKeySize, PropertyScope::kCommandSupplied, PropertyType::kString, kAllStoreTypes,
                 false},
};

}  // namespace specs
using specs::kPropertySpecs;

// Every name the parser reads goes through this: a name missing from the table (or in another scope)
// does not compile.
consteval std::string_view declared(PropertyScope scope, std::string_view name) {
  for (const PropertySpec& spec : kPropertySpecs) {
    if (spec.scope == scope && spec.name == name) return name;
  }
  throw "read a property name that is not in jobs/store_properties.hpp's table";
}

// Every name the agent reads, in declaration order.
std::span<const PropertySpec> property_specs();
// The spec of a name (case-insensitive) in a scope; nullptr when the agent does not read it.
const PropertySpec* find_property_spec(PropertyScope scope, std::string_view name);

}  // namespace wincert::jobs
