// Counters of the simulator, printed as one JSON line on exit and written to --status-file.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>

namespace wincert::sim {

struct Stats {
  std::uint64_t connections = 0;
  std::uint64_t connections_open = 0;
  std::uint64_t requests = 0;
  std::map<std::string, std::uint64_t> requests_by_action;  // short names: Create, Command, Receive, ...
  std::uint64_t shells_created = 0;
  std::uint64_t shells_open = 0;
  std::uint64_t commands = 0;
  std::uint64_t faults = 0;
  std::uint64_t auth_failures = 0;
  std::uint64_t timeouts = 0;  // Receive answered with w:TimedOut
  // Concurrency as the host saw it: commands alive in its shells now, and the high-water marks. A client's
  // per-host parallelism limit shows up as max_commands_running.
  std::uint64_t commands_running = 0;
  std::uint64_t max_commands_running = 0;
  std::uint64_t max_shells_open = 0;
  std::uint64_t max_connections_open = 0;
  // PowerShell remoting (psrp_service): pools opened, pipelines created, runspaces started (each one charged
  // --ps-start-ms).
  std::uint64_t psrp_pools_opened = 0;
  std::uint64_t psrp_pipelines = 0;
  std::uint64_t psrp_runspaces_started = 0;

  // WinRS shells and PowerShell runspace pools are both shells to the host (one quota, `winrm enumerate shell`),
  // and a pipeline is a command on its pool until its final state was delivered: each service reports its own
  // count, and the host's figures are the sums.
  std::uint64_t winrs_shells_open = 0;
  std::uint64_t psrp_pools_open = 0;
  std::uint64_t winrs_commands_running = 0;
  std::uint64_t psrp_pipelines_running = 0;

  void note_shells_open() {
    shells_open = winrs_shells_open + psrp_pools_open;
    if (shells_open > max_shells_open) max_shells_open = shells_open;
  }
  void note_commands_running() {
    commands_running = winrs_commands_running + psrp_pipelines_running;
    if (commands_running > max_commands_running) max_commands_running = commands_running;
  }

  nlohmann::json to_json() const {
    return {{"connections", connections},
            {"connections_open", connections_open},
            {"requests", requests},
            {"requests_by_action", requests_by_action},
            {"shells_created", shells_created},
            {"shells_open", shells_open},
            {"commands", commands},
            {"faults", faults},
            {"auth_failures", auth_failures},
            {"timeouts", timeouts},
            {"commands_running", commands_running},
            {"max_commands_running", max_commands_running},
            {"max_shells_open", max_shells_open},
            {"max_connections_open", max_connections_open},
            {"psrp_pools_opened", psrp_pools_opened},
            {"psrp_pipelines", psrp_pipelines},
            {"psrp_runspaces_started", psrp_runspaces_started}};
  }
};

// "http://.../shell/Receive" -> "Receive".
inline std::string short_action(const std::string& action) {
  auto slash = action.find_last_of('/');
  return slash == std::string::npos ? action : action.substr(slash + 1);
}

}  // namespace wincert::sim
