// Client-certificate authentication for the WS-Man transport (reference winrm.md §3.8): the certificate
// and key are presented in the TLS handshake (TransportOptions::client_certificate_file / _key_file);
// every request carries the literal header
//   Authorization: http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual
// HTTPS only; the host maps the certificate to a local account (WinRM certmapping).
#pragma once

#include "winrm/http_auth.hpp"

namespace wincert::winrm {

inline constexpr std::string_view kCertificateAuthHeader =
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual";

class CertificateHttpAuth final : public HttpAuth {
 public:
  // certificate_file: shown in messages (the account is whatever the host maps the certificate to).
  explicit CertificateHttpAuth(std::string certificate_file) : certificate_file_(std::move(certificate_file)) {}

  std::string scheme() const override { return "Certificate"; }
  std::string principal() const override { return "the client certificate " + certificate_file_; }
  Status check_transport(const ConnectionInfo& connection) const override {
    if (!connection.tls)
      return Error::failed_precondition(
          "client certificate authentication needs https (the certificate is presented in "
          "the TLS handshake)");
    return {};
  }
  Status reset(const ConnectionInfo& connection) override { return check_transport(connection); }
  Result<std::optional<std::string>> authorization() override {
    return std::optional<std::string>(std::string(kCertificateAuthHeader));
  }
  Result<ChallengeOutcome> on_challenge(const std::vector<std::string>& www_authenticate) override {
    (void)www_authenticate;
    return ChallengeOutcome::kFailed;  // no second leg: the host did not accept (or map) the certificate
  }

 private:
  std::string certificate_file_;
};

}  // namespace wincert::winrm
