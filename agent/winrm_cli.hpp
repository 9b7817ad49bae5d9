// `wincert-agent winrm exec|ps`: run a command or a PowerShell script on one host over WinRM.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace wincert::agent {

// Adds the `winrm` subcommand tree to app. The returned function runs whichever subcommand was
// parsed and returns the process exit code (the remote exit code, or 255 for local/transport errors).
std::function<int()> add_winrm_commands(CLI::App& app);

}  // namespace wincert::agent
