// The per-job deadline: a job stuck on a peer ends at the deadline with a clear, retryable failure;
// a job that finishes in time keeps its own result.
#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <optional>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "agent/config.hpp"
#include "agent/job_deadline.hpp"

namespace wincert::agent {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;

// A job that waits `how_long` on a timer (as it would on a silent host), then succeeds.
net::awaitable<jobs::JobResult> waiting_job(std::chrono::milliseconds how_long, bool* cancelled) {
  net::steady_timer timer(co_await net::this_coro::executor);
  timer.expires_after(how_long);
  auto [ec] = co_await timer.async_wait(net::as_tuple(net::use_awaitable));
  if (ec) *cancelled = true;
  co_return jobs::JobResult::success(7, "done");
}

std::optional<jobs::JobResult> run(net::io_context& io, std::chrono::milliseconds job_takes, std::chrono::seconds limit,
                                   bool* cancelled) {
  std::optional<jobs::JobResult> out;
  auto body = [&]() -> net::awaitable<void> {
    auto job = waiting_job(job_takes, cancelled);  // named: GCC 12 and temporaries across co_await
    out = co_await run_with_deadline(std::move(job), limit, "job-1", 7);
  };
  net::co_spawn(io, body, net::detached);
  io.run_for(30s);
  return out;
}

TEST(JobDeadline, AStuckJobEndsAtTheDeadlineWithAClearFailure) {
  net::io_context io;
  bool cancelled = false;
  const auto start = std::chrono::steady_clock::now();
  auto result = run(io, 600s, 1s, &cancelled);
  ASSERT_TRUE(result.has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_EQ(result->status, jobs::JobStatus::kFailure);
  EXPECT_EQ(result->message, "job job-1 did not finish within 1 s (JobTimeoutSeconds) and was stopped");
  EXPECT_EQ(result->job_history_id, 7);
  EXPECT_TRUE(result->retryable());
  EXPECT_EQ(result->error_code, ErrorCode::kDeadlineExceeded);
  EXPECT_TRUE(cancelled) << "the job's pending wait was not cancelled";
}

TEST(JobDeadline, AJobFinishingInTimeKeepsItsResult) {
  net::io_context io;
  bool cancelled = false;
  auto result = run(io, 50ms, 10s, &cancelled);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->status, jobs::JobStatus::kSuccess);
  EXPECT_EQ(result->message, "done");
  EXPECT_FALSE(cancelled);
}

// JobTimeoutSeconds and WinRM.ReadTimeoutSeconds: documented in the example configuration, defaults,
// and range checks.
Result<AgentConfig> parse_example(const std::function<void(nlohmann::json&)>& change) {
  const std::string example = std::string(WINCERT_SOURCE_DIR) + "/config/agent.example.json";
  std::ifstream in(example);
  std::stringstream text;
  text << in.rdbuf();
  auto doc = nlohmann::json::parse(text.str());
  for (const char* key : {"SecretsFile", "ServerCaFile", "CertPath", "KeyPath"}) doc.erase(key);
  for (const char* key : {"CaFile", "ClientCertPath", "ClientKeyPath"}) doc["WinRM"].erase(key);
  change(doc);
  return parse_agent_config(doc.dump(), example, std::filesystem::temp_directory_path().string(),
                            [](std::string_view name) -> std::optional<std::string> {
                              if (name == kPasswordEnv) return "pw";
                              return std::nullopt;
                            });
}

TEST(JobDeadline, TimeoutsAreConfigurable) {
  auto example = parse_example([](nlohmann::json&) {});
  ASSERT_TRUE(example.ok()) << example.error().message;
  EXPECT_EQ(example->job_timeout, std::chrono::seconds(3600));
  EXPECT_EQ(example->winrm.transport.exchange.read_timeout, std::chrono::seconds(60));
  auto changed = parse_example([](nlohmann::json& doc) {
    doc["JobTimeoutSeconds"] = 900;
    doc["WinRM"]["ReadTimeoutSeconds"] = 25;
  });
  ASSERT_TRUE(changed.ok()) << changed.error().message;
  EXPECT_EQ(changed->job_timeout, std::chrono::seconds(900));
  EXPECT_EQ(changed->winrm.transport.exchange.read_timeout, std::chrono::seconds(25));
  auto too_short = parse_example([](nlohmann::json& doc) { doc["JobTimeoutSeconds"] = 1; });
  ASSERT_FALSE(too_short.ok());
  EXPECT_NE(too_short.error().message.find("JobTimeoutSeconds"), std::string::npos) << too_short.error().message;
}

}  // namespace
}  // namespace wincert::agent
