// Helpers for the WinRM client tests: a blocking scripted HTTP(S) server on 127.0.0.1:0 that each
// test programs to misbehave in one way, a self-signed certificate made at test time, SOAP replies,
// and a runner for coroutines.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>

#include "common/encoding.hpp"

namespace wincert::winrm::test {

namespace net = boost::asio;
using tcp = net::ip::tcp;

// Runs a coroutine to completion on a fresh io_context (with a generous safety timeout: a hang is
// a failure, not a stuck test run).
template <typename T>
T run_coro(net::io_context& io, net::awaitable<T> work, std::chrono::seconds limit = std::chrono::seconds(120)) {
  std::optional<T> value;
  auto wrapper = [](net::awaitable<T> inner, std::optional<T>& out) -> net::awaitable<void> {
    out.emplace(co_await std::move(inner));
  };
  std::exception_ptr failure;
  net::co_spawn(io, wrapper(std::move(work), value), [&failure](std::exception_ptr e) { failure = e; });
  io.restart();
  io.run_for(limit);
  if (failure) std::rethrow_exception(failure);
  if (!value) throw std::runtime_error("coroutine did not finish within the test's safety limit");
  return std::move(*value);
}

// One HTTP request as the server saw it.
struct SeenRequest {
  std::string head;  // request line + headers
  std::string body;
  std::string header(const std::string& name) const {
    std::regex re("\r\n" + name + ":[ \t]*([^\r]*)\r\n", std::regex::icase);
    std::smatch m;
    return std::regex_search(head, m, re) ? m[1].str() : std::string();
  }
  std::string message_id() const {
    std::smatch m;
    static const std::regex re("MessageID>([^<]+)<");
    return std::regex_search(body, m, re) ? m[1].str() : std::string();
  }
};

// Reads one request (headers + Content-Length body); nullopt when the peer closed or reset.
template <typename Stream>
std::optional<SeenRequest> read_request(Stream& stream, net::streambuf& buffer) {
  boost::system::error_code ec;
  const std::size_t head_len = net::read_until(stream, buffer, "\r\n\r\n", ec);
  if (ec) return std::nullopt;
  SeenRequest req;
  req.head.assign(net::buffers_begin(buffer.data()), net::buffers_begin(buffer.data()) + head_len);
  buffer.consume(head_len);
  const std::string length_text = req.header("Content-Length");
  const std::size_t length = length_text.empty() ? 0 : std::stoul(length_text);
  if (buffer.size() < length) net::read(stream, buffer, net::transfer_exactly(length - buffer.size()), ec);
  if (ec) return std::nullopt;
  req.body.assign(net::buffers_begin(buffer.data()), net::buffers_begin(buffer.data()) + length);
  buffer.consume(length);
  return req;
}

template <typename Stream>
bool write_all(Stream& stream, std::string_view data) {
  boost::system::error_code ec;
  net::write(stream, net::buffer(data.data(), data.size()), ec);
  return !ec;
}

inline std::string http_response(int status, std::string_view body,
                                 std::string_view content_type = "application/soap+xml;charset=UTF-8",
                                 std::string_view extra_headers = "") {
  std::string reason = status == 200   ? "OK"
                       : status == 500 ? "Internal Server Error"
                       : status == 401 ? "Unauthorized"
                                       : "Status";
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n";
  if (!content_type.empty()) out += "Content-Type: " + std::string(content_type) + "\r\n";
  out += std::string(extra_headers);
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  out += body;
  return out;
}

// A SOAP envelope answering message_id with the given action and body.
inline std::string soap_reply(std::string_view relates_to, std::string_view action, std::string_view body) {
  return std::string(
             R"(<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Header><a:Action>)") +
         std::string(action) + "</a:Action><a:MessageID>uuid:" + random_uuid() + "</a:MessageID><a:RelatesTo>" +
         std::string(relates_to) + "</a:RelatesTo></s:Header><s:Body>" + std::string(body) + "</s:Body></s:Envelope>";
}

inline std::string fault_reply(std::string_view relates_to, unsigned long code, std::string_view subcode,
                               std::string_view text) {
  return std::string(
             R"(<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header><a:Action>http://schemas.dmtf.org/wbem/wsman/1/wsman/fault</a:Action><a:RelatesTo>)") +
         std::string(relates_to) +
         "</a:RelatesTo></s:Header><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>" +
         std::string(subcode) + "</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang=\"en-US\">" +
         std::string(text) +
         "</s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f=\"http://schemas.microsoft.com/wbem/wsman/1/wsmanfault\" "
         "Code=\"" +
         std::to_string(code) + "\" Machine=\"host\"><f:Message>" + std::string(text) +
         "</f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>";
}

// A self-signed certificate (its own CA) written to PEM files in a temp directory.
struct TestCertificate {
  std::filesystem::path dir;
  std::filesystem::path cert_pem;
  std::filesystem::path key_pem;

  // san: e.g. "DNS:localhost,IP:127.0.0.1"
  // expired: valid from two days ago until yesterday.
  static TestCertificate make(const std::string& common_name, const std::string& san, bool expired = false) {
    TestCertificate out;
    out.dir = std::filesystem::temp_directory_path() / ("wincert-client-test-" + random_uuid());
    std::filesystem::create_directories(out.dir);
    out.cert_pem = out.dir / "cert.pem";
    out.key_pem = out.dir / "key.pem";

    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 4242);
    X509_gmtime_adj(X509_getm_notBefore(cert), expired ? -3600L * 48 : -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), expired ? -3600L * 24 : 3600L * 24);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(common_name.c_str()),
                               -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    for (const auto& [nid, value] :
         {std::pair{NID_basic_constraints, std::string("critical,CA:TRUE")}, std::pair{NID_subject_alt_name, san},
          std::pair{NID_key_usage, std::string("digitalSignature,keyCertSign")}}) {
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
      X509_add_ext(cert, ext, -1);
      X509_EXTENSION_free(ext);
    }
    X509_sign(cert, key, EVP_sha256());
    FILE* f = std::fopen(out.cert_pem.string().c_str(), "wb");
    PEM_write_X509(f, cert);
    std::fclose(f);
    f = std::fopen(out.key_pem.string().c_str(), "wb");
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(cert);
    EVP_PKEY_free(key);
    return out;
  }
  void remove() const {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

// A blocking server on 127.0.0.1:0 with its own thread; connections are handled one after another by
// the test's handler (plain TCP, or TLS when a certificate is given).
class ScriptedServer {
 public:
  using PlainHandler = std::function<void(tcp::socket&, int connection_index)>;
  using TlsHandler = std::function<void(net::ssl::stream<tcp::socket>&, int connection_index)>;

  explicit ScriptedServer(PlainHandler handler) : plain_handler_(std::move(handler)) { start(); }
  ScriptedServer(const TestCertificate& cert, TlsHandler handler)
      : tls_context_(std::make_unique<net::ssl::context>(net::ssl::context::tls_server)),
        tls_handler_(std::move(handler)) {
    tls_context_->use_certificate_chain_file(cert.cert_pem.string());
    tls_context_->use_private_key_file(cert.key_pem.string(), net::ssl::context::pem);
    start();
  }
  ~ScriptedServer() {
    stopping_ = true;
    {  // unblock accept()
      boost::system::error_code ec;
      net::io_context io;
      tcp::socket poke(io);
      poke.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_), ec);
    }
    if (thread_.joinable()) thread_.join();
  }
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;

  unsigned short port() const { return port_; }
  std::string url(bool https = false) const {
    return std::string(https ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + "/wsman";
  }
  int connections() const { return connections_.load(); }

 private:
  void start() {
    acceptor_.open(tcp::v4());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { serve(); });
  }
  void serve() {
    for (int index = 0;; ++index) {
      tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (stopping_ || ec) return;
      ++connections_;
      try {
        if (tls_context_) {
          net::ssl::stream<tcp::socket> tls(std::move(socket), *tls_context_);
          tls.handshake(net::ssl::stream_base::server, ec);
          if (!ec) tls_handler_(tls, index);
        } else {
          plain_handler_(socket, index);
        }
      } catch (const std::exception&) {
        // A client that went away mid-scenario is part of several tests.
      }
    }
  }

  net::io_context io_;
  tcp::acceptor acceptor_{io_};
  std::unique_ptr<net::ssl::context> tls_context_;
  PlainHandler plain_handler_;
  TlsHandler tls_handler_;
  std::thread thread_;
  unsigned short port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
};

}  // namespace wincert::winrm::test
