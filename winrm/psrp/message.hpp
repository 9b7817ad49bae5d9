// MS-PSRP messages (reference psrp.md §2.2, §2.3, §3): the 40-byte header (Destination and MessageType
// little-endian, RunspacePool and Pipeline GUIDs in .NET byte order) followed by UTF-8 CLIXML. Pure code.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace wincert::winrm::psrp {

inline constexpr std::size_t kMessageHeaderSize = 40;

enum class Destination : std::uint32_t { kClient = 1, kServer = 2 };

// Every message type of [S 2.2.1]. Values outside this list still decode (is_known_message_type tells).
enum class MessageType : std::uint32_t {
  kSessionCapability = 0x00010002,
  kInitRunspacePool = 0x00010004,
  kPublicKey = 0x00010005,
  kEncryptedSessionKey = 0x00010006,
  kPublicKeyRequest = 0x00010007,
  kConnectRunspacePool = 0x00010008,
  kSetMaxRunspaces = 0x00021002,
  kSetMinRunspaces = 0x00021003,
  kRunspaceAvailability = 0x00021004,
  kRunspacePoolState = 0x00021005,
  kCreatePipeline = 0x00021006,
  kGetAvailableRunspaces = 0x00021007,
  kUserEvent = 0x00021008,
  kApplicationPrivateData = 0x00021009,
  kGetCommandMetadata = 0x0002100A,
  kRunspacePoolInitData = 0x0002100B,
  kResetRunspaceState = 0x0002100C,
  kRunspacePoolHostCall = 0x00021100,
  kRunspacePoolHostResponse = 0x00021101,
  kPipelineInput = 0x00041002,
  kEndOfPipelineInput = 0x00041003,
  kPipelineOutput = 0x00041004,
  kErrorRecord = 0x00041005,
  kPipelineState = 0x00041006,
  kDebugRecord = 0x00041007,
  kVerboseRecord = 0x00041008,
  kWarningRecord = 0x00041009,
  kProgressRecord = 0x00041010,
  kInformationRecord = 0x00041011,
  kPipelineHostCall = 0x00041100,
  kPipelineHostResponse = 0x00041101,
};

bool is_known_message_type(std::uint32_t value);
// The spec's name, e.g. "PIPELINE_OUTPUT"; "UNKNOWN" for other values.
std::string_view message_type_name(MessageType type);

// A GUID held in its textual (RFC 4122) byte order: bytes[0] is the first two hex digits of the text.
// The wire uses .NET's Guid.ToByteArray() order instead (to_dotnet_bytes); see psrp.md §2.3 for the trap.
struct Guid {
  std::array<std::uint8_t, 16> bytes{};

  // "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", either case, optionally in braces.
  static Result<Guid> parse(std::string_view text);
  // A random version 4 GUID (OpenSSL's RNG).
  static Guid random_v4();
  static Guid from_dotnet_bytes(const std::uint8_t* sixteen_bytes);

  std::array<std::uint8_t, 16> to_dotnet_bytes() const;
  // Lower case, as .NET's Guid.ToString() (OutOfProc PSGuid); upper case as WS-Man ShellId/CommandId.
  std::string to_string() const;
  std::string to_upper_string() const;
  bool is_nil() const;
  friend bool operator==(const Guid&, const Guid&) = default;
};

struct Message {
  Destination destination = Destination::kServer;
  MessageType type = MessageType::kSessionCapability;
  Guid runspace_pool_id;
  Guid pipeline_id;  // nil for pool-level messages
  std::string data;  // UTF-8 CLIXML (no BOM), empty for END_OF_PIPELINE_INPUT

  bool is_pipeline_message() const { return !pipeline_id.is_nil(); }
};

// The header and the data; with_bom prefixes EF BB BF (servers send one, clients need not).
std::string encode_message(const Message& message, bool with_bom = false);
// invalid_argument for fewer than 40 bytes or a Destination other than 1 or 2. A UTF-8 BOM is stripped.
Result<Message> decode_message(std::string_view bytes);
// The same, taking the bytes: the data is moved into the message, not copied (a large output is megabytes).
Result<Message> decode_message_taking(std::string&& bytes);

}  // namespace wincert::winrm::psrp
