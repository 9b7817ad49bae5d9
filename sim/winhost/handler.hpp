// The seam between the HTTP server and what answers WS-Man requests (the WinRS service or a replay).
#pragma once

#include <functional>
#include <string>

#include "sim/winhost/soap.hpp"

namespace wincert::sim {

struct RequestContext {
  std::string user;  // authenticated owner
  std::string client_ip;
  std::string host_header;  // for Machine= in faults when the request has no usable wsa:To
  bool tls = false;
};

using ReplyCallback = std::function<void(HttpReply)>;

class WsmanHandler {
 public:
  virtual ~WsmanHandler() = default;
  // Answers exactly once through `done`, possibly later (a Receive waits for output).
  virtual void handle(const RequestContext& ctx, std::string body, ReplyCallback done) = 0;
  // Cancels timers and answers held requests; called on shutdown.
  virtual void shutdown() {}
};

}  // namespace wincert::sim
