// The HTTP(S) listener of command-sim: Boost.Beast with C++20 coroutines on one io_context thread,
// HTTP/1.1 keep-alive, optional TLS with client certificates, a body limit (413 beyond it), and a
// timeout on every read, write and handshake.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "common/result.hpp"
#include "sim/command/app.hpp"

namespace wincert::sim::command {

struct ServerOptions {
  std::string listen_host = "127.0.0.1";
  unsigned short port = 0;  // 0 picks a free port
  std::string tls_cert;     // PEM chain; with tls_key the listener speaks HTTPS
  std::string tls_key;
  std::string client_ca;  // PEM: ask TLS clients for a certificate; one that is sent must chain to it
  std::size_t max_body_bytes = std::size_t{64} << 20;
  std::chrono::seconds idle_timeout{120};  // a kept-alive connection with no request is closed
  std::chrono::seconds io_timeout{60};     // one request or response in transit
};

// "HOST:PORT" ("[::1]:0" for IPv6).
Result<std::pair<std::string, unsigned short>> parse_listen(const std::string& text);

class Server {
 public:
  Server(boost::asio::io_context& ioc, ServerOptions options, RequestHandler& handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts accepting; returns the bound port.
  Result<unsigned short> start();
  void stop();
  bool tls() const { return tls_context_ != nullptr; }

  // Used by connections.
  const ServerOptions& options() const { return options_; }
  RequestHandler& handler() { return handler_; }

 private:
  void do_accept();

  boost::asio::io_context& ioc_;
  ServerOptions options_;
  RequestHandler& handler_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::unique_ptr<boost::asio::ssl::context> tls_context_;
  bool stopped_ = false;
};

}  // namespace wincert::sim::command
