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
    return Error::invalid_argument(std::string(key) + ".Count must be 0..1000000");
  if (status != nullptr) {
    auto s = get_int(wrapped, "Status");
    if (!s) return s.error().context(std::string(key) + ".");
    if (s->has_value()) {
      if (**s < static_cast<std::int64_t>(min_status) || **s > 599)
        return Error::invalid_argument(std::string(key) + ".Status must be a 4xx or 5xx code");
      *status = static_cast<unsigned>(**s);
    }
  }
  if (match != nullptr) *match = get_string(wrapped, "PathContains").value_or("");
  count = static_cast<int>(**n);
  return {};
}

// The body a ReplaceBody knob asks for: "Body" as it is, or "Generate": deep (N nested arrays),
// huge (a valid envelope padded to N bytes), garbage (N bytes that are not JSON).
Result<std::string> replacement_body(const Json& knob) {
  if (auto body = get_string(knob, "Body"); body && !body->empty()) return *body;
  const std::string kind = to_lower(get_string(knob, "Generate").value_or(""));
  auto size = get_int(knob, "Size");
  if (!size) return size.error().context("ReplaceBody.");
  const std::int64_t n = size->value_or(0);
  if (n < 1 || n > 256LL * 1024 * 1024) return Error::invalid_argument("ReplaceBody.Size must be 1..268435456");
  const auto count = static_cast<std::size_t>(n);
  if (kind == "deep") return std::string(count, '[') + std::string(count, ']');
  if (kind == "huge") {
    const std::string head = R"({"Result":{"Status":1},"Pad":")";
    return head + std::string(count > head.size() + 2 ? count - head.size() - 2 : 1, 'x') + "\"}";
  }
  if (kind == "garbage") {
    std::string out(count, '\0');
    for (std::size_t i = 0; i < count; ++i) out[i] = static_cast<char>("{[\"\\:,]} x\x01\xff"[i * 7 % 12]);
    return out;
  }
  return Error::invalid_argument("ReplaceBody needs \"Body\" or \"Generate\": deep, huge or garbage");
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
    return d;
  }
  if (replace_next_ > 0 && path_matches(path, replace_match_)) {
    --replace_next_;
    d.replace_body = replace_body_;
  }
  return d;
}

unsigned Faults::on_completion() {
  if (reject_completions_ <= 0) return 0;
  --reject_completions_;
  return reject_status_;
}

Status Faults::configure(const Json& body) {
  if (!body.is_object()) return Error::invalid_argument("the body must be a JSON object");
  Faults next = *this;  // all or nothing: a bad knob leaves the current faults untouched
  WINCERT_TRY(read_counted(body, "FailNext", next.fail_next_, &next.fail_status_, &next.fail_match_, 400));
  WINCERT_TRY(read_counted(body, "DropNext", next.drop_next_, nullptr, &next.drop_match_, 0));
  WINCERT_TRY(read_counted(body, "RejectCompletions", next.reject_completions_, &next.reject_status_, nullptr, 400));
  if (const Json* replace = find_ci(body, "ReplaceBody"); replace != nullptr) {
    if (!replace->is_object())
      return Error::invalid_argument(
          "ReplaceBody must be {\"Count\", \"PathContains\", \"Body\" or \"Generate\"+\"Size\"}");
    WINCERT_TRY(read_counted(body, "ReplaceBody", next.replace_next_, nullptr, &next.replace_match_, 0));
    WINCERT_ASSIGN_OR_RETURN(auto text, replacement_body(*replace));
    next.replace_body_ = std::move(text);
  }
  WINCERT_ASSIGN_OR_RETURN(auto drop_for, get_int(body, "DropForSeconds"));
  if (drop_for.has_value()) {
    if (*drop_for < 0 || *drop_for > 86400) return Error::invalid_argument("DropForSeconds must be 0..86400");
    next.drop_until_ = std::chrono::steady_clock::now() + std::chrono::seconds(*drop_for);
  }
  WINCERT_ASSIGN_OR_RETURN(auto latency, get_int(body, "LatencyMs"));
  if (latency.has_value()) {
    if (*latency < 0 || *latency > 600000) return Error::invalid_argument("LatencyMs must be 0..600000");
    next.latency_ms_ = *latency;
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
  Json replace = Json::object();
  replace["Count"] = replace_next_;
  replace["PathContains"] = replace_match_;
  replace["Bytes"] = replace_body_.size();
  out["ReplaceBody"] = std::move(replace);
  return out;
}

}  // namespace wincert::sim::command
