// A WinRM endpoint URL (http://host:5985/wsman, https://host:5986/wsman), parsed once and validated.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace wincert::winrm {

struct Endpoint {
  bool tls = false;
  std::string host;        // without brackets for IPv6 literals
  std::uint16_t port = 0;  // defaults: 5985 (http), 5986 (https)
  std::string path = "/wsman";

  // "http://host:5985/wsman" as it goes into a:To and error messages.
  std::string url() const;
  // "host:port" (IPv6 in brackets), the Host header and the short form in messages.
  std::string authority() const;
};

// Accepts http:// and https:// URLs, an optional port and path. A bare "host" or "host:port" means
// http (https when the port is 5986). Anything else (other schemes, user info, empty host) is an error.
Result<Endpoint> parse_endpoint(std::string_view url);

}  // namespace wincert::winrm
