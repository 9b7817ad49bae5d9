// The agent's WinRM settings, one type from the configuration to the connection: the "WinRM" section of the
// configuration (agent/config.cpp fills it once), `replay` and `wincert-agent winrm` (from flags), the store
// session factory and `doctor` all hold or pass this, and the transport and session take its members as they
// are. So each setting has one name, and nothing copies it field by field on the way down.
#pragma once

#include <chrono>
#include <cstddef>

#include "jobs/target.hpp"
#include "winrm/transport.hpp"
#include "winrm/winrs.hpp"

namespace wincert::agent {

// The agent's defaults for a WinRS session: the WS-Man OperationTimeout (how long one Receive long-polls; the
// HTTP read timeout is kept above it) and the overall deadline of one script run on a host (a SQL Server
// restart waits inside it).
inline winrm::SessionOptions default_winrm_session_options() {
  winrm::SessionOptions options;
  options.operation_timeout = std::chrono::seconds(20);
  options.command_deadline = std::chrono::minutes(10);
  return options;
}

struct WinrmSettings {
  jobs::AuthScheme default_auth = jobs::AuthScheme::kNegotiate;  // DefaultAuth: stores without "WinRM Authentication"
  // ConnectTimeoutSeconds: connect.connect_timeout and connect.tls_handshake_timeout; TlsVerify: connect.verify_peer
  // (off only explicitly, and logged); ReadTimeoutSeconds: exchange.read_timeout (one response from a host that
  // accepted the request); CaFile: ca_file; ClientCertPath/ClientKeyPath: client_certificate_file/client_key_file,
  // presented only to stores whose WinRM Authentication is certificate (transport_for_scheme).
  winrm::TransportOptions transport;
  // OperationTimeoutSeconds: session.operation_timeout; CommandTimeoutSeconds: session.command_deadline.
  winrm::SessionOptions session = default_winrm_session_options();
  // IdleTimeoutSeconds: warm reuse keeps an unused connection + shell this long; at most max_idle_per_key per key.
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(2)};
  std::size_t max_idle_per_key = 4;
  // ExecutionMode: PowerShell remoting (a warm runspace pool per connection, the module loaded once per
  // runspace) or one powershell.exe per operation through WinRS. A store's "ExecutionMode" overrides it.
  jobs::ExecutionMode execution_mode = jobs::ExecutionMode::kPsrp;
};

}  // namespace wincert::agent
