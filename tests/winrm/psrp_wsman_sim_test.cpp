// The PSRP-over-WS-Man runspace pool client against winhost-sim's PowerShell resource (a process on loopback):
// the host dropping an idle pool and the client reopening it transparently, a pipeline past its deadline stopped
// with the pool kept, concurrent pipelines taking turns on one connection, and a JEA endpoint refusing script text.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <filesystem>
#include <fstream>
#include <thread>

#include "client_sim_util.hpp"
#include "client_test_util.hpp"
#include "tests/support/result_matchers.hpp"
#include "winrm/psrp/wsman_runspace_pool.hpp"

namespace wincert::winrm::psrp {
namespace {

using namespace std::chrono_literals;
namespace net = boost::asio;

std::vector<PipelineCommand> script(std::string text) {
  PipelineCommand command;
  command.command = std::move(text);
  command.is_script = true;
  std::vector<PipelineCommand> commands;
  commands.push_back(std::move(command));
  return commands;
}

std::vector<std::string> lines(const PipelineResult& result) {
  std::vector<std::string> out;
  for (const auto& value : result.output) out.push_back(value.to_display_string());
  return out;
}

constexpr const char* kUser = "psrp-user";
constexpr const char* kPassword = "Psrp-Passw0rd!";

struct PsrpSim : ::testing::Test {
  net::io_context io;
  std::unique_ptr<test::SimProcess> sim;
  std::filesystem::path users_file;
  std::unique_ptr<WsmanTransport> transport;

  void SetUp() override {
    if (!test::sim_available()) GTEST_SKIP() << "winhost-sim is not built (" << test::sim_binary() << ")";
    users_file = std::filesystem::temp_directory_path() / ("wincert-psrp-users-" + random_uuid());
    std::ofstream(users_file) << kUser << ":" << kPassword << "\n";
    sim = std::make_unique<test::SimProcess>(
        std::vector<std::string>{"--users", users_file.string(), "--allow-unencrypted"});
    ASSERT_TRUE(sim->running());
    auto endpoint = parse_endpoint(sim->url());
    ASSERT_TRUE(endpoint.ok());
    auto created = WsmanTransport::create(io.get_executor(), *endpoint,
                                          std::make_unique<BasicAuth>(kUser, Secret(kPassword), true));
    ASSERT_TRUE(created.ok());
    transport = std::move(*created);
  }
  void TearDown() override {
    transport.reset();
    sim.reset();
    std::error_code ec;
    if (!users_file.empty()) std::filesystem::remove(users_file, ec);
  }

  template <typename T>
  T run(net::awaitable<T> work) {
    return test::run_coro(io, std::move(work));
  }

  std::unique_ptr<WsmanRunspacePool> open(WsmanRunspacePoolOptions options = {}) {
    options.operation_timeout = 5s;
    auto pool = run(WsmanRunspacePool::open(*transport, options));
    EXPECT_THAT(pool, IsOk());
    return pool.ok() ? std::move(pool).value() : nullptr;
  }
};

TEST_F(PsrpSim, APoolTheHostDroppedIsReopenedTransparently) {
  WsmanRunspacePoolOptions options;
  options.idle_timeout = 1s;  // the host drops the pool after a second without requests
  auto pool = open(options);
  ASSERT_NE(pool, nullptr);
  const std::string first_shell = pool->shell_id();
  auto before = run(pool->invoke(script("Write-Output 'before'"), 30s));
  ASSERT_THAT(before, IsOk());
  EXPECT_EQ(lines(*before), std::vector<std::string>{"before"});

  std::this_thread::sleep_for(3s);  // idle past IdleTimeOut: winhost-sim deletes the shell, as Windows does
  auto after = run(pool->invoke(script("Write-Output 'after'"), 30s));
  ASSERT_THAT(after, IsOk());
  EXPECT_EQ(lines(*after), std::vector<std::string>{"after"});
  EXPECT_EQ(pool->counters().reopens, 1u);
  EXPECT_EQ(pool->counters().pools_opened, 2u);
  EXPECT_NE(pool->shell_id(), first_shell);
  EXPECT_FALSE(pool->broken());
  EXPECT_THAT(run(pool->close()), IsOk());
}

TEST_F(PsrpSim, APipelinePastItsDeadlineIsStoppedAndThePoolStaysUsable) {
  auto pool = open();
  ASSERT_NE(pool, nullptr);
  const auto started = std::chrono::steady_clock::now();
  auto slow = run(pool->invoke(script("Start-Sleep -Seconds 30"), 1s));
  EXPECT_THAT(slow, HasCode(ErrorCode::kDeadlineExceeded));
  EXPECT_NE(slow.error().message.find("it was stopped"), std::string::npos) << slow.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 4s);  // the long poll ends by the deadline
  EXPECT_FALSE(pool->broken());
  auto next = run(pool->invoke(script("Write-Output 'still here'"), 30s));
  ASSERT_THAT(next, IsOk());
  EXPECT_EQ(lines(*next), std::vector<std::string>{"still here"});
  EXPECT_THAT(run(pool->close()), IsOk());
}

TEST_F(PsrpSim, ConcurrentPipelinesTakeTurnsOnOneConnection) {
  WsmanRunspacePoolOptions options;
  options.settings.max_runspaces = 4;
  auto pool = open(options);
  ASSERT_NE(pool, nullptr);
  std::vector<std::optional<Result<PipelineResult>>> results(4);
  for (int i = 0; i < 4; ++i) {
    net::co_spawn(
        io,
        [&, i]() -> net::awaitable<void> {
          results[static_cast<std::size_t>(i)] =
              co_await pool->invoke(script("Write-Output 'pipeline " + std::to_string(i) + "'"), 30s);
        },
        net::detached);
  }
  io.restart();
  io.run();
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(results[static_cast<std::size_t>(i)].has_value());
    const auto& result = *results[static_cast<std::size_t>(i)];
    ASSERT_THAT(result, IsOk());
    EXPECT_EQ(lines(*result), std::vector<std::string>{"pipeline " + std::to_string(i)});
  }
  EXPECT_EQ(transport->counters().connections_opened, 1u);
  EXPECT_THAT(run(pool->close()), IsOk());
}

TEST_F(PsrpSim, AJeaEndpointRunsCommandsAndRefusesScriptText) {
  WsmanRunspacePoolOptions options;
  options.configuration_name = "WincertAgent";
  auto pool = open(options);
  ASSERT_NE(pool, nullptr);
  auto refused = run(pool->invoke(script("Get-Date"), 30s));
  ASSERT_THAT(refused, IsOk());
  EXPECT_EQ(refused->state.state, 5);
  ASSERT_TRUE(refused->state.error.has_value());
  EXPECT_EQ(refused->state.error->fully_qualified_error_id, "ScriptsNotAllowed");

  PipelineCommand call;
  call.command = "Invoke-WincertHostInfo";
  call.parameters.push_back({"ArgsJson", PsValue::string("{}")});
  std::vector<PipelineCommand> commands;
  commands.push_back(std::move(call));
  auto info = run(pool->invoke(std::move(commands), 30s));
  ASSERT_THAT(info, IsOk());
  EXPECT_TRUE(info->completed());
  ASSERT_EQ(info->output.size(), 1u);
  EXPECT_NE(info->output[0].to_display_string().find("Hostname"), std::string::npos);
  EXPECT_THAT(run(pool->close()), IsOk());
}

TEST_F(PsrpSim, AnUnknownConfigurationNameIsTheHostsFault) {
  WsmanRunspacePoolOptions options;
  options.configuration_name = "NoSuchEndpoint";
  options.operation_timeout = 5s;
  auto pool = run(WsmanRunspacePool::open(*transport, options));
  ASSERT_FALSE(pool.ok());
  EXPECT_NE(pool.error().message.find("NoSuchEndpoint"), std::string::npos) << pool.error().message;
  EXPECT_FALSE(pool.error().detail.wsman_fault.empty()) << pool.error().message;
}

}  // namespace
}  // namespace wincert::winrm::psrp
