// WsmanTransport against small misbehaving servers: every failure is a clear Error, never a crash or hang.
#include <gtest/gtest.h>

#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <thread>

#include "client_test_util.hpp"
#include "tests/support/result_matchers.hpp"
#include "winrm/transport.hpp"

namespace wincert::winrm {
namespace {

using namespace std::chrono_literals;
using test::ScriptedServer;
using test::SeenRequest;
using tcp = boost::asio::ip::tcp;
namespace net = boost::asio;

constexpr std::string_view kGetResponse = "http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse";

Envelope sample_envelope(const std::string& url) {
  RequestContext ctx;
  ctx.to = url;
  return build_config_get(ctx);
}

std::string ok_body(const SeenRequest& req) { return test::soap_reply(req.message_id(), kGetResponse, "<x/>"); }

// Serves `count` well-formed replies per connection (forever when count < 0).
ScriptedServer::PlainHandler echo_handler(int count = -1, std::string extra_headers = "") {
  return [count, extra_headers](tcp::socket& socket, int) {
    net::streambuf buffer;
    for (int i = 0; count < 0 || i < count; ++i) {
      auto req = test::read_request(socket, buffer);
      if (!req) return;
      test::write_all(socket,
                      test::http_response(200, ok_body(*req), "application/soap+xml;charset=UTF-8", extra_headers));
    }
  };
}

struct Fixture : ::testing::Test {
  net::io_context io;

  std::unique_ptr<WsmanTransport> make(const std::string& url, TransportOptions options = {},
                                       std::unique_ptr<HttpAuth> auth = nullptr) {
    auto endpoint = parse_endpoint(url);
    EXPECT_TRUE(endpoint.ok());
    auto transport = WsmanTransport::create(io.get_executor(), *endpoint, std::move(auth), options);
    EXPECT_TRUE(transport.ok()) << transport.error().message;
    return std::move(*transport);
  }
  Result<WsmanReply> request(WsmanTransport& transport) {
    const auto envelope = sample_envelope(transport.endpoint().url());
    return test::run_coro(io, transport.request(envelope, "Get"));
  }
};

std::string error_of(const Result<WsmanReply>& r) { return r.ok() ? std::string("<ok>") : r.error().message; }

TEST_F(Fixture, WellFormedReplySucceeds) {
  ScriptedServer server(echo_handler());
  auto transport = make(server.url());
  auto reply = request(*transport);
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ(reply->http_status, 200u);
  EXPECT_EQ(reply->soap.action, kGetResponse);
  EXPECT_FALSE(reply->soap.fault.has_value());
}

TEST_F(Fixture, SendsWsmanHeaders) {
  std::optional<SeenRequest> seen;
  ScriptedServer server([&](tcp::socket& socket, int) {
    net::streambuf buffer;
    seen = test::read_request(socket, buffer);
    if (seen) test::write_all(socket, test::http_response(200, ok_body(*seen)));
  });
  auto transport = make(server.url());
  ASSERT_TRUE(request(*transport).ok());
  ASSERT_TRUE(seen.has_value());
  EXPECT_TRUE(seen->head.starts_with("POST /wsman HTTP/1.1\r\n"));
  EXPECT_EQ(seen->header("Content-Type"), "application/soap+xml;charset=UTF-8");
  EXPECT_EQ(seen->header("Accept-Encoding"), "identity");
  EXPECT_FALSE(seen->header("User-Agent").empty());
  EXPECT_EQ(seen->header("Host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_TRUE(seen->header("Authorization").empty());
}

TEST_F(Fixture, MalformedXmlIsAnError) {
  ScriptedServer server([](tcp::socket& socket, int) {
    net::streambuf buffer;
    if (test::read_request(socket, buffer)) test::write_all(socket, test::http_response(200, "<s:Envelope><unclosed"));
  });
  auto transport = make(server.url());
  auto reply = request(*transport);
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(error_of(reply).find("127.0.0.1:" + std::to_string(server.port())), std::string::npos) << error_of(reply);
  EXPECT_THAT(reply, HasCode(ErrorCode::kInvalidArgument));
}

TEST_F(Fixture, TruncatedBodyIsAnError) {
  ScriptedServer server([](tcp::socket& socket, int) {
    net::streambuf buffer;
    if (!test::read_request(socket, buffer)) return;
    test::write_all(socket,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nContent-Length: 1000\r\n\r\n<s:Env");
    socket.shutdown(tcp::socket::shutdown_both);
    socket.close();
  });
  auto transport = make(server.url());
  auto reply = request(*transport);
  ASSERT_FALSE(reply.ok());
  EXPECT_THAT(reply, HasCode(ErrorCode::kUnavailable));
  EXPECT_EQ(server.connections(), 1);  // a half-delivered response is not retried
}

TEST_F(Fixture, HugeBodyIsRejectedByTheSizeLimit) {
  std::atomic<std::size_t> written{0};
  ScriptedServer server([&](tcp::socket& socket, int) {
    net::streambuf buffer;
    if (!test::read_request(socket, buffer)) return;
    const std::size_t total = 50u * 1024 * 1024;
    if (!test::write_all(socket, "HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nContent-Length: " +
                                     std::to_string(total) + "\r\n\r\n")) {
      return;
    }
    const std::string chunk(64 * 1024, 'A');
    while (written < total && test::write_all(socket, chunk)) written += chunk.size();
  });
  auto transport = make(server.url());
  auto reply = request(*transport);
  ASSERT_FALSE(reply.ok());
  // A peer over a size limit is malformed input, not a transient shortage: retrying would not help.
  EXPECT_THAT(reply, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(error_of(reply).find("larger than the limit of 32 MiB"), std::string::npos) << error_of(reply);
  // The Content-Length alone decided it: nothing of the body was accepted.
  EXPECT_EQ(transport->counters().bytes_received, 0u);
}

TEST_F(Fixture, ChunkedBodyOverTheLimitStopsAtTheLimit) {
  ScriptedServer server([&](tcp::socket& socket, int) {
    net::streambuf buffer;
    if (!test::read_request(socket, buffer)) return;
    if (!test::write_all(socket,
                         "HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nTransfer-Encoding: chunked\r\n\r\n"))
      return;
    const std::string data(64 * 1024, 'B');
    char size_line[32];
    std::snprintf(size_line, sizeof size_line, "%zx\r\n", data.size());
    for (int i = 0; i < 200; ++i) {  // 12.5 MiB offered against a 1 MiB limit
      if (!test::write_all(socket, std::string(size_line) + data + "\r\n")) return;
    }
    test::write_all(socket, "0\r\n\r\n");
  });
  TransportOptions options;
  options.exchange.max_response_body = 1024 * 1024;
  auto transport = make(server.url(), options);
  auto reply = request(*transport);
  ASSERT_FALSE(reply.ok());
  EXPECT_THAT(reply, HasCode(ErrorCode::kInvalidArgument));
}

TEST_F(Fixture, WrongRelatesToIsAnError) {
  ScriptedServer server([](tcp::socket& socket, int) {
    net::streambuf buffer;
    if (auto req = test::read_request(socket, buffer)) {
      test::write_all(socket, test::http_response(200, test::soap_reply("uuid:" + random_uuid(), kGetResponse, "")));
    }
  });
  auto transport = make(server.url());
  auto reply = request(*transport);
  ASSERT_FALSE(reply.ok());
  EXPECT_THAT(reply, HasCode(ErrorCode::kInvalidArgument));
}

TEST_F(Fixture, DtdWithEntitiesIsRefused) {
  ScriptedServer server([](tcp::socket& socket, int) {
    net::streambuf buffer;
    if (auto req = test::read_request(socket, buffer)) {
      const std::string body =
          "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 "
          "\"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>" +
          test::soap_reply(req->message_id(), kGetResponse, "<x>&lol2;</x>");
      test::write_all(socket, test::http_response(200, body));
    }
  });
  auto transport = make(server.url());
  auto reply = request(*transport);
  ASSERT_FALSE(reply.ok());
  EXPECT_THAT(reply, HasCode(ErrorCode::kInvalidArgument));
}

TEST_F(Fixture, ConnectionResetMidResponseIsAnError) {
  ScriptedServer server([](tcp::socket& socket, int) {
    net::streambuf buffer;
    if (!test::read_request(socket, buffer)) return;
    test::write_all(socket, "HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nContent-Len");
    socket.set_option(net::socket_base::linger(true, 0));  // close() now sends RST
    socket.close();
  });
  auto transport = make(server.url());
  auto reply = request(*transport);
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(error_of(reply).find("127.0.0.1:" + std::to_string(server.port())), std::string::npos) << error_of(reply);
  EXPECT_THAT(reply, HasCode(ErrorCode::kUnavailable));
  EXPECT_EQ(server.connections(), 1);  // bytes of a response had arrived: not a stale connection, no retry
}

TEST_F(Fixture, NoResponseTimesOut) {
  std::atomic<bool> release{false};
  ScriptedServer server([&](tcp::socket& socket, int) {
    net::streambuf buffer;
    test::read_request(socket, buffer);
    for (int i = 0; i < 600 && !release; ++i) std::this_thread::sleep_for(50ms);  // say nothing
  });
  TransportOptions options;
  options.exchange.read_timeout = 1s;
  auto transport = make(server.url(), options);
  const auto start = std::chrono::steady_clock::now();
  auto reply = request(*transport);
  release = true;
  ASSERT_FALSE(reply.ok());
  EXPECT_THAT(reply, HasCode(ErrorCode::kDeadlineExceeded));
  EXPECT_THAT(reply, IsRetryable());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 30s);  // generous: only "no hang" matters
}

TEST_F(Fixture, ConnectionRefusedSaysWhere) {
  unsigned short port = 0;
  {
    net::io_context tmp;
    tcp::acceptor acceptor(tmp, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    port = acceptor.local_endpoint().port();
  }  // closed: nothing listens there now
  auto transport = make("http://127.0.0.1:" + std::to_string(port) + "/wsman");
  auto reply = request(*transport);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(error_of(reply), "connection refused by 127.0.0.1:" + std::to_string(port) +
                                 ": is WinRM listening on port " + std::to_string(port) + "?");
  EXPECT_THAT(reply, HasCode(ErrorCode::kUnavailable));
  EXPECT_THAT(reply, IsRetryable());
}

TEST_F(Fixture, Http500WithHtmlIsAnErrorWithStatus) {
  ScriptedServer server([](tcp::socket& socket, int) {
    net::streambuf buffer;
    if (test::read_request(socket, buffer)) {
      test::write_all(socket, test::http_response(500, "<html><body><h1>Server Error</h1></body></html>", "text/html"));
    }
  });
  auto transport = make(server.url());
  auto reply = request(*transport);
  ASSERT_FALSE(reply.ok());
  EXPECT_THAT(reply, ErrorWith(ErrorCode::kUnavailable, HttpStatus(500)));
  // What the server said is quoted for the person reading the error.
  EXPECT_NE(error_of(reply).find("text/html"), std::string::npos) << error_of(reply);
  EXPECT_NE(error_of(reply).find("Server Error"), std::string::npos) << error_of(reply);
}

// HTTP statuses WinRM does not answer with in the normal course: each one's code, and the status as detail.
TEST_F(Fixture, HttpStatusesMapToCodes) {
  struct Case {
    unsigned status;
    ErrorCode code;
  };
  for (const Case c :
       {Case{503, ErrorCode::kUnavailable}, Case{502, ErrorCode::kUnavailable}, Case{403, ErrorCode::kPermissionDenied},
        Case{404, ErrorCode::kNotFound}, Case{413, ErrorCode::kInvalidArgument},
        Case{504, ErrorCode::kDeadlineExceeded}, Case{418, ErrorCode::kFailedPrecondition}}) {
    ScriptedServer server([&](tcp::socket& socket, int) {
      net::streambuf buffer;
      if (test::read_request(socket, buffer))
        test::write_all(socket, test::http_response(c.status, "nope", "text/plain"));
    });
    auto transport = make(server.url());
    auto reply = request(*transport);
    EXPECT_THAT(reply, ErrorWith(c.code, HttpStatus(static_cast<int>(c.status)))) << c.status;
  }
}

TEST_F(Fixture, Http503IsRetryable) {
  ScriptedServer server([](tcp::socket& socket, int) {
    net::streambuf buffer;
    if (test::read_request(socket, buffer)) test::write_all(socket, test::http_response(503, "", "text/plain"));
  });
  auto transport = make(server.url());
  auto reply = request(*transport);
  EXPECT_THAT(reply, ErrorWith(ErrorCode::kUnavailable, HttpStatus(503)));
  EXPECT_THAT(reply, IsRetryable());
}

TEST_F(Fixture, Http500WithSoapFaultComesBackAsFault) {
  ScriptedServer server([](tcp::socket& socket, int) {
    net::streambuf buffer;
    if (auto req = test::read_request(socket, buffer)) {
      test::write_all(socket, test::http_response(500, test::fault_reply(req->message_id(), 2150858793UL, "w:TimedOut",
                                                                         "operation timeout")));
    }
  });
  auto transport = make(server.url());
  auto reply = request(*transport);
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ(reply->http_status, 500u);
  ASSERT_TRUE(reply->soap.fault.has_value());
  EXPECT_TRUE(reply->soap.fault->is_operation_timeout());
}

TEST_F(Fixture, Http401IsAuthenticationFailureWithoutPassword) {
  std::string authorization;
  ScriptedServer server([&](tcp::socket& socket, int) {
    net::streambuf buffer;
    if (auto req = test::read_request(socket, buffer)) {
      authorization = req->header("Authorization");
      test::write_all(socket, test::http_response(401, "", "", "WWW-Authenticate: Basic realm=\"WSMAN\"\r\n"));
    }
  });
  auto transport = make(server.url(), {}, std::make_unique<BasicAuth>("alice", Secret("s3cr3t-Pa55"), true));
  auto reply = request(*transport);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(authorization, "Basic " + base64_encode(std::string_view("alice:s3cr3t-Pa55")));
  EXPECT_NE(error_of(reply).find("authentication failed for alice at 127.0.0.1:" + std::to_string(server.port())),
            std::string::npos)
      << error_of(reply);
  EXPECT_EQ(error_of(reply).find("s3cr3t"), std::string::npos);
  EXPECT_THAT(reply, ErrorWith(ErrorCode::kUnauthenticated, HttpStatus(401)));
  EXPECT_FALSE(reply.error().retryable());
}

TEST_F(Fixture, Http401WithoutAuthIsUnauthenticated) {
  ScriptedServer server([&](tcp::socket& socket, int) {
    net::streambuf buffer;
    if (test::read_request(socket, buffer)) {
      test::write_all(socket, test::http_response(401, "", "", "WWW-Authenticate: Negotiate\r\n"));
    }
  });
  auto transport = make(server.url());
  auto reply = request(*transport);
  EXPECT_THAT(reply, ErrorWith(ErrorCode::kUnauthenticated, HttpStatus(401)));
}

TEST_F(Fixture, BasicOverHttpIsRefusedBeforeConnecting) {
  ScriptedServer server(echo_handler());
  auto transport = make(server.url(), {}, std::make_unique<BasicAuth>("alice", Secret("pw"), false));
  auto reply = request(*transport);
  ASSERT_FALSE(reply.ok());
  EXPECT_THAT(reply, HasCode(ErrorCode::kFailedPrecondition));
  EXPECT_EQ(transport->counters().connections_opened, 0u);
  EXPECT_EQ(transport->counters().http_requests, 0u);
}

TEST_F(Fixture, BasicOverHttpWithAllowUnencryptedSendsCredentials) {
  std::string authorization;
  ScriptedServer server([&](tcp::socket& socket, int) {
    net::streambuf buffer;
    if (auto req = test::read_request(socket, buffer)) {
      authorization = req->header("Authorization");
      test::write_all(socket, test::http_response(200, ok_body(*req)));
    }
  });
  auto transport = make(server.url(), {}, std::make_unique<BasicAuth>("bob", Secret("pw:with:colons"), true));
  ASSERT_TRUE(request(*transport).ok());
  EXPECT_EQ(authorization, "Basic " + base64_encode(std::string_view("bob:pw:with:colons")));
}

TEST_F(Fixture, KeepAliveReusesOneConnection) {
  ScriptedServer server(echo_handler());
  auto transport = make(server.url());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(request(*transport).ok()) << i;
  EXPECT_EQ(transport->counters().connections_opened, 1u);
  EXPECT_EQ(transport->counters().http_requests, 5u);
  EXPECT_EQ(server.connections(), 1);
}

TEST_F(Fixture, ReconnectsTransparentlyAfterServerClosesIdleConnection) {
  // Each connection answers one request and is then closed by the server without notice
  // (no "Connection: close"), as Windows does with idle keep-alive connections.
  ScriptedServer server(echo_handler(1));
  auto transport = make(server.url());
  for (int i = 0; i < 3; ++i) {
    auto reply = request(*transport);
    ASSERT_TRUE(reply.ok()) << i << ": " << reply.error().message;
  }
  EXPECT_EQ(transport->counters().connections_opened, 3u);
}

TEST_F(Fixture, HonoursConnectionClose) {
  ScriptedServer server(echo_handler(1, "Connection: close\r\n"));
  auto transport = make(server.url());
  ASSERT_TRUE(request(*transport).ok());
  ASSERT_TRUE(request(*transport).ok());
  EXPECT_EQ(transport->counters().connections_opened, 2u);
  // The second request went out on a fresh connection: no failed write on a closed one.
  EXPECT_EQ(transport->counters().http_requests, 2u);
}

TEST_F(Fixture, ReconnectsOnlyOnce) {
  // First connection works; every later connection is closed right after the request arrives.
  ScriptedServer server([](tcp::socket& socket, int index) {
    net::streambuf buffer;
    auto req = test::read_request(socket, buffer);
    if (req && index == 0) {
      test::write_all(socket, test::http_response(200, ok_body(*req)));
      test::read_request(socket, buffer);  // the next request on this connection gets no answer
    }
  });
  auto transport = make(server.url());
  ASSERT_TRUE(request(*transport).ok());
  auto reply = request(*transport);
  ASSERT_FALSE(reply.ok());
  EXPECT_THAT(reply, HasCode(ErrorCode::kUnavailable));
  EXPECT_NE(error_of(reply).find("connection closed by 127.0.0.1"), std::string::npos) << error_of(reply);
  EXPECT_EQ(server.connections(), 2);  // the original + exactly one reconnect
}

TEST_F(Fixture, ConcurrentCallersAreSerialisedOnOneConnection) {
  std::atomic<int> in_flight{0};
  std::atomic<int> max_in_flight{0};
  ScriptedServer server([&](tcp::socket& socket, int) {
    net::streambuf buffer;
    while (auto req = test::read_request(socket, buffer)) {
      max_in_flight = std::max(max_in_flight.load(), ++in_flight);
      std::this_thread::sleep_for(5ms);
      --in_flight;
      if (!test::write_all(socket, test::http_response(200, ok_body(*req)))) return;
    }
  });
  auto transport = make(server.url());
  int succeeded = 0;
  auto one = [&]() -> net::awaitable<void> {
    auto envelope = sample_envelope(transport->endpoint().url());
    auto reply = co_await transport->request(envelope, "Get");
    if (reply.ok()) ++succeeded;
  };
  for (int i = 0; i < 8; ++i) net::co_spawn(io, one(), [](std::exception_ptr) {});
  io.run_for(60s);
  EXPECT_EQ(succeeded, 8);
  EXPECT_EQ(transport->counters().connections_opened, 1u);
  EXPECT_EQ(max_in_flight.load(), 1);
}

// A stand-in for NTLM/Kerberos with message encryption: two legs, then "sealed" bodies.
class FakeSealingAuth final : public HttpAuth {
 public:
  std::string scheme() const override { return "Fake"; }
  std::string principal() const override { return "fake-user"; }
  Status check_transport(const ConnectionInfo&) const override { return {}; }
  Status reset(const ConnectionInfo&) override {
    leg_ = 0;
    ++resets;
    return {};
  }
  Result<std::optional<std::string>> authorization() override {
    if (leg_ >= 2) return std::optional<std::string>();
    return std::optional<std::string>("Fake leg" + std::to_string(leg_ + 1));
  }
  Result<ChallengeOutcome> on_challenge(const std::vector<std::string>& values) override {
    if (values.empty()) return ChallengeOutcome::kFailed;
    leg_ = values.front() == "Fake restart" ? 0 : leg_ + 1;
    return ChallengeOutcome::kContinue;
  }
  Status on_response(const std::vector<std::string>&) override {
    if (leg_ < 2) leg_ = 2;
    return {};
  }
  bool encrypts() const override { return true; }
  Result<HttpBody> wrap(std::string_view soap) override {
    return HttpBody{"SEALED:" + std::string(soap),
                    "multipart/encrypted;protocol=\"fake\";boundary=\"Encrypted Boundary\""};
  }
  Result<std::string> unwrap(std::string_view body, std::string_view) override {
    if (!body.starts_with("SEALED:")) return Error::invalid_argument("not sealed");
    return std::string(body.substr(7));
  }
  int resets = 0;

 private:
  int leg_ = 0;
};

TEST_F(Fixture, EncryptingAuthHandshakesWithEmptyBodiesThenSeals) {
  std::vector<SeenRequest> seen;
  bool lose_context_once = true;
  ScriptedServer server([&](tcp::socket& socket, int) {
    net::streambuf buffer;
    while (auto req = test::read_request(socket, buffer)) {
      seen.push_back(*req);
      const std::string authz = req->header("Authorization");
      std::string response;
      if (authz == "Fake leg1") {
        response = test::http_response(401, "", "", "WWW-Authenticate: Fake challenge\r\n");
      } else if (authz == "Fake leg2") {
        response = test::http_response(200, "", "");
      } else if (req->body.starts_with("SEALED:") && seen.size() == 4 && lose_context_once) {
        lose_context_once = false;  // the host forgot the context: 401, start over
        response = test::http_response(401, "", "", "WWW-Authenticate: Fake restart\r\n");
      } else if (req->body.starts_with("SEALED:")) {
        std::smatch m;
        const std::string inner = req->body.substr(7);
        std::regex_search(inner, m, std::regex("MessageID>([^<]+)<"));
        response = test::http_response(200, "SEALED:" + test::soap_reply(m[1].str(), kGetResponse, "<x/>"),
                                       "multipart/encrypted;protocol=\"fake\"");
      } else {
        response = test::http_response(400, "plaintext refused", "text/plain");
      }
      if (!test::write_all(socket, response)) return;
    }
  });
  auto auth = std::make_unique<FakeSealingAuth>();
  auto* auth_view = auth.get();
  auto transport = make(server.url(), {}, std::move(auth));
  auto reply = request(*transport);
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_TRUE(seen[0].body.empty());
  EXPECT_TRUE(seen[1].body.empty());
  EXPECT_TRUE(seen[2].body.starts_with("SEALED:<"));
  EXPECT_TRUE(seen[2].header("Content-Type").starts_with("multipart/encrypted"));
  EXPECT_TRUE(seen[2].header("Authorization").empty());
  // Next request: the host answers 401 (context lost); the transport re-runs the handshake once.
  reply = request(*transport);
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  ASSERT_EQ(seen.size(), 7u);
  EXPECT_TRUE(seen[4].body.empty());
  EXPECT_EQ(seen[4].header("Authorization"), "Fake leg1");
  EXPECT_TRUE(seen[6].body.starts_with("SEALED:<"));
  EXPECT_EQ(transport->counters().connections_opened, 1u);
  EXPECT_EQ(auth_view->resets, 1);
}

// Issue 12: with message encryption on, an on-path attacker replaced the sealed answer with a clear SOAP
// fault (it even echoed our MessageID, which travels in the request it could not read... or could guess).
// The clear answer is refused and its text never reaches the error (and so never the job result).
TEST_F(Fixture, EncryptingAuthRefusesAClearAnswerAndDropsItsText) {
  for (const unsigned status : {500u, 200u, 400u}) {
    ScriptedServer server([&](tcp::socket& socket, int) {
      net::streambuf buffer;
      while (auto req = test::read_request(socket, buffer)) {
        std::string response;
        if (req->header("Authorization") == "Fake leg1") {
          response = test::http_response(401, "", "", "WWW-Authenticate: Fake challenge\r\n");
        } else if (req->header("Authorization") == "Fake leg2") {
          response = test::http_response(200, "", "");
        } else {
          std::smatch m;
          const std::string inner = req->body.substr(7);
          std::regex_search(inner, m, std::regex("MessageID>([^<]+)<"));
          response = test::http_response(
              status, test::fault_reply(m[1].str(), 2150858778UL, "w:InternalError", "INJECTED: call +1-555-0100"),
              "application/soap+xml;charset=UTF-8");
        }
        if (!test::write_all(socket, response)) return;
      }
    });
    auto transport = make(server.url(), {}, std::make_unique<FakeSealingAuth>());
    auto reply = request(*transport);
    ASSERT_FALSE(reply.ok()) << status;
    EXPECT_THAT(reply, HasCode(ErrorCode::kUnauthenticated)) << status;
    EXPECT_EQ(error_of(reply).find("INJECTED"), std::string::npos) << error_of(reply);
    EXPECT_EQ(error_of(reply).find("555-0100"), std::string::npos) << error_of(reply);
  }
}

// A fault without RelatesTo (however it arrived) is not the host's answer to our request.
TEST_F(Fixture, FaultWithoutRelatesToIsRefused) {
  ScriptedServer server([](tcp::socket& socket, int) {
    net::streambuf buffer;
    while (auto req = test::read_request(socket, buffer)) {
      std::string fault = test::fault_reply("REMOVED", 2150858778UL, "w:InternalError", "INJECTED fault text");
      fault = std::regex_replace(fault, std::regex("<a:RelatesTo>REMOVED</a:RelatesTo>"), "");
      if (!test::write_all(socket, test::http_response(500, fault))) return;
    }
  });
  auto transport = make(server.url());
  auto reply = request(*transport);
  ASSERT_FALSE(reply.ok());
  EXPECT_THAT(reply, HasCode(ErrorCode::kUnavailable));  // retried like the shell quota Windows sends this way
  EXPECT_EQ(error_of(reply).find("INJECTED"), std::string::npos) << error_of(reply);
}

// An auth whose calls block like gss_init_sec_context asking a slow KDC.
class SlowKdcAuth final : public HttpAuth {
 public:
  std::string scheme() const override { return "Fake"; }
  std::string principal() const override { return "user"; }
  Status check_transport(const ConnectionInfo&) const override { return {}; }
  Status reset(const ConnectionInfo&) override { return {}; }
  Result<std::optional<std::string>> authorization() override {
    threads.push_back(std::this_thread::get_id());
    std::this_thread::sleep_for(800ms);  // the KDC takes its time
    return std::optional<std::string>("Fake token");
  }
  Result<ChallengeOutcome> on_challenge(const std::vector<std::string>&) override { return ChallengeOutcome::kFailed; }
  bool may_block() const override { return true; }
  std::vector<std::thread::id> threads;
};

// Issue 12: blocking GSSAPI calls ran on the I/O thread, stalling heartbeats and every other host.
TEST_F(Fixture, BlockingAuthCallsRunOffTheIoThread) {
  ScriptedServer server(echo_handler());
  auto auth = std::make_unique<SlowKdcAuth>();
  auto* auth_view = auth.get();
  auto transport = make(server.url(), {}, std::move(auth));
  const auto io_thread = std::this_thread::get_id();
  bool done = false;
  std::chrono::steady_clock::duration worst_gap{};
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        net::steady_timer timer(io);
        auto last = std::chrono::steady_clock::now();
        while (!done) {
          timer.expires_after(20ms);
          co_await timer.async_wait(net::use_awaitable);
          worst_gap = std::max(worst_gap, std::chrono::steady_clock::now() - last);
          last = std::chrono::steady_clock::now();
        }
      },
      net::detached);
  const auto envelope = sample_envelope(transport->endpoint().url());
  // Named: the coroutine refers to the lambda's captures until it finishes.
  auto request_then_stop = [&]() -> net::awaitable<Result<WsmanReply>> {
    auto r = co_await transport->request(envelope, "Get");
    done = true;
    co_return r;
  };
  auto reply = test::run_coro(io, request_then_stop());
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  ASSERT_FALSE(auth_view->threads.empty());
  for (const auto& id : auth_view->threads) EXPECT_NE(id, io_thread);
  // Generous for a loaded machine; a call on the I/O thread would show the full 800 ms.
  EXPECT_LT(worst_gap, std::chrono::steady_clock::duration(500ms));
}

// ---- TLS ------------------------------------------------------------------------------------------

ScriptedServer::TlsHandler tls_echo_handler() {
  return [](net::ssl::stream<tcp::socket>& stream, int) {
    net::streambuf buffer;
    while (auto req = test::read_request(stream, buffer)) {
      if (!test::write_all(stream, test::http_response(200, ok_body(*req)))) return;
    }
  };
}

struct TlsFixture : Fixture {
  test::TestCertificate cert = test::TestCertificate::make("localhost", "DNS:localhost,IP:127.0.0.1");
  ~TlsFixture() override { cert.remove(); }
};

TEST_F(TlsFixture, UntrustedCertificateFailsWithoutCaFile) {
  ScriptedServer server(cert, tls_echo_handler());
  auto transport = make(server.url(true));
  auto reply = request(*transport);
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(error_of(reply).find("TLS certificate of host 127.0.0.1:" + std::to_string(server.port()) + " not trusted"),
            std::string::npos)
      << error_of(reply);
  EXPECT_NE(error_of(reply).find("--ca-file"), std::string::npos);
  // The peer could not prove who it is; the OpenSSL verify result is the detail.
  EXPECT_THAT(reply, ErrorWith(ErrorCode::kUnauthenticated,
                               SystemStatus(SystemStatusKind::kOpenSsl, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT)));
}

TEST_F(TlsFixture, TrustedWithCaFileByIpAndByName) {
  ScriptedServer server(cert, tls_echo_handler());
  TransportOptions options;
  options.ca_file = cert.cert_pem.string();
  auto by_ip = make(server.url(true), options);
  auto reply = request(*by_ip);
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  by_ip.reset();  // the scripted server serves one connection at a time
  auto by_name = make("https://localhost:" + std::to_string(server.port()) + "/wsman", options);
  reply = request(*by_name);
  ASSERT_TRUE(reply.ok()) << reply.error().message;
}

TEST_F(TlsFixture, BasicOverHttpsSendsCredentials) {
  std::string authorization;
  ScriptedServer server(cert, [&](net::ssl::stream<tcp::socket>& stream, int) {
    net::streambuf buffer;
    if (auto req = test::read_request(stream, buffer)) {
      authorization = req->header("Authorization");
      test::write_all(stream, test::http_response(200, ok_body(*req)));
    }
  });
  TransportOptions options;
  options.ca_file = cert.cert_pem.string();
  auto transport = make(server.url(true), options, std::make_unique<BasicAuth>("carol", Secret("pw"), false));
  auto reply = request(*transport);
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ(authorization, "Basic " + base64_encode(std::string_view("carol:pw")));
}

TEST_F(TlsFixture, HostNameMismatchFails) {
  auto other = test::TestCertificate::make("other.example", "DNS:other.example");
  ScriptedServer server(other, tls_echo_handler());
  TransportOptions options;
  options.ca_file = other.cert_pem.string();
  auto transport = make(server.url(true), options);
  auto reply = request(*transport);
  other.remove();
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(error_of(reply).find("does not match the name '127.0.0.1'"), std::string::npos) << error_of(reply);
  EXPECT_THAT(reply, ErrorWith(ErrorCode::kUnauthenticated,
                               SystemStatus(SystemStatusKind::kOpenSsl, X509_V_ERR_IP_ADDRESS_MISMATCH)));
}

TEST_F(TlsFixture, VerificationCanBeTurnedOffExplicitly) {
  ScriptedServer server(cert, tls_echo_handler());
  TransportOptions options;
  options.connect.verify_peer = false;
  auto transport = make(server.url(true), options);
  auto reply = request(*transport);
  ASSERT_TRUE(reply.ok()) << reply.error().message;
}

TEST_F(TlsFixture, UnreadableCaFileIsAnError) {
  auto endpoint = parse_endpoint("https://127.0.0.1:5986/wsman");
  TransportOptions options;
  options.ca_file = "/nonexistent/ca.pem";
  auto transport = WsmanTransport::create(io.get_executor(), *endpoint, nullptr, options);
  ASSERT_FALSE(transport.ok());
  EXPECT_NE(transport.error().message.find("cannot load CA file '/nonexistent/ca.pem'"), std::string::npos);
  EXPECT_THAT(transport, HasCode(ErrorCode::kInvalidArgument));
}

TEST_F(TlsFixture, PlainHttpServerOnHttpsEndpointIsAClearError) {
  ScriptedServer server(echo_handler());
  TransportOptions options;
  options.ca_file = cert.cert_pem.string();
  options.connect.tls_handshake_timeout = 5s;
  auto transport = make(server.url(true), options);
  auto reply = request(*transport);
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(error_of(reply).find("TLS handshake with 127.0.0.1"), std::string::npos) << error_of(reply);
  // The plain server either hangs up on the ClientHello or waits for a request line until the timeout.
  EXPECT_THAT(reply, ::testing::AnyOf(HasCode(ErrorCode::kUnavailable), HasCode(ErrorCode::kDeadlineExceeded)));
}

// ---- endpoint parsing ---------------------------------------------------------------------------

TEST(Endpoint, ParsesUrlsAndDefaults) {
  auto a = parse_endpoint("https://web01.example.com/wsman");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->tls);
  EXPECT_EQ(a->port, 5986);
  EXPECT_EQ(a->url(), "https://web01.example.com:5986/wsman");
  auto b = parse_endpoint("http://10.0.0.5:8080/custom");
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->tls);
  EXPECT_EQ(b->authority(), "10.0.0.5:8080");
  EXPECT_EQ(b->path, "/custom");
  auto c = parse_endpoint("host");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->url(), "http://host:5985/wsman");
  auto d = parse_endpoint("host:5986");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->tls);
  auto e = parse_endpoint("https://[::1]:5986/wsman");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->authority(), "[::1]:5986");
}

TEST(Endpoint, RejectsBadUrls) {
  for (const char* bad : {"ftp://host/wsman", "http://user:pw@host/wsman", "http://:5985/wsman", "http://host:0/wsman",
                          "http://host:99999/wsman", "http://host:12ab/wsman", "http://ho st/wsman", ""}) {
    auto r = parse_endpoint(bad);
    EXPECT_THAT(r, HasCode(ErrorCode::kInvalidArgument)) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().message.find("pw@"), std::string::npos) << r.error().message;
    }
  }
}

}  // namespace
}  // namespace wincert::winrm
