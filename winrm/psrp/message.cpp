// MS-PSRP message header (reference psrp.md §2.2, §2.3, §3).
#include "winrm/psrp/message.hpp"

#include "common/encoding.hpp"

namespace wincert::winrm::psrp {
namespace {

struct TypeName {
  MessageType type;
  std::string_view name;
};

constexpr TypeName kTypeNames[] = {
    {MessageType::kSessionCapability, "SESSION_CAPABILITY"},
    {MessageType::kInitRunspacePool, "INIT_RUNSPACEPOOL"},
    {MessageType::kPublicKey, "PUBLIC_KEY"},
    {MessageType::kEncryptedSessionKey, "ENCRYPTED_SESSION_KEY"},
    {MessageType::kPublicKeyRequest, "PUBLIC_KEY_REQUEST"},
    {MessageType::kConnectRunspacePool, "CONNECT_RUNSPACEPOOL"},
    {MessageType::kSetMaxRunspaces, "SET_MAX_RUNSPACES"},
    {MessageType::kSetMinRunspaces, "SET_MIN_RUNSPACES"},
    {MessageType::kRunspaceAvailability, "RUNSPACE_AVAILABILITY"},
    {MessageType::kRunspacePoolState, "RUNSPACEPOOL_STATE"},
    {MessageType::kCreatePipeline, "CREATE_PIPELINE"},
    {MessageType::kGetAvailableRunspaces, "GET_AVAILABLE_RUNSPACES"},
    {MessageType::kUserEvent, "USER_EVENT"},
    {MessageType::kApplicationPrivateData, "APPLICATION_PRIVATE_DATA"},
    {MessageType::kGetCommandMetadata, "GET_COMMAND_METADATA"},
    {MessageType::kRunspacePoolInitData, "RUNSPACEPOOL_INIT_DATA"},
    {MessageType::kResetRunspaceState, "RESET_RUNSPACE_STATE"},
    {MessageType::kRunspacePoolHostCall, "RUNSPACEPOOL_HOST_CALL"},
    {MessageType::kRunspacePoolHostResponse, "RUNSPACEPOOL_HOST_RESPONSE"},
    {MessageType::kPipelineInput, "PIPELINE_INPUT"},
    {MessageType::kEndOfPipelineInput, "END_OF_PIPELINE_INPUT"},
    {MessageType::kPipelineOutput, "PIPELINE_OUTPUT"},
    {MessageType::kErrorRecord, "ERROR_RECORD"},
    {MessageType::kPipelineState, "PIPELINE_STATE"},
    {MessageType::kDebugRecord, "DEBUG_RECORD"},
    {MessageType::kVerboseRecord, "VERBOSE_RECORD"},
    {MessageType::kWarningRecord, "WARNING_RECORD"},
    {MessageType::kProgressRecord, "PROGRESS_RECORD"},
    {MessageType::kInformationRecord, "INFORMATION_RECORD"},
    {MessageType::kPipelineHostCall, "PIPELINE_HOST_CALL"},
    {MessageType::kPipelineHostResponse, "PIPELINE_HOST_RESPONSE"},
};

constexpr std::string_view kBom = "\xEF\xBB\xBF";

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void put_le32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

std::uint32_t get_le32(std::string_view in, std::size_t pos) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[pos + static_cast<std::size_t>(i)]);
  return v;
}

// .NET's Guid.ToByteArray(): Data1 (4 bytes), Data2 and Data3 (2 bytes each) little-endian, Data4 as is.
// The permutation is its own inverse.
constexpr std::size_t kDotNetOrder[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};

}  // namespace

bool is_known_message_type(std::uint32_t value) {
  for (const auto& t : kTypeNames)
    if (static_cast<std::uint32_t>(t.type) == value) return true;
  return false;
}

std::string_view message_type_name(MessageType type) {
  for (const auto& t : kTypeNames)
    if (t.type == type) return t.name;
  return "UNKNOWN";
}

Result<Guid> Guid::parse(std::string_view text) {
  std::string_view t = text;
  if (t.size() == 38 && t.front() == '{' && t.back() == '}') t = t.substr(1, 36);
  if (t.size() != 36) return Error::invalid_argument("not a GUID (wrong length): '" + std::string(text) + "'");
  Guid g;
  std::size_t out = 0;
  for (std::size_t i = 0; i < t.size();) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (t[i] != '-') return Error::invalid_argument("not a GUID (dash expected): '" + std::string(text) + "'");
      ++i;
      continue;
    }
    int hi = hex_digit(t[i]);
    int lo = hex_digit(t[i + 1]);
    if (hi < 0 || lo < 0)
      return Error::invalid_argument("not a GUID (hex digit expected): '" + std::string(text) + "'");
    g.bytes[out++] = static_cast<std::uint8_t>(hi * 16 + lo);
    i += 2;
  }
  return g;
}

Guid Guid::random_v4() {
  // random_uuid() is version 4 from OpenSSL's RNG; its text always parses.
  auto parsed = parse(random_uuid());
  return parsed.ok() ? parsed.value() : Guid{};
}

Guid Guid::from_dotnet_bytes(const std::uint8_t* b) {
  Guid g;
  for (std::size_t i = 0; i < 16; ++i) g.bytes[i] = b[kDotNetOrder[i]];
  return g;
}

std::array<std::uint8_t, 16> Guid::to_dotnet_bytes() const {
  std::array<std::uint8_t, 16> out{};
  for (std::size_t i = 0; i < 16; ++i) out[i] = bytes[kDotNetOrder[i]];
  return out;
}

std::string Guid::to_string() const {
  std::string h = hex_lower(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

std::string Guid::to_upper_string() const { return to_upper(to_string()); }

bool Guid::is_nil() const {
  for (auto b : bytes)
    if (b) return false;
  return true;
}

std::string encode_message(const Message& message, bool with_bom) {
  std::string out;
  out.reserve(kMessageHeaderSize + (with_bom ? kBom.size() : 0) + message.data.size());
  put_le32(out, static_cast<std::uint32_t>(message.destination));
  put_le32(out, static_cast<std::uint32_t>(message.type));
  for (const auto* id : {&message.runspace_pool_id, &message.pipeline_id}) {
    auto wire = id->to_dotnet_bytes();
    out.append(reinterpret_cast<const char*>(wire.data()), wire.size());
  }
  if (with_bom) out.append(kBom);
  out.append(message.data);
  return out;
}

Result<Message> decode_message(std::string_view bytes) {
  if (bytes.size() < kMessageHeaderSize)
    return Error::invalid_argument("PSRP message of " + std::to_string(bytes.size()) +
                                   " bytes is shorter than its 40-byte header");
  Message m;
  std::uint32_t destination = get_le32(bytes, 0);
  if (destination != 1 && destination != 2)
    return Error::invalid_argument("PSRP message with destination " + std::to_string(destination) +
                                   " (1 = client, 2 = server)");
  m.destination = static_cast<Destination>(destination);
  m.type = static_cast<MessageType>(get_le32(bytes, 4));
  m.runspace_pool_id = Guid::from_dotnet_bytes(reinterpret_cast<const std::uint8_t*>(bytes.data() + 8));
  m.pipeline_id = Guid::from_dotnet_bytes(reinterpret_cast<const std::uint8_t*>(bytes.data() + 24));
  std::string_view data = bytes.substr(kMessageHeaderSize);
  if (data.substr(0, kBom.size()) == kBom) data.remove_prefix(kBom.size());
  m.data.assign(data);
  return m;
}

Result<Message> decode_message_taking(std::string&& bytes) {
  // The header fields from the view; then the data without a copy (a large output is megabytes).
  auto header =
      decode_message(std::string_view(bytes.data(), std::min(bytes.size(), kMessageHeaderSize + kBom.size())));
  if (!header.ok()) return header;
  Message m = std::move(header.value());
  std::size_t prefix = kMessageHeaderSize;
  if (std::string_view(bytes).substr(prefix, kBom.size()) == kBom) prefix += kBom.size();
  bytes.erase(0, prefix);
  m.data = std::move(bytes);
  return m;
}

}  // namespace wincert::winrm::psrp
