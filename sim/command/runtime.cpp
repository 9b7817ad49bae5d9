#include "sim/command/runtime.hpp"

#include <algorithm>

#include "common/encoding.hpp"
#include "common/log.hpp"

namespace wincert::sim::command {

std::string_view endpoint_form_name(EndpointForm form) {
  switch (form) {
    case EndpointForm::kPrefixed:
      return "prefixed";
    case EndpointForm::kRooted:
      return "rooted";
    case EndpointForm::kAbsolute:
      return "absolute";
    case EndpointForm::kRotate:
      return "rotate";
  }
  return "prefixed";
}

std::optional<EndpointForm> parse_endpoint_form(std::string_view text) {
  for (EndpointForm f :
       {EndpointForm::kPrefixed, EndpointForm::kRooted, EndpointForm::kAbsolute, EndpointForm::kRotate}) {
    if (iequals(text, endpoint_form_name(f))) return f;
  }
  return std::nullopt;
}

std::string_view capability_in_name(CapabilityIn where) {
  switch (where) {
    case CapabilityIn::kBoth:
      return "both";
    case CapabilityIn::kConfiguration:
      return "configuration";
    case CapabilityIn::kNowhere:
      return "nowhere";
  }
  return "both";
}

std::optional<CapabilityIn> parse_capability_in(std::string_view text) {
  for (CapabilityIn w : {CapabilityIn::kBoth, CapabilityIn::kConfiguration, CapabilityIn::kNowhere}) {
    if (iequals(text, capability_in_name(w))) return w;
  }
  return std::nullopt;
}

Json Counters::to_json() const {
  Json out = Json::object();
  out["Requests"] = requests;
  out["Responses"] = responses;
  out["AuthFailures"] = auth_failures;
  out["Registrations"] = registrations;
  out["CompletionsRecorded"] = completions_recorded;
  out["DuplicateCompletions"] = duplicate_completions;
  out["CompletionsRejected"] = completions_rejected;
  out["InjectedErrors"] = injected_errors;
  out["DroppedConnections"] = dropped_connections;
  out["InventorySubmissions"] = inventory_submissions;
  out["CsrsSigned"] = csrs_signed;
  out["SessionsInvalidated"] = sessions_invalidated;
  out["TokensIssued"] = tokens_issued;
  return out;
}

std::string Sessions::open(const std::string& agent_id, const std::string& principal) {
  // An agent that registers on every cron run leaves old sessions behind; keep its newest few.
  constexpr std::size_t kPerAgent = 16;
  std::size_t mine = 0;
  std::string oldest;
  std::uint64_t oldest_seq = UINT64_MAX;
  for (const auto& [token, s] : by_token_) {
    if (s.agent_id != agent_id) continue;
    ++mine;
    if (order_[token] < oldest_seq) {
      oldest_seq = order_[token];
      oldest = token;
    }
  }
  if (mine >= kPerAgent) {
    by_token_.erase(oldest);
    order_.erase(oldest);
  }
  std::string token = new_guid();
  by_token_[token] = Session{agent_id, principal, now_iso8601()};
  order_[token] = ++sequence_;
  return token;
}

const Session* Sessions::find(std::string_view token) const {
  auto it = by_token_.find(to_lower(trim(token)));
  return it == by_token_.end() ? nullptr : &it->second;
}

std::size_t Sessions::count(std::string_view agent_id) const {
  return static_cast<std::size_t>(std::count_if(by_token_.begin(), by_token_.end(),
                                                [&](const auto& t) { return same_id(t.second.agent_id, agent_id); }));
}

std::size_t Sessions::invalidate_all() {
  const std::size_t n = by_token_.size();
  by_token_.clear();
  order_.clear();
  return n;
}

std::size_t Sessions::invalidate_agent(std::string_view agent_id) {
  std::size_t n = 0;
  for (auto it = by_token_.begin(); it != by_token_.end();) {
    if (same_id(it->second.agent_id, agent_id)) {
      order_.erase(it->first);
      it = by_token_.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  return n;
}

Status Runtime::commit() {
  auto st = db.commit(state, pending);
  if (!st) {
    logger("command-sim")->error("cannot save the state in {}: {}", db.path(), st.error().message);
    return st;
  }
  pending = StateChanges{};
  return st;
}

Job& Runtime::add_job(JobKind kind, const Store& store, Schedule schedule, Json payload) {
  Job job;
  job.id = new_guid();
  job.kind = kind;
  job.store_id = store.id;
  job.schedule = std::move(schedule);
  job.payload = std::move(payload);
  job.created = now_iso8601();
  const std::string id = job.id;
  logger("command-sim")
      ->info("scheduled {} job {} ({}) for store {} {} ({})", job_kind_name(kind), id, job.schedule.text(),
             store.client_machine, store.store_path, store.id);
  auto& stored = state.jobs[id] = std::move(job);
  changed_job(id);
  if (!store.agent_id.empty()) notify_agent(store.agent_id, "its schedule changed");
  return stored;
}

std::size_t Runtime::invalidate_agent_sessions(std::string_view agent_id) {
  const std::size_t n = sessions.invalidate_agent(agent_id);
  counters.sessions_invalidated += n;
  return n;
}

void Runtime::notify_agent(std::string_view agent_id, std::string_view why) {
  if (!settings.invalidate_on_schedule) return;
  if (const std::size_t n = invalidate_agent_sessions(agent_id); n > 0)
    logger("command-sim")->info("invalidated {} session(s) of agent {}: {}", n, agent_id, why);
}

}  // namespace wincert::sim::command
