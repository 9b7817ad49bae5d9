#include "agent/command_http.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <charconv>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "common/encoding.hpp"
#include "common/http_connection.hpp"
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

std::uint16_t default_port(std::string_view scheme) { return scheme == "https" ? 443 : 80; }

// The OS's own number for a failed socket call (errno here, WSA/Win32 on Windows), kept in the detail;
// errors of Beast's or Asio's own categories (end of stream, ...) have none.
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

using Connection = wincert::http::HttpConnection;

struct Attempt {
  Result<HttpResponse> result;
  bool stale = false;  // failed on a reused connection the server had closed: safe to retry once
  bool keep_alive = false;
};

}  // namespace

struct HttpClient::Impl {
  net::any_io_executor executor;
  HttpClientOptions options;
  // New connections use tls_context. One replaced by use_client_certificate() is kept until the client
  // goes: connections opened with it may still be in use (renewal happens about once a year).
  std::unique_ptr<ssl::context> tls_context = std::make_unique<ssl::context>(ssl::context::tls_client);
  std::vector<std::unique_ptr<ssl::context>> retired_tls_contexts;
  std::atomic<std::uint64_t> opened{0};

  // The connections of one origin: a semaphore bounding how many are busy (plus one slot kept for priority
  // requests), and the idle ones.
  struct Pool {
    Pool(const net::any_io_executor& ex, std::size_t max) : slots(ex, max), priority_slot(ex, 1) {}
    net::experimental::concurrent_channel<void(error_code)> slots;
    net::experimental::concurrent_channel<void(error_code)> priority_slot;
    std::vector<std::unique_ptr<Connection>> idle;
    std::size_t users = 0;  // requests holding or waiting for a slot (under Impl::mutex)
  };
  std::mutex mutex;
  std::map<std::string, std::unique_ptr<Pool>> pools;

  Impl(net::any_io_executor ex, HttpClientOptions opts) : executor(std::move(ex)), options(std::move(opts)) {}

  std::shared_ptr<spdlog::logger> log() const { return logger("command"); }

  Status setup_tls(ssl::context& context) const {
    wincert::tls::ClientSettings settings;
    settings.verify_peer = options.verify_peer;
    settings.ca_file = options.ca_file;
    settings.client_certificate = options.client_certificate;
    settings.client_key = options.client_key;
    settings.ca_file_option = "ServerCaFile";
    settings.client_certificate_option = "CertPath";
    settings.client_key_option = "KeyPath";
    return wincert::tls::configure_client(context, settings);
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

  // How connection errors name Command and what they advise.
  wincert::http::PeerWords peer_words() const {
    wincert::http::PeerWords words;
    words.noun = "server";
    words.listener = "the server";
    words.address = "the URL";
    words.trust_hint = "set ServerCaFile to the CA that issued it";
    words.expired_hint = "renew the server's HTTPS certificate (or check both clocks)";
    if (!options.client_certificate.empty()) words.handshake_hint = " (was the client certificate accepted?)";
    return words;
  }

  net::awaitable<Result<std::unique_ptr<Connection>>> connect(const Url& url) {
    wincert::http::ConnectOptions connect_options;
    connect_options.connect_timeout = options.connect_timeout;
    connect_options.tls_handshake_timeout = options.connect_timeout;
    connect_options.verify_peer = options.verify_peer;
    connect_options.where = url.authority();
    connect_options.words = peer_words();
    auto conn = co_await Connection::open(executor, url.tls() ? tls_context.get() : nullptr, url.host, url.port,
                                          connect_options);
    if (conn.ok()) {
      ++opened;
      log()->debug("connected to {}", url.origin());
    }
    co_return conn;
  }

  net::awaitable<Attempt> send_once(Connection& conn, const HttpRequest& request, std::string_view what) {
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

    // One deadline for the whole exchange (write and complete response), as HttpClientOptions says.
    const wincert::http::ExchangeLimits limits{options.request_timeout, std::chrono::milliseconds(0),
                                               options.max_response_body, options.max_response_header};
    auto outcome = co_await conn.exchange(req, limits, what);
    if (!outcome.response.ok()) co_return Attempt{std::move(outcome.response).error(), outcome.stale};
    auto& response = *outcome.response;
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
    auto& slots = request.priority ? pool.priority_slot : pool.slots;
    auto [slot_ec] = co_await slots.async_send(error_code{}, kUseTuple);
    if (slot_ec) co_return Error::cancelled(std::string(what) + " was cancelled");
    struct SlotGuard {
      net::experimental::concurrent_channel<void(error_code)>& slots;
      ~SlotGuard() {
        slots.try_receive([](error_code) {});
      }
    } slot_guard{slots};

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
  WINCERT_TRY(impl->setup_tls(*impl->tls_context));
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
}

net::awaitable<Result<HttpResponse>> HttpClient::send(HttpRequest request, std::string_view what) {
  auto impl = impl_;  // keeps the pools alive while this request runs
  co_return co_await impl->send(request, what);
}

Status HttpClient::use_client_certificate(const std::string& certificate_file, const std::string& key_file) {
  HttpClientOptions next = impl_->options;
  next.client_certificate = certificate_file;
  next.client_key = key_file;
  auto context = std::make_unique<ssl::context>(ssl::context::tls_client);
  const HttpClientOptions current = std::exchange(impl_->options, next);
  if (Status ok = impl_->setup_tls(*context); !ok.ok()) {
    impl_->options = current;
    return ok;
  }
  impl_->retired_tls_contexts.push_back(std::exchange(impl_->tls_context, std::move(context)));
  close_idle();  // the next request opens a connection that presents the new certificate
  return {};
}

void HttpClient::close_idle() {
  std::lock_guard lock(impl_->mutex);
  for (auto& [origin, pool] : impl_->pools) pool->idle.clear();
}

const std::string& HttpClient::client_certificate() const { return impl_->options.client_certificate; }

std::uint64_t HttpClient::connections_opened() const { return impl_->opened.load(); }
std::size_t HttpClient::origins_pooled() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->pools.size();
}
net::any_io_executor HttpClient::executor() const { return impl_->executor; }

}  // namespace wincert::agent
