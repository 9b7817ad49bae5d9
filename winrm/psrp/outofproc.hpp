// The OutOfProc packet codec: the line framing PowerShell uses over a byte stream (`pwsh -s` on stdin/stdout,
// the SSH subsystem `pwsh -sshs`, named pipes). Pure code; the PSRP fragments ride base64-encoded in Data
// packets. Reference: ../shared/reference/psrp.md section 6.
//
//   <Data Stream='Default' PSGuid='…'>BASE64</Data>        both ways; Stream = Default | PromptResponse
//   <DataAck PSGuid='…' />  <Command PSGuid='…' />  <CommandAck PSGuid='…' />
//   <Close PSGuid='…' />  <CloseAck PSGuid='…' />  <Signal PSGuid='…' />  <SignalAck PSGuid='…' />
//
// One XML element per line. The PSGuid is lower-case GUID text; all zero names the runspace pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace wincert::winrm::psrp {

// The PSGuid of the runspace pool itself.
inline constexpr std::string_view kPoolPsGuid = "00000000-0000-0000-0000-000000000000";

// A line longer than this is refused unless the caller sets its own limit. PowerShell sends one 32 KiB
// fragment per Data packet (about 44 KiB in base64); psrpcore and our client may pack several.
inline constexpr std::size_t kDefaultMaxPacketLineBytes = 4 * 1024 * 1024;

enum class PacketKind : std::uint8_t {
  kData,
  kDataAck,
  kCommand,
  kCommandAck,
  kClose,
  kCloseAck,
  kSignal,
  kSignalAck,
};

// The element name of a packet kind ("Data", "DataAck", ...).
std::string_view packet_kind_name(PacketKind kind);

enum class DataStream : std::uint8_t {
  kDefault,         // PSRP messages
  kPromptResponse,  // host call responses
};

struct OutOfProcPacket {
  PacketKind kind = PacketKind::kData;
  std::string ps_guid{kPoolPsGuid};          // lower-case; all zero = the runspace pool
  DataStream stream = DataStream::kDefault;  // Data only
  std::string payload;                       // Data only: the decoded bytes (one or more PSRP fragments)

  bool for_pool() const { return ps_guid == kPoolPsGuid; }

  static OutOfProcPacket data(std::string ps_guid, std::string payload, DataStream stream = DataStream::kDefault);
  static OutOfProcPacket of_kind(PacketKind kind, std::string ps_guid);
};

// One packet as one line, without the line end (the channel adds "\n"). The PSGuid must be GUID text; it is
// written lower-case. Single quotes, as PowerShell writes them.
Result<std::string> encode_packet(const OutOfProcPacket& packet);

// Parses one line (a trailing "\r" is dropped; Windows servers end lines with CRLF). Strict: exactly one of
// the eight elements, exactly its attributes, no entities, comments, DTDs or other markup, base64 content
// only in Data. Errors: kResourceExhausted for a line over max_line_bytes, kInvalidArgument for anything
// malformed, kUnavailable for the error line `pwsh -sshs` writes instead of a packet (`__NamedPipeError__:`).
Result<OutOfProcPacket> decode_packet(std::string_view line, std::size_t max_line_bytes = kDefaultMaxPacketLineBytes);

// True for lower- or upper-case GUID text in the 8-4-4-4-12 form.
bool is_guid_text(std::string_view text);

}  // namespace wincert::winrm::psrp
