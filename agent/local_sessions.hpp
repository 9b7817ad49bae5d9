// Routes each job's store session to the backend its target needs: WinRM for remote hosts, PowerShell over
// SSH for stores whose 'WinRM Protocol' is ssh, and in the
// Windows build the local CryptoAPI/CNG backend (certstore/local) for "host|LocalMachine" / "localhost"
// stores (agent mode). The Linux build has no local backend: jobs::resolve_target refuses such targets
// first, with a Failure that says so, because local_backend_available() is false there.
#pragma once

#include <memory>

#include "jobs/handler.hpp"

namespace wincert::agent {

// True in the Windows build (selected by CMake: local_sessions_windows.cpp / local_sessions_posix.cpp).
bool local_backend_available();

class StoreSessionRouter final : public jobs::StoreSessionFactory {
 public:
  // remote: the WinRM session factory; ssh: the one for PowerShell over SSH (none: such stores are refused).
  // Both outlive the router.
  explicit StoreSessionRouter(jobs::StoreSessionFactory& remote, jobs::StoreSessionFactory* ssh = nullptr);
  ~StoreSessionRouter() override;
  StoreSessionRouter(const StoreSessionRouter&) = delete;
  StoreSessionRouter& operator=(const StoreSessionRouter&) = delete;

  boost::asio::awaitable<Result<jobs::HostSessionHandle>> open(const jobs::Target& target) override;

 private:
  struct Local;  // the local backend's objects (Windows build only)
  boost::asio::awaitable<Result<jobs::HostSessionHandle>> open_remote(const jobs::Target& target);

  jobs::StoreSessionFactory& remote_;
  jobs::StoreSessionFactory* ssh_;
  std::unique_ptr<Local> local_;
};

}  // namespace wincert::agent
