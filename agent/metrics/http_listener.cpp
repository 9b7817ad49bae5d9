#include "agent/metrics/http_listener.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <charconv>

#include "common/log.hpp"

namespace wincert::agent::metrics {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {
constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);
}  // namespace

Result<tcp::endpoint> parse_listen_address(std::string_view text) {
  const std::string original(text);
  auto bad = [&original](const std::string& why) {
    return Error::invalid_argument("'" + original + "' is not a listen address: " + why +
                                   " (expected \"127.0.0.1:9464\", \"[::1]:9464\" or a port such as \"9464\")");
  };
  std::string_view host;
  std::string_view port = text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return bad("an IPv6 address needs the form [address]:port");
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else if (const auto colon = text.rfind(':'); colon != std::string_view::npos) {
    if (text.find(':') != colon) return bad("write an IPv6 address in brackets");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || value > 65535)
    return bad("the port must be a number from 0 to 65535");
  if (host.empty() || host == "localhost") host = "127.0.0.1";
  boost::system::error_code address_error;
  const auto address = net::ip::make_address(std::string(host), address_error);
  if (address_error) return bad("'" + std::string(host) + "' is not an IP address");
  return tcp::endpoint(address, static_cast<unsigned short>(value));
}

struct HttpListener::State : std::enable_shared_from_this<HttpListener::State> {
  net::any_io_executor executor;
  tcp::acceptor acceptor;
  ListenerHandlers handlers;
  ListenerLimits limits;
  tcp::endpoint bound;
  std::size_t active = 0;
  bool stopped = false;
  std::shared_ptr<spdlog::logger> log = logger("agent");

  State(net::any_io_executor ex, ListenerHandlers h, ListenerLimits l)
      : executor(ex), acceptor(ex), handlers(std::move(h)), limits(l) {}

  net::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    while (!stopped) {
      auto [ec, socket] = co_await acceptor.async_accept(kUseTuple);
      if (stopped) break;
      if (ec) {
        if (ec == net::error::operation_aborted) break;
        log->debug("metrics listener: accept failed: {}", ec.message());
        continue;  // e.g. EMFILE: the next accept may work
      }
      if (active >= limits.max_connections) {
        boost::system::error_code ignored;
        socket.close(ignored);  // over the cap: refuse at once rather than queue
        continue;
      }
      ++active;
      net::co_spawn(executor, serve(std::move(socket)), net::detached);
    }
  }

  // One request, one response, then close.
  net::awaitable<void> serve(tcp::socket socket) {
    auto self = shared_from_this();
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer(limits.max_request_bytes);
    http::request_parser<http::empty_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits.max_request_bytes));
    parser.body_limit(0);
    stream.expires_after(limits.timeout);
    auto [read_error, read_bytes] = co_await http::async_read(stream, buffer, parser, kUseTuple);
    (void)read_bytes;
    http::response<http::string_body> response;
    response.version(11);
    response.keep_alive(false);
    response.set(http::field::server, "wincert-agent");
    response.set(http::field::cache_control, "no-store");
    bool respond = true;
    if (read_error) {
      if (read_error == http::error::header_limit || read_error == http::error::buffer_overflow) {
        reply(response, http::status::request_header_fields_too_large, "request too large\n");
      } else if (read_error == http::error::body_limit) {
        reply(response, http::status::payload_too_large, "a request body is not accepted\n");
      } else {
        respond = false;  // timeout, reset, garbage: just close
      }
    } else {
      route(parser.get(), response);
    }
    if (respond) {
      response.prepare_payload();
      stream.expires_after(limits.timeout);
      auto [write_error, written] = co_await http::async_write(stream, response, kUseTuple);
      (void)write_error;
      (void)written;
    }
    // Lingering close: stop sending, then drain what the client still sends (an oversized request's
    // rest) for a moment, so closing with unread input does not reset the connection and destroy the
    // response before the client read it.
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    if (respond) {
      stream.expires_after(std::min<std::chrono::milliseconds>(limits.timeout, std::chrono::seconds(1)));
      char scratch[4096];
      for (std::size_t drained = 0; drained < 64 * 1024;) {
        auto [drain_error, n] = co_await stream.async_read_some(net::buffer(scratch), kUseTuple);
        if (drain_error) break;
        drained += n;
      }
    }
    stream.close();
    --active;
  }

  static void reply(http::response<http::string_body>& response, http::status status, std::string body,
                    std::string_view content_type = "text/plain; charset=utf-8") {
    response.result(status);
    response.set(http::field::content_type, content_type);
    response.body() = std::move(body);
  }

  void route(const http::request<http::empty_body>& request, http::response<http::string_body>& response) {
    std::string_view target = request.target();
    if (const auto query = target.find('?'); query != std::string_view::npos) target = target.substr(0, query);
    if (target != "/metrics" && target != "/healthz" && target != "/readyz") {
      reply(response, http::status::not_found, "not found: try /metrics, /healthz or /readyz\n");
      return;
    }
    if (request.method() != http::verb::get) {
      reply(response, http::status::method_not_allowed, "only GET\n");
      response.set(http::field::allow, "GET");
      return;
    }
    if (target == "/metrics") {
      reply(response, http::status::ok, handlers.metrics ? handlers.metrics() : std::string(),
            "text/plain; version=0.0.4; charset=utf-8");
    } else if (target == "/healthz") {
      // Answering at all proves the agent's one I/O thread is turning.
      reply(response, http::status::ok, "ok\n");
    } else {
      const auto why = handlers.not_ready ? handlers.not_ready() : std::nullopt;
      if (why) {
        reply(response, http::status::service_unavailable, "not ready: " + *why + "\n");
      } else {
        reply(response, http::status::ok, "ready\n");
      }
    }
  }
};

Result<std::unique_ptr<HttpListener>> HttpListener::start(net::any_io_executor executor, tcp::endpoint where,
                                                          ListenerHandlers handlers, ListenerLimits limits) {
  auto state = std::make_shared<State>(executor, std::move(handlers), limits);
  boost::system::error_code ec;
  const std::string what = where.address().to_string() + ":" + std::to_string(where.port());
  state->acceptor.open(where.protocol(), ec);
  if (!ec) state->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) state->acceptor.bind(where, ec);
  if (!ec) state->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return Error::failed_precondition("Metrics.Listen: cannot listen on " + what + ": " + ec.message() +
                                      " (is the port in use, or the address not on this machine?)");
  state->bound = state->acceptor.local_endpoint(ec);
  net::co_spawn(executor, state->accept_loop(), net::detached);
  return std::unique_ptr<HttpListener>(new HttpListener(std::move(state)));
}

HttpListener::HttpListener(std::shared_ptr<State> state) : state_(std::move(state)) {}
HttpListener::~HttpListener() { stop(); }

tcp::endpoint HttpListener::endpoint() const { return state_->bound; }

void HttpListener::stop() {
  if (state_->stopped) return;
  state_->stopped = true;
  boost::system::error_code ignored;
  state_->acceptor.close(ignored);
}

}  // namespace wincert::agent::metrics
