#include "jobs/store_types/steps.hpp"

#include "certstore/csr.hpp"
#include "certstore/pkcs12.hpp"
#include "common/encoding.hpp"
#include "common/log.hpp"
#include "jobs/alias.hpp"
#include "jobs/store_properties.hpp"

namespace wincert::jobs::store_types {

JobResult fail(const JobContext& ctx, const Error& error) {
  return JobResult::failure(ctx.config.job_history_id, failure_message(ctx.label, error.message), error);
}

JobResult succeed(const JobContext& ctx, std::string_view detail) {
  return JobResult::success(ctx.config.job_history_id, outcome_message(ctx.label, detail));
}

JobResult warn(const JobContext& ctx, std::string_view detail) {
  return JobResult::warning(ctx.config.job_history_id, outcome_message(ctx.label, detail));
}

Result<std::string> store_path(const JobConfig& config, std::string_view fallback) {
  std::string_view path = trim(config.store.store_path);
  if (!path.empty()) return std::string(path);
  if (!fallback.empty()) return std::string(fallback);
  return Error::invalid_argument(
      "CertificateStoreDetails.StorePath is empty; set the LocalMachine store name (e.g. My)");
}

std::string windows_san_text(const std::vector<certstore::SubjectAltName>& sans) {
  std::string out;
  for (const auto& san : sans) {
    if (!out.empty()) out += "; ";
    out += certstore::san_type_windows_label(san.type);
    out += '=';
    out += san.value;
  }
  return out;
}

Result<std::vector<certstore::SubjectAltName>> to_certstore_sans(const std::vector<SanEntry>& sans) {
  std::vector<certstore::SubjectAltName> out;
  out.reserve(sans.size());
  for (const auto& san : sans) {
    auto type = certstore::san_type_from_key(san.type);
    if (!type) {
      return Error::invalid_argument("SAN type '" + san.type + "' (value '" + san.value +
                                     "') is not one of dns, ip, ip4, ip6, email, rfc822, uri, upn");
    }
    out.push_back(certstore::SubjectAltName{*type, san.value});
  }
  return out;
}

bool contains_ci(const std::vector<std::string>& names, std::string_view name) {
  for (const auto& n : names) {
    if (iequals(n, name)) return true;
  }
  return false;
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += separator;
    out += p;
  }
  return out;
}

Result<std::string> issued_certificate_der(std::string_view text) {
  std::string_view body = trim(text);
  std::string stripped;
  if (body.find("-----BEGIN") != std::string_view::npos) {
    // PEM: keep the base64 lines between the armour.
    std::size_t begin = body.find('\n', body.find("-----BEGIN"));
    std::size_t end = body.find("-----END");
    if (begin == std::string_view::npos || end == std::string_view::npos || end < begin) {
      return Error::invalid_argument("the certificate Command issued is PEM without a complete BEGIN/END block");
    }
    stripped = std::string(body.substr(begin + 1, end - begin - 1));
    body = stripped;
  }
  if (body.empty()) return Error::invalid_argument("Command returned an empty certificate for the CSR");
  auto der = base64_decode(body);
  if (!der || der->empty()) return Error::invalid_argument("the certificate Command issued is not base64 DER or PEM");
  return std::move(*der);
}

Result<const JobCertificate*> job_certificate(const JobConfig& config, bool contents_required) {
  if (!config.job_certificate) return Error::invalid_argument("the job has no JobCertificate");
  if (contents_required && trim(config.job_certificate->contents.reveal()).empty()) {
    return Error::invalid_argument("JobCertificate.Contents is empty; Command sent no certificate to add");
  }
  return &*config.job_certificate;
}

certstore::RemoveRequest remove_request(const JobContext& ctx, std::string store, std::string thumbprint) {
  certstore::RemoveRequest request;
  request.store = std::move(store);
  request.thumbprint = std::move(thumbprint);
  request.delete_unused_key = ctx.config.store.properties.delete_private_key_on_remove;
  return request;
}

std::string removed_detail(const certstore::RemoveRequest& request, const certstore::RemoveResult& result) {
  std::string detail = "removed certificate " + request.thumbprint;
  if (result.key_removed) return detail + " and its private key";
  if (request.delete_unused_key)
    return detail + "; no private key was deleted: another certificate uses it, or it had none";
  return detail + "; its private key was kept (store property " + std::string(property::kDeletePrivateKeyOnRemove) +
         " deletes a key no other certificate uses)";
}

Result<OperationType> management_operation(const JobConfig& config, std::string_view store_type) {
  if (!config.operation_type) return Error::invalid_argument("OperationType is missing from the management job");
  OperationType op = *config.operation_type;
  if (op == OperationType::kAdd || op == OperationType::kRemove) return op;
  return Error::invalid_argument("OperationType " + std::to_string(static_cast<int>(op)) + " (" +
                                 std::string(operation_name(op)) + ") is not supported for " + std::string(store_type) +
                                 " stores; only Add (2) and Remove (3) are");
}

std::string management_kind(const JobConfig& config) {
  if (!config.operation_type) return "Management";
  return "Management " + std::string(operation_name(*config.operation_type));
}

certstore::AddCertificateRequest add_request(const JobContext& ctx, std::string store, const JobCertificate& jc) {
  certstore::AddCertificateRequest request;
  request.store = std::move(store);
  request.contents_base64 = jc.contents;
  request.password = jc.private_key_password;
  request.label = certstore::certificate_label(jc.alias, jc.thumbprint.value_or(""));
  request.overwrite = ctx.config.overwrite;
  request.provider_name = ctx.config.entry.provider_name.value_or("");
  return request;
}

boost::asio::awaitable<Result<std::string>> remove_certificate(const JobContext& ctx, certstore::CertStore& certs,
                                                               std::string store, std::string thumbprint,
                                                               std::string done_before) {
  const auto request = remove_request(ctx, store, thumbprint);
  auto removed = co_await certs.remove(request);
  if (!removed.ok()) co_return removed.error().context(done_before);
  if (!removed->found) {
    co_return Error::not_found(done_before + "certificate " + thumbprint + " was not found in store '" + store +
                               "'; run an inventory to refresh Command's view of the store");
  }
  co_return done_before + removed_detail(request, removed.value());
}

boost::asio::awaitable<Status> add_inventory_item(InventoryUpload& upload, InventoryItem item) {
  auto added = co_await upload.add(std::move(item));
  if (!added.ok()) co_return added.error().context("submitting the inventory to Command: ");
  co_return Status{};
}

boost::asio::awaitable<JobResult> finish_inventory(JobContext& ctx, InventoryUpload& upload,
                                                   const InventoryReport& report) {
  auto submitted = co_await upload.finish();
  if (!submitted.ok()) {
    upload.abandon();
    co_return fail(ctx, submitted.error().context("submitting the inventory to Command: "));
  }
  std::string summary = "inventory returned " + std::to_string(upload.items()) + " " + std::string(report.counted_as);
  if (!report.warning.empty()) co_return warn(ctx, summary + "; " + report.warning);
  co_return succeed(ctx, summary);
}

boost::asio::awaitable<std::variant<Reenrolled, JobResult>> reenroll(JobContext& ctx, certstore::CertStore& certs) {
  const JobConfig& config = ctx.config;
  const ReenrollmentRequest& request = config.reenrollment;
  auto store = store_path(config, "My");
  if (!store.ok()) co_return fail(ctx, store.error());
  if (trim(request.subject).empty()) {
    co_return fail(ctx,
                   Error::invalid_argument(
                       "JobProperties.subjectText is empty; Command must send the subject for the new certificate"));
  }

  // Validate key type/size and provider here, before a key is generated on the device.
  const std::string key_type = request.key_type.value_or("");
  const std::string key_size = request.key_size.value_or("");
  auto spec = certstore::certreq_key_spec(key_type, key_size);
  if (!spec.ok()) co_return fail(ctx, spec.error().context("JobProperties keyType/keySize: "));
  const std::string provider = config.entry.provider_name.value_or("");
  auto checked_provider = certstore::certreq_provider(provider, spec.value());
  if (!checked_provider.ok()) co_return fail(ctx, checked_provider.error().context("entry parameter ProviderName: "));
  auto sans = to_certstore_sans(request.sans);
  if (!sans.ok()) co_return fail(ctx, sans.error());

  certstore::CsrRequest csr_request;
  csr_request.store = store.value();
  csr_request.subject = request.subject;
  csr_request.key_type = key_type;
  csr_request.key_size = key_size;
  csr_request.provider_name = provider;
  csr_request.sans = std::move(sans.value());
  ctx.begin_host_change();  // generates a key on the host: not redone after a failure
  auto csr = co_await certs.create_csr(std::move(csr_request));
  if (!csr.ok()) co_return fail(ctx, csr.error().context("creating the key and CSR on the device: "));

  if (!ctx.callbacks.submit_csr)
    co_return fail(ctx, Error::internal("internal error: no way to submit the CSR to Command"));
  auto issued = co_await ctx.callbacks.submit_csr(*csr);
  if (!issued.ok()) co_return fail(ctx, issued.error().context("Command was unable to sign the CSR: "));
  auto der = issued_certificate_der(issued.value());
  if (!der.ok()) co_return fail(ctx, der.error());

  certstore::InstallIssuedRequest install;
  install.store = store.value();
  install.certificate_der = std::move(der.value());
  auto installed = co_await certs.install_issued(std::move(install));
  if (!installed.ok()) co_return fail(ctx, installed.error().context("installing the issued certificate: "));
  if (!installed->has_private_key) {
    co_return fail(ctx, Error::failed_precondition("the issued certificate " + installed->thumbprint +
                                                   " was installed but is not linked to the key generated for the "
                                                   "CSR; check the store and provider on the host"));
  }
  co_return Reenrolled{installed->thumbprint, store.value()};
}

}  // namespace wincert::jobs::store_types
