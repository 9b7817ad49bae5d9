#include "agent/job_timetable.hpp"

#include <cstdlib>

#include "common/log.hpp"

namespace wincert::agent {

void JobTimetable::apply(const std::vector<JobEntry>& list, TimePoint now) {
  auto log = logger("agent");
  std::map<std::string, JobState> updated;
  for (const auto& entry : list) {
    if (entry.job_id.empty()) {
      log->warn("Command listed a job without JobId; ignored");
      continue;
    }
    if (finished_once_.count(entry.job_id)) continue;
    auto schedule = parse_schedule(entry.schedule);
    if (!schedule.ok()) {
      log->error("job {} not scheduled: {}", entry.job_id, schedule.error().message);
      continue;
    }
    if (entry.schedule.empty() && !entry.cron.empty())
      log->warn("job {} has only a Cron schedule ('{}'), which Command's agents do not use; running it now",
                entry.job_id, entry.cron);
    JobState state{entry, *schedule, std::nullopt, std::nullopt};
    auto old = jobs_.find(entry.job_id);
    if (old != jobs_.end() && old->second.schedule == *schedule) {
      state.last_run = old->second.last_run;
      state.next = old->second.next;
    } else {
      state.next = next_run(*schedule, now, std::nullopt);
    }
    if (run_when_listed_.erase(entry.job_id)) state.next = now;
    updated[entry.job_id] = std::move(state);
  }
  jobs_ = std::move(updated);
  // A chained job the list still does not name after a refresh is not coming: forget it.
  run_when_listed_.clear();
}

bool JobTimetable::trigger_now(const std::string& job_id, TimePoint now) {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) {
    if (run_when_listed_.size() < kMaxRunWhenListed) run_when_listed_.insert(job_id);
    return false;
  }
  it->second.next = now;
  return true;
}

bool JobTimetable::observe_clock(TimePoint wall, std::chrono::steady_clock::time_point steady) {
  bool jumped = false;
  if (clock_seen_) {
    const auto expected = clock_wall_ + std::chrono::duration_cast<std::chrono::seconds>(steady - clock_steady_);
    const auto skew = wall - expected;
    if (skew > kClockJump || skew < -kClockJump) {
      jumped = true;
      logger("agent")->warn(
          "the wall clock jumped {} by {} s; interval jobs keep their rhythm, jobs that became due run once",
          skew.count() > 0 ? "forward" : "back", std::abs(skew.count()));
      for (auto& [id, state] : jobs_) state.next = next_after_clock_jump(state.schedule, state.next, skew);
    }
  }
  clock_seen_ = true;
  clock_wall_ = wall;
  clock_steady_ = steady;
  return jumped;
}

std::vector<JobEntry> JobTimetable::take_due(TimePoint now) {
  std::vector<JobEntry> due;
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    JobState& state = it->second;
    if (!state.next || *state.next > now) {
      ++it;
      continue;
    }
    state.last_run = now;
    state.next = next_run(state.schedule, now, now);
    if (state.next) logger("agent")->debug("job {} next runs at {}", it->first, format_time(*state.next));
    due.push_back(state.entry);
    if (!state.schedule.recurring()) {
      if (finished_once_.size() >= kMaxFinishedOnce) finished_once_.clear();
      finished_once_.insert(it->first);
      it = jobs_.erase(it);
      continue;
    }
    ++it;
  }
  return due;
}

std::optional<TimePoint> JobTimetable::earliest() const {
  std::optional<TimePoint> out;
  for (const auto& [id, state] : jobs_) {
    if (state.next && (!out || *state.next < *out)) out = state.next;
  }
  return out;
}

std::optional<TimePoint> JobTimetable::next_run_of(const std::string& job_id) const {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return std::nullopt;
  return it->second.next;
}

}  // namespace wincert::agent
