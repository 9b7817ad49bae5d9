#include "certstore/remote/contract.hpp"

#include <deque>
#include <string>

namespace wincert::certstore::remote {
namespace {

// "IisBinding.SiteName" style paths for nested arguments; kept alive for the program's lifetime.
std::string_view nested(std::string_view parent, std::string_view child) {
  static std::deque<std::string> paths;  // a deque never moves its elements, so the views stay valid
  paths.push_back(std::string(parent) + "." + std::string(child));
  return paths.back();
}

std::vector<OpFields> build_table() {
  const std::vector<std::string_view> binding_fields = {
      out::kSiteName, out::kProtocol, out::kBindingInformation, out::kCertificateHash, out::kCertificateStoreName,
      out::kSslFlags};
  auto with = [](std::vector<std::string_view> base, const std::vector<std::string_view>& more) {
    base.insert(base.end(), more.begin(), more.end());
    return base;
  };
  return {
      {op::kEcho, {}, {}, true},
      {op::kHostInfo, {}, {out::kHostname, out::kOsBuild, out::kOsVersion, out::kPsVersion}},
      {op::kStoreInventory,
       {arg::kStoreName},
       {out::kStoreName, out::kCertificates, out::kBase64, out::kHasPrivateKey, out::kProviderName,
        out::kFriendlyName}},
      {op::kCertAdd,
       {arg::kStoreName, arg::kContentsBase64, arg::kPfxPassword, arg::kThumbprint, arg::kOverwrite, arg::kProviderName,
        arg::kAddChainToCaStore, arg::kIisBinding, nested(arg::kIisBinding, arg::kSiteName),
        nested(arg::kIisBinding, arg::kBindingInformation), nested(arg::kIisBinding, arg::kSslFlags), arg::kSqlBinding,
        nested(arg::kSqlBinding, arg::kInstanceNames), nested(arg::kSqlBinding, arg::kRestartService),
        arg::kReplacedThumbprint},
       with({out::kThumbprint, out::kStatus, out::kHasPrivateKey, out::kProviderName, out::kChainAdded, out::kBinding,
             out::kSqlBindings, out::kInstanceName, out::kVerified, out::kKeyFile, out::kRestarted, out::kReplaced,
             out::kRemoved, out::kBoundSites},
            binding_fields)},
      {op::kCertRemove,
       {arg::kStoreName, arg::kThumbprint, arg::kDeleteKey},
       {out::kThumbprint, out::kFound, out::kRemoved, out::kKeyRemoved}},
      {op::kIisListBindings, {}, with({out::kBindings}, binding_fields)},
      {op::kIisBind,
       {arg::kSiteName, arg::kBindingInformation, arg::kSslFlags, arg::kThumbprint, arg::kStoreName},
       with({out::kBinding, out::kReplacedExisting}, binding_fields)},
      {op::kIisUnbind, {arg::kSiteName, arg::kBindingInformation}, {out::kSiteFound, out::kRemoved}},
      {op::kIisRemoveCertIfUnused,
       {arg::kStoreName, arg::kThumbprint},
       {out::kThumbprint, out::kRemoved, out::kBoundSites}},
      {op::kSqlListInstances,
       {},
       {out::kInstances, out::kInstanceName, out::kInstanceId, out::kCertificate, out::kServiceName,
        out::kServiceAccount}},
      {op::kSqlBind,
       {arg::kInstanceNames, arg::kThumbprint, arg::kStoreName, arg::kRestartService},
       {out::kInstances, out::kInstanceName, out::kVerified, out::kKeyFile, out::kRestarted}},
      {op::kSqlUnbind,
       {arg::kInstanceNames, arg::kThumbprint, arg::kRestartService},
       {out::kInstances, out::kInstanceName, out::kUnbound, out::kPreviousCertificate, out::kRestarted}},
      {op::kSqlRestart,
       {arg::kInstanceNames, arg::kTimeoutSeconds},
       {out::kInstances, out::kInstanceName, out::kServiceName, out::kStatus}},
      {op::kCsrCreate,
       {arg::kSubject, arg::kProviderName, arg::kKeyAlgorithm, arg::kKeyLength, arg::kSans},
       {out::kCsr, out::kProviderName}},
      {op::kCsrAccept,
       {arg::kCertificateBase64, arg::kStoreName},
       {out::kThumbprint, out::kHasPrivateKey, out::kStoreName}},
  };
}

}  // namespace

std::optional<ErrorCode> mapped_code_for_category(std::string_view category_name) {
  struct Entry {
    std::string_view category;
    ErrorCode code;
  };
  static constexpr Entry kTable[] = {
      // The scripts' own categories (New-OpError in certstore/ps/WincertOps.psm1).
      {category::kStoreNotFound, ErrorCode::kNotFound},
      {category::kCertificateNotFound, ErrorCode::kNotFound},
      {category::kProviderNotFound, ErrorCode::kNotFound},
      {category::kSiteNotFound, ErrorCode::kNotFound},
      {category::kInstanceNotFound, ErrorCode::kNotFound},
      {category::kIisNotInstalled, ErrorCode::kFailedPrecondition},
      {category::kInvalidArgument, ErrorCode::kInvalidArgument},
      {category::kPfxInvalid, ErrorCode::kInvalidArgument},
      // A host tool (certreq, certutil, IIS, the SCM) refused, or the host did not end in the state it
      // reported: the step may have changed the host, and a person must look before it is tried again.
      {category::kCommandFailed, ErrorCode::kFailedPrecondition},
      {category::kVerificationFailed, ErrorCode::kFailedPrecondition},
      {category::kTimeout, ErrorCode::kDeadlineExceeded},
      // PowerShell's ErrorCategory, passed through when a cmdlet failed outside New-OpError.
      {"PermissionDenied", ErrorCode::kPermissionDenied},
      {"SecurityError", ErrorCode::kPermissionDenied},
      {"AuthenticationError", ErrorCode::kUnauthenticated},
      {"ObjectNotFound", ErrorCode::kNotFound},
      {"ResourceExists", ErrorCode::kAlreadyExists},
      {"InvalidData", ErrorCode::kInvalidArgument},
      {"InvalidType", ErrorCode::kInvalidArgument},
      {"OperationTimeout", ErrorCode::kDeadlineExceeded},
      {"ResourceUnavailable", ErrorCode::kUnavailable},
      {"ResourceBusy", ErrorCode::kUnavailable},
      {"ConnectionError", ErrorCode::kUnavailable},
      {"OperationStopped", ErrorCode::kUnavailable},  // the pipeline was stopped under the script: a broken runspace
      {"DeadlockDetected", ErrorCode::kAborted},
      {"QuotaExceeded", ErrorCode::kResourceExhausted},
      {"LimitsExceeded", ErrorCode::kResourceExhausted},
      {"NotInstalled", ErrorCode::kFailedPrecondition},
      {"NotEnabled", ErrorCode::kFailedPrecondition},
      {"ParserError", ErrorCode::kInternal},  // the agent's own script does not parse
      {"SyntaxError", ErrorCode::kInternal},
      {"NotImplemented", ErrorCode::kInternal},
  };
  for (const auto& entry : kTable) {
    if (entry.category == category_name) return entry.code;
  }
  return std::nullopt;
}

ErrorCode error_code_for_category(std::string_view category_name) {
  return mapped_code_for_category(category_name).value_or(ErrorCode::kFailedPrecondition);
}

const std::vector<OpFields>& op_fields() {
  static const std::vector<OpFields> table = build_table();
  return table;
}

const OpFields* find_op_fields(std::string_view op_name) {
  for (const auto& fields : op_fields()) {
    if (fields.op == op_name) return &fields;
  }
  return nullptr;
}

}  // namespace wincert::certstore::remote
