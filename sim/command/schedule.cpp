#include "sim/command/schedule.hpp"

#include <array>
#include <charconv>

#include "common/encoding.hpp"

namespace wincert::sim::command {
namespace {

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

int to_int(std::string_view s) {
  int n = -1;
  std::from_chars(s.data(), s.data() + s.size(), n);
  return n;
}

Status check_time(std::string_view t) {
  if (t.size() != 5 || t[2] != ':' || !all_digits(t.substr(0, 2)) || !all_digits(t.substr(3, 2)) ||
      to_int(t.substr(0, 2)) > 23 || to_int(t.substr(3, 2)) > 59)
    return Error::invalid_argument("schedule time '" + std::string(t) + "' must be HH:MM (UTC)");
  return {};
}

// "2030-01-02T03:04" with optional ":SS", fractional seconds and "Z" -> "2030-01-02T03:04".
Result<std::string> normalize_once(std::string_view t) {
  if (t.size() < 16 || t[4] != '-' || t[7] != '-' || (t[10] != 'T' && t[10] != ' ') || t[13] != ':')
    return Error::invalid_argument("schedule time '" + std::string(t) + "' must be yyyy-mm-ddTHH:MM (UTC)");
  std::string out(t.substr(0, 16));
  out[10] = 'T';
  if (!all_digits(out.substr(0, 4)) || !all_digits(out.substr(5, 2)) || !all_digits(out.substr(8, 2)))
    return Error::invalid_argument("schedule date in '" + std::string(t) + "' is not yyyy-mm-dd");
  WINCERT_TRY(check_time(out.substr(11, 5)));
  return out;
}

Status check_weekdays(std::string_view days) {
  if (days.empty()) return Error::invalid_argument("a weekly schedule needs at least one day");
  for (char c : days) {
    if (c < '1' || c > '7')
      return Error::invalid_argument("weekly schedule days are digits 1 (Sunday) .. 7 (Saturday)");
  }
  return {};
}

Status check_day(std::string_view day) {
  if (day == "L") return {};
  if (!all_digits(day) || to_int(day) < 1 || to_int(day) > 31)
    return Error::invalid_argument("monthly schedule day must be 1..31 or L");
  return {};
}

constexpr std::array<std::string_view, 7> kDayNames = {"sunday",   "monday", "tuesday", "wednesday",
                                                       "thursday", "friday", "saturday"};

}  // namespace

bool Schedule::recurring() const { return kind != Kind::kImmediate && kind != Kind::kOnce; }

std::string Schedule::text() const {
  switch (kind) {
    case Kind::kImmediate:
      return "Immediate";
    case Kind::kInterval:
      return "I_" + std::to_string(minutes);
    case Kind::kDaily:
      return "D_" + time;
    case Kind::kWeekly:
      return "W_" + weekdays + "_" + time;
    case Kind::kMonthly:
      return "M_" + day + "_" + time;
    case Kind::kOnce:
      return "O_" + at;
  }
  return "Immediate";
}

Json Schedule::wire() const { return kind == Kind::kImmediate ? Json(nullptr) : Json(text()); }

Result<Schedule> parse_schedule_string(std::string_view text) {
  text = trim(text);
  Schedule s;
  if (text.size() < 3 || iequals(text, "immediate")) return s;
  const char kind = static_cast<char>(std::toupper(static_cast<unsigned char>(text[0])));
  if (text[1] != '_')
    return Error::invalid_argument("schedule '" + std::string(text) + "' is not I_, D_, W_, M_ or O_");
  const std::string_view rest = text.substr(2);
  switch (kind) {
    case 'I':
      if (!all_digits(rest) || rest.size() > 6 || to_int(rest) < 1)
        return Error::invalid_argument("interval schedule '" + std::string(text) + "' needs whole minutes >= 1");
      s.kind = Schedule::Kind::kInterval;
      s.minutes = to_int(rest);
      return s;
    case 'D':
      WINCERT_TRY(check_time(rest));
      s.kind = Schedule::Kind::kDaily;
      s.time = std::string(rest);
      return s;
    case 'W':
    case 'M': {
      const auto sep = rest.find('_');
      if (sep == std::string_view::npos)
        return Error::invalid_argument("schedule '" + std::string(text) + "' lacks _HH:MM");
      WINCERT_TRY(check_time(rest.substr(sep + 1)));
      s.time = std::string(rest.substr(sep + 1));
      if (kind == 'W') {
        WINCERT_TRY(check_weekdays(rest.substr(0, sep)));
        s.kind = Schedule::Kind::kWeekly;
        s.weekdays = std::string(rest.substr(0, sep));
      } else {
        WINCERT_TRY(check_day(rest.substr(0, sep)));
        s.kind = Schedule::Kind::kMonthly;
        s.day = std::string(rest.substr(0, sep));
      }
      return s;
    }
    case 'O': {
      WINCERT_ASSIGN_OR_RETURN(auto at, normalize_once(rest));
      s.kind = Schedule::Kind::kOnce;
      s.at = std::move(at);
      return s;
    }
    default:
      return Error::invalid_argument("schedule '" + std::string(text) + "' is not I_, D_, W_, M_ or O_");
  }
}

Result<Schedule> schedule_from_json(const Json* value) {
  Schedule s;
  if (value == nullptr || value->is_null()) return s;
  if (value->is_string()) return parse_schedule_string(value->get<std::string>());
  if (!value->is_object()) return Error::invalid_argument("Schedule must be a string or an object");
  if (auto imm = get_bool(*value, "Immediate"); imm.ok() && imm->value_or(false)) return s;
  if (const Json* interval = find_ci(*value, "Interval")) {
    WINCERT_ASSIGN_OR_RETURN(auto minutes, get_int(*interval, "Minutes"));
    if (!minutes.has_value() || *minutes < 1 || *minutes > 525600)
      return Error::invalid_argument("Interval.Minutes must be 1..525600");
    s.kind = Schedule::Kind::kInterval;
    s.minutes = static_cast<int>(*minutes);
    return s;
  }
  auto time_of = [](const Json& o) -> Result<std::string> {
    auto t = get_string(o, "Time");
    if (!t) return Error::invalid_argument("the schedule needs a Time (HH:MM, UTC)");
    // Command's admin API takes a full timestamp; only its time of day matters here.
    std::string hhmm = t->size() >= 16 && (*t)[10] == 'T' ? t->substr(11, 5) : *t;
    WINCERT_TRY(check_time(hhmm));
    return hhmm;
  };
  if (const Json* daily = find_ci(*value, "Daily")) {
    WINCERT_ASSIGN_OR_RETURN(auto t, time_of(*daily));
    s.kind = Schedule::Kind::kDaily;
    s.time = std::move(t);
    return s;
  }
  if (const Json* weekly = find_ci(*value, "Weekly")) {
    WINCERT_ASSIGN_OR_RETURN(auto t, time_of(*weekly));
    const Json* days = find_ci(*weekly, "Days");
    if (days == nullptr || !days->is_array()) return Error::invalid_argument("Weekly.Days must be an array");
    std::string digits;
    for (const auto& d : *days) {
      int index = -1;
      if (d.is_number_integer()) index = d.get<int>();  // .NET DayOfWeek: 0 = Sunday
      if (d.is_string()) {
        for (std::size_t i = 0; i < kDayNames.size(); ++i) {
          if (iequals(d.get<std::string>(), kDayNames[i])) index = static_cast<int>(i);
        }
      }
      if (index < 0 || index > 6) return Error::invalid_argument("Weekly.Days holds an unknown day: " + d.dump());
      const char digit = static_cast<char>('1' + index);
      if (digits.find(digit) == std::string::npos) digits += digit;
    }
    WINCERT_TRY(check_weekdays(digits));
    s.kind = Schedule::Kind::kWeekly;
    s.weekdays = digits;
    s.time = std::move(t);
    return s;
  }
  if (const Json* monthly = find_ci(*value, "Monthly")) {
    WINCERT_ASSIGN_OR_RETURN(auto t, time_of(*monthly));
    auto day = get_string(*monthly, "Day");
    if (!day) return Error::invalid_argument("Monthly.Day is required (1..31 or L)");
    std::string d = to_upper(*day);
    WINCERT_TRY(check_day(d));
    s.kind = Schedule::Kind::kMonthly;
    s.day = d;
    s.time = std::move(t);
    return s;
  }
  if (const Json* once = find_ci(*value, "ExactlyOnce")) {
    auto t = get_string(*once, "Time");
    if (!t) return Error::invalid_argument("ExactlyOnce.Time is required (yyyy-mm-ddTHH:MM, UTC)");
    WINCERT_ASSIGN_OR_RETURN(auto at, normalize_once(*t));
    s.kind = Schedule::Kind::kOnce;
    s.at = std::move(at);
    return s;
  }
  return Error::invalid_argument("Schedule must have one of Immediate, Interval, Daily, Weekly, Monthly, ExactlyOnce");
}

}  // namespace wincert::sim::command
