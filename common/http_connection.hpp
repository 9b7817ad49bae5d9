// HttpConnection: one HTTP/1.1 connection, plain or TLS, shared by every HTTP client of the agent (the Command
// client's pools and the WinRM transport). It owns what both need alike: name lookup with a real deadline,
// connect, SNI, host-name/IP verification, the handshake, one request/response exchange with timeouts and size
// limits, and the mapping of every failure to a coded Error naming the peer and what to check. Pools,
// serialisation, authentication and the payload (JSON, SOAP) stay with the callers.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/http_status.hpp"
#include "common/result.hpp"

namespace wincert::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

// True for "10.0.0.1", "::1", "fe80::1": no SNI is sent, and the certificate is checked against the IP.
bool is_ip_literal(std::string_view host);

// How errors name the peer and what they advise; the words differ between Command and a WinRM host.
struct PeerWords {
  std::string noun = "server";          // "TLS certificate of server h:443 not trusted"
  std::string listener = "the server";  // "connection refused by h:443: is the server listening on port 443?"
  std::string address = "the name";     // "cannot resolve host name 'h': ...: check the name and DNS"
  std::string trust_hint = "configure the CA that issued it";  // after an untrusted certificate
  std::string expired_hint = "renew the server's HTTPS certificate (or check both clocks)";
  std::string handshake_hint;  // appended to a failed handshake, e.g. ": is this an HTTPS listener?"
};

struct ConnectOptions {
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(30)};  // name lookup + TCP connect
  std::chrono::milliseconds tls_handshake_timeout{std::chrono::seconds(30)};
  bool verify_peer = true;  // chain and host name (or IP); off only when configured so, with a warning
  PeerWords words;
  std::string where;  // how messages name the peer; empty: authority_of(host, port)
};

struct ExchangeLimits {
  std::chrono::milliseconds write_timeout{std::chrono::seconds(30)};
  // Waiting for the whole response. Zero: the response must arrive within write_timeout counted from the start
  // of the write (one deadline for the whole exchange).
  std::chrono::milliseconds read_timeout{std::chrono::seconds(60)};
  std::size_t max_response_body = 32u * 1024 * 1024;
  std::size_t max_response_header = 64u * 1024;
};

// One exchange's outcome. `stale` marks a failure on a reused connection that the server had already closed
// before it read anything: the request never reached it, so the caller may resend it once on a new connection.
struct ExchangeOutcome {
  Result<Response> response;
  bool stale = false;
};

class HttpConnection {
 public:
  // Resolves, connects and (with `tls` non-null) performs the TLS handshake with `host`:`port`.
  static boost::asio::awaitable<Result<std::unique_ptr<HttpConnection>>> open(boost::asio::any_io_executor executor,
                                                                              boost::asio::ssl::context* tls,
                                                                              std::string host, std::uint16_t port,
                                                                              ConnectOptions options);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Writes `request` and reads the whole response. `what` names the call in errors ("Register", "Receive").
  // After a failure the connection is closed and must not be reused.
  boost::asio::awaitable<ExchangeOutcome> exchange(Request& request, const ExchangeLimits& limits,
                                                   std::string_view what);

  bool reused() const;               // a response has been read on it before
  bool is_open() const;              // not closed (by us, or after a failure)
  const std::string& where() const;  // host:port as messages name it (IPv6 bracketed)
  // The peer's certificate (DER) when TLS; empty otherwise. Channel binding (NTLM/Kerberos) needs it.
  const std::string& peer_certificate_der() const;
  void close();

 private:
  struct Impl;
  explicit HttpConnection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// "host:port" with an IPv6 host bracketed.
std::string authority_of(std::string_view host, std::uint16_t port);

}  // namespace wincert::http
