// Fault matrix, outbox rows: the disk fills up (RLIMIT_FSIZE: the kernel refuses every write past the
// limit with EFBIG, as a full disk refuses with ENOSPC; a real full tmpfs is in outbox_full_disk.py)
// while a job runs. No result is lost: it stays in memory, is sent directly while Command is reachable,
// or stored once the disk takes writes again; the AgentId likewise. The condition is visible (log,
// Agent::results_not_safe(), AgentStats).
#include <gtest/gtest.h>

#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <mutex>

#include "agent/agent_loop.hpp"
#include "tests/agent/daemon_test_support.hpp"

namespace wincert::agent {
namespace {

namespace net = boost::asio;
namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;
using testing::FakeRequest;
using testing::FakeResponse;
using testing::FakeServer;
using testing::TempDir;

json ok_result() { return json{{"Status", 1}, {"Error", nullptr}}; }

// Command with one immediate inventory job; completions answer 503 while `completions_down`.
class OneJobCommand {
 public:
  OneJobCommand() : server_([this](const FakeRequest& r) { return handle(r); }) {}
  std::string base() const { return server_.url("/KeyfactorAgents"); }
  std::atomic<bool> completions_down{false};
  std::vector<json> completions() const {
    std::lock_guard lock(mutex_);
    return completions_;
  }
  std::size_t inventories() const {
    std::lock_guard lock(mutex_);
    return inventories_;
  }

 private:
  FakeResponse handle(const FakeRequest& r) {
    std::lock_guard lock(mutex_);
    const std::string p = "/KeyfactorAgents";
    if (r.target == p + "/Session/Register") {
      json list = json::array();
      // Listed until its completion arrives, as Command does.
      if (completions_.empty())
        list.push_back({{"JobTypeId", "00000000-0000-0000-0000-000000000001"},
                        {"JobId", "job-1"},
                        {"ConfigurationEndpoint", "KeyfactorAgents/Jobs/job-1/Config"},
                        {"CompletionEndpoint", "KeyfactorAgents/Jobs/job-1/Complete"},
                        {"Schedule", nullptr},
                        {"Priority", 5}});
      return FakeResponse::json({{"Session",
                                  {{"Token", "tok"},
                                   {"AgentId", "0f0e0d0c-0b0a-0908-0706-050403020100"},
                                   {"HeartbeatInterval", 5},
                                   {"Jobs", list}}},
                                 {"Result", ok_result()}});
    }
    if (r.target == p + "/Session/Heartbeat")
      return FakeResponse::json({{"HeartbeatInterval", 5}, {"SessionValid", true}, {"Result", ok_result()}});
    if (r.target == p + "/Jobs/job-1/Config")
      return FakeResponse::json({{"AuditId", 41},
                                 {"JobCancelled", false},
                                 {"InventoryEndpoint", "KeyfactorAgents/Jobs/job-1/Inventory"},
                                 {"Result", ok_result()},
                                 {"Job", testing::inventory_job_config("job-1", "host1.example.com", 41)}});
    if (r.target == p + "/Jobs/job-1/Inventory") {
      ++inventories_;
      return FakeResponse::json({{"Result", ok_result()}});
    }
    if (r.target == p + "/Jobs/job-1/Complete") {
      if (completions_down) return FakeResponse{503, "maintenance"};
      completions_.push_back(r.json());
      return FakeResponse::json({{"Result", ok_result()}});
    }
    return FakeResponse{404, "{}"};
  }
  mutable std::mutex mutex_;
  std::vector<json> completions_;
  std::size_t inventories_ = 0;
  FakeServer server_;  // last: stopped first
};

AgentConfig test_config(const std::string& base, const std::string& outbox) {
  AgentConfig cfg;
  cfg.agents_server_uri = base;
  cfg.orchestrator_name = "uo-test";
  cfg.auth_mode = CommandAuthMode::kBasic;
  cfg.username = "svc";
  cfg.password = Secret("pw");
  cfg.outbox_directory = outbox;
  cfg.heartbeat_interval = 1s;
  cfg.job_poll_interval = 0s;
  cfg.shutdown_grace = 5s;
  cfg.outbox_flush_timeout = 2s;
  cfg.retry_initial = 20ms;
  cfg.retry_max = 200ms;
  cfg.server_connect_timeout = 5s;
  cfg.server_request_timeout = 5s;
  return cfg;
}

// Files this process writes may grow to `bytes` at most while it lives (the "disk" is full).
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    std::signal(SIGXFSZ, SIG_IGN);  // EFBIG instead of the signal
    ::getrlimit(RLIMIT_FSIZE, &saved_);
    rlimit limited = saved_;
    limited.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &limited);
  }
  ~FileSizeLimit() { lift(); }
  void lift() { ::setrlimit(RLIMIT_FSIZE, &saved_); }

 private:
  rlimit saved_{};
};

// Runs the io_context until `done` holds or `limit` passes; returns whether `done` held.
bool run_until(net::io_context& io, const std::function<bool()>& done, std::chrono::seconds limit = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < deadline) io.run_one_for(20ms);
  return done();
}

struct Running {
  int code = -1;
  bool finished = false;
};

std::unique_ptr<Agent> start(net::io_context& io, AgentConfig cfg, jobs::StoreSessionFactory& sessions, Running& r) {
  AgentDeps deps;
  deps.sessions = &sessions;
  auto agent = Agent::create(io.get_executor(), std::move(cfg), deps);
  EXPECT_TRUE(agent.ok()) << (agent.ok() ? "" : agent.error().message);
  if (!agent.ok()) return nullptr;
  net::co_spawn(io, (*agent)->run(), [&r](std::exception_ptr e, int code) {
    r.code = e ? 255 : code;
    r.finished = true;
  });
  return std::move(agent.value());
}

// Disk full, Command reachable: the inventory and the completion go out directly, exactly once; the
// AgentId is kept in memory, and saved once the disk takes writes again.
TEST(OutboxDiskFullTest, ResultsGoOutDirectlyAndTheAgentIdIsSavedLater) {
  TempDir dir;
  OneJobCommand command;
  testing::SlowSessions sessions(1ms);
  net::io_context io;
  Running running;
  std::unique_ptr<Agent> agent;
  {
    auto opened = Outbox::open(dir.path());  // the directory exists before the disk fills
    ASSERT_TRUE(opened.ok());
  }
  FileSizeLimit full(0);
  agent = start(io, test_config(command.base(), dir.path()), sessions, running);
  ASSERT_TRUE(agent);
  ASSERT_TRUE(run_until(io, [&] { return !command.completions().empty() && agent->results_not_safe() == 0; }))
      << "no completion arrived";
  EXPECT_EQ(command.completions().size(), 1u);
  EXPECT_EQ(command.completions()[0]["Status"], 2) << command.completions()[0].dump();
  EXPECT_EQ(command.inventories(), 1u);
  EXPECT_GE(agent->stats().results_held, 2u);  // the inventory and the completion
  EXPECT_EQ(agent->results_not_safe(), 0u);
  EXPECT_TRUE(agent->agent_id_unsaved());
  EXPECT_FALSE(fs::exists(dir.file("agent-id")));

  full.lift();  // space freed
  EXPECT_TRUE(run_until(io, [&] { return !agent->agent_id_unsaved(); }));
  EXPECT_EQ(testing::read_text(dir.file("agent-id")), "0f0e0d0c-0b0a-0908-0706-050403020100\n");
  agent->request_stop();
  EXPECT_TRUE(run_until(io, [&] { return running.finished; }));
  EXPECT_EQ(running.code, kExitOk);
  EXPECT_EQ(command.completions().size(), 1u);  // exactly once
  EXPECT_EQ(agent->outbox().size(), 0u);
}

// Disk full and Command refusing completions for now: the completion waits in memory (visible), the
// job does not run again, and once space is back it is stored in the outbox and delivered once Command
// takes it.
TEST(OutboxDiskFullTest, AHeldResultIsStoredWhenSpaceReturnsAndDeliveredOnce) {
  TempDir dir;
  OneJobCommand command;
  command.completions_down = true;
  testing::SlowSessions sessions(1ms);
  net::io_context io;
  Running running;
  {
    auto opened = Outbox::open(dir.path());
    ASSERT_TRUE(opened.ok());
  }
  FileSizeLimit full(0);
  auto agent = start(io, test_config(command.base(), dir.path()), sessions, running);
  ASSERT_TRUE(agent);
  ASSERT_TRUE(run_until(io, [&] { return agent->results_not_safe() == 1 && command.inventories() == 1; }))
      << "held " << agent->results_not_safe() << ", inventories " << command.inventories();
  EXPECT_EQ(agent->stats().jobs_started, 1u);
  // A while later: still held, never dropped, not run again.
  run_until(
      io, [] { return false; }, 1s);
  EXPECT_EQ(agent->results_not_safe(), 1u);
  EXPECT_EQ(agent->stats().jobs_started, 1u);
  EXPECT_EQ(agent->outbox().size(), 0u);

  full.lift();
  ASSERT_TRUE(run_until(io, [&] { return agent->results_not_safe() == 0; }));
  EXPECT_EQ(agent->outbox().size(), 1u);  // safe on disk now, waiting for Command
  command.completions_down = false;
  ASSERT_TRUE(run_until(io, [&] { return !command.completions().empty(); }));
  agent->request_stop();
  EXPECT_TRUE(run_until(io, [&] { return running.finished; }));
  EXPECT_EQ(command.completions().size(), 1u);
  EXPECT_EQ(agent->outbox().size(), 0u);
  EXPECT_EQ(agent->stats().jobs_started, 1u);
}

// The outbox directory turns read-only while the agent runs (a remount after a disk error): a real
// read-only tmpfs mounted over it (needs root and mount permission; skipped otherwise). Same outcome as
// a full disk: the completion is held, then stored and delivered once when the mount is gone.
TEST(OutboxDiskFullTest, AReadOnlyOutboxHoldsTheResultUntilItIsWritable) {
  TempDir dir;
  {
    auto opened = Outbox::open(dir.path());
    ASSERT_TRUE(opened.ok());
  }
  OneJobCommand command;
  command.completions_down = true;
  testing::SlowSessions sessions(1ms);
  net::io_context io;
  Running running;
  auto agent = start(io, test_config(command.base(), dir.path()), sessions, running);
  ASSERT_TRUE(agent);
  // Read-only from here on (the agent opened its outbox while it was writable).
  const std::string outbox_dir = dir.path() + "/outbox";
  if (::geteuid() != 0 || ::mount("tmpfs", outbox_dir.c_str(), "tmpfs", MS_RDONLY, "size=64k") != 0)
    GTEST_SKIP() << "needs root and permission to mount a read-only tmpfs";
  struct Unmount {
    std::string path;
    bool mounted = true;
    void operator()() {
      if (mounted) ::umount2(path.c_str(), MNT_DETACH);
      mounted = false;
    }
    ~Unmount() { (*this)(); }
  } unmount{outbox_dir};

  ASSERT_TRUE(run_until(io, [&] { return agent->results_not_safe() == 1 && command.inventories() == 1; }))
      << "held " << agent->results_not_safe();
  EXPECT_TRUE(fs::exists(dir.file("agent-id")));  // beside the outbox, still writable
  unmount();
  ASSERT_TRUE(run_until(io, [&] { return agent->results_not_safe() == 0; }));
  EXPECT_EQ(agent->outbox().size(), 1u);
  command.completions_down = false;
  ASSERT_TRUE(run_until(io, [&] { return !command.completions().empty(); }));
  agent->request_stop();
  EXPECT_TRUE(run_until(io, [&] { return running.finished; }));
  EXPECT_EQ(command.completions().size(), 1u);
  EXPECT_EQ(agent->stats().jobs_started, 1u);
}

}  // namespace
}  // namespace wincert::agent
