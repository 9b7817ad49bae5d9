#include "agent/ssh_sessions.hpp"

#include <memory>

#include "agent/psrp_script_runner.hpp"
#include "certstore/remote/remote_backend.hpp"
#include "common/encoding.hpp"
#include "winrm/psrp/runspace_pool.hpp"
#ifdef WINCERT_HAVE_LIBSSH
#include "winrm/psrp/ssh_channel.hpp"
#endif

namespace wincert::agent {

namespace psrp = winrm::psrp;

namespace {

// One job's host session: the pool (owning the SSH channel), the runner and the services on top, destroyed
// bottom-up. Dropping the pool stops its reader and closes the connection.
struct SshHostSession final : certstore::HostSession {
  std::unique_ptr<psrp::OutOfProcRunspacePool> pool;
  std::unique_ptr<PsrpScriptRunner> runner;
  std::unique_ptr<certstore::remote::RemoteHostSession> services;
  certstore::CertStore& certs() override { return services->certs(); }
  certstore::IisBindings& iis() override { return services->iis(); }
  certstore::SqlBindings& sql() override { return services->sql(); }
};

}  // namespace

void wait_for_ssh_sessions_to_end(std::chrono::milliseconds timeout) {
#ifdef WINCERT_HAVE_LIBSSH
  (void)psrp::SshChannel::wait_for_sessions_to_end(timeout);
#else
  (void)timeout;
#endif
}

boost::asio::awaitable<Result<jobs::HostSessionHandle>> SshSessionFactory::open(const jobs::Target& target) {
  const jobs::RemoteTarget& remote = target.remote;
  const std::string where = remote.username + "@" + remote.endpoint_url;
#ifdef WINCERT_HAVE_LIBSSH
  if (settings_.known_hosts_file.empty()) {
    co_return Error::failed_precondition(
        "the store on " + target.machine +
        " uses PowerShell over SSH ('WinRM Protocol' = ssh), and the agent has no known-hosts file to check the "
        "host key against: set Ssh.KnownHostsFile in the agent configuration (and Ssh.TrustOnFirstUse to accept "
        "new hosts once)");
  }
  psrp::SshChannelOptions options;
  options.target.host = remote.host;
  options.target.port = remote.port;
  options.user = remote.username;
  // ServerPassword holds either a private key (PEM or OpenSSH) or the account's password.
  const std::string_view secret = trim(remote.password.reveal());
  if (secret.starts_with("-----BEGIN")) {
    options.private_key = remote.password;
  } else {
    options.password = remote.password;
  }
  options.known_hosts_file = settings_.known_hosts_file;
  options.trust_on_first_use = settings_.trust_on_first_use;
  options.connect_timeout = settings_.connect_timeout;
  auto channel = co_await psrp::SshChannel::connect(std::move(options));
  if (!channel.ok()) co_return std::move(channel).error().context("PowerShell over SSH to " + where + ": ");
  psrp::RunspacePoolOptions pool_options;
  pool_options.open_timeout = settings_.connect_timeout;
  auto pool = co_await psrp::OutOfProcRunspacePool::open(std::move(channel).value(), pool_options);
  if (!pool.ok()) co_return std::move(pool).error().context("PowerShell over SSH to " + where + ": ");

  auto session = std::make_shared<SshHostSession>();
  session->pool = std::move(pool).value();
  PsrpRunnerOptions runner_options;
  runner_options.op_timeout = settings_.operation_timeout;
  runner_options.load_first = true;  // a pool just opened, of one runspace: it cannot have the module yet
  session->runner = std::make_unique<PsrpScriptRunner>(*session->pool, target.machine, runner_options);
  session->services = std::make_unique<certstore::remote::RemoteHostSession>(*session->runner);
  co_return jobs::HostSessionHandle(std::move(session));
#else
  co_return Error::failed_precondition("the store on " + target.machine + " (" + where +
                                       ") uses PowerShell over SSH, which this build of wincert-agent lacks (no "
                                       "libssh); use 'WinRM Protocol' http or https");
#endif
}

}  // namespace wincert::agent
