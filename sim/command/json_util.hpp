// Small JSON and text helpers shared by the command-sim modules. Command is an ASP.NET application, whose
// JSON binding matches property names case-insensitively, so every lookup in a request body does too.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace wincert::sim::command {

using Json = nlohmann::json;

// Parses untrusted JSON text (a UTF-8 BOM is skipped); the Error says where it broke.
Result<Json> parse_json(std::string_view text);

// The member `key` of an object, exact spelling first, then case-insensitively; nullptr when absent,
// null, or when `object` is not an object.
const Json* find_ci(const Json& object, std::string_view key);

// Scalars as Command's binder accepts them: strings as they are, numbers and booleans as text.
std::optional<std::string> get_string(const Json& object, std::string_view key);
// Integers as JSON numbers or numeric strings; nullopt when absent; Error text when present but not a number.
Result<std::optional<std::int64_t>> get_int(const Json& object, std::string_view key);
// Booleans as JSON booleans or "true"/"false" in any case.
Result<std::optional<bool>> get_bool(const Json& object, std::string_view key);

// A scalar JSON value as a store property string (Command keeps custom fields as strings).
std::optional<std::string> scalar_text(const Json& value);

// "2024-01-02T03:04:05Z" for now (UTC).
std::string now_iso8601();
// Seconds since the epoch for an ISO 8601 UTC time as produced above (nullopt when malformed).
std::optional<std::int64_t> parse_iso8601(std::string_view text);

// A lowercase GUID, the way .NET serializes System.Guid.
std::string new_guid();
// Case-insensitive ASCII comparison of GUIDs and names.
bool same_id(std::string_view a, std::string_view b);

// "%41b+c" -> "Ab c" for form bodies (plus_is_space) and query strings; nullopt for a broken escape.
std::optional<std::string> url_decode(std::string_view text, bool plus_is_space);
// "a=1&b=2" -> {a: 1, b: 2}; later keys win. Keys are kept as sent.
std::optional<std::map<std::string, std::string>> parse_form(std::string_view text);

// JSON text; invalid UTF-8 (from headers or certificates, which no JSON parser checked) becomes U+FFFD
// instead of an exception.
std::string dump_json(const Json& value, int indent = -1);

// An object holding one member; avoids braced temporaries in expressions GCC 12 mishandles.
Json object_of(std::string_view key, Json value);

}  // namespace wincert::sim::command
