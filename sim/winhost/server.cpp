#include "sim/winhost/server.hpp"

#include <algorithm>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <utility>

#include "common/log.hpp"
#include "common/tls.hpp"
#include "sim/winhost/error_reply.hpp"

namespace wincert::sim {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

Status write_file_atomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Error::failed_precondition("cannot write " + tmp + ": check the directory exists and is writable");
    out << text;
    if (!out) return Error::resource_exhausted("writing " + tmp + " failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return Error::failed_precondition("cannot rename " + tmp + " to " + path);
  return {};
}

Result<std::string> tls_server_end_point_hash(const std::string& pem_path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(pem_path.c_str(), "rb"), &std::fclose);
  if (!file) return Error::not_found("cannot read the TLS certificate " + pem_path);
  std::unique_ptr<X509, void (*)(X509*)> cert(PEM_read_X509(file.get(), nullptr, nullptr, nullptr), &X509_free);
  if (!cert) return Error::invalid_argument("the TLS certificate " + pem_path + " is not a PEM certificate");
  int md_nid = NID_undef;
  if (X509_get_signature_info(cert.get(), &md_nid, nullptr, nullptr, nullptr) != 1) md_nid = NID_undef;
  const EVP_MD* md =
      (md_nid == NID_undef || md_nid == NID_md5 || md_nid == NID_sha1) ? EVP_sha256() : EVP_get_digestbynid(md_nid);
  if (!md) md = EVP_sha256();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert.get(), md, digest, &len) != 1)
    return Error::internal("cannot hash the TLS certificate " + pem_path);
  return std::string(reinterpret_cast<const char*>(digest), len);
}

Result<std::pair<std::string, unsigned short>> parse_listen(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) return Error::invalid_argument("--listen '" + text + "' must be HOST:PORT");
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  unsigned long port = 0;
  try {
    std::size_t used = 0;
    port = std::stoul(text.substr(colon + 1), &used);
    if (used != text.size() - colon - 1) throw std::invalid_argument("trailing");
  } catch (...) {
    return Error::invalid_argument("--listen '" + text + "': the port is not a number");
  }
  if (port > 65535) return Error::invalid_argument("--listen '" + text + "': the port is out of range");
  return std::make_pair(host, static_cast<unsigned short>(port));
}

namespace {

constexpr std::string_view kSoapContentType = "application/soap+xml;charset=UTF-8";

template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <class... Args>
  Session(Server& server, tcp::socket socket, Args&&... args)
      : stream_(std::move(socket), std::forward<Args>(args)...),
        server_(server),
        stats_(server.stats()),
        auth_(server.authenticator().new_connection()),
        latency_timer_(stream_.get_executor()) {
    stats_.connections++;
    stats_.connections_open++;
    stats_.max_connections_open = std::max(stats_.max_connections_open, stats_.connections_open);
    boost::system::error_code ec;
    auto ep = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    if (!ec) info_.client_ip = ep.address().to_string();
    info_.tls = !std::is_same_v<Stream, beast::tcp_stream>;
    if (info_.tls) info_.tls_server_end_point = server.tls_server_end_point();
  }
  ~Session() { stats_.connections_open--; }

  void start() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      do_read();
    } else {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(30));
      stream_.async_handshake(net::ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
        if (ec) {
          logger("sim")->debug("TLS handshake with {} failed: {}", self->info_.client_ip, ec.message());
          return;
        }
        if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
          if (X509* cert = SSL_get1_peer_certificate(self->stream_.native_handle())) {
            unsigned char* der = nullptr;
            const int len = i2d_X509(cert, &der);
            if (len > 0)
              self->info_.client_certificate_der.assign(reinterpret_cast<const char*>(der),
                                                        static_cast<std::size_t>(len));
            OPENSSL_free(der);
            X509_free(cert);
          }
        }
        self->do_read();
      });
    }
  }

 private:
  void do_read() {
    parser_.emplace();
    parser_->body_limit(server_.options().max_envelope_bytes);
    parser_->header_limit(64 * 1024);
    beast::get_lowest_layer(stream_).expires_after(server_.options().keep_alive_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      // Like Windows: a request larger than MaxEnvelopeSizekb gets HTTP 413; the unread body forces a close.
      stats_.requests++;
      logger("sim")->info("request from {} exceeds MaxEnvelopeSizekb ({} bytes): 413", info_.client_ip,
                          server_.options().max_envelope_bytes);
      HttpReply reply{413, {}, true};
      return send(std::move(reply), {});
    }
    if (ec) return close();  // peer closed, timeout, or garbage: nothing to answer
    beast::get_lowest_layer(stream_).expires_never();
    HttpRequest& req = parser_->get();
    keep_alive_ = req.keep_alive();
    stats_.requests++;
    std::string target(req.target());
    if (auto q = target.find('?'); q != std::string::npos) target.resize(q);
    if (!iequals_path(target, "/wsman")) return send(HttpReply{404, {}, false}, {});
    if (req.method() != http::verb::post) return send(HttpReply{405, {}, false}, {});
    AuthDecision decision = auth_->authenticate(req, info_);
    if (!decision.authenticated) {
      if (decision.status == 401) stats_.auth_failures++;
      return send(HttpReply{decision.status, {}, false}, decision.headers);
    }
    auth_headers_ = std::move(decision.headers);
    auto body = auth_->unwrap_request(req);
    if (!body) {
      logger("sim")->info("cannot unwrap the request body from {}: {}", info_.client_ip, body.error().message);
      return send(HttpReply{http_status_for(body.error().code), {}, false}, std::exchange(auth_headers_, {}));
    }
    RequestContext ctx;
    ctx.user = decision.user;
    ctx.client_ip = info_.client_ip;
    ctx.tls = info_.tls;
    if (auto host = req.find(http::field::host); host != req.end()) ctx.host_header = std::string(host->value());
    server_.handler().handle(ctx, std::move(body.value()), [self = this->shared_from_this()](HttpReply reply) {
      // The handler may answer later (held Receive); always continue on our executor.
      net::post(self->stream_.get_executor(), [self, reply = std::move(reply)]() mutable {
        self->send(std::move(reply), std::exchange(self->auth_headers_, {}));
      });
    });
  }

  static bool iequals_path(const std::string& a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) return false;
    return true;
  }

  void send(HttpReply reply, const std::vector<std::pair<std::string, std::string>>& headers) {
    response_ = HttpResponse{};
    response_.version(11);
    response_.result(reply.status);
    response_.set(http::field::server, "Microsoft-HTTPAPI/2.0");
    for (const auto& [k, v] : headers) response_.insert(k, v);
    if (!reply.body.empty()) response_.set(http::field::content_type, kSoapContentType);
    response_.body() = std::move(reply.body);
    bool close_after = reply.close_connection || !keep_alive_;
    response_.keep_alive(!close_after);
    response_.prepare_payload();
    // Message encryption replaces body and Content-Type here (and fixes Content-Length itself).
    auth_->wrap_response(response_);
    server_.after_request();
    if (server_.options().latency_ms > 0) {
      latency_timer_.expires_after(std::chrono::milliseconds(server_.options().latency_ms));
      latency_timer_.async_wait([self = this->shared_from_this(), close_after](beast::error_code ec) {
        if (ec) return;
        self->write(close_after);
      });
    } else {
      write(close_after);
    }
  }

  void write(bool close_after) {
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(60));
    http::async_write(stream_, response_,
                      [self = this->shared_from_this(), close_after](beast::error_code ec, std::size_t) {
                        if (ec) return self->close();
                        if (close_after) return self->lingering_close();
                        self->do_read();
                      });
  }

  // Half-close and discard what the peer still sends (e.g. the rest of a 413 body) so the response is not
  // lost to a TCP reset, then close.
  void lingering_close() {
    beast::error_code ec;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_send, ec);
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
    drain();
  }

  void drain() {
    beast::get_lowest_layer(stream_).async_read_some(
        net::buffer(drain_buffer_), [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
          if (ec) return self->close();
          self->drain();
        });
  }

  void close() {
    beast::error_code ec;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(stream_).close();
  }

  Stream stream_;
  Server& server_;
  Stats& stats_;
  std::unique_ptr<ConnectionAuth> auth_;
  ConnectionInfo info_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpResponse response_;
  net::steady_timer latency_timer_;
  bool keep_alive_ = true;
  std::vector<std::pair<std::string, std::string>> auth_headers_;  // from an accepted authentication leg
  std::array<char, 16384> drain_buffer_{};
};

}  // namespace

Server::Server(net::io_context& ioc, ServerOptions options, std::shared_ptr<Authenticator> auth, WsmanHandler& handler,
               Stats& stats)
    : ioc_(ioc),
      options_(std::move(options)),
      auth_(std::move(auth)),
      handler_(handler),
      stats_(stats),
      acceptor_(ioc) {
  status_writer_ = options_.status_writer;
  if (!status_writer_ && !options_.status_file.empty()) {
    auto text = options_.status_text ? options_.status_text : [this] { return stats_.to_json().dump(); };
    status_writer_ =
        std::make_shared<StatusFileWriter>(ioc, options_.status_file, std::move(text), std::chrono::milliseconds(0));
  }
}

Server::~Server() { stop(); }

Result<unsigned short> Server::start() {
  if (!options_.tls_cert.empty() || !options_.tls_key.empty()) {
    tls_context_ = std::make_unique<net::ssl::context>(net::ssl::context::tls_server);
    WINCERT_TRY(tls::configure_server(*tls_context_, options_.tls_cert, options_.tls_key));
    boost::system::error_code ec;
    WINCERT_ASSIGN_OR_RETURN(auto end_point, tls_server_end_point_hash(options_.tls_cert));
    tls_server_end_point_ = std::move(end_point);
    if (!options_.client_ca.empty()) {
      tls_context_->load_verify_file(options_.client_ca, ec);
      if (ec) return Error::invalid_argument("cannot load --client-ca " + options_.client_ca + ": " + ec.message());
      tls_context_->set_verify_mode(net::ssl::verify_peer, ec);  // a certificate, when sent, must chain to it
    } else if (options_.request_client_certificate) {
      tls_context_->set_verify_mode(net::ssl::verify_peer, ec);  // ask for one; the certificate map decides
      tls_context_->set_verify_callback([](bool, net::ssl::verify_context&) { return true; }, ec);
    }
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
  unsigned short port = acceptor_.local_endpoint().port();
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
      socket.set_option(tcp::no_delay(true), ec);
      if (tls_context_)
        std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(*this, std::move(socket), *tls_context_)
            ->start();
      else
        std::make_shared<Session<beast::tcp_stream>>(*this, std::move(socket))->start();
    } else {
      logger("sim")->warn("accept failed: {}", ec.message());
    }
    do_accept();
  });
}

void Server::after_request() {
  if (options_.on_request) options_.on_request();
  if (status_writer_) status_writer_->changed();
}

void Server::write_status_now() {
  if (status_writer_) status_writer_->flush();
}

StatusFileWriter::StatusFileWriter(net::io_context& ioc, std::string path, std::function<std::string()> text,
                                   std::chrono::milliseconds interval)
    : path_(std::move(path)), text_(std::move(text)), interval_(interval), timer_(ioc) {}

void StatusFileWriter::changed() {
  if (interval_.count() <= 0) return write();
  if (pending_) return;  // a write is due: it will carry this change too
  const auto due = last_write_ + interval_;
  if (std::chrono::steady_clock::now() >= due) return write();
  pending_ = true;
  timer_.expires_at(due);
  timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (!self) return;
    self->pending_ = false;
    if (!ec) self->write();
  });
}

void StatusFileWriter::flush() {
  timer_.cancel();
  pending_ = false;
  write();
}

void StatusFileWriter::write() {
  last_write_ = std::chrono::steady_clock::now();
  if (auto st = write_file_atomically(path_, text_() + "\n"); !st) logger("sim")->warn("{}", st.error().message);
}

}  // namespace wincert::sim
