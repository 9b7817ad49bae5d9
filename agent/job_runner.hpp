// Job running: from a due job to its result. The Scheduler admits the job for a configuration fetch only
// when it could start now (never more fetches than free capacity; see scheduler.hpp); the configuration is
// fetched from Command (retried when transient, re-fetched after a session renewal), a job cancelled in
// Command is skipped, the Scheduler runs it under the global and per-host limits (the host is known from
// the configuration), jobs::run_job runs it within
// JobTimeoutSeconds (transient failures retried until then), and its completion goes to the result
// sink. A job whose result already waits, or whose previous run is still going, is not started again.
// At shutdown queued jobs are dropped and running ones get a grace period. A job that starts changing its
// host is recorded in the HostChangeLog until its completion is stored (issue 12).
//
// Runs on the agent's executor (one io_context thread); not thread-safe. Unit-tested with a scripted
// Command and fake store sessions (tests/agent/job_runner_test.cpp).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "agent/command_session.hpp"
#include "agent/host_change_log.hpp"
#include "agent/job_types.hpp"
#include "agent/metrics/agent_metrics.hpp"
#include "agent/result_sink.hpp"
#include "agent/scheduler.hpp"
#include "agent/task_group.hpp"
#include "jobs/capabilities.hpp"
#include "jobs/handler.hpp"

namespace wincert::agent {

struct RunnerOptions {
  std::chrono::milliseconds retry_initial{1000};  // configuration fetch backoff
  std::chrono::milliseconds retry_max{60000};
  std::chrono::seconds job_timeout{3600};  // JobTimeoutSeconds
  SchedulerLimits limits;
  jobs::TargetOptions target_options;  // default WinRM auth, whether the local backend exists
};

struct RunnerStats {
  std::uint64_t jobs_started = 0;
  std::uint64_t jobs_finished = 0;
  std::uint64_t jobs_cancelled = 0;  // cancelled in Command before they ran
};

struct RunnerDeps {
  CommandApi* api = nullptr;                           // job configuration
  SessionTokens* session = nullptr;                    // the token for it
  ResultSink* sink = nullptr;                          // completions, the job's callbacks
  const jobs::CapabilityRegistry* registry = nullptr;  // handlers
  jobs::StoreSessionFactory* sessions = nullptr;       // store sessions for the handlers
  TaskGroup* tasks = nullptr;                          // preparations and runs are counted here
  metrics::AgentMetrics* metrics = nullptr;            // optional
  HostChangeLog* host_changes = nullptr;               // optional: jobs that started changing their host
  JobTypeTable* job_types = nullptr;                   // optional: JobTypeId -> capability when none is named
};

class JobRunner {
 public:
  // Every pointer of `deps` (but metrics) is required and outlives the runner.
  JobRunner(boost::asio::any_io_executor executor, RunnerOptions options, RunnerDeps deps);

  // Starts a due job (preparation, then the scheduler) unless its result already waits or its previous
  // run is still going.
  void dispatch(const JobEntry& entry);

  // Shutdown: no new jobs; queued ones are dropped, running ones get `grace`. True when all finished.
  boost::asio::awaitable<bool> stop(std::chrono::seconds grace);
  // No new jobs (preparations end at their next step); stop() also waits for the running ones.
  void stop_accepting() { stopping_ = true; }

  // At start-up: jobs a previous run was killed in after they started changing their host, their results not
  // stored, are reported to Command as failed (what to check) instead of being run again.
  void report_interrupted_host_changes();

  const Scheduler& scheduler() const { return scheduler_; }
  std::size_t running() const { return scheduler_.running(); }
  bool preparing(const std::string& job_id) const { return preparing_.count(job_id) != 0; }
  const RunnerStats& stats() const { return stats_; }

 private:
  // The scheduler's fetch: the configuration, and where the job goes (nullopt: it does not run).
  boost::asio::awaitable<std::optional<Scheduler::Placement>> prepare(JobEntry entry);
  // nullopt when the job can be dispatched (its Capability named, or mapped from its JobTypeId into
  // `config`); else why not, for its Failure completion.
  std::optional<std::string> dispatchable(const JobEntry& entry, nlohmann::ordered_json& config);
  boost::asio::awaitable<void> execute(JobEntry entry, std::shared_ptr<jobs::JobConfig> job,
                                       std::string inventory_endpoint, std::string enroll_endpoint);

  boost::asio::any_io_executor executor_;
  RunnerOptions options_;
  RunnerDeps deps_;
  Scheduler scheduler_;
  std::set<std::string> preparing_;  // configuration waiting for a fetch slot or being fetched
  bool stopping_ = false;
  RunnerStats stats_;
};

}  // namespace wincert::agent
