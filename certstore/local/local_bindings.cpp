#include "certstore/local/local_bindings.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "certstore/local/local_cert_store.hpp"
#include "certstore/remote/remote_backend.hpp"

namespace wincert::certstore::local {
namespace {

// ScriptCaller keeps a reference to its runner, so the runner lives beside it, declared first (destroyed
// last).
struct LocalIisStack {
  explicit LocalIisStack(LocalPowerShellOptions options)
      : runner(std::move(options)), bindings(std::make_shared<remote::ScriptCaller>(runner)) {}
  PowerShellProcess runner;
  remote::RemoteIisBindings bindings;
};

class BindingCertStore final : public CertStore {
 public:
  BindingCertStore(std::shared_ptr<IisBindings> iis, std::shared_ptr<SqlBindings> sql)
      : iis_(std::move(iis)), sql_(std::move(sql)) {}

  Task<StoreInventory> inventory(std::string store) override { return certs_.inventory(std::move(store)); }
  Task<RemoveResult> remove(RemoveRequest request) override { return certs_.remove(std::move(request)); }
  Task<CertificateRequest> create_csr(CsrRequest request) override { return certs_.create_csr(std::move(request)); }
  Task<InstallIssuedResult> install_issued(InstallIssuedRequest request) override {
    return certs_.install_issued(std::move(request));
  }

  Task<AddCertificateResult> add(AddCertificateRequest request) override {
    std::vector<PostImportStep> steps = std::move(request.steps);
    request.steps.clear();
    const std::string store = request.store;
    WINCERT_CO_ASSIGN_OR_RETURN(AddCertificateResult result, co_await certs_.add(std::move(request)));
    const std::string kept = "certificate " + result.thumbprint + " stays in LocalMachine\\" + store + "; ";

    // The steps after the import, in order; the first failure ends the add (the import stays).
    for (const PostImportStep& step : steps) {
      if (const auto* iis_step = std::get_if<IisBindingStep>(&step)) {
        auto bound = co_await iis_->bind(iis_step->binding, result.thumbprint, store);
        if (!bound.ok()) co_return bound.error().context(kept + "binding it in IIS failed: ");
        IisBindingOutcome outcome{std::move(bound->binding), std::nullopt};
        const std::string& replaced = iis_step->replaced_thumbprint;
        if (!replaced.empty() && !iequals_ascii(replaced, result.thumbprint)) {
          auto cleanup = co_await iis_->remove_certificate_if_unused(store, replaced);
          if (!cleanup.ok())
            co_return cleanup.error().context(kept + "bound; removing the replaced certificate failed: ");
          outcome.replaced = ReplacedCertificate{replaced, cleanup->removed, cleanup->still_bound_sites};
        }
        result.steps.emplace_back(std::in_place_type<IisBindingOutcome>, std::move(outcome));
      } else if (const auto* sql_step = std::get_if<SqlBindingStep>(&step)) {
        auto bound = co_await sql_->bind(sql_step->binding, result.thumbprint, store);
        if (!bound.ok()) co_return bound.error().context(kept + "binding it to SQL Server failed: ");
        result.steps.emplace_back(std::in_place_type<SqlBindingOutcome>, SqlBindingOutcome{std::move(bound.value())});
      }
    }
    co_return result;
  }

 private:
  static bool iequals_ascii(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
      if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
  }

  LocalCertStore certs_;
  std::shared_ptr<IisBindings> iis_;
  std::shared_ptr<SqlBindings> sql_;
};

}  // namespace

std::shared_ptr<CertStore> make_local_cert_store(std::shared_ptr<IisBindings> iis, std::shared_ptr<SqlBindings> sql) {
  return std::make_shared<BindingCertStore>(std::move(iis), std::move(sql));
}

std::shared_ptr<IisBindings> make_local_iis_bindings(LocalPowerShellOptions options) {
  auto stack = std::make_shared<LocalIisStack>(std::move(options));
  return std::shared_ptr<IisBindings>(stack, &stack->bindings);  // shares ownership of the whole stack
}

std::shared_ptr<SqlBindings> make_local_sql_bindings(LocalSqlOptions options) {
  return std::make_shared<LocalSqlBindings>(std::move(options));
}

namespace {

// The services share one IIS stack and one SQL backend; the cert store binds through them.
class LocalHostSession final : public HostSession {
 public:
  LocalHostSession(LocalPowerShellOptions powershell_options, LocalSqlOptions sql_options)
      : iis_(make_local_iis_bindings(std::move(powershell_options))),
        sql_(make_local_sql_bindings(std::move(sql_options))),
        certs_(make_local_cert_store(iis_, sql_)) {}
  CertStore& certs() override { return *certs_; }
  IisBindings& iis() override { return *iis_; }
  SqlBindings& sql() override { return *sql_; }

 private:
  std::shared_ptr<IisBindings> iis_;
  std::shared_ptr<SqlBindings> sql_;
  std::shared_ptr<CertStore> certs_;
};

}  // namespace

std::shared_ptr<HostSession> make_local_host_session(LocalPowerShellOptions powershell, LocalSqlOptions sql) {
  return std::make_shared<LocalHostSession>(std::move(powershell), std::move(sql));
}

}  // namespace wincert::certstore::local
