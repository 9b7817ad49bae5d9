#include "agent/job_runner.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <optional>

#include "agent/job_deadline.hpp"
#include "common/log.hpp"

namespace wincert::agent {

namespace net = boost::asio;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr int kConfigFetchAttempts = 3;

long long millis(SteadyClock::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

// What a job's failure carries as data, for the error metric: the JobResult's own classification
// (retryable or not), never its message text.
std::string_view failure_category(const jobs::JobResult& result) {
  switch (result.status) {
    case jobs::JobStatus::kSuccess:
      return {};
    case jobs::JobStatus::kWarning:
      return "warning";
    case jobs::JobStatus::kFailure:
      return result.retryable() ? "transient" : "permanent";
    case jobs::JobStatus::kUnknown:
      break;
  }
  return "unknown";
}

}  // namespace

JobRunner::JobRunner(net::any_io_executor executor, RunnerOptions options, RunnerDeps deps)
    : executor_(executor), options_(options), deps_(deps), scheduler_(executor, options.limits) {}

void JobRunner::dispatch(const JobEntry& entry) {
  auto log = logger("agent");
  const std::string& id = entry.job_id;
  if (deps_.sink->has_completion(id)) {
    // Finished before a restart, its result not delivered yet: running it again would repeat its work
    // on the host (a second key and certificate for a reenrollment) for a result Command discards.
    log->info("job {} already has a result waiting in the outbox; not run again", id);
    return;
  }
  if (scheduler_.busy(id) || preparing_.count(id)) {
    log->info("job {} is due again while its previous run is still going; skipping this run", id);
    return;
  }
  // The priority from the job list's Capability orders the fetches; the configuration's orders the run.
  jobs::JobConfig hint;
  hint.capability = entry.capability;
  const JobPriority fetch_priority = entry.capability.empty() ? JobPriority::kOther : classify_job(hint);
  const bool queued = scheduler_.submit_unplaced(id, fetch_priority, [this, entry] { return prepare(entry); });
  if (!queued) {
    log->info("job {} not queued: the agent is stopping", id);
    return;
  }
  preparing_.insert(id);  // until its configuration is here (or it is dropped at stop)
}

namespace {

// Counts a preparation in the task group (the scheduler spawns it, not the group) on every way out.
class TaskScope {
 public:
  explicit TaskScope(TaskGroup& tasks) : tasks_(tasks) { tasks_.enter(); }
  ~TaskScope() { tasks_.leave(); }
  TaskScope(const TaskScope&) = delete;
  TaskScope& operator=(const TaskScope&) = delete;

 private:
  TaskGroup& tasks_;
};

}  // namespace

// Fetches the configuration; returns where the job goes.
net::awaitable<std::optional<Scheduler::Placement>> JobRunner::prepare(JobEntry entry) {
  auto log = logger("agent");
  TaskScope counted(*deps_.tasks);
  Backoff backoff(options_.retry_initial, std::min<std::chrono::milliseconds>(options_.retry_max, 30s));
  std::optional<JobConfigReply> reply;
  for (int attempt = 1; attempt <= kConfigFetchAttempts && !stopping_; ++attempt) {
    auto tok = co_await deps_.session->current_token();
    if (!tok) break;
    auto fetched = co_await deps_.api->job_configuration(entry, *tok);
    if (!fetched.ok()) {
      if (fetched.error().retryable() && attempt < kConfigFetchAttempts) {
        const auto delay = backoff.next();
        log->warn("{}; retrying in {} ms", fetched.error().message, millis(delay));
        net::steady_timer timer(executor_);
        timer.expires_after(delay);
        co_await timer.async_wait(net::as_tuple(net::use_awaitable));
        continue;
      }
      if (fetched.error().code == ErrorCode::kInvalidArgument) {
        // Command answered with something unusable (not JSON, too deep or too large, an endpoint on
        // another origin): the run ends now with a Failure saying why, instead of staying open in Command.
        const std::string message = "the job configuration from Command is not usable: " + fetched.error().message;
        log->error("job {}: {}", entry.job_id, message);
        co_await deps_.sink->commit_completion(entry, 0, jobs::JobStatus::kFailure, message);
        break;
      }
      log->error("{}; the job runs again at its next scheduled time", fetched.error().message);
      break;
    }
    if (fetched->result.session_invalid()) {
      deps_.session->invalidate(*tok);
      continue;
    }
    if (fetched->result.is_error()) {
      log->error("Command refused the configuration of job {}: {}", entry.job_id, fetched->result.describe());
      break;
    }
    reply = std::move(fetched.value());
    break;
  }
  preparing_.erase(entry.job_id);
  if (!reply || stopping_) co_return std::nullopt;
  test_kill_point("after-fetch");
  if (reply->cancelled) {
    ++stats_.jobs_cancelled;
    log->info("job {} was cancelled in Command; not run", entry.job_id);
    co_return std::nullopt;
  }

  if (auto refused = dispatchable(entry, reply->config)) {
    log->error("job {}: {}", entry.job_id, *refused);
    co_await deps_.sink->commit_completion(entry, reply->audit_id, jobs::JobStatus::kFailure, *refused);
    co_return std::nullopt;
  }
  auto parsed = jobs::parse_job_config_document(std::move(reply->config), reply->last_inventory.get());
  if (!parsed.ok()) {
    const std::string message = "the job configuration from Command is not usable: " + parsed.error().message;
    log->error("job {}: {}", entry.job_id, message);
    co_await deps_.sink->commit_completion(entry, reply->audit_id, jobs::JobStatus::kFailure, message);
    co_return std::nullopt;
  }
  jobs::JobConfig job = std::move(parsed.value());
  if (job.job_history_id == 0) job.job_history_id = reply->audit_id;
  const std::string host = host_key(job);
  const JobPriority priority = classify_job(job);
  auto shared_job = std::make_shared<jobs::JobConfig>(std::move(job));
  const std::string inventory_endpoint = reply->inventory_endpoint;
  const std::string enroll_endpoint = reply->enroll_endpoint;
  Scheduler::Placement placement;
  placement.host = host;
  placement.priority = priority;
  placement.work = [this, entry, shared_job, inventory_endpoint, enroll_endpoint] {
    return execute(entry, shared_job, inventory_endpoint, enroll_endpoint);
  };
  co_return placement;
}

std::optional<std::string> JobRunner::dispatchable(const JobEntry& entry, nlohmann::ordered_json& config) {
  if (!config.is_object()) return std::nullopt;  // parse_job_config says what is wrong with it
  const std::string capability = scalar_text(find_member(config, "Capability"));
  const std::string type_id =
      entry.job_type_id.empty() ? scalar_text(find_member(config, "JobTypeId")) : entry.job_type_id;
  if (!capability.empty()) {
    if (deps_.job_types && deps_.job_types->learn(type_id, capability))
      logger("agent")->debug("job type {} is {}", type_id, capability);
    return std::nullopt;
  }
  if (auto shape = native_configuration_shape(config)) {
    return "the job configuration has " + *shape +
           ": wincert-agent registers as a Universal Orchestrator and cannot run it; check AgentPlatform in the "
           "agent's configuration (1) and the orchestrator's platform in Command";
  }
  if (auto mapped = deps_.job_types ? deps_.job_types->capability_for(type_id) : std::nullopt) {
    logger("agent")->info("job {}: no Capability named; job type {} is {} (JobTypes)", entry.job_id, type_id, *mapped);
    config["Capability"] = *mapped;
    return std::nullopt;
  }
  return undispatchable_message(type_id);
}

net::awaitable<void> JobRunner::execute(JobEntry entry, std::shared_ptr<jobs::JobConfig> job,
                                        std::string inventory_endpoint, std::string enroll_endpoint) {
  auto log = logger("agent");
  deps_.tasks->enter();  // the scheduler's coroutine is not spawned through the task group; count it all the same
  ++stats_.jobs_started;
  if (deps_.metrics) deps_.metrics->job_started(job->capability);
  const auto start = SteadyClock::now();
  const std::string& store = job->store.store_path;
  const std::string host = job->store.client_machine;
  LogFields start_fields;
  start_fields.job_id = job->job_id;
  start_fields.capability = job->capability;
  start_fields.host = host;
  start_fields.store = store;
  log_event(*log, spdlog::level::info, start_fields, "job {} start: {} on store '{}' at host '{}' (history {})",
            job->job_id, job->capability, store, host, job->job_history_id);

  const std::string job_id = job->job_id;
  const std::int64_t audit_id = job->job_history_id;
  jobs::JobServices services;
  services.sessions = deps_.sessions;
  services.target_options = options_.target_options;
  services.callbacks = deps_.sink->callbacks_for(job_id, audit_id, std::move(inventory_endpoint),
                                                 std::move(enroll_endpoint), entry.completion_endpoint);
  if (deps_.host_changes) {
    HostChangeRecord record;
    record.job_id = job_id;
    record.audit_id = audit_id;
    record.completion_endpoint = entry.completion_endpoint;
    record.what = job->capability + " on store '" + store + "' at host '" + host + "'";
    services.callbacks.on_host_change = [this, record] {
      if (auto recorded = deps_.host_changes->record(record); !recorded.ok())
        logger("agent")->error(
            "job {}: cannot record that it starts changing the host ({}); should the agent be killed before its "
            "result is stored, the job runs again",
            record.job_id, recorded.error().message);
    };
  }
  services.deadline = start + options_.job_timeout;  // transient failures are retried until then
  auto job_run = jobs::run_job(*deps_.registry, *job, services);
  jobs::JobResult result = co_await run_with_deadline(std::move(job_run), options_.job_timeout, job_id, audit_id);
  if (result.job_history_id == 0) result.job_history_id = audit_id;
  test_kill_point("after-host-change");
  // Resumes once the completion is durable (group commit off this thread); only then is the host-change
  // record dropped.
  const bool stored =
      co_await deps_.sink->commit_completion(entry, result.job_history_id, result.status, result.message);
  test_kill_point("after-outbox-write");
  if (deps_.host_changes && stored) deps_.host_changes->clear(job_id);
  ++stats_.jobs_finished;
  const auto elapsed = SteadyClock::now() - start;
  if (deps_.metrics)
    deps_.metrics->job_finished(job->capability, jobs::job_status_name(result.status), failure_category(result),
                                elapsed);
  const auto level = result.status == jobs::JobStatus::kFailure   ? spdlog::level::err
                     : result.status == jobs::JobStatus::kWarning ? spdlog::level::warn
                                                                  : spdlog::level::info;
  LogFields end_fields = start_fields;
  end_fields.result = jobs::job_status_name(result.status);
  end_fields.error_category = failure_category(result);
  end_fields.duration_ms = millis(elapsed);
  log_event(*log, level, end_fields, "job {} end: {} in {} ms: {} on store '{}' at host '{}'{}{}", job->job_id,
            jobs::job_status_name(result.status), millis(elapsed), job->capability, store, host,
            result.message.empty() ? "" : ": ", result.message);
  deps_.tasks->leave();
}

void JobRunner::report_interrupted_host_changes() {
  if (!deps_.host_changes) return;
  for (const auto& record : deps_.host_changes->records()) {
    if (deps_.sink->completion_stored(record.job_id)) {  // killed after the outbox write: delivered as it is
      deps_.host_changes->clear(record.job_id);
      continue;
    }
    logger("agent")->warn(
        "job {} had started changing the host when the agent stopped, its result not stored; reporting it as "
        "failed instead of running it again",
        record.job_id);
    JobEntry job;
    job.job_id = record.job_id;
    job.completion_endpoint = record.completion_endpoint;
    deps_.sink->store_completion(
        job, record.audit_id, jobs::JobStatus::kFailure,
        "Job " + record.job_id + " (" + record.what +
            ") did not finish: the agent stopped after the job had started changing the host and before its "
            "result was stored. The host may be partly changed: check the store on the host (the certificate, key "
            "or binding the job adds, removes or renews), then run the job again if it is still needed.");
    // Cleared once the report is durable; held in memory only, it is made again at the next start.
    if (deps_.sink->completion_stored(record.job_id) || record.completion_endpoint.empty())
      deps_.host_changes->clear(record.job_id);
  }
}

net::awaitable<bool> JobRunner::stop(std::chrono::seconds grace) {
  auto log = logger("agent");
  stopping_ = true;
  const auto dropped = scheduler_.stop_accepting();
  for (const auto& id : dropped) preparing_.erase(id);
  log->info("stopping: {} job(s) running, {} queued job(s) dropped; waiting up to {} s for running jobs",
            scheduler_.running(), dropped.size(), grace.count());
  const bool all_done = co_await scheduler_.drain(grace);
  if (!all_done) {
    std::string ids;
    for (const auto& id : scheduler_.running_jobs()) ids += (ids.empty() ? "" : ", ") + id;
    log->warn("job(s) still running after {} s, abandoned (Command will show them unfinished): {}", grace.count(), ids);
  }
  co_return all_done;
}

}  // namespace wincert::agent
