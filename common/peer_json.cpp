#include "common/peer_json.hpp"

#include <vector>

namespace wincert {

namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";

std::string size_text(std::size_t bytes) {
  if (bytes >= 1024 * 1024) return std::to_string(bytes / (1024 * 1024)) + " MiB";
  if (bytes >= 1024) return std::to_string(bytes / 1024) + " KiB";
  return std::to_string(bytes) + " bytes";
}

}  // namespace

Status check_peer_json(std::string_view text, const PeerJsonLimits& limits, std::string_view what) {
  if (text.size() > limits.max_bytes)
    return Error::invalid_argument(std::string(what) + " is " + std::to_string(text.size()) + " bytes, more than the " +
                                   size_text(limits.max_bytes) + " accepted from this source");
  // One entry per open container: the members (or elements) seen so far; objects only are capped.
  struct Open {
    bool object;
    std::size_t members;
  };
  std::vector<Open> open;
  open.reserve(limits.max_depth);
  bool in_string = false;
  bool escaped = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '{':
      case '[':
        if (open.size() >= limits.max_depth)
          return Error::invalid_argument(std::string(what) + " nests objects/arrays deeper than " +
                                         std::to_string(limits.max_depth) + " levels (at byte " + std::to_string(i) +
                                         ")");
        open.push_back({c == '{', 0});
        break;
      case '}':
      case ']':
        if (!open.empty()) open.pop_back();  // unbalanced text is the parser's to report
        break;
      case ',':
        if (!open.empty() && open.back().object && ++open.back().members >= limits.max_object_members)
          return Error::invalid_argument(std::string(what) + " has an object with more than " +
                                         std::to_string(limits.max_object_members) + " members (at byte " +
                                         std::to_string(i) + ")");
        break;
      default:
        break;
    }
  }
  return {};
}

template <typename JsonT>
Result<JsonT> parse_peer_json_as(std::string_view text, const PeerJsonLimits& limits, std::string_view what,
                                 const typename JsonT::parser_callback_t& callback) {
  if (text.substr(0, kBom.size()) == kBom) text.remove_prefix(kBom.size());
  WINCERT_TRY(check_peer_json(text, limits, what));
  try {
    return JsonT::parse(text.begin(), text.end(), callback);
  } catch (const typename JsonT::parse_error& e) {
    // nlohmann's own message quotes the last token read, which may be a password: give the byte only.
    return Error::invalid_argument(std::string(what) + " is not valid JSON: syntax error at byte " +
                                   std::to_string(e.byte));
  } catch (const std::exception&) {
    return Error::invalid_argument(std::string(what) + " is not valid JSON");
  }
}

template Result<nlohmann::json> parse_peer_json_as<nlohmann::json>(std::string_view, const PeerJsonLimits&,
                                                                   std::string_view,
                                                                   const nlohmann::json::parser_callback_t&);
template Result<nlohmann::ordered_json> parse_peer_json_as<nlohmann::ordered_json>(
    std::string_view, const PeerJsonLimits&, std::string_view, const nlohmann::ordered_json::parser_callback_t&);

}  // namespace wincert
