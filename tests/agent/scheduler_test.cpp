// The scheduler: priority order, global and per-host limits (observed parallelism never above them),
// duplicate suppression, stop and drain.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "agent/scheduler.hpp"
#include "jobs/job_config.hpp"
#include "tests/agent/daemon_test_support.hpp"

namespace wincert::agent {
namespace {

namespace net = boost::asio;

// A job that takes `ms` and records parallelism per host.
struct Probe {
  std::map<std::string, int> current;
  std::map<std::string, int> max;
  int total = 0;
  int max_total = 0;
  std::vector<std::string> finished;

  Scheduler::Work job(net::io_context& io, std::string host, std::string id, int ms) {
    return [this, &io, host, id, ms]() -> net::awaitable<void> {
      max[host] = std::max(max[host], ++current[host]);
      max_total = std::max(max_total, ++total);
      net::steady_timer t(io);
      t.expires_after(std::chrono::milliseconds(ms));
      co_await t.async_wait(net::use_awaitable);
      --current[host];
      --total;
      finished.push_back(id);
    };
  }
};

TEST(SchedulerTest, RunsAddThenReenrollmentThenManagementThenInventory) {
  net::io_context io;
  Probe probe;
  Scheduler scheduler(io.get_executor(), {1, 1});
  // The first job occupies the only slot; the rest queue and must start in priority order.
  scheduler.submit("first", "h", JobPriority::kInventory, probe.job(io, "h", "first", 20));
  scheduler.submit("inv-1", "h", JobPriority::kInventory, probe.job(io, "h", "inv-1", 1));
  scheduler.submit("remove-1", "h", JobPriority::kManagement, probe.job(io, "h", "remove-1", 1));
  scheduler.submit("reenroll-1", "h", JobPriority::kReenrollment, probe.job(io, "h", "reenroll-1", 1));
  scheduler.submit("add-1", "h", JobPriority::kAdd, probe.job(io, "h", "add-1", 1));
  scheduler.submit("inv-2", "h", JobPriority::kInventory, probe.job(io, "h", "inv-2", 1));
  scheduler.submit("add-2", "h", JobPriority::kAdd, probe.job(io, "h", "add-2", 1));
  io.run();
  EXPECT_EQ(scheduler.start_order(),
            (std::vector<std::string>{"first", "add-1", "add-2", "reenroll-1", "remove-1", "inv-1", "inv-2"}));
  EXPECT_EQ(scheduler.running(), 0u);
}

TEST(SchedulerTest, NeverExceedsGlobalAndPerHostLimits) {
  net::io_context io;
  Probe probe;
  Scheduler scheduler(io.get_executor(), {5, 2});
  int n = 0;
  for (int round = 0; round < 6; ++round) {
    for (const char* host : {"a", "b", "c", "d"}) {
      const std::string id = "job-" + std::to_string(n++);
      ASSERT_TRUE(scheduler.submit(id, host, JobPriority::kInventory, probe.job(io, host, id, 5 + n % 7)));
    }
  }
  io.run();
  EXPECT_EQ(probe.finished.size(), 24u);
  EXPECT_LE(probe.max_total, 5);
  EXPECT_EQ(probe.max_total, 5);  // and the limit is actually used
  for (const char* host : {"a", "b", "c", "d"}) {
    EXPECT_LE(probe.max[host], 2) << host;
    EXPECT_LE(scheduler.max_running_seen(host), 2) << host;
  }
  EXPECT_EQ(scheduler.max_running_seen(), 5);
}

TEST(SchedulerTest, AJobForABusyHostDoesNotBlockOtherHosts) {
  net::io_context io;
  Probe probe;
  Scheduler scheduler(io.get_executor(), {4, 1});
  scheduler.submit("slow-a", "a", JobPriority::kAdd, probe.job(io, "a", "slow-a", 50));
  scheduler.submit("more-a", "a", JobPriority::kAdd, probe.job(io, "a", "more-a", 1));  // waits for host a
  scheduler.submit("b", "b", JobPriority::kInventory, probe.job(io, "b", "b", 1));      // runs at once
  io.run();
  EXPECT_EQ(probe.finished, (std::vector<std::string>{"b", "slow-a", "more-a"}));
}

TEST(SchedulerTest, RefusesDuplicatesAndWorkAfterStopAndDrainsRunningJobs) {
  net::io_context io;
  Probe probe;
  Scheduler scheduler(io.get_executor(), {1, 1});
  EXPECT_TRUE(scheduler.submit("j1", "h", JobPriority::kInventory, probe.job(io, "h", "j1", 30)));
  EXPECT_FALSE(scheduler.submit("j1", "h", JobPriority::kInventory, probe.job(io, "h", "j1", 30)));
  EXPECT_TRUE(scheduler.busy("j1"));
  EXPECT_TRUE(scheduler.submit("j2", "h", JobPriority::kInventory, probe.job(io, "h", "j2", 30)));
  EXPECT_EQ(scheduler.queued(), 1u);
  const auto dropped = scheduler.stop_accepting();
  EXPECT_EQ(dropped, std::vector<std::string>{"j2"});
  EXPECT_FALSE(scheduler.submit("j3", "h", JobPriority::kAdd, probe.job(io, "h", "j3", 1)));
  bool drained = false;
  net::co_spawn(io, scheduler.drain(std::chrono::seconds(5)), [&](std::exception_ptr, bool ok) { drained = ok; });
  io.run();
  EXPECT_TRUE(drained);
  EXPECT_EQ(probe.finished, std::vector<std::string>{"j1"});
}

TEST(SchedulerTest, DrainTimesOutOnAJobThatOverrunsTheGrace) {
  net::io_context io;
  Probe probe;
  Scheduler scheduler(io.get_executor(), {2, 2});
  scheduler.submit("stuck", "h", JobPriority::kInventory, probe.job(io, "h", "stuck", 2000));
  bool drained = true;
  bool done = false;
  net::co_spawn(io, scheduler.drain(std::chrono::milliseconds(100)), [&](std::exception_ptr, bool ok) {
    drained = ok;
    done = true;
    io.stop();
  });
  const auto start = std::chrono::steady_clock::now();
  io.run();
  EXPECT_TRUE(done);
  EXPECT_FALSE(drained);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  EXPECT_EQ(scheduler.running_jobs(), std::vector<std::string>{"stuck"});
}

TEST(SchedulerTest, ClassifiesJobsAndHosts) {
  jobs::JobConfig c;
  c.capability = "CertStores.IISU.Management";
  c.operation_type = jobs::OperationType::kAdd;
  EXPECT_EQ(classify_job(c), JobPriority::kAdd);
  c.operation_type = jobs::OperationType::kRemove;
  EXPECT_EQ(classify_job(c), JobPriority::kManagement);
  c.capability = "CertStores.WinCert.ReEnrollment";
  EXPECT_EQ(classify_job(c), JobPriority::kReenrollment);
  c.capability = "CertStores.WinSql.Inventory";
  EXPECT_EQ(classify_job(c), JobPriority::kInventory);
  c.capability = "Custom.FetchLogs";
  EXPECT_EQ(classify_job(c), JobPriority::kOther);
  c.store.client_machine = "WEB01.example.com:5986";
  EXPECT_EQ(host_key(c), "web01.example.com:5986");  // MaxJobsPerHost counts host and port
  c.store.client_machine = "web01|LocalMachine";
  EXPECT_EQ(host_key(c), "localhost");
}

// MaxJobsPerHost counts host and port: two WinRM endpoints behind one name are two hosts; the same endpoint
// spelt in another case is one.
TEST(SchedulerTest, HostKeysCarryThePort) {
  jobs::JobConfig c;
  c.store.client_machine = "web01.example.com";
  EXPECT_EQ(host_key(c), "web01.example.com");
  c.store.client_machine = "web01.example.com:5985";
  EXPECT_EQ(host_key(c), "web01.example.com:5985");
  c.store.client_machine = "WEB01.example.com:5985";
  EXPECT_EQ(host_key(c), "web01.example.com:5985");
  c.store.client_machine = "[fe80::1]:5986";
  EXPECT_EQ(host_key(c), "[fe80::1]:5986");

  net::io_context io;
  Probe probe;
  Scheduler scheduler(io.get_executor(), {8, 1});
  for (int i = 0; i < 3; ++i) {
    scheduler.submit("a" + std::to_string(i), "sim:5001", JobPriority::kInventory,
                     probe.job(io, "sim:5001", "a" + std::to_string(i), 20));
    scheduler.submit("b" + std::to_string(i), "sim:5002", JobPriority::kInventory,
                     probe.job(io, "sim:5002", "b" + std::to_string(i), 20));
  }
  io.run();
  EXPECT_EQ(probe.max["sim:5001"], 1);
  EXPECT_EQ(probe.max["sim:5002"], 1);
  EXPECT_EQ(probe.max_total, 2);  // one per endpoint, both at once
}

// Configuration fetches start only for free capacity: running jobs + fetches in flight never exceed the
// global limit, a job whose host is busy is parked without holding its slot, and every job runs.
TEST(SchedulerTest, FetchesOnlyForFreeCapacityAndParksJobsForBusyHosts) {
  net::io_context io;
  Probe probe;
  constexpr int kGlobal = 4;
  Scheduler scheduler(io.get_executor(), {kGlobal, 2});
  int fetching = 0;
  int max_fetching = 0;
  int max_fetching_plus_running = 0;
  int fetched = 0;
  // 30 jobs: the first 12 all for one host (a backlog that must not fill every slot), then 18 on 6 hosts.
  for (int i = 0; i < 30; ++i) {
    const std::string id = "job-" + std::to_string(i);
    const std::string host = i < 12 ? "busy" : "h" + std::to_string(i % 6);
    scheduler.submit_unplaced(
        id, JobPriority::kInventory, [&, id, host]() -> net::awaitable<std::optional<Scheduler::Placement>> {
          max_fetching = std::max(max_fetching, ++fetching);
          max_fetching_plus_running = std::max(max_fetching_plus_running, fetching + probe.total);
          net::steady_timer t(io);
          t.expires_after(std::chrono::milliseconds(3));
          co_await t.async_wait(net::use_awaitable);
          --fetching;
          ++fetched;
          if (id == "job-29") co_return std::nullopt;  // e.g. cancelled in Command: not run
          co_return Scheduler::Placement{host, JobPriority::kInventory, probe.job(io, host, id, 10)};
        });
  }
  EXPECT_LE(static_cast<int>(scheduler.fetching()), kGlobal);
  io.run();
  EXPECT_EQ(fetched, 30);
  EXPECT_EQ(probe.finished.size(), 29u);
  EXPECT_LE(max_fetching_plus_running, kGlobal);
  EXPECT_LE(scheduler.max_admitted_seen(), kGlobal);
  EXPECT_EQ(scheduler.max_fetching_seen(), max_fetching);
  EXPECT_LE(probe.max["busy"], 2);
  // The busy host's backlog did not serialise everything: other hosts ran beside it.
  EXPECT_GT(probe.max_total, 2);
  EXPECT_EQ(scheduler.running(), 0u);
  EXPECT_EQ(scheduler.queued(), 0u);
  EXPECT_FALSE(scheduler.busy("job-29"));
}

TEST(SchedulerTest, StopDropsUnfetchedJobsAndDrainWaitsForFetchesInFlight) {
  net::io_context io;
  Scheduler scheduler(io.get_executor(), {2, 1});
  int fetches = 0;
  for (int i = 0; i < 5; ++i) {
    scheduler.submit_unplaced(
        "j" + std::to_string(i), JobPriority::kInventory, [&]() -> net::awaitable<std::optional<Scheduler::Placement>> {
          ++fetches;
          net::steady_timer t(io);
          t.expires_after(std::chrono::milliseconds(20));
          co_await t.async_wait(net::use_awaitable);
          co_return Scheduler::Placement{"h", JobPriority::kInventory, []() -> net::awaitable<void> { co_return; }};
        });
  }
  EXPECT_EQ(scheduler.fetching(), 2u);
  const auto dropped = scheduler.stop_accepting();
  EXPECT_EQ(dropped.size(), 3u);
  bool drained = false;
  net::co_spawn(
      io, [&]() -> net::awaitable<void> { drained = co_await scheduler.drain(std::chrono::seconds(5)); },
      net::detached);
  io.run();
  EXPECT_TRUE(drained);
  EXPECT_EQ(fetches, 2);
  EXPECT_EQ(scheduler.running(), 0u);
  EXPECT_EQ(scheduler.fetching(), 0u);
  EXPECT_FALSE(scheduler.busy("j0"));
}

}  // namespace
}  // namespace wincert::agent
