#include "agent/winrm_auth_factory.hpp"

#include <utility>

#include "common/log.hpp"
#include "winrm/auth/certificate_http_auth.hpp"
#include "winrm/auth/negotiate_http_auth.hpp"
#include "winrm/auth/ntlm_http_auth.hpp"

namespace wincert::agent {

using jobs::AuthScheme;

Result<std::unique_ptr<winrm::HttpAuth>> make_http_auth(const HttpAuthSpec& spec,
                                                        const std::string& client_certificate_file) {
  if (!spec.scheme) return std::unique_ptr<winrm::HttpAuth>();
  switch (*spec.scheme) {
    case AuthScheme::kBasic:
      if (spec.user.empty()) return Error::invalid_argument("Basic authentication needs a user name");
      return std::unique_ptr<winrm::HttpAuth>(
          std::make_unique<winrm::BasicAuth>(spec.user, spec.password, spec.allow_unencrypted));
    case AuthScheme::kNtlm: {
      if (spec.user.empty()) return Error::invalid_argument("NTLM authentication needs a user name (DOMAIN\\user)");
      winrm::NtlmHttpAuthOptions options;
      options.spn_with_port = spec.spn_with_port;
      return std::unique_ptr<winrm::HttpAuth>(std::make_unique<winrm::NtlmHttpAuth>(spec.user, spec.password, options));
    }
    case AuthScheme::kKerberos:
    case AuthScheme::kNegotiate: {
      winrm::GssHttpAuthOptions options;
      options.spn_with_port = spec.spn_with_port;
      if (*spec.scheme == AuthScheme::kKerberos) {
        return std::unique_ptr<winrm::HttpAuth>(
            std::make_unique<winrm::KerberosHttpAuth>(spec.user, spec.password, options));
      }
      return std::unique_ptr<winrm::HttpAuth>(
          std::make_unique<winrm::NegotiateHttpAuth>(spec.user, spec.password, options));
    }
    case AuthScheme::kCertificate:
      if (client_certificate_file.empty()) {
        return Error::invalid_argument("certificate authentication needs a client certificate and key (PEM files)");
      }
      return std::unique_ptr<winrm::HttpAuth>(std::make_unique<winrm::CertificateHttpAuth>(client_certificate_file));
  }
  return Error::invalid_argument("unknown WinRM authentication scheme");
}

winrm::TransportOptions transport_options_for(const winrm::TransportOptions& agent,
                                              std::optional<jobs::AuthScheme> scheme) {
  winrm::TransportOptions options = agent;
  if (scheme != AuthScheme::kCertificate) {
    options.client_certificate_file.clear();
    options.client_key_file.clear();
  }
  return options;
}

Result<std::unique_ptr<winrm::WsmanTransport>> make_transport(boost::asio::any_io_executor executor,
                                                              winrm::Endpoint endpoint, const HttpAuthSpec& spec,
                                                              winrm::TransportOptions options) {
  auto auth = make_http_auth(spec, options.client_certificate_file);
  if (!auth.ok()) return auth.error();
  if (endpoint.tls && !options.connect.verify_peer) {
    logger("winrm")->warn("TLS certificate verification is OFF for {} (insecure-skip-verify)", endpoint.url());
  }
  return winrm::WsmanTransport::create(std::move(executor), std::move(endpoint), std::move(auth.value()),
                                       std::move(options));
}

}  // namespace wincert::agent
