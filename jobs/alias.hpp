// Inventory aliases and IIS entry parameters.
//
// WinCert and WinSql alias = the certificate's thumbprint: 40 hex digits, uppercase; spaces, colons
// and the invisible U+200E that Windows' certificate dialog puts in front are stripped.
//
// IISU alias = "THUMB:Site:IP:Port:Host", the extension's format (IIS bindingInformation behind the
// thumbprint and site). IIS site names cannot contain ':', but IPv6 binding addresses can, so we
// parse it from both ends instead of splitting on every ':':
//   * thumbprint = the first 40 hex digits, which must be followed by ':';
//   * site       = up to the next ':';
//   * the rest is "IP:Port:Host": host = the text after the last ':' (may be empty), port = the
//     numeric field before it, IP = everything between the site and the port. A bracketed IPv6
//     address ("[2001:db8::1]") and an unbracketed one ("2001:db8::1") both work; IP is returned
//     without brackets ("*", "10.0.0.5", "2001:db8::1").
//   * the extension's 4-part form "THUMB:Site:IP:Port" (no host) is accepted when the rest has
//     exactly one ':' outside brackets.
// Built aliases always use the 5-part form, with IPv6 in brackets as IIS writes bindingInformation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "jobs/job_config.hpp"

namespace wincert::jobs {

// Validates and normalises a thumbprint; `field` names where it came from in the error.
Result<std::string> normalize_thumbprint(std::string_view text, std::string_view field);

struct IisAlias {
  std::string thumbprint;
  std::string site_name;
  std::string ip_address;  // without brackets
  std::uint16_t port = 0;
  std::string host_name;  // empty = all host names
};
Result<IisAlias> parse_iis_alias(std::string_view alias);
std::string build_iis_alias(std::string_view thumbprint, std::string_view site_name, std::string_view ip_address,
                            std::uint16_t port, std::string_view host_name);

// "IP:Port:Host" as IIS writes bindingInformation (IPv6 bracketed).
std::string binding_information(std::string_view ip_address, std::uint16_t port, std::string_view host_name);

// IIS sslFlags from the SniFlag entry parameter, normalised as the extension does: integer strings
// pass through (0..127, the bits IIS knows), true -> 1, false -> 0, the pre-2.5 option strings
// "0 - No SNI", "1 - SNI Enabled", "2 - Non SNI Binding", "3 - SNI Binding" -> 0..3; empty or
// anything else is an error naming SniFlag.
Result<int> normalize_sni_flag(std::string_view text);

// Compares IP addresses the way bindings are matched: "*" only equals "*"; IPv4/IPv6 compare by
// value ("2001:DB8::1" == "2001:db8:0::1"), brackets ignored.
bool same_ip_address(std::string_view a, std::string_view b);

struct IisBindingInfo {
  std::string site_name;
  std::string ip_address;  // "*" or an IPv4/IPv6 literal without brackets
  std::uint16_t port = 443;
  std::string host_name;
  int ssl_flags = 0;
  std::string protocol;  // "https" or "http"
};

// From entry parameters: SiteName, IPAddress and Protocol are required (the manifest's RequiredWhen),
// Port defaults to 443 and must be 1-65535, SniFlag defaults to 0, HostName to "".
Result<IisBindingInfo> iis_binding_from_entry_parameters(const EntryParameters& entry);

}  // namespace wincert::jobs
