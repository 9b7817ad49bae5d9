// `wincert-agent service ...`: the agent as a Windows service (Windows build only).
//
//   service install   [--config FILE] [--account NAME [--password-env VAR]] [--name NAME] [--manual]
//   service uninstall [--name NAME]          (stops it first)
//   service start     [--name NAME] [--timeout SEC]
//   service stop      [--name NAME] [--timeout SEC]
//   service run       --config FILE [--name NAME]   what the Service Control Manager starts; not for people
//
// Under the SCM the agent reports START_PENDING with a wait hint until it runs, RUNNING once the loop is
// up, and on Stop or system Shutdown STOP_PENDING with a checkpoint every two seconds while running jobs
// finish (up to ShutdownGraceSeconds) and the outbox is flushed, then STOPPED with the run's exit code as
// a service-specific error when it is not 0. Without a LogFile in the configuration the service logs to
// wincert-agent.log beside the configuration file; warnings and errors also go to the Application event
// log (source "wincert-agent").
#pragma once

#include <CLI/CLI.hpp>

namespace wincert::agent {

inline constexpr const char* kDefaultServiceName = "wincert-agent";

// Adds the `service` subcommand and its subcommands; each ends the process with its exit code.
void add_service_command(CLI::App& app);

}  // namespace wincert::agent
