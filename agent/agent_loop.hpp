// The long-running agent: registers with Command (and re-registers when the session goes invalid or
// the job list is due for a refresh), sends heartbeats, runs each job of the list on its schedule
// (configuration fetch -> Scheduler -> jobs::run_job), and hands every result to the durable outbox,
// whose sender delivers them in order. request_stop() starts a graceful shutdown: no new jobs, running
// ones get ShutdownGraceSeconds to finish, the outbox gets OutboxFlushSeconds to empty, run() returns.
//
// Everything runs as coroutines on one executor (one io_context thread).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "agent/command_auth.hpp"
#include "agent/command_client.hpp"
#include "agent/command_http.hpp"
#include "agent/config.hpp"
#include "agent/metrics/agent_metrics.hpp"
#include "agent/outbox.hpp"
#include "agent/schedule.hpp"
#include "agent/scheduler.hpp"
#include "jobs/capabilities.hpp"
#include "jobs/handler.hpp"

namespace wincert::agent {

// Exit codes of `wincert-agent run`.
inline constexpr int kExitOk = 0;
// Configuration or local setup (outbox, TLS files) unusable, or any other failure to start (logged to
// the log file); systemd's RestartPreventExitStatus=1 keeps it from restarting in a loop.
inline constexpr int kExitConfig = 1;
inline constexpr int kExitRefused = 3;     // Command refused the orchestrator (disapproved, 401/403)
inline constexpr int kExitInternal = 255;  // a bug after start-up (logged); systemd restarts the agent

struct AgentDeps {
  jobs::StoreSessionFactory* sessions = nullptr;       // required; outlives the agent
  const jobs::CapabilityRegistry* registry = nullptr;  // null: jobs::make_default_registry()
  bool local_backend_available = false;                // the Windows build passes true
  metrics::AgentMetrics* metrics = nullptr;            // optional; outlives the agent
};

// Counters for tests and the shutdown summary.
struct AgentStats {
  std::uint64_t registrations = 0;
  std::uint64_t heartbeats = 0;
  std::uint64_t jobs_started = 0;
  std::uint64_t jobs_finished = 0;
  std::uint64_t jobs_cancelled = 0;
  std::uint64_t results_delivered = 0;
  std::uint64_t results_held = 0;            // results the outbox could not store (kept in memory)
  std::uint64_t agent_id_save_failures = 0;  // failed attempts to write the AgentId file
  std::uint64_t disk_syncs = 0;              // fsyncs (files::sync_count(): the whole process)
  std::uint64_t outbox_commits = 0;          // group commits of the outbox, and the entries they wrote
  std::uint64_t outbox_committed_entries = 0;
};

class Agent {
 public:
  static Result<std::unique_ptr<Agent>> create(boost::asio::any_io_executor executor, AgentConfig config,
                                               AgentDeps deps);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Runs until request_stop() (or Command refuses the orchestrator); returns the exit code.
  boost::asio::awaitable<int> run();
  // Thread-safe; may be called from a signal handler's completion.
  void request_stop();

  // True when nothing of the agent is still running on the executor (every loop and job ended), so it
  // may be destroyed; false after a job overran the grace period (the process should just exit).
  bool quiescent() const;

  // Why the agent is not ready for work (for /readyz), or nullopt: not registered with Command, the
  // outbox directory not writable, or stopping. Call on the agent's executor.
  std::optional<std::string> not_ready_reason() const;

  const AgentStats& stats() const;
  std::string agent_id() const;
  Outbox& outbox();
  const Scheduler& scheduler() const;
  // Results neither stored in the outbox nor acknowledged by Command (the outbox cannot be written);
  // non-zero is an alarm for metrics. The AgentId is known but not saved yet.
  std::size_t results_not_safe() const;
  bool agent_id_unsaved() const;

 private:
  struct Impl;
  explicit Agent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace wincert::agent
