// The steps every store type shares, and the generic handlers each store type is made of (internal to
// jobs/store_types/): a store type supplies what differs (StoreTypeOps), the handlers here do the rest.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "certstore/cert_store.hpp"
#include "jobs/handler.hpp"
#include "jobs/store_types/store_type.hpp"

namespace wincert::jobs::store_types {

// A Failure result for this job: "<kind> failed on store 'S' at host 'H' (job J): <error>", carrying the
// error's code and detail.
JobResult fail(const JobContext& ctx, const Error& error);
JobResult succeed(const JobContext& ctx, std::string_view detail);
JobResult warn(const JobContext& ctx, std::string_view detail);

// The store path the job names, or `fallback` when empty ("" fallback = required).
Result<std::string> store_path(const JobConfig& config, std::string_view fallback);

// "DNS Name=a.com; DNS Name=b.com" as Windows' X509Extension.Format(true) lines joined by "; ".
std::string windows_san_text(const std::vector<certstore::SubjectAltName>& sans);

// Job SANs (normalised keys) to certstore's typed SANs; an unknown key is an Error naming it.
Result<std::vector<certstore::SubjectAltName>> to_certstore_sans(const std::vector<SanEntry>& sans);

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

// The add request for the job's certificate into `store`, with the job's Overwrite and ProviderName;
// the store type adds its post-import steps.
certstore::AddCertificateRequest add_request(const JobContext& ctx, std::string store, const JobCertificate& jc);

// Removes the certificate from the store; its detail ("removed certificate T ..."), prefixed by
// `done_before` (what the job already did), or an Error (not_found when it was not in the store).
boost::asio::awaitable<Result<std::string>> remove_certificate(const JobContext& ctx, certstore::CertStore& certs,
                                                               std::string store, std::string thumbprint,
                                                               std::string done_before = {});

// Common reenrollment steps: validate inputs, create the CSR on the device, submit it, install the
// issued certificate onto its key. Returns the installed thumbprint or a finished JobResult.
struct Reenrolled {
  std::string thumbprint;
  std::string store;
};
boost::asio::awaitable<std::variant<Reenrolled, JobResult>> reenroll(JobContext& ctx, certstore::CertStore& certs);

// What an inventory found besides its items (those went to the InventoryUpload as they were read): how
// they are counted in the summary, and a warning when part of the store could not be reported.
struct InventoryReport {
  std::string_view counted_as = "item(s)";
  std::string warning;  // "" = none
};

// Hands one item to the upload; an error says the inventory could not be stored for Command.
boost::asio::awaitable<Status> add_inventory_item(InventoryUpload& upload, InventoryItem item);
// Finishes the upload (Command gets the inventory) and the job (Warning when the report has one).
boost::asio::awaitable<JobResult> finish_inventory(JobContext& ctx, InventoryUpload& upload,
                                                   const InventoryReport& report);

// What one store type does, given the services it declares (see TypedHandler).
template <typename Services>
struct StoreTypeOps {
  std::string_view name;  // the store type's name, for messages ("IISU")
  // Reads the store and hands each item to the upload as it is read.
  boost::asio::awaitable<Result<InventoryReport>> (*inventory)(JobContext&, const Services&,
                                                               InventoryUpload&) = nullptr;
  boost::asio::awaitable<JobResult> (*add)(JobContext&, const Services&) = nullptr;
  boost::asio::awaitable<JobResult> (*remove)(JobContext&, const Services&) = nullptr;
  Status (*validate_add)(const JobConfig&) = nullptr;  // extra inputs of Management Add; null = none
  // Inputs of Reenrollment, checked before a key is generated on the device; null = none.
  Status (*validate_reenrollment)(const JobConfig&) = nullptr;
  // After the issued certificate is on its key: what else the store type does (bind it) and the result.
  boost::asio::awaitable<JobResult> (*finish_reenrollment)(JobContext&, const Services&, const Reenrolled&) = nullptr;
};

template <typename Services>
class InventoryHandler final : public TypedHandler<Services> {
 public:
  explicit InventoryHandler(StoreTypeOps<Services> ops) : ops_(ops) {}
  std::string job_kind(const JobConfig&) const override { return "Inventory"; }
  Idempotence idempotence() const override { return Idempotence::kIdempotent; }
  boost::asio::awaitable<JobResult> run_with(JobContext& ctx, const Services& services) override {
    if (!ctx.callbacks.begin_inventory)
      co_return fail(ctx, Error::internal("internal error: no way to submit inventory to Command"));
    const std::unique_ptr<InventoryUpload> upload = ctx.callbacks.begin_inventory();
    auto report = co_await ops_.inventory(ctx, services, *upload);
    if (!report.ok()) {
      upload->abandon();
      co_return fail(ctx, report.error());
    }
    co_return co_await finish_inventory(ctx, *upload, report.value());
  }

 private:
  StoreTypeOps<Services> ops_;
};

template <typename Services>
class ManagementHandler final : public TypedHandler<Services> {
 public:
  explicit ManagementHandler(StoreTypeOps<Services> ops) : ops_(ops) {}
  std::string job_kind(const JobConfig& config) const override { return management_kind(config); }
  Idempotence idempotence() const override { return Idempotence::kUntilHostChange; }
  Status validate(const JobConfig& config) const override {
    WINCERT_ASSIGN_OR_RETURN(const OperationType op, management_operation(config, ops_.name));
    if (op == OperationType::kAdd && ops_.validate_add) WINCERT_TRY(ops_.validate_add(config));
    return {};
  }
  boost::asio::awaitable<JobResult> run_with(JobContext& ctx, const Services& services) override {
    auto op = management_operation(ctx.config, ops_.name);
    if (!op.ok()) co_return fail(ctx, op.error());
    if (op.value() == OperationType::kAdd) co_return co_await ops_.add(ctx, services);
    co_return co_await ops_.remove(ctx, services);
  }

 private:
  StoreTypeOps<Services> ops_;
};

template <typename Services>
class ReenrollmentHandler final : public TypedHandler<Services> {
 public:
  explicit ReenrollmentHandler(StoreTypeOps<Services> ops) : ops_(ops) {}
  std::string job_kind(const JobConfig&) const override { return "Reenrollment"; }
  Idempotence idempotence() const override { return Idempotence::kUntilHostChange; }
  Status validate(const JobConfig& config) const override {
    if (ops_.validate_reenrollment) WINCERT_TRY(ops_.validate_reenrollment(config));
    return {};
  }
  boost::asio::awaitable<JobResult> run_with(JobContext& ctx, const Services& services) override {
    // The store type's inputs first: nothing is generated on the device for a job that cannot finish.
    if (Status valid = validate(ctx.config); !valid.ok()) co_return fail(ctx, valid.error());
    auto outcome = co_await reenroll(ctx, services.certs);
    if (auto* result = std::get_if<JobResult>(&outcome)) co_return std::move(*result);
    co_return co_await ops_.finish_reenrollment(ctx, services, std::get<Reenrolled>(outcome));
  }

 private:
  StoreTypeOps<Services> ops_;
};

// The three handlers of a store type from what it does.
template <typename Services>
StoreTypeHandlers make_handlers(const StoreTypeOps<Services>& ops) {
  return {std::make_shared<InventoryHandler<Services>>(ops), std::make_shared<ManagementHandler<Services>>(ops),
          std::make_shared<ReenrollmentHandler<Services>>(ops)};
}

}  // namespace wincert::jobs::store_types
