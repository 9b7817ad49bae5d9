// ProcessChannel against real children: PowerShell 7 as an OutOfProc server (`pwsh -s`) opening a runspace
// pool from the recorded pypsrp fragments, and small POSIX programs for deaths, deadlines and limits.
#include "winrm/psrp/process_channel.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "tests/support/result_matchers.hpp"
#include "tests/winrm/psrp/transport_test_util.hpp"

namespace wincert::winrm::psrp {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::kRunspacePoolState;
using testing::kSessionCapability;
using testing::message_types_in;
using testing::run_coroutine;

using Clock = std::chrono::steady_clock;

ProcessChannelOptions options_for(std::string program, std::vector<std::string> arguments) {
  ProcessChannelOptions options;
  options.program = std::move(program);
  options.arguments = std::move(arguments);
  return options;
}

bool process_gone(int pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }
// Every process of the child's group: the .NET tool's `pwsh` is a launcher running `dotnet pwsh.dll` under it.
bool process_group_gone(int pid) { return ::kill(-pid, 0) != 0 && errno == ESRCH; }

// What the server sent until the pool's ack and the wanted message types (or the deadline) arrived.
struct PoolReplies {
  bool data_ack = false;
  bool close_ack = false;
  std::vector<std::uint32_t> message_types;
  std::vector<std::string> pool_states;  // the RunspaceState of each RUNSPACEPOOL_STATE, as text
  std::vector<std::string> unexpected;
};

// Reads packets until `done` says so; every packet must be for the pool.
net::awaitable<Status> read_until(OutOfProcChannel& channel, PoolReplies& replies,
                                  const std::function<bool(const PoolReplies&)>& done,
                                  std::chrono::milliseconds budget) {
  const auto give_up = Clock::now() + budget;
  while (!done(replies)) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(give_up - Clock::now());
    auto packet = co_await channel.read_packet(std::max(left, 1ms));
    if (!packet.ok()) co_return std::move(packet).error();
    if (!packet->for_pool()) replies.unexpected.push_back(packet->ps_guid);
    switch (packet->kind) {
      case PacketKind::kDataAck:
        replies.data_ack = true;
        break;
      case PacketKind::kCloseAck:
        replies.close_ack = true;
        break;
      case PacketKind::kData: {
        const auto messages = testing::messages_in(packet->payload);
        if (messages.empty()) replies.unexpected.push_back("undecodable Data payload");
        for (const auto& message : messages) {
          replies.message_types.push_back(message.type);
          if (message.type != kRunspacePoolState) continue;
          static constexpr std::string_view kState = "N=\"RunspaceState\">";
          const auto at = message.start.find(kState);
          replies.pool_states.push_back(at == std::string::npos ? "?" : message.start.substr(at + kState.size(), 1));
        }
        break;
      }
      default:
        replies.unexpected.push_back(std::string(packet_kind_name(packet->kind)));
    }
  }
  co_return Status();
}

bool has_type(const PoolReplies& r, std::uint32_t type) {
  return std::find(r.message_types.begin(), r.message_types.end(), type) != r.message_types.end();
}

// The OutOfProc pool handshake on any channel (the SSH tests use it too): the recorded open fragments in one Data
// packet for the pool, DataAck and the server's SESSION_CAPABILITY and RUNSPACEPOOL_STATE back, then Close and
// CloseAck.
}  // namespace

net::awaitable<void> open_and_close_pool(OutOfProcChannel& channel) {
  const std::string fragments = testing::recorded_pool_open_fragments();
  EXPECT_EQ(message_types_in(fragments), (std::vector<std::uint32_t>{kSessionCapability, testing::kInitRunspacePool}));
  EXPECT_THAT(co_await channel.write_packet(OutOfProcPacket::data(std::string(kPoolPsGuid), fragments)), IsOk());

  PoolReplies replies;
  auto opened = co_await read_until(
      channel, replies,
      [](const PoolReplies& r) {
        return r.data_ack && has_type(r, kSessionCapability) && has_type(r, kRunspacePoolState);
      },
      60s);
  EXPECT_THAT(opened, IsOk());
  EXPECT_TRUE(replies.unexpected.empty()) << replies.unexpected.front();
  if (!opened.ok()) co_return;
  EXPECT_EQ(replies.pool_states, std::vector<std::string>{"2"});  // Opened

  EXPECT_THAT(co_await channel.write_packet(OutOfProcPacket::of_kind(PacketKind::kClose, std::string(kPoolPsGuid))),
              IsOk());
  auto closed = co_await read_until(
      channel, replies, [](const PoolReplies& r) { return r.close_ack; }, 30s);
  EXPECT_THAT(closed, IsOk());
  EXPECT_FALSE(replies.pool_states.empty());
  if (replies.pool_states.empty()) co_return;
  EXPECT_EQ(replies.pool_states.back(), "3");  // Closed
}

namespace {

TEST(PwshChild, OpensAndClosesARunspacePoolFromTheRecordedFragments) {
  const auto pwsh = testing::find_pwsh();
  if (!pwsh) WINCERT_SKIP_OR_FAIL("pwsh (PowerShell 7) not found; run scripts/setup.sh or set WINCERT_PWSH");
  const auto started = Clock::now();
  int pid = -1;
  run_coroutine([&]() -> net::awaitable<void> {
    auto channel =
        ProcessChannel::start(co_await net::this_coro::executor, options_for(pwsh->string(), pwsh_server_arguments()));
    EXPECT_THAT(channel, IsOk());
    if (!channel.ok()) co_return;
    pid = (*channel)->pid();
    co_await open_and_close_pool(**channel);
    EXPECT_EQ((*channel)->stderr_tail(), "");  // closing stdin below makes pwsh complain there: not before
    EXPECT_THAT(co_await (*channel)->close(), IsOk());
  });
  EXPECT_TRUE(process_gone(pid));
  EXPECT_TRUE(process_group_gone(pid));
  std::cout << "pwsh -s pool open and close: "
            << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count() << " ms\n";
}

TEST(ProcessChannel, AChildThatExitsAtOnceIsAClearError) {
  run_coroutine([&]() -> net::awaitable<void> {
    auto channel = ProcessChannel::start(co_await net::this_coro::executor, options_for("/bin/false", {}));
    EXPECT_THAT(channel, IsOk());
    if (!channel.ok()) co_return;
    auto line = co_await (*channel)->read_line(10s);
    EXPECT_THAT(line, HasCode(ErrorCode::kUnavailable));
    if (!line.ok()) {
      EXPECT_THAT(line.error().message, HasSubstr("exited with code 1"));
    }
  });
}

TEST(ProcessChannel, TheErrorQuotesTheTailOfTheChildsStderr) {
  run_coroutine([&]() -> net::awaitable<void> {
    ProcessChannelOptions options =
        options_for("/bin/sh", {"-c", "head -c 10000 /dev/zero | tr '\\0' x >&2; echo 'pwsh: bad option' >&2; exit 3"});
    options.stderr_tail_bytes = 100;
    auto channel = ProcessChannel::start(co_await net::this_coro::executor, std::move(options));
    EXPECT_THAT(channel, IsOk());
    if (!channel.ok()) co_return;
    auto line = co_await (*channel)->read_line(10s);
    EXPECT_THAT(line, HasCode(ErrorCode::kUnavailable));
    if (!line.ok()) {
      EXPECT_THAT(line.error().message, AllOf(HasSubstr("exited with code 3"), HasSubstr("pwsh: bad option")));
      EXPECT_LT(line.error().message.size(), 400u);
    }
    EXPECT_LE((*channel)->stderr_tail().size(), 100u);
  });
}

TEST(ProcessChannel, WritingToAChildThatExitedIsAClearError) {
  run_coroutine([&]() -> net::awaitable<void> {
    auto channel = ProcessChannel::start(co_await net::this_coro::executor, options_for("/bin/false", {}));
    EXPECT_THAT(channel, IsOk());
    if (!channel.ok()) co_return;
    Status written;
    // The first writes may still land in the pipe's buffer; a later one meets the closed pipe.
    for (int i = 0; i < 200 && written.ok(); ++i) written = co_await (*channel)->write_line(std::string(4096, 'a'));
    EXPECT_THAT(written, HasCode(ErrorCode::kUnavailable));
  });
}

TEST(ProcessChannel, AProgramThatCannotStartIsAFailedPrecondition) {
  boost::asio::io_context io;
  auto channel = ProcessChannel::start(io.get_executor(), options_for("/nonexistent/pwsh", {"-s"}));
  EXPECT_THAT(channel, HasCode(ErrorCode::kFailedPrecondition));
}

TEST(ProcessChannel, EchoesLinesAndHonoursTheReadDeadline) {
  run_coroutine([&]() -> net::awaitable<void> {
    auto channel = ProcessChannel::start(co_await net::this_coro::executor, options_for("/bin/cat", {}));
    EXPECT_THAT(channel, IsOk());
    if (!channel.ok()) co_return;
    auto& cat = **channel;
    EXPECT_THAT(co_await cat.write_line("<DataAck PSGuid='00000000-0000-0000-0000-000000000000' />"), IsOk());
    auto echoed = co_await cat.read_packet(10s);
    EXPECT_THAT(echoed, IsOk());

    const auto before = Clock::now();
    auto nothing = co_await cat.read_line(300ms);
    const auto waited = Clock::now() - before;
    EXPECT_THAT(nothing, HasCode(ErrorCode::kDeadlineExceeded));
    EXPECT_GE(waited, 300ms);
    EXPECT_LT(waited, 3s);

    // The channel still works after a deadline.
    EXPECT_THAT(co_await cat.write_line("again"), IsOk());
    auto again = co_await cat.read_line(10s);
    EXPECT_THAT(again, IsOk());
    if (again.ok()) {
      EXPECT_EQ(*again, "again");
    }
    EXPECT_THAT(co_await cat.write_line("two\nlines"), HasCode(ErrorCode::kInternal));
    EXPECT_THAT(co_await cat.close(), IsOk());
    EXPECT_THAT(co_await cat.close(), IsOk());
    EXPECT_THAT(co_await cat.read_line(1s), HasCode(ErrorCode::kUnavailable));
  });
}

TEST(ProcessChannel, ALineOverTheLimitIsRefused) {
  run_coroutine([&]() -> net::awaitable<void> {
    ProcessChannelOptions options = options_for("/bin/sh", {"-c", "head -c 100000 /dev/zero | tr '\\0' a; sleep 5"});
    options.max_line_bytes = 1000;
    auto channel = ProcessChannel::start(co_await net::this_coro::executor, std::move(options));
    EXPECT_THAT(channel, IsOk());
    if (!channel.ok()) co_return;
    EXPECT_THAT(co_await (*channel)->read_line(10s), HasCode(ErrorCode::kResourceExhausted));
  });
}

TEST(ProcessChannel, DestroyingTheChannelKillsAndReapsTheChild) {
  boost::asio::io_context io;
  int pid = -1;
  {
    auto channel = ProcessChannel::start(io.get_executor(), options_for("/bin/sleep", {"60"}));
    ASSERT_THAT(channel, IsOk());
    pid = (*channel)->pid();
    EXPECT_FALSE(process_gone(pid));
  }
  EXPECT_TRUE(process_gone(pid));  // killed and reaped: no zombie left (a zombie still answers kill(pid, 0))
  io.run();                        // the stderr drain's cancelled read completes
}

TEST(ProcessChannel, CloseKillsAChildThatIgnoresEndOfInput) {
  int pid = -1;
  const auto started = Clock::now();
  run_coroutine([&]() -> net::awaitable<void> {
    ProcessChannelOptions options = options_for("/bin/sleep", {"60"});
    options.exit_grace = 200ms;
    auto channel = ProcessChannel::start(co_await net::this_coro::executor, std::move(options));
    EXPECT_THAT(channel, IsOk());
    if (!channel.ok()) co_return;
    pid = (*channel)->pid();
    EXPECT_THAT(co_await (*channel)->close(), IsOk());
  });
  EXPECT_TRUE(process_gone(pid));
  EXPECT_LT(Clock::now() - started, 5s);
}

}  // namespace
}  // namespace wincert::winrm::psrp
