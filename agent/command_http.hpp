// A small HTTP/1.1 client for Keyfactor Command and its OAuth token endpoint: keep-alive connections
// (a few per origin, reused), TLS with peer verification on by default, an optional client
// certificate, a timeout on every step and a size limit on everything read from the peer. Error codes:
// DNS/refused/reset/drop = unavailable (a failed socket call carries its errno/Win32 status), a
// timeout = deadline_exceeded, a TLS certificate that fails verification =
// unauthenticated with the OpenSSL verify result (SystemStatusKind::kOpenSsl), another handshake failure =
// unavailable with kOpenSsl, malformed HTTP or a reply over a limit = invalid_argument.
// HTTP status codes are returned as they are; the caller decides what a 401 or 503 means.
//
// Also here: URLs, and how the endpoints Command hands out are resolved against AgentsServerUri.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"

namespace wincert::agent {

struct Url {
  std::string scheme;  // "http" or "https"
  std::string host;    // without IPv6 brackets
  std::uint16_t port = 0;
  std::string target = "/";  // path and query, always starting with '/'

  bool tls() const { return scheme == "https"; }
  std::string authority() const;  // host[:port], IPv6 bracketed, default ports left out
  std::string origin() const;     // scheme://authority
  std::string text() const;       // origin + target
  std::string path() const;       // target without the query
};

// Parses an absolute http(s) URL. Errors say what is wrong with it (never echo user info).
Result<Url> parse_url(std::string_view text);

// True when both URLs have the same scheme, host (ignoring case) and port.
bool same_origin(const Url& a, const Url& b);

// Resolves an endpoint Command names (ConfigurationEndpoint, CompletionEndpoint, InventoryEndpoint,
// EnrollEndpoint) against AgentsServerUri (`base`):
//   * absolute "http(s)://..."           -> used as it is when its origin (scheme, host, port) is the
//     base's; any other origin, or http when the base is https, is refused: the request would carry
//     the Authorization header and the SessionToken (real Command hands out relative paths only,
//     ../shared/reference/orchestrators-api.md section 11.4);
//   * "KeyfactorAgents/X" or "/KeyfactorAgents/X" (any case; platform 7.4+ adds this prefix even when
//     the virtual directory is named differently) -> base + "/X";
//   * "/X" already under base's path     -> base's origin + "/X" (not doubled);
//   * "/X" or "X" otherwise              -> base + "/X" (the C agent's {base}{relPath}).
Result<Url> resolve_endpoint(const Url& base, std::string_view endpoint);

struct HttpClientOptions {
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(30)};  // resolve + connect + TLS handshake
  std::chrono::milliseconds request_timeout{std::chrono::seconds(60)};  // write + complete response
  std::size_t max_response_body = 64u * 1024 * 1024;
  std::size_t max_response_header = 64u * 1024;
  std::size_t max_connections_per_origin = 4;
  std::size_t max_origins = 8;  // pools kept (AgentsServerUri, the token endpoint); unused ones are dropped
  bool verify_peer = true;
  std::string ca_file;             // PEM bundle; empty = system store
  std::string client_certificate;  // PEM chain for mTLS (both or neither)
  std::string client_key;
  std::string user_agent = "wincert-agent";
};

struct HttpRequest {
  Url url;
  std::string method = "POST";
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. Authorization (never logged)
  // Takes the origin's one reserved slot instead of queueing for the shared ones, so that heartbeats are never
  // held up behind a burst of configuration fetches (idle connections are shared either way).
  bool priority = false;
};

struct HttpResponse {
  unsigned status = 0;
  std::string reason;
  std::string body;
  std::string content_type;
};

class HttpClient {
 public:
  // Fails on an unusable TLS setup (unreadable CA file, client certificate or key).
  static Result<std::unique_ptr<HttpClient>> create(boost::asio::any_io_executor executor, HttpClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request and reads the whole response. `what` names the call in errors
  // ("Register", "completion of job X"). A connection the server closed while idle is reopened once.
  boost::asio::awaitable<Result<HttpResponse>> send(HttpRequest request, std::string_view what);

  // Presents another client certificate from now on (a renewed agent certificate): new connections use it,
  // idle ones are closed. Fails, changing nothing, when the files do not load.
  Status use_client_certificate(const std::string& certificate_file, const std::string& key_file);
  const std::string& client_certificate() const;

  // Closes every idle connection (at shutdown, or after a configuration change).
  void close_idle();

  std::uint64_t connections_opened() const;
  std::size_t origins_pooled() const;  // origins with a pool right now (bounded by max_origins)
  boost::asio::any_io_executor executor() const;

 private:
  struct Impl;
  explicit HttpClient(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

// A short printable excerpt of a body for error messages (control characters folded, 100 chars max).
std::string body_excerpt(std::string_view body);

}  // namespace wincert::agent
