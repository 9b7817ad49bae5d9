#include "agent/command_http.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <charconv>
#include <map>
#include <mutex>

#include "common/encoding.hpp"
#include "common/log.hpp"
#include "common/text.hpp"
#include "common/tls.hpp"

namespace wincert::agent {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);

bool is_ip_literal(const std::string& host) {
  error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

bool is_connection_lost(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
         ec == net::error::connection_aborted || ec == net::error::broken_pipe || ec == net::error::not_connected ||
         ec == ssl::error::stream_truncated;
}

std::uint16_t default_port(std::string_view scheme) { return scheme == "https" ? 443 : 80; }

// The OS's own number for a failed socket call (errno here, WSA/Win32 on Windows), kept in the detail;
// errors of Beast's or Asio's own categories (end of stream, ...) have none.
Error with_socket_status(Error&& error, const error_code& ec) {
  if (ec.category() != boost::system::system_category()) return std::move(error);
#ifdef _WIN32
  constexpr SystemStatusKind kKind = SystemStatusKind::kWin32;
#else
  constexpr SystemStatusKind kKind = SystemStatusKind::kErrno;
#endif
  return std::move(error).with_system_status(kKind, static_cast<std::uint32_t>(ec.value()));
}

}  // namespace

// ---- URLs ----

std::string Url::authority() const {
  const bool v6 = host.find(':') != std::string::npos;
  std::string out = v6 ? "[" + host + "]" : host;
  if (port != default_port(scheme)) out += ":" + std::to_string(port);
  return out;
}
std::string Url::origin() const { return scheme + "://" + authority(); }
std::string Url::text() const { return origin() + target; }
std::string Url::path() const { return target.substr(0, target.find('?')); }

Result<Url> parse_url(std::string_view text) {
  const std::string_view original = trim(text);
  std::string_view rest = original;
  Url url;
  const auto scheme_end = rest.find("://");
  if (scheme_end == std::string_view::npos)
    return Error::invalid_argument("not an absolute URL (expected https://host/...)");
  url.scheme = to_lower(rest.substr(0, scheme_end));
  if (url.scheme != "http" && url.scheme != "https")
    return Error::invalid_argument("unsupported URL scheme '" + url.scheme + "' (expected http or https)");
  rest.remove_prefix(scheme_end + 3);
  const auto authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  rest = authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos)
    return Error::invalid_argument("user information in the URL is not allowed (credentials belong in the secrets)");
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return Error::invalid_argument("unclosed '[' in the host of the URL");
    url.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Error::invalid_argument("unexpected text after the IPv6 address in the URL");
      port_text = after.substr(1);
    }
  } else {
    const auto colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      authority = authority.substr(0, colon);
    }
    url.host = std::string(authority);
  }
  if (url.host.empty()) return Error::invalid_argument("the URL has no host name");
  url.port = default_port(url.scheme);
  if (!port_text.empty()) {
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc{} || ptr != port_text.data() + port_text.size() || value == 0 || value > 65535)
      return Error::invalid_argument("invalid port '" + std::string(port_text) + "' in the URL");
    url.port = static_cast<std::uint16_t>(value);
  }
  rest = rest.substr(0, rest.find('#'));
  if (rest.empty()) {
    url.target = "/";
  } else if (rest.front() == '?') {
    url.target = "/" + std::string(rest);
  } else {
    url.target = std::string(rest);
  }
  for (const char c : url.target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return Error::invalid_argument("the URL path contains a space or control character (percent-encode it)");
  }
  return url;
}

bool same_origin(const Url& a, const Url& b) {
  return a.scheme == b.scheme && iequals(a.host, b.host) && a.port == b.port;
}

Result<Url> resolve_endpoint(const Url& base, std::string_view endpoint) {
  const std::string_view text = trim(endpoint);
  if (text.empty()) return Error::invalid_argument("empty endpoint");
  if (istarts_with(text, "http://") || istarts_with(text, "https://")) {
    auto url = parse_url(text);
    if (!url.ok()) return url;
    if (base.tls() && !url->tls())
      return Error::invalid_argument("endpoint " + url->origin() + url->path() +
                                     " would downgrade AgentsServerUri's https to " +
                                     "http: refused, credentials are never sent in clear");
    if (!same_origin(*url, base))
      return Error::invalid_argument("endpoint " + url->origin() + url->path() +
                                     " is not on AgentsServerUri's origin " + base.origin() +
                                     ": refused, credentials and the session token go to Command only");
    return url;
  }
  for (const char c : text) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return Error::invalid_argument("endpoint '" + body_excerpt(text) + "' contains a space or control character");
  }

  std::string base_path = base.path();
  while (!base_path.empty() && base_path.back() == '/') base_path.pop_back();
  const auto join = [&](std::string_view relative) {
    Url out = base;
    while (!relative.empty() && relative.front() == '/') relative.remove_prefix(1);
    out.target = base_path + "/" + std::string(relative);
    return out;
  };

  std::string_view relative = text;
  const bool rooted = relative.front() == '/';
  while (!relative.empty() && relative.front() == '/') relative.remove_prefix(1);
  constexpr std::string_view kPrefix = "KeyfactorAgents/";
  if (istarts_with(relative, kPrefix)) return join(relative.substr(kPrefix.size()));
  if (rooted && !base_path.empty()) {
    const std::string_view rooted_path = text;
    if (istarts_with(rooted_path, base_path + "/")) {
      Url out = base;
      out.target = std::string(rooted_path);
      return out;
    }
  }
  return join(relative);
}

std::string body_excerpt(std::string_view body) { return printable_excerpt(body); }

// ---- connections ----

namespace {

struct Connection {
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<ssl::stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  bool fresh = true;  // no response read on it yet

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  void close() {
    error_code ignored;
    if (plain || tls) {
      lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
      lowest().close();
    }
  }
  ~Connection() { close(); }
};

struct Attempt {
  Result<HttpResponse> result;
  bool stale = false;  // failed on a reused connection the server had closed: safe to retry once
  bool keep_alive = false;
};

}  // namespace

struct HttpClient::Impl {
  net::any_io_executor executor;
  HttpClientOptions options;
  ssl::context tls_context{ssl::context::tls_client};
  std::atomic<std::uint64_t> opened{0};

  // The connections of one origin: a semaphore bounding how many are busy, and the idle ones.
  struct Pool {
    Pool(const net::any_io_executor& ex, std::size_t max) : slots(ex, max) {}
    net::experimental::concurrent_channel<void(error_code)> slots;
    std::vector<std::unique_ptr<Connection>> idle;
    std::size_t users = 0;  // requests holding or waiting for a slot (under Impl::mutex)
  };
  std::mutex mutex;
  std::map<std::string, std::unique_ptr<Pool>> pools;

  Impl(net::any_io_executor ex, HttpClientOptions opts) : executor(std::move(ex)), options(std::move(opts)) {}

  std::shared_ptr<spdlog::logger> log() const { return logger("command"); }

  Status setup_tls() {
    wincert::tls::ClientSettings settings;
    settings.verify_peer = options.verify_peer;
    settings.ca_file = options.ca_file;
    settings.client_certificate = options.client_certificate;
    settings.client_key = options.client_key;
    settings.ca_file_option = "ServerCaFile";
    settings.client_certificate_option = "CertPath";
    settings.client_key_option = "KeyPath";
    return wincert::tls::configure_client(tls_context, settings);
  }

  // The pool of `origin`, counted as used until release_pool. A new origin beyond max_origins first
  // drops the pools nobody uses (with their idle connections), so the map cannot grow without bound.
  Pool& acquire_pool(const std::string& origin) {
    std::lock_guard lock(mutex);
    if (!pools.contains(origin) && pools.size() >= std::max<std::size_t>(1, options.max_origins))
      std::erase_if(pools, [](const auto& entry) { return entry.second->users == 0; });
    auto& pool = pools[origin];
    if (!pool) pool = std::make_unique<Pool>(executor, std::max<std::size_t>(1, options.max_connections_per_origin));
    ++pool->users;
    return *pool;
  }
  void release_pool(Pool& pool) {
    std::lock_guard lock(mutex);
    --pool.users;
  }

  net::awaitable<Result<std::unique_ptr<Connection>>> connect(const Url& url) {
    const std::string where = url.authority();
    auto resolver = std::make_shared<tcp::resolver>(executor);
    net::steady_timer deadline(executor);
    deadline.expires_after(options.connect_timeout);
    auto timed_out = std::make_shared<bool>(false);
    deadline.async_wait([resolver, timed_out](error_code ec) {
      if (!ec) {
        *timed_out = true;
        resolver->cancel();
      }
    });
    const std::string service = std::to_string(url.port);
    auto [resolve_ec, results] = co_await resolver->async_resolve(url.host, service, kUseTuple);
    deadline.cancel();
    if (resolve_ec) {
      if (*timed_out)
        co_return Error::deadline_exceeded("timed out after " + duration_text(options.connect_timeout) +
                                           " resolving host name '" + url.host + "': check DNS");
      co_return Error::unavailable("cannot resolve host name '" + url.host + "': " + resolve_ec.message() +
                                   ": check the URL and DNS");
    }

    auto conn = std::make_unique<Connection>();
    auto stream = std::make_unique<beast::tcp_stream>(executor);
    stream->expires_after(options.connect_timeout);
    auto [connect_ec, endpoint] = co_await stream->async_connect(results, kUseTuple);
    (void)endpoint;
    if (connect_ec) {
      if (connect_ec == beast::error::timeout)
        co_return Error::deadline_exceeded("timed out after " + duration_text(options.connect_timeout) +
                                           " connecting to " + where +
                                           ": is the server up and reachable through the firewall?");
      if (connect_ec == net::error::connection_refused)
        co_return with_socket_status(
            Error::unavailable("connection refused by " + where + ": is the server listening on port " +
                               std::to_string(url.port) + "?"),
            connect_ec);
      co_return with_socket_status(Error::unavailable("cannot connect to " + where + ": " + connect_ec.message()),
                                   connect_ec);
    }
    stream->socket().set_option(tcp::no_delay(true));
    if (!url.tls()) {
      conn->plain = std::move(stream);
    } else {
      auto tls = std::make_unique<ssl::stream<beast::tcp_stream>>(std::move(*stream), tls_context);
      SSL* handle = tls->native_handle();
      const bool ip = is_ip_literal(url.host);
      if (!ip) SSL_set_tlsext_host_name(handle, url.host.c_str());
      if (options.verify_peer) {
        X509_VERIFY_PARAM* param = SSL_get0_param(handle);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        const int set = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str())
                           : X509_VERIFY_PARAM_set1_host(param, url.host.c_str(), 0);
        if (set != 1) co_return Error::internal("cannot set up host-name verification for " + url.host);
      }
      beast::get_lowest_layer(*tls).expires_after(options.connect_timeout);
      auto [hs_ec] = co_await tls->async_handshake(ssl::stream_base::client, kUseTuple);
      if (hs_ec) {
        const long verify = SSL_get_verify_result(handle);
        if (hs_ec == beast::error::timeout)
          co_return Error::deadline_exceeded("timed out after " + duration_text(options.connect_timeout) +
                                             " in the TLS handshake with " + where);
        if (options.verify_peer && verify != X509_V_OK) {
          // The peer could not prove who it is: unauthenticated, with OpenSSL's verify result as the detail.
          const std::string reason = X509_verify_cert_error_string(verify);
          const auto verify_status = static_cast<std::uint32_t>(verify);
          if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH)
            co_return Error::unauthenticated("the TLS certificate of " + where + " does not match the name '" +
                                             url.host + "' (" + reason +
                                             "): use the host name the certificate was issued for")
                .with_system_status(SystemStatusKind::kOpenSsl, verify_status);
          co_return Error::unauthenticated("the TLS certificate of " + where + " is not trusted: " + reason +
                                           ": set ServerCaFile to the CA that issued it")
              .with_system_status(SystemStatusKind::kOpenSsl, verify_status);
        }
        co_return Error::unavailable(
            "TLS handshake with " + where + " failed: " + hs_ec.message() +
            (options.client_certificate.empty() ? std::string() : " (was the client certificate accepted?)"))
            .with_system_status(SystemStatusKind::kOpenSsl, static_cast<std::uint32_t>(hs_ec.value()));
      }
      conn->tls = std::move(tls);
    }
    ++opened;
    log()->debug("connected to {}", url.origin());
    co_return conn;
  }

  net::awaitable<Attempt> send_once(Connection& conn, const HttpRequest& request, std::string_view what) {
    const std::string where = request.url.authority();
    http::request<http::string_body> req;
    req.method_string(request.method);
    req.target(request.url.target);
    req.version(11);
    req.set(http::field::host, request.url.authority());
    req.set(http::field::user_agent, options.user_agent);
    req.set(http::field::accept, "application/json");
    req.set(http::field::accept_encoding, "identity");
    if (!request.body.empty() || request.method == "POST") req.set(http::field::content_type, request.content_type);
    for (const auto& [name, value] : request.headers) req.set(name, value);
    req.keep_alive(true);
    req.body() = request.body;
    req.prepare_payload();

    const bool reused = !conn.fresh;
    conn.lowest().expires_after(options.request_timeout);
    error_code write_ec;
    if (conn.tls) {
      std::tie(write_ec, std::ignore) = co_await http::async_write(*conn.tls, req, kUseTuple);
    } else {
      std::tie(write_ec, std::ignore) = co_await http::async_write(*conn.plain, req, kUseTuple);
    }
    if (write_ec) {
      if (write_ec == beast::error::timeout)
        co_return Attempt{Error::deadline_exceeded("timed out after " + duration_text(options.request_timeout) +
                                                   " sending " + std::string(what) + " to " + where),
                          false};
      co_return Attempt{with_socket_status(Error::unavailable("connection to " + where + " lost while sending " +
                                                              std::string(what) + ": " + write_ec.message()),
                                           write_ec),
                        reused && is_connection_lost(write_ec)};
    }

    http::response_parser<http::string_body> parser;
    parser.body_limit(options.max_response_body);
    parser.header_limit(static_cast<std::uint32_t>(options.max_response_header));
    error_code read_ec;
    if (conn.tls) {
      std::tie(read_ec, std::ignore) = co_await http::async_read(*conn.tls, conn.buffer, parser, kUseTuple);
    } else {
      std::tie(read_ec, std::ignore) = co_await http::async_read(*conn.plain, conn.buffer, parser, kUseTuple);
    }
    if (read_ec) {
      const std::string doing = std::string(what) + " response from " + where;
      if (read_ec == beast::error::timeout)
        co_return Attempt{Error::deadline_exceeded("timed out after " + duration_text(options.request_timeout) +
                                                   " waiting for the " + doing),
                          false};
      if (read_ec == http::error::body_limit)
        co_return Attempt{Error::invalid_argument("the " + doing + " is larger than the limit of " +
                                                  std::to_string(options.max_response_body / 1024) + " KiB"),
                          false};
      if (read_ec == http::error::header_limit)
        co_return Attempt{Error::invalid_argument("the HTTP header of the " + doing + " is larger than " +
                                                  std::to_string(options.max_response_header / 1024) + " KiB"),
                          false};
      if (is_connection_lost(read_ec) || read_ec == http::error::partial_message) {
        if (!parser.got_some())
          co_return Attempt{with_socket_status(
                                Error::unavailable("connection closed by " + where + " before the " +
                                                   std::string(what) + " response arrived (" + read_ec.message() + ")"),
                                read_ec),
                            reused};
        co_return Attempt{
            with_socket_status(Error::unavailable("connection closed by " + where + " in the middle of the " +
                                                  std::string(what) + " response"),
                               read_ec),
            false};
      }
      co_return Attempt{Error::invalid_argument("malformed HTTP in the " + doing + ": " + read_ec.message()), false};
    }
    conn.fresh = false;
    auto response = parser.release();
    HttpResponse out;
    out.status = response.result_int();
    out.reason = std::string(response.reason());
    out.content_type = std::string(response[http::field::content_type]);
    out.body = std::move(response.body());
    co_return Attempt{std::move(out), false, response.keep_alive()};
  }

  net::awaitable<Result<HttpResponse>> send(const HttpRequest& request, std::string_view what) {
    Pool& pool = acquire_pool(request.url.origin());
    struct PoolGuard {
      Impl& impl;
      Pool& pool;
      ~PoolGuard() { impl.release_pool(pool); }
    } pool_guard{*this, pool};
    auto [slot_ec] = co_await pool.slots.async_send(error_code{}, kUseTuple);
    if (slot_ec) co_return Error::cancelled(std::string(what) + " was cancelled");
    struct SlotGuard {
      Pool& pool;
      ~SlotGuard() {
        pool.slots.try_receive([](error_code) {});
      }
    } slot_guard{pool};

    std::unique_ptr<Connection> conn;
    {
      std::lock_guard lock(mutex);
      if (!pool.idle.empty()) {
        conn = std::move(pool.idle.back());
        pool.idle.pop_back();
      }
    }
    for (int attempt = 0;; ++attempt) {
      if (!conn) {
        WINCERT_CO_ASSIGN_OR_RETURN(conn, co_await connect(request.url));
      }
      auto result = co_await send_once(*conn, request, what);
      if (!result.result.ok()) {
        conn.reset();
        if (result.stale && attempt == 0) {
          log()->debug("{}: idle connection was closed by the server; reconnecting", request.url.origin());
          continue;
        }
        co_return std::move(result.result);
      }
      if (result.keep_alive) {
        std::lock_guard lock(mutex);
        pool.idle.push_back(std::move(conn));
      }
      co_return std::move(result.result);
    }
  }
};

HttpClient::HttpClient(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::~HttpClient() { close_idle(); }

Result<std::unique_ptr<HttpClient>> HttpClient::create(net::any_io_executor executor, HttpClientOptions options) {
  auto impl = std::make_shared<Impl>(std::move(executor), std::move(options));
  WINCERT_TRY(impl->setup_tls());
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
}

net::awaitable<Result<HttpResponse>> HttpClient::send(HttpRequest request, std::string_view what) {
  auto impl = impl_;  // keeps the pools alive while this request runs
  co_return co_await impl->send(request, what);
}

void HttpClient::close_idle() {
  std::lock_guard lock(impl_->mutex);
  for (auto& [origin, pool] : impl_->pools) pool->idle.clear();
}

std::uint64_t HttpClient::connections_opened() const { return impl_->opened.load(); }
std::size_t HttpClient::origins_pooled() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->pools.size();
}
net::any_io_executor HttpClient::executor() const { return impl_->executor; }

}  // namespace wincert::agent
