// Store sessions over WinRM: jobs::StoreSessionFactory for remote targets. A session is one
// WsmanTransport (keep-alive HTTP(S) connection, authenticated once) plus, by ExecutionMode, a PowerShell
// runspace pool (psrp, the default: the module loaded once per runspace, two HTTP exchanges per warm operation;
// the store's JEAEndpointName selects the session configuration) or a WinRS shell (one powershell.exe per
// operation), with certstore's remote host session (every certstore service of the host) on top.
//
// Warm reuse: when a job's host session handle is released, its connection and shell go back to an idle
// pool keyed by endpoint, scheme, user (and a fingerprint of the password, so rotated credentials
// never ride an old connection); the next job for the same key takes them without a new TCP/TLS
// handshake, authentication, shell creation or (psrp) runspace pool opening and module load. Idle entries are closed
// (shell deleted) once idle longer than WinrmSettings::idle_timeout: lazily on the next open(), by close_idle()/the
// reaper, or by shutdown().
//
// Concurrency: a connection is leased to ONE job at a time. Concurrent jobs on the same host each get
// their own connection and shell (a second one is opened when none is idle), so commands of different
// jobs never interleave on one shell; the scheduler's per-host limit bounds how many there are. The
// factory itself is thread-safe; a connection is only handed to a job running on the executor it was
// created on.
//
// Opening is lazy: open() builds the transport and the WinRS session but does not touch the network;
// the first script of the job connects, authenticates and creates the shell, so a refused connection
// or a bad password surfaces as that script's error (transient or permanent, naming host:port).
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "agent/winrm_settings.hpp"
#include "common/result.hpp"
#include "jobs/handler.hpp"
#include "winrm/observer.hpp"

namespace wincert::agent {

struct SessionPoolStats {
  std::size_t idle = 0;           // connections waiting in the pool now
  std::size_t leased = 0;         // connections in use by jobs now
  std::uint64_t opened = 0;       // connections created so far
  std::uint64_t reused = 0;       // open() calls served from the pool
  std::uint64_t closed_idle = 0;  // connections closed after their idle timeout or at shutdown
};

class WinrmSessionFactory final : public jobs::StoreSessionFactory {
 public:
  // `observer` is told about connections, shells and authentication handshakes (the agent's metrics); may be null,
  // must outlive the factory.
  explicit WinrmSessionFactory(WinrmSettings settings = {}, winrm::WinrmObserver* observer = nullptr);
  ~WinrmSessionFactory() override;
  WinrmSessionFactory(const WinrmSessionFactory&) = delete;
  WinrmSessionFactory& operator=(const WinrmSessionFactory&) = delete;

  // The host session of a remote target (the connection is leased until the returned handle and
  // every copy of it are released). A local target is refused: the CryptoAPI path exists only in the
  // Windows build, and jobs::resolve_target already refuses it there unless the build has it.
  boost::asio::awaitable<Result<jobs::HostSessionHandle>> open(const jobs::Target& target) override;

  // Closes (deletes the shell of) every idle connection unused for longer than idle_timeout.
  boost::asio::awaitable<void> close_idle();
  // Runs close_idle() every idle_timeout/2 until shutdown(); co_spawn it from a long-running agent.
  boost::asio::awaitable<void> run_idle_reaper();
  // Closes every idle connection and stops the reaper; connections still leased are closed when their
  // job releases them. open() keeps working afterwards but nothing is pooled any more.
  boost::asio::awaitable<void> shutdown();

  SessionPoolStats stats() const;
  const WinrmSettings& settings() const;

  struct Pool;  // shared with the leases, which may outlive a job's coroutine frame

 private:
  std::shared_ptr<Pool> pool_;
};

}  // namespace wincert::agent
