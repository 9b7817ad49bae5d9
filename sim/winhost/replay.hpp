// --replay: serves the responses of a recorded pypsrp transcript (fixtures/winrm/pypsrp/*.yml) in order.
// The n-th request must carry the Action of the n-th recorded request; RelatesTo is rewritten to the
// request's MessageID so clients that check it (pypsrp, ours) accept the recorded answers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "sim/winhost/handler.hpp"
#include "sim/winhost/stats.hpp"

namespace wincert::sim {

class ReplayHandler final : public WsmanHandler {
 public:
  struct Exchange {
    std::string action;     // of the recorded request
    std::string response;   // recorded response envelope
    unsigned status = 200;  // transport_error code, else 200
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
};

// Replaces the text of the first RelatesTo element of an envelope.
std::string rewrite_relates_to(const std::string& envelope, const std::string& message_id);

}  // namespace wincert::sim
