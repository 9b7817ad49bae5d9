#include "sim/command/json_util.hpp"

#include <charconv>
#include <chrono>
#include <ctime>

#include "common/encoding.hpp"

namespace wincert::sim::command {

Result<Json> parse_json(std::string_view text) {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  Json parsed = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return Error::invalid_argument("the request body is not valid JSON");
  return parsed;
}

const Json* find_ci(const Json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  const Json* found = nullptr;
  if (auto it = object.find(std::string(key)); it != object.end()) {
    found = &*it;
  } else {
    for (auto it2 = object.begin(); it2 != object.end(); ++it2) {
      if (iequals(it2.key(), key)) {
        found = &it2.value();
        break;
      }
    }
  }
  if (found == nullptr || found->is_null()) return nullptr;
  return found;
}

std::optional<std::string> scalar_text(const Json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  if (value.is_number_integer()) return std::to_string(value.get<std::int64_t>());
  if (value.is_number_unsigned()) return std::to_string(value.get<std::uint64_t>());
  if (value.is_number_float()) return value.dump();
  return std::nullopt;
}

std::optional<std::string> get_string(const Json& object, std::string_view key) {
  const Json* v = find_ci(object, key);
  if (v == nullptr) return std::nullopt;
  return scalar_text(*v);
}

Result<std::optional<std::int64_t>> get_int(const Json& object, std::string_view key) {
  const Json* v = find_ci(object, key);
  if (v == nullptr) return std::optional<std::int64_t>{};
  if (v->is_number_integer()) return std::optional<std::int64_t>(v->get<std::int64_t>());
  if (v->is_number_unsigned()) {
    const auto u = v->get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(INT64_MAX))
      return Error::invalid_argument(std::string(key) + " is out of range");
    return std::optional<std::int64_t>(static_cast<std::int64_t>(u));
  }
  if (v->is_string()) {
    const std::string text(trim(v->get<std::string>()));
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec == std::errc() && end == text.data() + text.size() && !text.empty()) return std::optional<std::int64_t>(n);
  }
  return Error::invalid_argument(std::string(key) + " must be an integer");
}

Result<std::optional<bool>> get_bool(const Json& object, std::string_view key) {
  const Json* v = find_ci(object, key);
  if (v == nullptr) return std::optional<bool>{};
  if (v->is_boolean()) return std::optional<bool>(v->get<bool>());
  if (v->is_string()) {
    const std::string text = v->get<std::string>();
    if (iequals(text, "true")) return std::optional<bool>(true);
    if (iequals(text, "false")) return std::optional<bool>(false);
  }
  return Error::invalid_argument(std::string(key) + " must be true or false");
}

std::string now_iso8601() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::optional<std::int64_t> parse_iso8601(std::string_view text) {
  std::tm tm{};
  const std::string s(text);
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) return std::nullopt;
  return static_cast<std::int64_t>(timegm(&tm));
}

std::string new_guid() { return to_lower(random_uuid()); }

bool same_id(std::string_view a, std::string_view b) { return iequals(a, b); }

std::optional<std::string> url_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '+' && plus_is_space) {
      out += ' ';
    } else if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;  // needs two hex digits
      unsigned value = 0;
      auto [end, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
      if (ec != std::errc() || end != text.data() + i + 3) return std::nullopt;
      out += static_cast<char>(value);
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::map<std::string, std::string>> parse_form(std::string_view text) {
  std::map<std::string, std::string> out;
  while (!text.empty()) {
    const auto amp = text.find('&');
    const std::string_view pair = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view{} : text.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    auto key = url_decode(pair.substr(0, eq), true);
    auto value = url_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1), true);
    if (!key || !value) return std::nullopt;
    out[*key] = *value;
  }
  return out;
}

std::string dump_json(const Json& value, int indent) {
  return value.dump(indent, ' ', false, Json::error_handler_t::replace);
}

Json object_of(std::string_view key, Json value) {
  Json out = Json::object();
  out[std::string(key)] = std::move(value);
  return out;
}

}  // namespace wincert::sim::command
