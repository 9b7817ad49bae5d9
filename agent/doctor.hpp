// `wincert-agent doctor --config FILE [--target CLIENTMACHINE ...]`: checks what a running agent depends
// on, one line per check, so an administrator sees what is wrong and what to do before starting `run`:
//
//   config / secrets / files / outbox   the configuration loads and validates, the secrets it needs are
//                                       present, the files it names are readable, OutboxDirectory is writable;
//   command dns / tcp / tls / oauth / auth
//                                       Command (AgentsServerUri) resolves, accepts a TCP connection, completes
//                                       the TLS handshake with a trusted certificate, and accepts the agent's
//                                       credentials on a real, harmless Orchestrators API call;
//   winrm <ClientMachine>               for every DoctorTargets entry and --target: a WinRM session is opened
//                                       and the host-info wincert-op runs (host name and OS build).
//
// Output: "OK   <check>: <detail>" or "FAIL <check>: <what failed> — fix: <hint>". Exit 0 when every check
// passes, 1 otherwise. Secrets never appear in the output (every known secret is also scrubbed from it).
// --json: the same checks as one JSON document (name, target, status ok|fail, detail, hint; overall status).
#pragma once

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace wincert::agent {

// Environment variables of --target credentials (a password never goes on the command line).
inline constexpr const char* kDoctorUserEnv = "WINCERT_DOCTOR_USER";
inline constexpr const char* kDoctorPasswordEnv = "WINCERT_DOCTOR_PASSWORD";

struct DoctorOptions {
  std::string config_path;
  std::vector<std::string> targets;  // --target CLIENTMACHINE (host, host:port)
  std::string target_protocol;       // http | https; empty = http
  std::string target_auth;           // empty = the configuration's WinRM.DefaultAuth
  std::string target_user;           // empty = $WINCERT_DOCTOR_USER
  std::string target_password_env = kDoctorPasswordEnv;
  bool target_allow_unencrypted = false;        // Basic over plain http
  std::optional<std::chrono::seconds> timeout;  // caps every connect/request timeout of the configuration
  std::string log_level = "off";                // the libraries' own log lines (stderr)
  bool json = false;                            // --json: one JSON document instead of lines
};

struct DoctorCheck {
  bool ok = false;
  std::string name;    // "config", "command tls", "winrm web01"
  std::string detail;  // OK: what was found; FAIL: what failed
  std::string hint;    // FAIL: what to check or do
};

// "OK   name: detail" / "FAIL name: detail — fix: hint".
std::string format_check(const DoctorCheck& check);

// Runs every check, writes one line per check (and a summary) to `out`; returns the exit code (0 / 1).
int run_doctor(const DoctorOptions& options, std::FILE* out);

// Adds the `doctor` subcommand; it runs and exits the process from its own callback.
void add_doctor_command(CLI::App& app);

}  // namespace wincert::agent
