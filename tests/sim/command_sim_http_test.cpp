// command-sim's HTTP layer as a raw socket client sees it: "Expect: 100-continue" (what libcurl sends on
// bodies over 1 MiB) gets the interim "100 Continue" before the body is sent, instead of a one-second stall.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "tests/sim/command_sim_support.hpp"

namespace wincert::sim::command::testing {
namespace {

using namespace std::chrono_literals;

// A blocking loopback TCP connection with a receive timeout, for byte-level HTTP exchanges.
class RawConnection {
 public:
  explicit RawConnection(unsigned short port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval timeout{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return connected_; }

  bool send_all(const std::string& data) {
    std::size_t sent = 0;
    while (sent < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<std::size_t>(n);
    }
    return true;
  }

  // Reads until a blank line ends a header block; returns that block ("" on timeout or close).
  std::string read_header_block() {
    for (;;) {
      if (const auto end = pending_.find("\r\n\r\n"); end != std::string::npos) {
        std::string block = pending_.substr(0, end + 4);
        pending_.erase(0, end + 4);
        return block;
      }
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return {};
      pending_.append(chunk, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string pending_;
};

std::string post_header(const std::string& target, std::size_t length, bool expect_continue) {
  std::string head = "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n";
  head += "Accept: application/json\r\nContent-Length: " + std::to_string(length) + "\r\n";
  if (expect_continue) head += "Expect: 100-continue\r\n";
  return head + "\r\n";
}

// A registration body padded with whitespace past libcurl's 1 MiB threshold for the header.
std::string large_registration(const std::string& machine) {
  const Json body = {{"AgentPlatform", 1},
                     {"AgentVersion", 1},
                     {"ClientMachine", machine},
                     {"AgentId", ""},
                     {"CSR", nullptr},
                     {"Capabilities", kDefaultCapabilities},
                     {"TenantId", "00000000-0000-0000-0000-000000000000"}};
  return body.dump() + std::string((1u << 20) + 1, ' ');
}

class CommandSimHttpTest : public SimFixture {};

TEST_F(CommandSimHttpTest, ExpectContinueGetsTheInterimAnswerBeforeTheBody) {
  start();
  RawConnection conn(sim->port());
  ASSERT_TRUE(conn.connected());
  const std::string body = large_registration("continue-orchestrator");
  const auto sent_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(conn.send_all(post_header("/KeyfactorAgents/Session/Register", body.size(), true)));
  const std::string interim = conn.read_header_block();
  const auto waited = std::chrono::steady_clock::now() - sent_at;
  ASSERT_EQ(interim.rfind("HTTP/1.1 100 Continue\r\n", 0), 0u) << interim;
  EXPECT_LT(waited, 500ms) << "the interim answer must not wait for a client timeout";

  ASSERT_TRUE(conn.send_all(body));
  const std::string final_head = conn.read_header_block();
  EXPECT_EQ(final_head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << final_head;
  bool listed = false;
  for (const auto& agent : admin_get(*http, "/admin/agents"))
    listed = listed || agent["ClientMachine"] == "continue-orchestrator";
  EXPECT_TRUE(listed) << "the body sent after 100 Continue registered the orchestrator";
}

TEST_F(CommandSimHttpTest, ExpectContinueOnAnOversizedBodyGetsTheFinal413Instead) {
  start({"--auto-approve", "--max-body-mb", "1"});
  RawConnection conn(sim->port());
  ASSERT_TRUE(conn.connected());
  ASSERT_TRUE(conn.send_all(post_header("/KeyfactorAgents/Session/Register", 2u << 20, true)));
  const std::string answer = conn.read_header_block();
  EXPECT_EQ(answer.rfind("HTTP/1.1 413 ", 0), 0u) << answer;
}

TEST_F(CommandSimHttpTest, NoInterimAnswerWithoutTheExpectation) {
  start();
  RawConnection conn(sim->port());
  ASSERT_TRUE(conn.connected());
  const Json body = {{"AgentPlatform", 1},
                     {"ClientMachine", "plain-orchestrator"},
                     {"AgentId", ""},
                     {"Capabilities", kDefaultCapabilities}};
  const std::string text = body.dump();
  ASSERT_TRUE(conn.send_all(post_header("/KeyfactorAgents/Session/Register", text.size(), false) + text));
  const std::string answer = conn.read_header_block();
  EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
}

}  // namespace
}  // namespace wincert::sim::command::testing
