// WinSql: the TLS certificate of SQL Server instances (SuperSocketNetLib\Certificate).
#include <map>

#include "certstore/pkcs12.hpp"
#include "jobs/alias.hpp"
#include "jobs/handlers/common.hpp"
#include "jobs/handlers/handlers.hpp"

namespace wincert::jobs::handlers {

namespace {

using boost::asio::awaitable;

// SQL Server reads its certificate from LocalMachine\My; the store type fixes StorePath to My.
constexpr std::string_view kSqlStore = "My";

class WinSqlInventory final : public JobHandler {
 public:
  std::string job_kind(const JobConfig&) const override { return "Inventory"; }
  Idempotence idempotence() const override { return Idempotence::kIdempotent; }

  awaitable<JobResult> run(JobContext& ctx) override {
    if (!ctx.session.sql || !ctx.session.certs)
      co_return fail(ctx, Error::internal("internal error: the session has no SQL Server access"));
    auto store = store_path(ctx.config, kSqlStore);
    if (!store.ok()) co_return fail(ctx, store.error());
    auto instances = co_await ctx.session.sql->list_instances();
    if (!instances.ok()) co_return fail(ctx, instances.error());

    // Group instances by bound thumbprint, in the order the host listed them.
    std::vector<std::string> order;
    std::map<std::string, std::vector<std::string>> by_thumbprint;
    for (const auto& instance : instances.value()) {
      if (trim(instance.thumbprint).empty()) continue;
      const std::string thumbprint = to_upper(trim(instance.thumbprint));
      auto [it, inserted] = by_thumbprint.try_emplace(thumbprint);
      if (inserted) order.push_back(thumbprint);
      it->second.push_back(instance.name);
    }

    std::vector<InventoryItem> items;
    std::vector<std::string> missing;
    if (!order.empty()) {
      auto inventory = co_await ctx.session.certs->inventory(store.value());
      if (!inventory.ok()) co_return fail(ctx, inventory.error());
      for (const auto& thumbprint : order) {
        const certstore::InventoryEntry* entry = nullptr;
        for (const auto& e : inventory->entries) {
          if (iequals(e.thumbprint, thumbprint)) {
            entry = &e;
            break;
          }
        }
        const std::string instance_list = join(by_thumbprint[thumbprint], ",");
        if (!entry) {
          missing.push_back(thumbprint + " (" + instance_list + ")");
          continue;
        }
        InventoryItem item;
        item.alias = thumbprint;
        item.private_key_entry = entry->has_private_key;
        item.certificates.push_back(base64_encode(entry->der));
        item.parameters = {{"InstanceName", instance_list}, {"ProviderName", entry->provider_name}};
        items.push_back(std::move(item));
      }
    }
    const std::size_t count = items.size();
    if (!ctx.callbacks.submit_inventory)
      co_return fail(ctx, Error::internal("internal error: no way to submit inventory to Command"));
    auto submitted = co_await ctx.callbacks.submit_inventory(std::move(items));
    if (!submitted.ok()) co_return fail(ctx, submitted.error().context("submitting the inventory to Command: "));
    std::string summary = "inventory returned " + std::to_string(count) + " bound certificate(s)";
    if (!missing.empty()) {
      co_return warn(ctx, summary + "; SQL Server is configured with certificate(s) not in store '" + store.value() +
                              "': " + join(missing, ", "));
    }
    co_return succeed(ctx, summary);
  }
};

// Restarts the instances when the store asks for it; a failed restart is a Warning, not a Failure:
// the certificate change itself is done, and the service only needs a manual restart.
awaitable<JobResult> finish_with_restart(JobContext& ctx, const std::vector<std::string>& instances,
                                         std::string detail) {
  if (!ctx.config.store.properties.restart_service || instances.empty()) co_return succeed(ctx, detail);
  auto restarted = co_await ctx.session.sql->restart(instances);
  if (!restarted.ok()) {
    co_return warn(ctx, detail + "; restarting SQL Server (" + join(instances, ", ") +
                            ") failed, restart the service manually: " + restarted.error().message);
  }
  co_return succeed(ctx, detail + "; SQL Server restarted (" + join(instances, ", ") + ")");
}

awaitable<JobResult> winsql_add(JobContext& ctx) {
  auto store = store_path(ctx.config, kSqlStore);
  if (!store.ok()) co_return fail(ctx, store.error());
  auto cert = job_certificate(ctx.config, true);
  if (!cert.ok()) co_return fail(ctx, cert.error());
  const JobCertificate& jc = *cert.value();
  std::vector<std::string> instances = sql_instances(ctx.config.entry);

  // A renewal binds only where the renewed certificate is bound now.
  std::string renewal;
  if (ctx.config.entry.renewal_thumbprint && !trim(*ctx.config.entry.renewal_thumbprint).empty()) {
    auto normalized = normalize_thumbprint(*ctx.config.entry.renewal_thumbprint, "entry parameter RenewalThumbprint");
    if (!normalized.ok()) co_return fail(ctx, normalized.error());
    renewal = normalized.value();
    auto listed = co_await ctx.session.sql->list_instances();
    if (!listed.ok()) co_return fail(ctx, listed.error());
    std::vector<std::string> bound_to_renewal;
    for (const auto& instance : listed.value()) {
      if (contains_ci(instances, instance.name) && iequals(trim(instance.thumbprint), renewal)) {
        bound_to_renewal.push_back(instance.name);
      }
    }
    instances = std::move(bound_to_renewal);
  }

  certstore::AddCertificateRequest request;
  request.store = store.value();
  request.contents_base64 = jc.contents;
  request.password = jc.private_key_password;
  request.label = certstore::certificate_label(jc.alias, jc.thumbprint.value_or(""));
  request.overwrite = ctx.config.overwrite;
  request.provider_name = ctx.config.entry.provider_name.value_or("");
  if (!instances.empty()) {
    request.private_key_required = true;  // SQL Server cannot use a certificate without its key
    certstore::SqlBindingRequest binding;
    binding.instances = instances;
    binding.restart_service = false;  // restarted below, so a restart failure is only a Warning
    request.sql_binding = std::move(binding);
  }
  ctx.begin_host_change();  // the host may change from here on: not redone after a failure
  auto added = co_await ctx.session.certs->add(std::move(request));
  if (!added.ok()) co_return fail(ctx, added.error());

  if (instances.empty()) {
    co_return warn(ctx, "certificate " + added->thumbprint + " imported, but no instance of " +
                            join(sql_instances(ctx.config.entry), ", ") + " was bound to the renewed certificate " +
                            renewal + ", so none was re-bound");
  }
  co_return co_await finish_with_restart(
      ctx, instances, "certificate " + added->thumbprint + " bound to SQL Server " + join(instances, ", "));
}

awaitable<JobResult> winsql_remove(JobContext& ctx) {
  auto store = store_path(ctx.config, kSqlStore);
  if (!store.ok()) co_return fail(ctx, store.error());
  auto cert = job_certificate(ctx.config, false);
  if (!cert.ok()) co_return fail(ctx, cert.error());
  auto thumbprint = normalize_thumbprint(cert.value()->alias, "JobCertificate.Alias");
  if (!thumbprint.ok()) co_return fail(ctx, thumbprint.error());
  const std::vector<std::string> listed_names = sql_instances(ctx.config.entry);

  auto instances = co_await ctx.session.sql->list_instances();
  if (!instances.ok()) co_return fail(ctx, instances.error());
  // Unbind only where this certificate is the bound one (the extension blanked every listed instance).
  std::vector<std::string> to_unbind;
  std::vector<std::string> bound_elsewhere;
  for (const auto& instance : instances.value()) {
    if (!iequals(trim(instance.thumbprint), thumbprint.value())) continue;
    (contains_ci(listed_names, instance.name) ? to_unbind : bound_elsewhere).push_back(instance.name);
  }
  if (!bound_elsewhere.empty()) {
    // Deleting it would leave those instances unable to start with TLS; change nothing.
    co_return fail(ctx,
                   Error::failed_precondition(
                       "certificate " + thumbprint.value() + " is also bound to SQL Server instance(s) " +
                       join(bound_elsewhere, ", ") + " that are not in InstanceName (" + join(listed_names, ",") +
                       "); add them to InstanceName or bind another certificate there first. Nothing was changed"));
  }

  ctx.begin_host_change();  // the host may change from here on: not redone after a failure
  std::string detail;
  if (!to_unbind.empty()) {
    certstore::SqlBindingRequest request;
    request.instances = to_unbind;
    request.restart_service = false;
    auto unbound = co_await ctx.session.sql->unbind(request, thumbprint.value());
    if (!unbound.ok()) co_return fail(ctx, unbound.error());
    detail = "unbound from SQL Server " + join(to_unbind, ", ") + "; ";
  }
  const auto request = remove_request(ctx, store.value(), thumbprint.value());
  auto removed = co_await ctx.session.certs->remove(request);
  if (!removed.ok()) co_return fail(ctx, removed.error().context(detail));
  if (!removed->found) {
    co_return fail(ctx, Error::not_found(detail + "certificate " + thumbprint.value() + " was not found in store '" +
                                         store.value() + "'; run an inventory to refresh Command's view of the store"));
  }
  co_return co_await finish_with_restart(ctx, to_unbind, detail + removed_detail(request, removed.value()));
}

class WinSqlManagement final : public JobHandler {
 public:
  std::string job_kind(const JobConfig& config) const override { return management_kind(config); }
  Idempotence idempotence() const override { return Idempotence::kUntilHostChange; }

  Status validate(const JobConfig& config) const override {
    WINCERT_TRY(management_operation(config, "WinSql"));
    return {};
  }

  awaitable<JobResult> run(JobContext& ctx) override {
    auto op = management_operation(ctx.config, "WinSql");
    if (!op.ok()) co_return fail(ctx, op.error());
    if (!ctx.session.certs || !ctx.session.sql)
      co_return fail(ctx, Error::internal("internal error: the session has no SQL Server access"));
    if (op.value() == OperationType::kAdd) co_return co_await winsql_add(ctx);
    co_return co_await winsql_remove(ctx);
  }
};

class WinSqlReenrollment final : public JobHandler {
 public:
  std::string job_kind(const JobConfig&) const override { return "Reenrollment"; }
  Idempotence idempotence() const override { return Idempotence::kUntilHostChange; }

  awaitable<JobResult> run(JobContext& ctx) override {
    if (!ctx.session.sql) co_return fail(ctx, Error::internal("internal error: the session has no SQL Server access"));
    const std::vector<std::string> instances = sql_instances(ctx.config.entry);
    auto outcome = co_await reenroll(ctx);
    if (auto* result = std::get_if<JobResult>(&outcome)) co_return std::move(*result);
    const auto done = std::get<Reenrolled>(outcome);
    certstore::SqlBindingRequest request;
    request.instances = instances;
    request.restart_service = false;  // as the extension: reenrollment never restarts SQL Server
    auto bound = co_await ctx.session.sql->bind(request, done.thumbprint, done.store);
    if (!bound.ok()) {
      co_return fail(ctx, bound.error().context("the new certificate " + done.thumbprint +
                                                " is installed but binding it to SQL Server failed: "));
    }
    co_return succeed(ctx, "installed the new certificate " + done.thumbprint + " and bound it to SQL Server " +
                               join(instances, ", ") + " (restart the service for it to take effect)");
  }
};

}  // namespace

std::shared_ptr<JobHandler> make_winsql_inventory() { return std::make_shared<WinSqlInventory>(); }
std::shared_ptr<JobHandler> make_winsql_management() { return std::make_shared<WinSqlManagement>(); }
std::shared_ptr<JobHandler> make_winsql_reenrollment() { return std::make_shared<WinSqlReenrollment>(); }

}  // namespace wincert::jobs::handlers
