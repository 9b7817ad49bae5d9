// JobTimetable: the job list Command handed out and when each job runs next. Pure bookkeeping (no I/O, no
// timers): the agent's job timer asks it what is due and how long to sleep, the session feeds it new lists,
// and a completion reply's chained job is triggered here. Unit-tested alone (tests/agent/job_timetable_test.cpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/command_client.hpp"
#include "agent/schedule.hpp"

namespace wincert::agent {

class JobTimetable {
 public:
  // Forgotten one-shot jobs and pending chained jobs are bounded (Command cannot grow them without end).
  static constexpr std::size_t kMaxFinishedOnce = 10000;
  static constexpr std::size_t kMaxRunWhenListed = 1000;
  // A wall-clock step larger than this between two rounds is a jump (NTP step, an administrator).
  static constexpr std::chrono::seconds kClockJump{90};

  // Replaces the list. A job whose schedule did not change keeps its timing; a new or changed one is timed
  // from `now`; one-shot jobs that already ran are not taken back; a chained job asked for before it was
  // listed is due now. Jobs without JobId or with an unparsable schedule are left out (and logged).
  void apply(const std::vector<JobEntry>& list, TimePoint now);

  // Makes a listed job due now (Command chained it). False when the list does not name it yet: it is then
  // remembered and runs as soon as a list names it (the caller should fetch the list).
  bool trigger_now(const std::string& job_id, TimePoint now);

  // Feeds the clocks of one round; after a wall-clock jump, interval jobs keep their rhythm and jobs that
  // became due run once. True when a jump was seen.
  bool observe_clock(TimePoint wall, std::chrono::steady_clock::time_point steady);

  // The jobs due at `now`, with their next times advanced; one-shot jobs leave the table and are remembered
  // as finished.
  std::vector<JobEntry> take_due(TimePoint now);

  // The earliest next run of any job (nullopt: nothing scheduled).
  std::optional<TimePoint> earliest() const;

  std::size_t size() const { return jobs_.size(); }
  bool contains(const std::string& job_id) const { return jobs_.count(job_id) != 0; }
  std::optional<TimePoint> next_run_of(const std::string& job_id) const;

 private:
  struct JobState {
    JobEntry entry;
    Schedule schedule;
    std::optional<TimePoint> last_run;
    std::optional<TimePoint> next;
  };
  std::map<std::string, JobState> jobs_;
  std::set<std::string> finished_once_;    // immediate/once jobs already run (the list may still name them)
  std::set<std::string> run_when_listed_;  // chained jobs Command asked for before listing them
  bool clock_seen_ = false;
  TimePoint clock_wall_{};
  std::chrono::steady_clock::time_point clock_steady_{};
};

}  // namespace wincert::agent
