// NTLM for the WS-Man transport's HttpAuth seam (winrm/http_auth.hpp): raw NTLMSSP tokens in the
// "Negotiate" scheme (as pywinrm/requests-ntlm and Ruby send them; Windows accepts them), the SPN as
// MsvAvTargetName, TLS channel binding from the server certificate, and HTTP message encryption
// (multipart/encrypted, application/HTTP-SPNEGO-session-encrypted) on plain HTTP.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "winrm/auth/ntlm.hpp"
#include "winrm/http_auth.hpp"

namespace wincert::winrm {

struct NtlmHttpAuthOptions {
  enum class Encryption { kAuto, kAlways, kNever };
  // kAuto: encrypt on plain HTTP, not inside TLS (pywinrm/pypsrp "auto"). kNever over plain HTTP is
  // refused: Windows' default AllowUnencrypted=false rejects it and SOAP would travel in clear.
  Encryption encryption = Encryption::kAuto;
  std::string service = "HTTP";  // SPN service class for MsvAvTargetName ("HTTP/host")
  bool spn_with_port = false;    // "HTTP/host:port"
  std::string workstation;       // sent in AUTHENTICATE; empty by default
};

class NtlmHttpAuth final : public HttpAuth {
 public:
  // user: "DOMAIN\user", "user@domain" (UPN) or a local "user".
  NtlmHttpAuth(std::string user, Secret password, NtlmHttpAuthOptions options = {});

  std::string scheme() const override { return "Negotiate"; }
  std::string principal() const override { return user_; }
  Status check_transport(const ConnectionInfo& connection) const override;
  Status reset(const ConnectionInfo& connection) override;
  Result<std::optional<std::string>> authorization() override;
  Result<ChallengeOutcome> on_challenge(const std::vector<std::string>& www_authenticate) override;
  Status on_response(const std::vector<std::string>& www_authenticate) override;

  bool encrypts() const override { return encrypt_; }
  Result<HttpBody> wrap(std::string_view soap) override;
  Result<std::string> unwrap(std::string_view body, std::string_view content_type) override;

  // For tests and diagnostics: the flags both sides agreed on (0 before authentication).
  std::uint32_t negotiated_flags() const { return negotiated_flags_; }

 private:
  enum class State { kStart, kSentNegotiate, kHaveAuthenticate, kSentAuthenticate, kDone };

  std::string user_;
  Secret password_;
  NtlmHttpAuthOptions options_;
  std::string where_;  // "host:port" for messages
  bool encrypt_ = false;
  State state_ = State::kStart;
  bool restarted_ = false;  // one fresh handshake after a 401 in the middle of a session
  std::optional<ntlm::Client> client_;
  std::string pending_token_;  // base64 AUTHENTICATE waiting for authorization()
  std::optional<ntlm::NtlmSealer> sealer_;
  std::uint32_t negotiated_flags_ = 0;
};

// The base64 token of the first "Negotiate <token>" in a list of WWW-Authenticate values (values may
// hold several comma-separated challenges). nullopt when none carries a token.
std::optional<std::string> negotiate_token(const std::vector<std::string>& www_authenticate);

}  // namespace wincert::winrm
