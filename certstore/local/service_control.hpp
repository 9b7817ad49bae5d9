// The few Service Control Manager operations the SQL Server bindings need: the account a service runs
// as, its state, and a bounded restart (stop, wait, start, wait), every failure naming the service.
#pragma once

#include "common/result.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace wincert::certstore::local {

struct ServiceRestartTimeouts {
  std::chrono::milliseconds stop{std::chrono::seconds(60)};   // as the extension: Stop-Service, wait <= 60 s
  std::chrono::milliseconds start{std::chrono::seconds(90)};  // Start-Service, wait <= 90 s
};

// The account as Windows shows it to people and as LookupAccountName takes it: "LocalSystem" becomes
// "NT AUTHORITY\SYSTEM", ".\user" becomes "<COMPUTERNAME>\user"; anything else is kept.
std::string normalize_service_account(std::string_view start_name, std::string_view computer_name);
// This machine's NetBIOS name ("" when Windows will not say).
std::string local_computer_name();

// The service's lpServiceStartName (normalized as above); nullopt when there is no such service.
Result<std::optional<std::string>> service_account(std::string_view service_name);
// "Running", "Stopped", "StartPending", ... as Get-Service names them; an error when there is no such service.
Result<std::string> service_status(std::string_view service_name);
// Stops the service when it is not stopped, starts it, and waits for each within its timeout. Returns the
// final state ("Running").
Result<std::string> restart_service(std::string_view service_name, const ServiceRestartTimeouts& timeouts);

}  // namespace wincert::certstore::local
