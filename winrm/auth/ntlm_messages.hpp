// NTLM (MS-NLMP 2.2) message encoding and bounds-checked parsing: NEGOTIATE, CHALLENGE, AUTHENTICATE,
// AV_PAIR lists and the NTLMv2 client challenge. Every parser treats its input as hostile: each
// offset/length is validated against the buffer and any inconsistency is an Error::invalid.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/encoding.hpp"
#include "common/result.hpp"
#include "winrm/auth/legacy_crypto.hpp"

namespace wincert::winrm::ntlm {

using ntlm_crypto::ByteView;
using ntlm_crypto::Digest16;
using Challenge8 = std::array<std::uint8_t, 8>;

// NEGOTIATE flags (MS-NLMP 2.2.2.5).
namespace flag {
inline constexpr std::uint32_t kUnicode = 0x00000001;
inline constexpr std::uint32_t kOem = 0x00000002;
inline constexpr std::uint32_t kRequestTarget = 0x00000004;
inline constexpr std::uint32_t kSign = 0x00000010;
inline constexpr std::uint32_t kSeal = 0x00000020;
inline constexpr std::uint32_t kLmKey = 0x00000080;
inline constexpr std::uint32_t kNtlm = 0x00000200;
inline constexpr std::uint32_t kAnonymous = 0x00000800;
inline constexpr std::uint32_t kOemDomainSupplied = 0x00001000;
inline constexpr std::uint32_t kOemWorkstationSupplied = 0x00002000;
inline constexpr std::uint32_t kAlwaysSign = 0x00008000;
inline constexpr std::uint32_t kTargetTypeDomain = 0x00010000;
inline constexpr std::uint32_t kTargetTypeServer = 0x00020000;
inline constexpr std::uint32_t kExtendedSessionSecurity = 0x00080000;
inline constexpr std::uint32_t kIdentify = 0x00100000;
inline constexpr std::uint32_t kTargetInfo = 0x00800000;
inline constexpr std::uint32_t kVersion = 0x02000000;
inline constexpr std::uint32_t k128 = 0x20000000;
inline constexpr std::uint32_t kKeyExchange = 0x40000000;
inline constexpr std::uint32_t k56 = 0x80000000;
}  // namespace flag

// What a WinRM client asks for (winrm.md 3.3): sealing needs SIGN+SEAL+KEY_EXCH+128 with ESS.
inline constexpr std::uint32_t kWinrmClientFlags =
    flag::kUnicode | flag::kRequestTarget | flag::kSign | flag::kSeal | flag::kNtlm | flag::kAlwaysSign |
    flag::kExtendedSessionSecurity | flag::kTargetInfo | flag::kVersion | flag::k128 | flag::kKeyExchange | flag::k56;

// AV_PAIR identifiers (MS-NLMP 2.2.2.1).
enum class AvId : std::uint16_t {
  kEol = 0,
  kNbComputerName = 1,
  kNbDomainName = 2,
  kDnsComputerName = 3,
  kDnsDomainName = 4,
  kDnsTreeName = 5,
  kFlags = 6,
  kTimestamp = 7,
  kSingleHost = 8,
  kTargetName = 9,
  kChannelBindings = 10,
};
inline constexpr std::uint32_t kAvFlagMicPresent = 0x00000002;

struct AvPair {
  AvId id{};
  Bytes value;
};

// An AV_PAIR list without its terminating MsvAvEOL (encode() adds it back).
struct TargetInfo {
  std::vector<AvPair> pairs;

  const AvPair* find(AvId id) const;
  AvPair* find(AvId id);
  // Replaces the value of `id` or appends a new pair.
  void set(AvId id, Bytes value);
  // The MsvAvTimestamp value (FILETIME) when present and 8 bytes long.
  std::optional<std::uint64_t> timestamp() const;
  std::optional<std::uint32_t> av_flags() const;
  // The UTF-16 text of a name pair, as UTF-8.
  std::optional<std::string> text(AvId id) const;
  Bytes encode() const;
};

// Largest AV pair list we accept (a real CHALLENGE carries < 300 bytes).
inline constexpr std::size_t kMaxTargetInfoBytes = 16 * 1024;
// Largest NTLM message we accept from a peer.
inline constexpr std::size_t kMaxMessageBytes = 64 * 1024;

Result<TargetInfo> parse_target_info(ByteView data);

struct Version {
  std::uint8_t major = 10;
  std::uint8_t minor = 0;
  std::uint16_t build = 17763;
  std::uint8_t ntlm_revision = 0x0F;  // NTLMSSP_REVISION_W2K3
};

struct NegotiateMessage {
  std::uint32_t flags = 0;
  std::string domain;       // OEM, usually empty
  std::string workstation;  // OEM, usually empty
  std::optional<Version> version;
};

struct ChallengeMessage {
  std::uint32_t flags = 0;
  Challenge8 server_challenge{};
  std::string target_name;  // UTF-8
  TargetInfo target_info;
  Bytes target_info_raw;  // the AV pair bytes as received
  std::optional<Version> version;
};

struct AuthenticateMessage {
  std::uint32_t flags = 0;
  Bytes lm_challenge_response;
  Bytes nt_challenge_response;
  std::string domain;  // UTF-8
  std::string user;
  std::string workstation;
  Bytes encrypted_random_session_key;
  std::optional<Version> version;
  std::optional<Digest16> mic;  // present when the payload starts at or after offset 88
};
inline constexpr std::size_t kMicOffset = 72;

// The NTLMv2_CLIENT_CHALLENGE inside an NTLMv2 NtChallengeResponse (after the 16-byte NTProofStr).
struct NtlmV2ClientChallenge {
  Digest16 nt_proof_str{};
  std::uint64_t timestamp = 0;
  Challenge8 client_challenge{};
  TargetInfo target_info;
};

Bytes encode_negotiate(std::uint32_t flags, const Version& version);
Result<NegotiateMessage> parse_negotiate(ByteView data);
Result<ChallengeMessage> parse_challenge(ByteView data);
Result<AuthenticateMessage> parse_authenticate(ByteView data);
Result<NtlmV2ClientChallenge> parse_ntlmv2_response(ByteView nt_challenge_response);

// Fields of an AUTHENTICATE to encode; the MIC field is written as zeros (the caller patches it).
struct AuthenticateFields {
  std::uint32_t flags = 0;
  Bytes lm_challenge_response;
  Bytes nt_challenge_response;
  std::string domain;  // UTF-8, sent as UTF-16LE
  std::string user;
  std::string workstation;
  Bytes encrypted_random_session_key;
  Version version;
};
Bytes encode_authenticate(const AuthenticateFields& fields);

}  // namespace wincert::winrm::ntlm
