// Process-wide protection of the secrets the agent holds in memory (Command password, Basic header,
// WinRM passwords, tokens): no core dump may carry them. Called first thing by the agent's commands.
#pragma once

#include <string>

namespace wincert::agent::process {

// POSIX: RLIMIT_CORE 0 (no core file, also for a core_pattern pipe such as systemd-coredump, which
// honours the limit) and, on Linux, PR_SET_DUMPABLE 0 (no core, no ptrace attach by same-user
// processes, /proc/<pid>/mem and environ root-only). Windows: nothing here (Windows Error Reporting
// writes no full dumps unless LocalDumps is configured by an administrator).
// Returns an empty string on success, or what could not be set (for a warning in the log).
std::string disable_core_dumps();

}  // namespace wincert::agent::process
