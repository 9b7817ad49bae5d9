// winhost-sim --replay of the PSRP transcripts (fixtures/winrm/pypsrp-psrp) to a client whose ids differ
// from the recorded ones: the rewriting unit on real fixture bytes, then every transcript replayed through
// the ReplayHandler by a simulated client with fresh ids, at the recorded MaxEnvelopeSize and at the
// smallest ones that still fit.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "common/encoding.hpp"
#include "sim/winhost/psrp_replay_rewrite.hpp"
#include "sim/winhost/replay.hpp"
#include "tests/support/result_matchers.hpp"
#include "winrm/psrp/fragment.hpp"
#include "winrm/psrp/message.hpp"

namespace wincert::sim {
namespace {

namespace psrp = winrm::psrp;
using ::testing::HasSubstr;

const std::string kPsrpFixtures = std::string(WINCERT_SHARED_DIR) + "/fixtures/winrm/pypsrp-psrp/";
constexpr std::string_view kPowerShellResource =
    "<wsman:ResourceURI s:mustUnderstand=\"true\">http://schemas.microsoft.com/powershell/";

struct Recorded {
  std::string request, response;
  unsigned status = 200;
};

std::vector<Recorded> load(const std::string& name) {
  std::vector<Recorded> out;
  YAML::Node root = YAML::LoadFile(kPsrpFixtures + name);
  for (const auto& m : root["messages"]) {
    Recorded r{m["request"].as<std::string>(), m["response"].IsNull() ? "" : m["response"].as<std::string>(), 200};
    if (m["transport_error"]) r.status = m["transport_error"]["code"].as<unsigned>();
    if (m["http_error"]) r.status = 500;
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<std::string> psrp_transcripts() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(kPsrpFixtures))
    if (e.path().extension() == ".yml") names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = info.param.substr(0, info.param.size() - 4);
  for (auto& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = 'X';
  return n;
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  for (auto p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
}

// Text between `open_prefix...>` and `close`, for every such element (no std::regex: bodies are 60 KB).
struct ElementText {
  std::size_t begin, end;  // of the text
};
std::vector<ElementText> element_texts(const std::string& xml, const std::string& open_prefix,
                                       const std::string& close) {
  std::vector<ElementText> out;
  for (auto p = xml.find(open_prefix); p != std::string::npos; p = xml.find(open_prefix, p + 1)) {
    char after = xml[p + open_prefix.size()];
    if (after != ' ' && after != '>') continue;
    auto gt = xml.find('>', p);
    if (xml[gt - 1] == '/') continue;
    auto c = xml.find(close, gt);
    out.push_back({gt + 1, c});
  }
  return out;
}

// The decoded PSRP payloads of a response, in document order.
std::vector<std::string> response_payloads(const std::string& envelope) {
  auto streams = element_texts(envelope, "<rsp:Stream", "</rsp:Stream>");
  auto connect = element_texts(envelope, "<connectResponseXml", "</connectResponseXml>");
  streams.insert(streams.end(), connect.begin(), connect.end());
  std::sort(streams.begin(), streams.end(), [](auto& a, auto& b) { return a.begin < b.begin; });
  std::vector<std::string> out;
  for (auto& t : streams) out.push_back(base64_decode(envelope.substr(t.begin, t.end - t.begin)).value());
  return out;
}

// Unwrapped results (a failure is a test failure and an empty list).
std::vector<psrp::Fragment> fragments_of(std::string_view bytes) {
  auto r = psrp::parse_fragments(bytes);
  if (!r) {
    ADD_FAILURE() << r.error().message;
    return {};
  }
  return std::move(*r);
}

std::vector<std::string> feed(psrp::Defragmenter& defrag, std::string_view bytes) {
  auto r = defrag.feed(bytes);
  if (!r) {
    ADD_FAILURE() << r.error().message;
    return {};
  }
  return std::move(*r);
}

std::size_t fragment_count(const std::vector<std::string>& payloads) {
  std::size_t n = 0;
  for (auto& p : payloads) n += fragments_of(p).size();
  return n;
}

// Values of `marker...` up to `stop` (attribute values, selector texts).
std::vector<std::string> values_after(const std::string& xml, const std::string& marker, char stop) {
  std::vector<std::string> out;
  for (auto p = xml.find(marker); p != std::string::npos; p = xml.find(marker, p + 1)) {
    auto b = p + marker.size();
    out.push_back(xml.substr(b, xml.find(stop, b) - b));
  }
  return out;
}

using Wire16 = std::array<std::uint8_t, 16>;
Wire16 wire_at(const std::string& bytes, std::size_t offset) {
  Wire16 w{};
  std::copy_n(reinterpret_cast<const std::uint8_t*>(bytes.data() + offset), 16, w.begin());
  return w;
}
bool is_zero(const Wire16& w) {
  return std::all_of(w.begin(), w.end(), [](auto b) { return b == 0; });
}

// A client with its own ids: it re-sends the recorded requests with fresh ShellIds (lower case, to check the
// spelling is kept), fresh CommandIds, fresh RPID/PID bytes (.NET layout) in every PSRP message it sends and
// fresh MessageIDs.
class FreshIdClient {
 public:
  std::map<std::string, std::string> text_ids;  // recorded (upper case) -> client
  std::map<Wire16, Wire16> wire_ids;            // recorded RPID/PID bytes -> client

  std::string rewrite(std::string request, std::optional<std::size_t> max_envelope_size, std::string& message_id) {
    for (const auto& [marker, stop, lower] : std::vector<std::tuple<std::string, char, bool>>{
             {"ShellId=\"", '"', true}, {"Name=\"ShellId\">", '<', true}, {"CommandId=\"", '"', false}}) {
      for (const auto& id : values_after(request, marker, stop)) {
        if (text_ids.contains(upper(id))) continue;
        auto fresh = psrp::Guid::random_v4();
        text_ids[upper(id)] = lower ? fresh.to_string() : fresh.to_upper_string();
      }
    }
    for (const auto& [recorded, client] : text_ids) replace_all(request, recorded, client);
    auto mid = values_after(request, "<wsa:MessageID>", '<').at(0);
    message_id = "uuid:" + psrp::Guid::random_v4().to_upper_string();
    replace_all(request, mid, message_id);
    if (max_envelope_size) {
      auto v = values_after(request, "<wsman:MaxEnvelopeSize s:mustUnderstand=\"true\">", '<').at(0);
      replace_all(request, "\">" + v + "</wsman:MaxEnvelopeSize>",
                  "\">" + std::to_string(*max_envelope_size) + "</wsman:MaxEnvelopeSize>");
    }
    for (const auto& [open, close] :
         std::vector<std::pair<std::string, std::string>>{{"<creationXml", "</creationXml>"},
                                                          {"<connectXml", "</connectXml>"},
                                                          {"<rsp:Arguments", "</rsp:Arguments>"},
                                                          {"<rsp:Stream", "</rsp:Stream>"}}) {
      auto texts = element_texts(request, open, close);
      for (auto it = texts.rbegin(); it != texts.rend(); ++it) {
        auto bytes = base64_decode(request.substr(it->begin, it->end - it->begin)).value();
        request.replace(it->begin, it->end - it->begin, base64_encode(fresh_wire_ids(bytes)));
      }
    }
    return request;
  }

 private:
  std::string fresh_wire_ids(const std::string& bytes) {
    std::string out;
    for (auto f : fragments_of(bytes)) {
      if (f.start && f.blob.size() >= psrp::kMessageHeaderSize) {
        for (std::size_t offset : {std::size_t{8}, std::size_t{24}}) {
          Wire16 recorded = wire_at(f.blob, offset);
          if (is_zero(recorded)) continue;
          if (!wire_ids.contains(recorded)) wire_ids[recorded] = psrp::Guid::random_v4().to_dotnet_bytes();
          std::copy(wire_ids[recorded].begin(), wire_ids[recorded].end(), f.blob.begin() + offset);
        }
      }
      out += psrp::encode_fragment(f);
    }
    return out;
  }
};

HttpReply post(ReplayHandler& handler, std::string body) {
  std::optional<HttpReply> reply;
  handler.handle(RequestContext{}, std::move(body), [&](HttpReply r) { reply = std::move(r); });
  EXPECT_TRUE(reply.has_value());
  return reply.value_or(HttpReply{});
}

bool targets_powershell(const std::string& request) { return request.find(kPowerShellResource) != std::string::npos; }

// The smallest MaxEnvelopeSize a recorded response fits in after re-fragmenting (a boundary: it fits, one
// byte less does not).
std::size_t smallest_envelope(const std::string& response) {
  auto fits = [&](std::size_t m) {
    ServerFragmentRewriter state;
    return static_cast<bool>(rewrite_psrp_response(response, ReplayIdMap{}, state, m));
  };
  std::size_t lo = 1, hi = 1 << 22;  // !fits(lo), fits(hi)
  EXPECT_TRUE(fits(hi));
  while (hi - lo > 1) {
    std::size_t mid = lo + (hi - lo) / 2;
    (fits(mid) ? hi : lo) = mid;
  }
  return hi;
}

struct ReplayRun {
  std::size_t responses = 0, server_messages = 0, recorded_fragments = 0, served_fragments = 0;
  std::optional<std::size_t> first_fault_at;  // index of an unexpected fault
  std::string first_fault;
};

// Replays a transcript with a FreshIdClient; envelope(i) gives request i's MaxEnvelopeSize (nullopt: as
// recorded). Checks every response; stops at the first reply that is not the recorded one's kind.
ReplayRun replay(const std::string& name, const std::function<std::optional<std::size_t>(std::size_t)>& envelope) {
  ReplayRun run;
  Stats stats;
  auto handler = ReplayHandler::load(kPsrpFixtures + name, stats);
  EXPECT_THAT(handler, IsOk());
  if (!handler) return run;
  auto messages = load(name);
  FreshIdClient client;
  psrp::Defragmenter recorded_defrag, served_defrag;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    SCOPED_TRACE(name + " message " + std::to_string(i + 1));
    std::string mid;
    auto limit = envelope(i);
    auto reply = post(**handler, client.rewrite(messages[i].request, limit, mid));
    if (reply.status != messages[i].status || reply.body.find("w:EncodingLimit") != std::string::npos ||
        reply.body.find("winhost-sim replay") != std::string::npos) {
      run.first_fault_at = i;
      run.first_fault = reply.body;
      return run;
    }
    ++run.responses;
    if (messages[i].response.empty()) {  // an HTTP error without a body (http_error: true)
      EXPECT_EQ(reply.body, "");
      continue;
    }
    EXPECT_THAT(reply.body, HasSubstr("RelatesTo>" + mid + "<"));
    if (limit && targets_powershell(messages[i].request)) {
      EXPECT_LE(reply.body.size(), *limit);
    }
    std::string served_upper = upper(reply.body);
    for (const auto& [recorded, fresh] : client.text_ids) {
      EXPECT_EQ(served_upper.find(recorded), std::string::npos) << "recorded id " << recorded << " left";
      if (messages[i].response.find(recorded) != std::string::npos) {
        EXPECT_THAT(reply.body, HasSubstr(fresh));
      }
    }
    // Outside the PSRP payloads the response is the recorded one with the client's ids.
    if (!limit) {
      auto strip = [](std::string env) {
        for (const auto& [open, close] : std::vector<std::pair<std::string, std::string>>{
                 {"<rsp:Stream", "</rsp:Stream>"}, {"<connectResponseXml", "</connectResponseXml>"}}) {
          auto texts = element_texts(env, open, close);
          for (auto it = texts.rbegin(); it != texts.rend(); ++it) env.erase(it->begin, it->end - it->begin);
        }
        return env;
      };
      std::string back = reply.body;
      for (const auto& [recorded, fresh] : client.text_ids) replace_all(back, fresh, recorded);
      EXPECT_EQ(strip(back), strip(rewrite_relates_to(messages[i].response, mid)));
    }
    auto recorded_payloads = response_payloads(messages[i].response);
    auto served_payloads = response_payloads(reply.body);
    run.recorded_fragments += fragment_count(recorded_payloads);
    run.served_fragments += fragment_count(served_payloads);
    std::vector<std::string> want, got;
    for (auto& p : recorded_payloads)
      for (auto& m : feed(recorded_defrag, p)) want.push_back(m);
    for (auto& p : served_payloads) {
      auto messages_of = served_defrag.feed(p);
      EXPECT_THAT(messages_of, IsOk());
      if (messages_of)
        for (auto& m : *messages_of) got.push_back(m);
    }
    EXPECT_EQ(got.size(), want.size());
    for (std::size_t k = 0; k < std::min(got.size(), want.size()); ++k) {
      ++run.server_messages;
      auto w = psrp::decode_message(want[k]);
      auto g = psrp::decode_message(got[k]);
      EXPECT_THAT(g, IsOk());
      if (!g || !w) continue;
      EXPECT_EQ(g->type, w->type);
      EXPECT_EQ(g->destination, w->destination);
      EXPECT_EQ(g->data, w->data);
      EXPECT_EQ(got[k].substr(psrp::kMessageHeaderSize), want[k].substr(psrp::kMessageHeaderSize));
      for (std::size_t offset : {std::size_t{8}, std::size_t{24}}) {
        Wire16 recorded = wire_at(want[k], offset), served = wire_at(got[k], offset);
        if (is_zero(recorded)) {
          EXPECT_TRUE(is_zero(served)) << "offset " << offset;
        } else {
          EXPECT_TRUE(client.wire_ids.contains(recorded)) << "the server names an id the client never sent";
          EXPECT_EQ(served, client.wire_ids[recorded]) << "offset " << offset;
        }
      }
    }
  }
  EXPECT_EQ((*handler)->remaining(), 0u);
  return run;
}

// ---- the rewriting unit on real fixture bytes ----------------------------------------------------------------

TEST(PsrpReplayRewrite, IdTextIsReplacedInAnyCaseWithTheClientsSpelling) {
  ReplayIdMap ids;
  ids.map_id("32835EAA-1E68-4691-8936-4234A6EE2DD3", "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9");
  ids.map_id("8372DF51-5986-4AC3-96B4-8C519AE0976F", "8372DF51-5986-4AC3-96B4-8C519AE0976F");
  EXPECT_EQ(
      ids.rewrite_text("<a>32835eaa-1e68-4691-8936-4234a6ee2dd3</a><b x=\"32835EAA-1E68-4691-8936-4234A6EE2DD3\"/>"
                       "8372DF51-5986-4AC3-96B4-8C519AE0976F"),
      "<a>0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9</a><b x=\"0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9\"/>"
      "8372DF51-5986-4AC3-96B4-8C519AE0976F");
  ASSERT_NE(ids.client_id("32835eaa-1e68-4691-8936-4234a6ee2dd3"), nullptr);
  EXPECT_TRUE(ids.is_client_id("0F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9"));
  EXPECT_FALSE(ids.is_client_id("32835EAA-1E68-4691-8936-4234A6EE2DD3"));
}

TEST(PsrpReplayRewrite, FirstMessageIdsAreTheRecordedWireBytes) {
  auto messages = load("test_psrp_open_runspace.yml");
  auto text = element_texts(messages[0].request, "<creationXml", "</creationXml>").at(0);
  auto bytes = base64_decode(messages[0].request.substr(text.begin, text.end - text.begin)).value();
  auto ids = first_message_ids(bytes);
  ASSERT_TRUE(ids);
  // psrp.md §2.3: the 2018 recording carries the ShellId 76056A84-... in RFC byte order.
  const Wire16 rfc{0x76, 0x05, 0x6a, 0x84, 0x51, 0xdc, 0x4f, 0x24, 0x92, 0x62, 0xca, 0x2a, 0x55, 0x46, 0x4b, 0x2b};
  EXPECT_EQ(ids->runspace_pool.to_dotnet_bytes(), rfc);
  EXPECT_TRUE(ids->pipeline.is_nil());
  EXPECT_FALSE(first_message_ids("not fragments"));
}

TEST(PsrpReplayRewrite, ServerMessagesGetTheClientsRunspacePoolKeepingZeroAndBodies) {
  auto messages = load("test_psrp_open_runspace.yml");
  auto creation = element_texts(messages[0].request, "<creationXml", "</creationXml>").at(0);
  auto recorded_pool =
      first_message_ids(
          base64_decode(messages[0].request.substr(creation.begin, creation.end - creation.begin)).value())
          ->runspace_pool;
  const std::string& response = messages[1].response;  // SESSION_CAPABILITY (RPID zero) + APPLICATION_PRIVATE_DATA

  ServerFragmentRewriter state;
  auto unchanged = rewrite_psrp_response(response, ReplayIdMap{}, state, std::nullopt);
  ASSERT_THAT(unchanged, IsOk());
  EXPECT_EQ(*unchanged, response);

  ReplayIdMap ids;
  auto client_pool = psrp::Guid::random_v4();
  ids.map_guid(recorded_pool, client_pool);
  auto rewritten = rewrite_psrp_response(response, ids, state, std::nullopt);
  ASSERT_THAT(rewritten, IsOk());
  EXPECT_EQ(rewritten->size(), response.size());
  auto want = response_payloads(response), got = response_payloads(*rewritten);
  ASSERT_EQ(got.size(), 2u);
  auto capability = psrp::decode_message(fragments_of(got[0]).at(0).blob).value();
  auto private_data = psrp::decode_message(fragments_of(got[1]).at(0).blob).value();
  EXPECT_EQ(capability.type, psrp::MessageType::kSessionCapability);
  EXPECT_TRUE(capability.runspace_pool_id.is_nil());
  EXPECT_EQ(private_data.type, psrp::MessageType::kApplicationPrivateData);
  EXPECT_EQ(private_data.runspace_pool_id, client_pool);
  EXPECT_EQ(fragments_of(got[1]).at(0).blob.substr(40), fragments_of(want[1]).at(0).blob.substr(40));
}

TEST(PsrpReplayRewrite, RefragmentsToTheClientsEnvelopeKeepingObjectIds) {
  // RUNSPACEPOOL_STATE, one 124-byte fragment in a 995-byte envelope: the fragment size psrp.md §2.4 allows
  // (envelope - its own bytes - 256, x 3/4) is below 124 until well above 995 bytes, so the smallest envelope
  // that holds the response has it in several smaller fragments.
  auto messages = load("test_psrp_open_runspace.yml");
  const std::string& response = messages[2].response;
  const std::size_t limit = smallest_envelope(response);
  EXPECT_GT(limit, response.size());
  ServerFragmentRewriter state;
  auto out = rewrite_psrp_response(response, ReplayIdMap{}, state, limit);
  ASSERT_THAT(out, IsOk());
  EXPECT_LE(out->size(), limit);
  auto want = response_payloads(response), got = response_payloads(*out);
  EXPECT_GT(got.size(), want.size());  // one fragment per rsp:Stream, more fragments
  std::set<std::uint64_t> want_objects, got_objects;
  for (auto& p : want)
    for (auto& f : fragments_of(p)) want_objects.insert(f.object_id);
  for (auto& p : got) {
    auto fragments = fragments_of(p);
    EXPECT_EQ(fragments.size(), 1u);
    for (auto& f : fragments) got_objects.insert(f.object_id);
  }
  EXPECT_EQ(got_objects, want_objects);
  psrp::Defragmenter a, b;
  std::vector<std::string> ma, mb;
  for (auto& p : want)
    for (auto& m : feed(a, p)) ma.push_back(m);
  for (auto& p : got)
    for (auto& m : feed(b, p)) mb.push_back(m);
  EXPECT_EQ(mb, ma);
  // Too small for even the envelope's own bytes: the error the handler turns into w:EncodingLimit.
  EXPECT_THAT(rewrite_psrp_response(response, ReplayIdMap{}, state, limit - 1), HasCode(ErrorCode::kResourceExhausted));
  EXPECT_THAT(rewrite_psrp_response(response, ReplayIdMap{}, state, 1000), HasCode(ErrorCode::kResourceExhausted));
  EXPECT_THAT(rewrite_psrp_response(messages[0].response, ReplayIdMap{}, state, 1000),
              HasCode(ErrorCode::kResourceExhausted));
}

// A message split across two responses (possible in principle, absent from the recordings): the header in
// the first is rewritten, the fragment numbering continues in the second.
TEST(PsrpReplayRewrite, MessageAcrossTwoResponsesKeepsItsNumbering) {
  psrp::Message m;
  m.destination = psrp::Destination::kClient;
  m.type = psrp::MessageType::kPipelineOutput;
  m.runspace_pool_id = psrp::Guid::random_v4();
  m.pipeline_id = psrp::Guid::random_v4();
  m.data = std::string(3000, 'x');
  auto bytes = psrp::encode_message(m, true);
  auto fragments = psrp::fragment_message(bytes, 7, 1600).value();
  ASSERT_EQ(fragments.size(), 2u);
  auto envelope = [](const std::string& fragment) {
    return "<s:Envelope><s:Body><rsp:ReceiveResponse><rsp:Stream Name=\"stdout\">" + base64_encode(fragment) +
           "</rsp:Stream></rsp:ReceiveResponse></s:Body></s:Envelope>";
  };
  ReplayIdMap ids;
  auto pool = psrp::Guid::random_v4(), pipeline = psrp::Guid::random_v4();
  ids.map_guid(m.runspace_pool_id, pool);
  ids.map_guid(m.pipeline_id, pipeline);
  ServerFragmentRewriter state;
  auto first = rewrite_psrp_response(envelope(fragments[0]), ids, state, 2400);
  auto second = rewrite_psrp_response(envelope(fragments[1]), ids, state, 2400);
  ASSERT_THAT(first, IsOk());
  ASSERT_THAT(second, IsOk());
  std::vector<std::uint64_t> numbering;
  psrp::Defragmenter defrag;
  std::vector<std::string> complete;
  for (const auto* env : {&*first, &*second})
    for (auto& p : response_payloads(*env)) {
      for (auto& f : fragments_of(p)) numbering.push_back(f.fragment_id);
      for (auto& c : feed(defrag, p)) complete.push_back(c);
    }
  EXPECT_GT(numbering.size(), 2u);
  for (std::size_t i = 0; i < numbering.size(); ++i) EXPECT_EQ(numbering[i], i);
  ASSERT_EQ(complete.size(), 1u);
  auto got = psrp::decode_message(complete[0]).value();
  EXPECT_EQ(got.runspace_pool_id, pool);
  EXPECT_EQ(got.pipeline_id, pipeline);
  EXPECT_EQ(got.data, m.data);
}

// ---- the handler: a client with fresh ids, every transcript ---------------------------------------------------

class PsrpReplay : public ::testing::TestWithParam<std::string> {};

TEST_P(PsrpReplay, ServesEveryResponseWithTheClientsIds) {
  auto run = replay(GetParam(), [](std::size_t) { return std::nullopt; });
  EXPECT_FALSE(run.first_fault_at) << run.first_fault;
  EXPECT_EQ(run.responses, load(GetParam()).size());
  EXPECT_EQ(run.served_fragments, run.recorded_fragments);
  EXPECT_GT(run.server_messages, 0u);  // every transcript opens a pool
}

TEST_P(PsrpReplay, RefragmentsToTheSmallestEnvelopeThatFitsEachResponse) {
  auto messages = load(GetParam());
  std::vector<std::optional<std::size_t>> limits;
  for (auto& m : messages)
    limits.push_back(targets_powershell(m.request) && !m.response.empty()
                         ? std::optional<std::size_t>(smallest_envelope(m.response))
                         : std::nullopt);
  auto run = replay(GetParam(), [&](std::size_t i) { return limits[i]; });
  EXPECT_FALSE(run.first_fault_at) << run.first_fault;
  EXPECT_EQ(run.responses, messages.size());
  EXPECT_GT(run.served_fragments, run.recorded_fragments);  // every transcript opens a pool: re-fragmented
  RecordProperty("recorded_fragments", std::to_string(run.recorded_fragments));
  RecordProperty("served_fragments", std::to_string(run.served_fragments));
}

TEST_P(PsrpReplay, OneEnvelopeSizeForTheWholeTranscriptAndOneByteLessIsEncodingLimit) {
  auto messages = load(GetParam());
  std::size_t largest = 0, at = 0;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    if (!targets_powershell(messages[i].request) || messages[i].response.empty()) continue;
    auto m = smallest_envelope(messages[i].response);
    if (m > largest) largest = m, at = i;
  }
  auto fits = replay(GetParam(), [&](std::size_t) { return largest; });
  EXPECT_FALSE(fits.first_fault_at) << fits.first_fault;
  auto too_small = replay(GetParam(), [&](std::size_t) { return largest - 1; });
  ASSERT_TRUE(too_small.first_fault_at);
  EXPECT_LE(*too_small.first_fault_at, at);
  EXPECT_THAT(too_small.first_fault, HasSubstr("<s:Value>w:EncodingLimit</s:Value>"));
  EXPECT_THAT(too_small.first_fault, HasSubstr("MaxEnvelopeSize of " + std::to_string(largest - 1)));
}

INSTANTIATE_TEST_SUITE_P(PypsrpPsrp, PsrpReplay, ::testing::ValuesIn(psrp_transcripts()), test_name);

TEST(PsrpReplayMatching, EveryTranscriptIsCovered) { EXPECT_EQ(psrp_transcripts().size(), 30u); }

// ---- matching: ids the replay does not know -------------------------------------------------------------------

TEST(PsrpReplayMatching, UnknownShellOrCommandIdIsInvalidSelectorsNamingTheExpectedId) {
  const std::string name = "test_psrp_stream_output_invocation.yml";
  Stats stats;
  auto handler = ReplayHandler::load(kPsrpFixtures + name, stats).value();
  auto messages = load(name);
  FreshIdClient client;
  std::string mid;
  for (std::size_t i = 0; i < 4; ++i)
    ASSERT_EQ(post(*handler, client.rewrite(messages[i].request, {}, mid)).status, 200u);
  std::string receive = client.rewrite(messages[4].request, {}, mid);
  const std::string recorded_command = "8372DF51-5986-4AC3-96B4-8C519AE0976F";
  const std::string& client_command = client.text_ids.at(recorded_command);

  // A CommandId the client never created.
  std::string wrong_command = receive;
  replace_all(wrong_command, client_command, "11111111-2222-4333-8444-555555555555");
  auto reply = post(*handler, wrong_command);
  EXPECT_EQ(reply.status, 500u);
  EXPECT_THAT(reply.body, HasSubstr("<s:Value>w:InvalidSelectors</s:Value>"));
  EXPECT_THAT(reply.body, HasSubstr("Code=\"2150858843\""));
  EXPECT_THAT(reply.body, HasSubstr("expected DesiredStream@CommandId " + client_command));
  EXPECT_THAT(reply.body, HasSubstr("recorded as " + recorded_command));

  // The recorded ShellId instead of the client's.
  std::string wrong_shell = receive;
  replace_all(wrong_shell, client.text_ids.at("32835EAA-1E68-4691-8936-4234A6EE2DD3"),
              "32835EAA-1E68-4691-8936-4234A6EE2DD3");
  reply = post(*handler, wrong_shell);
  EXPECT_EQ(reply.status, 500u);
  EXPECT_THAT(reply.body,
              HasSubstr("ShellId 32835EAA-1E68-4691-8936-4234A6EE2DD3 failed because the shell was not found"));
  EXPECT_THAT(reply.body,
              HasSubstr("expected selector ShellId " + client.text_ids.at("32835EAA-1E68-4691-8936-4234A6EE2DD3")));

  // The client's ids in the other case are still its ids; the transcript did not move on after the faults.
  std::string other_case = receive;
  replace_all(other_case, client_command,
              upper(client_command) == client_command ? to_lower(client_command) : upper(client_command));
  reply = post(*handler, other_case);
  EXPECT_EQ(reply.status, 200u) << reply.body;
  EXPECT_EQ(handler->remaining(), 1u);
}

TEST(PsrpReplayMatching, CreateWithoutShellIdKeepsTheRecordedOne) {
  const std::string name = "test_psrp_open_runspace.yml";
  Stats stats;
  auto handler = ReplayHandler::load(kPsrpFixtures + name, stats).value();
  auto messages = load(name);
  std::string create = messages[0].request;
  replace_all(create, " ShellId=\"76056A84-51DC-4F24-9262-CA2A55464B2B\"", "");
  auto reply = post(*handler, create);
  EXPECT_EQ(reply.status, 200u);
  EXPECT_THAT(reply.body, HasSubstr("<w:Selector Name=\"ShellId\">76056A84-51DC-4F24-9262-CA2A55464B2B<"));
  reply = post(*handler, messages[1].request);  // uses the selector it was given
  EXPECT_EQ(reply.status, 200u) << reply.body;
}

}  // namespace
}  // namespace wincert::sim
