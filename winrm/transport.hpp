// WsmanTransport: one keep-alive HTTP/1.1 (or HTTPS) connection to one WinRM endpoint, carrying
// SOAP envelopes. Requests are serialised (concurrent callers wait their turn), authenticated through
// an HttpAuth, size-limited and timed out; a connection the server dropped while idle is reopened
// transparently once. Every public operation returns Result: no exception leaves this module.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "common/http_connection.hpp"
#include "common/result.hpp"
#include "winrm/endpoint.hpp"
#include "winrm/http_auth.hpp"
#include "winrm/messages.hpp"
#include "winrm/observer.hpp"

namespace wincert::winrm {

namespace net = boost::asio;

// One struct per concern, so the agent's configuration holds these directly and nobody re-maps them field by field:
// connecting is the shared HTTP connection layer's ConnectOptions, one exchange its ExchangeLimits.
struct TransportOptions {
  // Name lookup + TCP connect, TLS handshake, and whether the peer is verified (chain + host name; off only when
  // turned off explicitly). `connect.words` and `connect.where` are the transport's own: it sets them per host.
  http::ConnectOptions connect;
  // Write/read timeouts and response size limits. read_timeout must exceed the WS-Man OperationTimeout (a Receive
  // long-polls that long); WinrsSession raises it to OperationTimeout + margin when it is shorter.
  http::ExchangeLimits exchange;
  std::string ca_file;  // PEM bundle of trusted CAs; empty = system store
  // Client certificate (PEM chain) and its private key (PEM), presented in the TLS handshake
  // (certificate authentication); both or neither.
  std::string client_certificate_file;
  std::string client_key_file;
  std::string user_agent = "wincert-agent/0.1 (WinRM)";
  // Told about connections and authentication handshakes (the agent's metrics); may be null, must
  // outlive the transport.
  WinrmObserver* observer = nullptr;
};

// A response envelope with the HTTP status it came with: 200 (success), 500 (SOAP fault) or 400
// (Windows' answer for a disconnected shell; soap.fault is then set, synthesised when the body had none).
struct WsmanReply {
  unsigned http_status = 0;
  SoapResponse soap;
};

struct TransportCounters {
  std::uint64_t http_requests = 0;       // HTTP requests written, auth legs included
  std::uint64_t connections_opened = 0;  // TCP (and TLS) connections established
  std::uint64_t bytes_sent = 0;          // HTTP bodies written
  std::uint64_t bytes_received = 0;      // HTTP bodies read
};

class WsmanTransport {
 public:
  // Fails on a bad TLS setup (unreadable --ca-file). auth may be null (no Authorization header).
  static Result<std::unique_ptr<WsmanTransport>> create(net::any_io_executor executor, Endpoint endpoint,
                                                        std::unique_ptr<HttpAuth> auth, TransportOptions options = {});
  ~WsmanTransport();
  WsmanTransport(const WsmanTransport&) = delete;
  WsmanTransport& operator=(const WsmanTransport&) = delete;

  // POSTs one envelope and parses the response (RelatesTo must match envelope.message_id).
  // `what` names the operation for error messages ("Create shell", "Receive").
  // 200/500/400 come back as WsmanReply; everything else (transport failure, 401, 413, a 500 whose
  // body is not SOAP, malformed XML) is an Error naming the endpoint and what to check.
  net::awaitable<Result<WsmanReply>> request(const Envelope& envelope, std::string_view what);

  // Posts a raw body and returns the raw HTTP exchange: for tests and diagnostics.
  struct RawResponse {
    unsigned status = 0;
    std::string body;
    std::string content_type;
  };
  net::awaitable<Result<RawResponse>> post(std::string body, std::string_view what);

  // Closes the connection (the next request reconnects). Safe to call between requests.
  void close();

  const Endpoint& endpoint() const;
  net::any_io_executor executor() const;
  const TransportOptions& options() const;
  void set_read_timeout(std::chrono::milliseconds timeout);
  TransportCounters counters() const;

 private:
  struct Impl;
  explicit WsmanTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace wincert::winrm
