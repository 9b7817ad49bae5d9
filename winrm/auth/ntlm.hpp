// Native NTLMv2 client (MS-NLMP) for WinRM: NEGOTIATE -> CHALLENGE -> AUTHENTICATE with MIC, target
// name (SPN), channel bindings and key exchange, then a Session for message encryption.
//
// Use on one keep-alive connection (winrm.md 3.2):
//   auto credentials = ntlm::parse_credentials("DOMAIN\\user", Secret(password));
//   ntlm::ClientOptions options;
//   options.target_spn = "HTTP/" + host;
//   if (tls) options.channel_binding_application_data = *tls_server_end_point_application_data(peer_cert);
//   ntlm::Client client(std::move(*credentials), options);
//   auto negotiate = client.negotiate();            // -> "Authorization: Negotiate " + base64(*negotiate)
//   auto authenticate = client.authenticate(token); // token = base64-decoded WWW-Authenticate of the 401
//   ntlm::NtlmSealer sealer(std::move(*client.take_session()));  // for multipart/encrypted bodies
// After a 401 on an established connection or a lost connection: start again with negotiate() (it
// resets everything) and drop the old sealer.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/encoding.hpp"
#include "common/result.hpp"
#include "common/secret.hpp"
#include "winrm/auth/ntlm_messages.hpp"
#include "winrm/auth/ntlm_session.hpp"

namespace wincert::winrm::ntlm {

struct Credentials {
  std::string user;    // as sent in the AUTHENTICATE message
  std::string domain;  // may be empty (local account or UPN)
  Secret password;
};

// "DOMAIN\user" -> {user, DOMAIN}; "user@realm" (UPN) -> {user@realm, ""} as Windows and pyspnego do;
// "user" -> {user, ""}. An empty user is an error.
Result<Credentials> parse_credentials(std::string_view user_spec, Secret password);

// ---- NTLMv2 primitives (MS-NLMP 3.3.2), public for the published test vectors ---------------------

// NTOWFv2 = HMAC_MD5(MD4(UTF16LE(password)), UTF16LE(UPPER(user) + domain)).
Result<Digest16> nt_owf_v2(const Secret& password, std::string_view user, std::string_view domain);

struct NtlmV2Response {
  Bytes nt_challenge_response;  // NTProofStr || temp
  Digest16 nt_proof_str{};
  Digest16 session_base_key{};  // = KeyExchangeKey for NTLMv2
};
// `target_info` is the encoded AV pair list (with MsvAvEOL) that goes into temp.
Result<NtlmV2Response> compute_ntlmv2_response(const Digest16& response_key_nt, const Challenge8& server_challenge,
                                               const Challenge8& client_challenge, std::uint64_t filetime,
                                               ByteView target_info);
// LMv2 = HMAC_MD5(ResponseKeyLM, ServerChallenge || ClientChallenge) || ClientChallenge.
Result<Bytes> lmv2_response(const Digest16& response_key_lm, const Challenge8& server_challenge,
                            const Challenge8& client_challenge);
// Windows FILETIME (100 ns since 1601-01-01) for the current time.
std::uint64_t filetime_now();

// ---- the client context --------------------------------------------------------------------------

struct ClientOptions {
  // The SPN written to MsvAvTargetName, e.g. "HTTP/host.example.com". Empty: omitted.
  std::string target_spn;
  // On TLS: "tls-server-end-point:" || hash (channel_binding.hpp). Unset without TLS, and then no
  // MsvAvChannelBindings entry is written at all.
  std::optional<std::string> channel_binding_application_data;
  std::string workstation;  // usually empty
  std::uint32_t flags = kWinrmClientFlags;
  // Fail when the server does not agree to SIGN+SEAL (needed for HTTP message encryption).
  bool require_sealing = true;
  Version version;
  // Test hooks: random source (client challenge, exported session key) and clock.
  std::function<Status(std::span<std::uint8_t>)> random = ntlm_crypto::random_bytes;
  std::function<std::uint64_t()> clock = filetime_now;
};

class Client {
 public:
  Client(Credentials credentials, ClientOptions options);

  // Step 1: the NEGOTIATE message (send base64 in `Authorization: Negotiate ...`).
  Result<Bytes> negotiate();
  // Step 2: parses the server's CHALLENGE and returns the AUTHENTICATE message. After success,
  // session() is ready.
  Result<Bytes> authenticate(ByteView challenge);

  bool complete() const { return session_.has_value(); }
  std::uint32_t negotiated_flags() const { return negotiated_flags_; }
  // The sign/seal state after authenticate(); nullptr before.
  Session* session() { return session_ ? &*session_ : nullptr; }
  // Moves the session out (e.g. into an NtlmSealer); the client is incomplete afterwards.
  std::optional<Session> take_session() {
    std::optional<Session> out = std::move(session_);
    session_.reset();
    return out;
  }
  // Forgets all state (messages, keys, session) so negotiate() starts over on a new connection.
  void reset();

 private:
  Credentials credentials_;
  ClientOptions options_;
  Bytes negotiate_message_;
  std::uint32_t negotiated_flags_ = 0;
  std::optional<Session> session_;
};

}  // namespace wincert::winrm::ntlm
