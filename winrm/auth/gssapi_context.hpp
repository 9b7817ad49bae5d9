// Kerberos and SPNEGO (Negotiate) through MIT GSSAPI: the client context WinRM authenticates and seals
// messages with, and an acceptor for tests and winhost-sim. Reference: shared/reference/winrm.md §3.5,
// §3.6 and §3.9. GSSAPI types stay inside the .cpp files (no <gssapi.h> for includers).
//
// Client use (one context per HTTP connection):
//   auto ctx = GssContext::create({.target = {.host = "web01.corp.example"}, .user = "alice@CORP.EXAMPLE",
//                                  .password = Secret(pw)});
//   auto token = (*ctx)->step("");            // -> "Authorization: Negotiate base64(token)"
//   ... (*ctx)->step(ap_rep_from_server);     // until (*ctx)->complete(): mutual auth verified
//   auto sealed = (*ctx)->wrap(soap);         // MessageSealer, for multipart/encrypted bodies
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "common/secret.hpp"
#include "winrm/encryption.hpp"

namespace wincert::winrm::gss {

enum class Mechanism {
  kKerberos,  // raw RFC 4121 tokens ("Authorization: Kerberos", or Negotiate with a raw krb5 token)
  kSpnego,    // RFC 4178 Negotiate wrapping Kerberos (the only mechanism we let SPNEGO negotiate)
};

// Which HTTP scheme carries the tokens; it decides the multipart/encrypted protocol name (§3.9).
enum class HttpScheme { kNegotiate, kKerberos };

// The service the client authenticates to.
struct Target {
  std::string host;              // the name the SPN is registered for (FQDN; IP addresses have none)
  std::string service = "HTTP";  // "HTTP" (WinRM's usual SPN), "WSMAN" or "host" when overridden
  std::uint16_t port = 0;        // only used with spn_with_port
  bool spn_with_port = false;    // "HTTP/host:port" instead of "HTTP/host" (-IncludePortInSPN)
};

// "HTTP/host" or "HTTP/host:5985": the SPN as shown in messages.
std::string service_principal(const Target& target);

// Maps what a user types to a Kerberos principal: "user@corp.example" -> "user@CORP.EXAMPLE" (realms are
// upper case in AD), "CORP\user" -> "user@CORP.EXAMPLE" when default_realm's first label is CORP,
// otherwise "user@CORP"; a bare "user" stays as is (the default realm applies).
std::string map_user_principal(std::string_view user, std::string_view default_realm);

struct ClientOptions {
  Target target;
  Mechanism mechanism = Mechanism::kSpnego;
  HttpScheme scheme = HttpScheme::kNegotiate;
  // Empty user: the agent's own identity, i.e. the default ccache (KRB5CCNAME) or, when it holds no
  // ticket, the client keytab (KRB5_CLIENT_KTNAME). A user without password: that principal's ticket
  // from the ccache collection or client keytab. User and password: a TGT acquired in memory only
  // (nothing is written to a ccache). Note: MIT caches a TGT obtained from the client keytab in the
  // default ccache, as kinit -k would.
  std::string user;
  Secret password;
  bool delegate = false;  // GSS_C_DELEG_FLAG: forward the TGT (needs a forwardable ticket)
  // TLS channel binding application data ("tls-server-end-point:" || hash, §3.5); nullopt on plain HTTP.
  std::optional<std::string> channel_binding;
};

// What both implementations refuse before touching Kerberos: no target host, spn-with-port without a port,
// a password without a user.
Status check_client_options(const ClientOptions& options);

// The client (initiator) security context. Not copyable; one per authenticated connection.
class GssContext final : public MessageSealer {
 public:
  // Resolves the credentials (contacts the KDC when a password is given) and the target name.
  static Result<std::unique_ptr<GssContext>> create(ClientOptions options);
  ~GssContext() override;
  GssContext(const GssContext&) = delete;
  GssContext& operator=(const GssContext&) = delete;

  // One leg: input is the server's token (empty on the first call); returns the token to send, which
  // may be empty once the context is complete. Fails on a bad/tampered token, a KDC error, or when the
  // server did not prove its identity (no mutual authentication).
  Result<std::string> step(std::string_view input_token);
  // Established and mutually authenticated, with confidentiality and integrity available.
  bool complete() const;
  // True when the KDC granted delegation (the TGT is forwarded to the server).
  bool delegated() const;

  // The client principal in use ("alice@TEST.LOCAL") once known, otherwise the configured user.
  std::string client_principal() const;
  // "HTTP/host" or "HTTP/host:port".
  const std::string& target_spn() const;

  // MessageSealer (only once complete()). wrap: gss_wrap_iov(conf) with HEADER, DATA, PADDING and no
  // TRAILER, so the header carries the rotated trailer (60 bytes for AES); payload = data || padding.
  Result<SealedMessage> wrap(std::string_view plain) override;
  Result<std::string> unwrap(std::string_view header, std::string_view payload) override;
  std::string_view protocol_name() const override;

  struct Impl;

 private:
  explicit GssContext(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Acquires a TGT for user/password and stores it into `ccache` ("FILE:/path", "MEMORY:x", ...), like
// kinit. For callers that want one KDC round trip per agent start rather than per connection.
Status store_ticket_in_ccache(std::string_view user, const Secret& password, const std::string& ccache);

struct AcceptorOptions {
  // FILE path or "FILE:path" of the service keytab; empty: KRB5_KTNAME or the system default.
  std::string keytab;
  HttpScheme scheme = HttpScheme::kNegotiate;
  // Expected channel binding application data (TLS server-end-point); nullopt: none checked.
  std::optional<std::string> channel_binding;
  // Refuse clients that did not bind the channel (IIS/WinRM CbtHardeningLevel=Strict).
  bool require_channel_binding = false;
};

// The server (acceptor) side: accepts raw Kerberos or SPNEGO initiators; used by tests and winhost-sim.
class GssAcceptor final : public MessageSealer {
 public:
  static Result<std::unique_ptr<GssAcceptor>> create(AcceptorOptions options);
  ~GssAcceptor() override;
  GssAcceptor(const GssAcceptor&) = delete;
  GssAcceptor& operator=(const GssAcceptor&) = delete;

  // Feeds one client token; returns the reply token (AP-REP / SPNEGO response; may be empty).
  // Errors are Error::invalid (bad token) or Error::permanent (e.g. wrong key, replay, bad binding).
  Result<std::string> step(std::string_view client_token);
  bool complete() const;
  // The authenticated client principal ("alice@TEST.LOCAL"); empty before complete().
  const std::string& client_principal() const;
  // What the initiator used: raw Kerberos or SPNEGO.
  Mechanism mechanism() const;
  // The client asked for and sent a delegated credential.
  bool delegated() const;
  // The client's channel binding matched ours (MIT >= 1.19 reports it).
  bool channel_bound() const;

  Result<SealedMessage> wrap(std::string_view plain) override;
  Result<std::string> unwrap(std::string_view header, std::string_view payload) override;
  std::string_view protocol_name() const override;

  struct Impl;

 private:
  explicit GssAcceptor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace wincert::winrm::gss
