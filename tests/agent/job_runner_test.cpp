// JobRunner (agent/job_runner.cpp) with a scripted Command, fake slow store sessions and the default
// registry, its results going to a real ResultSink over an outbox in a temp directory (not delivered:
// the tests read the outbox): a due job runs to its completion, per-host and global limits hold, a job
// cancelled in Command is skipped, the configuration fetch is retried when transient and re-done after
// an invalid session, an unusable configuration fails the job, a job whose result waits is not run
// again, JobTimeoutSeconds ends a stuck job, and shutdown drops queued jobs and waits for running ones.
#include "agent/job_runner.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "tests/agent/daemon_test_support.hpp"
#include "tests/agent/scripted_command.hpp"

namespace wincert::agent {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using testing::FixedSession;
using testing::run_until;
using testing::ScriptedCommand;
using testing::SlowSessions;
using testing::TempDir;

JobConfigReply config_reply(const std::string& job_id, const std::string& host, std::int64_t audit_id) {
  JobConfigReply reply;
  reply.result = testing::api_ok();
  reply.audit_id = audit_id;
  reply.inventory_endpoint = "Jobs/" + job_id + "/Inventory";
  reply.config = nlohmann::ordered_json::parse(testing::inventory_job_config(job_id, host, audit_id).dump());
  return reply;
}

struct RunnerFixture {
  TempDir dir;
  net::io_context io;
  ScriptedCommand command;
  FixedSession session;
  SlowSessions stores;
  jobs::CapabilityRegistry registry = jobs::make_default_registry();
  std::unique_ptr<Outbox> outbox;
  std::unique_ptr<ResultSink> sink;
  TaskGroup tasks{io.get_executor()};
  std::unique_ptr<JobRunner> runner;
  std::map<std::string, std::string> hosts;  // job id -> host, for the scripted configurations

  explicit RunnerFixture(std::chrono::milliseconds store_delay = 50ms, SchedulerLimits limits = {8, 2},
                         std::chrono::seconds job_timeout = 60s)
      : stores(store_delay) {
    outbox = std::move(Outbox::open(dir.path()).value());
    SinkOptions sink_options;
    sink = std::make_unique<ResultSink>(io.get_executor(), *outbox, command, session, sink_options);
    command.on_config = [this](const JobEntry& job, const std::string&) -> Result<JobConfigReply> {
      return config_reply(job.job_id, hosts.count(job.job_id) ? hosts[job.job_id] : "host-a.example.test", 7);
    };
    RunnerOptions options;
    options.retry_initial = 10ms;
    options.retry_max = 40ms;
    options.job_timeout = job_timeout;
    options.limits = limits;
    RunnerDeps deps;
    deps.api = &command;
    deps.session = &session;
    deps.sink = sink.get();
    deps.registry = &registry;
    deps.sessions = &stores;
    deps.tasks = &tasks;
    runner = std::make_unique<JobRunner>(io.get_executor(), options, deps);
  }
  std::vector<OutboxEntry> completions() const {
    std::vector<OutboxEntry> out;
    for (const auto& e : outbox->pending())
      if (e.kind == EntryKind::kCompletion) out.push_back(e);
    return out;
  }
  nlohmann::json body(const OutboxEntry& e) const { return nlohmann::json::parse(outbox->read_body(e).value()); }
  bool idle() const { return tasks.count() == 0 && runner->running() == 0; }
};

TEST(JobRunnerTest, ADueJobRunsToItsCompletion) {
  RunnerFixture f;
  f.runner->dispatch(testing::job_entry("job-1"));
  EXPECT_TRUE(f.runner->preparing("job-1"));
  ASSERT_TRUE(run_until(f.io, [&] { return f.completions().size() == 1 && f.idle(); }));
  EXPECT_EQ(f.command.config_requests, std::vector<std::string>{"job-1"});
  const auto pending = f.outbox->pending();
  ASSERT_EQ(pending.size(), 2u);  // the inventory, then the completion
  EXPECT_EQ(pending[0].kind, EntryKind::kInventory);
  EXPECT_EQ(pending[0].endpoint, "Jobs/job-1/Inventory");
  const auto done = f.body(pending[1]);
  EXPECT_EQ(done["JobId"], "job-1");
  EXPECT_EQ(done["Status"], static_cast<int>(jobs::JobStatus::kSuccess)) << done.dump();
  EXPECT_EQ(done["AuditId"], 7);
  EXPECT_EQ(f.runner->stats().jobs_started, 1u);
  EXPECT_EQ(f.runner->stats().jobs_finished, 1u);
  EXPECT_EQ(f.stores.hosts["host-a.example.test"].jobs, 1);
}

TEST(JobRunnerTest, PerHostAndGlobalLimitsHold) {
  RunnerFixture f(150ms, SchedulerLimits{3, 1});
  for (int i = 0; i < 8; ++i) {
    const std::string id = "job-" + std::to_string(i);
    f.hosts[id] = i % 2 ? "host-a.example.test" : "host-b.example.test";
    f.runner->dispatch(testing::job_entry(id));
  }
  ASSERT_TRUE(run_until(f.io, [&] { return f.completions().size() == 8 && f.idle(); }));
  EXPECT_EQ(f.stores.hosts["host-a.example.test"].max, 1);
  EXPECT_EQ(f.stores.hosts["host-b.example.test"].max, 1);
  EXPECT_EQ(f.stores.max_total, 2);  // one per host, two hosts (under the global 3)
  EXPECT_EQ(f.runner->scheduler().max_running_seen(), 2);
}

TEST(JobRunnerTest, AJobCancelledInCommandIsNotRun) {
  RunnerFixture f;
  f.command.on_config = [](const JobEntry& job, const std::string&) -> Result<JobConfigReply> {
    auto reply = config_reply(job.job_id, "host-a.example.test", 7);
    reply.cancelled = true;
    return reply;
  };
  f.runner->dispatch(testing::job_entry("job-1"));
  ASSERT_TRUE(run_until(f.io, [&] { return f.runner->stats().jobs_cancelled == 1 && f.idle(); }));
  EXPECT_EQ(f.runner->stats().jobs_started, 0u);
  EXPECT_EQ(f.outbox->size(), 0u);
  EXPECT_TRUE(f.stores.hosts.empty());
}

TEST(JobRunnerTest, ATransientConfigurationFailureIsFetchedAgain) {
  RunnerFixture f;
  int failures = 1;
  f.command.on_config = [&](const JobEntry& job, const std::string&) -> Result<JobConfigReply> {
    if (failures-- > 0) return Error::unavailable("Command answered HTTP 503").with_http_status(503);
    return config_reply(job.job_id, "host-a.example.test", 7);
  };
  f.runner->dispatch(testing::job_entry("job-1"));
  ASSERT_TRUE(run_until(f.io, [&] { return f.completions().size() == 1 && f.idle(); }));
  EXPECT_EQ(f.command.config_requests.size(), 2u);
}

TEST(JobRunnerTest, AnInvalidSessionRenewsTheTokenAndTheConfigurationIsFetchedAgain) {
  RunnerFixture f;
  std::vector<std::string> tokens;
  f.command.on_config = [&](const JobEntry& job, const std::string& token) -> Result<JobConfigReply> {
    tokens.push_back(token);
    if (token == "tok-1") {
      JobConfigReply refused;
      refused.result = testing::api_error(testing::kInvalidSessionCode);
      return refused;
    }
    return config_reply(job.job_id, "host-a.example.test", 7);
  };
  f.runner->dispatch(testing::job_entry("job-1"));
  ASSERT_TRUE(run_until(f.io, [&] { return f.completions().size() == 1 && f.idle(); }));
  EXPECT_EQ(tokens, (std::vector<std::string>{"tok-1", "tok-2"}));
  EXPECT_EQ(f.session.invalidations, 1);
}

TEST(JobRunnerTest, AnUnusableConfigurationEndsTheJobWithAFailure) {
  RunnerFixture f;
  f.command.on_config = [](const JobEntry&, const std::string&) -> Result<JobConfigReply> {
    return Error::invalid_argument("the configuration of job job-1 is not JSON");
  };
  f.runner->dispatch(testing::job_entry("job-1"));
  ASSERT_TRUE(run_until(f.io, [&] { return f.completions().size() == 1 && f.idle(); }));
  EXPECT_EQ(f.command.config_requests.size(), 1u);  // permanent: not fetched again
  EXPECT_EQ(f.body(f.completions()[0])["Status"], static_cast<int>(jobs::JobStatus::kFailure));
  EXPECT_EQ(f.runner->stats().jobs_started, 0u);
}

TEST(JobRunnerTest, ACommandRefusalOfTheConfigurationLeavesTheJobForItsNextRun) {
  RunnerFixture f;
  f.command.on_config = [](const JobEntry&, const std::string&) -> Result<JobConfigReply> {
    JobConfigReply refused;
    refused.result = testing::api_error("A0100099");
    return refused;
  };
  f.runner->dispatch(testing::job_entry("job-1"));
  ASSERT_TRUE(run_until(f.io, [&] { return !f.runner->preparing("job-1") && f.idle(); }));
  EXPECT_EQ(f.command.config_requests.size(), 1u);
  EXPECT_EQ(f.outbox->size(), 0u);
}

TEST(JobRunnerTest, AJobWhoseResultWaitsOrWhoseRunGoesOnIsNotStartedAgain) {
  RunnerFixture f(300ms);
  f.sink->store_completion(testing::job_entry("done"), 1, jobs::JobStatus::kSuccess, "");
  f.runner->dispatch(testing::job_entry("done"));
  EXPECT_FALSE(f.runner->preparing("done"));

  f.runner->dispatch(testing::job_entry("job-1"));
  f.runner->dispatch(testing::job_entry("job-1"));  // still preparing
  ASSERT_TRUE(run_until(f.io, [&] { return f.runner->running() == 1; }));
  f.runner->dispatch(testing::job_entry("job-1"));  // still running
  ASSERT_TRUE(run_until(f.io, [&] { return f.idle(); }));
  EXPECT_EQ(f.command.config_requests, std::vector<std::string>{"job-1"});
  EXPECT_EQ(f.runner->stats().jobs_started, 1u);
}

TEST(JobRunnerTest, AJobPastJobTimeoutSecondsEndsWithAFailure) {
  RunnerFixture f(10s, SchedulerLimits{8, 2}, 1s);
  f.runner->dispatch(testing::job_entry("job-1"));
  ASSERT_TRUE(run_until(
      f.io, [&] { return f.completions().size() == 1 && f.idle(); }, 10s));
  const auto done = f.body(f.completions()[0]);
  EXPECT_EQ(done["Status"], static_cast<int>(jobs::JobStatus::kFailure));
  EXPECT_NE(done["Message"].get<std::string>().find("JobTimeoutSeconds"), std::string::npos) << done.dump();
}

TEST(JobRunnerTest, StopDropsQueuedJobsAndWaitsForRunningOnes) {
  RunnerFixture f(300ms, SchedulerLimits{1, 1});
  for (const char* id : {"job-1", "job-2", "job-3"}) f.runner->dispatch(testing::job_entry(id));
  ASSERT_TRUE(
      run_until(f.io, [&] { return f.runner->stats().jobs_started == 1 && f.runner->scheduler().queued() == 2; }));
  std::optional<bool> all_done;
  net::co_spawn(
      f.io, [&]() -> net::awaitable<void> { all_done = co_await f.runner->stop(5s); }, net::detached);
  ASSERT_TRUE(run_until(f.io, [&] { return all_done.has_value() && f.idle(); }));
  EXPECT_TRUE(*all_done);
  EXPECT_EQ(f.runner->stats().jobs_started, 1u);
  EXPECT_EQ(f.runner->stats().jobs_finished, 1u);
  EXPECT_EQ(f.completions().size(), 1u);
  f.runner->dispatch(testing::job_entry("job-4"));  // stopped: nothing new
  run_until(
      f.io, [] { return false; }, 100ms);
  // Configurations are fetched only for free capacity (issue 14): the two queued jobs never had a slot, so
  // Command never saw them open.
  EXPECT_EQ(f.command.config_requests, std::vector<std::string>{"job-1"});
  EXPECT_FALSE(f.runner->preparing("job-2"));
}

}  // namespace
}  // namespace wincert::agent
