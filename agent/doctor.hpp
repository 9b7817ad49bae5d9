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
// --json: the same checks as one JSON document (name, target, status ok|fail, detail, hint; overall status;
// a check that failed on an error also has error_code, its code's name, and error_detail, its detail fields).
//
// The hint of a failed step is chosen by doctor_advice() from the error's code and detail (HTTP status,
// WS-Man fault, GSS/SSPI/OpenSSL status, script category), never from its message.
#pragma once

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

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
  std::string target_jea_endpoint;              // JEAEndpointName for --target; empty = Microsoft.PowerShell
  std::optional<std::chrono::seconds> timeout;  // caps every connect/request timeout of the configuration
  std::string log_level = "off";                // the libraries' own log lines (stderr)
  bool json = false;                            // --json: one JSON document instead of lines
};

struct DoctorCheck {
  bool ok = false;
  std::string name;            // "config", "command tls", "winrm web01"
  std::string detail;          // OK: what was found; FAIL: what failed
  std::string hint;            // FAIL: what to check or do
  std::optional<Error> error;  // FAIL: the error the hint was chosen from, when there was one (--json)
};

// The steps whose failures are classified, and what each failure is taken to mean.
enum class DoctorStep {
  kCommandToken,  // the OAuth token request (BearerTokenUrl)
  kCommandCall,   // the authenticated Orchestrators API probe (Session/Heartbeat)
  kWinrm,         // a WinRM session and the host-info script
};
enum class DoctorAdvice {
  kGeneric,      // the step's catch-all hint
  kTlsName,      // the peer's certificate does not match the name used
  kTlsTrust,     // the peer's certificate is not trusted
  kTls,          // another TLS handshake failure
  kUnreachable,  // the peer did not accept or keep the connection (refused, reset, connect timeout)
  kCredentials,  // the credentials were refused (HTTP 401, or the identity provider's refusal)
  kPermission,   // authenticated but not allowed (HTTP 403)
  kNoApi,        // no Orchestrators API at that URL (HTTP 404)
  kSlow,         // connected, but no answer in time
  kQuota,        // the host refused another shell or operation (WS-Man QuotaLimit)
  kKerberos,     // a GSSAPI/SSPI failure
  kUnencrypted,  // Basic over http without AllowUnencrypted
  kScript,       // WinRM works, the host script failed
};
// Facts about the target that are not in the error.
struct DoctorFacts {
  bool basic_over_http = false;  // WinRM Basic on plain http without AllowUnencrypted: refused before sending
};
// The table: the first row of `step` whose code/detail matches the error.
DoctorAdvice doctor_advice(DoctorStep step, const Error& error, const DoctorFacts& facts = {});
std::string_view doctor_advice_name(DoctorAdvice advice);

// "OK   name: detail" / "FAIL name: detail — fix: hint".
std::string format_check(const DoctorCheck& check);

// Runs every check, writes one line per check (and a summary) to `out`; returns the exit code (0 / 1).
int run_doctor(const DoctorOptions& options, std::FILE* out);

// Adds the `doctor` subcommand; it runs and exits the process from its own callback.
void add_doctor_command(CLI::App& app);

}  // namespace wincert::agent
