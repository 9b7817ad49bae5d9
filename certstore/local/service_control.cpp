#include "certstore/local/service_control.hpp"

#include "certstore/local/handles.hpp"
#include "certstore/local/win32_error.hpp"
#include "common/encoding.hpp"
#include "common/text.hpp"
#include "common/win32_text.hpp"

#include <optional>
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
    return last_win32_error(
        "the Service Control Manager cannot be opened (the agent needs to run as LocalSystem or "
        "an administrator): ",
        "OpenSCManager");
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
  return win32_status_error(code, service_text(name) + " cannot be opened: " + call_failed("OpenService", code));
}

Result<DWORD> current_state(SC_HANDLE service, std::string_view name) {
  SERVICE_STATUS_PROCESS status{};
  DWORD needed = 0;
  if (!QueryServiceStatusEx(service, SC_STATUS_PROCESS_INFO, reinterpret_cast<BYTE*>(&status), sizeof(status),
                            &needed)) {
    return last_win32_error(service_text(name) + ": ", "QueryServiceStatusEx");
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
      return Error::failed_precondition(
          service_text(name) +
          " stopped again while starting; check the System event log and the service's own "
          "error log for why");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Error::deadline_exceeded(service_text(name) + " did not reach " + state_name(wanted) + " within " +
                                      duration_text(timeout) + " (it is " + state_name(*state) +
                                      "); check it in services.msc and restart it manually");
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

// The dependents of a service (EnumDependentServices lists them all, recursively) that are running now, in the
// order Windows gives them: the reverse of their start order, so dependents come before what they depend on -
// the order to stop them in.
Result<std::vector<std::string>> running_dependents(SC_HANDLE service, std::string_view name) {
  DWORD needed = 0;
  DWORD count = 0;
  if (EnumDependentServicesW(service, SERVICE_ACTIVE, nullptr, 0, &needed, &count)) return std::vector<std::string>{};
  if (const DWORD code = GetLastError(); code != ERROR_MORE_DATA) {
    return win32_status_error(code, service_text(name) + ": " + call_failed("EnumDependentServices", code));
  }
  // ENUM_SERVICE_STATUSW entries followed by their strings; a vector of the struct keeps the alignment.
  std::vector<ENUM_SERVICE_STATUSW> entries((needed + sizeof(ENUM_SERVICE_STATUSW) - 1) / sizeof(ENUM_SERVICE_STATUSW));
  if (!EnumDependentServicesW(service, SERVICE_ACTIVE, entries.data(),
                              static_cast<DWORD>(entries.size() * sizeof(ENUM_SERVICE_STATUSW)), &needed, &count)) {
    return last_win32_error(service_text(name) + ": ", "EnumDependentServices");
  }
  std::vector<std::string> running;
  for (DWORD i = 0; i < count && i < entries.size(); ++i) {
    if (entries[i].ServiceStatus.dwCurrentState == SERVICE_RUNNING) running.push_back(narrow(entries[i].lpServiceName));
  }
  return running;
}

// Stops a service that is not stopped and waits for Stopped.
Status stop_and_wait(SC_HANDLE service, std::string_view name, std::chrono::milliseconds timeout) {
  auto state = current_state(service, name);
  if (!state) return state.error();
  if (*state == SERVICE_STOPPED) return {};
  SERVICE_STATUS status{};
  if (!ControlService(service, SERVICE_CONTROL_STOP, &status)) {
    const DWORD code = GetLastError();
    // Already stopping (or stopped in between) is fine: wait for Stopped below.
    if (code != ERROR_SERVICE_NOT_ACTIVE && code != ERROR_SERVICE_CANNOT_ACCEPT_CTRL) {
      return win32_status_error(code,
                                service_text(name) + " cannot be stopped: " + call_failed("ControlService", code));
    }
  }
  return wait_for_state(service, name, SERVICE_STOPPED, timeout);
}

// Starts a service and waits for Running.
Status start_and_wait(SC_HANDLE service, std::string_view name, std::chrono::milliseconds timeout) {
  if (!StartServiceW(service, 0, nullptr)) {
    const DWORD code = GetLastError();
    if (code != ERROR_SERVICE_ALREADY_RUNNING) {
      return win32_status_error(code, service_text(name) + " cannot be started: " + call_failed("StartService", code) +
                                          "; check the System event log");
    }
  }
  return wait_for_state(service, name, SERVICE_RUNNING, timeout);
}

Result<ServiceHandle> open_existing_service(SC_HANDLE manager, std::string_view name, DWORD access) {
  auto service = open_service(manager, name, access);
  if (!service) return service.error();
  if (!*service) return Error::not_found(service_text(name) + " does not exist on this machine");
  return service;
}

}  // namespace

std::string normalize_service_account(std::string_view start_name_in, std::string_view computer_name) {
  const std::string_view start_name = trim(start_name_in);
  // The service manager's own spellings of the built-in accounts, bare, ".\"-qualified or NT AUTHORITY\.
  std::string_view bare = start_name;
  if (bare.starts_with(".\\")) bare.remove_prefix(2);
  if (bare.size() >= 13 && iequals(bare.substr(0, 13), "NT AUTHORITY\\")) bare.remove_prefix(13);
  if (iequals(bare, "LocalSystem") || iequals(bare, "SYSTEM")) return "NT AUTHORITY\\SYSTEM";
  if (iequals(bare, "NetworkService") || iequals(bare, "NETWORK SERVICE")) return "NT AUTHORITY\\NETWORK SERVICE";
  if (iequals(bare, "LocalService") || iequals(bare, "LOCAL SERVICE")) return "NT AUTHORITY\\LOCAL SERVICE";
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
    return last_win32_error(service_text(name) + ": ", "QueryServiceConfig");
  }
  return std::optional<std::string>(
      normalize_service_account(narrow(config->lpServiceStartName), local_computer_name()));
}

Result<std::string> service_status(std::string_view name) {
  auto manager = open_manager();
  if (!manager) return manager.error();
  auto service = open_service(manager->get(), name, SERVICE_QUERY_STATUS);
  if (!service) return service.error();
  if (!*service) return Error::not_found(service_text(name) + " does not exist on this machine");
  auto state = current_state(service->get(), name);
  if (!state) return state.error();
  return state_name(*state);
}

Result<std::string> restart_service(std::string_view name, const ServiceRestartTimeouts& timeouts) {
  auto manager = open_manager();
  if (!manager) return manager.error();
  constexpr DWORD kControl = SERVICE_QUERY_STATUS | SERVICE_STOP | SERVICE_START;
  auto service = open_service(manager->get(), name, kControl | SERVICE_ENUMERATE_DEPENDENTS);
  if (!service) return service.error();
  if (!*service) {
    return Error::not_found(service_text(name) +
                            " does not exist on this machine; check the instance name and that SQL Server is "
                            "installed here");
  }
  // ControlService(STOP) fails while dependents (SQL Server Agent, ...) run, and starting SQL Server does not
  // start them: stop the running ones first and start exactly those again after, in reverse order.
  auto dependents = running_dependents(service->get(), name);
  if (!dependents) return dependents.error();
  std::vector<ServiceHandle> stopped;
  for (const auto& dependent : *dependents) {
    const std::string not_restarted = " (a dependent of " + std::string(name) + ", which was not restarted)";
    auto handle = open_existing_service(manager->get(), dependent, kControl);
    // The code and the Win32 status stay; the message says which service was left alone.
    if (!handle) return Error{handle.error().code, handle.error().message + not_restarted, handle.error().detail};
    if (auto down = stop_and_wait(handle->get(), dependent, timeouts.stop); !down) {
      return Error{down.error().code, down.error().message + not_restarted, down.error().detail};
    }
    stopped.push_back(std::move(*handle));
  }
  if (auto down = stop_and_wait(service->get(), name, timeouts.stop); !down) return down.error();
  if (auto up = start_and_wait(service->get(), name, timeouts.start); !up) return up.error();

  // Every dependent is tried, so one that fails does not keep the others down.
  std::string failures;
  std::optional<ErrorCode> code;  // a permanent failure's code wins over a transient one's
  for (std::size_t i = stopped.size(); i-- > 0;) {
    if (auto up = start_and_wait(stopped[i].get(), (*dependents)[i], timeouts.start); !up) {
      failures += (failures.empty() ? "" : "; ") + up.error().message;
      if (!code || (is_transient(*code) && !up.error().retryable())) code = up.error().code;
    }
  }
  if (!failures.empty()) {
    std::string message = service_text(name) +
                          " restarted, but dependent services that were running before could not be started "
                          "again: " +
                          failures + "; start them by hand";
    return Error::make(code.value_or(ErrorCode::kFailedPrecondition), std::move(message));
  }
  return state_name(SERVICE_RUNNING);
}

}  // namespace wincert::certstore::local
