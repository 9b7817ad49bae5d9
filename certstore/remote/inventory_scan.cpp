#include "certstore/remote/inventory_scan.hpp"

#include "certstore/remote/contract.hpp"

#include <cstring>

namespace wincert::certstore::remote {

namespace {

constexpr std::size_t kNone = std::string_view::npos;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// JSON's own whitespace only (what nlohmann skips between tokens).
std::size_t skip_space(std::string_view text, std::size_t pos) {
  while (pos < text.size() && is_space(text[pos])) ++pos;
  return pos;
}

// What a number, true, false or null is made of: a run of these is one scalar token (its grammar is
// checked by the parser that reads it).
bool is_scalar_char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '+' || c == '-' || c == '.';
}

// One past the closing quote of the string that opens at text[start]; kNone when the text ends first.
// A quote is the string's end unless an odd run of backslashes precedes it. memchr skips the long base64
// strings that make up most of an inventory.
std::size_t string_end(std::string_view text, std::size_t start) {
  std::size_t from = start + 1;
  while (from < text.size()) {
    const void* hit = std::memchr(text.data() + from, '"', text.size() - from);
    if (hit == nullptr) return kNone;
    const auto quote = static_cast<std::size_t>(static_cast<const char*>(hit) - text.data());
    std::size_t backslashes = 0;
    while (quote - backslashes > start + 1 && text[quote - backslashes - 1] == '\\') ++backslashes;
    if (backslashes % 2 == 0) return quote + 1;
    from = quote + 1;
  }
  return kNone;
}

enum class Stop { kNone, kEndOfText, kMismatch, kTooDeep, kUnexpected };

struct ValueEnd {
  std::size_t end = 0;  // one past the value, when stop is kNone
  Stop stop = Stop::kNone;
  std::size_t at = 0;  // the byte where the scan stopped otherwise
};

// Where the value starting at text[pos] ends: strings and brackets matched, nothing built. `outside` is
// how many objects/arrays already enclose it; opening one more than max_depth in all is refused, as
// check_peer_json refuses it. The value's own grammar (tokens, commas, colons) is not checked here.
ValueEnd value_end(std::string_view text, std::size_t pos, std::size_t outside, std::size_t max_depth) {
  if (pos >= text.size()) return {0, Stop::kEndOfText, pos};
  const char first = text[pos];
  if (first == '"') {
    const auto end = string_end(text, pos);
    return end == kNone ? ValueEnd{0, Stop::kEndOfText, text.size()} : ValueEnd{end, Stop::kNone, 0};
  }
  if (first != '{' && first != '[') {
    std::size_t end = pos;
    while (end < text.size() && is_scalar_char(text[end])) ++end;
    if (end == pos) return {0, Stop::kUnexpected, pos};
    return {end, Stop::kNone, 0};
  }
  std::string closers;  // the closing bracket each open container expects
  for (std::size_t i = pos; i < text.size(); ++i) {
    switch (text[i]) {
      case '"': {
        const auto end = string_end(text, i);
        if (end == kNone) return {0, Stop::kEndOfText, text.size()};
        i = end - 1;
        break;
      }
      case '{':
      case '[':
        if (outside + closers.size() >= max_depth) return {0, Stop::kTooDeep, i};
        closers.push_back(text[i] == '{' ? '}' : ']');
        break;
      case '}':
      case ']':
        if (text[i] != closers.back()) return {0, Stop::kMismatch, i};
        closers.pop_back();
        if (closers.empty()) return {i + 1, Stop::kNone, 0};
        break;
      default:
        break;
    }
  }
  return {0, Stop::kEndOfText, text.size()};
}

// A key the fast path compares byte for byte: printable ASCII without escapes (so that its text is its value).
bool is_plain_key(std::string_view key) {
  for (const char c : key) {
    if (c < 0x20 || c > 0x7e || c == '\\') return false;
  }
  return true;
}

bool is_null_at(std::string_view text, std::size_t pos) {
  return text.substr(pos, 4) == "null" && (pos + 4 == text.size() || !is_scalar_char(text[pos + 4]));
}

std::string entry_name(std::size_t number) { return "entry " + std::to_string(number); }

}  // namespace

std::optional<InventoryScan> InventoryScan::open(std::string& text, const PeerJsonLimits& limits) {
  const std::string_view t = text;
  if (t.size() > limits.max_bytes) return std::nullopt;
  std::size_t pos = skip_space(t, 0);
  if (pos >= t.size() || t[pos] != '{') return std::nullopt;
  pos = skip_space(t, pos + 1);

  // The members, one by one; the Certificates array is only skipped over (its end found), not read.
  const PeerJsonLimits member_limits{limits.max_bytes, limits.max_depth > 1 ? limits.max_depth - 1 : 0,
                                     limits.max_object_members};
  bool seen_certificates = false;
  std::size_t array_open = kNone;  // the '[' of Certificates
  std::size_t array_end = kNone;
  bool array_closed = true;
  std::size_t commas = 0;
  if (pos < t.size() && t[pos] == '}') {
    ++pos;
  } else {
    while (true) {
      if (pos >= t.size() || t[pos] != '"') return std::nullopt;
      const auto key_end = string_end(t, pos);
      if (key_end == kNone) return std::nullopt;
      const auto key = t.substr(pos + 1, key_end - pos - 2);
      if (!is_plain_key(key) || key == out::kError) return std::nullopt;
      pos = skip_space(t, key_end);
      if (pos >= t.size() || t[pos] != ':') return std::nullopt;
      pos = skip_space(t, pos + 1);
      if (pos >= t.size()) return std::nullopt;

      if (key == out::kCertificates) {
        if (seen_certificates) return std::nullopt;  // which one counts is the whole parse's business
        seen_certificates = true;
        if (t[pos] == '[') {
          const auto end = value_end(t, pos, 1, limits.max_depth);
          if (end.stop == Stop::kTooDeep) return std::nullopt;  // refused whole, with check_peer_json's error
          array_open = pos;
          if (end.stop != Stop::kNone) {
            // Not closed (truncated output) or broken inside: the entries before the damage are read, then
            // next() reports it with the entry's number.
            array_closed = false;
            break;
          }
          array_end = end.end;
          pos = end.end;
        } else if (is_null_at(t, pos)) {
          pos += 4;
        } else {
          return std::nullopt;  // a bare object, the ETS wrapper, a scalar: the whole parse's shapes
        }
      } else {
        const auto end = value_end(t, pos, 1, limits.max_depth);
        if (end.stop != Stop::kNone) return std::nullopt;
        if (!parse_peer_json_as<nlohmann::json>(t.substr(pos, end.end - pos), member_limits, "a member").ok())
          return std::nullopt;
        pos = end.end;
      }

      pos = skip_space(t, pos);
      if (pos >= t.size()) return std::nullopt;
      if (t[pos] == '}') {
        ++pos;
        break;
      }
      if (t[pos] != ',') return std::nullopt;
      if (++commas >= limits.max_object_members) return std::nullopt;
      pos = skip_space(t, pos + 1);
    }
  }
  if (array_closed && skip_space(t, pos) != t.size()) return std::nullopt;  // text after the document

  InventoryScan scan(std::move(text), limits);
  if (array_open != kNone) {
    scan.pos_ = array_open + 1;
    scan.array_end_ = array_end;
    scan.array_end_known_ = array_closed;
    scan.done_ = false;
  }
  return scan;
}

Result<std::optional<std::string_view>> InventoryScan::next() {
  if (failed_) return *failed_;
  if (done_) return std::optional<std::string_view>();
  const std::string_view t = text_;
  const auto fail = [this](std::string message) -> Result<std::optional<std::string_view>> {
    failed_ = Error::invalid_argument(std::move(message));
    return *failed_;
  };
  const auto where = [this] {
    return elements_ == 0 ? std::string("before entry 1") : "after " + entry_name(elements_);
  };
  std::size_t pos = skip_space(t, pos_);
  if (pos >= t.size()) {
    return fail("the script's output ends inside the certificate list " + where() + " (truncated at byte " +
                std::to_string(t.size()) + ")");
  }
  if (t[pos] == ']') {
    // The end, where open() found it (anything else is a broken document).
    if (!array_end_known_ || pos + 1 != array_end_)
      return fail("the script's output is not valid JSON " + where() + " (at byte " + std::to_string(pos) + ")");
    done_ = true;
    return std::optional<std::string_view>();
  }
  if (elements_ > 0) {
    if (t[pos] != ',')
      return fail("the script's output is not valid JSON " + where() + " (at byte " + std::to_string(pos) + ")");
    pos = skip_space(t, pos + 1);
  }

  const std::size_t number = elements_ + 1;
  const auto end = value_end(t, pos, 2, limits_.max_depth);
  switch (end.stop) {
    case Stop::kNone:
      break;
    case Stop::kEndOfText:
      return fail("the script's output ends inside " + entry_name(number) + " (truncated at byte " +
                  std::to_string(t.size()) + ")");
    case Stop::kTooDeep:
      return fail("the script's output nests objects/arrays deeper than " + std::to_string(limits_.max_depth) +
                  " levels in " + entry_name(number) + " (at byte " + std::to_string(end.at) + ")");
    case Stop::kMismatch:
    case Stop::kUnexpected:
      return fail("the script's output is not valid JSON in " + entry_name(number) + " (at byte " +
                  std::to_string(end.at) + ")");
  }
  elements_ = number;
  pos_ = end.end;
  return std::optional<std::string_view>(t.substr(pos, end.end - pos));
}

}  // namespace wincert::certstore::remote
