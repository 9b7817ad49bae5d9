// The agent's metrics: the families the /metrics page shows, with the update calls the agent loop and
// the WinRM client (through winrm::WinrmObserver) make. One instance per process, owned by `run`.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/metrics/registry.hpp"
#include "winrm/observer.hpp"

namespace wincert::agent::metrics {

// Command session states as the gauge reports them (one series per state, the current one 1).
enum class SessionState { kUnregistered, kPendingApproval, kRegistered, kRejected, kStopping };
std::string_view session_state_name(SessionState state);

class AgentMetrics final : public winrm::WinrmObserver {
  // First: the families below are created in it (members initialise in declaration order).
  Registry registry_;
  HostLabels hosts_;

 public:
  explicit AgentMetrics(std::size_t max_host_labels = 20);

  Registry& registry() { return registry_; }
  std::string render() const { return registry_.render(); }

  // Jobs. `result` is the job status name (Success, Warning, Failure); `category` is what the failure
  // carries as data (see job_failure_category in agent_loop.cpp), empty for a success.
  void job_started(std::string_view capability);
  void job_finished(std::string_view capability, std::string_view result, std::string_view category,
                    std::chrono::steady_clock::duration elapsed);

  // Deliveries of outbox entries to Command: `kind` is completion / inventory / csr; `outcome` is
  // delivered, retry or rejected.
  void delivery(std::string_view kind, std::string_view outcome);

  void session_state(SessionState state);
  void heartbeat_ok(std::chrono::system_clock::time_point when);
  void heartbeat_failed();

  // winrm::WinrmObserver
  void connection_opened(std::string_view host) override;
  void connection_closed(std::string_view host) override;
  void shell_created(std::string_view host) override;
  void shell_closed(std::string_view host) override;
  void auth_handshake(std::string_view scheme, bool ok) override;

  Family& jobs_started;
  Family& jobs_finished;
  Family& job_duration;
  Family& job_errors;
  Family& deliveries;
  Family& delivery_failures;
  Family& session;
  Family& heartbeats;
  Family& last_heartbeat;
  Family& connections;
  Family& connections_opened;
  Family& shells;
  Family& auth_handshakes;
};

}  // namespace wincert::agent::metrics
