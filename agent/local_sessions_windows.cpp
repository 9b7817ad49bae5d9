#include "agent/local_sessions.hpp"

#include "certstore/local/local_bindings.hpp"

namespace wincert::agent {

bool local_backend_available() { return true; }

// One local host session for every local job: its worker thread serialises CryptoAPI/CNG calls on this
// machine's stores, which is what the stores need anyway (Overwrite checks, key cleanup). Which services
// it has, and how an add runs its post-import steps, is certstore's business (local_bindings.hpp).
struct StoreSessionRouter::Local {
  std::shared_ptr<certstore::HostSession> host = certstore::local::make_local_host_session();
};

StoreSessionRouter::StoreSessionRouter(jobs::StoreSessionFactory& remote, jobs::StoreSessionFactory* ssh)
    : remote_(remote), ssh_(ssh), local_(std::make_unique<Local>()) {}
StoreSessionRouter::~StoreSessionRouter() = default;

boost::asio::awaitable<Result<jobs::HostSessionHandle>> StoreSessionRouter::open(const jobs::Target& target) {
  if (target.local) co_return jobs::HostSessionHandle(local_->host);
  co_return co_await open_remote(target);
}

}  // namespace wincert::agent
