// WinRM message encryption over HTTP (MS-WSMV 2.2.9.1): the multipart/encrypted body framing and the
// interface each authentication mechanism implements to seal and unseal one SOAP message.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace wincert::winrm {

inline constexpr std::string_view kSpnegoEncryptedProtocol = "application/HTTP-SPNEGO-session-encrypted";
inline constexpr std::string_view kKerberosEncryptedProtocol = "application/HTTP-Kerberos-session-encrypted";
inline constexpr std::string_view kEncryptedBoundary = "Encrypted Boundary";

// Largest encrypted body parse_encrypted_body accepts (the transport limits bodies before this too).
inline constexpr std::size_t kMaxEncryptedBodyBytes = 64 * 1024 * 1024;
// Largest security header one part may declare (NTLM: 16, Kerberos AES: 60, RC4: 45; CredSSP TLS trailer).
inline constexpr std::size_t kMaxSealHeaderBytes = 4096;

// One sealed message: `header` is the security header/signature that goes after the uint32 length,
// `payload` the encrypted bytes that follow it.
struct SealedMessage {
  std::string header;
  std::string payload;
  // The Length= value for OriginalContent: the plaintext length plus any GSS padding that `payload`
  // carries (0 padding for NTLM and AES Kerberos; RC4 Kerberos pads).
  std::size_t original_length = 0;
};

// A security context able to seal WinRM messages. One per authenticated connection; the state (RC4
// streams, sequence numbers) advances with every call, so calls must follow the message order on
// the wire. Implementations: NTLM session security (winrm/auth/ntlm_session.hpp), GSSAPI Kerberos.
class MessageSealer {
 public:
  virtual ~MessageSealer() = default;

  // Seals one outgoing message.
  virtual Result<SealedMessage> wrap(std::string_view plain) = 0;
  // Verifies and decrypts one incoming part. A bad signature or tampered data is an Error.
  virtual Result<std::string> unwrap(std::string_view header, std::string_view payload) = 0;
  // kSpnegoEncryptedProtocol or kKerberosEncryptedProtocol (the value depends on the HTTP auth scheme
  // used: "Negotiate" -> SPNEGO even when Kerberos was chosen, "Kerberos" -> Kerberos).
  virtual std::string_view protocol_name() const = 0;
};

struct EncryptedBody {
  std::string body;          // the bytes to send as the HTTP body
  std::string content_type;  // the Content-Type header value
};

// Seals `plain` (a SOAP envelope, UTF-8) and frames it as one part pair:
//   --Encrypted Boundary\r\n\tContent-Type: <protocol>\r\n
//   \tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=<N>\r\n
//   --Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n
//   <uint32 LE header length><header><payload>--Encrypted Boundary--\r\n
// content_type = multipart/encrypted;protocol="<protocol>";boundary="Encrypted Boundary".
Result<EncryptedBody> build_encrypted_body(std::string_view plain, MessageSealer& sealer);

// Unframes and unseals a multipart/encrypted body (one or more part pairs, concatenated in order).
// Tolerates "-- Encrypted Boundary" (Exchange) and a last delimiter without the closing "--"; the
// boundary comes from the Content-Type. Every inconsistency (wrong protocol, truncated part, header
// length beyond the part, decrypted length != Length=) is an Error::invalid.
Result<std::string> parse_encrypted_body(std::string_view body, std::string_view content_type, MessageSealer& sealer);

// True when a Content-Type header value announces a multipart/encrypted body.
bool is_encrypted_content_type(std::string_view content_type);

}  // namespace wincert::winrm
