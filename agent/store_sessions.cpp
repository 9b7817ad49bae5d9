#include "agent/store_sessions.hpp"

#include <openssl/evp.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <mutex>
#include <utility>
#include <vector>

#include "agent/winrm_auth_factory.hpp"
#include "agent/winrm_script_runner.hpp"
#include "agent/wsman_psrp_runner.hpp"
#include "certstore/remote/remote_backend.hpp"
#include "common/encoding.hpp"
#include "common/log.hpp"
#include "winrm/transport.hpp"
#include "winrm/winrs.hpp"

namespace wincert::agent {

namespace net = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// Host-side idle timeout of our shells: longer than we keep them idle, so the host only reaps a
// shell we lost track of (agent killed), never one the pool still holds.
constexpr std::chrono::minutes kHostIdleMargin{5};

// One transport + either a WinRS shell or a PowerShell runspace pool (ExecutionMode) + the host session (every
// remote certstore service) on top. Members are declared in dependency order: each one refers to the ones above
// it, and they are destroyed bottom-up.
struct Connection {
  std::string key;
  std::string url;
  net::any_io_executor executor;
  std::unique_ptr<winrm::WsmanTransport> transport;
  std::unique_ptr<winrm::WinrsSession> shell;       // winrs mode
  std::unique_ptr<WinrmScriptRunner> winrs_runner;  // winrs mode
  std::unique_ptr<WsmanPsrpRunner> psrp_runner;     // psrp mode
  certstore::remote::RemoteHostSession host_session;
  Clock::time_point idle_since{};

  // WinRS: a shell, created by the first command.
  Connection(std::string key_, std::string url_, net::any_io_executor executor_,
             std::unique_ptr<winrm::WsmanTransport> transport_, winrm::SessionOptions options, std::string host)
      : key(std::move(key_)),
        url(std::move(url_)),
        executor(std::move(executor_)),
        transport(std::move(transport_)),
        shell(std::make_unique<winrm::WinrsSession>(*transport, std::move(options))),
        winrs_runner(std::make_unique<WinrmScriptRunner>(*shell, std::move(host))),
        host_session(*winrs_runner) {}

  // PowerShell remoting: a runspace pool, opened by the first operation.
  Connection(std::string key_, std::string url_, net::any_io_executor executor_,
             std::unique_ptr<winrm::WsmanTransport> transport_, winrm::psrp::WsmanRunspacePoolOptions pool_options,
             PsrpRunnerOptions runner_options, std::string host)
      : key(std::move(key_)),
        url(std::move(url_)),
        executor(std::move(executor_)),
        transport(std::move(transport_)),
        psrp_runner(
            std::make_unique<WsmanPsrpRunner>(*transport, std::move(pool_options), runner_options, std::move(host))),
        host_session(*psrp_runner) {}

  bool interrupted() const { return shell ? winrs_runner->interrupted() : psrp_runner->interrupted(); }
};

// Deletes the shell (or runspace pool) on the host (bounded by the transport's timeouts), then drops the connection.
net::awaitable<void> close_connection(std::unique_ptr<Connection> connection) {
  auto closed = connection->shell ? co_await connection->shell->close() : co_await connection->psrp_runner->close();
  if (!closed.ok())
    logger("agent")->debug("closing the WinRM shell on {}: {}", connection->url, closed.error().message);
}

// SHA-256 of the password, so a changed password gets a fresh connection. Never logged.
std::string password_fingerprint(const Secret& password) {
  if (password.empty()) return {};
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  const std::string& text = password.reveal();
  if (EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr) != 1) return "?";
  return hex_lower(std::string_view(reinterpret_cast<const char*>(digest), length));
}

std::string pool_key(const jobs::RemoteTarget& remote, jobs::ExecutionMode mode) {
  return std::string(jobs::auth_scheme_name(remote.auth)) + "|" + remote.endpoint_url + "|" + remote.username + "|" +
         (remote.spn_with_port ? "spn:port" : "spn") + "|" + (remote.allow_unencrypted ? "plain-ok" : "") + "|" +
         std::string(jobs::execution_mode_name(mode)) + ":" + remote.configuration_name + "|" +
         password_fingerprint(remote.password);
}

std::string who(const jobs::RemoteTarget& remote) {
  const std::string user = remote.uses_agent_identity() ? "the agent's own identity" : remote.username;
  return std::string(jobs::auth_scheme_name(remote.auth)) + " as " + user;
}

}  // namespace

struct WinrmSessionFactory::Pool : std::enable_shared_from_this<WinrmSessionFactory::Pool> {
  WinrmSettings defaults;
  winrm::WinrmObserver* observer = nullptr;
  mutable std::mutex mutex;
  std::vector<std::unique_ptr<Connection>> idle;  // oldest first
  std::size_t leased = 0;
  bool shut_down = false;
  SessionPoolStats counters;
  std::weak_ptr<net::steady_timer> reaper_timer;

  Pool(WinrmSettings d, winrm::WinrmObserver* o) : defaults(std::move(d)), observer(o) {}

  // Takes the idle connections past their idle timeout (all of them when `all`). Caller holds the lock.
  std::vector<std::unique_ptr<Connection>> take_expired_locked(bool all) {
    std::vector<std::unique_ptr<Connection>> expired;
    const auto now = Clock::now();
    for (auto it = idle.begin(); it != idle.end();) {
      if (all || now - (*it)->idle_since >= defaults.idle_timeout) {
        expired.push_back(std::move(*it));
        it = idle.erase(it);
      } else {
        ++it;
      }
    }
    counters.closed_idle += expired.size();
    return expired;
  }

  // The most recently used idle connection for key on this executor, if any.
  std::unique_ptr<Connection> take_idle_locked(const std::string& key, const net::any_io_executor& executor) {
    for (auto it = idle.rbegin(); it != idle.rend(); ++it) {
      if ((*it)->key == key && (*it)->executor == executor) {
        auto connection = std::move(*it);
        idle.erase(std::next(it).base());
        return connection;
      }
    }
    return nullptr;
  }

  // A job released its session: keep the connection warm, or close it when it cannot be reused.
  void release(std::unique_ptr<Connection> connection) {
    std::unique_lock lock(mutex);
    if (leased > 0) --leased;
    if (shut_down || connection->interrupted()) {
      // After shutdown() the io_context may be on its way out: drop the TCP connection without
      // another round trip (the host's shell idle timeout reaps the shell). An interrupted command
      // leaves the shell in an unknown state: never hand it to another job.
      lock.unlock();
      connection.reset();
      return;
    }
    const auto same_key =
        std::count_if(idle.begin(), idle.end(), [&](const auto& c) { return c->key == connection->key; });
    if (static_cast<std::size_t>(same_key) >= defaults.max_idle_per_key) {
      lock.unlock();
      auto executor = connection->executor;
      net::co_spawn(executor, close_connection(std::move(connection)), net::detached);
      return;
    }
    connection->idle_since = Clock::now();
    idle.push_back(std::move(connection));
  }
};

namespace {

// Holds a leased connection for as long as the job's host session handle lives.
struct Lease {
  Lease(std::shared_ptr<WinrmSessionFactory::Pool> pool_, std::unique_ptr<Connection> connection_)
      : pool(std::move(pool_)), connection(std::move(connection_)) {}
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease() {
    if (connection) pool->release(std::move(connection));
  }

  std::shared_ptr<WinrmSessionFactory::Pool> pool;
  std::unique_ptr<Connection> connection;
};

net::awaitable<void> close_all(std::vector<std::unique_ptr<Connection>> connections) {
  for (auto& connection : connections) {
    // Each connection's I/O runs on the executor it was made for.
    auto executor = connection->executor;
    co_await net::co_spawn(executor, close_connection(std::move(connection)), net::use_awaitable);
  }
}

void close_all_detached(std::vector<std::unique_ptr<Connection>> connections) {
  for (auto& connection : connections) {
    auto executor = connection->executor;
    net::co_spawn(executor, close_connection(std::move(connection)), net::detached);
  }
}

}  // namespace

WinrmSessionFactory::WinrmSessionFactory(WinrmSettings settings, winrm::WinrmObserver* observer)
    : pool_(std::make_shared<Pool>(std::move(settings), observer)) {
  if (!pool_->defaults.transport.connect.verify_peer) {
    logger("agent")->warn("TLS certificate verification of WinRM hosts is turned OFF (insecure-skip-verify)");
  }
}

WinrmSessionFactory::~WinrmSessionFactory() {
  // Idle connections are dropped without a round trip; leases still out keep the pool alive and
  // close their connection when released.
  std::lock_guard lock(pool_->mutex);
  pool_->shut_down = true;
  pool_->idle.clear();
}

const WinrmSettings& WinrmSessionFactory::settings() const { return pool_->defaults; }

SessionPoolStats WinrmSessionFactory::stats() const {
  std::lock_guard lock(pool_->mutex);
  SessionPoolStats s = pool_->counters;
  s.idle = pool_->idle.size();
  s.leased = pool_->leased;
  return s;
}

net::awaitable<Result<jobs::HostSessionHandle>> WinrmSessionFactory::open(const jobs::Target& target) {
  if (target.local) {
    co_return Error::failed_precondition(
        "ClientMachine '" + target.machine +
        "' asks for the local CryptoAPI path, which needs the Windows build of wincert-agent; "
        "this build manages stores over WinRM only");
  }
  const jobs::RemoteTarget& remote = target.remote;
  const WinrmSettings& defaults = pool_->defaults;
  // A JEA endpoint is reached by PowerShell remoting only (jobs::resolve_target refuses winrs with one).
  const jobs::ExecutionMode mode = !remote.configuration_name.empty()
                                       ? jobs::ExecutionMode::kPsrp
                                       : remote.execution_mode.value_or(defaults.execution_mode);
  const std::string key = pool_key(remote, mode);
  auto executor = co_await net::this_coro::executor;

  std::unique_ptr<Connection> connection;
  std::vector<std::unique_ptr<Connection>> expired;
  {
    std::lock_guard lock(pool_->mutex);
    expired = pool_->take_expired_locked(false);
    connection = pool_->take_idle_locked(key, executor);
    if (connection) {
      ++pool_->counters.reused;
      ++pool_->leased;
    }
  }
  close_all_detached(std::move(expired));  // in the background: this job need not wait for it
  if (connection) {
    logger("agent")->debug("reusing the WinRM session to {} ({})", remote.endpoint_url, who(remote));
  } else {
    HttpAuthSpec spec;
    spec.scheme = remote.auth;
    spec.user = remote.username;
    spec.password = remote.password;
    spec.spn_with_port = remote.spn_with_port;
    spec.allow_unencrypted = remote.allow_unencrypted;
    if (remote.auth == jobs::AuthScheme::kCertificate &&
        (defaults.transport.client_certificate_file.empty() || defaults.transport.client_key_file.empty())) {
      co_return Error::failed_precondition(
          "the store's WinRM Authentication is certificate, but the agent has no client certificate and key "
          "configured (WinRM defaults: client certificate / key files, --client-cert/--client-key)");
    }
    winrm::TransportOptions transport_options = transport_options_for(defaults.transport, remote.auth);
    transport_options.observer = pool_->observer;
    winrm::Endpoint endpoint{remote.https, remote.host, remote.port, "/wsman"};
    auto transport = make_transport(executor, std::move(endpoint), spec, std::move(transport_options));
    if (!transport.ok()) {
      co_return transport.error().context("cannot set up WinRM to " + remote.endpoint_url + " (" + who(remote) + "): ");
    }
    const auto host_idle_timeout =
        std::chrono::duration_cast<std::chrono::seconds>(defaults.idle_timeout) + kHostIdleMargin;
    if (mode == jobs::ExecutionMode::kPsrp) {
      winrm::psrp::WsmanRunspacePoolOptions pool_options;
      if (!remote.configuration_name.empty()) pool_options.configuration_name = remote.configuration_name;
      pool_options.operation_timeout = defaults.session.operation_timeout;
      pool_options.max_envelope_size = defaults.session.max_envelope_size;
      pool_options.idle_timeout = host_idle_timeout;
      pool_options.locale = defaults.session.locale;
      PsrpRunnerOptions runner_options;
      runner_options.op_timeout = defaults.session.command_deadline;
      runner_options.load_module = remote.configuration_name.empty();  // a JEA endpoint has it installed
      connection = std::make_unique<Connection>(key, remote.endpoint_url, executor, std::move(transport.value()),
                                                std::move(pool_options), runner_options, target.machine);
    } else {
      winrm::SessionOptions options = defaults.session;
      options.shell.idle_timeout = host_idle_timeout;
      connection = std::make_unique<Connection>(key, remote.endpoint_url, executor, std::move(transport.value()),
                                                std::move(options), target.machine);
    }
    {
      std::lock_guard lock(pool_->mutex);
      ++pool_->counters.opened;
      ++pool_->leased;
    }
    logger("agent")->debug("new WinRM session to {} ({}, {})", remote.endpoint_url, who(remote),
                           mode == jobs::ExecutionMode::kPsrp
                               ? "PowerShell remoting to " + (remote.configuration_name.empty()
                                                                  ? std::string(winrm::psrp::kDefaultConfigurationName)
                                                                  : remote.configuration_name)
                               : std::string("WinRS"));
  }

  auto lease = std::make_shared<Lease>(pool_, std::move(connection));
  certstore::HostSession& host_session = lease->connection->host_session;
  // An aliasing pointer: the handle shares ownership of the lease.
  co_return jobs::HostSessionHandle(std::shared_ptr<certstore::HostSession>(std::move(lease), &host_session));
}

net::awaitable<void> WinrmSessionFactory::close_idle() {
  std::vector<std::unique_ptr<Connection>> expired;
  {
    std::lock_guard lock(pool_->mutex);
    expired = pool_->take_expired_locked(false);
  }
  co_await close_all(std::move(expired));
}

net::awaitable<void> WinrmSessionFactory::run_idle_reaper() {
  auto timer = std::make_shared<net::steady_timer>(co_await net::this_coro::executor);
  {
    std::lock_guard lock(pool_->mutex);
    if (pool_->shut_down) co_return;
    pool_->reaper_timer = timer;
  }
  const auto period = std::max<std::chrono::milliseconds>(pool_->defaults.idle_timeout / 2, std::chrono::seconds(1));
  while (true) {
    timer->expires_after(period);
    boost::system::error_code ec;
    co_await timer->async_wait(net::redirect_error(net::use_awaitable, ec));
    {
      std::lock_guard lock(pool_->mutex);
      if (pool_->shut_down) co_return;
    }
    co_await close_idle();
  }
}

net::awaitable<void> WinrmSessionFactory::shutdown() {
  std::vector<std::unique_ptr<Connection>> all;
  std::shared_ptr<net::steady_timer> timer;
  {
    std::lock_guard lock(pool_->mutex);
    pool_->shut_down = true;
    all = pool_->take_expired_locked(true);
    timer = pool_->reaper_timer.lock();
  }
  if (timer) net::post(timer->get_executor(), [timer] { timer->cancel(); });
  co_await close_all(std::move(all));
}

}  // namespace wincert::agent
