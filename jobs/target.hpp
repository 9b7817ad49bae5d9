// Where and how a job connects: the store's ClientMachine and WinRM store properties turned into
// either the local CryptoAPI path or a WinRM endpoint with an auth scheme and credentials.
//
// ClientMachine rules (the extension's PSHelper, plus a port override):
//   * split on '|': machine = the part before, arg = the part after (if any);
//   * local when machine is "localhost" or "localmachine" (any case) or arg is "LocalMachine" (any
//     case); otherwise remote to machine;
//   * machine may carry a port: "host:5986", "10.0.0.5:5985", "[2001:db8::1]:5985". That port wins
//     over the "WinRM Port" store property (handy for a simulator on a loopback port). An unbracketed
//     IPv6 literal ("2001:db8::1") is taken whole, without a port.
// WinRM defaults as the extension's code has them when properties are absent: protocol http, port
// 5985 for http and 5986 for https. Endpoint URL: http(s)://host:port/wsman, IPv6 bracketed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "common/secret.hpp"
#include "jobs/job_config.hpp"

namespace wincert::jobs {

enum class AuthScheme { kBasic, kNtlm, kKerberos, kNegotiate, kCertificate };
std::optional<AuthScheme> parse_auth_scheme(std::string_view name);  // case-insensitive
std::string_view auth_scheme_name(AuthScheme scheme);                // "basic", "ntlm", ...

// How operations reach a WinRM host: PowerShell remoting (a warm runspace pool; the default) or one
// powershell.exe per operation through WinRS (the path before PSRP; no JEA).
enum class ExecutionMode { kPsrp, kWinrs };
std::optional<ExecutionMode> parse_execution_mode(std::string_view name);  // "psrp" | "winrs", case-insensitive
std::string_view execution_mode_name(ExecutionMode mode);

struct TargetOptions {
  AuthScheme default_auth = AuthScheme::kNegotiate;  // when the store has no "WinRM Authentication"
  bool local_backend_available = false;              // the Windows build passes true
};

// How a remote host is reached: WS-Management (WinRM) or PowerShell over SSH ('WinRM Protocol' = ssh, as in
// the extension 2.6+: ServerUsername, a private key in PEM/OpenSSH form or a password in ServerPassword,
// port from ClientMachine or 'WinRM Port', else 22).
enum class RemoteTransport { kWinrm, kSsh };

struct RemoteTarget {
  RemoteTransport transport = RemoteTransport::kWinrm;
  std::string host;  // without brackets
  std::uint16_t port = 5985;
  bool https = false;
  std::string endpoint_url;  // http(s)://host:port/wsman, or ssh://host:port
  bool spn_with_port = false;
  AuthScheme auth = AuthScheme::kNegotiate;
  // Empty username: the agent's own identity (Kerberos ccache/keytab); only with kerberos/negotiate.
  std::string username;
  Secret password;
  bool allow_unencrypted = false;
  // The store's "ExecutionMode"; unset = the agent's WinRM.ExecutionMode. Never kWinrs with a configuration name.
  std::optional<ExecutionMode> execution_mode;
  // "JEAEndpointName": the PowerShell session configuration to use; empty = Microsoft.PowerShell. A JEA endpoint
  // takes commands only (the module is installed there, config/jea).
  std::string configuration_name;
  bool uses_agent_identity() const { return username.empty(); }
};

struct Target {
  bool local = false;
  std::string machine;  // the machine part of ClientMachine, for messages ("web01")
  RemoteTarget remote;  // meaningful when !local
};

// Splits ClientMachine into its machine part (brackets and port removed) for messages and rules.
struct ClientMachine {
  std::string host;
  std::optional<std::uint16_t> port;
  bool local = false;
};
Result<ClientMachine> parse_client_machine(std::string_view client_machine);

// "http://host:5985/wsman"; IPv6 literals get brackets.
std::string endpoint_url(std::string_view host, std::uint16_t port, bool https);

Result<Target> resolve_target(const JobConfig& config, const TargetOptions& options);

}  // namespace wincert::jobs
