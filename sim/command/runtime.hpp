// Everything one command-sim process holds while it runs: settings, the persisted state, the CA, the
// authenticator, and the in-memory parts (sessions, counters, faults). Only the io_context thread
// touches it, so nothing here locks.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/encoding.hpp"
#include "sim/command/auth.hpp"
#include "sim/command/ca.hpp"
#include "sim/command/faults.hpp"
#include "sim/command/state.hpp"
#include "sim/command/state_db.hpp"

namespace wincert::sim::command {

// How job endpoints are written in responses (reference 1: agents must resolve all three):
// "KeyfactorAgents/..." (what Command 7.4+ sends), "/KeyfactorAgents/...", "http://host:port/KeyfactorAgents/...",
// or rotate: each URL handed out takes the next of the three.
enum class EndpointForm { kPrefixed, kRooted, kAbsolute, kRotate };
std::string_view endpoint_form_name(EndpointForm form);
std::optional<EndpointForm> parse_endpoint_form(std::string_view text);

// HeartbeatInterval, in whole minutes, that command-sim hands out. Never 0: Keyfactor's C agent would then
// heartbeat every 10 s (reference 11.5) and wincert-agent refuses it as invalid; at most a day, the largest
// wincert-agent accepts.
inline constexpr int kMinHeartbeatMinutes = 1;
inline constexpr int kMaxHeartbeatMinutes = 1440;
constexpr bool valid_heartbeat_minutes(std::int64_t minutes) {
  return minutes >= kMinHeartbeatMinutes && minutes <= kMaxHeartbeatMinutes;
}

enum class CapabilityIn { kBoth, kConfiguration, kNowhere };
std::string_view capability_in_name(CapabilityIn where);
std::optional<CapabilityIn> parse_capability_in(std::string_view text);

struct Settings {
  std::string base_path = "/KeyfactorAgents";  // where the Orchestrators API lives
  EndpointForm endpoint_form = EndpointForm::kPrefixed;
  std::string public_url;     // scheme://host:port for absolute URLs; empty = from the request's Host header
  int heartbeat_minutes = 5;  // valid_heartbeat_minutes()
  bool auto_approve = false;
  bool invalidate_on_schedule = true;  // a schedule change invalidates the agent's sessions (reference 3.2)
  bool chain_inventory = false;        // successful management/reenrollment completions chain an inventory job
  int certificate_validity_days = 365;
  // Where a Universal Orchestrator's jobs name their Capability (reference 11.7: not seen in Keyfactor's own
  // code): in the job list and the configuration (default), only in the configuration, or nowhere (the
  // agent must map the JobTypeId GUID itself).
  CapabilityIn capability_in = CapabilityIn::kBoth;
};

struct Counters {
  std::map<std::string, std::uint64_t> requests;   // by endpoint
  std::map<std::string, std::uint64_t> responses;  // by HTTP status
  std::uint64_t auth_failures = 0;
  std::uint64_t registrations = 0;
  std::uint64_t completions_recorded = 0;
  std::uint64_t duplicate_completions = 0;
  std::uint64_t completions_rejected = 0;  // by the RejectCompletions fault
  std::uint64_t injected_errors = 0;       // by the FailNext fault
  std::uint64_t dropped_connections = 0;   // by the DropNext/DropForSeconds faults
  std::uint64_t inventory_submissions = 0;
  std::uint64_t csrs_signed = 0;
  std::uint64_t sessions_invalidated = 0;
  std::uint64_t tokens_issued = 0;
  Json to_json() const;
};

struct Session {
  std::string agent_id;
  std::string principal;
  std::string created;
};

class Sessions {
 public:
  std::string open(const std::string& agent_id, const std::string& principal);
  const Session* find(std::string_view token) const;
  std::size_t invalidate_all();
  std::size_t invalidate_agent(std::string_view agent_id);
  std::size_t size() const { return by_token_.size(); }
  std::size_t count(std::string_view agent_id) const;

 private:
  std::map<std::string, Session> by_token_;
  std::map<std::string, std::uint64_t> order_;  // token -> sequence, to drop an agent's oldest sessions
  std::uint64_t sequence_ = 0;
};

struct Runtime {
  Runtime(Settings s, StateDb database, State st, CertificateAuthority authority, AgentAuthenticator authenticator)
      : settings(std::move(s)),
        db(std::move(database)),
        state(std::move(st)),
        ca(std::move(authority)),
        auth(std::move(authenticator)) {}

  Settings settings;
  StateDb db;
  State state;
  CertificateAuthority ca;
  AgentAuthenticator auth;
  Sessions sessions;
  Counters counters;
  Faults faults;
  std::uint64_t urls_handed_out = 0;  // drives EndpointForm::kRotate

  // What the current request changed in `state`: every handler that changes a record names it here, and
  // commit() writes them through to the database.
  StateChanges pending;
  void changed_agent(std::string_view id) { pending.agents.insert(to_lower(id)); }
  void changed_store(std::string_view id) { pending.stores.insert(to_lower(id)); }
  void changed_inventory(std::string_view store_id) { pending.inventories.insert(to_lower(store_id)); }
  void changed_job(std::string_view id) { pending.jobs.insert(to_lower(id)); }
  void recorded_history(std::int64_t job_history_id) { pending.history.insert(job_history_id); }
  // Writes what is pending (with new issued records and next_history_id) in ONE transaction; App calls it
  // at the end of every request, before the response goes out. On failure the changes stay pending for the
  // next commit (the in-memory state stays authoritative) and the error is returned.
  Status commit();
  Job& add_job(JobKind kind, const Store& store, Schedule schedule, Json payload);
  // After a change to what an agent should run: invalidate its sessions so its next heartbeat makes it
  // register again and fetch the new job list (when Settings::invalidate_on_schedule).
  void notify_agent(std::string_view agent_id, std::string_view why);
  std::size_t invalidate_agent_sessions(std::string_view agent_id);
};

}  // namespace wincert::sim::command
