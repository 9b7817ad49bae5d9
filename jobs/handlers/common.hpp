// Helpers shared by the handlers (internal to jobs/handlers).
#pragma once

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "certstore/cert_store.hpp"
#include "jobs/handler.hpp"

namespace wincert::jobs::handlers {

// A Failure result for this job: "<kind> failed on store 'S' at host 'H' (job J): <error>", carrying the
// error's code and detail.
JobResult fail(const JobContext& ctx, const Error& error);
JobResult succeed(const JobContext& ctx, std::string_view detail);
JobResult warn(const JobContext& ctx, std::string_view detail);

// The store path the job names, or `fallback` when empty ("" fallback = required).
Result<std::string> store_path(const JobConfig& config, std::string_view fallback);

// "DNS Name=a.com; DNS Name=b.com" as Windows' X509Extension.Format(true) lines joined by "; ".
std::string windows_san_text(const certstore::CertificateInfo& info);

// Job SANs (normalised keys) to certstore's typed SANs; an unknown key is an Error naming it.
Result<std::vector<certstore::SubjectAltName>> to_certstore_sans(const std::vector<SanEntry>& sans);

// InstanceName "A, B" -> {"A","B"}; absent or empty -> {"MSSQLSERVER"}.
std::vector<std::string> sql_instances(const EntryParameters& entry);
bool contains_ci(const std::vector<std::string>& names, std::string_view name);
std::string join(const std::vector<std::string>& parts, std::string_view separator);

// The issued certificate as Command returns it (base64 DER or PEM) to DER bytes.
Result<std::string> issued_certificate_der(std::string_view text);

// The JobCertificate, or an Error saying the job carries none / no contents.
Result<const JobCertificate*> job_certificate(const JobConfig& config, bool contents_required);

// The remove request for a certificate of this job's store: the private key goes only when the store
// property DeletePrivateKeyOnRemove is true (and no other certificate uses the key).
certstore::RemoveRequest remove_request(const JobContext& ctx, std::string store, std::string thumbprint);
// "removed certificate T" plus what happened to its private key.
std::string removed_detail(const certstore::RemoveRequest& request, const certstore::RemoveResult& result);

// Management dispatch on OperationType: Add and Remove only, otherwise an Error naming the value.
Result<OperationType> management_operation(const JobConfig& config, std::string_view store_type);
std::string management_kind(const JobConfig& config);  // "Management Add", "Management Remove", ...

// Common reenrollment steps: validate inputs, create the CSR on the device, submit it, install the
// issued certificate onto its key. Returns the installed thumbprint or a finished JobResult.
struct Reenrolled {
  std::string thumbprint;
  std::string store;
};
boost::asio::awaitable<std::variant<Reenrolled, JobResult>> reenroll(JobContext& ctx);

}  // namespace wincert::jobs::handlers
