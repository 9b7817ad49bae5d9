#include "common/http_connection.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <optional>

#include "common/name_lookup.hpp"
#include "common/text.hpp"

namespace wincert::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);

bool is_connection_lost(const error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
         ec == net::error::connection_aborted || ec == net::error::broken_pipe || ec == net::error::not_connected ||
         ec == ssl::error::stream_truncated;
}

// The OS's socket error (errno, or the Win32 error on Windows) as the error's detail.
Error with_socket_status(Error&& error, const error_code& ec) {
  if (ec.category() != boost::system::system_category()) return std::move(error);
#ifdef _WIN32
  constexpr SystemStatusKind kKind = SystemStatusKind::kWin32;
#else
  constexpr SystemStatusKind kKind = SystemStatusKind::kErrno;
#endif
  return std::move(error).with_system_status(kKind, static_cast<std::uint32_t>(ec.value()));
}

std::string size_text(std::size_t bytes) {
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) == 0) return std::to_string(bytes / (1024 * 1024)) + " MiB";
  return std::to_string(bytes / 1024) + " KiB";
}

Error tls_verify_error(long verify, const std::string& where, const std::string& host, const PeerWords& words) {
  const std::string reason = X509_verify_cert_error_string(verify);
  const std::string subject = "TLS certificate of " + words.noun + " " + where;
  const auto status = static_cast<std::uint32_t>(verify);
  if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
    return Error::unauthenticated(subject + " does not match the name '" + host + "' (" + reason +
                                  "): use the host name the certificate was issued for")
        .with_system_status(SystemStatusKind::kOpenSsl, status);
  }
  if (verify == X509_V_ERR_CERT_HAS_EXPIRED || verify == X509_V_ERR_CERT_NOT_YET_VALID) {
    return Error::unauthenticated(subject + " not trusted: " + reason + ": " + words.expired_hint)
        .with_system_status(SystemStatusKind::kOpenSsl, status);
  }
  return Error::unauthenticated(subject + " not trusted: " + reason + ": " + words.trust_hint)
      .with_system_status(SystemStatusKind::kOpenSsl, status);
}

}  // namespace

bool is_ip_literal(std::string_view host) {
  error_code ec;
  net::ip::make_address(std::string(host), ec);
  return !ec;
}

std::string authority_of(std::string_view host, std::uint16_t port) {
  const bool v6 = host.find(':') != std::string_view::npos;
  return (v6 ? "[" + std::string(host) + "]" : std::string(host)) + ":" + std::to_string(port);
}

struct HttpConnection::Impl {
  std::string where;
  std::string words_noun;  // "server" / "host", for messages
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<ssl::stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  std::string peer_certificate_der;
  bool reused = false;

  bool is_open() const { return plain != nullptr || tls != nullptr; }
  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }

  void close() {
    if (is_open()) {
      error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
      lowest().close();
    }
    tls.reset();
    plain.reset();
    buffer.consume(buffer.size());
  }

  template <class Stream>
  net::awaitable<ExchangeOutcome> exchange_on(Stream& stream, Request& request, const ExchangeLimits& limits,
                                              std::string_view what) {
    const bool was_reused = reused;
    lowest().expires_after(limits.write_timeout);
    auto [write_ec, written] = co_await bhttp::async_write(stream, request, kUseTuple);
    (void)written;
    if (write_ec) {
      close();
      if (write_ec == beast::error::timeout) {
        co_return ExchangeOutcome{Error::deadline_exceeded("timed out after " + duration_text(limits.write_timeout) +
                                                           " sending " + std::string(what) + " to " + where),
                                  false};
      }
      co_return ExchangeOutcome{
          with_socket_status(Error::unavailable("connection to " + where + " lost while sending " + std::string(what) +
                                                ": " + write_ec.message()),
                             write_ec),
          was_reused && is_connection_lost(write_ec)};
    }

    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(limits.max_response_body);
    parser.header_limit(static_cast<std::uint32_t>(limits.max_response_header));
    if (limits.read_timeout.count() > 0) lowest().expires_after(limits.read_timeout);
    auto [read_ec, read] = co_await bhttp::async_read(stream, buffer, parser, kUseTuple);
    (void)read;
    if (read_ec) {
      const bool nothing_read = !parser.got_some();
      close();
      const std::string doing = std::string(what) + " response from " + where;
      if (read_ec == beast::error::timeout) {
        const auto waited = limits.read_timeout.count() > 0 ? limits.read_timeout : limits.write_timeout;
        co_return ExchangeOutcome{
            Error::deadline_exceeded("timed out after " + duration_text(waited) + " waiting for the " + doing +
                                     " (the " + words_noun + " accepted the request but did not answer)"),
            false};
      }
      if (read_ec == bhttp::error::body_limit) {
        co_return ExchangeOutcome{Error::invalid_argument("the " + doing + " is larger than the limit of " +
                                                          size_text(limits.max_response_body)),
                                  false};
      }
      if (read_ec == bhttp::error::header_limit) {
        co_return ExchangeOutcome{Error::invalid_argument("the HTTP header of the " + doing + " is larger than " +
                                                          size_text(limits.max_response_header)),
                                  false};
      }
      if (is_connection_lost(read_ec) || read_ec == bhttp::error::partial_message) {
        if (nothing_read) {
          co_return ExchangeOutcome{
              Error::unavailable("connection closed by " + where + " before the " + std::string(what) +
                                 " response arrived (" + read_ec.message() + ")"),
              was_reused};
        }
        co_return ExchangeOutcome{Error::unavailable("connection closed by " + where + " in the middle of the " +
                                                     std::string(what) + " response (truncated)"),
                                  false};
      }
      co_return ExchangeOutcome{Error::invalid_argument("malformed HTTP in the " + doing + ": " + read_ec.message()),
                                false};
    }
    reused = true;
    co_return ExchangeOutcome{parser.release(), false};
  }
};

HttpConnection::HttpConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpConnection::~HttpConnection() { impl_->close(); }

net::awaitable<Result<std::unique_ptr<HttpConnection>>> HttpConnection::open(net::any_io_executor executor,
                                                                             ssl::context* tls_context,
                                                                             std::string host, std::uint16_t port,
                                                                             ConnectOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->where = options.where.empty() ? authority_of(host, port) : options.where;
  impl->words_noun = options.words.noun;
  const std::string& where = impl->where;
  const PeerWords& words = options.words;

  // Resolve, bounded by the connect timeout: a lookup that outlives it is abandoned, not waited for.
  auto lookup = co_await lookup_name(host, std::to_string(port), options.connect_timeout);
  if (lookup.timed_out) {
    co_return Error::deadline_exceeded("timed out after " + duration_text(options.connect_timeout) +
                                       " resolving host name '" + host + "': check DNS");
  }
  if (lookup.too_many) {
    co_return Error::unavailable("cannot resolve host name '" + host +
                                 "' now: too many name lookups are still running (is DNS answering?)");
  }
  if (lookup.error) {
    co_return Error::unavailable("cannot resolve host name '" + host + "': " + lookup.error.message() + ": check " +
                                 words.address + " and DNS");
  }

  auto stream = std::make_unique<beast::tcp_stream>(executor);
  stream->expires_after(options.connect_timeout);
  auto [connect_ec, connected_to] = co_await stream->async_connect(lookup.results, kUseTuple);
  (void)connected_to;
  if (connect_ec) {
    if (connect_ec == beast::error::timeout) {
      co_return Error::deadline_exceeded("timed out after " + duration_text(options.connect_timeout) +
                                         " connecting to " + where + ": is the " + words.noun +
                                         " up and the port open in its firewall?");
    }
    if (connect_ec == net::error::connection_refused) {
      co_return with_socket_status(Error::unavailable("connection refused by " + where + ": is " + words.listener +
                                                      " listening on port " + std::to_string(port) + "?"),
                                   connect_ec);
    }
    co_return with_socket_status(Error::unavailable("cannot connect to " + where + ": " + connect_ec.message()),
                                 connect_ec);
  }
  stream->socket().set_option(tcp::no_delay(true));

  if (!tls_context) {
    impl->plain = std::move(stream);
    co_return std::unique_ptr<HttpConnection>(new HttpConnection(std::move(impl)));
  }

  auto tls = std::make_unique<ssl::stream<beast::tcp_stream>>(std::move(*stream), *tls_context);
  SSL* handle = tls->native_handle();
  const bool ip = is_ip_literal(host);
  if (!ip) SSL_set_tlsext_host_name(handle, host.c_str());  // SNI: names only, never IP literals
  if (options.verify_peer) {
    // Host-name (or IP) check by OpenSSL itself, so a mismatch reports X509_V_ERR_HOSTNAME_MISMATCH.
    X509_VERIFY_PARAM* param = SSL_get0_param(handle);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int set =
        ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) : X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
    if (set != 1) co_return Error::invalid_argument("cannot set up host-name verification for '" + host + "'");
  }
  beast::get_lowest_layer(*tls).expires_after(options.tls_handshake_timeout);
  auto [hs_ec] = co_await tls->async_handshake(ssl::stream_base::client, kUseTuple);
  if (hs_ec) {
    const long verify = SSL_get_verify_result(handle);
    if (hs_ec == beast::error::timeout) {
      co_return Error::deadline_exceeded("timed out after " + duration_text(options.tls_handshake_timeout) +
                                         " in the TLS handshake with " + where + words.handshake_hint);
    }
    if (options.verify_peer && verify != X509_V_OK) co_return tls_verify_error(verify, where, host, words);
    co_return Error::unavailable("TLS handshake with " + where + " failed: " + hs_ec.message() + words.handshake_hint)
        .with_system_status(SystemStatusKind::kOpenSsl, static_cast<std::uint32_t>(hs_ec.value()));
  }
  if (X509* cert = SSL_get1_peer_certificate(handle)) {
    unsigned char* der = nullptr;
    const int len = i2d_X509(cert, &der);
    if (len > 0) impl->peer_certificate_der.assign(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
    OPENSSL_free(der);
    X509_free(cert);
  }
  impl->tls = std::move(tls);
  co_return std::unique_ptr<HttpConnection>(new HttpConnection(std::move(impl)));
}

net::awaitable<ExchangeOutcome> HttpConnection::exchange(Request& request, const ExchangeLimits& limits,
                                                         std::string_view what) {
  if (!impl_->is_open()) {
    co_return ExchangeOutcome{
        Error::internal("internal error: " + std::string(what) + " sent on a closed connection to " + impl_->where),
        false};
  }
  if (impl_->tls) co_return co_await impl_->exchange_on(*impl_->tls, request, limits, what);
  co_return co_await impl_->exchange_on(*impl_->plain, request, limits, what);
}

bool HttpConnection::reused() const { return impl_->reused; }
bool HttpConnection::is_open() const { return impl_->is_open(); }
const std::string& HttpConnection::where() const { return impl_->where; }
const std::string& HttpConnection::peer_certificate_der() const { return impl_->peer_certificate_der; }
void HttpConnection::close() { impl_->close(); }

}  // namespace wincert::http
