// IIS facts the agent decides on itself: the "IP:Port:Host" binding-information text (IPv6 in
// brackets) and which SSL flag bits an OS build accepts.
#pragma once

#include "common/result.hpp"

#include <string>
#include <string_view>

namespace wincert::certstore {

struct BindingAddress {
  std::string ip = "*";  // "*" or an address without brackets
  int port = 443;
  std::string host;  // "" = all host names
  bool operator==(const BindingAddress&) const = default;
};

// "*:443:www.example.com", "10.0.0.5:8443:", "[2001:db8::1]:443:host" -> parts. IPv6 must be bracketed.
Result<BindingAddress> parse_binding_information(std::string_view text);
// The inverse; a bare IPv6 address gets its brackets, "" becomes "*". Checks port and address syntax.
Result<std::string> format_binding_information(const BindingAddress& address);

// sslFlags bits: 1 SNI, 2 central certificate store, 4 disable HTTP/2, 8 disable OCSP stapling,
// 16 disable QUIC, 32 disable TLS 1.3 over TCP, 64 disable legacy TLS.
// Allowed per Windows build: < 14393 {1,2}; >= 14393 {1,4}; >= 17763 {1,4,8}; >= 20348 {1..64};
// bit 2 without bit 1 is never valid. The Error names the bits the host's build does not know.
Status validate_ssl_flags(int flags, int os_build);
// Command sends SniFlag as text ("0".."127", historically "1 - SNI enabled"); the number at its start.
Result<int> parse_ssl_flags(std::string_view text);

}  // namespace wincert::certstore
