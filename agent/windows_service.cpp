#include "agent/windows_service.hpp"

#include <windows.h>

#include <spdlog/sinks/win_eventlog_sink.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent_loop.hpp"
#include "agent/config.hpp"
#include "agent/run_cli.hpp"
#include "common/log.hpp"
#include "common/win32_acl.hpp"
#include "common/win32_text.hpp"

namespace wincert::agent {

namespace {

namespace fs = std::filesystem;

constexpr int kExitFailed = 1;

// ---- Service Control Manager handles ------------------------------------------------------------------

struct ScHandle {
  SC_HANDLE handle = nullptr;
  ScHandle() = default;
  explicit ScHandle(SC_HANDLE h) : handle(h) {}
  ScHandle(const ScHandle&) = delete;
  ScHandle& operator=(const ScHandle&) = delete;
  ~ScHandle() {
    if (handle != nullptr) ::CloseServiceHandle(handle);
  }
  explicit operator bool() const { return handle != nullptr; }
};

void say(const std::string& text) { std::printf("%s\n", text.c_str()); }
int fail(const std::string& text) {
  std::fprintf(stderr, "wincert-agent service: %s\n", text.c_str());
  return kExitFailed;
}

// What to do about a failed SCM call, beyond the code's own text.
std::string scm_hint(DWORD code, const std::string& name) {
  switch (code) {
    case ERROR_ACCESS_DENIED:
      return " (run it from an elevated prompt: managing services needs Administrator rights)";
    case ERROR_SERVICE_DOES_NOT_EXIST:
      return " (no service '" + name + "' is installed: `wincert-agent service install`)";
    case ERROR_SERVICE_EXISTS:
      return " (already installed: `wincert-agent service uninstall` first to change its settings)";
    case ERROR_SERVICE_MARKED_FOR_DELETE:
      return " (close the Services console and any handle to the service, then try again)";
    default:
      return "";
  }
}

int scm_failure(const std::string& what, const std::string& name) {
  const DWORD code = ::GetLastError();
  return fail(what + ": " + error_text(code) + scm_hint(code, name));
}

ScHandle open_manager(DWORD access) { return ScHandle(::OpenSCManagerW(nullptr, nullptr, access)); }

std::string state_name(DWORD state) {
  switch (state) {
    case SERVICE_STOPPED:
      return "stopped";
    case SERVICE_START_PENDING:
      return "starting";
    case SERVICE_STOP_PENDING:
      return "stopping";
    case SERVICE_RUNNING:
      return "running";
    case SERVICE_CONTINUE_PENDING:
      return "continuing";
    case SERVICE_PAUSE_PENDING:
      return "pausing";
    case SERVICE_PAUSED:
      return "paused";
    default:
      return "in state " + std::to_string(state);
  }
}

bool query(SC_HANDLE service, SERVICE_STATUS_PROCESS& status) {
  DWORD needed = 0;
  return ::QueryServiceStatusEx(service, SC_STATUS_PROCESS_INFO, reinterpret_cast<LPBYTE>(&status), sizeof status,
                                &needed) != 0;
}

// Polls until the service reaches `wanted` (or stops, or the timeout passes); the final status in `status`.
bool wait_for_state(SC_HANDLE service, DWORD wanted, std::chrono::seconds timeout, SERVICE_STATUS_PROCESS& status) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (query(service, status)) {
    if (status.dwCurrentState == wanted) return true;
    if (status.dwCurrentState == SERVICE_STOPPED) return false;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return false;
}

std::string exit_text(const SERVICE_STATUS_PROCESS& status) {
  if (status.dwWin32ExitCode == ERROR_SERVICE_SPECIFIC_ERROR)
    return "the agent exited with code " + std::to_string(status.dwServiceSpecificExitCode) +
           " (1: configuration or local setup, 3: Command refused the orchestrator)";
  if (status.dwWin32ExitCode != NO_ERROR) return error_text(status.dwWin32ExitCode);
  return "exit code 0";
}

std::string module_path() {
  std::wstring buffer(MAX_PATH, L'\0');
  for (;;) {
    const DWORD n = ::GetModuleFileNameW(nullptr, buffer.data(), static_cast<DWORD>(buffer.size()));
    if (n == 0) return {};
    if (n < buffer.size()) {
      buffer.resize(n);
      return narrow(buffer);
    }
    buffer.resize(buffer.size() * 2);
  }
}

std::string default_config_path() {
  const char* data = std::getenv("ProgramData");
  return (fs::path(data != nullptr ? data : "C:\\ProgramData") / "wincert-agent" / "agent.json").string();
}

std::string quoted(const std::string& text) { return "\"" + text + "\""; }

// ---- install / uninstall / start / stop ---------------------------------------------------------------

struct InstallOptions {
  std::string name = kDefaultServiceName;
  std::string config;
  std::string account;       // empty: LocalSystem
  std::string password_env;  // the account's password comes from this environment variable, never argv
  bool manual = false;       // demand start instead of automatic
};

// Owner-only ACLs (SYSTEM, Administrators, the installing account and the service's account) on a path that
// exists; the counterpart of the POSIX 0600/0700 modes, which `run` then checks at start.
Status restrict_if_present(const std::string& path, const std::string& account, std::vector<std::string>& done) {
  std::error_code ec;
  if (path.empty() || !fs::exists(path, ec)) return {};
  WINCERT_TRY(win32_acl::restrict_to_owner(path, account));
  done.push_back(path);
  return {};
}

// The configuration's directory and the files in it (agent.json, secrets.json in the default layout) first, so
// that loading the configuration finds its secrets file restricted.
Status restrict_configuration_directory(const std::string& config, const std::string& account,
                                        std::vector<std::string>& done) {
  const fs::path dir = fs::path(config).parent_path();
  WINCERT_TRY(restrict_if_present(dir.string(), account, done));
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec)) WINCERT_TRY(restrict_if_present(entry.path().string(), account, done));
  }
  return {};
}

int install(const InstallOptions& options) {
  const std::string config = fs::absolute(options.config.empty() ? default_config_path() : options.config).string();
  std::vector<std::string> restricted;
  if (auto acl = restrict_configuration_directory(config, options.account, restricted); !acl.ok())
    return fail(
        "not installed: cannot restrict the configuration directory to SYSTEM, Administrators and the "
        "service account: " +
        acl.error().message);
  // A service that cannot start helps nobody: check the configuration the way `run` will load it.
  auto loaded = load_agent_config(config);
  if (!loaded.ok()) return fail("not installed: the configuration is unusable: " + loaded.error().message);
  for (const std::string& path : {loaded->secrets_file, loaded->outbox_directory, loaded->log_file}) {
    if (auto acl = restrict_if_present(path, options.account, restricted); !acl.ok())
      return fail("not installed: " + acl.error().message);
  }
  say("restricted to SYSTEM, Administrators" + (options.account.empty() ? std::string() : ", " + options.account) +
      " and this account: " + std::to_string(restricted.size()) + " path(s) under " +
      fs::path(config).parent_path().string() + (restricted.size() > 1 ? " and the configured files" : ""));

  const std::string exe = module_path();
  if (exe.empty()) return fail("cannot find this program's own path: " + error_text(::GetLastError()));
  const std::string command_line =
      quoted(exe) + " service run --config " + quoted(config) + " --name " + quoted(options.name);

  std::wstring password;
  if (!options.password_env.empty()) {
    const char* value = std::getenv(options.password_env.c_str());
    if (value == nullptr) return fail("--password-env " + options.password_env + " is not set");
    password = widen(value);
  }
  ScHandle manager = open_manager(SC_MANAGER_CREATE_SERVICE);
  if (!manager) return scm_failure("cannot open the Service Control Manager", options.name);
  const std::wstring name = widen(options.name);
  const std::wstring display = L"Keyfactor Command orchestrator (" + name + L")";
  const std::wstring command = widen(command_line);
  const std::wstring account = widen(options.account);
  ScHandle service(::CreateServiceW(
      manager.handle, name.c_str(), display.c_str(), SERVICE_ALL_ACCESS, SERVICE_WIN32_OWN_PROCESS,
      options.manual ? SERVICE_DEMAND_START : SERVICE_AUTO_START, SERVICE_ERROR_NORMAL, command.c_str(), nullptr,
      nullptr, nullptr, account.empty() ? nullptr : account.c_str(), password.empty() ? nullptr : password.c_str()));
  ::SecureZeroMemory(password.data(), password.size() * sizeof(wchar_t));
  if (!service) return scm_failure("cannot create the service '" + options.name + "'", options.name);

  std::wstring description =
      L"Runs Keyfactor Command's certificate jobs (inventory, management, reenrollment) on Windows certificate "
      L"stores, IIS and SQL Server. Configuration: " +
      widen(config);
  SERVICE_DESCRIPTIONW text{description.data()};
  if (!::ChangeServiceConfig2W(service.handle, SERVICE_CONFIG_DESCRIPTION, &text))
    std::fprintf(stderr, "wincert-agent service: warning: cannot set the description: %s\n",
                 error_text(::GetLastError()).c_str());
  // Restart after a crash (a minute apart, at most three times a day): results wait in the outbox.
  SC_ACTION actions[3] = {{SC_ACTION_RESTART, 60000}, {SC_ACTION_RESTART, 60000}, {SC_ACTION_RESTART, 60000}};
  SERVICE_FAILURE_ACTIONSW failure{};
  failure.dwResetPeriod = 24 * 60 * 60;
  failure.cActions = 3;
  failure.lpsaActions = actions;
  if (!::ChangeServiceConfig2W(service.handle, SERVICE_CONFIG_FAILURE_ACTIONS, &failure))
    std::fprintf(stderr, "wincert-agent service: warning: cannot set the restart-on-failure actions: %s\n",
                 error_text(::GetLastError()).c_str());
  say("installed service '" + options.name + "' (" + (options.manual ? "manual" : "automatic") + " start, account " +
      (options.account.empty() ? "LocalSystem" : options.account) + "): " + command_line);
  say("start it with `wincert-agent service start" +
      (options.name == kDefaultServiceName ? std::string() : " --name " + options.name) + "`");
  return 0;
}

int stop(const std::string& name, std::chrono::seconds timeout) {
  ScHandle manager = open_manager(SC_MANAGER_CONNECT);
  if (!manager) return scm_failure("cannot open the Service Control Manager", name);
  ScHandle service(::OpenServiceW(manager.handle, widen(name).c_str(), SERVICE_STOP | SERVICE_QUERY_STATUS));
  if (!service) return scm_failure("cannot open the service '" + name + "'", name);
  SERVICE_STATUS_PROCESS status{};
  if (query(service.handle, status) && status.dwCurrentState == SERVICE_STOPPED) {
    say("service '" + name + "' is not running");
    return 0;
  }
  SERVICE_STATUS plain{};
  if (!::ControlService(service.handle, SERVICE_CONTROL_STOP, &plain) && ::GetLastError() != ERROR_SERVICE_NOT_ACTIVE)
    return scm_failure("cannot stop the service '" + name + "'", name);
  say("stopping service '" + name + "': running jobs finish, results are kept in the outbox");
  if (!wait_for_state(service.handle, SERVICE_STOPPED, timeout, status) && status.dwCurrentState != SERVICE_STOPPED)
    return fail("service '" + name + "' is still " + state_name(status.dwCurrentState) + " after " +
                std::to_string(timeout.count()) + " s (a job may be waiting on a host; see its log)");
  say("service '" + name + "' stopped (" + exit_text(status) + ")");
  return 0;
}

int uninstall(const std::string& name) {
  ScHandle manager = open_manager(SC_MANAGER_CONNECT);
  if (!manager) return scm_failure("cannot open the Service Control Manager", name);
  ScHandle service(::OpenServiceW(manager.handle, widen(name).c_str(), DELETE | SERVICE_QUERY_STATUS));
  if (!service) return scm_failure("cannot open the service '" + name + "'", name);
  SERVICE_STATUS_PROCESS status{};
  if (query(service.handle, status) && status.dwCurrentState != SERVICE_STOPPED) {
    if (const int stopped = stop(name, std::chrono::seconds(120)); stopped != 0) return stopped;
  }
  if (!::DeleteService(service.handle)) return scm_failure("cannot delete the service '" + name + "'", name);
  say("uninstalled service '" + name + "' (its configuration, outbox and log stay where they are)");
  return 0;
}

int start(const std::string& name, std::chrono::seconds timeout) {
  ScHandle manager = open_manager(SC_MANAGER_CONNECT);
  if (!manager) return scm_failure("cannot open the Service Control Manager", name);
  ScHandle service(::OpenServiceW(manager.handle, widen(name).c_str(), SERVICE_START | SERVICE_QUERY_STATUS));
  if (!service) return scm_failure("cannot open the service '" + name + "'", name);
  if (!::StartServiceW(service.handle, 0, nullptr)) {
    if (::GetLastError() != ERROR_SERVICE_ALREADY_RUNNING)
      return scm_failure("cannot start the service '" + name + "'", name);
    say("service '" + name + "' is already running");
    return 0;
  }
  SERVICE_STATUS_PROCESS status{};
  if (!wait_for_state(service.handle, SERVICE_RUNNING, timeout, status)) {
    if (status.dwCurrentState == SERVICE_STOPPED)
      return fail(
          "service '" + name + "' stopped while starting: " + exit_text(status) +
          "; see its log (wincert-agent.log beside the configuration, or LogFile) and the Application event log");
    return fail("service '" + name + "' is still " + state_name(status.dwCurrentState) + " after " +
                std::to_string(timeout.count()) + " s");
  }
  say("service '" + name + "' is running (process " + std::to_string(status.dwProcessId) + ")");
  return 0;
}

// ---- running under the SCM ----------------------------------------------------------------------------

// The one service this process runs (SERVICE_WIN32_OWN_PROCESS): what ServiceMain and the control
// handler, called on the SCM's threads, share.
class RunningService {
 public:
  static RunningService& instance() {
    static RunningService service;
    return service;
  }

  std::string name = kDefaultServiceName;
  std::string config_path;

  void main() {
    handle_ = ::RegisterServiceCtrlHandlerExW(widen(name).c_str(), &RunningService::control, this);
    if (handle_ == nullptr) return;  // nothing to report to; the SCM times the start out
    report(SERVICE_START_PENDING, NO_ERROR, 0, 30000);

    const std::string log_file = (fs::path(config_path).parent_path() / "wincert-agent.log").string();
    auto event_log = std::make_shared<spdlog::sinks::win_eventlog_sink_mt>(name);
    event_log->set_level(spdlog::level::warn);

    RunHooks hooks;
    hooks.handle_signals = false;
    hooks.default_log_file = log_file;
    hooks.ready = [this, event_log] {
      add_log_sink(event_log);
      report(SERVICE_RUNNING, NO_ERROR, 0, 0);
    };
    hooks.stopping = [this] { begin_stop_pending(); };
    // What /readyz says, in the service's log; a service that is running but not ready is a warning, so
    // it reaches the Application event log too (the SCM's states have no place for it).
    hooks.readiness = [this](const std::optional<std::string>& not_ready) {
      if (not_ready) {
        logger("service")->warn("service '{}' is running but not ready: {}", name, *not_ready);
      } else {
        logger("service")->info("service '{}' is ready: registered with Command, outbox writable", name);
      }
    };
    hooks.stop_handle = [this](std::function<void()> request_stop) {
      std::lock_guard lock(mutex_);
      request_stop_ = std::move(request_stop);
    };
    hooks.setup_error = [this, &log_file, event_log](const std::string& message) {
      // Before logging is set up: the service's log file and the event log, as a person will look there.
      init_logging("info", log_file);
      add_log_sink(event_log);
      logger("service")->error("service '{}' cannot start: {}", name, message);
    };
    int code = 255;
    try {
      code = run_agent(config_path, hooks);
    } catch (const std::exception& e) {
      logger("service")->error("internal error: {}", e.what());
    }
    finish_stop_pending();
    logger("service")->info("service '{}' stopped (exit code {})", name, code);
    spdlog::shutdown();
    report(SERVICE_STOPPED, code == 0 ? NO_ERROR : ERROR_SERVICE_SPECIFIC_ERROR, static_cast<DWORD>(code), 0);
  }

 private:
  static DWORD WINAPI control(DWORD control, DWORD /*event_type*/, LPVOID /*event_data*/, LPVOID context) {
    auto* self = static_cast<RunningService*>(context);
    switch (control) {
      case SERVICE_CONTROL_STOP:
      case SERVICE_CONTROL_SHUTDOWN: {
        std::function<void()> request_stop;
        {
          std::lock_guard lock(self->mutex_);
          request_stop = self->request_stop_;
        }
        self->begin_stop_pending();
        if (request_stop) request_stop();
        return NO_ERROR;
      }
      case SERVICE_CONTROL_INTERROGATE:
        return NO_ERROR;
      default:
        return ERROR_CALL_NOT_IMPLEMENTED;
    }
  }

  void report(DWORD state, DWORD win32_exit, DWORD specific_exit, DWORD wait_hint_ms) {
    std::lock_guard lock(status_mutex_);
    status_.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
    status_.dwCurrentState = state;
    status_.dwControlsAccepted = state == SERVICE_RUNNING ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN : 0;
    status_.dwWin32ExitCode = win32_exit;
    status_.dwServiceSpecificExitCode = specific_exit;
    status_.dwWaitHint = wait_hint_ms;
    const bool pending = state == SERVICE_START_PENDING || state == SERVICE_STOP_PENDING;
    status_.dwCheckPoint = pending ? ++checkpoint_ : 0;
    ::SetServiceStatus(handle_, &status_);
  }

  // STOP_PENDING with a fresh checkpoint every two seconds: the SCM waits as long as the agent makes
  // progress (jobs finishing within ShutdownGraceSeconds, the outbox being flushed).
  void begin_stop_pending() {
    std::lock_guard lock(ticker_mutex_);
    if (ticker_.joinable()) return;
    report(SERVICE_STOP_PENDING, NO_ERROR, 0, 10000);
    ticker_ = std::thread([this] {
      std::unique_lock wait(ticker_mutex_);
      while (!stopped_) {
        if (ticker_wake_.wait_for(wait, std::chrono::seconds(2), [this] { return stopped_; })) break;
        report(SERVICE_STOP_PENDING, NO_ERROR, 0, 10000);
      }
    });
  }

  void finish_stop_pending() {
    std::thread ticker;
    {
      std::lock_guard lock(ticker_mutex_);
      stopped_ = true;
      ticker = std::move(ticker_);
    }
    ticker_wake_.notify_all();
    if (ticker.joinable()) ticker.join();
  }

  SERVICE_STATUS_HANDLE handle_ = nullptr;
  std::mutex status_mutex_;
  SERVICE_STATUS status_{};
  DWORD checkpoint_ = 0;
  std::mutex mutex_;
  std::function<void()> request_stop_;
  std::mutex ticker_mutex_;
  std::condition_variable ticker_wake_;
  std::thread ticker_;
  bool stopped_ = false;
};

void WINAPI service_main(DWORD /*argc*/, LPWSTR* /*argv*/) { RunningService::instance().main(); }

int run_under_scm(const std::string& name, const std::string& config) {
  RunningService& service = RunningService::instance();
  service.name = name;
  service.config_path = fs::absolute(config).string();
  std::wstring wide_name = widen(name);
  SERVICE_TABLE_ENTRYW table[] = {{wide_name.data(), &service_main}, {nullptr, nullptr}};
  if (!::StartServiceCtrlDispatcherW(table)) {
    const DWORD code = ::GetLastError();
    if (code == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT)
      return fail(
          "`service run` is what the Service Control Manager starts; in a console use "
          "`wincert-agent run --config FILE`, or `wincert-agent service start`");
    return fail("cannot connect to the Service Control Manager: " + error_text(code));
  }
  return 0;
}

}  // namespace

void add_service_command(CLI::App& app) {
  auto* service = app.add_subcommand("service", "install, remove, start and stop the agent as a Windows service");
  service->require_subcommand(1);

  auto install_options = std::make_shared<InstallOptions>();
  auto* install_cmd = service->add_subcommand("install", "install the agent as a Windows service");
  install_cmd->add_option("--config", install_options->config,
                          "agent configuration (default %ProgramData%\\wincert-agent\\agent.json)");
  install_cmd->add_option(
      "--account", install_options->account,
      "account the service runs as (default LocalSystem; e.g. DOMAIN\\svc-kf, a gMSA 'DOMAIN\\gmsa$')");
  install_cmd->add_option("--password-env", install_options->password_env,
                          "environment variable holding --account's password (none for gMSA/virtual accounts)");
  install_cmd->add_option("--name", install_options->name, "service name")->capture_default_str();
  install_cmd->add_flag("--manual", install_options->manual, "manual start instead of automatic");
  install_cmd->callback([install_options] {
    std::fflush(nullptr);
    std::exit(install(*install_options));
  });

  struct NameTimeout {
    std::string name = kDefaultServiceName;
    int timeout = 120;
  };
  auto add_simple = [&](const char* verb, const char* help, int default_timeout,
                        std::function<int(const NameTimeout&)> action, bool with_timeout) {
    auto options = std::make_shared<NameTimeout>();
    options->timeout = default_timeout;
    auto* cmd = service->add_subcommand(verb, help);
    cmd->add_option("--name", options->name, "service name")->capture_default_str();
    if (with_timeout)
      cmd->add_option("--timeout", options->timeout, "seconds to wait")
          ->capture_default_str()
          ->check(CLI::Range(1, 3600));
    cmd->callback([options, action] {
      const int code = action(*options);
      std::fflush(nullptr);
      std::exit(code);
    });
  };
  add_simple(
      "uninstall", "stop and remove the service", 0, [](const NameTimeout& o) { return uninstall(o.name); }, false);
  add_simple(
      "start", "start the service and wait until it runs", 60,
      [](const NameTimeout& o) { return start(o.name, std::chrono::seconds(o.timeout)); }, true);
  add_simple(
      "stop", "stop the service gracefully and wait until it has stopped", 120,
      [](const NameTimeout& o) { return stop(o.name, std::chrono::seconds(o.timeout)); }, true);

  auto run_options = std::make_shared<InstallOptions>();
  auto* run_cmd = service->add_subcommand("run", "(started by the Service Control Manager)");
  run_cmd->group("");  // hidden from --help: people use `run` in a console
  run_cmd->add_option("--config", run_options->config, "agent configuration")->required();
  run_cmd->add_option("--name", run_options->name, "service name");
  run_cmd->callback([run_options] {
    const int code = run_under_scm(run_options->name, run_options->config);
    std::fflush(nullptr);
    std::exit(code == 0 ? 0 : kExitFailed);
  });
}

}  // namespace wincert::agent
