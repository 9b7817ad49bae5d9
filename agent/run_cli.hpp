// `wincert-agent run --config FILE`: the long-running agent. Loads and validates the configuration,
// sets up logging, runs the Agent with WinRM store sessions on one io_context thread, and turns
// SIGTERM/SIGINT into a graceful shutdown (a second signal exits at once). Tells systemd when it is
// ready and when it is stopping (Type=notify; harmless without systemd).
//
// Exit codes: 0 after a graceful stop, 1 unusable configuration or local setup, 3 Command refused the
// orchestrator (disapproved, credentials rejected), 255 internal error.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace wincert::agent {

// Adds the `run` subcommand; its callback runs the agent and ends the process with its exit code.
void add_run_command(CLI::App& app);

// The body of `run`, returning the exit code (for tests and other front ends).
int run_agent_command(const std::string& config_path);

// sd_notify(3) without libsystemd: sends `state` ("READY=1", "STOPPING=1") to $NOTIFY_SOCKET if set.
void notify_systemd(const std::string& state);

}  // namespace wincert::agent
