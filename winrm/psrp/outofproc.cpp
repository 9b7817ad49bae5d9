// A strict hand parser rather than an XML library: a packet is one element with at most two attributes
// and base64 text, so accepting exactly that grammar (no entities, DTDs, comments, namespaces or CDATA) is
// both shorter and safer than configuring a general parser down to it.
#include "winrm/psrp/outofproc.hpp"

#include <array>
#include <optional>
#include <utility>

#include "common/encoding.hpp"

namespace wincert::winrm::psrp {
namespace {

constexpr std::array<std::pair<PacketKind, std::string_view>, 8> kKindNames = {{
    {PacketKind::kData, "Data"},
    {PacketKind::kDataAck, "DataAck"},
    {PacketKind::kCommand, "Command"},
    {PacketKind::kCommandAck, "CommandAck"},
    {PacketKind::kClose, "Close"},
    {PacketKind::kCloseAck, "CloseAck"},
    {PacketKind::kSignal, "Signal"},
    {PacketKind::kSignalAck, "SignalAck"},
}};

// What `pwsh -sshs` writes to stdout instead of a packet when the server side fails.
constexpr std::string_view kServerErrorPrefix = "__NamedPipeError__:";
// How much of a bad line goes into an error message.
constexpr std::size_t kQuoteLimit = 120;

std::optional<PacketKind> kind_from_name(std::string_view name) {
  for (const auto& [kind, text] : kKindNames) {
    if (text == name) return kind;
  }
  return std::nullopt;
}

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_space(char c) { return c == ' ' || c == '\t'; }
bool is_name_char(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=';
}

std::string quote_line(std::string_view line) {
  std::string out;
  for (char c : line.substr(0, kQuoteLimit)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u >= 0x7f) ? '?' : c;
  }
  if (line.size() > kQuoteLimit) out += "...";
  return out;
}

Error malformed(std::string_view why, std::string_view line) {
  return Error::invalid_argument("malformed OutOfProc packet from the PowerShell server (" + std::string(why) + "): '" +
                                 quote_line(line) + "'");
}

std::string lower_guid(std::string_view guid) {
  std::string out(guid);
  for (char& c : out) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// A cursor over the line; every step either consumes what it expects or reports false.
class Cursor {
 public:
  explicit Cursor(std::string_view text) : text_(text) {}
  bool done() const { return pos_ == text_.size(); }
  char peek() const { return done() ? '\0' : text_[pos_]; }
  bool take(std::string_view expected) {
    if (text_.substr(pos_, expected.size()) != expected) return false;
    pos_ += expected.size();
    return true;
  }
  std::size_t skip_spaces() {
    const std::size_t start = pos_;
    while (!done() && is_space(text_[pos_])) ++pos_;
    return pos_ - start;
  }
  std::string_view take_name() {
    const std::size_t start = pos_;
    while (!done() && is_name_char(text_[pos_])) ++pos_;
    return text_.substr(start, pos_ - start);
  }
  std::string_view take_until(char stop) {
    const std::size_t start = pos_;
    while (!done() && text_[pos_] != stop) ++pos_;
    return text_.substr(start, pos_ - start);
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

}  // namespace

std::string_view packet_kind_name(PacketKind kind) {
  for (const auto& [k, text] : kKindNames) {
    if (k == kind) return text;
  }
  return "?";
}

bool is_guid_text(std::string_view text) {
  if (text.size() != 36) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const bool dash_position = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash_position ? text[i] != '-' : !is_hex(text[i])) return false;
  }
  return true;
}

OutOfProcPacket OutOfProcPacket::data(std::string ps_guid, std::string payload, DataStream stream) {
  OutOfProcPacket packet;
  packet.kind = PacketKind::kData;
  packet.ps_guid = std::move(ps_guid);
  packet.stream = stream;
  packet.payload = std::move(payload);
  return packet;
}

OutOfProcPacket OutOfProcPacket::of_kind(PacketKind kind, std::string ps_guid) {
  OutOfProcPacket packet;
  packet.kind = kind;
  packet.ps_guid = std::move(ps_guid);
  return packet;
}

Result<std::string> encode_packet(const OutOfProcPacket& packet) {
  if (!is_guid_text(packet.ps_guid)) {
    return Error::internal("OutOfProc packet with a PSGuid that is not GUID text: '" + quote_line(packet.ps_guid) +
                           "'");
  }
  const std::string guid = lower_guid(packet.ps_guid);
  if (packet.kind != PacketKind::kData) {
    return "<" + std::string(packet_kind_name(packet.kind)) + " PSGuid='" + guid + "' />";
  }
  const std::string_view stream = packet.stream == DataStream::kDefault ? "Default" : "PromptResponse";
  return "<Data Stream='" + std::string(stream) + "' PSGuid='" + guid + "'>" + base64_encode(packet.payload) +
         "</Data>";
}

Result<OutOfProcPacket> decode_packet(std::string_view line, std::size_t max_line_bytes) {
  if (line.size() > max_line_bytes) {
    return Error::resource_exhausted("OutOfProc packet line of " + std::to_string(line.size()) +
                                     " bytes from the PowerShell server is over the limit of " +
                                     std::to_string(max_line_bytes) + " bytes");
  }
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.substr(0, kServerErrorPrefix.size()) == kServerErrorPrefix) {
    return Error::unavailable("the PowerShell server reported an error: " +
                              quote_line(trim(line.substr(kServerErrorPrefix.size()))));
  }

  Cursor in(line);
  if (!in.take("<")) return malformed("not an XML element", line);
  const std::string_view name = in.take_name();
  const auto kind = kind_from_name(name);
  if (!kind) return malformed("unknown element", line);

  OutOfProcPacket packet;
  packet.kind = *kind;
  bool have_guid = false;
  bool have_stream = false;
  while (true) {
    const bool spaced = in.skip_spaces() > 0;
    if (in.peek() == '/' || in.peek() == '>') break;
    if (!spaced) return malformed("expected a space before an attribute", line);
    const std::string_view attribute = in.take_name();
    in.skip_spaces();
    if (attribute.empty() || !in.take("=")) return malformed("bad attribute", line);
    in.skip_spaces();
    const char quote = in.peek();
    if (quote != '\'' && quote != '"') return malformed("unquoted attribute value", line);
    in.take(std::string_view(&quote, 1));
    const std::string_view value = in.take_until(quote);
    if (!in.take(std::string_view(&quote, 1))) return malformed("unterminated attribute value", line);
    if (attribute == "PSGuid" && !have_guid) {
      if (!is_guid_text(value)) return malformed("PSGuid is not a GUID", line);
      packet.ps_guid = lower_guid(value);
      have_guid = true;
    } else if (attribute == "Stream" && !have_stream && packet.kind == PacketKind::kData) {
      if (value == "Default") {
        packet.stream = DataStream::kDefault;
      } else if (value == "PromptResponse") {
        packet.stream = DataStream::kPromptResponse;
      } else {
        return malformed("unknown Stream", line);
      }
      have_stream = true;
    } else {
      return malformed("unexpected or repeated attribute", line);
    }
  }
  if (!have_guid) return malformed("no PSGuid", line);
  if (packet.kind == PacketKind::kData && !have_stream) return malformed("Data without Stream", line);

  if (in.take("/>")) {
    if (!in.done()) return malformed("text after the element", line);
    return packet;
  }
  if (!in.take(">")) return malformed("bad tag end", line);
  const std::string_view content = in.take_until('<');
  if (!in.take("</") || in.take_name() != name) return malformed("missing end tag", line);
  in.skip_spaces();
  if (!in.take(">") || !in.done()) return malformed("bad end tag", line);
  if (packet.kind != PacketKind::kData) {
    if (!content.empty()) return malformed("content in a packet that has none", line);
    return packet;
  }
  for (char c : content) {
    if (!is_base64_char(c)) return malformed("Data content is not base64", line);
  }
  // Padded base64, as .NET's Convert.FromBase64String demands it.
  if (content.size() % 4 != 0) return malformed("Data content is not padded base64", line);
  auto payload = base64_decode(content);
  if (!payload) return malformed("Data content is not valid base64", line);
  packet.payload = std::move(*payload);
  return packet;
}

}  // namespace wincert::winrm::psrp
