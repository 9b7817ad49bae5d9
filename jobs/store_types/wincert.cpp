// WinCert: certificates in a LocalMachine store, no bindings.
#include "common/encoding.hpp"
#include "jobs/alias.hpp"
#include "jobs/store_types/steps.hpp"

namespace wincert::jobs::store_types {

namespace {

using boost::asio::awaitable;

// What a WinCert job uses on the host.
struct WinCertServices {
  certstore::CertStore& certs;
  static WinCertServices from(certstore::HostSession& host) { return {host.certs()}; }
};

// Streams: each certificate goes to the upload as it is read, and is not kept.
awaitable<Result<InventoryReport>> wincert_inventory(JobContext& ctx, const WinCertServices& host,
                                                     InventoryUpload& upload) {
  WINCERT_CO_ASSIGN_OR_RETURN(const std::string store, store_path(ctx.config, ""));
  WINCERT_CO_ASSIGN_OR_RETURN(const auto reader, co_await host.certs.read_inventory(store));
  for (;;) {
    WINCERT_CO_ASSIGN_OR_RETURN(auto entry, reader->next());
    if (!entry) break;
    InventoryItem item;
    item.alias = to_upper(entry->thumbprint);
    item.private_key_entry = entry->has_private_key;
    item.certificates.push_back(entry->base64.empty() ? base64_encode(entry->der) : std::move(entry->base64));
    item.parameters = {{"ProviderName", entry->provider_name}, {"SAN", windows_san_text(entry->sans)}};
    WINCERT_CO_TRY(co_await add_inventory_item(upload, std::move(item)));
  }
  InventoryReport report;
  if (const auto& problems = reader->problems(); !problems.empty()) {
    report.warning = std::to_string(problems.size()) + " certificate(s) could not be read, first: " + problems.front();
  }
  co_return report;
}

awaitable<JobResult> wincert_add(JobContext& ctx, const WinCertServices& host) {
  auto store = store_path(ctx.config, "");
  if (!store.ok()) co_return fail(ctx, store.error());
  auto cert = job_certificate(ctx.config, true);
  if (!cert.ok()) co_return fail(ctx, cert.error());

  certstore::AddCertificateRequest request = add_request(ctx, store.value(), *cert.value());
  ctx.begin_host_change();  // the host may change from here on: not redone after a failure
  auto added = co_await host.certs.add(std::move(request));
  if (!added.ok()) co_return fail(ctx, added.error());
  if (added->outcome == certstore::AddOutcome::kAlreadyPresent) {
    co_return succeed(
        ctx, "certificate " + added->thumbprint + " is already in the store; left as it is (Overwrite is off)");
  }
  co_return succeed(ctx, std::string(added->outcome == certstore::AddOutcome::kReplaced ? "replaced" : "added") +
                             " certificate " + added->thumbprint);
}

awaitable<JobResult> wincert_remove(JobContext& ctx, const WinCertServices& host) {
  auto store = store_path(ctx.config, "");
  if (!store.ok()) co_return fail(ctx, store.error());
  auto cert = job_certificate(ctx.config, false);
  if (!cert.ok()) co_return fail(ctx, cert.error());
  auto thumbprint = normalize_thumbprint(cert.value()->alias, "JobCertificate.Alias");
  if (!thumbprint.ok()) co_return fail(ctx, thumbprint.error());
  ctx.begin_host_change();  // the host may change from here on: not redone after a failure
  auto removed = co_await remove_certificate(ctx, host.certs, store.value(), thumbprint.value());
  if (!removed.ok()) co_return fail(ctx, removed.error());
  co_return succeed(ctx, removed.value());
}

awaitable<JobResult> wincert_reenrolled(JobContext& ctx, const WinCertServices&, const Reenrolled& done) {
  co_return succeed(ctx, "installed the new certificate " + done.thumbprint + " with its key generated on the device");
}

}  // namespace

StoreTypeHandlers wincert_handlers() {
  StoreTypeOps<WinCertServices> ops;
  ops.name = "WinCert";
  ops.inventory = &wincert_inventory;
  ops.add = &wincert_add;
  ops.remove = &wincert_remove;
  ops.finish_reenrollment = &wincert_reenrolled;
  return make_handlers(ops);
}

}  // namespace wincert::jobs::store_types
