// The one way JSON from a peer is parsed: Command's replies, job configurations and job files,
// what a script prints on a managed host, the outbox. A peer chooses the shape of what it sends, so
// size, nesting depth and object width are limited BEFORE any value is built: nlohmann's parser is
// iterative, but copying, dump() and comparisons of a value recurse, so a value deeper than the limit
// must never exist. The error names the source and the byte, never the text (it may hold a secret).
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace wincert {

struct PeerJsonLimits {
  std::size_t max_bytes = 8u * 1024 * 1024;
  std::size_t max_depth = 64;  // nested objects/arrays; real documents stay under 10
  // Members of one object. nlohmann's ordered_json inserts in linear time per key (quadratic per
  // object), so a peer-sized object of millions of keys would cost hours; real objects have dozens.
  std::size_t max_object_members = 1000;
};

// Limits per source.
namespace peer_json_limits {
// Register, Heartbeat, completion/inventory/CSR replies: small envelopes (a job list, a certificate).
inline constexpr PeerJsonLimits kCommandReply{16u * 1024 * 1024, 64, 1000};
// A job configuration (from Command or a replay job file): the 64 MiB cap of the HTTP client.
inline constexpr PeerJsonLimits kJobConfiguration{64u * 1024 * 1024, 64, 1000};
// One document a script prints on a managed host (an inventory of a large store is a few MB).
// Parsed as nlohmann::json (a std::map per object), so wide objects cost log time per key.
inline constexpr PeerJsonLimits kScriptOutput{64u * 1024 * 1024, 64, 1000000};
// One outbox entry header (a line of metadata).
inline constexpr PeerJsonLimits kOutboxHeader{64u * 1024, 16, 256};
// A reply of an OAuth token endpoint.
inline constexpr PeerJsonLimits kTokenReply{1024u * 1024, 16, 1000};
}  // namespace peer_json_limits

// Checks size, depth and object width without building anything (one linear pass, no recursion, no
// allocation beyond the depth). `what` names the source: "the Register reply from https://host/...".
Status check_peer_json(std::string_view text, const PeerJsonLimits& limits, std::string_view what);

// check_peer_json, then parse. A leading UTF-8 BOM is skipped. Never throws. A callback (nlohmann's parser
// callback) may take values out of the tree as they complete, so that a large array never exists as a tree.
template <typename JsonT = nlohmann::json>
Result<JsonT> parse_peer_json_as(std::string_view text, const PeerJsonLimits& limits, std::string_view what,
                                 const typename JsonT::parser_callback_t& callback = nullptr);

inline Result<nlohmann::json> parse_peer_json(std::string_view text, const PeerJsonLimits& limits,
                                              std::string_view what) {
  return parse_peer_json_as<nlohmann::json>(text, limits, what);
}
inline Result<nlohmann::ordered_json> parse_peer_ordered_json(
    std::string_view text, const PeerJsonLimits& limits, std::string_view what,
    const nlohmann::ordered_json::parser_callback_t& callback = nullptr) {
  return parse_peer_json_as<nlohmann::ordered_json>(text, limits, what, callback);
}

extern template Result<nlohmann::json> parse_peer_json_as<nlohmann::json>(std::string_view, const PeerJsonLimits&,
                                                                          std::string_view,
                                                                          const nlohmann::json::parser_callback_t&);
extern template Result<nlohmann::ordered_json> parse_peer_json_as<nlohmann::ordered_json>(
    std::string_view, const PeerJsonLimits&, std::string_view, const nlohmann::ordered_json::parser_callback_t&);

}  // namespace wincert
