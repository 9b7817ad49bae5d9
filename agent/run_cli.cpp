#include "agent/run_cli.hpp"

#ifndef _WIN32
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#endif

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>

#include "agent/agent_loop.hpp"
#include "agent/config.hpp"
#include "agent/local_sessions.hpp"
#include "agent/metrics/agent_metrics.hpp"
#include "agent/metrics/http_listener.hpp"
#include "agent/platform/process.hpp"
#include "agent/store_sessions.hpp"
#include "common/log.hpp"

namespace wincert::agent {

namespace net = boost::asio;

void notify_systemd(const std::string& state) {
#ifdef _WIN32
  (void)state;  // no systemd; the Windows service reports to the SCM instead (agent/windows_service.cpp)
#else
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::size_t len = std::strlen(path);
  if (len >= sizeof(addr.sun_path)) return;
  std::memcpy(addr.sun_path, path, len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  (void)::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr),
                 static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len));
  ::close(fd);
#endif
}

namespace {

// The log file can be opened for appending (before logging is switched to it).
bool open_log_file(const std::string& path) {
  std::ofstream probe(path, std::ios::app);
  return static_cast<bool>(probe);
}

int run_configured_agent(AgentConfig config, const RunHooks& hooks);

// The outbox gauges, read when /metrics is rendered (on the agent's thread, like the outbox's users).
void register_outbox_gauges(metrics::AgentMetrics& m, Agent& agent) {
  Outbox* outbox = &agent.outbox();
  m.registry().gauge_callback("wincert_outbox_depth", "Results waiting in the outbox for delivery to Command.",
                              [outbox] { return static_cast<double>(outbox->deliverable_count()); });
  m.registry().gauge_callback("wincert_outbox_oldest_age_seconds",
                              "Age of the oldest outbox entry (0 when the outbox is empty).", [outbox] {
                                const auto next = outbox->next_deliverable();
                                if (!next) return 0.0;
                                std::error_code ec;
                                const auto written = std::filesystem::last_write_time(next->file, ec);
                                if (ec) return 0.0;
                                const auto age = std::filesystem::file_time_type::clock::now() - written;
                                return std::max(0.0, std::chrono::duration<double>(age).count());
                              });
}

}  // namespace

int run_agent(const std::string& config_path, const RunHooks& hooks) {
  // First: the configuration brings secrets into memory (the Windows service enters here directly).
  const std::string core_dump_problem = process::disable_core_dumps();
  auto setup_error = [&hooks](const std::string& message) {
    if (hooks.setup_error) {
      hooks.setup_error(message);
    } else {
      std::fprintf(stderr, "wincert-agent run: %s\n", message.c_str());
    }
  };
  Result<AgentConfig> config = Error::internal("not loaded");
  try {
    config = load_agent_config(config_path);
  } catch (const std::exception& e) {  // a bug guard: a configuration problem is an exit 1, never a 255
    config = Error::invalid_argument("cannot read the configuration '" + config_path + "': " + e.what());
  }
  if (!config.ok()) {
    setup_error(config.error().message);
    if (!hooks.default_log_file.empty() && open_log_file(hooks.default_log_file)) {
      // The configuration names no usable LogFile; the front end's default log gets the reason too.
      init_logging("info", hooks.default_log_file);
      logger("agent")->error("cannot start: {}", config.error().message);
      logger("agent")->flush();
    }
    return kExitConfig;
  }
  if (config->log_file.empty()) config->log_file = hooks.default_log_file;
  LogOptions log_options;
  log_options.level = config->log_level;
  log_options.file = config->log_file;
  log_options.format = config->logging.format;
  log_options.max_file_bytes = config->logging.max_file_bytes;
  log_options.max_files = config->logging.max_files;
  log_options.group_readable = config->logging.group_readable;
  if (auto logging = init_logging(log_options); !logging.ok()) {
    setup_error(logging.error().message);
    return kExitConfig;
  }
  auto log = logger("agent");
  if (!core_dump_problem.empty())
    log->warn("cannot switch off core dumps ({}): a crash could write secrets to disk", core_dump_problem);
  try {
    return run_configured_agent(std::move(config.value()), hooks);
  } catch (const std::exception& e) {
    // A start-up failure (or a bug) always reaches the log file, not only stderr.
    log->error("internal error: {}", e.what());
    log->flush();
    return kExitInternal;
  }
}

namespace {

int run_configured_agent(AgentConfig config, const RunHooks& hooks) {
  auto log = logger("agent");
  if (!config.winrm.transport.connect.verify_peer)
    log->warn("TLS certificate verification towards WinRM hosts is OFF (WinRM.TlsVerify=false)");

  // Before the io_context: WinRM connections still inside coroutine frames that die with it report
  // their closing to the metrics.
  std::unique_ptr<metrics::AgentMetrics> agent_metrics;
  std::optional<net::ip::tcp::endpoint> metrics_address;
  if (!config.metrics.listen.empty()) {
    auto where = metrics::parse_listen_address(config.metrics.listen);
    if (!where.ok()) {
      log->error("Metrics.Listen: {}", where.error().message);
      log->flush();
      return kExitConfig;
    }
    metrics_address = *where;
    agent_metrics = std::make_unique<metrics::AgentMetrics>(config.metrics.max_host_labels);
  }
  net::io_context io(1);
  auto sessions = std::make_unique<WinrmSessionFactory>(config.winrm, agent_metrics.get());
  auto ssh_sessions = std::make_unique<SshSessionFactory>(config.ssh);
  // local targets: CryptoAPI (Windows build); 'WinRM Protocol' = ssh: PowerShell over SSH
  auto router = std::make_unique<StoreSessionRouter>(*sessions, ssh_sessions.get());
  AgentDeps deps;
  deps.sessions = router.get();
  deps.local_backend_available = local_backend_available();
  deps.metrics = agent_metrics.get();
  Result<std::unique_ptr<Agent>> created = Error::internal("not created");
  try {
    created = Agent::create(io.get_executor(), std::move(config), deps);
  } catch (const std::exception& e) {
    // Start-up never throws by design; if it does, it is as fatal as a bad configuration, and
    // restarting would fail the same way (exit 1: RestartPreventExitStatus).
    created = Error::internal(std::string("internal error while starting: ") + e.what());
  }
  if (!created.ok()) {
    log->error("cannot start: {}", created.error().message);
    log->flush();
    return kExitConfig;
  }
  std::unique_ptr<Agent> agent = std::move(created.value());

  std::unique_ptr<metrics::HttpListener> listener;
  if (agent_metrics) {
    register_outbox_gauges(*agent_metrics, *agent);
    metrics::ListenerHandlers handlers;
    handlers.metrics = [m = agent_metrics.get()] { return m->render(); };
    handlers.not_ready = [running = agent.get()] { return running->not_ready_reason(); };
    auto started = metrics::HttpListener::start(io.get_executor(), *metrics_address, std::move(handlers));
    if (!started.ok()) {
      log->error("{}", started.error().message);
      log->flush();
      return kExitConfig;
    }
    listener = std::move(started.value());
    const auto bound = listener->endpoint();
    const std::string host =
        bound.address().is_v6() ? "[" + bound.address().to_string() + "]" : bound.address().to_string();
    log->info("metrics: listening on http://{}:{}/metrics (also /healthz and /readyz)", host, bound.port());
  }

  net::signal_set signals(io);
  int signals_seen = 0;
  std::function<void(const boost::system::error_code&, int)> on_signal;
  on_signal = [&](const boost::system::error_code& ec, int number) {
    if (ec) return;
    if (++signals_seen > 1) {
      log->warn("second signal ({}): exiting now without waiting for jobs or the outbox", number);
      log->flush();
      std::_Exit(kExitOk);
    }
    log->info("received {}: finishing running jobs, then stopping", number == SIGTERM ? "SIGTERM" : "SIGINT");
    if (hooks.stopping) hooks.stopping();
    agent->request_stop();
    signals.async_wait(on_signal);
  };
  if (hooks.handle_signals) {
    signals.add(SIGINT);
    signals.add(SIGTERM);
    signals.async_wait(on_signal);
  }
  if (hooks.stop_handle) {
    // From another thread (the SCM's control handler): run on the agent's thread, once.
    Agent* running = agent.get();
    hooks.stop_handle([&io, running, log, stopping = hooks.stopping] {
      net::post(io, [running, log, stopping] {
        log->info("stop requested: finishing running jobs, then stopping");
        if (stopping) stopping();
        running->request_stop();
      });
    });
  }

  net::co_spawn(io, sessions->run_idle_reaper(), net::detached);
  net::steady_timer readiness_timer(io);
  if (hooks.readiness) {
    // Polled: readiness depends on the session, the outbox directory and stopping, which change in different
    // places; a few seconds of delay is fine for a status line.
    net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
          std::optional<std::optional<std::string>> last;
          for (;;) {
            auto now = agent->not_ready_reason();
            if (!last || *last != now) {
              hooks.readiness(now);
              last = std::move(now);
            }
            readiness_timer.expires_after(std::chrono::seconds(2));
            boost::system::error_code ec;
            co_await readiness_timer.async_wait(net::redirect_error(net::use_awaitable, ec));
            if (ec) co_return;
          }
        },
        net::detached);
  }
  int exit_code = kExitInternal;
  net::co_spawn(
      io,
      [&]() -> net::awaitable<int> {
        const int code = co_await agent->run();
        co_await sessions->shutdown();
        co_return code;
      },
      [&](std::exception_ptr error, int code) {
        if (error) {
          try {
            std::rethrow_exception(error);
          } catch (const std::exception& e) {
            log->error("internal error: {}", e.what());
          }
          code = kExitInternal;
        }
        exit_code = code;
        io.stop();
      });
  if (hooks.ready) hooks.ready();
  io.run();
  if (hooks.stop_handle) hooks.stop_handle({});  // the stop function refers to io and the agent: withdraw it

  if (!agent->quiescent()) {
    // A job overran the grace period: its coroutine is still suspended inside WinRM code; unwinding it
    // now could touch freed state, and the process is leaving anyway.
    log->flush();
    spdlog::shutdown();
    std::fflush(nullptr);
    std::_Exit(exit_code);
  }
  signals.cancel();
  readiness_timer.cancel();
  listener.reset();  // its handlers refer to the agent
  agent.reset();
  router.reset();
  sessions.reset();
  log->flush();
  return exit_code;
}

}  // namespace

int run_agent_command(const std::string& config_path) {
  RunHooks hooks;
  hooks.ready = [] { notify_systemd("READY=1"); };
  hooks.stopping = [] { notify_systemd("STOPPING=1"); };
  hooks.readiness = [](const std::optional<std::string>& not_ready) {
    notify_systemd(not_ready ? "STATUS=not ready: " + *not_ready
                             : std::string("STATUS=ready: registered with Command, outbox writable"));
  };
  const int code = run_agent(config_path, hooks);
  wait_for_ssh_sessions_to_end();
  return code;
}

void add_run_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("run", "run the agent: register with Command, run scheduled jobs, report results");
  auto path = std::make_shared<std::string>();
  cmd->add_option("--config", *path, "agent configuration (JSON, see config/agent.example.json)")->required();
  // Runs after parsing and ends the process, so the exit code does not pass through main's mapping.
  cmd->callback([path] {
    int code = 255;
    try {
      code = run_agent_command(*path);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "wincert-agent run: internal error: %s\n", e.what());
    }
    std::fflush(nullptr);
    std::exit(code);
  });
}

}  // namespace wincert::agent
