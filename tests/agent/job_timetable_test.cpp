// JobTimetable alone: the job list's timing without an agent, a server or a clock of its own.
#include "agent/job_timetable.hpp"

#include <gtest/gtest.h>

namespace wincert::agent {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

TimePoint at(int seconds) { return TimePoint{std::chrono::seconds(1'700'000'000 + seconds)}; }

JobEntry job(std::string id, std::string schedule) {
  JobEntry e;
  e.job_id = std::move(id);
  e.schedule = std::move(schedule);
  return e;
}

std::vector<std::string> ids(const std::vector<JobEntry>& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries) out.push_back(e.job_id);
  return out;
}

TEST(JobTimetable, ImmediateJobRunsOnceAndIsNotTakenBackFromALaterList) {
  JobTimetable table;
  table.apply({job("once", "")}, at(0));
  EXPECT_EQ(ids(table.take_due(at(0))), std::vector<std::string>{"once"});
  EXPECT_FALSE(table.contains("once"));
  table.apply({job("once", "")}, at(5));  // Command still lists it until it hears back
  EXPECT_TRUE(table.take_due(at(10)).empty());
}

TEST(JobTimetable, IntervalJobAdvancesAndKeepsItsTimingAcrossAnUnchangedList) {
  JobTimetable table;
  const auto list = std::vector<JobEntry>{job("inv", "I_5")};
  table.apply(list, at(0));
  const auto first = table.next_run_of("inv");
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(table.take_due(*first - 1s).empty());
  EXPECT_EQ(table.take_due(*first).size(), 1u);
  const auto second = table.next_run_of("inv");
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(*second - *first, 300s);
  table.apply(list, *first + 10s);  // the same schedule: timing kept
  EXPECT_EQ(table.next_run_of("inv"), second);
  table.apply({job("inv", "I_10")}, *first + 10s);  // changed: timed anew
  EXPECT_NE(table.next_run_of("inv"), second);
}

TEST(JobTimetable, JobsMissingFromANewListAreDropped) {
  JobTimetable table;
  table.apply({job("a", "I_5"), job("b", "I_5")}, at(0));
  EXPECT_EQ(table.size(), 2u);
  table.apply({job("b", "I_5")}, at(1));
  EXPECT_FALSE(table.contains("a"));
  EXPECT_EQ(table.size(), 1u);
}

TEST(JobTimetable, UnusableEntriesAreLeftOut) {
  JobTimetable table;
  table.apply({job("", ""), job("bad", "I_x"), job("good", "")}, at(0));
  EXPECT_EQ(table.size(), 1u);
  EXPECT_TRUE(table.contains("good"));
}

TEST(JobTimetable, TriggerRunsAListedJobNow) {
  JobTimetable table;
  table.apply({job("inv", "I_60")}, at(0));
  ASSERT_TRUE(table.trigger_now("inv", at(30)));
  EXPECT_EQ(ids(table.take_due(at(30))), std::vector<std::string>{"inv"});
}

TEST(JobTimetable, ChainedJobNotListedYetRunsWhenTheNextListNamesIt) {
  JobTimetable table;
  table.apply({}, at(0));
  EXPECT_FALSE(table.trigger_now("chained", at(1)));
  table.apply({job("chained", "D_23:59")}, at(2));  // its schedule alone would not make it due now
  EXPECT_EQ(ids(table.take_due(at(2))), std::vector<std::string>{"chained"});
}

TEST(JobTimetable, ChainedJobThatNoListNamesIsForgotten) {
  JobTimetable table;
  EXPECT_FALSE(table.trigger_now("ghost", at(0)));
  table.apply({}, at(1));  // the refresh does not name it: it is not coming
  table.apply({job("ghost", "I_60")}, at(100));
  JobTimetable fresh;  // timed from its schedule like any newly listed job, not made due by the old trigger
  fresh.apply({job("ghost", "I_60")}, at(100));
  EXPECT_EQ(table.next_run_of("ghost"), fresh.next_run_of("ghost"));
}

TEST(JobTimetable, EarliestIsTheSoonestNextRun) {
  JobTimetable table;
  EXPECT_FALSE(table.earliest().has_value());
  table.apply({job("slow", "I_60"), job("fast", "I_1")}, at(0));
  EXPECT_EQ(table.earliest(), table.next_run_of("fast"));
}

TEST(JobTimetable, WallClockJumpIsNoticedAgainstTheSteadyClock) {
  JobTimetable table;
  table.apply({job("inv", "I_5")}, at(0));
  const auto steady = Steady::now();
  EXPECT_FALSE(table.observe_clock(at(0), steady));
  EXPECT_FALSE(table.observe_clock(at(60), steady + 60s));         // in step
  EXPECT_TRUE(table.observe_clock(at(60 + 3600), steady + 120s));  // an hour forward
  EXPECT_TRUE(table.observe_clock(at(120), steady + 180s));        // and back
}

}  // namespace
}  // namespace wincert::agent
