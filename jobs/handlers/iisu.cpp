// IISU: certificates bound to IIS https bindings.
#include <map>

#include "certstore/pkcs12.hpp"
#include "jobs/alias.hpp"
#include "jobs/handlers/common.hpp"
#include "jobs/handlers/handlers.hpp"

namespace wincert::jobs::handlers {

namespace {

using boost::asio::awaitable;

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

class IisuInventory final : public JobHandler {
 public:
  std::string job_kind(const JobConfig&) const override { return "Inventory"; }
  Idempotence idempotence() const override { return Idempotence::kIdempotent; }

  awaitable<JobResult> run(JobContext& ctx) override {
    if (!ctx.session.iis || !ctx.session.certs)
      co_return fail(ctx, Error::internal("internal error: the session has no IIS access"));
    auto bindings = co_await ctx.session.iis->list();
    if (!bindings.ok()) co_return fail(ctx, bindings.error());

    // Every bound certificate, wherever its binding says it lives (My unless WebHosting), as the
    // extension reports them regardless of the store's StorePath.
    std::map<std::string, std::map<std::string, const certstore::InventoryEntry*>, CaseInsensitiveLess> by_store;
    std::vector<certstore::StoreInventory> inventories;
    for (const auto& b : bindings.value()) {
      if (!iequals(b.protocol, "https") || b.thumbprint.empty()) continue;
      by_store.try_emplace(b.store.empty() ? "My" : b.store);
    }
    inventories.reserve(by_store.size());
    for (auto& [store, index] : by_store) {
      auto inventory = co_await ctx.session.certs->inventory(store);
      if (!inventory.ok()) co_return fail(ctx, inventory.error());
      inventories.push_back(std::move(inventory.value()));
      for (const auto& entry : inventories.back().entries) index.emplace(to_upper(entry.thumbprint), &entry);
    }

    std::vector<InventoryItem> items;
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
      const certstore::InventoryEntry& entry = *found->second;
      InventoryItem item;
      item.alias = build_iis_alias(thumbprint, b.site, b.ip, port, b.host);
      item.private_key_entry = entry.has_private_key;
      item.certificates.push_back(base64_encode(entry.der));
      item.parameters = {{"SiteName", b.site},
                         {"Port", std::to_string(b.port)},
                         {"IPAddress", b.ip},
                         {"HostName", b.host},
                         {"SniFlag", std::to_string(b.ssl_flags)},
                         {"Protocol", "https"},
                         {"ProviderName", entry.provider_name},
                         {"SAN", windows_san_text(entry.info)}};
      items.push_back(std::move(item));
    }
    const std::size_t count = items.size();
    if (!ctx.callbacks.submit_inventory)
      co_return fail(ctx, Error::internal("internal error: no way to submit inventory to Command"));
    auto submitted = co_await ctx.callbacks.submit_inventory(std::move(items));
    if (!submitted.ok()) co_return fail(ctx, submitted.error().context("submitting the inventory to Command: "));
    std::string summary = "inventory returned " + std::to_string(count) + " bound certificate(s)";
    if (!missing.empty()) {
      co_return warn(ctx, summary + "; " + std::to_string(missing.size()) +
                              " binding(s) reference a certificate that is not in its store: " + join(missing, ", "));
    }
    co_return succeed(ctx, summary);
  }
};

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

awaitable<JobResult> iisu_add(JobContext& ctx) {
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
  certstore::AddCertificateRequest request;
  request.store = store.value();
  request.contents_base64 = jc.contents;
  request.password = jc.private_key_password;
  request.label = certstore::certificate_label(jc.alias, jc.thumbprint.value_or(""));
  request.overwrite = ctx.config.overwrite;
  request.provider_name = ctx.config.entry.provider_name.value_or("");
  request.private_key_required = true;
  request.iis_binding = to_request(binding.value());
  request.replaced_thumbprint = replaced.value();
  ctx.begin_host_change();  // the host may change from here on: not redone after a failure
  auto added = co_await ctx.session.certs->add(std::move(request));
  if (!added.ok()) co_return fail(ctx, added.error());

  const std::string where =
      binding->site_name + " " + binding_information(binding->ip_address, binding->port, binding->host_name);
  std::string detail = "certificate " + added->thumbprint + " bound to " + where;
  if (added->replaced && !iequals(added->replaced->thumbprint, added->thumbprint)) {
    if (added->replaced->removed) {
      detail += "; replaced certificate " + added->replaced->thumbprint + " removed";
    } else if (!added->replaced->still_bound_sites.empty()) {
      detail += "; replaced certificate " + added->replaced->thumbprint + " kept, still bound to " +
                join(added->replaced->still_bound_sites, ", ");
    }
  }
  co_return succeed(ctx, detail);
}

awaitable<JobResult> iisu_remove(JobContext& ctx) {
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
  auto unbound = co_await ctx.session.iis->unbind(binding);
  if (!unbound.ok()) co_return fail(ctx, unbound.error().context("removing binding " + where + ": "));
  auto cleanup = co_await ctx.session.iis->remove_certificate_if_unused(store.value(), alias->thumbprint);
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

class IisuManagement final : public JobHandler {
 public:
  std::string job_kind(const JobConfig& config) const override { return management_kind(config); }
  Idempotence idempotence() const override { return Idempotence::kUntilHostChange; }

  Status validate(const JobConfig& config) const override {
    WINCERT_ASSIGN_OR_RETURN(const OperationType op, management_operation(config, "IISU"));
    if (op == OperationType::kAdd) WINCERT_TRY(https_binding(config));
    return {};
  }

  awaitable<JobResult> run(JobContext& ctx) override {
    auto op = management_operation(ctx.config, "IISU");
    if (!op.ok()) co_return fail(ctx, op.error());
    if (!ctx.session.certs || !ctx.session.iis)
      co_return fail(ctx, Error::internal("internal error: the session has no IIS access"));
    if (op.value() == OperationType::kAdd) co_return co_await iisu_add(ctx);
    co_return co_await iisu_remove(ctx);
  }
};

class IisuReenrollment final : public JobHandler {
 public:
  std::string job_kind(const JobConfig&) const override { return "Reenrollment"; }
  Idempotence idempotence() const override { return Idempotence::kUntilHostChange; }

  Status validate(const JobConfig& config) const override {
    WINCERT_TRY(https_binding(config));
    return {};
  }

  awaitable<JobResult> run(JobContext& ctx) override {
    // Check the binding before a key is generated on the device.
    auto binding = https_binding(ctx.config);
    if (!binding.ok()) co_return fail(ctx, binding.error());
    if (!ctx.session.iis) co_return fail(ctx, Error::internal("internal error: the session has no IIS access"));
    auto outcome = co_await reenroll(ctx);
    if (auto* result = std::get_if<JobResult>(&outcome)) co_return std::move(*result);
    const auto done = std::get<Reenrolled>(outcome);
    const std::string where =
        binding->site_name + " " + binding_information(binding->ip_address, binding->port, binding->host_name);
    auto bound = co_await ctx.session.iis->bind(to_request(binding.value()), done.thumbprint, done.store);
    if (!bound.ok()) {
      co_return fail(ctx, bound.error().context("the new certificate " + done.thumbprint +
                                                " is installed but binding it to " + where + " failed: "));
    }
    co_return succeed(ctx, "installed the new certificate " + done.thumbprint + " and bound it to " + where);
  }
};

}  // namespace

std::shared_ptr<JobHandler> make_iisu_inventory() { return std::make_shared<IisuInventory>(); }
std::shared_ptr<JobHandler> make_iisu_management() { return std::make_shared<IisuManagement>(); }
std::shared_ptr<JobHandler> make_iisu_reenrollment() { return std::make_shared<IisuReenrollment>(); }

}  // namespace wincert::jobs::handlers
