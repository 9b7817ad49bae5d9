// Kerberos and Negotiate for the WS-Man transport's HttpAuth seam (winrm/http_auth.hpp), on top of the
// GSSAPI client context (winrm/auth/gssapi_context.hpp). Reference: shared/reference/winrm.md §3.6, §3.9.
//
//   KerberosHttpAuth   "Authorization: Kerberos <raw krb5 AP-REQ>", encrypted bodies use
//                      application/HTTP-Kerberos-session-encrypted.
//   NegotiateHttpAuth  "Authorization: Negotiate <SPNEGO(krb5)>", application/HTTP-SPNEGO-session-encrypted;
//                      falls back to native NTLM (NtlmHttpAuth) when no Kerberos ticket can be had (no
//                      credentials, KDC unreachable, no realm for the user), and says why at debug level.
//
// Both send the token preemptively on the first request of a connection, check the server's AP-REP on
// the final 200 (mutual authentication) before anything is sealed, bind the TLS channel on HTTPS
// (tls-server-end-point of the server certificate), and encrypt bodies on plain HTTP (never a SOAP body
// in clear over HTTP with these schemes). One security context per connection: reset() starts over.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "winrm/auth/gssapi_context.hpp"
#include "winrm/auth/ntlm_http_auth.hpp"
#include "winrm/http_auth.hpp"

namespace wincert::winrm {

struct GssHttpAuthOptions {
  enum class Encryption { kAuto, kAlways, kNever };
  // kAuto: encrypt on plain HTTP, not inside TLS. kNever over plain HTTP is refused.
  Encryption encryption = Encryption::kAuto;
  std::string service = "HTTP";  // SPN service class
  // Host name the SPN is built from when it differs from the endpoint host (e.g. endpoint by IP).
  std::string spn_host;
  bool spn_with_port = false;  // "HTTP/host:port"
  bool delegate = false;       // forward the TGT
};

// The Kerberos ("Kerberos" scheme) or SPNEGO ("Negotiate" scheme) HttpAuth without any fallback.
class GssHttpAuth final : public HttpAuth {
 public:
  // user: "user@REALM", "DOMAIN\user" or empty (the default identity: ccache / client keytab).
  // password: empty = use the ccache / client keytab for `user`.
  GssHttpAuth(gss::HttpScheme scheme, std::string user, Secret password, GssHttpAuthOptions options = {});
  ~GssHttpAuth() override;

  std::string scheme() const override;
  std::string principal() const override;
  Status check_transport(const ConnectionInfo& connection) const override;
  Status reset(const ConnectionInfo& connection) override;
  Result<std::optional<std::string>> authorization() override;
  Result<ChallengeOutcome> on_challenge(const std::vector<std::string>& www_authenticate) override;
  Status on_response(const std::vector<std::string>& www_authenticate) override;

  bool may_block() const override { return true; }  // gss_init_sec_context may ask a KDC
  bool encrypts() const override { return encrypt_; }
  Result<HttpBody> wrap(std::string_view soap) override;
  Result<std::string> unwrap(std::string_view body, std::string_view content_type) override;

  // True once the current connection's context is complete and mutually authenticated.
  bool authenticated() const { return state_ == State::kDone; }

 private:
  enum class State { kStart, kSent, kDone };
  Status new_context();

  gss::HttpScheme scheme_;
  std::string user_;
  Secret password_;
  GssHttpAuthOptions options_;
  ConnectionInfo connection_;
  std::string where_;
  bool encrypt_ = false;
  State state_ = State::kStart;
  std::string pending_token_;  // base64 token for the next authorization()
  bool restarted_ = false;     // one fresh handshake after a 401 in the middle of a session
  std::optional<std::string> channel_binding_;
  std::unique_ptr<gss::GssContext> context_;
};

// "Kerberos" scheme.
class KerberosHttpAuth final : public HttpAuth {
 public:
  KerberosHttpAuth(std::string user, Secret password, GssHttpAuthOptions options = {});
  std::string scheme() const override { return inner_.scheme(); }
  std::string principal() const override { return inner_.principal(); }
  Status check_transport(const ConnectionInfo& c) const override { return inner_.check_transport(c); }
  Status reset(const ConnectionInfo& c) override { return inner_.reset(c); }
  Result<std::optional<std::string>> authorization() override { return inner_.authorization(); }
  Result<ChallengeOutcome> on_challenge(const std::vector<std::string>& w) override { return inner_.on_challenge(w); }
  Status on_response(const std::vector<std::string>& w) override { return inner_.on_response(w); }
  bool may_block() const override { return true; }
  bool encrypts() const override { return inner_.encrypts(); }
  Result<HttpBody> wrap(std::string_view soap) override { return inner_.wrap(soap); }
  Result<std::string> unwrap(std::string_view b, std::string_view ct) override { return inner_.unwrap(b, ct); }

 private:
  GssHttpAuth inner_;
};

// "Negotiate" scheme: SPNEGO/Kerberos, or native NTLM when Kerberos is impossible.
class NegotiateHttpAuth final : public HttpAuth {
 public:
  NegotiateHttpAuth(std::string user, Secret password, GssHttpAuthOptions options = {});

  std::string scheme() const override { return "Negotiate"; }
  std::string principal() const override { return user_.empty() ? active().principal() : user_; }
  Status check_transport(const ConnectionInfo& connection) const override;
  Status reset(const ConnectionInfo& connection) override;
  Result<std::optional<std::string>> authorization() override { return active().authorization(); }
  Result<ChallengeOutcome> on_challenge(const std::vector<std::string>& w) override { return active().on_challenge(w); }
  Status on_response(const std::vector<std::string>& w) override { return active().on_response(w); }
  bool may_block() const override { return true; }  // Kerberos first; NTLM is cheap either way
  bool encrypts() const override { return active().encrypts(); }
  Result<HttpBody> wrap(std::string_view soap) override { return active().wrap(soap); }
  Result<std::string> unwrap(std::string_view b, std::string_view ct) override { return active().unwrap(b, ct); }

  // True once Kerberos was given up for NTLM (sticky for this object).
  bool using_ntlm() const { return use_ntlm_; }

 private:
  HttpAuth& active() const { return use_ntlm_ ? static_cast<HttpAuth&>(*ntlm_) : static_cast<HttpAuth&>(*kerberos_); }

  std::string user_;
  bool have_password_ = false;
  std::unique_ptr<GssHttpAuth> kerberos_;
  std::unique_ptr<NtlmHttpAuth> ntlm_;
  bool use_ntlm_ = false;
};

// True when a Kerberos failure means "no ticket can be had here" (no credentials, no reachable KDC,
// no realm for the user) rather than "the credentials are wrong": Negotiate may then use NTLM.
bool kerberos_unavailable(const Error& error);

// The base64 token of the first "<scheme> <token>" among WWW-Authenticate values; nullopt when none.
std::optional<std::string> scheme_token(const std::vector<std::string>& www_authenticate, std::string_view scheme);

}  // namespace wincert::winrm
