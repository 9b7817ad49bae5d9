#include "winrm/auth/ntlm_messages.hpp"

#include <algorithm>
#include <cstring>
#include <string_view>

namespace wincert::winrm::ntlm {
namespace {

constexpr std::uint8_t kSignature[8] = {'N', 'T', 'L', 'M', 'S', 'S', 'P', 0};
constexpr std::uint32_t kNegotiateType = 1;
constexpr std::uint32_t kChallengeType = 2;
constexpr std::uint32_t kAuthenticateType = 3;
constexpr std::size_t kMaxAvPairs = 256;

std::uint16_t le16(ByteView d, std::size_t at) { return static_cast<std::uint16_t>(d[at] | (d[at + 1] << 8)); }
std::uint32_t le32(ByteView d, std::size_t at) {
  return static_cast<std::uint32_t>(d[at]) | (static_cast<std::uint32_t>(d[at + 1]) << 8) |
         (static_cast<std::uint32_t>(d[at + 2]) << 16) | (static_cast<std::uint32_t>(d[at + 3]) << 24);
}
std::uint64_t le64(ByteView d, std::size_t at) {
  return static_cast<std::uint64_t>(le32(d, at)) | (static_cast<std::uint64_t>(le32(d, at + 4)) << 32);
}
void put16(Bytes& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v));
  out.push_back(static_cast<std::uint8_t>(v >> 8));
}
void put32(Bytes& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void set16(Bytes& out, std::size_t at, std::uint16_t v) {
  out[at] = static_cast<std::uint8_t>(v);
  out[at + 1] = static_cast<std::uint8_t>(v >> 8);
}
void set32(Bytes& out, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void put_version(Bytes& out, const Version& v) {
  out.push_back(v.major);
  out.push_back(v.minor);
  put16(out, v.build);
  out.insert(out.end(), 3, 0);
  out.push_back(v.ntlm_revision);
}
Version read_version(ByteView d, std::size_t at) { return Version{d[at], d[at + 1], le16(d, at + 2), d[at + 7]}; }
std::string_view as_chars(ByteView d) { return {reinterpret_cast<const char*>(d.data()), d.size()}; }
Bytes to_bytes(ByteView d) { return Bytes(d.begin(), d.end()); }

// A security buffer (Len, MaxLen, Offset) inside a message.
struct FieldRef {
  std::uint16_t length = 0;
  std::uint32_t offset = 0;
};

// Reads the 8-byte field descriptor at `at` and checks the bytes it names lie inside the message and
// after the fixed header (`header_end`), so a crafted offset cannot alias the header or run off the end.
Result<ByteView> read_field(ByteView msg, std::size_t at, std::size_t header_end, std::string_view message_name,
                            std::string_view field_name, FieldRef* ref = nullptr) {
  const std::uint16_t length = le16(msg, at);
  const std::uint32_t offset = le32(msg, at + 4);
  if (ref) *ref = {length, offset};
  if (length == 0) return ByteView{};
  if (offset < header_end || static_cast<std::uint64_t>(offset) + length > msg.size())
    return Error::invalid_argument("NTLM " + std::string(message_name) + ": " + std::string(field_name) + " (offset " +
                                   std::to_string(offset) + ", length " + std::to_string(length) +
                                   ") lies outside the " + std::to_string(msg.size()) + "-byte message");
  return msg.subspan(offset, length);
}

Result<std::string> decode_text(ByteView bytes, bool unicode, std::string_view message_name,
                                std::string_view field_name) {
  if (!unicode) return std::string(as_chars(bytes));
  if (bytes.size() % 2 != 0)
    return Error::invalid_argument("NTLM " + std::string(message_name) + ": " + std::string(field_name) +
                                   " has an odd UTF-16 length " + std::to_string(bytes.size()));
  return utf16le_to_utf8(as_chars(bytes));
}

Status check_header(ByteView msg, std::uint32_t type, std::size_t min_size, std::string_view message_name) {
  if (msg.size() > kMaxMessageBytes)
    return Error::invalid_argument("NTLM " + std::string(message_name) + " is " + std::to_string(msg.size()) +
                                   " bytes, more than the " + std::to_string(kMaxMessageBytes) + "-byte limit");
  if (msg.size() < min_size)
    return Error::invalid_argument("NTLM " + std::string(message_name) + " is truncated: " +
                                   std::to_string(msg.size()) + " bytes, need at least " + std::to_string(min_size));
  if (std::memcmp(msg.data(), kSignature, sizeof kSignature) != 0)
    return Error::invalid_argument("NTLM " + std::string(message_name) + " does not start with the NTLMSSP signature");
  const std::uint32_t actual = le32(msg, 8);
  if (actual != type)
    return Error::invalid_argument("NTLM " + std::string(message_name) + " has message type " + std::to_string(actual) +
                                   ", expected " + std::to_string(type));
  return {};
}

// Smallest offset of the non-empty fields (where the payload begins), or the message size.
std::size_t payload_start(std::size_t msg_size, std::initializer_list<FieldRef> fields) {
  std::size_t start = msg_size;
  for (const auto& f : fields)
    if (f.length != 0) start = std::min<std::size_t>(start, f.offset);
  return start;
}

}  // namespace

// ---- AV pairs ----------------------------------------------------------------------------------

const AvPair* TargetInfo::find(AvId id) const {
  auto it = std::find_if(pairs.begin(), pairs.end(), [id](const AvPair& p) { return p.id == id; });
  return it == pairs.end() ? nullptr : &*it;
}

AvPair* TargetInfo::find(AvId id) {
  auto it = std::find_if(pairs.begin(), pairs.end(), [id](const AvPair& p) { return p.id == id; });
  return it == pairs.end() ? nullptr : &*it;
}

void TargetInfo::set(AvId id, Bytes value) {
  if (auto* p = find(id)) {
    p->value = std::move(value);
  } else {
    pairs.push_back({id, std::move(value)});
  }
}

std::optional<std::uint64_t> TargetInfo::timestamp() const {
  const auto* p = find(AvId::kTimestamp);
  if (!p || p->value.size() != 8) return std::nullopt;
  return le64(p->value, 0);
}

std::optional<std::uint32_t> TargetInfo::av_flags() const {
  const auto* p = find(AvId::kFlags);
  if (!p || p->value.size() != 4) return std::nullopt;
  return le32(p->value, 0);
}

std::optional<std::string> TargetInfo::text(AvId id) const {
  const auto* p = find(id);
  if (!p) return std::nullopt;
  return utf16le_to_utf8(as_chars(p->value));
}

Bytes TargetInfo::encode() const {
  Bytes out;
  for (const auto& p : pairs) {
    put16(out, static_cast<std::uint16_t>(p.id));
    put16(out, static_cast<std::uint16_t>(p.value.size()));
    out.insert(out.end(), p.value.begin(), p.value.end());
  }
  put16(out, static_cast<std::uint16_t>(AvId::kEol));
  put16(out, 0);
  return out;
}

Result<TargetInfo> parse_target_info(ByteView data) {
  if (data.size() > kMaxTargetInfoBytes)
    return Error::invalid_argument("NTLM target info is " + std::to_string(data.size()) +
                                   " bytes, more than the limit");
  TargetInfo info;
  std::size_t at = 0;
  while (true) {
    if (at + 4 > data.size())
      return Error::invalid_argument("NTLM target info: AV pair list ends at byte " + std::to_string(at) +
                                     " without the MsvAvEOL terminator");
    const auto id = le16(data, at);
    const auto length = le16(data, at + 2);
    at += 4;
    if (id == static_cast<std::uint16_t>(AvId::kEol)) {
      if (length != 0) return Error::invalid_argument("NTLM target info: MsvAvEOL has a non-zero length");
      break;  // bytes after EOL are padding; ignored as Windows does
    }
    if (at + length > data.size())
      return Error::invalid_argument("NTLM target info: AV pair " + std::to_string(id) + " of length " +
                                     std::to_string(length) + " runs past the end of the list");
    if (info.pairs.size() >= kMaxAvPairs) return Error::invalid_argument("NTLM target info: too many AV pairs");
    if (id == static_cast<std::uint16_t>(AvId::kTimestamp) && length != 8)
      return Error::invalid_argument("NTLM target info: MsvAvTimestamp must be 8 bytes, got " + std::to_string(length));
    if (id == static_cast<std::uint16_t>(AvId::kFlags) && length != 4)
      return Error::invalid_argument("NTLM target info: MsvAvFlags must be 4 bytes, got " + std::to_string(length));
    info.pairs.push_back({static_cast<AvId>(id), to_bytes(data.subspan(at, length))});
    at += length;
  }
  return info;
}

// ---- NEGOTIATE ---------------------------------------------------------------------------------

Bytes encode_negotiate(std::uint32_t flags, const Version& version) {
  Bytes out(kSignature, kSignature + 8);
  put32(out, kNegotiateType);
  put32(out, flags | flag::kVersion);
  // Empty DomainNameFields and WorkstationFields point at the end of the header (40 bytes).
  for (int i = 0; i < 2; ++i) {
    put16(out, 0);
    put16(out, 0);
    put32(out, 40);
  }
  put_version(out, version);
  return out;
}

Result<NegotiateMessage> parse_negotiate(ByteView msg) {
  WINCERT_TRY(check_header(msg, kNegotiateType, 16, "NEGOTIATE"));
  NegotiateMessage out;
  out.flags = le32(msg, 12);
  if (msg.size() < 32) return out;  // the oldest clients stop after the flags
  FieldRef domain_ref, workstation_ref;
  auto domain = read_field(msg, 16, 32, "NEGOTIATE", "DomainName", &domain_ref);
  if (!domain) return domain.error();
  auto workstation = read_field(msg, 24, 32, "NEGOTIATE", "Workstation", &workstation_ref);
  if (!workstation) return workstation.error();
  out.domain = std::string(as_chars(*domain));
  out.workstation = std::string(as_chars(*workstation));
  if ((out.flags & flag::kVersion) && msg.size() >= 40 &&
      payload_start(msg.size(), {domain_ref, workstation_ref}) >= 40)
    out.version = read_version(msg, 32);
  return out;
}

// ---- CHALLENGE ---------------------------------------------------------------------------------

Result<ChallengeMessage> parse_challenge(ByteView msg) {
  constexpr std::size_t kHeader = 48;  // through TargetInfoFields; Version (8) follows when present
  WINCERT_TRY(check_header(msg, kChallengeType, kHeader, "CHALLENGE"));
  ChallengeMessage out;
  out.flags = le32(msg, 20);
  std::copy_n(msg.begin() + 24, 8, out.server_challenge.begin());
  FieldRef name_ref, info_ref;
  auto name = read_field(msg, 12, kHeader, "CHALLENGE", "TargetName", &name_ref);
  if (!name) return name.error();
  auto info = read_field(msg, 40, kHeader, "CHALLENGE", "TargetInfo", &info_ref);
  if (!info) return info.error();
  auto name_text = decode_text(*name, (out.flags & flag::kUnicode) != 0, "CHALLENGE", "TargetName");
  if (!name_text) return name_text.error();
  out.target_name = std::move(*name_text);
  if (!info->empty()) {
    auto parsed = parse_target_info(*info);
    if (!parsed) return parsed.error().context("NTLM CHALLENGE: ");
    out.target_info = std::move(*parsed);
    out.target_info_raw = to_bytes(*info);
  }
  if ((out.flags & flag::kVersion) && msg.size() >= kHeader + 8 &&
      payload_start(msg.size(), {name_ref, info_ref}) >= kHeader + 8)
    out.version = read_version(msg, kHeader);
  return out;
}

// ---- AUTHENTICATE ------------------------------------------------------------------------------

Bytes encode_authenticate(const AuthenticateFields& f) {
  constexpr std::size_t kHeader = 88;  // fixed fields + Version + MIC
  const std::string domain = utf8_to_utf16le(f.domain);
  const std::string user = utf8_to_utf16le(f.user);
  const std::string workstation = utf8_to_utf16le(f.workstation);

  Bytes out(kHeader, 0);
  std::copy_n(kSignature, 8, out.begin());
  set32(out, 8, kAuthenticateType);
  set32(out, 60, f.flags);
  Bytes version;
  put_version(version, f.version);
  std::copy(version.begin(), version.end(), out.begin() + 64);

  auto append_field = [&out](std::size_t descriptor_at, ByteView value) {
    set16(out, descriptor_at, static_cast<std::uint16_t>(value.size()));
    set16(out, descriptor_at + 2, static_cast<std::uint16_t>(value.size()));
    set32(out, descriptor_at + 4, static_cast<std::uint32_t>(out.size()));
    out.insert(out.end(), value.begin(), value.end());
  };
  // Payload order as Windows writes it: domain, user, workstation, LM, NT, session key.
  append_field(28, ntlm_crypto::view(domain));
  append_field(36, ntlm_crypto::view(user));
  append_field(44, ntlm_crypto::view(workstation));
  append_field(12, f.lm_challenge_response);
  append_field(20, f.nt_challenge_response);
  append_field(52, f.encrypted_random_session_key);
  return out;
}

Result<AuthenticateMessage> parse_authenticate(ByteView msg) {
  constexpr std::size_t kHeader = 64;  // through NegotiateFlags
  WINCERT_TRY(check_header(msg, kAuthenticateType, kHeader, "AUTHENTICATE"));
  AuthenticateMessage out;
  out.flags = le32(msg, 60);
  const bool unicode = (out.flags & flag::kUnicode) != 0;
  FieldRef refs[6];
  struct Spec {
    std::size_t at;
    const char* name;
  };
  constexpr Spec kSpecs[6] = {{12, "LmChallengeResponse"}, {20, "NtChallengeResponse"},
                              {28, "DomainName"},          {36, "UserName"},
                              {44, "Workstation"},         {52, "EncryptedRandomSessionKey"}};
  ByteView values[6];
  for (int i = 0; i < 6; ++i) {
    auto v = read_field(msg, kSpecs[i].at, kHeader, "AUTHENTICATE", kSpecs[i].name, &refs[i]);
    if (!v) return v.error();
    values[i] = *v;
  }
  out.lm_challenge_response = to_bytes(values[0]);
  out.nt_challenge_response = to_bytes(values[1]);
  for (auto [index, target] : {std::pair{2, &out.domain}, std::pair{3, &out.user}, std::pair{4, &out.workstation}}) {
    auto text = decode_text(values[index], unicode, "AUTHENTICATE", kSpecs[index].name);
    if (!text) return text.error();
    *target = std::move(*text);
  }
  out.encrypted_random_session_key = to_bytes(values[5]);
  const std::size_t start = payload_start(msg.size(), {refs[0], refs[1], refs[2], refs[3], refs[4], refs[5]});
  if ((out.flags & flag::kVersion) && start >= kHeader + 8 && msg.size() >= kHeader + 8)
    out.version = read_version(msg, kHeader);
  if (start >= kMicOffset + 16 && msg.size() >= kMicOffset + 16) {
    Digest16 mic{};
    std::copy_n(msg.begin() + kMicOffset, 16, mic.begin());
    out.mic = mic;
  }
  return out;
}

Result<NtlmV2ClientChallenge> parse_ntlmv2_response(ByteView nt) {
  constexpr std::size_t kFixed = 16 + 28;  // NTProofStr + RespType..ChallengeFromClient + Reserved3
  if (nt.size() < kFixed + 4)
    return Error::invalid_argument("NTLMv2 response is " + std::to_string(nt.size()) + " bytes, too short for NTLMv2");
  if (nt[16] != 1 || nt[17] != 1) return Error::invalid_argument("NTLMv2 response has an unknown RespType/HiRespType");
  NtlmV2ClientChallenge out;
  std::copy_n(nt.begin(), 16, out.nt_proof_str.begin());
  out.timestamp = le64(nt, 24);
  std::copy_n(nt.begin() + 32, 8, out.client_challenge.begin());
  auto info = parse_target_info(nt.subspan(kFixed));
  if (!info) return info.error().context("NTLMv2 response: ");
  out.target_info = std::move(*info);
  return out;
}

}  // namespace wincert::winrm::ntlm
