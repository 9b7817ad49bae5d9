// The contract between the remote backend and the wincert-op scripts: op names and the JSON field names
// each side reads and writes. The scripts' golden files (certstore/scripts/NAME.contract.json) and a
// test that reads the scripts keep the three in step; the simulator's Windows model implements the same.
#pragma once

#include "common/result.hpp"

#include <optional>
#include <string_view>
#include <vector>

namespace wincert::certstore::remote {

namespace op {
inline constexpr std::string_view kEcho = "echo";
inline constexpr std::string_view kHostInfo = "host-info";
inline constexpr std::string_view kStoreInventory = "store-inventory";
inline constexpr std::string_view kCertAdd = "cert-add";
inline constexpr std::string_view kCertRemove = "cert-remove";
inline constexpr std::string_view kIisListBindings = "iis-list-bindings";
inline constexpr std::string_view kIisBind = "iis-bind";
inline constexpr std::string_view kIisUnbind = "iis-unbind";
inline constexpr std::string_view kIisRemoveCertIfUnused = "iis-remove-cert-if-unused";
inline constexpr std::string_view kSqlListInstances = "sql-list-instances";
inline constexpr std::string_view kSqlBind = "sql-bind";
inline constexpr std::string_view kSqlUnbind = "sql-unbind";
inline constexpr std::string_view kSqlRestart = "sql-restart";
inline constexpr std::string_view kCsrCreate = "csr-create";
inline constexpr std::string_view kCsrAccept = "csr-accept";
}  // namespace op

// Argument field names ($a.Name in the scripts). Nested objects are addressed "Parent.Child".
namespace arg {
inline constexpr std::string_view kStoreName = "StoreName";
inline constexpr std::string_view kThumbprint = "Thumbprint";
inline constexpr std::string_view kContentsBase64 = "ContentsBase64";
inline constexpr std::string_view kPfxPassword = "PfxPassword";
inline constexpr std::string_view kOverwrite = "Overwrite";
inline constexpr std::string_view kProviderName = "ProviderName";
inline constexpr std::string_view kAddChainToCaStore = "AddChainToCaStore";
inline constexpr std::string_view kIisBinding = "IisBinding";
inline constexpr std::string_view kSqlBinding = "SqlBinding";
inline constexpr std::string_view kReplacedThumbprint = "ReplacedThumbprint";
inline constexpr std::string_view kDeleteKey = "DeleteKey";  // cert-remove: also delete the private key (opt-in)
inline constexpr std::string_view kSiteName = "SiteName";
inline constexpr std::string_view kBindingInformation = "BindingInformation";
inline constexpr std::string_view kSslFlags = "SslFlags";
inline constexpr std::string_view kInstanceNames = "InstanceNames";
inline constexpr std::string_view kRestartService = "RestartService";
inline constexpr std::string_view kTimeoutSeconds = "TimeoutSeconds";
inline constexpr std::string_view kSubject = "Subject";
inline constexpr std::string_view kKeyAlgorithm = "KeyAlgorithm";
inline constexpr std::string_view kKeyLength = "KeyLength";
inline constexpr std::string_view kSans = "Sans";
inline constexpr std::string_view kCertificateBase64 = "CertificateBase64";
}  // namespace arg

// Output property names, as the scripts emit them.
namespace out {
inline constexpr std::string_view kHostname = "Hostname";
inline constexpr std::string_view kOsBuild = "OsBuild";
inline constexpr std::string_view kOsVersion = "OsVersion";
inline constexpr std::string_view kPsVersion = "PsVersion";
inline constexpr std::string_view kStoreName = "StoreName";
inline constexpr std::string_view kCertificates = "Certificates";
inline constexpr std::string_view kBase64 = "Base64";
inline constexpr std::string_view kHasPrivateKey = "HasPrivateKey";
inline constexpr std::string_view kProviderName = "ProviderName";
inline constexpr std::string_view kFriendlyName = "FriendlyName";
inline constexpr std::string_view kThumbprint = "Thumbprint";
inline constexpr std::string_view kStatus = "Status";
inline constexpr std::string_view kChainAdded = "ChainAdded";
inline constexpr std::string_view kBinding = "Binding";
inline constexpr std::string_view kBindings = "Bindings";
inline constexpr std::string_view kSiteName = "SiteName";
inline constexpr std::string_view kProtocol = "Protocol";
inline constexpr std::string_view kBindingInformation = "BindingInformation";
inline constexpr std::string_view kCertificateHash = "CertificateHash";
inline constexpr std::string_view kCertificateStoreName = "CertificateStoreName";
inline constexpr std::string_view kSslFlags = "SslFlags";
inline constexpr std::string_view kReplacedExisting = "ReplacedExisting";
inline constexpr std::string_view kSqlBindings = "SqlBindings";
inline constexpr std::string_view kInstances = "Instances";
inline constexpr std::string_view kInstanceName = "InstanceName";
inline constexpr std::string_view kInstanceId = "InstanceId";
inline constexpr std::string_view kCertificate = "Certificate";
inline constexpr std::string_view kServiceName = "ServiceName";
inline constexpr std::string_view kServiceAccount = "ServiceAccount";
inline constexpr std::string_view kVerified = "Verified";
inline constexpr std::string_view kKeyFile = "KeyFile";
inline constexpr std::string_view kRestarted = "Restarted";
inline constexpr std::string_view kUnbound = "Unbound";
inline constexpr std::string_view kPreviousCertificate = "PreviousCertificate";
inline constexpr std::string_view kReplaced = "Replaced";
inline constexpr std::string_view kRemoved = "Removed";
inline constexpr std::string_view kBoundSites = "BoundSites";
inline constexpr std::string_view kFound = "Found";
inline constexpr std::string_view kKeyRemoved = "KeyRemoved";
inline constexpr std::string_view kSiteFound = "SiteFound";
inline constexpr std::string_view kCsr = "Csr";
// The failure document: {"error":{"message":"...","category":"..."}} with a non-zero exit code.
inline constexpr std::string_view kError = "error";
inline constexpr std::string_view kErrorMessage = "message";
inline constexpr std::string_view kErrorCategory = "category";
}  // namespace out

// cert-add's Status values.
namespace add_status {
inline constexpr std::string_view kAdded = "Added";
inline constexpr std::string_view kReplaced = "Replaced";
inline constexpr std::string_view kAlreadyPresent = "AlreadyPresent";
}  // namespace add_status

// Error categories the scripts set (anything else is a host-side failure passed through).
namespace category {
inline constexpr std::string_view kStoreNotFound = "StoreNotFound";
inline constexpr std::string_view kCertificateNotFound = "CertificateNotFound";
inline constexpr std::string_view kProviderNotFound = "ProviderNotFound";
inline constexpr std::string_view kSiteNotFound = "SiteNotFound";
inline constexpr std::string_view kIisNotInstalled = "IisNotInstalled";
inline constexpr std::string_view kInstanceNotFound = "InstanceNotFound";
inline constexpr std::string_view kInvalidArgument = "InvalidArgument";
inline constexpr std::string_view kPfxInvalid = "PfxInvalid";
inline constexpr std::string_view kCommandFailed = "CommandFailed";
inline constexpr std::string_view kVerificationFailed = "VerificationFailed";
inline constexpr std::string_view kTimeout = "Timeout";
}  // namespace category

// The one table from an error category a host script reports to the canonical code the agent acts on
// (retry, give up, tell a person what to fix). It covers the categories above and the PowerShell
// ErrorCategory names an uncategorised host error carries (PermissionDenied, ObjectNotFound, ...).
// Nothing when the category is not in the table.
std::optional<ErrorCode> mapped_code_for_category(std::string_view category_name);
// The code for any category: an unknown or empty one is a host-side failure a person must look at
// (failed_precondition, not retried).
ErrorCode error_code_for_category(std::string_view category_name);

struct OpFields {
  std::string_view op;
  std::vector<std::string_view> args;     // every argument path the script reads
  std::vector<std::string_view> outputs;  // every property name it can emit (nested ones included)
  bool free_form = false;                 // echo: any object in, the same object out
};

// The table the backend is written against; tests compare it with the scripts and the golden files.
const std::vector<OpFields>& op_fields();
const OpFields* find_op_fields(std::string_view op);

}  // namespace wincert::certstore::remote
