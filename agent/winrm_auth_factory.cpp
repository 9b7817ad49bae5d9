#include "agent/winrm_auth_factory.hpp"

#include <utility>

#include "common/log.hpp"
#include "winrm/auth/certificate_http_auth.hpp"
#include "winrm/auth/negotiate_http_auth.hpp"
#include "winrm/auth/ntlm_http_auth.hpp"

namespace wincert::agent {

using jobs::AuthScheme;

Result<std::unique_ptr<winrm::HttpAuth>> make_http_auth(const HttpAuthSpec& spec) {
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
      if (spec.client_certificate_file.empty()) {
        return Error::invalid_argument("certificate authentication needs a client certificate and key (PEM files)");
      }
      return std::unique_ptr<winrm::HttpAuth>(
          std::make_unique<winrm::CertificateHttpAuth>(spec.client_certificate_file));
  }
  return Error::invalid_argument("unknown WinRM authentication scheme");
}

winrm::TransportOptions make_transport_options(const TransportSettings& settings) {
  winrm::TransportOptions options;
  options.connect_timeout = settings.connect_timeout;
  options.tls_handshake_timeout = settings.connect_timeout;
  if (settings.read_timeout) options.read_timeout = *settings.read_timeout;
  options.ca_file = settings.ca_file;
  options.verify_peer = settings.verify_peer;
  options.client_certificate_file = settings.client_certificate_file;
  options.client_key_file = settings.client_key_file;
  options.observer = settings.observer;
  return options;
}

Result<std::unique_ptr<winrm::WsmanTransport>> make_transport(boost::asio::any_io_executor executor,
                                                              winrm::Endpoint endpoint, const HttpAuthSpec& spec,
                                                              const TransportSettings& settings) {
  auto auth = make_http_auth(spec);
  if (!auth.ok()) return auth.error();
  if (endpoint.tls && !settings.verify_peer) {
    logger("winrm")->warn("TLS certificate verification is OFF for {} (insecure-skip-verify)", endpoint.url());
  }
  return winrm::WsmanTransport::create(std::move(executor), std::move(endpoint), std::move(auth.value()),
                                       make_transport_options(settings));
}

}  // namespace wincert::agent
