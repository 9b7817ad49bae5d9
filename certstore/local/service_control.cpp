#include "certstore/local/service_control.hpp"

#include "certstore/local/handles.hpp"
#include "common/win32_text.hpp"
#include "common/encoding.hpp"
#include "common/text.hpp"

#include <thread>
#include <vector>

namespace wincert::certstore::local {
namespace {

constexpr std::chrono::milliseconds kPollInterval{250};

std::string service_text(std::string_view name) { return "the service '" + std::string(name) + "'"; }

std::string state_name(DWORD state) {
  switch (state) {
    case SERVICE_STOPPED:
      return "Stopped";
    case SERVICE_START_PENDING:
      return "StartPending";
    case SERVICE_STOP_PENDING:
      return "StopPending";
    case SERVICE_RUNNING:
      return "Running";
    case SERVICE_CONTINUE_PENDING:
      return "ContinuePending";
    case SERVICE_PAUSE_PENDING:
      return "PausePending";
    case SERVICE_PAUSED:
      return "Paused";
    default:
      return "Unknown (" + std::to_string(state) + ")";
  }
}

Result<ServiceHandle> open_manager() {
  ServiceHandle manager(OpenSCManagerW(nullptr, nullptr, SC_MANAGER_CONNECT));
  if (!manager) {
    return Error::permanent(
        "the Service Control Manager cannot be opened (the agent needs to run as LocalSystem or "
        "an administrator): " +
        last_error("OpenSCManager"));
  }
  return manager;
}

// The service, or an empty handle when it does not exist.
Result<ServiceHandle> open_service(SC_HANDLE manager, std::string_view name, DWORD access) {
  const std::wstring wide = widen(name);
  ServiceHandle service(OpenServiceW(manager, wide.c_str(), access));
  if (service) return service;
  const DWORD code = GetLastError();
  if (code == ERROR_SERVICE_DOES_NOT_EXIST) return ServiceHandle();
  return Error::permanent(service_text(name) + " cannot be opened: " + call_failed("OpenService", code));
}

Result<DWORD> current_state(SC_HANDLE service, std::string_view name) {
  SERVICE_STATUS_PROCESS status{};
  DWORD needed = 0;
  if (!QueryServiceStatusEx(service, SC_STATUS_PROCESS_INFO, reinterpret_cast<BYTE*>(&status), sizeof(status),
                            &needed)) {
    return Error::permanent(service_text(name) + ": " + last_error("QueryServiceStatusEx"));
  }
  return status.dwCurrentState;
}

// Polls until the service reaches `wanted`; a timeout is transient (the service may still get there).
Status wait_for_state(SC_HANDLE service, std::string_view name, DWORD wanted, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto state = current_state(service, name);
    if (!state) return state.error();
    if (*state == wanted) return {};
    // A service that fell back to Stopped while starting will not get there by waiting.
    if (wanted == SERVICE_RUNNING && *state == SERVICE_STOPPED) {
      return Error::permanent(service_text(name) +
                              " stopped again while starting; check the System event log and the service's own "
                              "error log for why");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Error::transient(service_text(name) + " did not reach " + state_name(wanted) + " within " +
                              duration_text(timeout) + " (it is " + state_name(*state) +
                              "); check it in services.msc and restart it manually");
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

}  // namespace

std::string normalize_service_account(std::string_view start_name_in, std::string_view computer_name) {
  const std::string_view start_name = trim(start_name_in);
  if (iequals(start_name, "LocalSystem")) return "NT AUTHORITY\\SYSTEM";
  if (start_name.starts_with(".\\")) return std::string(computer_name) + "\\" + std::string(start_name.substr(2));
  return std::string(start_name);
}

std::string local_computer_name() {
  wchar_t name[MAX_COMPUTERNAME_LENGTH + 1] = {};
  DWORD size = MAX_COMPUTERNAME_LENGTH + 1;
  if (!GetComputerNameW(name, &size)) return {};
  return narrow(std::wstring_view(name, size));
}

Result<std::optional<std::string>> service_account(std::string_view name) {
  auto manager = open_manager();
  if (!manager) return manager.error();
  auto service = open_service(manager->get(), name, SERVICE_QUERY_CONFIG);
  if (!service) return service.error();
  if (!*service) return std::optional<std::string>();
  DWORD needed = 0;
  QueryServiceConfigW(service->get(), nullptr, 0, &needed);
  std::vector<BYTE> buffer(needed > 0 ? needed : sizeof(QUERY_SERVICE_CONFIGW));
  auto* config = reinterpret_cast<QUERY_SERVICE_CONFIGW*>(buffer.data());
  if (!QueryServiceConfigW(service->get(), config, static_cast<DWORD>(buffer.size()), &needed)) {
    return Error::permanent(service_text(name) + ": " + last_error("QueryServiceConfig"));
  }
  return std::optional<std::string>(
      normalize_service_account(narrow(config->lpServiceStartName), local_computer_name()));
}

Result<std::string> service_status(std::string_view name) {
  auto manager = open_manager();
  if (!manager) return manager.error();
  auto service = open_service(manager->get(), name, SERVICE_QUERY_STATUS);
  if (!service) return service.error();
  if (!*service) return Error::permanent(service_text(name) + " does not exist on this machine");
  auto state = current_state(service->get(), name);
  if (!state) return state.error();
  return state_name(*state);
}

Result<std::string> restart_service(std::string_view name, const ServiceRestartTimeouts& timeouts) {
  auto manager = open_manager();
  if (!manager) return manager.error();
  auto service = open_service(manager->get(), name, SERVICE_QUERY_STATUS | SERVICE_STOP | SERVICE_START);
  if (!service) return service.error();
  if (!*service) {
    return Error::permanent(service_text(name) +
                            " does not exist on this machine; check the instance name and that SQL Server is "
                            "installed here");
  }
  auto state = current_state(service->get(), name);
  if (!state) return state.error();
  if (*state != SERVICE_STOPPED) {
    SERVICE_STATUS status{};
    if (!ControlService(service->get(), SERVICE_CONTROL_STOP, &status)) {
      const DWORD code = GetLastError();
      // Already stopping (or stopped in between) is fine: wait for Stopped below.
      if (code != ERROR_SERVICE_NOT_ACTIVE && code != ERROR_SERVICE_CANNOT_ACCEPT_CTRL) {
        return Error::permanent(service_text(name) + " cannot be stopped: " + call_failed("ControlService", code));
      }
    }
    if (auto stopped = wait_for_state(service->get(), name, SERVICE_STOPPED, timeouts.stop); !stopped) {
      return stopped.error();
    }
  }
  if (!StartServiceW(service->get(), 0, nullptr)) {
    const DWORD code = GetLastError();
    if (code != ERROR_SERVICE_ALREADY_RUNNING) {
      return Error::permanent(service_text(name) + " cannot be started: " + call_failed("StartService", code) +
                              "; check the System event log");
    }
  }
  if (auto running = wait_for_state(service->get(), name, SERVICE_RUNNING, timeouts.start); !running) {
    return running.error();
  }
  return state_name(SERVICE_RUNNING);
}

}  // namespace wincert::certstore::local
