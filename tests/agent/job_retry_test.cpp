// Retries of transient failures with the real layers below run_job: WinrmSessionFactory, the WinRM
// transport and the host scripts against a winhost-sim child. A host that refuses the first connection and
// answers the second gives a job that succeeds on its second attempt; a host that stays down fails after the
// attempts allowed, counting them; a permanent failure of a host script (a missing store) is tried once.
// Faults with a structured detail the simulator cannot produce (HTTP 503, w:QuotaLimit, a broken shell) are
// pinned at the handler border in tests/jobs/retry_test.cpp.
#include <gtest/gtest.h>

#include "agent/replay.hpp"
#include "agent/store_sessions.hpp"
#include "jobs/capabilities.hpp"
#include "jobs/job_config.hpp"
#include "jobs/target.hpp"
#include "session_test_support.hpp"

namespace wincert::agent::testing {
namespace {

namespace net = boost::asio;

// Sends the first `down_for` session opens to a port nobody listens on (the host is still booting), the
// rest to the real target.
class FlakyHostSessions final : public jobs::StoreSessionFactory {
 public:
  FlakyHostSessions(WinrmSessionFactory& real, int down_for) : real_(real), down_for_(down_for) {}
  net::awaitable<Result<jobs::HostSessionHandle>> open(const jobs::Target& target) override {
    ++opens;
    if (opens > down_for_) co_return co_await real_.open(target);
    jobs::Target down = target;
    down.remote.port = closed_port();
    down.remote.endpoint_url = jobs::endpoint_url(down.remote.host, down.remote.port, down.remote.https);
    co_return co_await real_.open(down);
  }
  int opens = 0;

 private:
  WinrmSessionFactory& real_;
  int down_for_;
};

struct JobRetryTest : ::testing::Test {
  net::io_context io;
  std::unique_ptr<Host> host;
  jobs::CapabilityRegistry registry = jobs::make_default_registry();
  jobs::JobServices services;
  int submissions = 0;

  void start(const std::function<void(json&)>& prepare = {}) {
    host = std::make_unique<Host>(SimAuth::kNtlm, prepare);
    ASSERT_TRUE(host->running()) << "winhost-sim did not start";
    services.retry = {3, std::chrono::milliseconds(5), std::chrono::milliseconds(20)};
    services.callbacks.begin_inventory =
        jobs::collect_inventory([this](std::vector<jobs::InventoryItem>) -> net::awaitable<Status> {
          ++submissions;
          co_return Status{};
        });
  }
  void SetUp() override {
    if (!winrm::test::sim_available()) GTEST_SKIP() << "winhost-sim is not built";
  }

  jobs::JobConfig job(const std::string& fixture) {
    ReplayOptions options;
    options.job_file = fixture_job(fixture);
    options.sets = {"CertificateStoreDetails.ClientMachine=" + host->client_machine(),
                    "CertificateStoreDetails.Properties.WinRM Protocol=http",
                    "CertificateStoreDetails.Properties.WinRM Authentication=ntlm",
                    std::string("ServerUsername=") + kNtlmUser, std::string("ServerPassword=") + kPassword};
    auto text = load_job_text(options);
    EXPECT_TRUE(text.ok()) << text.error().message;
    auto config = jobs::parse_job_config(text.value());
    EXPECT_TRUE(config.ok()) << config.error().message;
    return config.value();
  }

  jobs::JobResult run(jobs::StoreSessionFactory& sessions, const jobs::JobConfig& config) {
    services.sessions = &sessions;
    return run_coro(io, jobs::run_job(registry, config, services));
  }
};

TEST_F(JobRetryTest, AHostThatRefusesTheFirstConnectionServesTheSecondAttempt) {
  start();
  WinrmSessionFactory factory;
  FlakyHostSessions flaky(factory, 1);
  auto result = run(flaky, job("WinCertInventory.json"));
  EXPECT_EQ(result.status, jobs::JobStatus::kSuccess) << result.message;
  EXPECT_EQ(result.attempts, 2);
  EXPECT_EQ(flaky.opens, 2);
  EXPECT_EQ(submissions, 1) << "the refused attempt submitted nothing";
  EXPECT_TRUE(result.message.ends_with(" (2 attempts)")) << result.message;
  run_coro(io, factory.shutdown());
}

TEST_F(JobRetryTest, AHostThatStaysDownFailsAfterTheAttemptsAllowedNamingThem) {
  start();
  WinrmSessionFactory factory;
  FlakyHostSessions flaky(factory, 100);
  auto result = run(flaky, job("WinCertInventory.json"));
  ASSERT_EQ(result.status, jobs::JobStatus::kFailure);
  EXPECT_EQ(result.error_code, ErrorCode::kUnavailable);
  EXPECT_TRUE(result.retryable());
  EXPECT_EQ(result.attempts, 3);
  EXPECT_EQ(flaky.opens, 3);
  // What a person reads: the refused endpoint and how often it was tried.
  EXPECT_NE(result.message.find("refused"), std::string::npos) << result.message;
  EXPECT_TRUE(result.message.ends_with(" (3 attempts)")) << result.message;
  run_coro(io, factory.shutdown());
}

TEST_F(JobRetryTest, AMissingStoreOnTheHostIsAPermanentFailureTriedOnce) {
  start([](json& model) { model["faults"]["store_missing"] = json::array({"My"}); });
  WinrmSessionFactory factory;
  auto result = run(factory, job("WinCertInventory.json"));
  ASSERT_EQ(result.status, jobs::JobStatus::kFailure);
  ASSERT_TRUE(result.error_code.has_value());
  EXPECT_FALSE(result.retryable()) << error_code_name(*result.error_code) << ": " << result.message;
  EXPECT_EQ(result.attempts, 1);
  EXPECT_EQ(host->counter("shells_created"), 1u) << host->status().dump();
  EXPECT_EQ(result.message.find("attempts"), std::string::npos) << result.message;
  run_coro(io, factory.shutdown());
}

}  // namespace
}  // namespace wincert::agent::testing
