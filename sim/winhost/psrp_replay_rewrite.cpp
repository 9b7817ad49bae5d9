// PSRP replay rewriting (see the header): ids in WS-Man text and PSRP headers, and re-fragmenting.
#include "sim/winhost/psrp_replay_rewrite.hpp"

#include <algorithm>
#include <cctype>

#include "common/encoding.hpp"
#include "winrm/psrp/fragment.hpp"

namespace wincert::sim {
namespace psrp = winrm::psrp;
namespace {

char upper(char c) { return static_cast<char>(std::toupper(static_cast<unsigned char>(c))); }

std::string to_upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = upper(c);
  return out;
}

bool starts_with_ci(std::string_view text, std::size_t pos, std::string_view upper_prefix) {
  if (text.size() - pos < upper_prefix.size()) return false;
  for (std::size_t i = 0; i < upper_prefix.size(); ++i)
    if (upper(text[pos + i]) != upper_prefix[i]) return false;
  return true;
}

constexpr std::string_view kBom = "\xEF\xBB\xBF";

// A message's bytes within one response: its fragments' blobs joined, and where each blob came from.
struct Run {
  std::uint64_t object_id = 0;
  std::uint64_t first_fragment_id = 0;
  bool start = false;
  bool end = false;
  std::string data;
  std::vector<std::pair<std::size_t, std::size_t>> blobs;  // (source payload, size)
  std::size_t last_position = 0;                           // of its last fragment in the response
};

// Rewrites RPID/PID in the header at the start of `data` (a whole message or its first bytes).
Status rewrite_header(std::string& data, const ReplayIdMap& ids) {
  auto message = psrp::decode_message(data);
  if (!message) return message.error();
  bool changed = false;
  for (psrp::Guid* id : {&message->runspace_pool_id, &message->pipeline_id}) {
    auto client = ids.client_guid(*id);
    if (client && *client != *id) {
      *id = *client;
      changed = true;
    }
  }
  if (!changed) return {};
  bool bom = data.size() >= psrp::kMessageHeaderSize + kBom.size() &&
             std::string_view(data).substr(psrp::kMessageHeaderSize, kBom.size()) == kBom;
  data = psrp::encode_message(*message, bom);
  return {};
}

struct PayloadElement {
  std::size_t begin = 0;           // of the open tag
  std::size_t content_begin = 0;   // after the open tag
  std::size_t content_end = 0;     // start of the close tag
  std::size_t end = 0;             // after the close tag
  bool one_fragment_each = false;  // rsp:Stream: re-fragmented data gets one element per fragment
};

// The payload elements Windows writes in PSRP responses, as recorded: rsp:Stream (ReceiveResponse) and
// connectResponseXml (ConnectResponse). Self-closing elements carry nothing and are left alone.
std::vector<PayloadElement> find_payload_elements(std::string_view envelope) {
  struct Kind {
    std::string_view open, close;
    bool one_fragment_each;
  };
  static constexpr Kind kKinds[] = {{"<rsp:Stream", "</rsp:Stream>", true},
                                    {"<connectResponseXml", "</connectResponseXml>", false}};
  std::vector<PayloadElement> out;
  for (const auto& kind : kKinds) {
    for (std::size_t p = envelope.find(kind.open); p != std::string_view::npos; p = envelope.find(kind.open, p + 1)) {
      std::size_t after = p + kind.open.size();
      if (after >= envelope.size() || (envelope[after] != ' ' && envelope[after] != '>')) continue;
      std::size_t gt = envelope.find('>', after);
      if (gt == std::string_view::npos || envelope[gt - 1] == '/') continue;
      std::size_t close = envelope.find(kind.close, gt);
      if (close == std::string_view::npos) continue;
      out.push_back(PayloadElement{p, gt + 1, close, close + kind.close.size(), kind.one_fragment_each});
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.begin < b.begin; });
  return out;
}

std::string build_envelope(std::string_view envelope, const std::vector<PayloadElement>& elements,
                           const std::vector<ServerFragmentRewriter::Output>& fragments, bool one_per_stream) {
  std::string out;
  std::size_t copied = 0;
  for (std::size_t i = 0; i < elements.size(); ++i) {
    const auto& e = elements[i];
    out.append(envelope.substr(copied, e.begin - copied));
    std::string_view open = envelope.substr(e.begin, e.content_begin - e.begin);
    std::string_view close = envelope.substr(e.content_end, e.end - e.content_end);
    std::string joined;
    bool any = false;
    for (const auto& f : fragments) {
      if (f.source != i) continue;
      any = true;
      if (one_per_stream && e.one_fragment_each) {
        out.append(open).append(base64_encode(f.fragment)).append(close);
      } else {
        joined += f.fragment;
      }
    }
    if (!(one_per_stream && e.one_fragment_each) || !any) out.append(open).append(base64_encode(joined)).append(close);
    copied = e.end;
  }
  out.append(envelope.substr(copied));
  return out;
}

}  // namespace

// ---- ReplayIdMap --------------------------------------------------------------------------------------------

const std::string* ReplayIdMap::client_id(std::string_view recorded) const {
  std::string key = to_upper(recorded);
  for (const auto& [r, c] : ids_)
    if (r == key) return &c;
  return nullptr;
}

bool ReplayIdMap::is_client_id(std::string_view client) const {
  std::string key = to_upper(client);
  return std::any_of(ids_.begin(), ids_.end(), [&](const auto& m) { return to_upper(m.second) == key; });
}

void ReplayIdMap::map_id(std::string recorded, std::string client) {
  std::string key = to_upper(recorded);
  for (auto& m : ids_)
    if (m.first == key) {
      m.second = std::move(client);
      return;
    }
  ids_.emplace_back(std::move(key), std::move(client));
}

std::optional<psrp::Guid> ReplayIdMap::client_guid(const psrp::Guid& recorded) const {
  for (const auto& [r, c] : guids_)
    if (r == recorded) return c;
  return std::nullopt;
}

void ReplayIdMap::map_guid(const psrp::Guid& recorded, const psrp::Guid& client) {
  for (auto& m : guids_)
    if (m.first == recorded) {
      m.second = client;
      return;
    }
  guids_.emplace_back(recorded, client);
}

std::string ReplayIdMap::rewrite_text(std::string_view text) const {
  std::vector<const std::pair<std::string, std::string>*> changing;
  for (const auto& m : ids_)
    if (!m.first.empty() && m.first != m.second) changing.push_back(&m);
  if (changing.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const std::pair<std::string, std::string>* hit = nullptr;
    for (const auto* m : changing)
      if (upper(text[i]) == m->first[0] && starts_with_ci(text, i, m->first)) {
        hit = m;
        break;
      }
    if (hit) {
      out += hit->second;
      i += hit->first.size();
    } else {
      out += text[i++];
    }
  }
  return out;
}

// ---- client payloads ----------------------------------------------------------------------------------------

std::optional<PsrpMessageIds> first_message_ids(std::string_view fragment_bytes) {
  auto fragments = psrp::parse_fragments(fragment_bytes);
  if (!fragments) return std::nullopt;
  for (const auto& f : *fragments) {
    if (!f.start) continue;
    auto message = psrp::decode_message(f.blob);
    if (!message) return std::nullopt;
    return PsrpMessageIds{message->runspace_pool_id, message->pipeline_id};
  }
  return std::nullopt;
}

// ---- server payloads ----------------------------------------------------------------------------------------

Result<std::vector<ServerFragmentRewriter::Output>> ServerFragmentRewriter::rewrite(
    const std::vector<std::string>& payloads, const ReplayIdMap& ids, std::size_t max_fragment_size) {
  if (max_fragment_size != 0 && max_fragment_size <= psrp::kFragmentHeaderSize)
    return Error::invalid_argument("a PSRP fragment size of " + std::to_string(max_fragment_size) +
                                   " bytes leaves no room for data");
  // Join each message's fragments (defragmenting), in the order their last fragments came.
  std::vector<Run> runs;
  std::map<std::uint64_t, std::size_t> open;  // object id -> index in runs
  std::size_t position = 0;
  for (std::size_t source = 0; source < payloads.size(); ++source) {
    auto fragments = psrp::parse_fragments(payloads[source]);
    if (!fragments)
      return Error::invalid_argument("recorded payload " + std::to_string(source + 1) +
                                     " of the response is not PSRP fragments: " + fragments.error().message);
    for (auto& f : *fragments) {
      auto it = open.find(f.object_id);
      if (it != open.end() && f.start)
        return Error::invalid_argument("recorded PSRP object " + std::to_string(f.object_id) +
                                       " starts again before it ended");
      if (it == open.end()) {
        Run run;
        run.object_id = f.object_id;
        run.first_fragment_id = f.fragment_id;
        run.start = f.start;
        runs.push_back(std::move(run));
        it = open.emplace(f.object_id, runs.size() - 1).first;
      }
      Run& run = runs[it->second];
      run.data += f.blob;
      run.blobs.emplace_back(source, f.blob.size());
      run.last_position = position++;
      if (f.end) {
        run.end = true;
        open.erase(it);
      }
    }
  }
  std::stable_sort(runs.begin(), runs.end(),
                   [](const Run& a, const Run& b) { return a.last_position < b.last_position; });

  auto next_ids = next_fragment_id_;
  std::vector<Output> out;
  const std::size_t max_blob = max_fragment_size == 0 ? 0 : max_fragment_size - psrp::kFragmentHeaderSize;
  for (auto& run : runs) {
    if (run.start) {
      if (run.data.size() < psrp::kMessageHeaderSize)
        return Error::invalid_argument(
            "recorded PSRP object " + std::to_string(run.object_id) + (run.end ? " is" : " has its header") +
            " cut short: " + std::to_string(run.data.size()) +
            " bytes in this response, the 40-byte message header must be in one response for replay");
      WINCERT_TRY(rewrite_header(run.data, ids));
    }
    std::uint64_t fragment_id = 0;
    if (!run.start) {
      auto known = next_ids.find(run.object_id);
      fragment_id = known != next_ids.end() ? known->second : run.first_fragment_id;
    }
    std::size_t offset = 0;
    for (std::size_t b = 0; b < run.blobs.size(); ++b) {
      auto [source, size] = run.blobs[b];
      std::size_t done = 0;
      do {
        std::size_t piece = max_blob == 0 ? size - done : std::min(max_blob, size - done);
        psrp::Fragment f;
        f.object_id = run.object_id;
        f.fragment_id = fragment_id++;
        f.start = run.start && offset == 0 && done == 0 && b == 0;
        f.end = run.end && b + 1 == run.blobs.size() && done + piece == size;
        f.blob = run.data.substr(offset + done, piece);
        out.push_back(Output{source, psrp::encode_fragment(f)});
        done += piece;
      } while (done < size);
      offset += size;
    }
    if (run.end)
      next_ids.erase(run.object_id);
    else
      next_ids[run.object_id] = fragment_id;
  }
  next_fragment_id_ = std::move(next_ids);
  return out;
}

Result<std::string> rewrite_psrp_response(std::string_view envelope, const ReplayIdMap& ids,
                                          ServerFragmentRewriter& state, std::optional<std::size_t> max_envelope_size) {
  auto elements = find_payload_elements(envelope);
  auto too_large = [&](std::size_t size, const std::string& how) {
    return Error::resource_exhausted("the recorded response needs " + std::to_string(size) +
                                     " bytes, more than the client's MaxEnvelopeSize of " +
                                     std::to_string(*max_envelope_size) + how);
  };
  if (elements.empty()) {
    if (max_envelope_size && envelope.size() > *max_envelope_size) return too_large(envelope.size(), "");
    return std::string(envelope);
  }
  std::vector<std::string> payloads;
  for (const auto& e : elements) {
    auto bytes = base64_decode(envelope.substr(e.content_begin, e.content_end - e.content_begin));
    if (!bytes) return Error::invalid_argument("a recorded PSRP payload of the response is not base64");
    payloads.push_back(std::move(*bytes));
  }

  ServerFragmentRewriter kept = state;
  auto fragments = kept.rewrite(payloads, ids, 0);
  if (!fragments) return fragments.error();
  std::string out = build_envelope(envelope, elements, *fragments, false);
  if (!max_envelope_size) {
    state = std::move(kept);
    return out;
  }
  // psrp.md §2.4: the fragment size the client's MaxEnvelopeSize allows beside this envelope's own bytes.
  std::size_t overhead = envelope.size();
  for (const auto& e : elements) overhead -= e.content_end - e.content_begin;
  for (std::size_t i = 1; i < elements.size(); ++i)
    overhead -= (elements[i].content_begin - elements[i].begin) + (elements[i].end - elements[i].content_end);
  auto fragment_size = psrp::wsman_max_fragment_size(*max_envelope_size, overhead);
  if (!fragment_size) return too_large(out.size(), ": " + fragment_size.error().message);
  bool oversized = std::any_of(fragments->begin(), fragments->end(),
                               [&](const auto& f) { return f.fragment.size() > *fragment_size; });
  if (oversized) {
    ServerFragmentRewriter split = state;
    auto smaller = split.rewrite(payloads, ids, *fragment_size);
    if (!smaller) return smaller.error();
    out = build_envelope(envelope, elements, *smaller, true);
    kept = std::move(split);
    if (out.size() > *max_envelope_size)
      return too_large(out.size(), " with PSRP fragments of at most " + std::to_string(*fragment_size) + " bytes");
  } else if (out.size() > *max_envelope_size) {
    return too_large(out.size(), "");
  }
  state = std::move(kept);
  return out;
}

}  // namespace wincert::sim
