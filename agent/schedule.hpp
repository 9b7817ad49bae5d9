// Job schedules as Command sends them in the Register response's job list (all UTC):
//   I_<minutes>            every N minutes
//   D_<HH:MM>              daily
//   W_<digits>_<HH:MM>     weekly; one digit per weekday, 1 = Sunday .. 7 = Saturday ("W_246_09:30")
//   M_<day>_<HH:MM>        monthly on day 1..31 (a shorter month runs on its last day); M_L_<HH:MM> = last day
//   O_<yyyy-mm-ddTHH:MM>   once (seconds, fractions and a trailing Z are accepted)
//   missing, or shorter than 3 characters: run now, once ("immediate")
// and when each should run next.
#pragma once

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace wincert::agent {

using Clock = std::chrono::system_clock;
using TimePoint = std::chrono::sys_seconds;

enum class ScheduleKind { kImmediate, kInterval, kDaily, kWeekly, kMonthly, kOnce };

struct Schedule {
  ScheduleKind kind = ScheduleKind::kImmediate;
  std::chrono::minutes interval{0};     // kInterval
  std::chrono::minutes time_of_day{0};  // kDaily, kWeekly, kMonthly: minutes after midnight UTC
  std::array<bool, 7> weekdays{};       // kWeekly: [0] = Sunday .. [6] = Saturday
  int day_of_month = 0;                 // kMonthly: 1..31, 0 = the last day
  TimePoint once_at{};                  // kOnce
  std::string text;                     // as received, for logs

  bool recurring() const { return kind != ScheduleKind::kImmediate && kind != ScheduleKind::kOnce; }
  bool operator==(const Schedule&) const = default;
};

// Parses a schedule string; errors say what part is wrong.
Result<Schedule> parse_schedule(std::string_view text);

// When the job should run next: strictly after `last_run` when it ran before, else at or after `now`
// (interval and immediate jobs: now; a once job whose time has passed: now). nullopt = never again
// (an immediate or once job that already ran). A time before `now` means "due".
std::optional<TimePoint> next_run(const Schedule& schedule, TimePoint now, std::optional<TimePoint> last_run);

// The wall clock jumped by `skew` (wall time passed minus steady time passed; negative = set back).
// Interval jobs keep their rhythm in real time (their next run moves by the jump, so setting the clock
// back a day does not delay them a day); calendar jobs keep their wall-clock time (a job that already
// ran at 02:00 does not run again when the clock is set back past 02:00). After a forward jump, what
// became due runs once.
std::optional<TimePoint> next_after_clock_jump(const Schedule& schedule, std::optional<TimePoint> next,
                                               std::chrono::seconds skew);

// "2024-05-01T09:30:00Z".
std::string format_time(TimePoint t);

}  // namespace wincert::agent
