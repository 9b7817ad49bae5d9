#include "winrm/encryption.hpp"

#include <charconv>
#include <optional>

#include "common/encoding.hpp"

namespace wincert::winrm {
namespace {

constexpr std::string_view kOriginalContentType = "application/soap+xml;charset=UTF-8";
constexpr std::string_view kOctetStream = "application/octet-stream";
constexpr std::size_t kMaxBoundaryLength = 70;  // RFC 2046
constexpr std::size_t kMaxPartHeaderBytes = 1024;

Error body_error(std::string message) { return Error::invalid_argument("encrypted WinRM body: " + std::move(message)); }

std::size_t ifind(std::string_view haystack, std::string_view needle, std::size_t from = 0) {
  if (needle.empty() || haystack.size() < needle.size()) return std::string_view::npos;
  for (std::size_t i = from; i + needle.size() <= haystack.size(); ++i)
    if (iequals(haystack.substr(i, needle.size()), needle)) return i;
  return std::string_view::npos;
}

// Value of a `name=value` or `name="value"` parameter in a header value (case-insensitive name).
std::optional<std::string_view> header_parameter(std::string_view header, std::string_view name) {
  std::size_t at = 0;
  while ((at = ifind(header, name, at)) != std::string_view::npos) {
    const bool starts_token = at == 0 || header[at - 1] == ';' || header[at - 1] == ' ' || header[at - 1] == '\t';
    std::size_t after = at + name.size();
    while (after < header.size() && (header[after] == ' ' || header[after] == '\t')) ++after;
    if (starts_token && after < header.size() && header[after] == '=') {
      ++after;
      while (after < header.size() && (header[after] == ' ' || header[after] == '\t')) ++after;
      if (after < header.size() && header[after] == '"') {
        const auto close = header.find('"', after + 1);
        if (close == std::string_view::npos) return std::nullopt;
        return header.substr(after + 1, close - after - 1);
      }
      const auto end = header.find(';', after);
      return trim(header.substr(after, end == std::string_view::npos ? std::string_view::npos : end - after));
    }
    at += name.size();
  }
  return std::nullopt;
}

// If a boundary delimiter ("--", optional blanks, boundary) starts at `at`, the position after it.
std::optional<std::size_t> match_delimiter(std::string_view body, std::size_t at, std::string_view boundary) {
  if (at + 2 > body.size() || body[at] != '-' || body[at + 1] != '-') return std::nullopt;
  std::size_t p = at + 2;
  while (p < body.size() && (body[p] == ' ' || body[p] == '\t')) ++p;
  if (body.substr(p, boundary.size()) != boundary) return std::nullopt;
  return p + boundary.size();
}

// First delimiter at or after `from`: {start, end}.
std::optional<std::pair<std::size_t, std::size_t>> find_delimiter(std::string_view body, std::size_t from,
                                                                  std::string_view boundary) {
  for (std::size_t at = body.find("--", from); at != std::string_view::npos; at = body.find("--", at + 1)) {
    if (auto end = match_delimiter(body, at, boundary)) return std::pair{at, *end};
  }
  return std::nullopt;
}

std::size_t skip_crlf(std::string_view body, std::size_t at) {
  if (body.substr(at, 2) == "\r\n") return at + 2;
  if (body.substr(at, 1) == "\n") return at + 1;
  return at;
}

std::string le32(std::uint32_t v) {
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  return out;
}

}  // namespace

bool is_encrypted_content_type(std::string_view content_type) {
  const auto value = trim(content_type);
  return istarts_with(value, "multipart/encrypted") || istarts_with(value, "multipart/x-multi-encrypted");
}

Result<EncryptedBody> build_encrypted_body(std::string_view plain, MessageSealer& sealer) {
  auto sealed = sealer.wrap(plain);
  if (!sealed) return sealed.error();
  if (sealed->header.size() > kMaxSealHeaderBytes)
    return Error::internal("message encryption: the security header is larger than the framing allows");
  const std::string protocol(sealer.protocol_name());
  const std::string delimiter = "--" + std::string(kEncryptedBoundary) + "\r\n";

  EncryptedBody out;
  out.body.reserve(plain.size() + sealed->header.size() + 256);
  out.body += delimiter;
  out.body += "\tContent-Type: " + protocol + "\r\n";
  out.body += "\tOriginalContent: type=" + std::string(kOriginalContentType) +
              ";Length=" + std::to_string(sealed->original_length) + "\r\n";
  out.body += delimiter;
  out.body += "\tContent-Type: " + std::string(kOctetStream) + "\r\n";
  out.body += le32(static_cast<std::uint32_t>(sealed->header.size()));
  out.body += sealed->header;
  out.body += sealed->payload;
  out.body += "--" + std::string(kEncryptedBoundary) + "--\r\n";
  out.content_type =
      "multipart/encrypted;protocol=\"" + protocol + "\";boundary=\"" + std::string(kEncryptedBoundary) + "\"";
  return out;
}

Result<std::string> parse_encrypted_body(std::string_view body, std::string_view content_type, MessageSealer& sealer) {
  if (!is_encrypted_content_type(content_type))
    return body_error("Content-Type is '" + std::string(trim(content_type).substr(0, 100)) +
                      "', expected multipart/encrypted (is message encryption off on one side?)");
  const auto protocol = header_parameter(content_type, "protocol");
  if (!protocol || !iequals(*protocol, sealer.protocol_name()))
    return body_error("Content-Type protocol is '" + std::string(protocol.value_or("").substr(0, 100)) +
                      "', expected " + std::string(sealer.protocol_name()));
  const std::string_view boundary = header_parameter(content_type, "boundary").value_or(kEncryptedBoundary);
  if (boundary.empty() || boundary.size() > kMaxBoundaryLength)
    return body_error("the multipart boundary in Content-Type is empty or longer than 70 characters");
  if (body.size() > kMaxEncryptedBodyBytes)
    return body_error("body of " + std::to_string(body.size()) + " bytes exceeds the " +
                      std::to_string(kMaxEncryptedBodyBytes) + "-byte limit");

  std::string plain;
  std::size_t pos = 0;
  std::size_t pair_index = 0;
  while (true) {
    // Part 1: the encryption headers.
    const auto opening = match_delimiter(body, pos, boundary);
    if (!opening)
      return body_error("expected a '--" + std::string(boundary) + "' delimiter at byte " + std::to_string(pos));
    // "--boundary--" closes the body; so does a last "--boundary" with nothing after it (pypsrp accepts
    // bodies without the closing hyphens too).
    const bool closing_hyphens = body.substr(*opening, 2) == "--";
    if (closing_hyphens || (pair_index > 0 && trim(body.substr(*opening)).empty())) {
      if (pair_index == 0) return body_error("no encrypted part before the closing delimiter");
      break;
    }
    const std::string part = "part pair " + std::to_string(pair_index + 1);
    const std::size_t headers_start = skip_crlf(body, *opening);
    const auto second = find_delimiter(body, headers_start, boundary);
    if (!second) return body_error(part + " is truncated: the octet-stream part is missing");
    const std::string_view headers = body.substr(headers_start, second->first - headers_start);
    if (headers.size() > kMaxPartHeaderBytes) return body_error(part + " has oversized MIME headers");
    if (ifind(headers, sealer.protocol_name()) == std::string_view::npos)
      return body_error(part + " does not declare Content-Type " + std::string(sealer.protocol_name()));
    const auto length_at = ifind(headers, "Length=");
    if (length_at == std::string_view::npos) return body_error(part + " has no OriginalContent Length=");
    std::size_t declared_length = 0;
    {
      const char* first = headers.data() + length_at + 7;
      const char* last = headers.data() + headers.size();
      const auto [end, ec] = std::from_chars(first, last, declared_length);
      if (ec != std::errc() || end == first) return body_error(part + " has an unreadable Length= value");
      if (declared_length > kMaxEncryptedBodyBytes) return body_error(part + " declares an oversized Length=");
    }

    // Part 2: "\tContent-Type: application/octet-stream\r\n", LE32 header length, header, payload.
    if (body.substr(second->second, 2) == "--") return body_error(part + " ends before its octet-stream part");
    const std::size_t part2_start = skip_crlf(body, second->second);
    const auto type_at = ifind(body.substr(part2_start, kMaxPartHeaderBytes), kOctetStream);
    if (type_at == std::string_view::npos)
      return body_error(part + " second part is not Content-Type application/octet-stream");
    const std::size_t type_end = part2_start + type_at + kOctetStream.size();
    const std::size_t binary_start = skip_crlf(body, type_end);
    if (binary_start + 4 > body.size()) return body_error(part + " is truncated before the header length");
    const auto* len_bytes = reinterpret_cast<const unsigned char*>(body.data() + binary_start);
    const std::uint32_t header_length =
        static_cast<std::uint32_t>(len_bytes[0]) | (static_cast<std::uint32_t>(len_bytes[1]) << 8) |
        (static_cast<std::uint32_t>(len_bytes[2]) << 16) | (static_cast<std::uint32_t>(len_bytes[3]) << 24);
    const std::size_t header_start = binary_start + 4;
    if (header_length > kMaxSealHeaderBytes || header_length > body.size() - header_start)
      return body_error(part + " declares a " + std::to_string(header_length) +
                        "-byte security header, beyond the data in the body");
    const std::size_t payload_start = header_start + header_length;

    // The payload ends at the next delimiter: normally exactly Length= bytes later; otherwise
    // (padded mechanisms) at the first delimiter found after the header.
    std::optional<std::pair<std::size_t, std::size_t>> closing;
    if (declared_length <= body.size() - payload_start) {
      if (auto end = match_delimiter(body, payload_start + declared_length, boundary))
        closing = std::pair{payload_start + declared_length, *end};
    }
    if (!closing) closing = find_delimiter(body, payload_start, boundary);
    if (!closing) return body_error(part + " is truncated: no delimiter after the encrypted payload");

    auto decrypted = sealer.unwrap(body.substr(header_start, header_length),
                                   body.substr(payload_start, closing->first - payload_start));
    if (!decrypted) return decrypted.error().context("encrypted WinRM body, " + part + ": ");
    if (decrypted->size() != declared_length)
      return body_error(part + " decrypted to " + std::to_string(decrypted->size()) +
                        " bytes but OriginalContent declares Length=" + std::to_string(declared_length));
    plain += *decrypted;
    if (plain.size() > kMaxEncryptedBodyBytes) return body_error("decrypted content exceeds the size limit");
    pos = closing->first;
    ++pair_index;
  }
  return plain;
}

}  // namespace wincert::winrm
