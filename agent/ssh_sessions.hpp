// Store sessions over PowerShell remoting on SSH ('WinRM Protocol' = ssh): per job, an SSH connection to the
// host's `powershell` subsystem, a runspace pool on it, the WincertOps module loaded once (PsrpScriptRunner)
// and certstore's remote host session on top. The host key is always checked against the configured
// known-hosts file; an unknown key is trusted (and recorded) only when TrustOnFirstUse is set.
//
// Not pooled yet: each job opens its own connection and pool, closed when the job releases the session.
// Linux only (libssh); the Windows build refuses such stores clearly.
#pragma once

#include <chrono>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "common/result.hpp"
#include "jobs/handler.hpp"

namespace wincert::agent {

struct SshSettings {
  std::string known_hosts_file;     // Ssh.KnownHostsFile: required for any ssh store
  bool trust_on_first_use = false;  // Ssh.TrustOnFirstUse
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(30)};    // Ssh.ConnectTimeoutSeconds
  std::chrono::milliseconds operation_timeout{std::chrono::minutes(30)};  // each op (WinRM.CommandTimeoutSeconds)
};

// Waits (bounded) for every SSH session the process opened to finish its clean disconnect. A process that ran
// ssh stores calls it once its io_context is gone, before exiting, so that no connection is cut off mid-way.
void wait_for_ssh_sessions_to_end(std::chrono::milliseconds timeout = std::chrono::seconds(10));

class SshSessionFactory final : public jobs::StoreSessionFactory {
 public:
  explicit SshSessionFactory(SshSettings settings) : settings_(std::move(settings)) {}
  // Connects now (unlike the lazy WinRM sessions): a refused key or host key fails here, naming the host.
  boost::asio::awaitable<Result<jobs::HostSessionHandle>> open(const jobs::Target& target) override;
  const SshSettings& settings() const { return settings_; }

 private:
  SshSettings settings_;
};

}  // namespace wincert::agent
