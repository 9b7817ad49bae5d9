// The HTTP(S) side of winhost-sim: Boost.Beast, async, HTTP/1.1 keep-alive, one io_context thread,
// no thread per connection. Authenticates each request through a per-connection ConnectionAuth and hands
// the SOAP body to a WsmanHandler (WinRS service or replay).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/result.hpp"
#include "sim/winhost/auth.hpp"
#include "sim/winhost/handler.hpp"
#include "sim/winhost/stats.hpp"

namespace wincert::sim {

// Writes the counters document to the status file (atomically): after every change, or, with a non-zero
// interval, at most that often, the last change always reaching the file at most `interval` later. For
// --hosts N, where one document covers every host and a rewrite per request would cost O(N) per request
// (at 200 hosts it was 83% of the simulator's CPU). Always held by a shared_ptr (the timer's handler checks it).
class StatusFileWriter : public std::enable_shared_from_this<StatusFileWriter> {
 public:
  StatusFileWriter(boost::asio::io_context& ioc, std::string path, std::function<std::string()> text,
                   std::chrono::milliseconds interval);
  void changed();  // after a request
  void flush();    // now (at start and at exit)

 private:
  void write();

  std::string path_;
  std::function<std::string()> text_;
  std::chrono::milliseconds interval_;
  boost::asio::steady_timer timer_;
  bool pending_ = false;
  std::chrono::steady_clock::time_point last_write_{};
};

struct ServerOptions {
  std::string listen_host = "127.0.0.1";
  unsigned short port = 5985;  // 0 picks a free port
  std::string tls_cert;        // PEM; with tls_key makes the listener HTTPS
  std::string tls_key;
  // Client certificates (certificate authentication): ask TLS clients for one; with client_ca it must
  // chain to that CA (PEM), without it any certificate is accepted here and only the map decides.
  bool request_client_certificate = false;
  std::string client_ca;
  std::size_t max_envelope_bytes = 500 * 1024;  // MaxEnvelopeSizekb: larger requests get HTTP 413
  long long latency_ms = 0;                     // added before every response
  std::string status_file;                      // counters JSON, rewritten after every request
  std::function<std::string()> status_text;     // what goes into status_file (default: this server's Stats)
  // Instead of status_file: a writer shared by the servers of one process (--hosts N, one document).
  std::shared_ptr<StatusFileWriter> status_writer;
  std::function<void()> on_request;  // after every request, before the status: cheap bookkeeping across hosts
  std::chrono::seconds keep_alive_timeout{120};  // idle connections are closed like Windows does
};

// Parses "HOST:PORT" ("[::1]:0" for IPv6).
Result<std::pair<std::string, unsigned short>> parse_listen(const std::string& text);

class Server {
 public:
  Server(boost::asio::io_context& ioc, ServerOptions options, std::shared_ptr<Authenticator> auth,
         WsmanHandler& handler, Stats& stats);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts accepting; returns the bound port.
  Result<unsigned short> start();
  void stop();
  bool tls() const { return tls_context_ != nullptr; }

  // Writes the status file now (no-op without one).
  void write_status_now();

  // Internal, used by sessions.
  void after_request();
  const ServerOptions& options() const { return options_; }
  Authenticator& authenticator() { return *auth_; }
  WsmanHandler& handler() { return handler_; }
  Stats& stats() { return stats_; }
  boost::asio::ssl::context* tls_context() { return tls_context_.get(); }
  const std::string& tls_server_end_point() const { return tls_server_end_point_; }

 private:
  void do_accept();

  boost::asio::io_context& ioc_;
  ServerOptions options_;
  std::shared_ptr<Authenticator> auth_;
  WsmanHandler& handler_;
  Stats& stats_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::unique_ptr<boost::asio::ssl::context> tls_context_;
  std::string tls_server_end_point_;
  std::shared_ptr<StatusFileWriter> status_writer_;
  bool stopped_ = false;
};

// RFC 5929 tls-server-end-point: hash of a PEM certificate with its signature digest (SHA-256 for MD5/SHA-1).
Result<std::string> tls_server_end_point_hash(const std::string& pem_path);

// Writes text to path atomically (temp file + rename), so readers never see a partial file.
Status write_file_atomically(const std::string& path, const std::string& text);

}  // namespace wincert::sim
