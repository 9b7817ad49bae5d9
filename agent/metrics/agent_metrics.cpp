#include "agent/metrics/agent_metrics.hpp"

#include <algorithm>
#include <cctype>

#include "agent/platform/files.hpp"

namespace wincert::agent::metrics {

namespace {
// Job durations: from a quick inventory (sub-second) to a SQL Server restart (minutes).
const std::vector<double> kJobDurationBuckets = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
constexpr SessionState kAllStates[] = {SessionState::kUnregistered, SessionState::kPendingApproval,
                                       SessionState::kRegistered, SessionState::kRejected, SessionState::kStopping};
}  // namespace

std::string_view session_state_name(SessionState state) {
  switch (state) {
    case SessionState::kUnregistered:
      return "unregistered";
    case SessionState::kPendingApproval:
      return "pending_approval";
    case SessionState::kRegistered:
      return "registered";
    case SessionState::kRejected:
      return "rejected";
    case SessionState::kStopping:
      return "stopping";
  }
  return "unknown";
}

AgentMetrics::AgentMetrics(std::size_t max_host_labels)
    : hosts_(max_host_labels),
      jobs_started(registry_.counter("wincert_jobs_started_total", "Jobs started, by capability.", {"capability"})),
      jobs_finished(registry_.counter("wincert_jobs_finished_total",
                                      "Jobs finished, by capability and result (Success, Warning, Failure).",
                                      {"capability", "result"})),
      job_duration(registry_.histogram("wincert_job_duration_seconds",
                                       "Time from a job's start to its result, by capability.", {"capability"},
                                       kJobDurationBuckets)),
      job_errors(registry_.counter("wincert_job_errors_total",
                                   "Jobs that ended in Warning or Failure, by capability and failure category "
                                   "(transient, permanent, invalid_input, config, refused; not error codes yet).",
                                   {"capability", "category"})),
      deliveries(registry_.counter("wincert_deliveries_total",
                                   "Delivery attempts of outbox entries to Command, by kind and outcome "
                                   "(delivered, retry, rejected).",
                                   {"kind", "outcome"})),
      delivery_failures(registry_.counter("wincert_delivery_failures_total",
                                          "Delivery attempts to Command that did not deliver, by kind.", {"kind"})),
      session(registry_.gauge("wincert_command_session_state",
                              "Command session state: 1 for the current state, 0 for the others.", {"state"})),
      heartbeats(registry_.counter("wincert_heartbeats_total", "Heartbeats sent to Command, by outcome (ok, failed).",
                                   {"outcome"})),
      last_heartbeat(registry_.gauge("wincert_last_heartbeat_success_timestamp_seconds",
                                     "Unix time of the last successful heartbeat to Command (0: none yet).")),
      connections(registry_.gauge("wincert_winrm_connections",
                                  "Open WinRM connections, by host (hosts past Metrics.MaxHostLabels: _other).",
                                  {"host"})),
      connections_opened(registry_.counter("wincert_winrm_connections_opened_total",
                                           "WinRM connections established, by host (past MaxHostLabels: _other).",
                                           {"host"})),
      shells(registry_.gauge("wincert_winrm_shells",
                             "Open WinRS shells, by host (hosts past Metrics.MaxHostLabels: _other).", {"host"})),
      auth_handshakes(registry_.counter("wincert_winrm_auth_handshakes_total",
                                        "WinRM HTTP authentication handshakes, by scheme and result (ok, failed).",
                                        {"scheme", "result"})) {
  session_state(SessionState::kUnregistered);
  last_heartbeat.set({}, 0);
  // Process-wide, so it never outlives what it reads: divided by wincert_jobs_finished_total it is the
  // fsyncs per job (the outbox's group commits, the AgentId, host-change records).
  registry_.gauge_callback("wincert_disk_syncs", "Disk syncs (fsync) made by the agent since it started.",
                           [] { return static_cast<double>(files::sync_count()); });
}

void AgentMetrics::job_started(std::string_view capability) { jobs_started.inc({std::string(capability)}); }

void AgentMetrics::job_finished(std::string_view capability, std::string_view result, std::string_view category,
                                std::chrono::steady_clock::duration elapsed) {
  const std::string cap(capability);
  jobs_finished.inc({cap, std::string(result)});
  job_duration.observe({cap}, std::chrono::duration<double>(elapsed).count());
  if (!category.empty()) job_errors.inc({cap, std::string(category)});
}

void AgentMetrics::delivery(std::string_view kind, std::string_view outcome) {
  deliveries.inc({std::string(kind), std::string(outcome)});
  if (outcome != "delivered") delivery_failures.inc({std::string(kind)});
}

void AgentMetrics::session_state(SessionState state) {
  for (const SessionState s : kAllStates) session.set({std::string(session_state_name(s))}, s == state ? 1 : 0);
}

void AgentMetrics::heartbeat_ok(std::chrono::system_clock::time_point when) {
  heartbeats.inc({"ok"});
  last_heartbeat.set({}, std::chrono::duration<double>(when.time_since_epoch()).count());
}

void AgentMetrics::heartbeat_failed() { heartbeats.inc({"failed"}); }

void AgentMetrics::connection_opened(std::string_view host) {
  const std::string label = hosts_.label(host);
  connections.add({label}, 1);
  connections_opened.inc({label});
}
void AgentMetrics::connection_closed(std::string_view host) { connections.add({hosts_.label(host)}, -1); }
void AgentMetrics::shell_created(std::string_view host) { shells.add({hosts_.label(host)}, 1); }
void AgentMetrics::shell_closed(std::string_view host) { shells.add({hosts_.label(host)}, -1); }
void AgentMetrics::auth_handshake(std::string_view scheme, bool ok) {
  // Lowercase, as the configuration names schemes ("Basic" from the transport -> "basic").
  std::string name(scheme);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  auth_handshakes.inc({name, ok ? "ok" : "failed"});
}

}  // namespace wincert::agent::metrics
