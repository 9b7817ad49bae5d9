#include "agent/metrics/registry.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace wincert::agent::metrics {

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string escape_help(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (const char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  if (ec != std::errc{}) return "NaN";
  return std::string(buffer, end);
}

Family::Family(std::string name, std::string help, MetricType type, std::vector<std::string> label_names,
               std::vector<double> buckets)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)),
      bounds_(std::move(buckets)) {
  std::sort(bounds_.begin(), bounds_.end());
  bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
  if (!bounds_.empty() && std::isinf(bounds_.back())) bounds_.pop_back();  // +Inf is always added
}

Family::Series& Family::series_locked(const LabelValues& labels) {
  auto it = series_.find(labels);
  if (it == series_.end()) {
    LabelValues key = labels;
    key.resize(label_names_.size());  // a caller's missing values render as ""
    it = series_.try_emplace(std::move(key)).first;
    if (type_ == MetricType::kHistogram) it->second.buckets.assign(bounds_.size(), 0);
  }
  return it->second;
}

void Family::inc(const LabelValues& labels, double amount) {
  if (!(amount >= 0)) return;
  std::lock_guard lock(mutex_);
  series_locked(labels).value += amount;
}

void Family::set(const LabelValues& labels, double value) {
  std::lock_guard lock(mutex_);
  series_locked(labels).value = value;
}

void Family::add(const LabelValues& labels, double amount) {
  std::lock_guard lock(mutex_);
  series_locked(labels).value += amount;
}

void Family::observe(const LabelValues& labels, double value) {
  std::lock_guard lock(mutex_);
  Series& s = series_locked(labels);
  s.value += value;
  ++s.count;
  // Per-bucket (non-cumulative) counts; render() accumulates.
  const auto bucket = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  if (static_cast<std::size_t>(bucket) < s.buckets.size()) ++s.buckets[static_cast<std::size_t>(bucket)];
}

double Family::value(const LabelValues& labels) const {
  std::lock_guard lock(mutex_);
  auto it = series_.find(labels);
  return it == series_.end() ? 0 : it->second.value;
}

std::uint64_t Family::count(const LabelValues& labels) const {
  std::lock_guard lock(mutex_);
  auto it = series_.find(labels);
  return it == series_.end() ? 0 : it->second.count;
}

namespace {

const char* type_name(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// {a="x",b="y"} plus an optional extra label (le for buckets); empty when there are no labels.
std::string label_text(const std::vector<std::string>& names, const LabelValues& values,
                       std::string_view extra_name = {}, std::string_view extra_value = {}) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    out += out.empty() ? "{" : ",";
    out += names[i] + "=\"" + escape_label_value(i < values.size() ? values[i] : std::string()) + "\"";
  }
  if (!extra_name.empty()) {
    out += out.empty() ? "{" : ",";
    out += std::string(extra_name) + "=\"" + std::string(extra_value) + "\"";
  }
  if (!out.empty()) out += "}";
  return out;
}

void header(std::string& out, const std::string& name, const std::string& help, MetricType type) {
  out += "# HELP " + name + " " + escape_help(help) + "\n";
  out += "# TYPE " + name + " " + type_name(type) + "\n";
}

}  // namespace

void Family::render(std::string& out) const {
  header(out, name_, help_, type_);
  std::lock_guard lock(mutex_);
  for (const auto& [labels, s] : series_) {
    if (type_ != MetricType::kHistogram) {
      out += name_ + label_text(label_names_, labels) + " " + format_value(s.value) + "\n";
      continue;
    }
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < bounds_.size(); ++i) {
      cumulative += s.buckets[i];
      out += name_ + "_bucket" + label_text(label_names_, labels, "le", format_value(bounds_[i])) + " " +
             std::to_string(cumulative) + "\n";
    }
    out += name_ + "_bucket" + label_text(label_names_, labels, "le", "+Inf") + " " + std::to_string(s.count) + "\n";
    out += name_ + "_sum" + label_text(label_names_, labels) + " " + format_value(s.value) + "\n";
    out += name_ + "_count" + label_text(label_names_, labels) + " " + std::to_string(s.count) + "\n";
  }
}

Family& Registry::add(std::unique_ptr<Family> family) {
  std::lock_guard lock(mutex_);
  for (const auto& e : entries_) {
    if (e.name == family->name()) throw std::logic_error("metric registered twice: " + family->name());
  }
  Family& ref = *family;
  Entry entry;
  entry.name = family->name();
  entry.family = std::move(family);
  entries_.push_back(std::move(entry));
  return ref;
}

Family& Registry::counter(std::string name, std::string help, std::vector<std::string> label_names) {
  return add(std::make_unique<Family>(std::move(name), std::move(help), MetricType::kCounter, std::move(label_names)));
}

Family& Registry::gauge(std::string name, std::string help, std::vector<std::string> label_names) {
  return add(std::make_unique<Family>(std::move(name), std::move(help), MetricType::kGauge, std::move(label_names)));
}

Family& Registry::histogram(std::string name, std::string help, std::vector<std::string> label_names,
                            std::vector<double> buckets) {
  return add(std::make_unique<Family>(std::move(name), std::move(help), MetricType::kHistogram, std::move(label_names),
                                      std::move(buckets)));
}

void Registry::gauge_callback(std::string name, std::string help, std::function<double()> read) {
  std::lock_guard lock(mutex_);
  for (const auto& e : entries_) {
    if (e.name == name) throw std::logic_error("metric registered twice: " + name);
  }
  Entry entry;
  entry.name = std::move(name);
  entry.help = std::move(help);
  entry.read = std::move(read);
  entries_.push_back(std::move(entry));
}

std::string Registry::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& e : entries_) {
    if (e.family) {
      e.family->render(out);
      continue;
    }
    header(out, e.name, e.help, MetricType::kGauge);
    out += e.name + " " + format_value(e.read ? e.read() : 0) + "\n";
  }
  return out;
}

std::string HostLabels::label(std::string_view host) {
  std::lock_guard lock(mutex_);
  if (known_.find(host) != known_.end()) return std::string(host);
  if (known_.size() >= max_hosts_) return std::string(kOther);
  return *known_.emplace(host).first;
}

}  // namespace wincert::agent::metrics
