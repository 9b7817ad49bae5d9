// Job schedules: the admin forms (Command's Immediate / Interval / Daily / Weekly / Monthly / ExactlyOnce)
// and the strings the Session's job list carries (reference 4: I_<min>, D_<HH:MM>, W_<days>_<HH:MM>,
// M_<dom|L>_<HH:MM>, O_<yyyy-mm-ddTHH:MM>; immediate jobs carry no schedule).
#pragma once

#include <string>
#include <string_view>

#include "common/result.hpp"
#include "sim/command/json_util.hpp"

namespace wincert::sim::command {

struct Schedule {
  enum class Kind { kImmediate, kInterval, kDaily, kWeekly, kMonthly, kOnce };
  Kind kind = Kind::kImmediate;
  int minutes = 0;       // interval
  std::string time;      // "HH:MM" (UTC) for daily, weekly, monthly
  std::string weekdays;  // weekly: one digit per day, 1 = Sunday .. 7 = Saturday
  std::string day;       // monthly: "1".."31" or "L" (last day)
  std::string at;        // once: "yyyy-mm-ddTHH:MM" (UTC)

  // Recurring jobs stay scheduled after a run; immediate and once jobs are done after their completion.
  bool recurring() const;
  // The Session job's "Schedule": null for immediate, else the schedule string.
  Json wire() const;
  // "Immediate" or the schedule string, for history and listings.
  std::string text() const;
};

// A schedule string as an agent receives it; "" (and anything shorter than 3 characters) is immediate.
Result<Schedule> parse_schedule_string(std::string_view text);
// The admin API's forms: absent/null -> immediate, a string -> parse_schedule_string, or one of
// {"Immediate": true}, {"Interval": {"Minutes": 5}}, {"Daily": {"Time": "09:30"}},
// {"Weekly": {"Days": ["Monday", "Friday"] or .NET DayOfWeek numbers (0 = Sunday), "Time": "09:30"}},
// {"Monthly": {"Day": 15 or "L", "Time": "09:30"}}, {"ExactlyOnce": {"Time": "2030-01-02T03:04:00Z"}}.
Result<Schedule> schedule_from_json(const Json* value);

}  // namespace wincert::sim::command
