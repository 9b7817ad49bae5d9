// Hooks for whoever wants to count what the WinRM client does (the agent's metrics): connections,
// shells and authentication handshakes. winrm/ calls them; it does not know who listens. Every method
// has an empty default; implementations must be thread-safe and cheap (they run on the I/O thread).
#pragma once

#include <string_view>

namespace wincert::winrm {

class WinrmObserver {
 public:
  virtual ~WinrmObserver() = default;
  // A TCP (and TLS) connection to host was established / closed.
  virtual void connection_opened(std::string_view /*host*/) {}
  virtual void connection_closed(std::string_view /*host*/) {}
  // A WinRS shell was created on host / deleted (or abandoned with its connection).
  virtual void shell_created(std::string_view /*host*/) {}
  virtual void shell_closed(std::string_view /*host*/) {}
  // One HTTP authentication handshake with scheme ("basic", "ntlm", "negotiate", "kerberos",
  // "certificate") ended: ok, or refused/failed.
  virtual void auth_handshake(std::string_view /*scheme*/, bool /*ok*/) {}
};

}  // namespace wincert::winrm
