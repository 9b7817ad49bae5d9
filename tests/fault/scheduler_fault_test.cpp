// Fault matrix, scheduler rows: the same JobId handed out twice runs once; the scheduler's
// bookkeeping stays bounded over a long life (jobs and hosts seen); wall-clock jumps forward and back
// neither repeat calendar jobs nor stall interval jobs.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "agent/schedule.hpp"
#include "agent/scheduler.hpp"

namespace wincert::agent {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;

Scheduler::Work counted(net::io_context& io, int& runs, std::chrono::milliseconds ms = 5ms) {
  return [&io, &runs, ms]() -> net::awaitable<void> {
    ++runs;
    net::steady_timer t(io);
    t.expires_after(ms);
    co_await t.async_wait(net::use_awaitable);
  };
}

TEST(SchedulerFaultTest, TheSameJobIdHandedOutTwiceRunsOnce) {
  net::io_context io;
  Scheduler scheduler(io.get_executor(), {4, 4});
  int runs = 0;
  EXPECT_TRUE(scheduler.submit("dup", "h1", JobPriority::kInventory, counted(io, runs)));
  // Twice more while it is queued or running, even for another host or priority.
  EXPECT_FALSE(scheduler.submit("dup", "h1", JobPriority::kInventory, counted(io, runs)));
  EXPECT_FALSE(scheduler.submit("dup", "h2", JobPriority::kAdd, counted(io, runs)));
  io.run();
  EXPECT_EQ(runs, 1);
  // Over: the id may run again (a recurring job's next run).
  io.restart();
  EXPECT_TRUE(scheduler.submit("dup", "h1", JobPriority::kInventory, counted(io, runs)));
  io.run();
  EXPECT_EQ(runs, 2);
}

TEST(SchedulerFaultTest, BookkeepingStaysBoundedOverManyJobsAndHosts) {
  net::io_context io;
  Scheduler scheduler(io.get_executor(), {8, 2});
  int runs = 0;
  const int jobs = static_cast<int>(Scheduler::kHostsKept) + 2000;
  for (int i = 0; i < jobs; ++i) {
    ASSERT_TRUE(scheduler.submit("job-" + std::to_string(i), "host-" + std::to_string(i), JobPriority::kInventory,
                                 counted(io, runs, 0ms)));
    if (i % 64 == 63) {
      io.run();
      io.restart();
    }
  }
  io.run();
  EXPECT_EQ(runs, jobs);
  EXPECT_LE(scheduler.start_order().size(), Scheduler::kStartOrderKept);
  EXPECT_EQ(scheduler.start_order().back(), "job-" + std::to_string(jobs - 1));
  // The earliest hosts were forgotten, the latest are still known.
  EXPECT_EQ(scheduler.max_running_seen("host-0"), 0);
  EXPECT_EQ(scheduler.max_running_seen("host-" + std::to_string(jobs - 1)), 1);
}

TimePoint at(const char* text) {
  auto s = parse_schedule(std::string("O_") + text);
  EXPECT_TRUE(s.ok());
  return s->once_at;
}

TEST(SchedulerFaultTest, WallClockJumps) {
  const auto every_5 = parse_schedule("I_5").value();
  const auto daily = parse_schedule("D_02:00").value();
  const TimePoint next_interval = at("2026-01-02T10:05:00");
  const TimePoint next_daily = at("2026-01-03T02:00:00");
  // Back a day: the interval job still runs 5 minutes after its last run in real time.
  EXPECT_EQ(next_after_clock_jump(every_5, next_interval, -std::chrono::seconds(86400)), at("2026-01-01T10:05:00"));
  // The daily job that already ran at 02:00 keeps tomorrow's 02:00 (no repeat).
  EXPECT_EQ(next_after_clock_jump(daily, next_daily, -std::chrono::seconds(86400)), next_daily);
  // Forward: nothing moves; what became due runs once (next_run from now, not once per missed slot).
  EXPECT_EQ(next_after_clock_jump(every_5, next_interval, std::chrono::seconds(86400)), next_interval);
  EXPECT_EQ(next_after_clock_jump(daily, next_daily, std::chrono::seconds(86400)), next_daily);
  const TimePoint after_jump = at("2026-01-05T12:00:00");
  EXPECT_EQ(next_run(every_5, after_jump, after_jump), at("2026-01-05T12:05:00"));
  EXPECT_EQ(next_run(daily, after_jump, after_jump), at("2026-01-06T02:00:00"));
  EXPECT_EQ(next_after_clock_jump(every_5, std::nullopt, -60s), std::nullopt);
}

}  // namespace
}  // namespace wincert::agent
