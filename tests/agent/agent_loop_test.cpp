// The whole agent loop against an in-test Command (register, heartbeat, job list, configuration,
// inventory, completion) with fake slow store sessions: jobs run within the limits, results arrive,
// the outbox carries results across a Command outage and a restart, sessions are renewed, approval
// is waited for, a disapproved orchestrator stops, cancelled jobs are skipped, shutdown drains, and
// no secret reaches the log.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <filesystem>

#include "agent/agent_loop.hpp"
#include "common/log.hpp"
#include "tests/agent/daemon_test_support.hpp"

namespace wincert::agent {
namespace {

namespace net = boost::asio;
using nlohmann::json;
using namespace std::chrono_literals;
using testing::FakeRequest;
using testing::FakeResponse;
using testing::FakeServer;
using testing::SlowSessions;
using testing::TempDir;

json ok_result() { return json{{"Status", 1}, {"Error", nullptr}}; }
json error_result(const std::string& code, const std::string& message) {
  return json{{"Status", 3}, {"Error", {{"Code", 0}, {"CodeString", code}, {"Message", message}}}};
}

// A stateful Command: jobs, sessions, received results.
class FakeCommand {
 public:
  struct Job {
    std::string id;
    std::string host;
    std::string schedule;
    std::int64_t audit_id = 0;
    bool cancelled = false;
  };

  FakeCommand() : server_([this](const FakeRequest& r) { return handle(r); }) {}

  std::string base() const { return server_.url("/KeyfactorAgents"); }
  FakeServer& server() { return server_; }

  void add_job(Job job) {
    std::lock_guard lock(mutex_);
    known_.push_back(job);
    jobs_.push_back(std::move(job));
  }
  // The list Register hands out; endpoints of jobs listed before keep answering.
  void set_jobs(std::vector<Job> jobs) {
    std::lock_guard lock(mutex_);
    known_.insert(known_.end(), jobs.begin(), jobs.end());
    jobs_ = std::move(jobs);
  }
  // Completions answer 503 while set.
  std::atomic<bool> completions_down{false};
  // Register answers with this error code (no session) while it is not empty.
  void set_register_error(std::string code, std::string message, int times) {
    std::lock_guard lock(mutex_);
    register_error_ = {std::move(code), std::move(message)};
    register_error_times_ = times;
  }
  std::atomic<bool> invalidate_next_heartbeat{false};
  // Register answers with this HTTP status (and a body that reads like a 401) while it is not 0.
  std::atomic<int> register_http_status{0};

  std::vector<json> completions() const {
    std::lock_guard lock(mutex_);
    return completions_;
  }
  std::vector<json> inventories() const {
    std::lock_guard lock(mutex_);
    return inventories_;
  }
  int registrations() const {
    std::lock_guard lock(mutex_);
    return registrations_;
  }
  std::vector<json> register_bodies() const {
    std::lock_guard lock(mutex_);
    return register_bodies_;
  }

 private:
  FakeResponse handle(const FakeRequest& r) {
    std::lock_guard lock(mutex_);
    const json body = r.json();
    const std::string prefix = "/KeyfactorAgents";
    if (r.target == prefix + "/Session/Register") {
      ++registrations_;
      register_bodies_.push_back(body);
      if (const int status = register_http_status.load(); status != 0)
        return FakeResponse{static_cast<unsigned>(status), "Command rejected you (HTTP 401 at here)"};
      if (register_error_times_ > 0) {
        --register_error_times_;
        return FakeResponse::json(
            {{"Session", nullptr}, {"Result", error_result(register_error_.first, register_error_.second)}});
      }
      token_ = "tok-" + std::to_string(registrations_);
      json list = json::array();
      for (const auto& job : jobs_) {
        list.push_back({{"JobTypeId", "00000000-0000-0000-0000-000000000001"},
                        {"JobId", job.id},
                        {"ConfigurationEndpoint", "KeyfactorAgents/Jobs/" + job.id + "/Config"},
                        {"CompletionEndpoint", "/KeyfactorAgents/Jobs/" + job.id + "/Complete"},
                        {"Cron", nullptr},
                        {"Schedule", job.schedule.empty() ? json(nullptr) : json(job.schedule)},
                        {"Priority", 5}});
      }
      return FakeResponse::json({{"Session",
                                  {{"Token", token_},
                                   {"AgentId", "0f0e0d0c-0b0a-0908-0706-050403020100"},
                                   {"HeartbeatInterval", 5},
                                   {"ClientMachine", body.value("ClientMachine", "")},
                                   {"Jobs", list}}},
                                 {"Result", ok_result()}});
    }
    if (body.value("SessionToken", "") != token_) {
      // The invalid-session code sim/command answers with (the agent decides on it, not on the message).
      return FakeResponse::json({{"Result", error_result("A0100012", "Session token is invalid or expired")}});
    }
    if (r.target == prefix + "/Session/Heartbeat") {
      const bool valid = !invalidate_next_heartbeat.exchange(false);
      if (!valid) token_.clear();
      return FakeResponse::json({{"HeartbeatInterval", 5}, {"SessionValid", valid}, {"Result", ok_result()}});
    }
    for (const auto& job : known_) {
      const std::string jp = prefix + "/Jobs/" + job.id;
      if (r.target == jp + "/Config") {
        json config = testing::inventory_job_config(job.id, job.host, job.audit_id);
        return FakeResponse::json({{"AuditId", job.audit_id},
                                   {"JobCancelled", job.cancelled},
                                   {"InventoryEndpoint", "KeyfactorAgents/Jobs/" + job.id + "/Inventory"},
                                   {"Result", ok_result()},
                                   {"Job", config}});
      }
      if (r.target == jp + "/Inventory") {
        inventories_.push_back(body);
        return FakeResponse::json({{"Result", ok_result()}});
      }
      if (r.target == jp + "/Complete") {
        if (completions_down) return FakeResponse{503, "maintenance"};
        completions_.push_back(body);
        return FakeResponse::json({{"Result", ok_result()}});
      }
    }
    return FakeResponse{404, "{}"};
  }

  mutable std::mutex mutex_;
  std::vector<Job> jobs_;
  std::vector<Job> known_;
  std::string token_;
  int registrations_ = 0;
  std::vector<json> register_bodies_;
  std::pair<std::string, std::string> register_error_;
  int register_error_times_ = 0;
  std::vector<json> completions_;
  std::vector<json> inventories_;
  FakeServer server_;  // last: stopped first, while the state above still exists
};

AgentConfig test_config(const std::string& base, const std::string& outbox) {
  AgentConfig cfg;
  cfg.agents_server_uri = base;
  cfg.orchestrator_name = "uo-test";
  cfg.auth_mode = CommandAuthMode::kBasic;
  cfg.username = "KEYFACTOR\\svc";
  cfg.password = Secret("cmd-pass-SECRET");
  cfg.outbox_directory = outbox;
  cfg.max_concurrent_jobs = 4;
  cfg.max_jobs_per_host = 2;
  cfg.heartbeat_interval = std::chrono::seconds(1);
  cfg.job_poll_interval = std::chrono::seconds(0);
  cfg.shutdown_grace = std::chrono::seconds(5);
  cfg.outbox_flush_timeout = std::chrono::seconds(2);
  cfg.retry_initial = 50ms;
  cfg.retry_max = 300ms;
  cfg.server_connect_timeout = std::chrono::seconds(5);
  cfg.server_request_timeout = std::chrono::seconds(5);
  return cfg;
}

struct AgentRun {
  int code = -1;
  bool finished = false;
};

// Runs the agent until `done()` holds (then asks it to stop) or `limit` passes.
AgentRun run_until(net::io_context& io, Agent& agent, std::function<bool()> done, std::chrono::seconds limit = 30s) {
  AgentRun run;
  net::co_spawn(io, agent.run(), [&](std::exception_ptr e, int code) {
    run.code = e ? 255 : code;
    run.finished = true;
  });
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        net::steady_timer t(io);
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!run.finished && !done() && std::chrono::steady_clock::now() < deadline) {
          t.expires_after(20ms);
          co_await t.async_wait(net::use_awaitable);
        }
        agent.request_stop();
      },
      net::detached);
  const auto hard_deadline = std::chrono::steady_clock::now() + limit + 20s;
  while (!run.finished && std::chrono::steady_clock::now() < hard_deadline) io.run_one_for(1s);
  io.poll();  // let the poller finish
  return run;
}

std::unique_ptr<Agent> make_agent(net::io_context& io, AgentConfig cfg, jobs::StoreSessionFactory& sessions) {
  AgentDeps deps;
  deps.sessions = &sessions;
  auto agent = Agent::create(io.get_executor(), std::move(cfg), deps);
  EXPECT_TRUE(agent.ok()) << (agent.ok() ? "" : agent.error().message);
  return agent.ok() ? std::move(agent.value()) : nullptr;
}

std::vector<FakeCommand::Job> inventory_jobs(int count, int hosts, const std::string& schedule = "") {
  std::vector<FakeCommand::Job> out;
  for (int i = 0; i < count; ++i)
    out.push_back(
        {"job-" + std::to_string(i), "host" + std::to_string(i % hosts) + ".example.com", schedule, 1000 + i});
  return out;
}

// /readyz's answer and the metrics the loop feeds (agent/metrics/agent_metrics.hpp).
TEST(AgentTest, ReadinessAndMetricsFollowTheRun) {
  TempDir dir;
  FakeCommand command;
  command.set_jobs(inventory_jobs(3, 1));
  net::io_context io;
  SlowSessions sessions(10ms);
  metrics::AgentMetrics m;
  AgentDeps deps;
  deps.sessions = &sessions;
  deps.metrics = &m;
  auto created = Agent::create(io.get_executor(), test_config(command.base(), dir.path()), deps);
  ASSERT_TRUE(created.ok()) << created.error().message;
  auto agent = std::move(created.value());
  const auto before = agent->not_ready_reason();
  ASSERT_TRUE(before);
  EXPECT_NE(before->find("not registered"), std::string::npos) << *before;
  bool was_ready = false;
  const auto run = run_until(io, *agent, [&] {
    if (!agent->not_ready_reason()) was_ready = true;
    return command.completions().size() >= 3;
  });
  ASSERT_TRUE(run.finished);
  EXPECT_TRUE(was_ready);
  const auto after = agent->not_ready_reason();
  ASSERT_TRUE(after);
  EXPECT_NE(after->find("stopping"), std::string::npos) << *after;

  const std::string cap = "CertStores.WinCert.Inventory";
  EXPECT_EQ(m.jobs_started.value({cap}), 3);
  EXPECT_EQ(m.jobs_finished.value({cap, "Success"}), 3);
  EXPECT_EQ(m.job_duration.count({cap}), 3u);
  EXPECT_EQ(m.deliveries.value({"completion", "delivered"}), 3);
  EXPECT_EQ(m.session.value({"stopping"}), 1);
  EXPECT_EQ(m.session.value({"registered"}), 0);
}

TEST(AgentTest, RunsTheJobListWithinLimitsAndReportsEveryResult) {
  TempDir dir;
  FakeCommand command;
  command.set_jobs(inventory_jobs(12, 3));
  net::io_context io;
  SlowSessions sessions(100ms);
  sessions.inventory_items = 3;
  auto agent = make_agent(io, test_config(command.base(), dir.path()), sessions);
  ASSERT_TRUE(agent);
  const auto run = run_until(io, *agent, [&] { return command.completions().size() >= 12; });
  ASSERT_TRUE(run.finished);
  EXPECT_EQ(run.code, kExitOk);
  EXPECT_TRUE(agent->quiescent());

  const auto completions = command.completions();
  ASSERT_EQ(completions.size(), 12u);
  std::set<std::string> ids;
  for (const auto& c : completions) {
    EXPECT_EQ(c["Status"], 2) << c.dump();
    const std::string id = c["JobId"];
    ids.insert(id);
    EXPECT_EQ(c["AuditId"], 1000 + std::stoi(id.substr(4)));
  }
  EXPECT_EQ(ids.size(), 12u);
  for (const auto& r : command.server().requests()) {
    if (r.target.find("/Complete") != std::string::npos) {
      EXPECT_EQ(r.body.rfind("{\"SessionToken\":\"tok-1\",", 0), 0u) << r.body;
    }
  }
  const auto inventories = command.inventories();
  ASSERT_EQ(inventories.size(), 12u);
  for (const auto& inv : inventories) EXPECT_EQ(inv["Inventory"].size(), 3u);

  // Limits: 4 at once overall, 2 per host, and both reached.
  EXPECT_LE(sessions.max_total, 4);
  EXPECT_EQ(sessions.max_total, 4);
  for (const auto& [host, stats] : sessions.hosts) {
    EXPECT_LE(stats.max, 2) << host;
    EXPECT_EQ(stats.jobs, 4) << host;
  }
  // The AgentId Command assigned is kept for the next start; the capabilities were sent.
  EXPECT_EQ(testing::read_text(dir.file("agent-id")), "0f0e0d0c-0b0a-0908-0706-050403020100\n");
  EXPECT_EQ(agent->outbox().size(), 0u);
  const auto reg = command.register_bodies().front();
  EXPECT_EQ(reg["ClientMachine"], "uo-test");
  EXPECT_EQ(reg["AgentId"], "");
  EXPECT_GE(reg["Capabilities"].size(), 9u);
}

TEST(AgentTest, LargeInventoriesAreSentInPartsBeforeTheCompletion) {
  TempDir dir;
  FakeCommand command;
  command.set_jobs(inventory_jobs(1, 1));
  net::io_context io;
  SlowSessions sessions(1ms);
  sessions.inventory_items = 40;
  AgentConfig cfg = test_config(command.base(), dir.path());
  cfg.inventory_max_update_bytes = 1500;
  auto agent = make_agent(io, cfg, sessions);
  ASSERT_TRUE(agent);
  const auto run = run_until(io, *agent, [&] { return !command.completions().empty(); });
  EXPECT_EQ(run.code, kExitOk);
  const auto inventories = command.inventories();
  ASSERT_GT(inventories.size(), 3u);
  std::size_t items = 0;
  for (const auto& inv : inventories) items += inv["Inventory"].size();
  EXPECT_EQ(items, 40u);
  // The completion came after every part.
  std::size_t inventory_requests = 0;
  bool completion_seen = false;
  for (const auto& r : command.server().requests()) {
    if (r.target.find("/Inventory") != std::string::npos) {
      EXPECT_FALSE(completion_seen);
      ++inventory_requests;
    }
    if (r.target.find("/Complete") != std::string::npos) completion_seen = true;
  }
  EXPECT_EQ(inventory_requests, inventories.size());
}

TEST(AgentTest, ResultsSurviveACommandOutageAndARestartAndAreSentInOrder) {
  TempDir dir;
  FakeCommand command;
  command.set_jobs(inventory_jobs(3, 3));
  command.completions_down = true;
  SlowSessions sessions(10ms);
  {
    net::io_context io;
    AgentConfig cfg = test_config(command.base(), dir.path());
    cfg.outbox_flush_timeout = std::chrono::milliseconds(300);
    auto agent = make_agent(io, cfg, sessions);
    ASSERT_TRUE(agent);
    // Stop once all three jobs ran: the first completion is stuck behind the 503s, and everything
    // stored after it waits its turn (results go out in order).
    const auto run = run_until(io, *agent, [&] { return agent->stats().jobs_finished >= 3; });
    EXPECT_EQ(run.code, kExitOk);
    EXPECT_TRUE(command.completions().empty());
    EXPECT_GE(agent->outbox().deliverable_count(), 3u);
  }
  // Next start: Command is back and has no jobs for us; the stored results go out first.
  command.completions_down = false;
  command.set_jobs({});
  {
    net::io_context io;
    auto agent = make_agent(io, test_config(command.base(), dir.path()), sessions);
    ASSERT_TRUE(agent);
    const auto run = run_until(io, *agent, [&] { return command.completions().size() >= 3; });
    EXPECT_EQ(run.code, kExitOk);
  }
  // The jobs are gone from Command's list, but their endpoints still answer (the fake keeps them).
  const auto completions = command.completions();
  ASSERT_EQ(completions.size(), 3u);
  for (const auto& c : completions) EXPECT_EQ(c["Status"], 2);
  EXPECT_EQ(command.inventories().size(), 3u);
  // The second start sent the AgentId it had been given.
  EXPECT_EQ(command.register_bodies().back()["AgentId"], "0f0e0d0c-0b0a-0908-0706-050403020100");
}

TEST(AgentTest, AnInvalidSessionLeadsToANewRegistrationAndTheNewJobList) {
  TempDir dir;
  FakeCommand command;
  command.set_jobs(inventory_jobs(1, 1));
  net::io_context io;
  SlowSessions sessions(1ms);
  auto agent = make_agent(io, test_config(command.base(), dir.path()), sessions);
  ASSERT_TRUE(agent);
  bool switched = false;
  const auto run = run_until(io, *agent, [&] {
    if (!switched && command.completions().size() == 1) {
      switched = true;
      command.add_job({"job-new", "other.example.com", "", 5000, false});
      command.invalidate_next_heartbeat = true;  // how Command tells the agent the list changed
    }
    return command.completions().size() >= 2;
  });
  EXPECT_EQ(run.code, kExitOk);
  ASSERT_EQ(command.completions().size(), 2u);
  EXPECT_EQ(command.completions()[1]["JobId"], "job-new");
  EXPECT_GE(command.registrations(), 2);
  // The immediate job of the first list was not run again after re-registration.
  EXPECT_EQ(sessions.hosts["host0.example.com"].jobs, 1);
}

TEST(AgentTest, WaitsForApprovalThenRuns) {
  TempDir dir;
  FakeCommand command;
  command.set_jobs(inventory_jobs(1, 1));
  command.set_register_error("A0100007", "The orchestrator has not been approved", 3);
  net::io_context io;
  SlowSessions sessions(1ms);
  auto agent = make_agent(io, test_config(command.base(), dir.path()), sessions);
  ASSERT_TRUE(agent);
  const auto run = run_until(io, *agent, [&] { return !command.completions().empty(); });
  EXPECT_EQ(run.code, kExitOk);
  EXPECT_EQ(command.registrations(), 4);
  EXPECT_EQ(command.completions().size(), 1u);
}

TEST(AgentTest, ADisapprovedOrchestratorStopsWithAClearExitCode) {
  TempDir dir;
  FakeCommand command;
  command.set_jobs(inventory_jobs(1, 1));
  command.set_register_error("A0100008", "The orchestrator was disapproved", 100);
  net::io_context io;
  SlowSessions sessions(1ms);
  auto agent = make_agent(io, test_config(command.base(), dir.path()), sessions);
  ASSERT_TRUE(agent);
  const auto start = std::chrono::steady_clock::now();
  const auto run = run_until(
      io, *agent, [] { return false; }, 10s);
  EXPECT_TRUE(run.finished);
  EXPECT_EQ(run.code, kExitRefused);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_EQ(command.registrations(), 1);
  EXPECT_TRUE(command.completions().empty());
}

// Command's 401 on Register is an authentication failure by its code and status: the agent stops with
// the refused exit code. A 503 whose body reads like a 401 is only a transient failure: it keeps trying.
TEST(AgentTest, ACommand401StopsTheAgentAndA503KeepsItTrying) {
  TempDir dir;
  FakeCommand command;
  command.register_http_status = 401;
  net::io_context io;
  SlowSessions sessions(1ms);
  auto agent = make_agent(io, test_config(command.base(), dir.path()), sessions);
  ASSERT_TRUE(agent);
  auto run = run_until(
      io, *agent, [] { return false; }, 10s);
  EXPECT_TRUE(run.finished);
  EXPECT_EQ(run.code, kExitRefused);

  TempDir dir2;
  FakeCommand busy;
  busy.register_http_status = 503;
  net::io_context io2;
  auto agent2 = make_agent(io2, test_config(busy.base(), dir2.path()), sessions);
  ASSERT_TRUE(agent2);
  run = run_until(
      io2, *agent2, [&] { return busy.registrations() >= 2; }, 20s);
  EXPECT_EQ(run.code, kExitOk);
  EXPECT_GE(busy.registrations(), 2);
}

TEST(AgentTest, CancelledJobsAreNeitherRunNorCompleted) {
  TempDir dir;
  FakeCommand command;
  auto list = inventory_jobs(2, 2);
  list[0].cancelled = true;
  command.set_jobs(list);
  net::io_context io;
  SlowSessions sessions(1ms);
  auto agent = make_agent(io, test_config(command.base(), dir.path()), sessions);
  ASSERT_TRUE(agent);
  const auto run = run_until(io, *agent, [&] { return !command.completions().empty(); });
  EXPECT_EQ(run.code, kExitOk);
  ASSERT_EQ(command.completions().size(), 1u);
  EXPECT_EQ(command.completions()[0]["JobId"], "job-1");
  EXPECT_EQ(sessions.hosts.count("host0.example.com"), 0u);
  EXPECT_EQ(agent->stats().jobs_cancelled, 1u);
}

TEST(AgentTest, ShutdownLetsRunningJobsFinishAndFlushesTheirResults) {
  TempDir dir;
  FakeCommand command;
  command.set_jobs(inventory_jobs(2, 2));
  net::io_context io;
  SlowSessions sessions(800ms);
  auto agent = make_agent(io, test_config(command.base(), dir.path()), sessions);
  ASSERT_TRUE(agent);
  // Stop as soon as both jobs are inside the store: they are mid-flight.
  const auto run = run_until(io, *agent, [&] { return sessions.current_total == 2; });
  EXPECT_EQ(run.code, kExitOk);
  EXPECT_TRUE(agent->quiescent());
  EXPECT_EQ(command.completions().size(), 2u);  // finished within the grace and delivered in the flush
  EXPECT_EQ(agent->outbox().size(), 0u);
}

TEST(AgentTest, AJobOverrunningTheGraceIsAbandonedWithoutHanging) {
  TempDir dir;
  FakeCommand command;
  command.set_jobs(inventory_jobs(1, 1));
  net::io_context io;
  SlowSessions sessions(20s);
  AgentConfig cfg = test_config(command.base(), dir.path());
  cfg.shutdown_grace = std::chrono::seconds(1);
  cfg.outbox_flush_timeout = std::chrono::milliseconds(200);
  auto agent = make_agent(io, cfg, sessions);
  ASSERT_TRUE(agent);
  const auto start = std::chrono::steady_clock::now();
  const auto run = run_until(io, *agent, [&] { return sessions.current_total == 1; });
  EXPECT_TRUE(run.finished);
  EXPECT_EQ(run.code, kExitOk);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_FALSE(agent->quiescent());  // the process would exit now without unwinding the job
  EXPECT_TRUE(command.completions().empty());
}

TEST(AgentTest, NoSecretReachesTheLog) {
  TempDir dir;
  const std::string log_file = dir.file("agent.log");
  init_logging("trace", log_file);
  FakeCommand command;
  command.set_jobs(inventory_jobs(2, 2));
  net::io_context io;
  SlowSessions sessions(1ms);
  auto agent = make_agent(io, test_config(command.base(), dir.path() + "/state"), sessions);
  ASSERT_TRUE(agent);
  const auto run = run_until(io, *agent, [&] { return command.completions().size() >= 2; });
  EXPECT_EQ(run.code, kExitOk);
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { l->flush(); });
  const std::string log = testing::read_text(log_file);
  EXPECT_NE(log.find("job job-0 start"), std::string::npos) << log;
  EXPECT_NE(log.find("job job-0 end: Success"), std::string::npos) << log;
  EXPECT_EQ(log.find("SECRET"), std::string::npos) << log;  // Command password, WinRM password
  EXPECT_EQ(log.find("tok-1"), std::string::npos) << log;   // session token
  EXPECT_EQ(log.find("Basic "), std::string::npos) << log;  // Authorization header
  init_logging("info");
}

}  // namespace
}  // namespace wincert::agent
