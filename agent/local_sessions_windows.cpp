#include "agent/local_sessions.hpp"

#include "certstore/local/local_bindings.hpp"

namespace wincert::agent {

bool local_backend_available() { return true; }

// One local store for every local job: its worker thread serialises CryptoAPI/CNG calls on this machine's
// stores, which is what the stores need anyway (Overwrite checks, key cleanup).
// IIS goes through a local powershell.exe running the same scripts as the remote path; SQL Server through
// the registry, the key file's ACL and the SCM; an add with a binding does both steps (local_bindings.hpp).
struct StoreSessionRouter::Local {
  std::shared_ptr<certstore::IisBindings> iis = certstore::local::make_local_iis_bindings();
  std::shared_ptr<certstore::SqlBindings> sql = certstore::local::make_local_sql_bindings();
  std::shared_ptr<certstore::CertStore> certs = certstore::local::make_local_cert_store(iis, sql);
};

StoreSessionRouter::StoreSessionRouter(jobs::StoreSessionFactory& remote)
    : remote_(remote), local_(std::make_unique<Local>()) {}
StoreSessionRouter::~StoreSessionRouter() = default;

boost::asio::awaitable<Result<jobs::StoreSession>> StoreSessionRouter::open(const jobs::Target& target) {
  if (target.local) co_return jobs::StoreSession{local_->certs, local_->iis, local_->sql};
  co_return co_await remote_.open(target);
}

}  // namespace wincert::agent
