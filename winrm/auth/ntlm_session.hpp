// NTLM session security with extended session security (MS-NLMP 3.4.4.2): per-direction sign and
// seal keys, one RC4 stream and one sequence number per direction kept across messages. Used for
// WinRM message encryption (NtlmSealer) on the client, and available in the acceptor direction too.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/encoding.hpp"
#include "common/result.hpp"
#include "winrm/auth/legacy_crypto.hpp"
#include "winrm/encryption.hpp"

namespace wincert::winrm::ntlm {

using ntlm_crypto::ByteView;
using ntlm_crypto::Digest16;

enum class Role { kInitiator, kAcceptor };

inline constexpr std::size_t kSignatureSize = 16;

// SIGNKEY / SEALKEY (MS-NLMP 3.4.5.2, 3.4.5.3) for one direction. client_to_server picks the magic.
Result<Digest16> sign_key(const Digest16& exported_session_key, bool client_to_server);
Result<Digest16> seal_key(const Digest16& exported_session_key, std::uint32_t flags, bool client_to_server);

struct WrappedMessage {
  Digest16 signature{};  // NTLMSSP_MESSAGE_SIGNATURE: version 1, checksum (8), sequence number
  Bytes sealed;
};

class Session {
 public:
  // `flags` are the negotiated flags from the AUTHENTICATE message; EXTENDED_SESSIONSECURITY is required.
  static Result<Session> create(const Digest16& exported_session_key, std::uint32_t flags, Role role);
  Session(Session&&) noexcept = default;
  Session& operator=(Session&&) noexcept = default;
  ~Session();

  // GSS_WrapEx with confidentiality: seals and signs one outgoing message.
  Result<WrappedMessage> wrap(ByteView message);
  // GSS_UnwrapEx: decrypts one incoming message and verifies its signature. Tampered data, a wrong
  // sequence number or a wrong key is an Error; after that the inbound stream is out of step and the
  // connection must re-authenticate.
  Result<Bytes> unwrap(ByteView signature, ByteView sealed);
  // GSS_GetMICEx / GSS_VerifyMICEx (integrity only).
  Result<Digest16> sign(ByteView message);
  Status verify(ByteView message, ByteView signature);

  // Back to the state right after authentication: RC4 streams re-keyed, sequence numbers 0.
  Status reset();

  std::uint32_t flags() const { return flags_; }
  std::uint32_t outbound_sequence() const { return out_.sequence; }
  std::uint32_t inbound_sequence() const { return in_.sequence; }

 private:
  struct Direction {
    Digest16 sign_key{};
    Digest16 seal_key{};
    std::optional<ntlm_crypto::Rc4Stream> rc4;
    std::uint32_t sequence = 0;
  };
  Session() = default;
  Result<Digest16> make_signature(Direction& dir, ByteView message);

  std::uint32_t flags_ = 0;
  Direction out_;
  Direction in_;
};

// WinRM message encryption with an NTLM session (protocol application/HTTP-SPNEGO-session-encrypted):
// header = 16-byte signature, payload = RC4-sealed message.
class NtlmSealer final : public MessageSealer {
 public:
  explicit NtlmSealer(Session session) : session_(std::move(session)) {}
  Result<SealedMessage> wrap(std::string_view plain) override;
  Result<std::string> unwrap(std::string_view header, std::string_view payload) override;
  std::string_view protocol_name() const override { return kSpnegoEncryptedProtocol; }
  Session& session() { return session_; }

 private:
  Session session_;
};

}  // namespace wincert::winrm::ntlm
