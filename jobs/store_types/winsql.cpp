// WinSql: the TLS certificate of SQL Server instances (SuperSocketNetLib\Certificate).
#include <map>

#include "common/encoding.hpp"
#include "jobs/alias.hpp"
#include "jobs/store_types/steps.hpp"

namespace wincert::jobs::store_types {

namespace {

using boost::asio::awaitable;

// What a WinSql job uses on the host.
struct WinSqlServices {
  certstore::CertStore& certs;
  certstore::SqlBindings& sql;
  static WinSqlServices from(certstore::HostSession& host) { return {host.certs(), host.sql()}; }
};

// InstanceName "A, B" -> {"A","B"}; absent or empty -> {"MSSQLSERVER"}.
std::vector<std::string> sql_instances(const EntryParameters& entry) {
  std::vector<std::string> out;
  if (entry.instance_name) {
    std::string_view text = *entry.instance_name;
    std::size_t start = 0;
    while (start <= text.size()) {
      std::size_t comma = text.find(',', start);
      std::string_view part =
          trim(text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
      if (!part.empty() && !contains_ci(out, part)) out.emplace_back(part);
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
  }
  if (out.empty()) out.emplace_back("MSSQLSERVER");
  return out;
}

// SQL Server reads its certificate from LocalMachine\My; the store type fixes StorePath to My.
constexpr std::string_view kSqlStore = "My";

awaitable<Result<InventoryReport>> winsql_inventory(JobContext& ctx, const WinSqlServices& host,
                                                    InventoryUpload& upload) {
  auto store = store_path(ctx.config, kSqlStore);
  if (!store.ok()) co_return store.error();
  auto instances = co_await host.sql.list_instances();
  if (!instances.ok()) co_return instances.error();

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

  InventoryReport report;
  report.counted_as = "bound certificate(s)";
  std::vector<std::string> missing;
  if (!order.empty()) {
    // Only the configured certificates are kept from the store (read one certificate at a time).
    std::map<std::string, certstore::InventoryEntry> configured;
    WINCERT_CO_ASSIGN_OR_RETURN(const auto reader, co_await host.certs.read_inventory(store.value()));
    for (;;) {
      WINCERT_CO_ASSIGN_OR_RETURN(auto e, reader->next());
      if (!e) break;
      std::string thumbprint = to_upper(e->thumbprint);
      if (by_thumbprint.count(thumbprint)) configured.try_emplace(std::move(thumbprint), std::move(*e));
    }
    for (const auto& thumbprint : order) {
      const auto found = configured.find(thumbprint);
      const certstore::InventoryEntry* entry = found == configured.end() ? nullptr : &found->second;
      const std::string instance_list = join(by_thumbprint[thumbprint], ",");
      if (!entry) {
        missing.push_back(thumbprint + " (" + instance_list + ")");
        continue;
      }
      InventoryItem item;
      item.alias = thumbprint;
      item.private_key_entry = entry->has_private_key;
      item.certificates.push_back(entry->base64.empty() ? base64_encode(entry->der) : entry->base64);
      item.parameters = {{"InstanceName", instance_list}, {"ProviderName", entry->provider_name}};
      WINCERT_CO_TRY(co_await add_inventory_item(upload, std::move(item)));
    }
  }
  if (!missing.empty()) {
    report.warning =
        "SQL Server is configured with certificate(s) not in store '" + store.value() + "': " + join(missing, ", ");
  }
  co_return report;
}

// Restarts the instances when the store asks for it; a failed restart is a Warning, not a Failure:
// the certificate change itself is done, and the service only needs a manual restart.
awaitable<JobResult> finish_with_restart(JobContext& ctx, const WinSqlServices& host,
                                         const std::vector<std::string>& instances, std::string detail) {
  if (!ctx.config.store.properties.restart_service || instances.empty()) co_return succeed(ctx, detail);
  auto restarted = co_await host.sql.restart(instances);
  if (!restarted.ok()) {
    co_return warn(ctx, detail + "; restarting SQL Server (" + join(instances, ", ") +
                            ") failed, restart the service manually: " + restarted.error().message);
  }
  co_return succeed(ctx, detail + "; SQL Server restarted (" + join(instances, ", ") + ")");
}

awaitable<JobResult> winsql_add(JobContext& ctx, const WinSqlServices& host) {
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
    auto listed = co_await host.sql.list_instances();
    if (!listed.ok()) co_return fail(ctx, listed.error());
    std::vector<std::string> bound_to_renewal;
    for (const auto& instance : listed.value()) {
      if (contains_ci(instances, instance.name) && iequals(trim(instance.thumbprint), renewal)) {
        bound_to_renewal.push_back(instance.name);
      }
    }
    instances = std::move(bound_to_renewal);
  }

  certstore::AddCertificateRequest request = add_request(ctx, store.value(), jc);
  if (!instances.empty()) {
    request.private_key_required = true;  // SQL Server cannot use a certificate without its key
    // Restarted below, so a restart failure is only a Warning.
    certstore::SqlBindingStep bind{certstore::SqlBindingRequest{instances, /*restart_service=*/false}};
    request.steps.emplace_back(std::move(bind));
  }
  ctx.begin_host_change();  // the host may change from here on: not redone after a failure
  auto added = co_await host.certs.add(std::move(request));
  if (!added.ok()) co_return fail(ctx, added.error());

  if (instances.empty()) {
    co_return warn(ctx, "certificate " + added->thumbprint + " imported, but no instance of " +
                            join(sql_instances(ctx.config.entry), ", ") + " was bound to the renewed certificate " +
                            renewal + ", so none was re-bound");
  }
  co_return co_await finish_with_restart(
      ctx, host, instances, "certificate " + added->thumbprint + " bound to SQL Server " + join(instances, ", "));
}

awaitable<JobResult> winsql_remove(JobContext& ctx, const WinSqlServices& host) {
  auto store = store_path(ctx.config, kSqlStore);
  if (!store.ok()) co_return fail(ctx, store.error());
  auto cert = job_certificate(ctx.config, false);
  if (!cert.ok()) co_return fail(ctx, cert.error());
  auto thumbprint = normalize_thumbprint(cert.value()->alias, "JobCertificate.Alias");
  if (!thumbprint.ok()) co_return fail(ctx, thumbprint.error());
  const std::vector<std::string> listed_names = sql_instances(ctx.config.entry);

  auto instances = co_await host.sql.list_instances();
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
    auto unbound = co_await host.sql.unbind(request, thumbprint.value());
    if (!unbound.ok()) co_return fail(ctx, unbound.error());
    detail = "unbound from SQL Server " + join(to_unbind, ", ") + "; ";
  }
  auto removed = co_await remove_certificate(ctx, host.certs, store.value(), thumbprint.value(), detail);
  if (!removed.ok()) co_return fail(ctx, removed.error());
  co_return co_await finish_with_restart(ctx, host, to_unbind, removed.value());
}

awaitable<JobResult> winsql_reenrolled(JobContext& ctx, const WinSqlServices& host, const Reenrolled& done) {
  const std::vector<std::string> instances = sql_instances(ctx.config.entry);
  certstore::SqlBindingRequest request;
  request.instances = instances;
  request.restart_service = false;  // as the extension: reenrollment never restarts SQL Server
  auto bound = co_await host.sql.bind(request, done.thumbprint, done.store);
  if (!bound.ok()) {
    co_return fail(ctx, bound.error().context("the new certificate " + done.thumbprint +
                                              " is installed but binding it to SQL Server failed: "));
  }
  co_return succeed(ctx, "installed the new certificate " + done.thumbprint + " and bound it to SQL Server " +
                             join(instances, ", ") + " (restart the service for it to take effect)");
}

}  // namespace

// The extension's WinSql store type says no Enrollment, but the extension registers and implements
// CertStores.WinSql.ReEnrollment; so do we, and config/store-types/ declares Enrollment for WinSql.
StoreTypeHandlers winsql_handlers() {
  StoreTypeOps<WinSqlServices> ops;
  ops.name = "WinSql";
  ops.inventory = &winsql_inventory;
  ops.add = &winsql_add;
  ops.remove = &winsql_remove;
  ops.finish_reenrollment = &winsql_reenrolled;
  return make_handlers(ops);
}

}  // namespace wincert::jobs::store_types
