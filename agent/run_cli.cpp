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
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <memory>

#include "agent/agent_loop.hpp"
#include "agent/config.hpp"
#include "agent/local_sessions.hpp"
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

WinrmDefaults session_defaults(const AgentConfig& config) {
  WinrmDefaults d;
  d.connect_timeout = config.winrm.connect_timeout;
  d.operation_timeout = config.winrm.operation_timeout;
  d.read_timeout = config.winrm.read_timeout;
  d.command_timeout = config.winrm.command_timeout;
  d.idle_timeout = config.winrm.idle_timeout;
  d.ca_file = config.winrm.ca_file;
  d.verify_peer = config.winrm.tls_verify;
  d.client_certificate_file = config.winrm.client_cert;
  d.client_key_file = config.winrm.client_key;
  return d;
}

}  // namespace

int run_agent(const std::string& config_path, const RunHooks& hooks) {
  auto setup_error = [&hooks](const std::string& message) {
    if (hooks.setup_error) {
      hooks.setup_error(message);
    } else {
      std::fprintf(stderr, "wincert-agent run: %s\n", message.c_str());
    }
  };
  auto config = load_agent_config(config_path);
  if (!config.ok()) {
    setup_error(config.error().message);
    return kExitConfig;
  }
  if (config->log_file.empty()) config->log_file = hooks.default_log_file;
  if (!config->log_file.empty()) {
    std::ofstream probe(config->log_file, std::ios::app);
    if (!probe) {
      setup_error("LogFile: cannot open '" + config->log_file + "' for writing");
      return kExitConfig;
    }
  }
  init_logging(config->log_level, config->log_file);
  auto log = logger("agent");
  if (!config->winrm.tls_verify)
    log->warn("TLS certificate verification towards WinRM hosts is OFF (WinRM.TlsVerify=false)");

  net::io_context io(1);
  auto sessions = std::make_unique<WinrmSessionFactory>(session_defaults(*config));
  auto router = std::make_unique<StoreSessionRouter>(*sessions);  // local targets: CryptoAPI (Windows build)
  AgentDeps deps;
  deps.sessions = router.get();
  deps.local_backend_available = local_backend_available();
  auto created = Agent::create(io.get_executor(), std::move(config.value()), deps);
  if (!created.ok()) {
    log->error("{}", created.error().message);
    return kExitConfig;
  }
  std::unique_ptr<Agent> agent = std::move(created.value());

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
  int exit_code = 255;
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
          code = 255;
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
  agent.reset();
  router.reset();
  sessions.reset();
  log->flush();
  return exit_code;
}

int run_agent_command(const std::string& config_path) {
  RunHooks hooks;
  hooks.ready = [] { notify_systemd("READY=1"); };
  hooks.stopping = [] { notify_systemd("STOPPING=1"); };
  return run_agent(config_path, hooks);
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
