// A small metrics registry for the agent's /metrics page: counters, gauges and histograms with fixed
// buckets, each a family of series keyed by label values, rendered in the Prometheus text exposition
// format 0.0.4. Updates are thread-safe (one mutex per family; the agent updates a handful of series per
// job, so contention is not a concern) and never allocate once a series exists.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace wincert::agent::metrics {

using LabelValues = std::vector<std::string>;

enum class MetricType { kCounter, kGauge, kHistogram };

// One named metric with its label names; every update names one series by its label values (in the
// order of the label names).
class Family {
 public:
  Family(std::string name, std::string help, MetricType type, std::vector<std::string> label_names,
         std::vector<double> buckets = {});
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;

  // Counters: add a non-negative amount (a negative one is ignored: counters only go up).
  void inc(const LabelValues& labels = {}, double amount = 1);
  // Gauges.
  void set(const LabelValues& labels, double value);
  void add(const LabelValues& labels, double amount);
  // Histograms: one observation.
  void observe(const LabelValues& labels, double value);
  // Reads a gauge or counter value (0 when the series does not exist): for tests and readiness.
  double value(const LabelValues& labels = {}) const;
  // Reads a histogram's observation count.
  std::uint64_t count(const LabelValues& labels = {}) const;

  const std::string& name() const { return name_; }
  MetricType type() const { return type_; }
  void render(std::string& out) const;

 private:
  struct Series {
    double value = 0;                    // counter / gauge; histogram sum
    std::uint64_t count = 0;             // histogram
    std::vector<std::uint64_t> buckets;  // histogram, cumulative at render time
  };
  Series& series_locked(const LabelValues& labels);

  std::string name_;
  std::string help_;
  MetricType type_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::map<LabelValues, Series> series_;
};

class Registry {
 public:
  // Names must be unique; a counter's name ends in "_total" by convention.
  Family& counter(std::string name, std::string help, std::vector<std::string> label_names = {});
  Family& gauge(std::string name, std::string help, std::vector<std::string> label_names = {});
  Family& histogram(std::string name, std::string help, std::vector<std::string> label_names,
                    std::vector<double> buckets);
  // A gauge without labels whose value is read when the page is rendered (outbox depth, ...).
  void gauge_callback(std::string name, std::string help, std::function<double()> read);

  // The whole page, text format 0.0.4, families in registration order.
  std::string render() const;

 private:
  // A family, or a callback gauge (family null), in registration order.
  struct Entry {
    std::unique_ptr<Family> family;
    std::string name;
    std::string help;
    std::function<double()> read;
  };
  Family& add(std::unique_ptr<Family> family);

  mutable std::mutex mutex_;
  std::vector<Entry> entries_;
};

// Keeps per-host labels bounded: the first `max_hosts` distinct hosts keep their name, every later one
// is reported as "_other" (so a fleet of thousands of hosts cannot blow up the page or Prometheus).
class HostLabels {
 public:
  explicit HostLabels(std::size_t max_hosts) : max_hosts_(max_hosts) {}
  std::string label(std::string_view host);
  static constexpr std::string_view kOther = "_other";

 private:
  std::mutex mutex_;
  std::size_t max_hosts_;
  std::set<std::string, std::less<>> known_;
};

// Text-format escaping: label values escape \, " and newline; HELP escapes \ and newline.
std::string escape_label_value(std::string_view value);
std::string escape_help(std::string_view help);
// A sample value as the format writes it (+Inf, -Inf, NaN, shortest round-trip decimal).
std::string format_value(double value);

}  // namespace wincert::agent::metrics
