#include "sim/command/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/log.hpp"
#include "common/tls.hpp"

namespace wincert::sim::command {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

namespace {

constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

auto log() { return logger("command-sim"); }

template <class Stream>
constexpr bool kIsTls = !std::is_same_v<Stream, PlainStream>;

http::response<http::string_body> make_response(const HttpReply& reply, unsigned version, bool keep_alive) {
  http::response<http::string_body> res;
  res.version(version);
  res.result(reply.status);
  res.set(http::field::server, "command-sim");
  for (const auto& [k, v] : reply.headers) res.insert(k, v);
  if (!reply.body.empty()) res.set(http::field::content_type, reply.content_type);
  res.body() = reply.body;
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

// "Expect: 100-continue" on an HTTP/1.1 request whose body is still to come. Any other expectation is
// ignored (the request is answered as if it had none) rather than refused with 417.
bool expects_continue(const http::request<http::string_body>& header) {
  if (header.version() < 11) return false;
  const auto expect = header[http::field::expect];
  return beast::iequals(expect, "100-continue");
}

template <class Stream>
net::awaitable<void> close_stream(Stream& stream) {
  auto& lowest = beast::get_lowest_layer(stream);
  if constexpr (kIsTls<Stream>) {
    lowest.expires_after(std::chrono::seconds(5));
    auto [ec] = co_await stream.async_shutdown(kUseTuple);
    (void)ec;  // the peer may already be gone
  }
  beast::error_code ignored;
  lowest.socket().shutdown(tcp::socket::shutdown_both, ignored);
  lowest.close();
}

// Half-closes and reads what the peer still sends (the rest of an oversized body) for a moment, so
// the 413 reaches the client instead of being lost to a TCP reset.
template <class Stream>
net::awaitable<void> lingering_close(Stream& stream) {
  auto& lowest = beast::get_lowest_layer(stream);
  beast::error_code ignored;
  lowest.socket().shutdown(tcp::socket::shutdown_send, ignored);
  lowest.expires_after(std::chrono::seconds(5));
  std::array<char, 16384> sink{};
  for (;;) {
    auto buffer = net::buffer(sink);
    auto [ec, n] = co_await lowest.async_read_some(buffer, kUseTuple);
    if (ec) break;
  }
  lowest.close();
}

template <class Stream>
net::awaitable<void> run_connection(Stream stream, Server* server, ConnectionInfo info) {
  auto& lowest = beast::get_lowest_layer(stream);
  const ServerOptions& options = server->options();
  if constexpr (kIsTls<Stream>) {
    lowest.expires_after(std::chrono::seconds(30));
    auto [ec] = co_await stream.async_handshake(net::ssl::stream_base::server, kUseTuple);
    if (ec) {
      log()->info("TLS handshake with {} failed: {}", info.remote_address, ec.message());
      lowest.close();
      co_return;
    }
    if (X509* cert = SSL_get1_peer_certificate(stream.native_handle())) {
      unsigned char* der = nullptr;
      const int len = i2d_X509(cert, &der);
      if (len > 0)
        info.client_certificate_der.assign(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
      OPENSSL_free(der);
      X509_free(cert);
    }
  }
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(options.max_body_bytes);
    parser.header_limit(64 * 1024);
    lowest.expires_after(options.idle_timeout);
    // The header first: a client that sent "Expect: 100-continue" (libcurl does for bodies over 1 MiB)
    // waits for the interim answer before the body, or stalls about a second when none comes.
    auto [header_ec, header_n] = co_await http::async_read_header(stream, buffer, parser, kUseTuple);
    beast::error_code read_ec = header_ec;
    if (!read_ec && expects_continue(parser.get())) {
      http::response<http::empty_body> go_on{http::status::continue_, parser.get().version()};
      go_on.set(http::field::server, "command-sim");
      lowest.expires_after(options.io_timeout);
      auto [continue_ec, continue_n] = co_await http::async_write(stream, go_on, kUseTuple);
      read_ec = continue_ec;
    }
    if (!read_ec && !parser.is_done()) {
      lowest.expires_after(options.io_timeout);
      auto [body_ec, body_n] = co_await http::async_read(stream, buffer, parser, kUseTuple);
      read_ec = body_ec;
    }
    if (read_ec == http::error::body_limit) {
      server->handler().note_oversized(parser.get().target());
      HttpReply too_large = HttpReply::message(
          413, "The request body is larger than the limit of " + std::to_string(options.max_body_bytes) + " bytes.");
      auto res = make_response(too_large, parser.get().version(), false);
      lowest.expires_after(options.io_timeout);
      auto [write_ec, write_n] = co_await http::async_write(stream, res, kUseTuple);
      if (!write_ec) co_await lingering_close(stream);
      co_return;
    }
    if (read_ec) break;  // closed by the peer, idle timeout, or not HTTP: nothing to answer
    lowest.expires_never();
    HttpRequest request = parser.release();
    HttpReply reply = server->handler().handle(request, info);
    if (reply.drop_connection) {
      beast::error_code ignored;
      lowest.socket().shutdown(tcp::socket::shutdown_both, ignored);
      lowest.close();
      co_return;
    }
    if (reply.delay.count() > 0) {
      net::steady_timer timer(co_await net::this_coro::executor);
      timer.expires_after(reply.delay);
      auto [timer_ec] = co_await timer.async_wait(kUseTuple);
      (void)timer_ec;
    }
    auto res = make_response(reply, request.version(), request.keep_alive());
    lowest.expires_after(options.io_timeout);
    auto [write_ec, write_n] = co_await http::async_write(stream, res, kUseTuple);
    if (write_ec || !res.keep_alive()) break;
  }
  co_await close_stream(stream);
}

}  // namespace

Result<std::pair<std::string, unsigned short>> parse_listen(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return Error::invalid_argument("--listen '" + text + "' must be HOST:PORT");
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  const std::string port_text = text.substr(colon + 1);
  unsigned long port = 0;
  if (port_text.empty() || port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos)
    return Error::invalid_argument("--listen '" + text + "': the port is not a number");
  port = std::stoul(port_text);
  if (port > 65535) return Error::invalid_argument("--listen '" + text + "': the port is out of range");
  return std::make_pair(host, static_cast<unsigned short>(port));
}

Server::Server(net::io_context& ioc, ServerOptions options, RequestHandler& handler)
    : ioc_(ioc), options_(std::move(options)), handler_(handler), acceptor_(ioc) {}

Server::~Server() { stop(); }

Result<unsigned short> Server::start() {
  if (!options_.tls_cert.empty() || !options_.tls_key.empty()) {
    tls_context_ = std::make_unique<net::ssl::context>(net::ssl::context::tls_server);
    WINCERT_TRY(tls::configure_server(*tls_context_, options_.tls_cert, options_.tls_key));
    boost::system::error_code ec;
    if (!options_.client_ca.empty()) {
      tls_context_->load_verify_file(options_.client_ca, ec);
      if (ec) return Error::invalid_argument("cannot load --client-ca " + options_.client_ca + ": " + ec.message());
      // Ask for a certificate; one that is sent must chain to the CA. A missing one is not a handshake
      // failure: the request then gets a readable 401 instead of a TLS alert.
      tls_context_->set_verify_mode(net::ssl::verify_peer, ec);
      // Suggest the CA to clients choosing among several certificates.
      SSL_CTX_set_client_CA_list(tls_context_->native_handle(), SSL_load_client_CA_file(options_.client_ca.c_str()));
    }
  } else if (!options_.client_ca.empty()) {
    return Error::invalid_argument("--client-ca needs HTTPS (--tls-cert and --tls-key)");
  }
  boost::system::error_code ec;
  auto address = net::ip::make_address(options_.listen_host, ec);
  if (ec) return Error::invalid_argument("--listen host '" + options_.listen_host + "' is not an IP address");
  tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return Error::unavailable("cannot listen on " + options_.listen_host + ":" + std::to_string(options_.port) + ": " +
                              ec.message())
        .with_system_status(SystemStatusKind::kErrno, static_cast<std::uint32_t>(ec.value()));
  const unsigned short port = acceptor_.local_endpoint().port();
  do_accept();
  return port;
}

void Server::stop() {
  if (stopped_) return;
  stopped_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
}

void Server::do_accept() {
  acceptor_.async_accept(net::make_strand(ioc_), [this](boost::system::error_code ec, tcp::socket socket) {
    if (stopped_) return;
    if (!ec) {
      ConnectionInfo info;
      boost::system::error_code ep_ec;
      const auto remote = socket.remote_endpoint(ep_ec);
      if (!ep_ec) {
        info.remote_address = remote.address().to_string();
        auto addr = remote.address();
        if (addr.is_v6() && addr.to_v6().is_v4_mapped())
          addr = net::ip::make_address_v4(net::ip::v4_mapped, addr.to_v6());
        info.loopback = addr.is_loopback();
      }
      socket.set_option(tcp::no_delay(true), ep_ec);
      auto executor = socket.get_executor();
      if (tls_context_) {
        info.tls = true;
        TlsStream stream(std::move(socket), *tls_context_);
        net::co_spawn(executor, run_connection(std::move(stream), this, std::move(info)), net::detached);
      } else {
        PlainStream stream(std::move(socket));
        net::co_spawn(executor, run_connection(std::move(stream), this, std::move(info)), net::detached);
      }
    } else {
      log()->warn("accept failed: {}", ec.message());
    }
    do_accept();
  });
}

}  // namespace wincert::sim::command
