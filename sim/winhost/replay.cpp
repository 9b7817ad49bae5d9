#include "sim/winhost/replay.hpp"

#include <yaml-cpp/yaml.h>

#include "common/log.hpp"
#include "sim/winhost/error_reply.hpp"
#include "sim/winhost/winrs_service.hpp"
#include "winrm/xml.hpp"

namespace wincert::sim {

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
      auto parsed = parse_request(request);
      if (!parsed)
        return Error::invalid_argument("replay transcript " + path + " message " + std::to_string(n) +
                                       ": the recorded request does not parse: " + parsed.error().message);
      Exchange ex;
      ex.action = parsed->action;
      ex.response = m["response"].as<std::string>();
      if (auto te = m["transport_error"]) ex.status = te["code"] ? te["code"].as<unsigned>() : 500;
      exchanges.push_back(std::move(ex));
    }
  } catch (const YAML::Exception& e) {
    return Error::invalid_argument("cannot read the replay transcript " + path + ": " + e.what());
  }
  if (exchanges.empty()) return Error::invalid_argument("replay transcript " + path + " contains no messages");
  return std::unique_ptr<ReplayHandler>(new ReplayHandler(path, std::move(exchanges), stats));
}

void ReplayHandler::handle(const RequestContext& ctx, std::string body, ReplyCallback done) {
  auto parsed = parse_request(body);
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
  ++next_;
  if (ex.status != 200) stats_.faults++;
  done(HttpReply{ex.status, rewrite_relates_to(ex.response, parsed->message_id), false});
}

}  // namespace wincert::sim
