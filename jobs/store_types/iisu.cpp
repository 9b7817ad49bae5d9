// IISU: certificates bound to IIS https bindings.
#include <map>
#include <set>

#include "common/encoding.hpp"
#include "jobs/alias.hpp"
#include "jobs/store_types/steps.hpp"

namespace wincert::jobs::store_types {

namespace {

using boost::asio::awaitable;

// What an IISU job uses on the host.
struct IisuServices {
  certstore::CertStore& certs;
  certstore::IisBindings& iis;
  static IisuServices from(certstore::HostSession& host) { return {host.certs(), host.iis()}; }
};

certstore::IisBindingRequest to_request(const IisBindingInfo& info) {
  certstore::IisBindingRequest request;
  request.site = info.site_name;
  request.ip = info.ip_address;
  request.port = info.port;
  request.host = info.host_name;
  request.ssl_flags = info.ssl_flags;
  return request;
}

Result<IisBindingInfo> https_binding(const JobConfig& config) {
  auto binding = iis_binding_from_entry_parameters(config.entry);
  if (!binding.ok()) return binding.error();
  if (binding->protocol != "https") {
    return Error::invalid_argument("entry parameter Protocol is '" + binding->protocol +
                                   "'; IISU binds certificates to https bindings only");
  }
  return binding;
}

awaitable<Result<InventoryReport>> iisu_inventory(JobContext&, const IisuServices& host, InventoryUpload& upload) {
  auto bindings = co_await host.iis.list();
  if (!bindings.ok()) co_return bindings.error();

  // Every bound certificate, wherever its binding says it lives (My unless WebHosting), as the
  // extension reports them regardless of the store's StorePath. Only the bound ones are kept from each
  // store's inventory (read one certificate at a time).
  std::map<std::string, std::map<std::string, certstore::InventoryEntry>, CaseInsensitiveLess> by_store;
  for (const auto& b : bindings.value()) {
    if (!iequals(b.protocol, "https") || b.thumbprint.empty()) continue;
    by_store[b.store.empty() ? "My" : b.store].try_emplace(to_upper(b.thumbprint));
  }
  for (auto& [store, index] : by_store) {
    WINCERT_CO_ASSIGN_OR_RETURN(const auto reader, co_await host.certs.read_inventory(store));
    std::set<std::string> found;
    for (;;) {
      WINCERT_CO_ASSIGN_OR_RETURN(auto entry, reader->next());
      if (!entry) break;
      std::string thumbprint = to_upper(entry->thumbprint);
      auto bound = index.find(thumbprint);
      if (bound == index.end() || !found.insert(thumbprint).second) continue;  // the first of duplicates, as before
      bound->second = std::move(*entry);
    }
    std::erase_if(index, [&found](const auto& item) { return !found.count(item.first); });
  }

  InventoryReport report;
  report.counted_as = "bound certificate(s)";
  std::vector<std::string> missing;
  for (const auto& b : bindings.value()) {
    if (!iequals(b.protocol, "https") || b.thumbprint.empty()) continue;
    const std::string store = b.store.empty() ? "My" : b.store;
    const std::string thumbprint = to_upper(b.thumbprint);
    const auto& index = by_store[store];
    auto found = index.find(thumbprint);
    const std::uint16_t port = static_cast<std::uint16_t>(b.port);
    if (found == index.end()) {
      missing.push_back(thumbprint + " (" + b.site + " " + binding_information(b.ip, port, b.host) + ")");
      continue;
    }
    const certstore::InventoryEntry& entry = found->second;
    InventoryItem item;
    item.alias = build_iis_alias(thumbprint, b.site, b.ip, port, b.host);
    item.private_key_entry = entry.has_private_key;
    item.certificates.push_back(entry.base64.empty() ? base64_encode(entry.der) : entry.base64);
    item.parameters = {{"SiteName", b.site},
                       {"Port", std::to_string(b.port)},
                       {"IPAddress", b.ip},
                       {"HostName", b.host},
                       {"SniFlag", std::to_string(b.ssl_flags)},
                       {"Protocol", "https"},
                       {"ProviderName", entry.provider_name},
                       {"SAN", windows_san_text(entry.sans)}};
    WINCERT_CO_TRY(co_await add_inventory_item(upload, std::move(item)));
  }
  if (!missing.empty()) {
    report.warning = std::to_string(missing.size()) +
                     " binding(s) reference a certificate that is not in its store: " + join(missing, ", ");
  }
  co_return report;
}

// The thumbprint of the certificate a renewal replaces: JobCertificate.Alias is the existing entry's
// IIS alias (or a bare thumbprint).
Result<std::string> replaced_thumbprint(const JobCertificate& jc) {
  std::string_view alias = trim(jc.alias);
  if (alias.empty()) return std::string();
  if (alias.size() > 40 && alias[40] == ':') {
    auto parsed = parse_iis_alias(alias);
    if (!parsed.ok()) return parsed.error().context("JobCertificate.Alias: ");
    return parsed->thumbprint;
  }
  return normalize_thumbprint(alias, "JobCertificate.Alias");
}

awaitable<JobResult> iisu_add(JobContext& ctx, const IisuServices& host) {
  auto store = store_path(ctx.config, "My");
  if (!store.ok()) co_return fail(ctx, store.error());
  auto cert = job_certificate(ctx.config, true);
  if (!cert.ok()) co_return fail(ctx, cert.error());
  const JobCertificate& jc = *cert.value();
  auto binding = https_binding(ctx.config);
  if (!binding.ok()) co_return fail(ctx, binding.error());
  auto replaced = replaced_thumbprint(jc);
  if (!replaced.ok()) co_return fail(ctx, replaced.error());

  // One step on the host: import, bind, and remove the replaced certificate if nothing uses it.
  certstore::AddCertificateRequest request = add_request(ctx, store.value(), jc);
  request.private_key_required = true;
  certstore::IisBindingStep bind{to_request(binding.value()), replaced.value()};  // clang: no paren-aggregate init
  request.steps.emplace_back(std::move(bind));
  ctx.begin_host_change();  // the host may change from here on: not redone after a failure
  auto added = co_await host.certs.add(std::move(request));
  if (!added.ok()) co_return fail(ctx, added.error());
  const auto* bound = added->step<certstore::IisBindingOutcome>();
  const std::optional<certstore::ReplacedCertificate> none;
  const auto& replaced_outcome = bound ? bound->replaced : none;

  const std::string where =
      binding->site_name + " " + binding_information(binding->ip_address, binding->port, binding->host_name);
  std::string detail = "certificate " + added->thumbprint + " bound to " + where;
  if (replaced_outcome && !iequals(replaced_outcome->thumbprint, added->thumbprint)) {
    if (replaced_outcome->removed) {
      detail += "; replaced certificate " + replaced_outcome->thumbprint + " removed";
    } else if (!replaced_outcome->still_bound_sites.empty()) {
      detail += "; replaced certificate " + replaced_outcome->thumbprint + " kept, still bound to " +
                join(replaced_outcome->still_bound_sites, ", ");
    }
  }
  co_return succeed(ctx, detail);
}

awaitable<JobResult> iisu_remove(JobContext& ctx, const IisuServices& host) {
  auto store = store_path(ctx.config, "My");
  if (!store.ok()) co_return fail(ctx, store.error());
  auto cert = job_certificate(ctx.config, false);
  if (!cert.ok()) co_return fail(ctx, cert.error());
  auto alias = parse_iis_alias(cert.value()->alias);
  if (!alias.ok()) co_return fail(ctx, alias.error().context("JobCertificate.Alias: "));

  certstore::IisBindingRequest binding;
  binding.site = alias->site_name;
  binding.ip = alias->ip_address;
  binding.port = alias->port;
  binding.host = alias->host_name;
  const std::string where =
      alias->site_name + " " + binding_information(alias->ip_address, alias->port, alias->host_name);
  ctx.begin_host_change();  // the host may change from here on: not redone after a failure
  auto unbound = co_await host.iis.unbind(binding);
  if (!unbound.ok()) co_return fail(ctx, unbound.error().context("removing binding " + where + ": "));
  auto cleanup = co_await host.iis.remove_certificate_if_unused(store.value(), alias->thumbprint);
  if (!cleanup.ok()) co_return fail(ctx, cleanup.error().context("removing certificate " + alias->thumbprint + ": "));

  std::string detail = unbound.value() ? "binding " + where + " removed" : "binding " + where + " was already gone";
  if (cleanup->removed) {
    detail += "; certificate " + alias->thumbprint + " removed";
  } else if (!cleanup->still_bound_sites.empty()) {
    detail += "; certificate " + alias->thumbprint + " kept, still bound to " + join(cleanup->still_bound_sites, ", ");
  } else {
    detail += "; certificate " + alias->thumbprint + " was not in store '" + store.value() + "'";
  }
  co_return succeed(ctx, detail);
}

Status validate_https_binding(const JobConfig& config) {
  WINCERT_TRY(https_binding(config));
  return {};
}

awaitable<JobResult> iisu_reenrolled(JobContext& ctx, const IisuServices& host, const Reenrolled& done) {
  auto binding = https_binding(ctx.config);
  if (!binding.ok()) co_return fail(ctx, binding.error());
  const std::string where =
      binding->site_name + " " + binding_information(binding->ip_address, binding->port, binding->host_name);
  auto bound = co_await host.iis.bind(to_request(binding.value()), done.thumbprint, done.store);
  if (!bound.ok()) {
    co_return fail(ctx, bound.error().context("the new certificate " + done.thumbprint +
                                              " is installed but binding it to " + where + " failed: "));
  }
  co_return succeed(ctx, "installed the new certificate " + done.thumbprint + " and bound it to " + where);
}

}  // namespace

StoreTypeHandlers iisu_handlers() {
  StoreTypeOps<IisuServices> ops;
  ops.name = "IISU";
  ops.inventory = &iisu_inventory;
  ops.add = &iisu_add;
  ops.remove = &iisu_remove;
  ops.validate_add = &validate_https_binding;
  // Checked before a key is generated on the device.
  ops.validate_reenrollment = &validate_https_binding;
  ops.finish_reenrollment = &iisu_reenrolled;
  return make_handlers(ops);
}

}  // namespace wincert::jobs::store_types
