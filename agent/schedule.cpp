#include "agent/schedule.hpp"

#include <charconv>

#include "agent/command_http.hpp"
#include "common/encoding.hpp"

namespace wincert::agent {

using namespace std::chrono;

namespace {

bool parse_int(std::string_view text, int& out) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && ptr == text.data() + text.size();
}

// "HH:MM" -> minutes after midnight.
Result<minutes> parse_time_of_day(std::string_view text) {
  const auto colon = text.find(':');
  int h = -1;
  int m = -1;
  if (colon == std::string_view::npos || !parse_int(text.substr(0, colon), h) ||
      !parse_int(text.substr(colon + 1), m) || h < 0 || h > 23 || m < 0 || m > 59) {
    return Error::invalid_argument("time '" + std::string(text) + "' is not HH:MM (00:00 to 23:59, UTC)");
  }
  return minutes(h * 60 + m);
}

// "yyyy-mm-ddTHH:MM[:SS[.fff]][Z]" (a space instead of 'T' too).
Result<TimePoint> parse_timestamp(std::string_view text) {
  const Error bad = Error::invalid_argument("time '" + std::string(text) + "' is not yyyy-mm-ddTHH:MM (UTC)");
  if (!text.empty() && (text.back() == 'Z' || text.back() == 'z')) text.remove_suffix(1);
  if (text.size() < 16 || text[4] != '-' || text[7] != '-' || (text[10] != 'T' && text[10] != 't' && text[10] != ' ') ||
      text[13] != ':')
    return bad;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!parse_int(text.substr(0, 4), y) || !parse_int(text.substr(5, 2), mo) || !parse_int(text.substr(8, 2), d) ||
      !parse_int(text.substr(11, 2), h) || !parse_int(text.substr(14, 2), mi))
    return bad;
  std::string_view rest = text.substr(16);
  if (!rest.empty()) {
    if (rest.size() < 3 || rest[0] != ':' || !parse_int(rest.substr(1, 2), s)) return bad;
    rest.remove_prefix(3);
    if (!rest.empty()) {
      if (rest[0] != '.') return bad;
      for (const char c : rest.substr(1))
        if (c < '0' || c > '9') return bad;
    }
  }
  const year_month_day date{year(y), month(static_cast<unsigned>(mo)), day(static_cast<unsigned>(d))};
  if (!date.ok() || h > 23 || mi > 59 || s > 60) return bad;
  return time_point_cast<seconds>(sys_days(date) + hours(h) + minutes(mi) + seconds(s));
}

TimePoint at(sys_days day_value, minutes time_of_day) { return time_point_cast<seconds>(day_value + time_of_day); }

}  // namespace

Result<Schedule> parse_schedule(std::string_view raw) {
  Schedule out;
  out.text = std::string(raw);
  const std::string_view text = trim(raw);
  if (text.size() < 3) return out;  // immediate
  const auto fail = [&](const std::string& why) {
    return Error::invalid_argument("schedule '" + body_excerpt(text) + "': " + why);
  };
  if (text[1] != '_') return fail("unknown form (expected I_, D_, W_, M_ or O_)");
  const char kind = static_cast<char>(std::toupper(static_cast<unsigned char>(text[0])));
  const std::string_view body = text.substr(2);
  switch (kind) {
    case 'I': {
      int n = 0;
      if (!parse_int(body, n) || n <= 0 || n > 525600) return fail("interval must be 1 to 525600 minutes");
      out.kind = ScheduleKind::kInterval;
      out.interval = minutes(n);
      return out;
    }
    case 'D': {
      auto t = parse_time_of_day(body);
      if (!t.ok()) return fail(t.error().message);
      out.kind = ScheduleKind::kDaily;
      out.time_of_day = *t;
      return out;
    }
    case 'W': {
      const auto sep = body.find('_');
      if (sep == std::string_view::npos || sep == 0) return fail("expected W_<weekday digits>_<HH:MM>");
      for (const char c : body.substr(0, sep)) {
        if (c < '1' || c > '7') return fail("weekday digits must be 1 (Sunday) to 7 (Saturday)");
        out.weekdays[static_cast<std::size_t>(c - '1')] = true;
      }
      auto t = parse_time_of_day(body.substr(sep + 1));
      if (!t.ok()) return fail(t.error().message);
      out.kind = ScheduleKind::kWeekly;
      out.time_of_day = *t;
      return out;
    }
    case 'M': {
      const auto sep = body.find('_');
      if (sep == std::string_view::npos) return fail("expected M_<day or L>_<HH:MM>");
      const std::string_view day_text = body.substr(0, sep);
      if (day_text == "L" || day_text == "l") {
        out.day_of_month = 0;
      } else if (!parse_int(day_text, out.day_of_month) || out.day_of_month < 1 || out.day_of_month > 31) {
        return fail("day of month must be 1 to 31 or L");
      }
      auto t = parse_time_of_day(body.substr(sep + 1));
      if (!t.ok()) return fail(t.error().message);
      out.kind = ScheduleKind::kMonthly;
      out.time_of_day = *t;
      return out;
    }
    case 'O': {
      auto t = parse_timestamp(body);
      if (!t.ok()) return fail(t.error().message);
      out.kind = ScheduleKind::kOnce;
      out.once_at = *t;
      return out;
    }
    default:
      return fail("unknown form (expected I_, D_, W_, M_ or O_)");
  }
}

std::optional<TimePoint> next_run(const Schedule& schedule, TimePoint now, std::optional<TimePoint> last_run) {
  // Calendar schedules look for the first slot at or after `from`.
  const TimePoint from = last_run ? *last_run + seconds(1) : now;
  const sys_days first_day = floor<days>(from);
  switch (schedule.kind) {
    case ScheduleKind::kImmediate:
      if (last_run) return std::nullopt;
      return now;
    case ScheduleKind::kOnce:
      if (last_run) return std::nullopt;
      return schedule.once_at;
    case ScheduleKind::kInterval:
      if (!last_run) return now;
      return *last_run + duration_cast<seconds>(schedule.interval);
    case ScheduleKind::kDaily: {
      TimePoint t = at(first_day, schedule.time_of_day);
      if (t < from) t = at(first_day + days(1), schedule.time_of_day);
      return t;
    }
    case ScheduleKind::kWeekly: {
      for (int i = 0; i < 8; ++i) {
        const sys_days d = first_day + days(i);
        if (!schedule.weekdays[weekday(d).c_encoding()]) continue;
        const TimePoint t = at(d, schedule.time_of_day);
        if (t >= from) return t;
      }
      return std::nullopt;  // no weekday set: cannot happen after parse_schedule
    }
    case ScheduleKind::kMonthly: {
      const year_month_day ymd(first_day);
      year_month ym = ymd.year() / ymd.month();
      for (int i = 0; i < 3; ++i, ym += months(1)) {
        const year_month_day_last last_day = ym / last;
        const unsigned last_dom = static_cast<unsigned>(last_day.day());
        unsigned dom = schedule.day_of_month == 0 ? last_dom : static_cast<unsigned>(schedule.day_of_month);
        if (dom > last_dom) dom = last_dom;
        const TimePoint t = at(sys_days(ym / day(dom)), schedule.time_of_day);
        if (t >= from) return t;
      }
      return std::nullopt;
    }
  }
  return std::nullopt;
}

std::string format_time(TimePoint t) {
  const sys_days d = floor<days>(t);
  const year_month_day ymd(d);
  const hh_mm_ss<seconds> hms(t - d);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

std::optional<TimePoint> next_after_clock_jump(const Schedule& schedule, std::optional<TimePoint> next,
                                               std::chrono::seconds skew) {
  if (!next || schedule.kind != ScheduleKind::kInterval || skew >= std::chrono::seconds(0)) return next;
  return *next + skew;
}

}  // namespace wincert::agent
