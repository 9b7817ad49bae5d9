// winhost-sim --replay of PSRP transcripts (fixtures/winrm/pypsrp-psrp): the client's ids differ from the
// recorded ones, so every served response is rewritten from the recorded ids to the client's, both the WS-Man
// ShellId/CommandId text and the RPID/PID inside the PSRP messages of the base64 payloads, and re-fragmented
// when the client's MaxEnvelopeSize is smaller than the recording's. Pure code, no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "winrm/psrp/message.hpp"

namespace wincert::sim {

// Recorded id -> the client's id, learned from the client's requests.
class ReplayIdMap {
 public:
  // WS-Man ids (ShellId, CommandId) as text, compared case-insensitively; the client's spelling is kept.
  const std::string* client_id(std::string_view recorded) const;
  // Whether `client` is the client's side of some mapping.
  bool is_client_id(std::string_view client) const;
  void map_id(std::string recorded, std::string client);

  // PSRP ids (RPID, PID) as opaque 16 wire bytes (psrp.md §2.3: the recording is in RFC order, a modern
  // client in .NET order; Guid::from_dotnet_bytes/to_dotnet_bytes round-trip any 16 bytes unchanged).
  std::optional<winrm::psrp::Guid> client_guid(const winrm::psrp::Guid& recorded) const;
  void map_guid(const winrm::psrp::Guid& recorded, const winrm::psrp::Guid& client);

  // `text` with every recorded ShellId/CommandId replaced by the client's (one pass, any case).
  std::string rewrite_text(std::string_view text) const;

 private:
  std::vector<std::pair<std::string, std::string>> ids_;  // recorded (upper case), client
  std::vector<std::pair<winrm::psrp::Guid, winrm::psrp::Guid>> guids_;
};

// RPID and PID of the first PSRP message in a client payload (creationXml, rsp:Arguments, connectXml): the
// header of the first fragment with the start flag. nullopt when the bytes hold no such header.
struct PsrpMessageIds {
  winrm::psrp::Guid runspace_pool;
  winrm::psrp::Guid pipeline;
};
std::optional<PsrpMessageIds> first_message_ids(std::string_view fragment_bytes);

// Rewrites the fragments of the server's payloads, response after response. Keeps object ids; a message
// split across responses keeps its fragment numbering (the state between responses).
class ServerFragmentRewriter {
 public:
  struct Output {
    std::size_t source = 0;  // index of the payload the fragment's data came from
    std::string fragment;    // encoded
  };
  // payloads: the decoded bytes of each payload element of one response. max_fragment_size 0 keeps the
  // recorded fragment boundaries; otherwise fragments larger than it are split (header included).
  // invalid_argument when the recorded bytes are not PSRP fragments or a message header is split across
  // two responses.
  Result<std::vector<Output>> rewrite(const std::vector<std::string>& payloads, const ReplayIdMap& ids,
                                      std::size_t max_fragment_size);

 private:
  std::map<std::uint64_t, std::uint64_t> next_fragment_id_;  // objects continuing into the next response
};

// The recorded response envelope (ids in its text already rewritten) with its PSRP payloads (rsp:Stream,
// connectResponseXml) rewritten to the client's RPID/PID and, when max_envelope_size is set and a recorded
// fragment exceeds the fragment size psrp.md §2.4 computes from it, re-fragmented: one fragment per
// rsp:Stream (copies of the recorded element), never a fragment across two envelopes. Errors:
// resource_exhausted when the response cannot fit max_envelope_size; invalid_argument for a recorded payload
// that is not PSRP. `state` advances only on success.
Result<std::string> rewrite_psrp_response(std::string_view envelope, const ReplayIdMap& ids,
                                          ServerFragmentRewriter& state, std::optional<std::size_t> max_envelope_size);

}  // namespace wincert::sim
