#include "sim/winhost/replay.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <sstream>

#include "common/encoding.hpp"
#include "common/log.hpp"
#include "sim/winhost/error_reply.hpp"
#include "sim/winhost/winrs_service.hpp"
#include "winrm/xml.hpp"

namespace wincert::sim {
namespace {

namespace x = winrm::xml;

constexpr std::string_view kPowerShellResourcePrefix = "http://schemas.microsoft.com/powershell/";
// The slots whose id the client chooses: a recorded id there is mapped to the client's (or kept if absent).
constexpr std::string_view kShellCreateSlot = "Shell@ShellId";
constexpr std::string_view kCommandCreateSlot = "CommandLine@CommandId";

struct RequestIds {
  std::vector<std::pair<std::string, std::string>> slots;  // (where, id) in document order
  std::optional<PsrpMessageIds> creation;                  // creationXml / connectXml
  std::optional<PsrpMessageIds> command;                   // rsp:Arguments
};

bool is_id_name(std::string_view name) { return name == "ShellId" || name == "CommandId"; }

std::optional<PsrpMessageIds> payload_ids(const pugi::xml_node& node) {
  auto bytes = base64_decode(x::all_text(node));
  if (!bytes) return std::nullopt;
  return first_message_ids(*bytes);
}

RequestIds read_request_ids(const WsmanRequest& req) {
  RequestIds out;
  for (const auto& [name, value] : req.selectors)
    if (is_id_name(name)) out.slots.emplace_back("selector " + name, value);
  std::function<void(const pugi::xml_node&)> walk = [&](const pugi::xml_node& node) {
    for (auto n = node.first_child(); n; n = n.next_sibling()) {
      if (n.type() != pugi::node_element) continue;
      std::string local(x::local_name(n));
      for (auto a = n.first_attribute(); a; a = a.next_attribute())
        if (is_id_name(x::local_name(a)))
          out.slots.emplace_back(local + "@" + std::string(x::local_name(a)), std::string(trim(a.value())));
      if (local == "Selector" && is_id_name(x::attribute(n, "Name").value()))
        out.slots.emplace_back(std::string("filter selector ") + x::attribute(n, "Name").value(),
                               std::string(trim(x::text(n))));
      if ((local == "creationXml" || local == "connectXml") && !out.creation) out.creation = payload_ids(n);
      if (local == "Arguments" && !out.command) out.command = payload_ids(n);
      walk(n);
    }
  };
  walk(req.body);
  return out;
}

// The ShellIds and CommandIds a recorded response gives the client (CreateResponse, CommandResponse,
// Enumerate items): ids the server chose (WinRS) or echoes.
std::vector<std::string> ids_given_by(std::string_view response) {
  std::vector<std::string> out;
  for (std::string_view marker : {":ShellId>", ":CommandId>", "Name=\"ShellId\">"}) {
    for (auto p = response.find(marker); p != std::string_view::npos; p = response.find(marker, p + 1)) {
      auto begin = p + marker.size();
      auto end = response.find('<', begin);
      if (end == std::string_view::npos) break;
      auto id = trim(response.substr(begin, end - begin));
      if (!id.empty()) out.emplace_back(id);
    }
  }
  return out;
}

bool equal_ci(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char l, char r) {
           return std::toupper(static_cast<unsigned char>(l)) == std::toupper(static_cast<unsigned char>(r));
         });
}

Fault invalid_selector_fault(std::string_view where, std::string_view client_id, std::string explanation) {
  Fault f =
      where.find("ShellId") != std::string_view::npos ? shell_not_found_fault(client_id) : command_not_found_fault();
  f.message += "(winhost-sim replay: " + explanation + ")";
  return f;
}

// A response the client's MaxEnvelopeSize cannot hold: WS-Man's EncodingLimit fault with the MaxEnvelopeSize
// detail [DSP0226 §6.2]; the code is 0x80338111, what Windows reports for a MaxEnvelopeSize quota exceeded, and the
// reason starts as Windows' does ("The WS-Management service cannot process the request. The computed response
// packet size (976820) exceeds the maximum envelope size that is allowed (512000)." in a public bug report; the
// fault itself was not recorded).
Fault encoding_limit_fault(const std::string& detail) {
  Fault f;
  f.code = "s:Sender";
  f.subcode = "w:EncodingLimit";
  f.reason =
      "The WS-Management service cannot process the request. The computed response packet size exceeds the "
      "maximum envelope size that is allowed. ";
  f.wsman_code = 2150859025UL;
  f.message = "The response exceeds the MaxEnvelopeSize quota of the request: " + detail;
  f.fault_detail = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/MaxEnvelopeSize";
  return f;
}

// Checks the ids the client's request names against the recorded request's and learns the new ones into
// `ids`. Returns the fault to answer when the client names an id the replay does not expect there.
std::optional<Fault> match_ids(const ReplayHandler::Exchange& recorded, const RequestIds& client, ReplayIdMap& ids,
                               const std::string& where_in_transcript) {
  std::vector<bool> used(client.slots.size(), false);
  for (const auto& [where, recorded_id] : recorded.id_slots) {
    std::optional<std::size_t> match;
    for (std::size_t i = 0; i < client.slots.size() && !match; ++i)
      if (!used[i] && client.slots[i].first == where) match = i;
    const std::string* mapped = ids.client_id(recorded_id);
    if (!match) {
      if (where == kShellCreateSlot || where == kCommandCreateSlot) {
        if (!mapped) ids.map_id(recorded_id, recorded_id);  // the client takes the id the response gives
        continue;
      }
      std::string expected = mapped ? *mapped : recorded_id;
      return invalid_selector_fault(where, "",
                                    where_in_transcript + " expected " + where + " " + expected + " (recorded as " +
                                        recorded_id + ") but the request has none");
    }
    used[*match] = true;
    const std::string& client_id = client.slots[*match].second;
    if (mapped) {
      if (!equal_ci(*mapped, client_id))
        return invalid_selector_fault(where, client_id,
                                      where_in_transcript + " expected " + where + " " + *mapped + " (recorded as " +
                                          recorded_id + ") but the request has " + client_id);
      continue;
    }
    if (where != kShellCreateSlot && where != kCommandCreateSlot) continue;  // unknown to the recording too
    if (ids.is_client_id(client_id))
      return invalid_selector_fault(where, client_id,
                                    where_in_transcript + " expected a new id in " + where + " (recorded as " +
                                        recorded_id + ") but the request reuses " + client_id);
    ids.map_id(recorded_id, client_id);
  }
  // Ids the recorded request did not name (e.g. a CommandId on a Send to `pr`, as the spec wants) must at
  // least be ones the replay knows.
  for (std::size_t i = 0; i < client.slots.size(); ++i) {
    if (used[i] || ids.is_client_id(client.slots[i].second)) continue;
    return invalid_selector_fault(client.slots[i].first, client.slots[i].second,
                                  where_in_transcript + " does not know " + client.slots[i].first + " " +
                                      client.slots[i].second + " (the recorded request has no such id there)");
  }
  // PSRP ids: learned where the client chooses them, never checked (they travel inside the client's data).
  auto learn = [&](const winrm::psrp::Guid& recorded_guid, const winrm::psrp::Guid& client_guid) {
    if (!recorded_guid.is_nil() && !client_guid.is_nil() && !ids.client_guid(recorded_guid))
      ids.map_guid(recorded_guid, client_guid);
  };
  if (recorded.creation_ids && client.creation)
    learn(recorded.creation_ids->runspace_pool, client.creation->runspace_pool);
  if (recorded.command_ids && client.command) {
    learn(recorded.command_ids->runspace_pool, client.command->runspace_pool);
    learn(recorded.command_ids->pipeline, client.command->pipeline);
  }
  return std::nullopt;
}

// Windows answers a request whose OperationTimeout or MaxEnvelopeSize it refuses with its own fault, and a
// transcript records that (test_psrp_is_alive_other_wsman_error: OperationTimeout PT-1S). Replay reads such a
// request without those headers so that the recorded fault is what the client gets.
Result<WsmanRequest> parse_for_replay(std::string_view text) {
  auto parsed = parse_request(text);
  if (parsed) return parsed;
  pugi::xml_document doc;
  if (!x::parse(doc, text)) return parsed;
  pugi::xml_node header;
  for (auto n = doc.document_element().first_child(); n && !header; n = n.next_sibling())
    if (x::local_name(n) == "Header") header = n;
  bool removed = false;
  for (auto n = header.first_child(); n;) {
    auto next = n.next_sibling();
    if (x::local_name(n) == "OperationTimeout" || x::local_name(n) == "MaxEnvelopeSize")
      removed = header.remove_child(n) || removed;
    n = next;
  }
  if (!removed) return parsed;
  std::ostringstream out;
  doc.save(out, "", pugi::format_raw);
  auto lenient = parse_request(out.str());
  return lenient ? std::move(lenient) : std::move(parsed);
}

}  // namespace

std::string rewrite_relates_to(const std::string& envelope, const std::string& message_id) {
  auto p = envelope.find("RelatesTo");
  if (p == std::string::npos) return envelope;
  auto gt = envelope.find('>', p);
  if (gt == std::string::npos) return envelope;
  auto lt = envelope.find('<', gt);
  if (lt == std::string::npos) return envelope;
  return envelope.substr(0, gt + 1) + winrm::xml::escape(message_id) + envelope.substr(lt);
}

Result<std::unique_ptr<ReplayHandler>> ReplayHandler::load(const std::string& path, Stats& stats) {
  std::vector<Exchange> exchanges;
  try {
    YAML::Node root = YAML::LoadFile(path);
    YAML::Node messages = root["messages"];
    if (!messages || !messages.IsSequence())
      return Error::invalid_argument("replay transcript " + path + " has no 'messages:' list");
    std::size_t n = 0;
    for (const auto& m : messages) {
      ++n;
      if (!m["request"] || !m["response"])
        return Error::invalid_argument("replay transcript " + path + " message " + std::to_string(n) +
                                       " lacks a request or a response");
      auto request = m["request"].as<std::string>();
      auto parsed = parse_for_replay(request);
      if (!parsed)
        return Error::invalid_argument("replay transcript " + path + " message " + std::to_string(n) +
                                       ": the recorded request does not parse: " + parsed.error().message);
      Exchange ex;
      ex.action = parsed->action;
      ex.psrp = parsed->resource_uri.starts_with(kPowerShellResourcePrefix);
      auto recorded_ids = read_request_ids(*parsed);
      ex.id_slots = std::move(recorded_ids.slots);
      ex.creation_ids = recorded_ids.creation;
      ex.command_ids = recorded_ids.command;
      if (auto te = m["transport_error"]) ex.status = te["code"] ? te["code"].as<unsigned>() : 500;
      if (m["response"].IsNull()) {
        // An HTTP error without a SOAP body (`http_error: true`, test_psrp_is_alive_http_error).
        if (!m["http_error"] || !m["http_error"].as<bool>())
          return Error::invalid_argument("replay transcript " + path + " message " + std::to_string(n) +
                                         " has no response and no http_error");
        ex.status = 500;
      } else {
        ex.response = m["response"].as<std::string>();
        if (ex.status == 200) ex.ids_given = ids_given_by(ex.response);
      }
      exchanges.push_back(std::move(ex));
    }
  } catch (const YAML::Exception& e) {
    return Error::invalid_argument("cannot read the replay transcript " + path + ": " + e.what());
  }
  if (exchanges.empty()) return Error::invalid_argument("replay transcript " + path + " contains no messages");
  return std::unique_ptr<ReplayHandler>(new ReplayHandler(path, std::move(exchanges), stats));
}

void ReplayHandler::handle(const RequestContext& ctx, std::string body, ReplyCallback done) {
  auto parsed = parse_for_replay(body);
  std::string machine = ctx.host_header.empty() ? "replay" : machine_from_to("http://" + ctx.host_header, "replay");
  if (!parsed) {
    stats_.requests_by_action["Invalid"]++;
    stats_.faults++;
    return done(fault_reply(wsman_fault_for(parsed.error()), sniff_message_id(body), machine));
  }
  stats_.requests_by_action[short_action(parsed->action)]++;
  if (next_ >= exchanges_.size()) {
    Fault f = schema_validation_fault("");
    f.subcode = "w:InternalError";
    f.reason = f.message = "winhost-sim replay: the transcript " + path_ + " has no more recorded messages (" +
                           std::to_string(exchanges_.size()) + " were served); the request had Action " +
                           parsed->action;
    stats_.faults++;
    return done(fault_reply(f, parsed->message_id, machine));
  }
  const Exchange& ex = exchanges_[next_];
  if (ex.action != parsed->action) {
    Fault f = schema_validation_fault("");
    f.subcode = "w:InternalError";
    f.reason = f.message = "winhost-sim replay: message " + std::to_string(next_ + 1) + " of " + path_ +
                           " expected Action " + ex.action + " but the request has Action " + parsed->action;
    logger("sim")->warn("{}", f.message);
    stats_.faults++;
    return done(fault_reply(f, parsed->message_id, machine));
  }
  std::string where = "message " + std::to_string(next_ + 1) + " of " + path_;
  ReplayIdMap ids = ids_;  // learned only when the request is answered from the transcript
  if (auto fault = match_ids(ex, read_request_ids(*parsed), ids, where)) {
    logger("sim")->warn("{}", fault->message);
    stats_.faults++;
    return done(fault_reply(*fault, parsed->message_id, machine));
  }
  std::string response = rewrite_relates_to(ids.rewrite_text(ex.response), parsed->message_id);
  if (ex.psrp) {
    std::optional<std::size_t> limit;
    if (parsed->max_envelope_size) limit = static_cast<std::size_t>(*parsed->max_envelope_size);
    auto rewritten = rewrite_psrp_response(response, ids, fragments_, limit);
    if (!rewritten) {
      Fault f = encoding_limit_fault(where + ": " + rewritten.error().message);
      if (rewritten.error().code != ErrorCode::kResourceExhausted) {
        f = schema_validation_fault("");
        f.code = "s:Receiver";
        f.subcode = "w:InternalError";
        f.reason = f.message = "winhost-sim replay: " + where + " cannot be served: " + rewritten.error().message;
      }
      logger("sim")->warn("{}", f.message);
      stats_.faults++;
      return done(fault_reply(f, parsed->message_id, machine));
    }
    response = std::move(*rewritten);
  }
  // The client now knows the ids the response gives it (the same ids, unless already mapped to its own).
  for (const auto& id : ex.ids_given)
    if (!ids.client_id(id) && !ids.is_client_id(id)) ids.map_id(id, id);
  ids_ = std::move(ids);
  ++next_;
  if (ex.status != 200) stats_.faults++;
  done(HttpReply{ex.status, std::move(response), false});
}

}  // namespace wincert::sim
