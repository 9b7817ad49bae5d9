// Fault matrix, WinRM rows (issue 12): hosts that accept and never answer, trickle bytes, stream forever
// or answer instantly with faults; TLS certificates expired, for another host or untrusted; DNS that
// fails or is slow. Each row asserts a clear outcome within a bounded time. Rows: tests/fault/ROWS-winrm.md.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "common/name_lookup.hpp"
#include "tests/winrm/client_test_util.hpp"
#include "winrm/transport.hpp"
#include "winrm/winrs.hpp"

namespace wincert::winrm {
namespace {

using namespace std::chrono_literals;
using test::ScriptedServer;
using test::SeenRequest;
using tcp = boost::asio::ip::tcp;
namespace net = boost::asio;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kGetResponse = "http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse";
constexpr std::string_view kShell = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/";

std::string action_of(const std::string& body) {
  std::smatch m;
  static const std::regex re("Action[^>]*>[^<]*/([A-Za-z]+)</");
  return std::regex_search(body, m, re) ? m[1].str() : std::string();
}

// Keeps a server thread from outliving its test when the client gives up first.
struct Release {
  std::atomic<bool> flag{false};
  void wait(std::chrono::seconds at_most = 60s) const {
    for (auto end = Clock::now() + at_most; !flag && Clock::now() < end;) std::this_thread::sleep_for(20ms);
  }
};

struct WinrmFaults : ::testing::Test {
  net::io_context io;

  std::unique_ptr<WsmanTransport> make(const std::string& url, TransportOptions options = {}) {
    auto endpoint = parse_endpoint(url);
    EXPECT_TRUE(endpoint.ok());
    auto transport = WsmanTransport::create(io.get_executor(), *endpoint, nullptr, options);
    EXPECT_TRUE(transport.ok()) << transport.error().message;
    return std::move(*transport);
  }
  Result<WsmanReply> get(WsmanTransport& transport) {
    RequestContext ctx;
    ctx.to = transport.endpoint().url();
    const auto envelope = build_config_get(ctx);
    return test::run_coro(io, transport.request(envelope, "Get"));
  }
};

std::string message_of(const auto& result) { return result.ok() ? std::string("<ok>") : result.error().message; }
auto seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Row: a host that accepts the connection and the request, then says nothing. One job costs one read
// timeout: the session does not go on to Create shell after the config Get timed out (it cost two).
TEST_F(WinrmFaults, HostAcceptsAndNeverAnswers) {
  Release release;
  std::atomic<int> requests{0};
  ScriptedServer server([&](tcp::socket& socket, int) {
    net::streambuf buffer;
    while (test::read_request(socket, buffer)) {
      ++requests;
      release.wait();
      return;
    }
  });
  TransportOptions options;
  options.exchange.read_timeout = 2s;
  auto transport = make(server.url(), options);
  SessionOptions session_options;
  session_options.operation_timeout = 1s;  // Receive waits 1 s + 1 s: the read timeout stays 2 s
  WinrsSession session(*transport, session_options);
  CommandSpec spec;
  spec.command = "hostname";
  const auto start = Clock::now();
  auto out = test::run_coro(io, session.run(spec));
  const double took = seconds_since(start);
  release.flag = true;
  ASSERT_FALSE(out.ok());
  EXPECT_NE(message_of(out).find("timed out after 2 s waiting for the Get WinRM config response"), std::string::npos)
      << message_of(out);
  EXPECT_NE(message_of(out).find("the host accepted the request but did not answer"), std::string::npos);
  EXPECT_TRUE(out.error().retryable());
  EXPECT_EQ(requests.load(), 1) << "a second request waited out a second timeout";
  EXPECT_LT(took, 3.9);
}

// Row: the host sends a status line and headers, then one byte every 100 ms (slowloris in reverse).
// The read deadline covers the whole response, not each byte.
TEST_F(WinrmFaults, HostTricklesBytes) {
  Release release;
  ScriptedServer server([&](tcp::socket& socket, int) {
    net::streambuf buffer;
    if (!test::read_request(socket, buffer)) return;
    if (!test::write_all(socket,
                         "HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nContent-Length: 100000\r\n\r\n"))
      return;
    while (!release.flag && test::write_all(socket, "<")) std::this_thread::sleep_for(100ms);
  });
  TransportOptions options;
  options.exchange.read_timeout = 2s;
  auto transport = make(server.url(), options);
  const auto start = Clock::now();
  auto reply = get(*transport);
  const double took = seconds_since(start);
  release.flag = true;
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(message_of(reply).find("timed out after 2 s waiting for the Get response"), std::string::npos)
      << message_of(reply);
  EXPECT_LT(took, 4.0);
}

// Row: the host streams a chunked body forever, as fast as it can. The size limit ends it.
TEST_F(WinrmFaults, HostStreamsForever) {
  Release release;
  ScriptedServer server([&](tcp::socket& socket, int) {
    net::streambuf buffer;
    if (!test::read_request(socket, buffer)) return;
    if (!test::write_all(socket,
                         "HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nTransfer-Encoding: chunked\r\n\r\n"))
      return;
    const std::string chunk = "4000\r\n" + std::string(0x4000, 'x') + "\r\n";
    while (!release.flag && test::write_all(socket, chunk)) {
    }
  });
  TransportOptions options;
  options.exchange.read_timeout = 20s;
  options.exchange.max_response_body = 4 * 1024 * 1024;
  auto transport = make(server.url(), options);
  const auto start = Clock::now();
  auto reply = get(*transport);
  const double took = seconds_since(start);
  release.flag = true;
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(message_of(reply).find("is larger than the limit of 4 MiB"), std::string::npos) << message_of(reply);
  EXPECT_LT(took, 15.0);
}

// Row: every Receive is answered at once with an OperationTimeout fault (the host, or a middlebox,
// does not long-poll). The session backs off instead of polling ~22 times a second, and the command's
// deadline ends it with a clear message.
TEST_F(WinrmFaults, HostAnswersEveryReceiveInstantlyWithTimedOut) {
  std::atomic<int> receives{0};
  ScriptedServer server([&](tcp::socket& socket, int) {
    net::streambuf buffer;
    while (auto req = test::read_request(socket, buffer)) {
      const std::string action = action_of(req->body);
      const std::string id = req->message_id();
      std::string body;
      int status = 200;
      if (action == "Get") {
        status = 500;
        body = test::fault_reply(id, 5, "w:AccessDenied", "Access is denied.");
      } else if (action == "Create") {
        body = test::soap_reply(id, "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse",
                                "<x:ResourceCreated xmlns:x=\"http://schemas.xmlsoap.org/ws/2004/09/transfer\">"
                                "<a:Address>x</a:Address><a:ReferenceParameters><w:SelectorSet><w:Selector "
                                "Name=\"ShellId\">S1</w:Selector></w:SelectorSet></a:ReferenceParameters>"
                                "</x:ResourceCreated><rsp:Shell><rsp:ShellId>S1</rsp:ShellId></rsp:Shell>");
      } else if (action == "Command") {
        body = test::soap_reply(id, std::string(kShell) + "CommandResponse",
                                "<rsp:CommandResponse><rsp:CommandId>C1</rsp:CommandId></rsp:CommandResponse>");
      } else if (action == "Receive") {
        ++receives;
        status = 500;
        body = test::fault_reply(id, 2150858793UL, "w:TimedOut",
                                 "The WS-Management service cannot complete the "
                                 "operation within the time specified in OperationTimeout.");
      } else {
        body = test::soap_reply(id, std::string(kShell) + "SignalResponse", "<rsp:SignalResponse/>");
      }
      if (!test::write_all(socket, test::http_response(status, body))) return;
    }
  });
  auto transport = make(server.url());
  SessionOptions session_options;
  session_options.operation_timeout = 20s;
  session_options.command_deadline = 3s;
  WinrsSession session(*transport, session_options);
  CommandSpec spec;
  spec.command = "hostname";
  const auto start = Clock::now();
  auto out = test::run_coro(io, session.run(spec));
  const double took = seconds_since(start);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(message_of(out).find("did not finish within 3 s (deadline)"), std::string::npos) << message_of(out);
  // Without a backoff: ~22 polls a second on a real host, hundreds here. With it: 100, 200, 400, ... ms.
  EXPECT_LE(receives.load(), 8) << receives.load() << " Receives in " << took << " s";
  EXPECT_GE(session.counters().instant_timeouts, 2u);
  EXPECT_LT(took, 6.0);
}

// ---- TLS rows ----

ScriptedServer::TlsHandler tls_echo() {
  return [](net::ssl::stream<tcp::socket>& stream, int) {
    net::streambuf buffer;
    while (auto req = test::read_request(stream, buffer)) {
      if (!test::write_all(stream, test::http_response(200, test::soap_reply(req->message_id(), kGetResponse, "<x/>"))))
        return;
    }
  };
}

// Row: the host's certificate expired (even when its CA is trusted).
TEST_F(WinrmFaults, TlsCertificateExpired) {
  auto cert = test::TestCertificate::make("localhost", "DNS:localhost,IP:127.0.0.1", /*expired=*/true);
  ScriptedServer server(cert, tls_echo());
  TransportOptions options;
  options.ca_file = cert.cert_pem.string();
  auto transport = make(server.url(true), options);
  auto reply = get(*transport);
  cert.remove();
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(message_of(reply).find("not trusted: certificate has expired: renew the host's WinRM HTTPS certificate"),
            std::string::npos)
      << message_of(reply);
  EXPECT_FALSE(reply.error().retryable());
}

// Row: a trusted certificate issued for another host.
TEST_F(WinrmFaults, TlsCertificateForAnotherHost) {
  auto cert = test::TestCertificate::make("other.example.com", "DNS:other.example.com");
  ScriptedServer server(cert, tls_echo());
  TransportOptions options;
  options.ca_file = cert.cert_pem.string();
  auto transport = make("https://localhost:" + std::to_string(server.port()) + "/wsman", options);
  auto reply = get(*transport);
  cert.remove();
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(message_of(reply).find("does not match the name 'localhost'"), std::string::npos) << message_of(reply);
}

// Row: a certificate from a CA the agent does not trust.
TEST_F(WinrmFaults, TlsCertificateUntrusted) {
  auto cert = test::TestCertificate::make("localhost", "DNS:localhost,IP:127.0.0.1");
  ScriptedServer server(cert, tls_echo());
  auto transport = make(server.url(true));
  auto reply = get(*transport);
  cert.remove();
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(message_of(reply).find("not trusted"), std::string::npos) << message_of(reply);
}

// ---- DNS rows ----

struct ResolverOverride {
  explicit ResolverOverride(BlockingNameResolver resolver) {
    set_blocking_name_resolver_for_tests(std::move(resolver));
  }
  ~ResolverOverride() { set_blocking_name_resolver_for_tests({}); }
};

// Row: the name does not resolve.
TEST_F(WinrmFaults, DnsFailure) {
  ResolverOverride fail([](const std::string&, const std::string&) {
    NameLookup out;
    out.error = net::error::host_not_found;
    return out;
  });
  auto transport = make("http://web01.corp.example.com:5985/wsman");
  auto reply = get(*transport);
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(message_of(reply).find("cannot resolve host name 'web01.corp.example.com'"), std::string::npos)
      << message_of(reply);
  EXPECT_NE(message_of(reply).find("check the endpoint name and DNS"), std::string::npos);
}

// Row: DNS answers after 5 s; the connect timeout (1 s) ends the wait for real, and a lookup of another
// host meanwhile is not queued behind the stuck one (Asio's resolver thread would serialise them).
TEST_F(WinrmFaults, SlowDnsIsAbandonedAtTheDeadlineAndBlocksNoOtherLookup) {
  ScriptedServer server([](tcp::socket& socket, int) {
    net::streambuf buffer;
    while (auto req = test::read_request(socket, buffer)) {
      if (!test::write_all(socket, test::http_response(200, test::soap_reply(req->message_id(), kGetResponse, "<x/>"))))
        return;
    }
  });
  ResolverOverride slow_dns([](const std::string& host, const std::string& service) {
    if (host == "slow.example.com") std::this_thread::sleep_for(5s);
    net::io_context ctx;
    tcp::resolver resolver(ctx);
    NameLookup out;
    out.results = resolver.resolve(host == "fast.example.com" ? "127.0.0.1" : host, service, out.error);
    return out;
  });
  TransportOptions options;
  options.connect.connect_timeout = 1s;
  auto slow = make("http://slow.example.com:" + std::to_string(server.port()) + "/wsman", options);
  auto fast = make("http://fast.example.com:" + std::to_string(server.port()) + "/wsman", options);

  std::optional<Result<WsmanReply>> slow_reply, fast_reply;
  double slow_took = 0, fast_took = 0;
  RequestContext slow_ctx, fast_ctx;
  slow_ctx.to = slow->endpoint().url();
  fast_ctx.to = fast->endpoint().url();
  const auto slow_envelope = build_config_get(slow_ctx);
  const auto fast_envelope = build_config_get(fast_ctx);
  const auto start = Clock::now();
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        slow_reply.emplace(co_await slow->request(slow_envelope, "Get"));
        slow_took = seconds_since(start);
      },
      net::detached);
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        net::steady_timer later(io);  // starts after the slow lookup is under way
        later.expires_after(100ms);
        co_await later.async_wait(net::use_awaitable);
        fast_reply.emplace(co_await fast->request(fast_envelope, "Get"));
        fast_took = seconds_since(start);
      },
      net::detached);
  io.run_for(20s);
  ASSERT_TRUE(slow_reply && fast_reply);
  ASSERT_FALSE(slow_reply->ok());
  EXPECT_NE(message_of(*slow_reply).find("timed out after 1 s resolving host name 'slow.example.com': check DNS"),
            std::string::npos)
      << message_of(*slow_reply);
  EXPECT_LT(slow_took, 3.0) << "the caller waited for the stuck lookup";
  ASSERT_TRUE(fast_reply->ok()) << message_of(*fast_reply);
  EXPECT_LT(fast_took, 0.9) << "the second lookup queued behind the stuck one";
}

}  // namespace
}  // namespace wincert::winrm
