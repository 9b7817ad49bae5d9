// --replay: serves the responses of a recorded pypsrp transcript (fixtures/winrm/pypsrp/*.yml for WinRS,
// fixtures/winrm/pypsrp-psrp/*.yml for PSRP) in order. The n-th request must carry the Action of the n-th
// recorded request; RelatesTo is rewritten to the request's MessageID so clients that check it (pypsrp, ours)
// accept the recorded answers.
//
// The client's ids differ from the recorded ones. The mapping recorded -> client is learned from the
// requests, slot by slot against the recorded request:
//   ShellId    rsp:Shell/@ShellId of Create (absent: the recorded id stays and the client uses it);
//   CommandId  rsp:CommandLine/@CommandId of Command (absent: likewise);
//   RPID       offset 8 of the first PSRP message in creationXml (Create) or connectXml (Connect);
//   PID        offset 24 of the first PSRP message in rsp:Arguments (Command).
// The ids a recorded response hands out (WinRS: the ShellId/CommandId the server chose) map to themselves
// unless already mapped. Every other id a request names (the ShellId selector, any CommandId attribute, a
// ShellId selector filter) must be the client's id for the recorded one, else the InvalidSelectors fault
// Windows gives; where the recorded request named an id the recording never knew (test_psrp_receive_failure),
// any id is accepted and the recorded answer (that fault) is served. Responses get the client's ids (text and PSRP
// headers) and, for PSRP, are re-fragmented to the request's MaxEnvelopeSize (psrp_replay_rewrite.hpp).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "sim/winhost/handler.hpp"
#include "sim/winhost/psrp_replay_rewrite.hpp"
#include "sim/winhost/stats.hpp"

namespace wincert::sim {

class ReplayHandler final : public WsmanHandler {
 public:
  struct Exchange {
    std::string action;     // of the recorded request
    std::string response;   // recorded response envelope
    unsigned status = 200;  // transport_error code, else 200
    bool psrp = false;      // the request targets a PowerShell resource URI: the response carries PSRP
    std::vector<std::pair<std::string, std::string>> id_slots;  // (where, recorded ShellId/CommandId)
    std::optional<PsrpMessageIds> creation_ids;                 // creationXml / connectXml
    std::optional<PsrpMessageIds> command_ids;                  // rsp:Arguments
    std::vector<std::string> ids_given;                         // ShellIds/CommandIds the recorded response hands out
  };

  static Result<std::unique_ptr<ReplayHandler>> load(const std::string& path, Stats& stats);
  void handle(const RequestContext& ctx, std::string body, ReplyCallback done) override;

  std::size_t remaining() const { return exchanges_.size() - next_; }
  const std::vector<Exchange>& exchanges() const { return exchanges_; }

 private:
  ReplayHandler(std::string path, std::vector<Exchange> exchanges, Stats& stats)
      : path_(std::move(path)), exchanges_(std::move(exchanges)), stats_(stats) {}

  std::string path_;
  std::vector<Exchange> exchanges_;
  std::size_t next_ = 0;
  Stats& stats_;
  ReplayIdMap ids_;
  ServerFragmentRewriter fragments_;
};

// Replaces the text of the first RelatesTo element of an envelope.
std::string rewrite_relates_to(const std::string& envelope, const std::string& message_id);

}  // namespace wincert::sim
