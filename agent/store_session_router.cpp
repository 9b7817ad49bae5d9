#include "agent/local_sessions.hpp"

namespace wincert::agent {

// Shared by both builds: WinRM, or PowerShell over SSH when the store asks for it.
boost::asio::awaitable<Result<jobs::HostSessionHandle>> StoreSessionRouter::open_remote(const jobs::Target& target) {
  if (target.remote.transport == jobs::RemoteTransport::kSsh) {
    if (ssh_ == nullptr) {
      co_return Error::failed_precondition("the store on " + target.machine +
                                           " uses PowerShell over SSH ('WinRM Protocol' = ssh), which this command "
                                           "does not offer");
    }
    co_return co_await ssh_->open(target);
  }
  co_return co_await remote_.open(target);
}

}  // namespace wincert::agent
