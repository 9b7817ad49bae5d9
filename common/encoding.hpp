// Byte and text encodings shared by every layer: base64, hex, UTF-8 <-> UTF-16LE.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wincert {

using Bytes = std::vector<std::uint8_t>;

std::string base64_encode(std::string_view data);
std::string base64_encode(const Bytes& data);
// Strict decoding: whitespace is skipped, anything else outside the alphabet is an error (nullopt).
std::optional<std::string> base64_decode(std::string_view text);
// True when `text` is exactly base64_encode of `decoded_size` bytes it decodes to: the alphabet only, padded to
// a multiple of four, no spare bits set. base64_decode is lenient (blanks, missing padding); this is not.
bool is_canonical_base64(std::string_view text, std::size_t decoded_size);

std::string hex_upper(std::string_view bytes);
std::string hex_lower(std::string_view bytes);

// UTF-8 text to UTF-16LE bytes (what -EncodedCommand and NTLM want). Invalid UTF-8 becomes U+FFFD.
std::string utf8_to_utf16le(std::string_view utf8);
// UTF-16LE bytes to UTF-8; unpaired surrogates become U+FFFD.
std::string utf16le_to_utf8(std::string_view utf16le);
// Appends the UTF-8 encoding of one code point.
void append_utf8(std::string& out, char32_t cp);

std::string_view trim(std::string_view s);
std::string to_lower(std::string_view s);
std::string to_upper(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view s, std::string_view prefix);

// A random RFC 4122 version-4 UUID, uppercase, as WS-Management uses them (without "uuid:").
std::string random_uuid();

}  // namespace wincert
