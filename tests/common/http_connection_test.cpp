// HttpConnection against small scripted servers: every failure comes back with the code a caller acts on
// (retry, fix the trust, give up), and the words name the peer the way the caller asked.
#include "common/http_connection.hpp"

#include <gtest/gtest.h>

#include <boost/asio/ssl/context.hpp>

#include "common/tls.hpp"
#include "tests/support/result_matchers.hpp"
#include "tests/winrm/client_test_util.hpp"

namespace wincert::http {
namespace {

using namespace std::chrono_literals;
using winrm::test::ScriptedServer;
using winrm::test::TestCertificate;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// Serves `count` requests per connection with a small 200 reply, then closes.
ScriptedServer::PlainHandler replies(int count, std::string body = "hello") {
  return [count, body](tcp::socket& socket, int) {
    net::streambuf buffer;
    for (int i = 0; i < count; ++i) {
      if (!winrm::test::read_request(socket, buffer)) return;
      winrm::test::write_all(socket, winrm::test::http_response(200, body, "text/plain"));
    }
  };
}

Request get(unsigned short port) {
  Request req{boost::beast::http::verb::get, "/x", 11};
  req.set(boost::beast::http::field::host, "127.0.0.1:" + std::to_string(port));
  req.keep_alive(true);
  req.prepare_payload();
  return req;
}

struct HttpConnectionTest : ::testing::Test {
  net::io_context io;

  Result<std::unique_ptr<HttpConnection>> open(unsigned short port, net::ssl::context* tls = nullptr,
                                               ConnectOptions options = {}) {
    options.connect_timeout = 5s;
    options.tls_handshake_timeout = 5s;
    return winrm::test::run_coro(io, HttpConnection::open(io.get_executor(), tls, "127.0.0.1", port, options));
  }
  ExchangeOutcome exchange(HttpConnection& conn, unsigned short port, ExchangeLimits limits = {}) {
    auto req = get(port);
    return winrm::test::run_coro(io, conn.exchange(req, limits, "Get"));
  }
};

TEST_F(HttpConnectionTest, ExchangesAndReusesTheConnection) {
  ScriptedServer server(replies(2));
  auto conn = open(server.port());
  ASSERT_THAT(conn, IsOk());
  EXPECT_EQ((*conn)->where(), "127.0.0.1:" + std::to_string(server.port()));
  auto first = exchange(**conn, server.port());
  ASSERT_THAT(first.response, IsOk());
  EXPECT_EQ(first.response->result_int(), 200u);
  EXPECT_EQ(first.response->body(), "hello");
  EXPECT_TRUE((*conn)->reused());
  auto second = exchange(**conn, server.port());
  ASSERT_THAT(second.response, IsOk());
  EXPECT_EQ(server.connections(), 1);
}

TEST_F(HttpConnectionTest, RefusedConnectionIsUnavailableAndSaysWhoShouldListen) {
  unsigned short port = 0;
  {
    net::io_context probe;
    tcp::acceptor acceptor(probe, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    port = acceptor.local_endpoint().port();
  }
  ConnectOptions options;
  options.words.listener = "WinRM";
  auto conn = open(port, nullptr, options);
  EXPECT_THAT(conn, HasCode(ErrorCode::kUnavailable));
  EXPECT_THAT(conn, IsRetryable());
  // The advice is the behaviour here: a person reads it to know what to check.
  EXPECT_NE(conn.error().message.find("is WinRM listening on port " + std::to_string(port)), std::string::npos)
      << conn.error().message;
}

TEST_F(HttpConnectionTest, ServerClosingAnIdleConnectionMarksTheResendSafe) {
  ScriptedServer server(replies(1));  // answers once, then closes
  auto conn = open(server.port());
  ASSERT_THAT(conn, IsOk());
  ASSERT_THAT(exchange(**conn, server.port()).response, IsOk());
  std::this_thread::sleep_for(50ms);
  auto stale = exchange(**conn, server.port());
  EXPECT_THAT(stale.response, HasCode(ErrorCode::kUnavailable));
  EXPECT_TRUE(stale.stale);
  EXPECT_FALSE((*conn)->is_open());
}

TEST_F(HttpConnectionTest, FirstRequestDroppedIsNotAStaleResend) {
  ScriptedServer server(replies(0));  // closes without answering
  auto conn = open(server.port());
  ASSERT_THAT(conn, IsOk());
  auto dropped = exchange(**conn, server.port());
  EXPECT_THAT(dropped.response, HasCode(ErrorCode::kUnavailable));
  EXPECT_FALSE(dropped.stale);  // a fresh connection: the server saw the request, a resend is the caller's call
}

TEST_F(HttpConnectionTest, ResponseOverTheBodyLimitIsInvalidArgument) {
  ScriptedServer server(replies(1, std::string(4096, 'x')));
  auto conn = open(server.port());
  ASSERT_THAT(conn, IsOk());
  ExchangeLimits limits;
  limits.max_response_body = 1024;
  auto big = exchange(**conn, server.port(), limits);
  EXPECT_THAT(big.response, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_FALSE(big.response.error().retryable());
}

TEST_F(HttpConnectionTest, SilentServerIsDeadlineExceeded) {
  std::atomic<bool> release{false};
  ScriptedServer server([&](tcp::socket& socket, int) {
    net::streambuf buffer;
    winrm::test::read_request(socket, buffer);
    while (!release) std::this_thread::sleep_for(10ms);
  });
  auto conn = open(server.port());
  ASSERT_THAT(conn, IsOk());
  ExchangeLimits limits;
  limits.read_timeout = 300ms;
  auto silent = exchange(**conn, server.port(), limits);
  release = true;
  EXPECT_THAT(silent.response, HasCode(ErrorCode::kDeadlineExceeded));
  EXPECT_THAT(silent.response, IsRetryable());
}

TEST_F(HttpConnectionTest, OneDeadlineForTheWholeExchangeWhenReadTimeoutIsZero) {
  std::atomic<bool> release{false};
  ScriptedServer server([&](tcp::socket& socket, int) {
    net::streambuf buffer;
    winrm::test::read_request(socket, buffer);
    while (!release) std::this_thread::sleep_for(10ms);
  });
  auto conn = open(server.port());
  ASSERT_THAT(conn, IsOk());
  ExchangeLimits limits;
  limits.write_timeout = 300ms;
  limits.read_timeout = 0ms;
  auto silent = exchange(**conn, server.port(), limits);
  release = true;
  EXPECT_THAT(silent.response, HasCode(ErrorCode::kDeadlineExceeded));
}

struct TlsTest : HttpConnectionTest {
  net::ssl::context client{net::ssl::context::tls_client};
  void trust(const TestCertificate& cert) {
    tls::ClientSettings settings;
    settings.ca_file = cert.cert_pem.string();
    ASSERT_THAT(tls::configure_client(client, settings), IsOk());
  }
  static ScriptedServer::TlsHandler tls_replies() {
    return [](net::ssl::stream<tcp::socket>& stream, int) {
      net::streambuf buffer;
      if (!winrm::test::read_request(stream, buffer)) return;
      winrm::test::write_all(stream, winrm::test::http_response(200, "secure", "text/plain"));
    };
  }
};

TEST_F(TlsTest, TrustedCertificateForTheIpConnectsAndKeepsThePeerCertificate) {
  auto cert = TestCertificate::make("winrm-host", "IP:127.0.0.1");
  trust(cert);
  ScriptedServer server(cert, tls_replies());
  auto conn = open(server.port(), &client);
  ASSERT_THAT(conn, IsOk());
  EXPECT_FALSE((*conn)->peer_certificate_der().empty());
  auto reply = exchange(**conn, server.port());
  ASSERT_THAT(reply.response, IsOk());
  EXPECT_EQ(reply.response->body(), "secure");
  cert.remove();
}

// Contexts that trust the system's CAs share one store (loaded once per process); one given its own CA file
// has a store of its own, and a certificate the system does not trust is still refused.
TEST_F(TlsTest, ContextsTrustingTheSystemShareOneStoreAndStillRefuseOthers) {
  net::ssl::context first{net::ssl::context::tls_client};
  net::ssl::context second{net::ssl::context::tls_client};
  ASSERT_THAT(tls::configure_client(first, tls::ClientSettings{}), IsOk());
  ASSERT_THAT(tls::configure_client(second, tls::ClientSettings{}), IsOk());
  EXPECT_EQ(SSL_CTX_get_cert_store(first.native_handle()), SSL_CTX_get_cert_store(second.native_handle()));
  auto cert = TestCertificate::make("winrm-host", "IP:127.0.0.1");
  trust(cert);
  EXPECT_NE(SSL_CTX_get_cert_store(client.native_handle()), SSL_CTX_get_cert_store(first.native_handle()));
  ScriptedServer server(cert, tls_replies());
  auto refused = open(server.port(), &first);
  EXPECT_THAT(refused, HasCode(ErrorCode::kUnauthenticated));
  auto trusted = open(server.port(), &client);
  EXPECT_THAT(trusted, IsOk());
  cert.remove();
}

TEST_F(TlsTest, UntrustedCertificateIsUnauthenticatedWithTheOpenSslReason) {
  auto cert = TestCertificate::make("winrm-host", "IP:127.0.0.1");
  auto other = TestCertificate::make("another-ca", "IP:127.0.0.1");
  trust(other);
  ScriptedServer server(cert, tls_replies());
  ConnectOptions options;
  options.words.noun = "host";
  options.words.trust_hint = "use --ca-file with the CA that issued it";
  auto conn = open(server.port(), &client, options);
  EXPECT_THAT(conn, ErrorWith(ErrorCode::kUnauthenticated,
                              SystemStatus(SystemStatusKind::kOpenSsl,
                                           static_cast<std::uint32_t>(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT))));
  EXPECT_FALSE(conn.error().retryable());
  EXPECT_NE(
      conn.error().message.find("TLS certificate of host 127.0.0.1:" + std::to_string(server.port()) + " not trusted"),
      std::string::npos)
      << conn.error().message;
  EXPECT_NE(conn.error().message.find("use --ca-file"), std::string::npos) << conn.error().message;
  cert.remove();
  other.remove();
}

TEST_F(TlsTest, CertificateForAnotherNameIsUnauthenticated) {
  auto cert = TestCertificate::make("elsewhere", "DNS:elsewhere.example.com");
  trust(cert);
  ScriptedServer server(cert, tls_replies());
  auto conn = open(server.port(), &client);
  EXPECT_THAT(conn, ErrorWith(ErrorCode::kUnauthenticated,
                              SystemStatus(SystemStatusKind::kOpenSsl,
                                           static_cast<std::uint32_t>(X509_V_ERR_IP_ADDRESS_MISMATCH))));
  cert.remove();
}

TEST_F(TlsTest, ExpiredCertificateSaysRenew) {
  auto cert = TestCertificate::make("winrm-host", "IP:127.0.0.1", /*expired=*/true);
  trust(cert);
  ScriptedServer server(cert, tls_replies());
  ConnectOptions options;
  options.words.expired_hint = "renew the host's WinRM HTTPS certificate";
  auto conn = open(server.port(), &client, options);
  EXPECT_THAT(conn, ErrorWith(ErrorCode::kUnauthenticated,
                              SystemStatus(SystemStatusKind::kOpenSsl,
                                           static_cast<std::uint32_t>(X509_V_ERR_CERT_HAS_EXPIRED))));
  EXPECT_NE(conn.error().message.find("renew the host's WinRM HTTPS certificate"), std::string::npos);
  cert.remove();
}

TEST(HttpStatusCodes, UnexpectedStatusesMapToCodes) {
  EXPECT_EQ(code_for_status(401), ErrorCode::kUnauthenticated);
  EXPECT_EQ(code_for_status(403), ErrorCode::kPermissionDenied);
  EXPECT_EQ(code_for_status(404), ErrorCode::kNotFound);
  EXPECT_EQ(code_for_status(408), ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(code_for_status(504), ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(code_for_status(429), ErrorCode::kResourceExhausted);
  EXPECT_EQ(code_for_status(502), ErrorCode::kUnavailable);
  EXPECT_EQ(code_for_status(503), ErrorCode::kUnavailable);
  EXPECT_EQ(code_for_status(418), ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(is_transient(code_for_status(503)));
  EXPECT_FALSE(is_transient(code_for_status(401)));
}

TEST(HttpAddressing, IpLiteralsAndAuthorities) {
  EXPECT_TRUE(is_ip_literal("127.0.0.1"));
  EXPECT_TRUE(is_ip_literal("::1"));
  EXPECT_FALSE(is_ip_literal("winrm.example.com"));
  EXPECT_FALSE(is_ip_literal("127.0.0.1.example.com"));
  EXPECT_EQ(authority_of("::1", 5986), "[::1]:5986");
  EXPECT_EQ(authority_of("h1", 5985), "h1:5985");
}

}  // namespace
}  // namespace wincert::http
