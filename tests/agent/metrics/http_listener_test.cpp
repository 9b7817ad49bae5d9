#include "agent/metrics/http_listener.hpp"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <optional>
#include <string>
#include <thread>

namespace wincert::agent::metrics {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

// The listener on its own io_context thread, as the agent runs it.
class ListenerFixture : public ::testing::Test {
 protected:
  void start(ListenerLimits limits = {}) {
    ListenerHandlers handlers;
    handlers.metrics = [] { return std::string("# HELP x X.\n# TYPE x gauge\nx 1\n"); };
    handlers.not_ready = [this]() -> std::optional<std::string> {
      if (ready_) return std::nullopt;
      return std::string("not registered with Command yet");
    };
    auto where = parse_listen_address("127.0.0.1:0");
    ASSERT_TRUE(where.ok());
    auto started = HttpListener::start(io_.get_executor(), *where, handlers, limits);
    ASSERT_TRUE(started.ok()) << started.error().message;
    listener_ = std::move(started.value());
    port_ = listener_->endpoint().port();
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    net::post(io_, [this] { listener_.reset(); });
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  // Sends raw bytes, returns everything the server sent before closing.
  std::string exchange(const std::string& request) {
    net::io_context client;
    tcp::socket socket(client);
    socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_));
    boost::system::error_code ec;
    net::write(socket, net::buffer(request), ec);  // a refused connection may be reset already
    std::string response;
    char buffer[4096];
    for (;;) {
      const std::size_t n = socket.read_some(net::buffer(buffer), ec);
      response.append(buffer, n);
      if (ec) break;
    }
    return response;
  }
  std::string get(const std::string& path) { return exchange("GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n"); }

  net::io_context io_{1};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_{io_.get_executor()};
  std::unique_ptr<HttpListener> listener_;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> ready_{false};
};

TEST(MetricsListenAddress, ParsesAddressesAndPortsDefaultingToLoopback) {
  auto port_only = parse_listen_address("9464");
  ASSERT_TRUE(port_only.ok());
  EXPECT_EQ(port_only->address().to_string(), "127.0.0.1");
  EXPECT_EQ(port_only->port(), 9464);
  auto colon_port = parse_listen_address(":0");
  ASSERT_TRUE(colon_port.ok());
  EXPECT_TRUE(colon_port->address().is_loopback());
  auto v6 = parse_listen_address("[::1]:9464");
  ASSERT_TRUE(v6.ok());
  EXPECT_TRUE(v6->address().is_v6());
  auto any = parse_listen_address("0.0.0.0:80");
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->address().to_string(), "0.0.0.0");
  EXPECT_FALSE(parse_listen_address("host.example.com:9464").ok());
  EXPECT_FALSE(parse_listen_address("127.0.0.1:70000").ok());
  EXPECT_FALSE(parse_listen_address("::1:9464").ok());
  EXPECT_FALSE(parse_listen_address("").ok());
}

TEST_F(ListenerFixture, ServesMetricsInTheTextFormat) {
  start();
  const std::string response = get("/metrics");
  EXPECT_EQ(response.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << response;
  EXPECT_NE(response.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), std::string::npos);
  EXPECT_NE(response.find("\r\n\r\n# HELP x X.\n# TYPE x gauge\nx 1\n"), std::string::npos) << response;
}

TEST_F(ListenerFixture, HealthzAndReadyzStates) {
  start();
  EXPECT_EQ(get("/healthz").rfind("HTTP/1.1 200", 0), 0u);
  const std::string not_ready = get("/readyz");
  EXPECT_EQ(not_ready.rfind("HTTP/1.1 503", 0), 0u) << not_ready;
  EXPECT_NE(not_ready.find("not ready: not registered with Command yet\n"), std::string::npos) << not_ready;
  ready_ = true;
  EXPECT_EQ(get("/readyz").rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(get("/readyz?verbose=1").rfind("HTTP/1.1 200", 0), 0u);
}

TEST_F(ListenerFixture, UnknownPathsAre404AndOnlyGetIsAllowed) {
  start();
  EXPECT_EQ(get("/").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(get("/metrics/../etc").rfind("HTTP/1.1 404", 0), 0u);
  const std::string post = exchange("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(post.rfind("HTTP/1.1 405", 0), 0u) << post;
  EXPECT_NE(post.find("Allow: GET\r\n"), std::string::npos);
  const std::string with_body = exchange("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(with_body.rfind("HTTP/1.1 413", 0), 0u) << with_body;
}

TEST_F(ListenerFixture, OversizedRequestsAreRefused) {
  ListenerLimits limits;
  limits.max_request_bytes = 512;
  start(limits);
  const std::string big = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(2000, 'a') + "\r\n\r\n";
  const std::string response = exchange(big);
  EXPECT_EQ(response.rfind("HTTP/1.1 431", 0), 0u) << response.substr(0, 200);
}

TEST_F(ListenerFixture, SilentClientsAreDisconnectedAfterTheTimeout) {
  ListenerLimits limits;
  limits.timeout = 300ms;
  start(limits);
  const auto begin = std::chrono::steady_clock::now();
  const std::string response = exchange("GET /metrics HTTP/1.1\r\n");  // never finishes its headers
  EXPECT_TRUE(response.empty()) << response;
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 5s);
}

TEST_F(ListenerFixture, ConnectionsPastTheCapAreClosed) {
  ListenerLimits limits;
  limits.max_connections = 2;
  limits.timeout = 2s;
  start(limits);
  net::io_context client;
  std::vector<tcp::socket> idle;
  const tcp::endpoint server(net::ip::make_address("127.0.0.1"), port_);
  for (int i = 0; i < 2; ++i) {
    idle.emplace_back(client);
    idle.back().connect(server);
  }
  std::this_thread::sleep_for(200ms);    // let the listener accept both
  EXPECT_TRUE(get("/healthz").empty());  // the third is closed at accept
  for (auto& s : idle) s.close();
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(get("/healthz").rfind("HTTP/1.1 200", 0), 0u);
}

}  // namespace
}  // namespace wincert::agent::metrics
