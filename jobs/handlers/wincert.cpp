// WinCert: certificates in a LocalMachine store, no bindings.
#include "certstore/pkcs12.hpp"
#include "common/log.hpp"
#include "jobs/alias.hpp"
#include "jobs/handlers/common.hpp"
#include "jobs/handlers/handlers.hpp"

namespace wincert::jobs::handlers {

namespace {

using boost::asio::awaitable;

class WinCertInventory final : public JobHandler {
 public:
  std::string job_kind(const JobConfig&) const override { return "Inventory"; }
  Idempotence idempotence() const override { return Idempotence::kIdempotent; }

  awaitable<JobResult> run(JobContext& ctx) override {
    auto store = store_path(ctx.config, "");
    if (!store.ok()) co_return fail(ctx, store.error());
    if (!ctx.session.certs)
      co_return fail(ctx, Error::internal("internal error: the session has no certificate store"));
    auto inventory = co_await ctx.session.certs->inventory(store.value());
    if (!inventory.ok()) co_return fail(ctx, inventory.error());

    std::vector<InventoryItem> items;
    items.reserve(inventory->entries.size());
    for (const auto& entry : inventory->entries) {
      InventoryItem item;
      item.alias = to_upper(entry.thumbprint);
      item.private_key_entry = entry.has_private_key;
      item.certificates.push_back(base64_encode(entry.der));
      item.parameters = {{"ProviderName", entry.provider_name}, {"SAN", windows_san_text(entry.info)}};
      items.push_back(std::move(item));
    }
    const std::size_t count = items.size();
    if (!ctx.callbacks.submit_inventory)
      co_return fail(ctx, Error::internal("internal error: no way to submit inventory to Command"));
    auto submitted = co_await ctx.callbacks.submit_inventory(std::move(items));
    if (!submitted.ok()) co_return fail(ctx, submitted.error().context("submitting the inventory to Command: "));

    std::string summary = "inventory returned " + std::to_string(count) + " item(s)";
    if (!inventory->problems.empty()) {
      co_return warn(ctx, summary + "; " + std::to_string(inventory->problems.size()) +
                              " certificate(s) could not be read, first: " + inventory->problems.front());
    }
    co_return succeed(ctx, summary);
  }
};

awaitable<JobResult> wincert_add(JobContext& ctx) {
  auto store = store_path(ctx.config, "");
  if (!store.ok()) co_return fail(ctx, store.error());
  auto cert = job_certificate(ctx.config, true);
  if (!cert.ok()) co_return fail(ctx, cert.error());
  const JobCertificate& jc = *cert.value();

  certstore::AddCertificateRequest request;
  request.store = store.value();
  request.contents_base64 = jc.contents;
  request.password = jc.private_key_password;
  request.label = certstore::certificate_label(jc.alias, jc.thumbprint.value_or(""));
  request.overwrite = ctx.config.overwrite;
  request.provider_name = ctx.config.entry.provider_name.value_or("");
  ctx.begin_host_change();  // the host may change from here on: not redone after a failure
  auto added = co_await ctx.session.certs->add(std::move(request));
  if (!added.ok()) co_return fail(ctx, added.error());
  if (added->outcome == certstore::AddOutcome::kAlreadyPresent) {
    co_return succeed(
        ctx, "certificate " + added->thumbprint + " is already in the store; left as it is (Overwrite is off)");
  }
  co_return succeed(ctx, std::string(added->outcome == certstore::AddOutcome::kReplaced ? "replaced" : "added") +
                             " certificate " + added->thumbprint);
}

awaitable<JobResult> wincert_remove(JobContext& ctx) {
  auto store = store_path(ctx.config, "");
  if (!store.ok()) co_return fail(ctx, store.error());
  auto cert = job_certificate(ctx.config, false);
  if (!cert.ok()) co_return fail(ctx, cert.error());
  auto thumbprint = normalize_thumbprint(cert.value()->alias, "JobCertificate.Alias");
  if (!thumbprint.ok()) co_return fail(ctx, thumbprint.error());
  const auto request = remove_request(ctx, store.value(), thumbprint.value());
  ctx.begin_host_change();  // the host may change from here on: not redone after a failure
  auto removed = co_await ctx.session.certs->remove(request);
  if (!removed.ok()) co_return fail(ctx, removed.error());
  if (!removed->found) {
    co_return fail(ctx, Error::not_found("certificate " + thumbprint.value() + " was not found in store '" +
                                         store.value() + "'; run an inventory to refresh Command's view of the store"));
  }
  co_return succeed(ctx, removed_detail(request, removed.value()));
}

class WinCertManagement final : public JobHandler {
 public:
  std::string job_kind(const JobConfig& config) const override { return management_kind(config); }
  Idempotence idempotence() const override { return Idempotence::kUntilHostChange; }

  Status validate(const JobConfig& config) const override {
    WINCERT_TRY(management_operation(config, "WinCert"));
    return {};
  }

  awaitable<JobResult> run(JobContext& ctx) override {
    auto op = management_operation(ctx.config, "WinCert");
    if (!op.ok()) co_return fail(ctx, op.error());
    if (!ctx.session.certs)
      co_return fail(ctx, Error::internal("internal error: the session has no certificate store"));
    if (op.value() == OperationType::kAdd) co_return co_await wincert_add(ctx);
    co_return co_await wincert_remove(ctx);
  }
};

class WinCertReenrollment final : public JobHandler {
 public:
  std::string job_kind(const JobConfig&) const override { return "Reenrollment"; }
  Idempotence idempotence() const override { return Idempotence::kUntilHostChange; }

  awaitable<JobResult> run(JobContext& ctx) override {
    auto outcome = co_await reenroll(ctx);
    if (auto* result = std::get_if<JobResult>(&outcome)) co_return std::move(*result);
    const auto& done = std::get<Reenrolled>(outcome);
    co_return succeed(ctx,
                      "installed the new certificate " + done.thumbprint + " with its key generated on the device");
  }
};

}  // namespace

std::shared_ptr<JobHandler> make_wincert_inventory() { return std::make_shared<WinCertInventory>(); }
std::shared_ptr<JobHandler> make_wincert_management() { return std::make_shared<WinCertManagement>(); }
std::shared_ptr<JobHandler> make_wincert_reenrollment() { return std::make_shared<WinCertReenrollment>(); }

}  // namespace wincert::jobs::handlers
