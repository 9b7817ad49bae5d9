#include "agent/metrics/registry.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <thread>
#include <vector>

#include "agent/metrics/agent_metrics.hpp"

namespace wincert::agent::metrics {
namespace {

TEST(MetricsRegistry, RendersCountersAndGaugesWithHelpTypeAndLabels) {
  Registry registry;
  auto& jobs = registry.counter("wincert_jobs_total", "Jobs run.", {"capability", "result"});
  auto& depth = registry.gauge("wincert_depth", "Depth.");
  jobs.inc({"CertStores.WinCert.Inventory", "Success"});
  jobs.inc({"CertStores.WinCert.Inventory", "Success"}, 2);
  jobs.inc({"CertStores.WinCert.Inventory", "Success"}, -5);  // ignored: counters only go up
  depth.set({}, 3.5);
  EXPECT_EQ(registry.render(),
            "# HELP wincert_jobs_total Jobs run.\n"
            "# TYPE wincert_jobs_total counter\n"
            "wincert_jobs_total{capability=\"CertStores.WinCert.Inventory\",result=\"Success\"} 3\n"
            "# HELP wincert_depth Depth.\n"
            "# TYPE wincert_depth gauge\n"
            "wincert_depth 3.5\n");
  EXPECT_EQ(jobs.value({"CertStores.WinCert.Inventory", "Success"}), 3);
  EXPECT_EQ(jobs.value({"other", "Success"}), 0);
}

TEST(MetricsRegistry, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Registry registry;
  auto& h = registry.histogram("wincert_d_seconds", "D.", {"c"}, {1, 0.5, 5});  // unsorted on purpose
  h.observe({"x"}, 0.5);                                                        // le 0.5 (bounds are inclusive)
  h.observe({"x"}, 0.7);                                                        // le 1
  h.observe({"x"}, 100);                                                        // only +Inf
  EXPECT_EQ(registry.render(),
            "# HELP wincert_d_seconds D.\n"
            "# TYPE wincert_d_seconds histogram\n"
            "wincert_d_seconds_bucket{c=\"x\",le=\"0.5\"} 1\n"
            "wincert_d_seconds_bucket{c=\"x\",le=\"1\"} 2\n"
            "wincert_d_seconds_bucket{c=\"x\",le=\"5\"} 2\n"
            "wincert_d_seconds_bucket{c=\"x\",le=\"+Inf\"} 3\n"
            "wincert_d_seconds_sum{c=\"x\"} 101.2\n"
            "wincert_d_seconds_count{c=\"x\"} 3\n");
  EXPECT_EQ(h.count({"x"}), 3u);
}

TEST(MetricsRegistry, EscapesLabelValuesAndHelp) {
  Registry registry;
  auto& c = registry.counter("wincert_c_total", "Line one\nback\\slash", {"host"});
  c.inc({"a\"b\\c\nd"});
  const std::string page = registry.render();
  EXPECT_NE(page.find("# HELP wincert_c_total Line one\\nback\\\\slash\n"), std::string::npos) << page;
  EXPECT_NE(page.find("wincert_c_total{host=\"a\\\"b\\\\c\\nd\"} 1\n"), std::string::npos) << page;
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(0.1), "0.1");
}

TEST(MetricsRegistry, CallbackGaugesAreReadAtRenderAndNamesAreUnique) {
  Registry registry;
  double depth = 1;
  registry.gauge_callback("wincert_outbox_depth", "Entries.", [&depth] { return depth; });
  depth = 7;
  EXPECT_NE(registry.render().find("wincert_outbox_depth 7\n"), std::string::npos);
  EXPECT_THROW(registry.counter("wincert_outbox_depth", "again"), std::logic_error);
}

TEST(MetricsRegistry, ConcurrentUpdatesAreAllCounted) {
  Registry registry;
  auto& c = registry.counter("wincert_n_total", "N.", {"t"});
  auto& h = registry.histogram("wincert_h", "H.", {}, {1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.inc({"x"});
        h.observe({}, 0.5);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value({"x"}), 40000);
  EXPECT_EQ(h.count(), 40000u);
}

TEST(MetricsHostLabels, AggregatesHostsPastTheLimit) {
  HostLabels labels(2);
  EXPECT_EQ(labels.label("a"), "a");
  EXPECT_EQ(labels.label("b"), "b");
  EXPECT_EQ(labels.label("c"), "_other");
  EXPECT_EQ(labels.label("a"), "a");
}

TEST(AgentMetrics, JobsSessionAndHostsUpdateTheirFamilies) {
  AgentMetrics m(1);
  m.job_started("CertStores.WinCert.Inventory");
  m.job_finished("CertStores.WinCert.Inventory", "Failure", "transient", std::chrono::milliseconds(1500));
  m.delivery("completion", "delivered");
  m.delivery("completion", "retry");
  m.session_state(SessionState::kRegistered);
  m.connection_opened("host1");
  m.connection_opened("host2");
  m.shell_created("host2");
  m.auth_handshake("NTLM", true);
  EXPECT_EQ(m.jobs_finished.value({"CertStores.WinCert.Inventory", "Failure"}), 1);
  EXPECT_EQ(m.job_duration.count({"CertStores.WinCert.Inventory"}), 1u);
  EXPECT_EQ(m.job_errors.value({"CertStores.WinCert.Inventory", "transient"}), 1);
  EXPECT_EQ(m.delivery_failures.value({"completion"}), 1);
  EXPECT_EQ(m.session.value({"registered"}), 1);
  EXPECT_EQ(m.session.value({"unregistered"}), 0);
  EXPECT_EQ(m.connections.value({"host1"}), 1);
  EXPECT_EQ(m.connections.value({"_other"}), 1);
  EXPECT_EQ(m.shells.value({"_other"}), 1);
  m.connection_closed("host2");
  EXPECT_EQ(m.connections.value({"_other"}), 0);
  EXPECT_EQ(m.auth_handshakes.value({"ntlm", "ok"}), 1);
  // Every family has HELP and TYPE lines.
  const std::string page = m.render();
  for (const char* name : {"wincert_jobs_started_total", "wincert_job_duration_seconds", "wincert_winrm_shells",
                           "wincert_command_session_state", "wincert_last_heartbeat_success_timestamp_seconds"}) {
    EXPECT_NE(page.find(std::string("# HELP ") + name + " "), std::string::npos) << name;
    EXPECT_NE(page.find(std::string("# TYPE ") + name + " "), std::string::npos) << name;
  }
}

}  // namespace
}  // namespace wincert::agent::metrics
