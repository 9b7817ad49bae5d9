#include "winrm/endpoint.hpp"

#include <charconv>

#include "common/encoding.hpp"

namespace wincert::winrm {

std::string Endpoint::authority() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string Endpoint::url() const { return std::string(tls ? "https://" : "http://") + authority() + path; }

Result<Endpoint> parse_endpoint(std::string_view url) {
  // A URL with user information may carry a password: never echo it back.
  const std::string original = url.find('@') == std::string_view::npos ? std::string(url) : "<URL with user info>";
  auto bad = [&](std::string_view why) {
    return Error::invalid_argument("invalid WinRM endpoint '" + original + "': " + std::string(why) +
                                   " (expected e.g. https://host:5986/wsman)");
  };
  url = trim(url);
  Endpoint ep;
  bool scheme_given = false;
  if (istarts_with(url, "https://")) {
    ep.tls = true;
    scheme_given = true;
    url.remove_prefix(8);
  } else if (istarts_with(url, "http://")) {
    scheme_given = true;
    url.remove_prefix(7);
  } else if (url.find("://") != std::string_view::npos) {
    return bad("only http and https are supported");
  }
  std::string_view authority = url;
  if (const auto slash = url.find('/'); slash != std::string_view::npos) {
    authority = url.substr(0, slash);
    ep.path = std::string(url.substr(slash));
  }
  if (authority.find('@') != std::string_view::npos) return bad("user information in the URL is not allowed");
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated IPv6 literal");
    ep.host = std::string(authority.substr(1, close - 1));
    const auto rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("garbage after IPv6 literal");
      port_text = rest.substr(1);
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    ep.host = std::string(authority.substr(0, colon));
    port_text = authority.substr(colon + 1);
  } else {
    ep.host = std::string(authority);
  }
  if (ep.host.empty()) return bad("no host");
  for (const char c : ep.host) {
    if (c <= ' ' || c == '/' || c == '?' || c == '#' || static_cast<unsigned char>(c) >= 0x7f) {
      return bad("invalid character in host name");
    }
  }
  if (!port_text.empty()) {
    unsigned value = 0;
    const auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc() || ptr != port_text.data() + port_text.size() || value == 0 || value > 65535) {
      return bad("port must be a number from 1 to 65535");
    }
    ep.port = static_cast<std::uint16_t>(value);
    if (!scheme_given && ep.port == 5986) ep.tls = true;
  } else {
    ep.port = ep.tls ? 5986 : 5985;
  }
  if (ep.path.find_first_of(" \r\n") != std::string::npos) return bad("invalid character in path");
  return ep;
}

}  // namespace wincert::winrm
