#include "jobs/alias.hpp"

#include <boost/asio/ip/address.hpp>

#include <array>
#include <cctype>
#include <charconv>
#include <optional>

namespace wincert::jobs {

namespace {

bool all_hex(std::string_view s) {
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
  text = trim(text);
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || value < 1 || value > 65535) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(value);
}

std::string_view strip_brackets(std::string_view ip) {
  if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') return ip.substr(1, ip.size() - 2);
  return ip;
}

// Portable (POSIX and Windows) address parsing: Asio's, not <arpa/inet.h>.
std::optional<boost::asio::ip::address> parse_ip(std::string_view text) {
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(std::string(text), ec);
  if (ec) return std::nullopt;
  return address;
}

bool is_ip_literal(std::string_view ip) { return parse_ip(ip).has_value(); }

// The index of the last ':' that is not inside [...], or npos.
std::size_t last_colon_outside_brackets(std::string_view s) {
  int depth = 0;
  std::size_t found = std::string_view::npos;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '[')
      ++depth;
    else if (s[i] == ']' && depth > 0)
      --depth;
    else if (s[i] == ':' && depth == 0)
      found = i;
  }
  return found;
}

std::size_t count_colons_outside_brackets(std::string_view s) {
  int depth = 0;
  std::size_t n = 0;
  for (char c : s) {
    if (c == '[')
      ++depth;
    else if (c == ']' && depth > 0)
      --depth;
    else if (c == ':' && depth == 0)
      ++n;
  }
  return n;
}

}  // namespace

Result<std::string> normalize_thumbprint(std::string_view text, std::string_view field) {
  std::string out;
  out.reserve(40);
  for (std::size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == ' ' || c == ':' || c == '\t') continue;
    // U+200E LEFT-TO-RIGHT MARK (E2 80 8E), pasted from the Windows certificate dialog.
    if (c == 0xE2 && text.substr(i, 3) == "\xE2\x80\x8E") {
      i += 2;
      continue;
    }
    out += static_cast<char>(std::toupper(c));
  }
  if (out.size() != 40 || !all_hex(out)) {
    return Error::invalid_argument(std::string(field) + " '" + std::string(trim(text)) +
                                   "' is not a certificate thumbprint (40 hex digits)");
  }
  return out;
}

std::string binding_information(std::string_view ip_address, std::uint16_t port, std::string_view host_name) {
  std::string out;
  std::string_view ip = strip_brackets(ip_address);
  if (ip.find(':') != std::string_view::npos) {
    out += '[';
    out += ip;
    out += ']';
  } else {
    out += ip;
  }
  out += ':';
  out += std::to_string(port);
  out += ':';
  out += host_name;
  return out;
}

std::string build_iis_alias(std::string_view thumbprint, std::string_view site_name, std::string_view ip_address,
                            std::uint16_t port, std::string_view host_name) {
  std::string out = to_upper(thumbprint);
  out += ':';
  out += site_name;
  out += ':';
  out += binding_information(ip_address, port, host_name);
  return out;
}

Result<IisAlias> parse_iis_alias(std::string_view alias) {
  const std::string_view text = trim(alias);
  auto invalid = [&](std::string_view why) {
    return Error::invalid_argument("IIS alias '" + std::string(text) + "' " + std::string(why) +
                                   " (expected THUMBPRINT:Site:IP:Port:Host)");
  };
  if (text.size() < 41 || !all_hex(text.substr(0, 40)) || text[40] != ':') {
    return invalid("does not start with a 40-hex-digit thumbprint and ':'");
  }
  IisAlias out;
  out.thumbprint = to_upper(text.substr(0, 40));
  std::string_view rest = text.substr(41);
  std::size_t site_end = rest.find(':');
  if (site_end == std::string_view::npos) return invalid("has no binding after the site name");
  out.site_name = std::string(rest.substr(0, site_end));
  if (trim(out.site_name).empty()) return invalid("has an empty site name");
  rest = rest.substr(site_end + 1);  // "IP:Port:Host" or "IP:Port"

  std::string_view ip_and_port;
  if (count_colons_outside_brackets(rest) == 1 && rest.find('[') == std::string_view::npos &&
      parse_port(rest.substr(rest.find(':') + 1))) {
    ip_and_port = rest;  // the 4-part form without a host
  } else {
    std::size_t host_colon = last_colon_outside_brackets(rest);
    if (host_colon == std::string_view::npos) return invalid("has no port");
    out.host_name = std::string(rest.substr(host_colon + 1));
    ip_and_port = rest.substr(0, host_colon);
  }
  std::size_t port_colon = last_colon_outside_brackets(ip_and_port);
  if (port_colon == std::string_view::npos) return invalid("has no port");
  auto port = parse_port(ip_and_port.substr(port_colon + 1));
  if (!port) return invalid("has a port that is not a number from 1 to 65535");
  out.port = *port;
  std::string_view ip = ip_and_port.substr(0, port_colon);
  if (ip.empty()) return invalid("has an empty IP address");
  out.ip_address = std::string(strip_brackets(ip));
  return out;
}

Result<int> normalize_sni_flag(std::string_view raw) {
  const std::string_view text = trim(raw);
  if (text.empty())
    return Error::invalid_argument("entry parameter SniFlag is empty; use 0 (no SNI) or an IIS sslFlags number");
  if (iequals(text, "true")) return 1;
  if (iequals(text, "false")) return 0;
  int value = -1;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc() && ptr == text.data() + text.size()) {
    if (value < 0 || value > 127) {
      return Error::invalid_argument("entry parameter SniFlag " + std::string(text) +
                                     " is outside the IIS sslFlags range 0-127");
    }
    return value;
  }
  // Pre-2.5 multiple-choice strings: "0 - No SNI", "1 - SNI Enabled", "2 - Non SNI Binding", "3 - SNI Binding".
  static constexpr std::array<std::string_view, 4> kLegacy = {"0 - No SNI", "1 - SNI Enabled", "2 - Non SNI Binding",
                                                              "3 - SNI Binding"};
  for (std::size_t i = 0; i < kLegacy.size(); ++i) {
    if (iequals(text, kLegacy[i])) return static_cast<int>(i);
  }
  return Error::invalid_argument(
      "entry parameter SniFlag '" + std::string(text) +
      "' is not an IIS sslFlags number, true/false, or one of '0 - No SNI', '1 - SNI Enabled', "
      "'2 - Non SNI Binding', '3 - SNI Binding'");
}

bool same_ip_address(std::string_view a, std::string_view b) {
  a = strip_brackets(trim(a));
  b = strip_brackets(trim(b));
  if (a == "*" || b == "*") return a == b;
  const auto x = parse_ip(a), y = parse_ip(b);
  if (x && y && x->is_v4() == y->is_v4()) return *x == *y;
  return iequals(a, b);
}

Result<IisBindingInfo> iis_binding_from_entry_parameters(const EntryParameters& entry) {
  auto required = [](const std::optional<std::string>& v, std::string_view name) -> Result<std::string> {
    if (!v || trim(*v).empty()) {
      return Error::invalid_argument("entry parameter " + std::string(name) +
                                     " is missing; check the IISU store type's entry parameters in Command");
    }
    return std::string(trim(*v));
  };
  IisBindingInfo info;
  auto site = required(entry.site_name, "SiteName");
  if (!site.ok()) return site.error();
  info.site_name = std::move(site.value());
  if (info.site_name.find(':') != std::string::npos) {
    return Error::invalid_argument("entry parameter SiteName '" + info.site_name +
                                   "' contains ':', which IIS site names cannot");
  }

  auto ip = required(entry.ip_address, "IPAddress");
  if (!ip.ok()) return ip.error();
  std::string_view ip_text = strip_brackets(ip.value());
  if (ip_text != "*" && !is_ip_literal(ip_text)) {
    return Error::invalid_argument("entry parameter IPAddress '" + ip.value() + "' is not '*' or an IPv4/IPv6 address");
  }
  info.ip_address = std::string(ip_text);

  auto protocol = required(entry.protocol, "Protocol");
  if (!protocol.ok()) return protocol.error();
  if (!iequals(protocol.value(), "https") && !iequals(protocol.value(), "http")) {
    return Error::invalid_argument("entry parameter Protocol '" + protocol.value() + "' is not https or http");
  }
  info.protocol = to_lower(protocol.value());

  if (entry.port && !trim(*entry.port).empty()) {
    auto port = parse_port(*entry.port);
    if (!port) {
      return Error::invalid_argument("entry parameter Port '" + std::string(trim(*entry.port)) +
                                     "' is not a number from 1 to 65535");
    }
    info.port = *port;
  }
  if (entry.host_name) info.host_name = std::string(trim(*entry.host_name));
  if (entry.sni_flag && !trim(*entry.sni_flag).empty()) {  // empty = the manifest default 0
    auto flags = normalize_sni_flag(*entry.sni_flag);
    if (!flags.ok()) return flags.error();
    info.ssl_flags = flags.value();
  }
  return info;
}

}  // namespace wincert::jobs
