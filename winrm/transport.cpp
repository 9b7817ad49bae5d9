#include "winrm/transport.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <optional>
#include <vector>

#include "common/http_connection.hpp"
#include "common/log.hpp"
#include "common/text.hpp"
#include "common/tls.hpp"
#include "common/worker_pool.hpp"
#include "winrm/async_lock.hpp"

namespace wincert::winrm {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr int kMaxAuthLegs = 5;
constexpr std::string_view kSoapContentType = "application/soap+xml;charset=UTF-8";

// A short printable excerpt of an unexpected body, for "what did the server say" in messages.
std::string excerpt(std::string_view body) {
  const std::string text = printable_excerpt(body);
  return text == "(empty body)" ? text : "'" + text + "'";
}

struct HttpExchange {
  unsigned status = 0;
  std::string reason;
  std::string body;
  std::string content_type;
  std::vector<std::string> www_authenticate;
};

// One attempt's outcome: `stale` marks a failure caused by a reused connection the server had
// already closed, which is safe to retry once on a new connection.
struct Attempt {
  Result<HttpExchange> result;
  bool stale = false;
};

}  // namespace

struct WsmanTransport::Impl {
  net::any_io_executor executor;
  Endpoint endpoint;
  std::unique_ptr<HttpAuth> auth;
  TransportOptions options;
  ssl::context tls_context{ssl::context::tls_client};
  AsyncLock lock;

  std::unique_ptr<wincert::http::HttpConnection> conn;
  bool authenticated = false;  // the connection finished an auth handshake (encrypting auth only)
  bool auth_reported = false;  // the observer heard how this connection's auth handshake ended

  std::atomic<std::uint64_t> http_requests{0};
  std::atomic<std::uint64_t> connections_opened{0};
  std::atomic<std::uint64_t> bytes_sent{0};
  std::atomic<std::uint64_t> bytes_received{0};

  Impl(net::any_io_executor ex, Endpoint ep, std::unique_ptr<HttpAuth> a, TransportOptions opts)
      : executor(std::move(ex)), endpoint(std::move(ep)), auth(std::move(a)), options(std::move(opts)), lock(executor) {
    // How connection errors name this host: the transport's own words, whatever the caller passed.
    options.connect.where = endpoint.authority();
    options.connect.words = peer_words();
  }

  std::shared_ptr<spdlog::logger> log() const { return logger("winrm"); }

  // Calls into the HttpAuth: on the worker pool when they can block (a KDC round trip), else here.
  template <class F>
  net::awaitable<std::invoke_result_t<F&>> auth_call(F call) {
    if (auth->may_block()) co_return co_await run_on_worker(std::move(call));
    co_return call();
  }
  std::string where() const { return endpoint.authority(); }
  bool connected() const { return conn && conn->is_open(); }

  ConnectionInfo connection_info() const {
    ConnectionInfo info;
    info.host = endpoint.host;
    info.port = endpoint.port;
    info.tls = endpoint.tls;
    return info;
  }

  void disconnect() {
    if (conn && options.observer) options.observer->connection_closed(endpoint.host);
    conn.reset();
    authenticated = false;
    auth_reported = false;
  }

  // Tells the observer how this connection's authentication handshake ended (once per connection).
  void report_auth(bool ok) {
    if (!auth || auth_reported) return;
    auth_reported = true;
    if (options.observer) options.observer->auth_handshake(auth->scheme(), ok);
  }

  Status setup_tls_context() {
    wincert::tls::ClientSettings settings;
    settings.verify_peer = options.connect.verify_peer;
    settings.ca_file = options.ca_file;
    settings.client_certificate = options.client_certificate_file;
    settings.client_key = options.client_key_file;
    settings.ca_file_option = "--ca-file";
    settings.client_certificate_option = "--client-cert";
    settings.client_key_option = "--client-key";
    return wincert::tls::configure_client(tls_context, settings);
  }

  // How connection errors name a WinRM host and what they advise.
  static wincert::http::PeerWords peer_words() {
    wincert::http::PeerWords words;
    words.noun = "host";
    words.listener = "WinRM";
    words.address = "the endpoint name";
    words.trust_hint = "use --ca-file with the CA that issued it";
    words.expired_hint = "renew the host's WinRM HTTPS certificate (or check both clocks)";
    words.handshake_hint = ": is this an HTTPS listener (usually port 5986)?";
    return words;
  }

  net::awaitable<Status> connect() {
    disconnect();
    ConnectionInfo info = connection_info();
    if (auth) {
      WINCERT_CO_TRY(auth->check_transport(info));
    }

    auto opened = co_await wincert::http::HttpConnection::open(executor, endpoint.tls ? &tls_context : nullptr,
                                                               endpoint.host, endpoint.port, options.connect);
    if (!opened.ok()) co_return std::move(opened).error();
    conn = std::move(opened).value();
    info.peer_certificate_der = conn->peer_certificate_der();
    ++connections_opened;
    if (options.observer) options.observer->connection_opened(endpoint.host);
    log()->debug("connected to {} ({})", where(), endpoint.tls ? "https" : "http");
    if (auth) {
      auto reset_context = [this, &info] { return auth->reset(info); };
      auto reset = co_await auth_call(reset_context);
      if (!reset.ok()) {
        disconnect();
        co_return reset.error();
      }
    }
    co_return Status{};
  }

  // Writes one HTTP request and reads its response on the current connection.
  net::awaitable<Attempt> send_once(const HttpBody& body, const std::optional<std::string>& authorization,
                                    std::string_view what) {
    http::request<http::string_body> req{http::verb::post, endpoint.path, 11};
    req.set(http::field::host, endpoint.authority());
    req.set(http::field::user_agent, options.user_agent);
    req.set(http::field::accept_encoding, "identity");
    req.set(http::field::content_type, body.content_type);
    if (authorization) req.set(http::field::authorization, *authorization);
    req.keep_alive(true);
    req.body() = body.data;
    req.prepare_payload();

    ++http_requests;
    auto outcome = co_await conn->exchange(req, options.exchange, what);
    if (!outcome.response.ok()) {
      disconnect();
      co_return Attempt{std::move(outcome.response).error(), outcome.stale};
    }
    bytes_sent += body.data.size();
    auto& response = *outcome.response;
    HttpExchange exchange;
    exchange.status = response.result_int();
    exchange.reason = std::string(response.reason());
    exchange.content_type = std::string(response[http::field::content_type]);
    for (auto it = response.find(http::field::www_authenticate);
         it != response.end() && it->name() == http::field::www_authenticate; ++it) {
      exchange.www_authenticate.emplace_back(it->value());
    }
    exchange.body = std::move(response.body());
    bytes_received += exchange.body.size();
    if (!response.keep_alive()) disconnect();
    co_return Attempt{std::move(exchange), false};
  }

  Error auth_failed(std::string_view what) const {
    if (!auth) {
      return Error::unauthenticated(std::string(what) + " on " + where() +
                                    ": the host requires authentication (HTTP 401): set --auth and --user")
          .with_http_status(401);
    }
    return Error::unauthenticated("authentication failed for " + auth->principal() + " at " + where() + " (HTTP 401, " +
                                  auth->scheme() + "): check the user name and password and that " + auth->scheme() +
                                  " authentication is enabled on the host")
        .with_http_status(401);
  }

  // Encrypting auth: authenticate the connection with empty-body requests first (Windows rejects a
  // plaintext SOAP body there). Returns an Attempt whose value is the final (non-401) exchange.
  net::awaitable<Attempt> handshake(std::string_view what) {
    auto next_header = [this] { return auth->authorization(); };
    for (int leg = 0;; ++leg) {
      auto header = co_await auth_call(next_header);
      if (!header.ok()) co_return Attempt{header.error(), false};
      // Named, not a temporary: GCC 12 miscompiles temporaries that live across a co_await.
      const HttpBody empty_body{"", std::string(kSoapContentType)};
      auto attempt = co_await send_once(empty_body, *header, what);
      if (!attempt.result.ok()) co_return attempt;
      const auto& exchange = attempt.result.value();
      if (exchange.status == 401) {
        auto challenge = [this, &exchange] { return auth->on_challenge(exchange.www_authenticate); };
        auto outcome = co_await auth_call(challenge);
        if (!outcome.ok()) co_return Attempt{outcome.error(), false};
        if (*outcome == ChallengeOutcome::kFailed || leg + 1 >= kMaxAuthLegs) {
          report_auth(false);
          disconnect();
          co_return Attempt{auth_failed(what), false};
        }
        continue;
      }
      auto accept = [this, &exchange] { return auth->on_response(exchange.www_authenticate); };
      auto done = co_await auth_call(accept);
      if (!done.ok()) co_return Attempt{done.error(), false};
      authenticated = true;
      report_auth(true);
      co_return attempt;
    }
  }

  // Runs a request through the authentication legs on the current connection.
  net::awaitable<Attempt> send_authenticated(std::string_view soap, std::string_view what) {
    bool handshake_redone = false;
    for (int leg = 0;; ++leg) {
      if (auth && auth->encrypts() && !authenticated) {
        auto shaken = co_await handshake(what);
        if (!shaken.result.ok()) co_return shaken;
      }
      HttpBody body{std::string(soap), std::string(kSoapContentType)};
      std::optional<std::string> header;
      if (auth) {
        auto next_header = [this] { return auth->authorization(); };
        auto value = co_await auth_call(next_header);
        if (!value.ok()) co_return Attempt{value.error(), false};
        header = std::move(*value);
        if (auth->encrypts()) {
          auto wrapped = auth->wrap(soap);
          if (!wrapped.ok()) co_return Attempt{wrapped.error(), false};
          body = std::move(*wrapped);
        }
      }
      auto attempt = co_await send_once(body, header, what);
      if (!attempt.result.ok()) co_return attempt;
      auto& exchange = attempt.result.value();
      if (exchange.status == 401) {
        if (!auth) co_return Attempt{auth_failed(what), false};
        auto challenge = [this, &exchange] { return auth->on_challenge(exchange.www_authenticate); };
        auto outcome = co_await auth_call(challenge);
        if (!outcome.ok()) co_return Attempt{outcome.error(), false};
        if (*outcome == ChallengeOutcome::kFailed || leg + 1 >= kMaxAuthLegs) {
          report_auth(false);
          disconnect();
          co_return Attempt{auth_failed(what), false};
        }
        if (auth->encrypts()) {
          // The host lost the security context (and so the sealing state): authenticate again, once.
          if (handshake_redone) {
            disconnect();
            co_return Attempt{auth_failed(what), false};
          }
          handshake_redone = true;
          authenticated = false;
        }
        continue;
      }
      if (auth) {
        auto accept = [this, &exchange] { return auth->on_response(exchange.www_authenticate); };
        auto done = co_await auth_call(accept);
        if (!done.ok()) co_return Attempt{done.error(), false};
        report_auth(true);
        if (auth->encrypts()) {
          // With message encryption every answer to a sealed request is sealed too (faults included):
          // a clear one was not written by the host we authenticated, so its text is not trusted at all.
          if (!istarts_with_ct(exchange.content_type, "multipart/encrypted")) {
            disconnect();
            co_return Attempt{
                Error::unauthenticated("the " + std::string(what) + " response from " + where() + " (HTTP " +
                                       std::to_string(exchange.status) + ", " +
                                       (exchange.content_type.empty() ? std::string("no content type")
                                                                      : printable_excerpt(exchange.content_type, 60)) +
                                       ") is not encrypted although message encryption is on: refused, "
                                       "its contents are not trusted (a proxy or an on-path attacker may "
                                       "have replaced the host's answer)"),
                false};
          }
          auto plain_body = auth->unwrap(exchange.body, exchange.content_type);
          if (!plain_body.ok()) {
            disconnect();  // the sealing state is out of step now
            co_return Attempt{plain_body.error(), false};
          }
          exchange.body = std::move(*plain_body);
        }
      }
      co_return attempt;
    }
  }

  static bool istarts_with_ct(std::string_view content_type, std::string_view prefix) {
    if (content_type.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(content_type[i])) != prefix[i]) return false;
    }
    return true;
  }

  net::awaitable<Result<HttpExchange>> exchange(std::string_view soap, std::string_view what) {
    auto guard = co_await lock.acquire();
    if (!guard.locked()) co_return Error::cancelled(std::string(what) + " to " + where() + " was cancelled");
    for (int attempt = 0;; ++attempt) {
      if (!connected()) {
        WINCERT_CO_TRY(co_await connect());
      }
      auto result = co_await send_authenticated(soap, what);
      if (!result.result.ok() && result.stale && attempt == 0) {
        log()->debug("{}: idle connection was closed by the server; reconnecting", where());
        disconnect();
        continue;
      }
      co_return std::move(result.result);
    }
  }
};

WsmanTransport::WsmanTransport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WsmanTransport::~WsmanTransport() { impl_->disconnect(); }

Result<std::unique_ptr<WsmanTransport>> WsmanTransport::create(net::any_io_executor executor, Endpoint endpoint,
                                                               std::unique_ptr<HttpAuth> auth,
                                                               TransportOptions options) {
  auto impl = std::make_unique<Impl>(std::move(executor), std::move(endpoint), std::move(auth), std::move(options));
  if (impl->endpoint.tls) {
    WINCERT_TRY(impl->setup_tls_context());
    if (!impl->options.connect.verify_peer) {
      impl->log()->warn("TLS certificate verification is OFF for {}: anyone on the path can impersonate the host",
                        impl->where());
    }
  }
  return std::unique_ptr<WsmanTransport>(new WsmanTransport(std::move(impl)));
}

net::awaitable<Result<WsmanTransport::RawResponse>> WsmanTransport::post(std::string body, std::string_view what) {
  WINCERT_CO_ASSIGN_OR_RETURN(HttpExchange exchange, co_await impl_->exchange(body, what));
  co_return RawResponse{exchange.status, std::move(exchange.body), std::move(exchange.content_type)};
}

net::awaitable<Result<WsmanReply>> WsmanTransport::request(const Envelope& envelope, std::string_view what) {
  WINCERT_CO_ASSIGN_OR_RETURN(HttpExchange exchange, co_await impl_->exchange(envelope.xml, what));
  const std::string where = impl_->where();
  const std::string op(what);
  switch (exchange.status) {
    case 200:
    case 500:
    case 400: {
      auto parsed = parse_response(exchange.body, envelope.message_id);
      if (!parsed.ok()) {
        if (exchange.status == 200) {
          co_return parsed.error().context("invalid " + op + " response from " + where + ": ");
        }
        // A well-formed envelope that does not answer our request (RelatesTo): not the host's word, so
        // none of its text is quoted.
        if (parse_response(exchange.body, "").ok()) {
          co_return parsed.error().context("refused the HTTP " + std::to_string(exchange.status) + " " + op +
                                           " response from " + where + ": ");
        }
        if (exchange.status == 500) {
          co_return Error::unavailable("HTTP 500 from " + where + " for " + op + " without a SOAP fault (" +
                                       (exchange.content_type.empty() ? "no content type" : exchange.content_type) +
                                       "): " + excerpt(exchange.body))
              .with_http_status(500);
        }
        WsmanReply reply;
        reply.http_status = 400;
        WsmanFault fault;
        fault.code = "http";
        fault.subcode = "HTTP 400";
        fault.reason = "HTTP 400 Bad Request from " + where + " for " + op + ": " + excerpt(exchange.body);
        reply.soap.fault = std::move(fault);
        co_return reply;
      }
      co_return WsmanReply{exchange.status, std::move(*parsed)};
    }
    case 413:
      co_return Error::invalid_argument(op + " request of " + std::to_string(envelope.xml.size()) +
                                        " bytes rejected by " + where +
                                        " (HTTP 413): larger than the host's MaxEnvelopeSizekb")
          .with_http_status(413);
    case 503:
      co_return Error::unavailable(op + " on " + where + ": service unavailable (HTTP 503), retry later")
          .with_http_status(503);
    default:
      co_return Error::make(wincert::http::code_for_status(exchange.status),
                            op + " on " + where + ": unexpected HTTP " + std::to_string(exchange.status) + " " +
                                exchange.reason + ": " + excerpt(exchange.body) +
                                " (is this a WinRM endpoint? check the URL path, usually /wsman)")
          .with_http_status(static_cast<int>(exchange.status));
  }
}

void WsmanTransport::close() { impl_->disconnect(); }
const Endpoint& WsmanTransport::endpoint() const { return impl_->endpoint; }
net::any_io_executor WsmanTransport::executor() const { return impl_->executor; }
const TransportOptions& WsmanTransport::options() const { return impl_->options; }
void WsmanTransport::set_read_timeout(std::chrono::milliseconds timeout) {
  impl_->options.exchange.read_timeout = timeout;
}

TransportCounters WsmanTransport::counters() const {
  return TransportCounters{impl_->http_requests.load(), impl_->connections_opened.load(), impl_->bytes_sent.load(),
                           impl_->bytes_received.load()};
}

}  // namespace wincert::winrm
