#include "sim/command/faults.hpp"

#include "common/encoding.hpp"

namespace wincert::sim::command {
namespace {

bool path_matches(std::string_view path, const std::string& needle) {
  return needle.empty() || to_lower(path).find(to_lower(needle)) != std::string::npos;
}

// A knob given as a number (the count) or as {"Count": n, "Status": s, "PathContains": text}.
Status read_counted(const Json& body, std::string_view key, int& count, unsigned* status, std::string* match,
                    unsigned min_status) {
  const Json* v = find_ci(body, key);
  if (v == nullptr) return {};
  const Json wrapped = v->is_object() ? *v : object_of("Count", *v);
  auto n = get_int(wrapped, "Count");
  if (!n) return n.error().context(std::string(key) + ".");
  if (!n->has_value() || **n < 0 || **n > 1000000)
    return Error::invalid(std::string(key) + ".Count must be 0..1000000");
  if (status != nullptr) {
    auto s = get_int(wrapped, "Status");
    if (!s) return s.error().context(std::string(key) + ".");
    if (s->has_value()) {
      if (**s < static_cast<std::int64_t>(min_status) || **s > 599)
        return Error::invalid(std::string(key) + ".Status must be a 4xx or 5xx code");
      *status = static_cast<unsigned>(**s);
    }
  }
  if (match != nullptr) *match = get_string(wrapped, "PathContains").value_or("");
  count = static_cast<int>(**n);
  return {};
}

}  // namespace

Faults::Decision Faults::on_request(std::string_view path) {
  Decision d;
  if (std::chrono::steady_clock::now() < drop_until_) {
    d.drop = true;
    return d;
  }
  if (drop_next_ > 0 && path_matches(path, drop_match_)) {
    --drop_next_;
    d.drop = true;
    return d;
  }
  if (fail_next_ > 0 && path_matches(path, fail_match_)) {
    --fail_next_;
    d.fail_status = fail_status_;
  }
  return d;
}

unsigned Faults::on_completion() {
  if (reject_completions_ <= 0) return 0;
  --reject_completions_;
  return reject_status_;
}

Status Faults::configure(const Json& body) {
  if (!body.is_object()) return Error::invalid("the body must be a JSON object");
  Faults next = *this;  // all or nothing: a bad knob leaves the current faults untouched
  WINCERT_TRY(read_counted(body, "FailNext", next.fail_next_, &next.fail_status_, &next.fail_match_, 400));
  WINCERT_TRY(read_counted(body, "DropNext", next.drop_next_, nullptr, &next.drop_match_, 0));
  WINCERT_TRY(read_counted(body, "RejectCompletions", next.reject_completions_, &next.reject_status_, nullptr, 400));
  auto drop_for = get_int(body, "DropForSeconds");
  if (!drop_for) return drop_for.error();
  if (drop_for->has_value()) {
    if (**drop_for < 0 || **drop_for > 86400) return Error::invalid("DropForSeconds must be 0..86400");
    next.drop_until_ = std::chrono::steady_clock::now() + std::chrono::seconds(**drop_for);
  }
  auto latency = get_int(body, "LatencyMs");
  if (!latency) return latency.error();
  if (latency->has_value()) {
    if (**latency < 0 || **latency > 600000) return Error::invalid("LatencyMs must be 0..600000");
    next.latency_ms_ = **latency;
  }
  *this = next;
  return {};
}

Json Faults::to_json() const {
  Json out = Json::object();
  Json fail = Json::object();
  fail["Count"] = fail_next_;
  fail["Status"] = fail_status_;
  fail["PathContains"] = fail_match_;
  out["FailNext"] = std::move(fail);
  Json drop = Json::object();
  drop["Count"] = drop_next_;
  drop["PathContains"] = drop_match_;
  out["DropNext"] = std::move(drop);
  const auto left = drop_until_ - std::chrono::steady_clock::now();
  out["DropForSecondsLeft"] =
      left.count() > 0 ? std::chrono::duration_cast<std::chrono::milliseconds>(left).count() / 1000.0 : 0.0;
  out["LatencyMs"] = latency_ms_;
  Json reject = Json::object();
  reject["Count"] = reject_completions_;
  reject["Status"] = reject_status_;
  out["RejectCompletions"] = std::move(reject);
  return out;
}

}  // namespace wincert::sim::command
