// The agent's opt-in HTTP listener ("Metrics": {"Listen": ...}): GET /metrics (Prometheus text format
// 0.0.4), /healthz (200 while the process loop runs) and /readyz (200 when ready, else 503 with the
// reason as plain text). Runs on the agent's io_context with Beast. Only GET; one request per
// connection; limits on the request size, the time a client may take, and concurrent connections.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace wincert::agent::metrics {

struct ListenerLimits {
  std::size_t max_connections = 16;          // more at once are closed at accept
  std::size_t max_request_bytes = 8192;      // request line + headers; a body is refused
  std::chrono::milliseconds timeout{10000};  // reading the request and writing the response, each
};

struct ListenerHandlers {
  std::function<std::string()> metrics;                   // the /metrics page
  std::function<std::optional<std::string>()> not_ready;  // nullopt = ready, else why not (for /readyz)
};

// "127.0.0.1:9464", "[::1]:9464", "0.0.0.0:9464", or only a port ("9464", ":9464": loopback). IP
// literals only (no DNS lookup on the I/O thread); "localhost" means 127.0.0.1. Port 0 picks a free port.
Result<boost::asio::ip::tcp::endpoint> parse_listen_address(std::string_view text);

class HttpListener {
 public:
  // Binds and starts accepting on the executor (which must be single-threaded: the handlers run on it).
  static Result<std::unique_ptr<HttpListener>> start(boost::asio::any_io_executor executor,
                                                     boost::asio::ip::tcp::endpoint where, ListenerHandlers handlers,
                                                     ListenerLimits limits = {});
  ~HttpListener();  // stops accepting; connections in flight end on their own (they hold what they use)
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  // The bound address (with the port the system picked for port 0).
  boost::asio::ip::tcp::endpoint endpoint() const;
  void stop();

  struct State;

 private:
  explicit HttpListener(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace wincert::agent::metrics
