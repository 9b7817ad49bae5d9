#include "agent/local_sessions.hpp"

namespace wincert::agent {

bool local_backend_available() { return false; }

struct StoreSessionRouter::Local {};

StoreSessionRouter::StoreSessionRouter(jobs::StoreSessionFactory& remote, jobs::StoreSessionFactory* ssh)
    : remote_(remote), ssh_(ssh) {}
StoreSessionRouter::~StoreSessionRouter() = default;

boost::asio::awaitable<Result<jobs::HostSessionHandle>> StoreSessionRouter::open(const jobs::Target& target) {
  if (target.local) {
    co_return Error::failed_precondition(
        "store on '" + target.machine +
        "' asks for the local CryptoAPI path, which only the Windows build of the agent has");
  }
  co_return co_await open_remote(target);
}

}  // namespace wincert::agent
