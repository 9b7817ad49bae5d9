#include "certstore/iis.hpp"

#include "common/encoding.hpp"

#include <cctype>
#include <charconv>

namespace wincert::certstore {
namespace {

bool valid_port(int port) { return port >= 1 && port <= 65535; }

bool looks_like_ipv4(std::string_view ip) {
  int parts = 0;
  std::size_t start = 0;
  while (start <= ip.size()) {
    const auto dot = ip.find('.', start);
    const auto part = ip.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    int value = -1;
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (part.empty() || part.size() > 3 || ec != std::errc() || end != part.data() + part.size() || value > 255) {
      return false;
    }
    ++parts;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts == 4;
}

bool looks_like_ipv6(std::string_view ip) {
  if (ip.size() < 2 || ip.find(':') == std::string_view::npos) return false;
  for (char c : ip) {
    if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.' || c == '%')) return false;
  }
  return true;
}

}  // namespace

Result<BindingAddress> parse_binding_information(std::string_view text) {
  BindingAddress out;
  std::string_view rest = text;
  if (rest.starts_with("[")) {
    const auto close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return Error::invalid_argument("the IIS binding '" + std::string(text) + "' has an unterminated IPv6 address");
    }
    out.ip = std::string(rest.substr(1, close - 1));
    rest = rest.substr(close + 2);
  } else {
    const auto colon = rest.find(':');
    if (colon == std::string_view::npos) {
      return Error::invalid_argument("the IIS binding '" + std::string(text) + "' is not of the form IP:Port:Host");
    }
    out.ip = std::string(rest.substr(0, colon));
    rest = rest.substr(colon + 1);
  }
  if (out.ip.empty()) out.ip = "*";
  const auto colon = rest.find(':');
  if (colon == std::string_view::npos) {
    return Error::invalid_argument("the IIS binding '" + std::string(text) + "' is not of the form IP:Port:Host");
  }
  const auto port_text = rest.substr(0, colon);
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), out.port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || !valid_port(out.port)) {
    return Error::invalid_argument("the IIS binding '" + std::string(text) + "' has an invalid port");
  }
  out.host = std::string(rest.substr(colon + 1));
  return out;
}

Result<std::string> format_binding_information(const BindingAddress& address) {
  if (!valid_port(address.port)) {
    return Error::invalid_argument("the port " + std::to_string(address.port) + " is not between 1 and 65535");
  }
  std::string ip(trim(address.ip));
  if (ip.starts_with("[") && ip.ends_with("]")) ip = ip.substr(1, ip.size() - 2);
  if (ip.empty()) ip = "*";
  if (address.host.find(':') != std::string::npos || address.host.find(' ') != std::string::npos) {
    return Error::invalid_argument("the host name '" + address.host + "' is not a valid IIS host header");
  }
  std::string out;
  if (ip == "*" || looks_like_ipv4(ip)) {
    out = ip;
  } else if (looks_like_ipv6(ip)) {
    out = "[" + ip + "]";
  } else {
    return Error::invalid_argument("the IP address '" + ip + "' is neither '*', IPv4 nor IPv6");
  }
  return out + ":" + std::to_string(address.port) + ":" + address.host;
}

Status validate_ssl_flags(int flags, int os_build) {
  if (flags < 0 || flags > 127) {
    return Error::invalid_argument("the SSL flags value " + std::to_string(flags) + " is outside 0..127");
  }
  if ((flags & 2) != 0 && (flags & 1) == 0) {
    return Error::invalid_argument("the SSL flags value " + std::to_string(flags) +
                                   " sets 2 (central certificate store) without 1 (SNI), which IIS requires");
  }
  int allowed = 1 | 2;
  std::string allowed_text = "1, 2";
  if (os_build >= 20348) {
    allowed = 1 | 4 | 8 | 16 | 32 | 64;
    allowed_text = "1, 4, 8, 16, 32, 64";
  } else if (os_build >= 17763) {
    allowed = 1 | 4 | 8;
    allowed_text = "1, 4, 8";
  } else if (os_build >= 14393) {
    allowed = 1 | 4;
    allowed_text = "1, 4";
  }
  const int unknown = flags & ~allowed;
  if (unknown != 0) {
    std::string bits;
    for (int bit = 1; bit <= 64; bit <<= 1) {
      if ((unknown & bit) != 0) bits += (bits.empty() ? "" : ", ") + std::to_string(bit);
    }
    return Error::invalid_argument("the SSL flags value " + std::to_string(flags) + " uses bit(s) " + bits +
                                   " that Windows build " + std::to_string(os_build) +
                                   " does not support (allowed: " + allowed_text + ")");
  }
  return {};
}

Result<int> parse_ssl_flags(std::string_view text_in) {
  const std::string_view text = trim(text_in);
  if (text.empty()) return 0;
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  const std::string_view rest = trim(std::string_view(end, static_cast<std::size_t>(text.data() + text.size() - end)));
  if (ec != std::errc() || !(rest.empty() || rest.starts_with("-"))) {
    return Error::invalid_argument("the SSL flags '" + std::string(text) + "' are not a number (expected 0..127)");
  }
  return value;
}

}  // namespace wincert::certstore
