// `wincert-agent run --config FILE`: the long-running agent. Loads and validates the configuration,
// sets up logging, runs the Agent with WinRM store sessions on one io_context thread, and turns
// SIGTERM/SIGINT into a graceful shutdown (a second signal exits at once). Tells systemd when it is
// ready and when it is stopping (Type=notify; harmless without systemd).
//
// Exit codes: 0 after a graceful stop, 1 unusable configuration or local setup, or any other failure to
// start (always written to the log file once it is known; systemd's RestartPreventExitStatus=1), 3
// Command refused the orchestrator (disapproved, credentials rejected), 255 internal error after start.
// Core dumps are switched off first (agent/platform/process.hpp): the process holds secrets.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <optional>
#include <string>

namespace wincert::agent {

// Adds the `run` subcommand; its callback runs the agent and ends the process with its exit code.
void add_run_command(CLI::App& app);

// How a front end (the `run` command, the Windows service) drives the agent.
struct RunHooks {
  std::function<void()> ready;     // the agent is running (systemd READY=1; SCM SERVICE_RUNNING)
  std::function<void()> stopping;  // a graceful stop began (systemd STOPPING=1; SCM STOP_PENDING)
  // Readiness as /readyz sees it, on every change: empty = ready, else why not (systemd STATUS=; the Windows
  // service's log and event log).
  std::function<void(const std::optional<std::string>& not_ready)> readiness;
  // Receives a function that asks the agent to stop gracefully (callable from any thread), and an empty
  // function once the agent has stopped (the first one must not be called after that).
  std::function<void(std::function<void()> request_stop)> stop_handle;
  bool handle_signals = true;    // SIGINT/SIGTERM stop the agent (a second one exits at once)
  std::string default_log_file;  // used when the configuration sets no LogFile (the service's)
  // Where an error before logging is set up goes (unusable configuration); default: stderr.
  std::function<void(const std::string& message)> setup_error;
};

// Loads the configuration, sets up logging and runs the agent until it stops; returns the exit code.
int run_agent(const std::string& config_path, const RunHooks& hooks);

// The body of `run`: run_agent with signals and systemd notifications.
int run_agent_command(const std::string& config_path);

// sd_notify(3) without libsystemd: sends `state` ("READY=1", "STOPPING=1") to $NOTIFY_SOCKET if set.
void notify_systemd(const std::string& state);

}  // namespace wincert::agent
