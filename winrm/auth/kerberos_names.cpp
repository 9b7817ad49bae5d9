// Kerberos naming rules shared by both GssContext implementations (MIT GSSAPI on Linux, SSPI on
// Windows): SPNs, the mapping of what a user types to a principal, and the options both accept.
// Pure code, no Kerberos library.
#include "common/encoding.hpp"
#include "winrm/auth/gssapi_context.hpp"

namespace wincert::winrm::gss {

Status check_client_options(const ClientOptions& options) {
  if (trim(options.target.host).empty()) {
    return Error::invalid_argument("Kerberos: no target host given (the SPN is built from it)");
  }
  if (options.target.spn_with_port && options.target.port == 0) {
    return Error::invalid_argument("Kerberos: spn-with-port needs the endpoint port");
  }
  if (!options.password.empty() && trim(options.user).empty()) {
    return Error::invalid_argument("Kerberos: a password was given without a user name");
  }
  return {};
}

std::string service_principal(const Target& target) {
  std::string spn = target.service + "/" + target.host;
  if (target.spn_with_port && target.port != 0) spn += ":" + std::to_string(target.port);
  return spn;
}

std::string map_user_principal(std::string_view user, std::string_view default_realm) {
  user = trim(user);
  if (const auto backslash = user.find('\\'); backslash != std::string_view::npos) {
    const std::string_view domain = user.substr(0, backslash);
    const std::string_view account = user.substr(backslash + 1);
    std::string realm = to_upper(domain);
    if (domain.find('.') == std::string_view::npos && !default_realm.empty()) {
      // NetBIOS name: "CORP\alice" belongs to realm CORP.EXAMPLE.COM when that is our default realm.
      const std::string_view first_label = default_realm.substr(0, default_realm.find('.'));
      if (iequals(first_label, domain)) realm = to_upper(default_realm);
    }
    return std::string(account) + "@" + realm;
  }
  if (const auto at = user.rfind('@'); at != std::string_view::npos) {
    return std::string(user.substr(0, at)) + "@" + to_upper(user.substr(at + 1));
  }
  return std::string(user);
}

}  // namespace wincert::winrm::gss
