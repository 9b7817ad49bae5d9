#include "winrm/auth/ntlm.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <chrono>

#include "winrm/auth/channel_binding.hpp"

namespace wincert::winrm::ntlm {
namespace {

// Upper-cases one UTF-16 code unit the way RtlUpcaseUnicodeChar does for the common scripts (ASCII,
// Latin-1, Latin Extended-A, Greek, Cyrillic); other characters are left as they are.
std::uint16_t upcase_unit(std::uint16_t c) {
  if (c >= 'a' && c <= 'z') return static_cast<std::uint16_t>(c - 0x20);
  if ((c >= 0xE0 && c <= 0xFE && c != 0xF7)) return static_cast<std::uint16_t>(c - 0x20);
  if (c == 0xFF) return 0x178;
  if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x17F) {
    // Latin Extended-A pairs: even = upper, odd = lower, except the ranges that are shifted by one.
    const bool shifted = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
    if (shifted) return (c % 2 == 0) ? static_cast<std::uint16_t>(c - 1) : c;
    return (c % 2 == 1) ? static_cast<std::uint16_t>(c - 1) : c;
  }
  if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return static_cast<std::uint16_t>(c - 0x20);
  if (c >= 0x430 && c <= 0x44F) return static_cast<std::uint16_t>(c - 0x20);
  if (c >= 0x450 && c <= 0x45F) return static_cast<std::uint16_t>(c - 0x50);
  return c;
}

std::string upper_utf16le(std::string_view utf8) {
  std::string units = utf8_to_utf16le(utf8);
  for (std::size_t i = 0; i + 1 < units.size(); i += 2) {
    const auto c = static_cast<std::uint16_t>(static_cast<unsigned char>(units[i]) |
                                              (static_cast<unsigned char>(units[i + 1]) << 8));
    const auto u = upcase_unit(c);
    units[i] = static_cast<char>(u & 0xFF);
    units[i + 1] = static_cast<char>(u >> 8);
  }
  return units;
}

Bytes le_bytes(std::uint64_t v, int n) {
  Bytes out;
  for (int i = 0; i < n; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  return out;
}

Bytes utf16_bytes(std::string_view utf8) {
  const std::string s = utf8_to_utf16le(utf8);
  return Bytes(s.begin(), s.end());
}

// Clears key material held in a local buffer when the scope ends.
template <typename Buffer>
struct Cleanse {
  Buffer& buffer;
  ~Cleanse() { OPENSSL_cleanse(buffer.data(), buffer.size()); }
};
template <typename Buffer>
Cleanse(Buffer&) -> Cleanse<Buffer>;

}  // namespace

Result<Credentials> parse_credentials(std::string_view user_spec, Secret password) {
  Credentials out;
  out.password = std::move(password);
  if (const auto slash = user_spec.find('\\'); slash != std::string_view::npos) {
    out.domain = std::string(user_spec.substr(0, slash));
    out.user = std::string(user_spec.substr(slash + 1));
  } else {
    out.user = std::string(user_spec);  // "user" or a UPN "user@realm" (domain stays empty)
  }
  if (out.user.empty())
    return Error::invalid_argument("NTLM: the user name is empty; use DOMAIN\\user, user@domain or a local user name");
  return out;
}

Result<Digest16> nt_owf_v2(const Secret& password, std::string_view user, std::string_view domain) {
  std::string password_utf16 = utf8_to_utf16le(password.reveal());
  Cleanse clear_password{password_utf16};
  auto nt_hash = ntlm_crypto::md4(ntlm_crypto::view(password_utf16));
  if (!nt_hash) return nt_hash.error();
  Cleanse clear_hash{*nt_hash};
  const std::string identity = upper_utf16le(user) + utf8_to_utf16le(domain);
  return ntlm_crypto::hmac_md5(*nt_hash, ntlm_crypto::view(identity));
}

Result<NtlmV2Response> compute_ntlmv2_response(const Digest16& response_key_nt, const Challenge8& server_challenge,
                                               const Challenge8& client_challenge, std::uint64_t filetime,
                                               ByteView target_info) {
  // temp = RespType 1, HiRespType 1, Z(6), Time, ClientChallenge, Z(4), AV pairs, Z(4)
  Bytes temp = {1, 1, 0, 0, 0, 0, 0, 0};
  const Bytes time = le_bytes(filetime, 8);
  temp.insert(temp.end(), time.begin(), time.end());
  temp.insert(temp.end(), client_challenge.begin(), client_challenge.end());
  temp.insert(temp.end(), 4, 0);
  temp.insert(temp.end(), target_info.begin(), target_info.end());
  temp.insert(temp.end(), 4, 0);

  NtlmV2Response out;
  auto proof = ntlm_crypto::hmac_md5(response_key_nt, {server_challenge, temp});
  if (!proof) return proof.error();
  out.nt_proof_str = *proof;
  auto base = ntlm_crypto::hmac_md5(response_key_nt, out.nt_proof_str);
  if (!base) return base.error();
  out.session_base_key = *base;
  out.nt_challenge_response.assign(out.nt_proof_str.begin(), out.nt_proof_str.end());
  out.nt_challenge_response.insert(out.nt_challenge_response.end(), temp.begin(), temp.end());
  return out;
}

Result<Bytes> lmv2_response(const Digest16& response_key_lm, const Challenge8& server_challenge,
                            const Challenge8& client_challenge) {
  auto mac = ntlm_crypto::hmac_md5(response_key_lm, {server_challenge, client_challenge});
  if (!mac) return mac.error();
  Bytes out(mac->begin(), mac->end());
  out.insert(out.end(), client_challenge.begin(), client_challenge.end());
  return out;
}

std::uint64_t filetime_now() {
  constexpr std::uint64_t kUnixEpochAsFiletime = 116444736000000000ULL;
  const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  const auto ticks = std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch).count() / 100;
  return kUnixEpochAsFiletime + static_cast<std::uint64_t>(ticks);
}

Client::Client(Credentials credentials, ClientOptions options)
    : credentials_(std::move(credentials)), options_(std::move(options)) {}

void Client::reset() {
  negotiate_message_.clear();
  negotiated_flags_ = 0;
  session_.reset();
}

Result<Bytes> Client::negotiate() {
  reset();
  WINCERT_TRY(ntlm_crypto::legacy_provider_available());
  negotiate_message_ = encode_negotiate(options_.flags, options_.version);
  return negotiate_message_;
}

Result<Bytes> Client::authenticate(ByteView challenge_bytes) {
  if (negotiate_message_.empty())
    return Error::internal("NTLM: a CHALLENGE arrived before the NEGOTIATE message was sent");
  if (session_) return Error::invalid_argument("NTLM: a second CHALLENGE arrived on an authenticated context");
  auto challenge = parse_challenge(challenge_bytes);
  if (!challenge) return challenge.error();

  const std::uint32_t flags = challenge->flags & options_.flags;
  if (!(flags & flag::kUnicode))
    return Error::failed_precondition("NTLM: the server did not agree to Unicode; only Unicode NTLM is supported");
  if (!(flags & flag::kExtendedSessionSecurity))
    return Error::failed_precondition(
        "NTLM: the server did not agree to extended session security (NTLMv2 with ESS "
        "is required); check LmCompatibilityLevel on the server");
  if (options_.require_sealing && (flags & (flag::kSign | flag::kSeal)) != (flag::kSign | flag::kSeal))
    return Error::failed_precondition(
        "NTLM: the server did not agree to signing and sealing, which WinRM message "
        "encryption over HTTP needs; use HTTPS or check the server's NTLM policy");

  auto response_key = nt_owf_v2(credentials_.password, credentials_.user, credentials_.domain);
  if (!response_key) return response_key.error();
  Cleanse clear_response_key{*response_key};

  // Client-modified AV pairs: the server's list plus MIC flag, SPN and channel bindings.
  TargetInfo target_info = challenge->target_info;
  const std::optional<std::uint64_t> server_time = target_info.timestamp();
  const bool use_mic = server_time.has_value();
  if (use_mic) {
    const std::uint32_t av_flags = target_info.av_flags().value_or(0) | kAvFlagMicPresent;
    target_info.set(AvId::kFlags, le_bytes(av_flags, 4));
  }
  if (options_.channel_binding_application_data) {
    auto cbt = ntlm_channel_bindings_hash(*options_.channel_binding_application_data);
    if (!cbt) return cbt.error();
    target_info.set(AvId::kChannelBindings, Bytes(cbt->begin(), cbt->end()));
  }
  if (!options_.target_spn.empty()) target_info.set(AvId::kTargetName, utf16_bytes(options_.target_spn));
  const Bytes encoded_target_info = target_info.encode();

  Challenge8 client_challenge{};
  WINCERT_TRY(options_.random(client_challenge));
  const std::uint64_t time = server_time.value_or(options_.clock());
  auto v2 =
      compute_ntlmv2_response(*response_key, challenge->server_challenge, client_challenge, time, encoded_target_info);
  if (!v2) return v2.error();
  Cleanse clear_base_key{v2->session_base_key};

  AuthenticateFields fields;
  fields.flags = flags;
  fields.domain = credentials_.domain;
  fields.user = credentials_.user;
  fields.workstation = options_.workstation;
  fields.version = options_.version;
  fields.nt_challenge_response = std::move(v2->nt_challenge_response);
  if (use_mic) {
    fields.lm_challenge_response.assign(24, 0);  // MS-NLMP 3.1.5.1.2: zeros when a MIC is sent
  } else {
    auto lm = lmv2_response(*response_key, challenge->server_challenge, client_challenge);
    if (!lm) return lm.error();
    fields.lm_challenge_response = std::move(*lm);
  }

  Digest16 exported_session_key = v2->session_base_key;
  Cleanse clear_exported{exported_session_key};
  if (flags & flag::kKeyExchange) {
    WINCERT_TRY(options_.random(exported_session_key));
    auto encrypted = ntlm_crypto::rc4k(v2->session_base_key, exported_session_key);
    if (!encrypted) return encrypted.error();
    fields.encrypted_random_session_key = std::move(*encrypted);
  }

  Bytes message = encode_authenticate(fields);
  if (use_mic) {
    auto mic = ntlm_crypto::hmac_md5(exported_session_key, {negotiate_message_, challenge_bytes, message});
    if (!mic) return mic.error();
    std::copy(mic->begin(), mic->end(), message.begin() + kMicOffset);
  }

  auto session = Session::create(exported_session_key, flags, Role::kInitiator);
  if (!session) return session.error();
  session_.emplace(std::move(*session));
  negotiated_flags_ = flags;
  return message;
}

}  // namespace wincert::winrm::ntlm
