// `wincert-agent winrm ps --psrp`: one PowerShell script in a fresh runspace pool over PowerShell remoting,
// for users debugging a host and for tests. Over WS-Man (--endpoint, a session configuration by name), over
// SSH to the host's `powershell` subsystem, or to a local `pwsh -s` child.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "winrm/transport.hpp"

namespace wincert::agent {

struct PsrpCliOptions {
  std::string ssh_target;        // HOST[:PORT] (port 22 by default)
  std::string user;              // SSH user
  std::string key_file;          // PEM/OpenSSH private key; else the password from password_env
  std::string password_env;      // variable holding the SSH password or the key's passphrase
  std::string known_hosts_file;  // required with ssh_target: the host key is always verified
  bool trust_on_first_use = false;
  std::string pwsh_child;  // instead of SSH: a local pwsh started as `pwsh -s`
  std::chrono::milliseconds connect_timeout{30000};
  std::chrono::milliseconds command_timeout{1800000};
  // Over WS-Man: the session configuration (empty = Microsoft.PowerShell) and the Receive long-poll.
  std::string configuration_name;
  std::chrono::milliseconds operation_timeout{20000};
  // Set: `script` is a command name, run with -ArgsJson <args_json> (no script text: what a JEA endpoint
  // takes, and how the agent calls the WincertOps functions).
  std::optional<std::string> args_json;
  // Define the agent's WincertOps functions in the runspace first (full-language endpoints), so that
  // `--command Invoke-WincertHostInfo --input-json '{}'` calls them as the agent does.
  bool with_module = false;
  int repeat = 0;  // > 0: run N times in the one pool; a timing and exchange summary goes to stderr
};

// Runs `script` (or the command it names, see args_json) and prints each output object on its own line (strings as they
// are, primitives in their invariant form, other objects as their ToString), each error record to stderr as "error:
// <message>" (warnings as "warning: ..."). Exit code: 0 when the pipeline completed, 1 when it failed or was stopped,
// 255 when the connection or the pool failed.
int run_psrp_script(const PsrpCliOptions& options, const std::string& script);
// The same over WS-Man on `transport` (built by the caller from --endpoint and the auth flags), run on `io`.
int run_psrp_script_over_wsman(boost::asio::io_context& io, winrm::WsmanTransport& transport,
                               const PsrpCliOptions& options, const std::string& script);

}  // namespace wincert::agent
