// Schedule strings and next-run times; URLs and the three endpoint forms Command hands out.
#include <gtest/gtest.h>

#include "agent/command_http.hpp"
#include "agent/schedule.hpp"

namespace wincert::agent {
namespace {

using namespace std::chrono;

TimePoint at(int y, unsigned mo, unsigned d, int h, int mi, int s = 0) {
  return time_point_cast<seconds>(sys_days(year(y) / month(mo) / day(d)) + hours(h) + minutes(mi) + seconds(s));
}

Schedule parsed(const std::string& text) {
  auto s = parse_schedule(text);
  EXPECT_TRUE(s.ok()) << text << ": " << (s.ok() ? "" : s.error().message);
  return s.ok() ? s.value() : Schedule{};
}

TEST(ScheduleTest, ParsesEveryForm) {
  EXPECT_EQ(parsed("").kind, ScheduleKind::kImmediate);
  EXPECT_EQ(parsed("I_").kind, ScheduleKind::kImmediate);  // shorter than 3 characters
  const Schedule i = parsed("I_30");
  EXPECT_EQ(i.kind, ScheduleKind::kInterval);
  EXPECT_EQ(i.interval, minutes(30));
  const Schedule d = parsed("D_09:30");
  EXPECT_EQ(d.kind, ScheduleKind::kDaily);
  EXPECT_EQ(d.time_of_day, minutes(9 * 60 + 30));
  const Schedule w = parsed("W_246_09:30");
  EXPECT_EQ(w.kind, ScheduleKind::kWeekly);
  EXPECT_EQ(w.weekdays, (std::array<bool, 7>{false, true, false, true, false, true, false}));  // Mon, Wed, Fri
  const Schedule m = parsed("M_15_23:59");
  EXPECT_EQ(m.kind, ScheduleKind::kMonthly);
  EXPECT_EQ(m.day_of_month, 15);
  EXPECT_EQ(parsed("M_L_00:00").day_of_month, 0);
  const Schedule o = parsed("O_2024-05-01T09:30");
  EXPECT_EQ(o.kind, ScheduleKind::kOnce);
  EXPECT_EQ(o.once_at, at(2024, 5, 1, 9, 30));
  EXPECT_EQ(parsed("O_2024-05-01T09:30:15.123Z").once_at, at(2024, 5, 1, 9, 30, 15));
  EXPECT_EQ(parsed("i_5").interval, minutes(5));
}

TEST(ScheduleTest, RejectsMalformedSchedulesNamingThePart) {
  for (const char* bad : {"I_0", "I_x", "D_24:00", "D_9", "W_8_09:00", "W__09:00", "M_32_09:00", "M_0_09:00", "M_15",
                          "O_2024-02-30T10:00", "O_yesterday", "X_10", "Iabc"}) {
    auto s = parse_schedule(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(s.error().message.find(bad), std::string::npos) << s.error().message;
  }
}

TEST(ScheduleTest, IntervalAndImmediate) {
  const TimePoint now = at(2024, 5, 1, 10, 0);
  EXPECT_EQ(next_run(parsed("I_30"), now, std::nullopt), now);  // first run right away
  EXPECT_EQ(next_run(parsed("I_30"), now, now), now + minutes(30));
  EXPECT_EQ(next_run(parsed(""), now, std::nullopt), now);
  EXPECT_EQ(next_run(parsed(""), now, now), std::nullopt);  // ran once: done
}

TEST(ScheduleTest, Daily) {
  const Schedule d = parsed("D_09:30");
  EXPECT_EQ(next_run(d, at(2024, 5, 1, 8, 0), std::nullopt), at(2024, 5, 1, 9, 30));
  EXPECT_EQ(next_run(d, at(2024, 5, 1, 9, 30), std::nullopt), at(2024, 5, 1, 9, 30));  // exactly now: due
  EXPECT_EQ(next_run(d, at(2024, 5, 1, 9, 31), std::nullopt), at(2024, 5, 2, 9, 30));
  // After running at 09:30 the next run is tomorrow, not again today.
  EXPECT_EQ(next_run(d, at(2024, 5, 1, 9, 30), at(2024, 5, 1, 9, 30)), at(2024, 5, 2, 9, 30));
  EXPECT_EQ(next_run(d, at(2024, 12, 31, 23, 0), std::nullopt), at(2025, 1, 1, 9, 30));
}

TEST(ScheduleTest, Weekly) {
  const Schedule w = parsed("W_246_09:30");  // Mon, Wed, Fri; 2024-05-01 is a Wednesday
  EXPECT_EQ(next_run(w, at(2024, 5, 1, 8, 0), std::nullopt), at(2024, 5, 1, 9, 30));
  EXPECT_EQ(next_run(w, at(2024, 5, 1, 10, 0), std::nullopt), at(2024, 5, 3, 9, 30));  // Friday
  EXPECT_EQ(next_run(w, at(2024, 5, 3, 10, 0), std::nullopt), at(2024, 5, 6, 9, 30));  // Monday
  const Schedule sunday = parsed("W_1_00:00");
  EXPECT_EQ(next_run(sunday, at(2024, 5, 1, 0, 0), std::nullopt), at(2024, 5, 5, 0, 0));
  EXPECT_EQ(next_run(sunday, at(2024, 5, 5, 0, 0), at(2024, 5, 5, 0, 0)), at(2024, 5, 12, 0, 0));
}

TEST(ScheduleTest, MonthlyIncludingShortMonthsAndLastDay) {
  EXPECT_EQ(next_run(parsed("M_15_09:00"), at(2024, 5, 1, 0, 0), std::nullopt), at(2024, 5, 15, 9, 0));
  EXPECT_EQ(next_run(parsed("M_15_09:00"), at(2024, 5, 16, 0, 0), std::nullopt), at(2024, 6, 15, 9, 0));
  // Day 31 in a 30-day month runs on its last day; February of a leap year has 29.
  EXPECT_EQ(next_run(parsed("M_31_09:00"), at(2024, 4, 1, 0, 0), std::nullopt), at(2024, 4, 30, 9, 0));
  EXPECT_EQ(next_run(parsed("M_L_09:00"), at(2024, 2, 1, 0, 0), std::nullopt), at(2024, 2, 29, 9, 0));
  EXPECT_EQ(next_run(parsed("M_L_09:00"), at(2024, 2, 29, 9, 0), at(2024, 2, 29, 9, 0)), at(2024, 3, 31, 9, 0));
  EXPECT_EQ(next_run(parsed("M_1_00:00"), at(2024, 12, 2, 0, 0), std::nullopt), at(2025, 1, 1, 0, 0));
}

TEST(ScheduleTest, OnceRunsAtItsTimeOrNowWhenPastAndThenNever) {
  const Schedule o = parsed("O_2024-05-01T09:30");
  EXPECT_EQ(next_run(o, at(2024, 4, 1, 0, 0), std::nullopt), at(2024, 5, 1, 9, 30));
  EXPECT_LT(*next_run(o, at(2024, 6, 1, 0, 0), std::nullopt), at(2024, 6, 1, 0, 0));  // past: due now
  EXPECT_EQ(next_run(o, at(2024, 6, 1, 0, 0), at(2024, 5, 1, 9, 30)), std::nullopt);
  EXPECT_EQ(format_time(at(2024, 5, 1, 9, 30, 5)), "2024-05-01T09:30:05Z");
}

TEST(UrlTest, ParsesAndPrints) {
  auto u = parse_url("https://Command.example.com/KeyfactorAgents");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "Command.example.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/KeyfactorAgents");
  EXPECT_EQ(u->text(), "https://Command.example.com/KeyfactorAgents");
  auto v6 = parse_url("http://[::1]:8080?x=1");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->target, "/?x=1");
  EXPECT_EQ(v6->origin(), "http://[::1]:8080");
  EXPECT_FALSE(parse_url("ftp://x/").ok());
  EXPECT_FALSE(parse_url("https://user:pw@host/").ok());
  EXPECT_EQ(parse_url("https://user:pw@host/").error().message.find("pw"), std::string::npos);
  EXPECT_FALSE(parse_url("https://host:70000/").ok());
  EXPECT_FALSE(parse_url("host/path").ok());
  EXPECT_FALSE(parse_url("https:///path").ok());
}

std::string resolved(const std::string& base, const std::string& endpoint) {
  auto b = parse_url(base);
  EXPECT_TRUE(b.ok());
  auto r = resolve_endpoint(*b, endpoint);
  EXPECT_TRUE(r.ok()) << endpoint << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? r->text() : std::string();
}

TEST(UrlTest, ResolvesTheThreeEndpointForms) {
  const std::string base = "https://kf.example.com/KeyfactorAgents";
  // Absolute: as it is when on AgentsServerUri's origin (another origin is refused: EndpointPinningTest).
  EXPECT_EQ(resolved(base, "https://KF.example.com/x/Config?job=1"), "https://KF.example.com/x/Config?job=1");
  EXPECT_EQ(resolved(base, "https://kf.example.com:443/x/Config"), "https://kf.example.com/x/Config");
  // KeyfactorAgents/-prefixed (platform 7.4+): the prefix is the base's virtual directory.
  EXPECT_EQ(resolved(base, "KeyfactorAgents/Inventory/Config/5f5a"), base + "/Inventory/Config/5f5a");
  EXPECT_EQ(resolved(base, "keyfactoragents/Inventory/Config/5f5a"), base + "/Inventory/Config/5f5a");
  EXPECT_EQ(resolved("https://kf/Keyfactor/Agents", "KeyfactorAgents/Jobs/1/Complete"),
            "https://kf/Keyfactor/Agents/Jobs/1/Complete");  // reverse proxy with another vdir
  // /-rooted: under the base (the C agent's {base}{relPath}), not doubled when it already is.
  EXPECT_EQ(resolved(base, "/Session/Register"), base + "/Session/Register");
  EXPECT_EQ(resolved(base, "/KeyfactorAgents/Jobs/1/Complete"), base + "/Jobs/1/Complete");
  EXPECT_EQ(resolved("https://kf/Keyfactor/Agents", "/Keyfactor/Agents/Jobs/1"), "https://kf/Keyfactor/Agents/Jobs/1");
  EXPECT_EQ(resolved("http://127.0.0.1:4000", "/Jobs/1/Config"), "http://127.0.0.1:4000/Jobs/1/Config");
  EXPECT_EQ(resolved(base + "/", "Jobs/1/Config"), base + "/Jobs/1/Config");
  auto b = parse_url(base);
  EXPECT_FALSE(resolve_endpoint(*b, "").ok());
  EXPECT_FALSE(resolve_endpoint(*b, "Jobs/1 2").ok());
}

TEST(EndpointPinningTest, AnotherOriginOrADowngradeIsRefused) {
  auto base = parse_url("https://kf.example.com/KeyfactorAgents");
  ASSERT_TRUE(base.ok());
  for (const char* endpoint : {"https://other.example.com:8443/x/Config", "https://kf.example.com:8443/x/Config",
                               "http://kf.example.com/KeyfactorAgents/x", "http://kf.example.com:443/x",
                               "https://kf.example.com.evil/x", "HTTPS://attacker/KeyfactorAgents/Jobs/1/Complete"}) {
    auto r = resolve_endpoint(*base, endpoint);
    ASSERT_FALSE(r.ok()) << endpoint;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find("refused"), std::string::npos) << r.error().message;
  }
  auto downgrade = resolve_endpoint(*base, "http://kf.example.com/x");
  ASSERT_FALSE(downgrade.ok());
  EXPECT_NE(downgrade.error().message.find("downgrade"), std::string::npos);
  // Relative forms always land on the base's origin.
  for (const char* endpoint : {"//other.example.com/x", "KeyfactorAgents//evil:1/x", "x@evil/y"}) {
    auto r = resolve_endpoint(*base, endpoint);
    if (r.ok()) {
      EXPECT_TRUE(same_origin(*r, *base)) << endpoint << " -> " << r->text();
    }
  }
  // http base: the same origin only (scheme, host, port).
  auto plain = parse_url("http://127.0.0.1:4000");
  EXPECT_TRUE(resolve_endpoint(*plain, "http://127.0.0.1:4000/Jobs/1").ok());
  EXPECT_FALSE(resolve_endpoint(*plain, "http://127.0.0.1:4001/Jobs/1").ok());
  EXPECT_FALSE(resolve_endpoint(*plain, "https://127.0.0.1:4000/Jobs/1").ok());
}

}  // namespace
}  // namespace wincert::agent
