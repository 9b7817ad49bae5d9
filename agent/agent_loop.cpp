#include "agent/agent_loop.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#ifndef _WIN32
#include <signal.h>
#include <unistd.h>
#endif

#include <cstdlib>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/command_connection.hpp"
#include "agent/job_deadline.hpp"
#include "agent/job_timetable.hpp"
#include "agent/platform/files.hpp"
#include "common/encoding.hpp"
#include "common/log.hpp"

#ifndef WINCERT_VERSION
#define WINCERT_VERSION "0.0.0"
#endif

namespace wincert::agent {

namespace net = boost::asio;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);
constexpr int kConfigFetchAttempts = 3;
constexpr int kCsrAttempts = 5;

TimePoint wall_now() { return std::chrono::time_point_cast<std::chrono::seconds>(Clock::now()); }

std::string read_agent_id(const std::string& path) {
  std::ifstream in(path);
  if (!in) return {};
  std::string line;
  std::getline(in, line);
  line = std::string(trim(line));
  if (line.size() > 100) return {};
  for (const char c : line) {
    if (!std::isxdigit(static_cast<unsigned char>(c)) && c != '-') return {};
  }
  return line;
}

// Test hook for the kill -9 end-to-end scenario (tests/e2e/scenarios.py kill_steps): with
// WINCERT_TEST_KILL_AT=<step> in its environment the agent kills itself with SIGKILL when a job reaches
// that step, which an outside `kill -9` can only hit by luck. Steps: after-fetch (configuration
// received), after-host-change (the job ran, its result not stored yet), after-outbox-write (result
// stored, not sent), during-delivery (Command acknowledged the completion, the outbox entry not yet
// removed). Compiled in only with WINCERT_TEST_HOOKS (builds with tests, agent/CMakeLists.txt); a
// release build without tests ignores the variable.
void test_kill_point([[maybe_unused]] std::string_view step) {
#ifdef WINCERT_TEST_HOOKS
  static const char* const kill_at = std::getenv("WINCERT_TEST_KILL_AT");
  if (kill_at == nullptr || step != kill_at) return;
  logger("agent")->warn("test hook: killing the agent at step {} (WINCERT_TEST_KILL_AT)", step);
  logger("agent")->flush();
#ifdef _WIN32
  std::_Exit(137);
#else
  ::kill(::getpid(), SIGKILL);
#endif
#endif  // WINCERT_TEST_HOOKS
}

long long millis(SteadyClock::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

// What a job's failure carries as data, for the error metric: the project has no error codes yet, so
// this is the JobResult's own classification (retryable or not), never its message text.
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

struct Agent::Impl {
  net::any_io_executor ex;
  AgentConfig config;
  AgentDeps deps;
  jobs::CapabilityRegistry default_registry;
  const jobs::CapabilityRegistry* registry = nullptr;
  std::shared_ptr<spdlog::logger> log = logger("agent");

  std::unique_ptr<HttpClient> command_http;
  std::unique_ptr<HttpClient> token_http;
  std::unique_ptr<CommandAuth> auth;
  std::unique_ptr<CommandClient> client;
  std::unique_ptr<Outbox> outbox;
  std::unique_ptr<OutboxSender> sender;
  std::unique_ptr<Scheduler> scheduler;

  std::string agent_id_file;
  std::string agent_id;
  std::string token;
  std::chrono::seconds heartbeat_interval{300};
  bool need_register = true;

  JobTimetable timetable;           // the job list and when each job runs next
  std::set<std::string> preparing;  // configuration being fetched

  // Results the outbox could not store (disk full, read-only directory): kept here, stored again or
  // sent directly by held_loop(); their jobs are not finished until then.
  struct HeldResult {
    NewEntry entry;
    std::string body;
  };
  std::deque<HeldResult> held;
  bool agent_id_unsaved = false;  // the AgentId could not be written: retried with the held results

  net::steady_timer session_wake;
  net::steady_timer token_ready;
  net::steady_timer heartbeat_wake;
  net::steady_timer jobs_wake;
  net::steady_timer stop_wake;
  net::steady_timer tasks_done;
  net::steady_timer held_wake;  // held results and the AgentId: retry now
  bool stopping = false;
  SteadyClock::time_point stop_deadline = SteadyClock::time_point::max();  // held results: last try
  int exit_code = kExitOk;
  int tasks = 0;
  AgentStats stats;

  explicit Impl(net::any_io_executor executor)
      : ex(executor),
        session_wake(executor),
        token_ready(executor),
        heartbeat_wake(executor),
        jobs_wake(executor),
        stop_wake(executor),
        tasks_done(executor),
        held_wake(executor) {}

  // ---- tasks ----

  // Spawns a coroutine the agent waits for at shutdown. Bookkeeping is explicit (not a destructor) so
  // a coroutine destroyed with the io_context never touches the agent.
  void spawn(net::awaitable<void> task, std::string name) {
    ++tasks;
    net::co_spawn(ex, wrap(std::move(task), std::move(name)), net::detached);
  }
  net::awaitable<void> wrap(net::awaitable<void> task, std::string name) {
    try {
      co_await std::move(task);
    } catch (const std::exception& e) {
      log->error("internal error in {}: {}", name, e.what());
    }
    --tasks;
    tasks_done.cancel();
  }

  // Metrics hooks: no-ops without a metrics instance.
  void observe_session(metrics::SessionState state) {
    if (deps.metrics) deps.metrics->session_state(state);
  }
  void observe_delivery(const OutboxEntry& entry, std::string_view outcome) {
    if (deps.metrics) deps.metrics->delivery(entry_kind_name(entry.kind), outcome);
  }

  void begin_stop() {
    if (stopping) return;
    stopping = true;
    observe_session(metrics::SessionState::kStopping);
    stop_wake.cancel();
    session_wake.cancel();
    token_ready.cancel();
    heartbeat_wake.cancel();
    jobs_wake.cancel();
  }

  net::awaitable<void> sleep_for(net::steady_timer& timer, SteadyClock::duration d) {
    timer.expires_after(d);
    co_await timer.async_wait(kUseTuple);
  }

  // ---- session ----

  net::awaitable<std::optional<std::string>> current_token() {
    while (token.empty()) {
      if (stopping) co_return std::nullopt;
      token_ready.expires_at(SteadyClock::time_point::max());
      co_await token_ready.async_wait(kUseTuple);
    }
    co_return token;
  }

  void invalidate_session(const std::string& seen) {
    if (seen.empty() || seen != token) return;  // somebody already did
    log->info("session ended by Command; registering again");
    token.clear();
    observe_session(metrics::SessionState::kUnregistered);
    need_register = true;
    session_wake.cancel();
  }

  void save_agent_id(const std::string& id) {
    if (id.empty() || id == agent_id) return;
    agent_id = id;  // kept in memory either way: this run uses it
    agent_id_unsaved = true;
    if (!try_save_agent_id()) held_wake.cancel();  // held_loop retries it
  }

  bool try_save_agent_id() {
    auto saved = write_file_durably(agent_id_file, agent_id + "\n");
    if (!saved.ok()) {
      // Said once as an error; the retries (with backoff) only at debug level.
      log->log(++stats.agent_id_save_failures == 1 ? spdlog::level::err : spdlog::level::debug,
               "cannot save the AgentId {} to '{}': {}; keeping it in memory and retrying", agent_id, agent_id_file,
               saved.error().message);
      return false;
    }
    if (agent_id_unsaved && stats.agent_id_save_failures > 0) log->info("saved the AgentId to '{}'", agent_id_file);
    agent_id_unsaved = false;
    return true;
  }

  net::awaitable<void> session_loop() {
    Backoff backoff(config.retry_initial, config.retry_max);
    const auto capabilities = registry->capability_names();
    while (!stopping) {
      if (need_register) {
        auto reply = co_await client->register_session(agent_id, capabilities);
        if (stopping) break;
        if (!reply.ok()) {
          if (is_auth_failure(reply.error())) {
            log->error("{}: stopping", reply.error().message);
            exit_code = kExitRefused;
            begin_stop();
            observe_session(metrics::SessionState::kRejected);  // after begin_stop: the state to show
            break;
          }
          const auto delay = backoff.next();
          log->warn("{}; retrying in {} s", reply.error().message, millis(delay) / 1000.0);
          co_await sleep_for(session_wake, delay);
          continue;
        }
        ++stats.registrations;
        save_agent_id(reply->session.agent_id);
        if (reply->state == RegisterState::kRejected) {
          log->error(
              "Command refused orchestrator '{}' ({}): it was disapproved in Command, or Command requires a new "
              "agent authentication certificate. Approve it again (Orchestrators > Management) or renew its "
              "certificate, then restart the agent",
              config.orchestrator_name, reply->result.describe());
          exit_code = kExitRefused;
          begin_stop();
          observe_session(metrics::SessionState::kRejected);  // after begin_stop: the state to show
          break;
        }
        if (reply->state == RegisterState::kPendingApproval) {
          observe_session(metrics::SessionState::kPendingApproval);
          const auto delay = std::min<std::chrono::milliseconds>(backoff.next(), 60s);
          log->warn(
              "orchestrator '{}' has no session yet ({}): it is not approved in Command yet (Orchestrators > "
              "Management > Approve), or Command asks for a new authentication certificate; asking again in {} s",
              config.orchestrator_name, reply->result.describe(), millis(delay) / 1000.0);
          co_await sleep_for(session_wake, delay);
          continue;
        }
        backoff.reset();
        token = reply->session.token;
        heartbeat_interval = config.heartbeat_interval.value_or(reply->session.heartbeat_interval);
        need_register = false;
        observe_session(metrics::SessionState::kRegistered);
        if (reply->result.status == ApiStatus::kWarning) {
          log->warn("Command registered the orchestrator with a warning: {}{}", reply->result.describe(),
                    reply->result.code == "A0100007" || reply->result.code == "A0100008"
                        ? " (Command asks for a new agent authentication certificate: renew CertPath/KeyPath)"
                        : "");
        }
        timetable.apply(reply->session.jobs, wall_now());
        log->info("registered orchestrator '{}' (AgentId {}): {} job(s), heartbeat every {} s",
                  config.orchestrator_name, agent_id.empty() ? "-" : agent_id, timetable.size(),
                  heartbeat_interval.count());
        token_ready.cancel();
        heartbeat_wake.cancel();  // restart heartbeat timing from this session
        jobs_wake.cancel();
      }
      // Sleep until the session is invalidated, or the job list is due for a refresh.
      const bool poll = config.job_poll_interval.count() > 0;
      session_wake.expires_after(poll ? SteadyClock::duration(config.job_poll_interval)
                                      : SteadyClock::duration::max() / 2);
      co_await session_wake.async_wait(kUseTuple);
      if (!stopping && poll && SteadyClock::now() >= session_wake.expiry()) {
        log->debug("refreshing the job list");
        need_register = true;  // the old token stays usable until the new one arrives
      }
    }
  }

  net::awaitable<void> heartbeat_loop() {
    int failures = 0;
    while (!stopping) {
      heartbeat_wake.expires_after(heartbeat_interval);
      co_await heartbeat_wake.async_wait(kUseTuple);
      if (stopping) break;
      if (SteadyClock::now() < heartbeat_wake.expiry() || token.empty()) continue;  // re-armed or no session
      const std::string seen = token;
      auto reply = co_await client->heartbeat(seen);
      if (stopping) break;
      if (!reply.ok()) {
        ++failures;
        if (deps.metrics) deps.metrics->heartbeat_failed();
        log->warn("heartbeat failed ({} in a row): {}", failures, reply.error().message);
        continue;
      }
      ++stats.heartbeats;
      if (deps.metrics) deps.metrics->heartbeat_ok(std::chrono::system_clock::now());
      if (failures > 0) log->info("Command reachable again after {} failed heartbeat(s)", failures);
      failures = 0;
      if (reply->heartbeat_interval && !config.heartbeat_interval) heartbeat_interval = *reply->heartbeat_interval;
      if (!reply->session_valid) invalidate_session(seen);
    }
  }

  // ---- job list and timing ----

  // Runs a known job now (Command chained it: "InventoryJob" in a completion reply).
  void trigger_now(const std::string& job_id) {
    if (timetable.trigger_now(job_id, wall_now())) {
      jobs_wake.cancel();
      return;
    }
    // A job created just now (a chained inventory): fetch the job list that names it; it runs then.
    log->debug("Command asked to run job {} now; fetching the job list that names it", job_id);
    need_register = true;
    session_wake.cancel();
  }

  net::awaitable<void> jobs_loop() {
    while (!stopping) {
      const TimePoint now = wall_now();
      timetable.observe_clock(now, SteadyClock::now());
      const auto due = timetable.take_due(now);
      for (const auto& entry : due) dispatch(entry);
      if (!due.empty()) continue;  // recompute with the new next times
      // Wake at the next due time, at least once a minute (the wall clock may jump).
      auto wait = std::chrono::duration_cast<SteadyClock::duration>(std::chrono::seconds(60));
      if (const auto earliest = timetable.earliest())
        wait = std::min(wait, std::chrono::duration_cast<SteadyClock::duration>(*earliest - now));
      jobs_wake.expires_after(wait);
      co_await jobs_wake.async_wait(kUseTuple);
    }
  }

  // Starts a due job unless its result already waits or its previous run is still going.
  void dispatch(const JobEntry& entry) {
    const std::string& id = entry.job_id;
    if (outbox->has_completion(id) || holds_completion(id)) {
      // Finished before a restart, its result not delivered yet: running it again would repeat its work
      // on the host (a second key and certificate for a reenrollment) for a result Command discards.
      log->info("job {} already has a result waiting in the outbox; not run again", id);
      return;
    }
    if (scheduler->busy(id) || preparing.count(id)) {
      log->info("job {} is due again while its previous run is still going; skipping this run", id);
      return;
    }
    preparing.insert(id);
    spawn(prepare(entry), "job " + id);
  }

  // Fetches the configuration and queues the job.
  net::awaitable<void> prepare(JobEntry entry) {
    Backoff backoff(config.retry_initial, std::min<std::chrono::milliseconds>(config.retry_max, 30s));
    std::optional<JobConfigReply> reply;
    for (int attempt = 1; attempt <= kConfigFetchAttempts && !stopping; ++attempt) {
      auto tok = co_await current_token();
      if (!tok) break;
      auto fetched = co_await client->job_configuration(entry, *tok);
      if (!fetched.ok()) {
        if (fetched.error().retryable() && attempt < kConfigFetchAttempts) {
          const auto delay = backoff.next();
          log->warn("{}; retrying in {} ms", fetched.error().message, millis(delay));
          net::steady_timer timer(ex);
          co_await sleep_for(timer, delay);
          continue;
        }
        if (fetched.error().code == ErrorCode::kInvalidArgument) {
          // Command answered with something unusable (not JSON, too deep or too large, an endpoint on
          // another origin): the run ends now with a Failure saying why, instead of staying open in Command.
          const std::string message = "the job configuration from Command is not usable: " + fetched.error().message;
          log->error("job {}: {}", entry.job_id, message);
          store_completion(entry, 0, jobs::JobStatus::kFailure, message);
          break;
        }
        log->error("{}; the job runs again at its next scheduled time", fetched.error().message);
        break;
      }
      if (fetched->result.session_invalid()) {
        invalidate_session(*tok);
        continue;
      }
      if (fetched->result.is_error()) {
        log->error("Command refused the configuration of job {}: {}", entry.job_id, fetched->result.describe());
        break;
      }
      reply = std::move(fetched.value());
      break;
    }
    preparing.erase(entry.job_id);
    if (!reply || stopping) co_return;
    test_kill_point("after-fetch");
    if (reply->cancelled) {
      ++stats.jobs_cancelled;
      log->info("job {} was cancelled in Command; not run", entry.job_id);
      co_return;
    }

    auto parsed = jobs::parse_job_config_document(std::move(reply->config));  // moved: parsed once, never re-serialised
    if (!parsed.ok()) {
      const std::string message = "the job configuration from Command is not usable: " + parsed.error().message;
      log->error("job {}: {}", entry.job_id, message);
      store_completion(entry, reply->audit_id, jobs::JobStatus::kFailure, message);
      co_return;
    }
    jobs::JobConfig job = std::move(parsed.value());
    if (job.job_history_id == 0) job.job_history_id = reply->audit_id;
    const std::string host = host_key(job);
    const JobPriority priority = classify_job(job);
    auto shared_job = std::make_shared<jobs::JobConfig>(std::move(job));
    const std::string inventory_endpoint = reply->inventory_endpoint;
    const std::string enroll_endpoint = reply->enroll_endpoint;
    const bool queued =
        scheduler->submit(entry.job_id, host, priority, [this, entry, shared_job, inventory_endpoint, enroll_endpoint] {
          return execute(entry, shared_job, inventory_endpoint, enroll_endpoint);
        });
    if (!queued) log->info("job {} not queued: the agent is stopping or the job is already running", entry.job_id);
  }

  // ---- one job ----

  net::awaitable<void> execute(JobEntry entry, std::shared_ptr<jobs::JobConfig> job, std::string inventory_endpoint,
                               std::string enroll_endpoint) {
    ++tasks;  // the scheduler's coroutine is not spawned through spawn(); count it all the same
    ++stats.jobs_started;
    if (deps.metrics) deps.metrics->job_started(job->capability);
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

    jobs::JobServices services;
    services.sessions = deps.sessions;
    services.target_options.default_auth = config.winrm.default_auth;
    services.target_options.local_backend_available = deps.local_backend_available;
    const std::string job_id = job->job_id;
    const std::int64_t audit_id = job->job_history_id;
    const std::string completion_endpoint = entry.completion_endpoint;
    services.callbacks.submit_inventory = [this, job_id, audit_id,
                                           inventory_endpoint](std::vector<jobs::InventoryItem> items) {
      return submit_inventory(job_id, audit_id, inventory_endpoint, std::move(items));
    };
    services.callbacks.submit_csr = [this, job_id, audit_id, enroll_endpoint,
                                     completion_endpoint](const certstore::CertificateRequest& csr) {
      return submit_csr(job_id, audit_id, enroll_endpoint, completion_endpoint, csr.base64());
    };

    services.deadline = start + config.job_timeout;  // transient failures are retried until then
    auto job_run = jobs::run_job(*registry, *job, services);
    jobs::JobResult result = co_await run_with_deadline(std::move(job_run), config.job_timeout, job_id, audit_id);
    if (result.job_history_id == 0) result.job_history_id = audit_id;
    test_kill_point("after-host-change");
    store_completion(entry, result.job_history_id, result.status, result.message);
    test_kill_point("after-outbox-write");
    ++stats.jobs_finished;
    const auto elapsed = SteadyClock::now() - start;
    if (deps.metrics)
      deps.metrics->job_finished(job->capability, jobs::job_status_name(result.status), failure_category(result),
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
    --tasks;
    tasks_done.cancel();
  }

  void store_completion(const JobEntry& entry, std::int64_t audit_id, jobs::JobStatus status,
                        const std::string& message) {
    if (entry.completion_endpoint.empty()) {
      log->error("job {}: Command gave no CompletionEndpoint; its result ({}) cannot be reported", entry.job_id,
                 jobs::job_status_name(status));
      return;
    }
    NewEntry e;
    e.kind = EntryKind::kCompletion;
    e.job_id = entry.job_id;
    e.audit_id = audit_id;
    e.endpoint = entry.completion_endpoint;
    std::string body = completion_body(entry.job_id, static_cast<int>(status), audit_id, message);
    store_or_hold(std::move(e), std::move(body));
  }

  // Into the outbox, or (when it cannot be written, or earlier results wait in memory: the order
  // counts) kept in memory for held_loop.
  void store_or_hold(NewEntry e, std::string body) {
    if (!held.empty()) {
      hold(std::move(e), std::move(body), "results stored earlier are still waiting for the outbox");
      return;
    }
    auto stored = outbox->append(e, body);
    if (!stored.ok()) {
      hold(std::move(e), std::move(body), stored.error().message);
      return;
    }
    sender->notify();
  }

  // ---- results the outbox could not store ----

  bool holds_completion(std::string_view job_id) const {
    for (const auto& r : held)
      if (r.entry.kind == EntryKind::kCompletion && r.entry.job_id == job_id) return true;
    return false;
  }

  void hold(NewEntry entry, std::string body, const std::string& why) {
    ++stats.results_held;
    log->error(
        "job {}: its result is not safe yet: {} (outbox {}); it stays in memory and is stored again or sent "
        "directly to Command; free space or fix the directory's permissions",
        entry.job_id, why, outbox->directory());
    held.push_back(HeldResult{std::move(entry), std::move(body)});
    held_wake.cancel();
  }

  // Stores held results in the outbox once it can be written again, or sends a completion directly
  // when Command is reachable (and nothing of the same job waits in the outbox, to keep the order).
  net::awaitable<void> held_loop() {
    Backoff backoff(config.retry_initial, std::min<std::chrono::milliseconds>(config.retry_max, 60s));
    for (;;) {
      if (held.empty() && !agent_id_unsaved) {
        if (stopping) break;
        held_wake.expires_at(SteadyClock::time_point::max());
        co_await held_wake.async_wait(kUseTuple);
        continue;
      }
      bool progress = false;
      if (agent_id_unsaved) progress = try_save_agent_id();
      while (!held.empty()) {
        HeldResult& front = held.front();
        if (auto stored = outbox->append(front.entry, front.body); stored.ok()) {
          log->info("stored the held {} in the outbox", stored->describe());
          held.pop_front();
          sender->notify();
          progress = true;
          continue;
        }
        if (!co_await deliver_held(front)) break;
        held.pop_front();
        progress = true;
      }
      if (held.empty() && !agent_id_unsaved) {
        backoff.reset();
        continue;
      }
      if (progress) backoff.reset();
      if (stopping && SteadyClock::now() >= stop_deadline) {
        if (!held.empty())
          log->error(
              "stopping with {} result(s) neither stored nor delivered (outbox {} not writable): Command still "
              "lists their jobs and they run again at the next start",
              held.size(), outbox->directory());
        if (agent_id_unsaved) log->error("stopping without having saved the AgentId to '{}'", agent_id_file);
        break;
      }
      auto delay = backoff.next();
      if (stopping) delay = std::min<std::chrono::milliseconds>(delay, 1s);
      co_await sleep_for(held_wake, delay);
    }
  }

  // True when Command acknowledged (or refused for good) the held result.
  net::awaitable<bool> deliver_held(const HeldResult& result) {
    if (token.empty() || result.entry.kind == EntryKind::kCsr) co_return false;
    for (const auto& pending : outbox->pending())
      if (pending.job_id == result.entry.job_id && pending.kind != EntryKind::kCsr) co_return false;
    OutboxEntry entry;
    entry.kind = result.entry.kind;
    entry.job_id = result.entry.job_id;
    entry.audit_id = result.entry.audit_id;
    entry.endpoint = result.entry.endpoint;
    const Delivery outcome = co_await deliver(entry, result.body);
    if (outcome == Delivery::kRetry) co_return false;
    if (outcome == Delivery::kDone)
      log->info("delivered the held {} directly (the outbox was not writable)", entry.describe());
    co_return true;
  }

  net::awaitable<Status> submit_inventory(std::string job_id, std::int64_t audit_id, std::string endpoint,
                                          std::vector<jobs::InventoryItem> items) {
    if (endpoint.empty())
      co_return Error::invalid_argument("Command sent no InventoryEndpoint for job " + job_id +
                                        ": cannot submit the inventory");
    const auto bodies = inventory_bodies(job_id, items, config.inventory_max_update_bytes);
    for (std::size_t i = 0; i < bodies.size(); ++i) {
      NewEntry e;
      e.kind = EntryKind::kInventory;
      e.job_id = job_id;
      e.audit_id = audit_id;
      e.endpoint = endpoint;
      e.part = static_cast<int>(i + 1);
      e.parts = static_cast<int>(bodies.size());
      store_or_hold(std::move(e), bodies[i]);
    }
    log->debug("job {}: inventory of {} item(s) stored for delivery in {} part(s)", job_id, items.size(),
               bodies.size());
    sender->notify();
    co_return Status{};
  }

  net::awaitable<Result<std::string>> submit_csr(std::string job_id, std::int64_t audit_id, std::string endpoint,
                                                 std::string completion_endpoint, std::string csr_base64) {
    if (endpoint.empty())
      co_return Error::invalid_argument("Command sent no EnrollEndpoint for job " + job_id + ": cannot submit the CSR");
    const std::string body = csr_body(job_id, csr_base64);
    NewEntry e;
    e.kind = EntryKind::kCsr;
    e.job_id = job_id;
    e.audit_id = audit_id;
    e.endpoint = endpoint;
    e.completion_endpoint = completion_endpoint;
    WINCERT_CO_ASSIGN_OR_RETURN(const OutboxEntry record, outbox->append(std::move(e), body));
    const std::string what = "CSR of job " + job_id;

    Backoff backoff(config.retry_initial, std::min<std::chrono::milliseconds>(config.retry_max, 30s));
    Result<std::string> outcome = Error::cancelled(what + ": not sent (the agent is stopping)");
    for (int attempt = 1; attempt <= kCsrAttempts; ++attempt) {
      auto tok = co_await current_token();
      if (!tok) break;
      auto reply = co_await client->post_job_data(endpoint, *tok, body, what);
      if (!reply.ok()) {
        outcome = reply.error();
        if (!reply.error().retryable() || attempt == kCsrAttempts || stopping) break;
        net::steady_timer timer(ex);
        co_await sleep_for(timer, backoff.next());
        continue;
      }
      if (reply->result.session_invalid()) {
        invalidate_session(*tok);
        outcome = Error::aborted(what + ": the session ended").with_command_code(reply->result.code);
        continue;
      }
      if (reply->result.is_error()) {
        outcome = Error::failed_precondition(what + ": Command refused it: " + reply->result.describe())
                      .with_command_code(reply->result.code);
        break;
      }
      const std::string certificate = scalar_text(find_member(reply->body, "Certificate"));
      if (certificate.empty()) {
        outcome = Error::invalid_argument(what + ": Command returned no certificate" +
                                          (reply->result.message.empty() ? "" : " (" + reply->result.describe() + ")"))
                      .with_command_code(reply->result.code);
      } else {
        outcome = certificate;
      }
      break;
    }
    (void)outbox->remove(record);  // the job itself reports how it ended
    co_return outcome;
  }

  // ---- outbox delivery ----

  net::awaitable<Delivery> deliver(const OutboxEntry& entry, std::string body) {
    auto tok = co_await current_token();
    if (!tok) co_return Delivery::kRetry;
    auto reply = co_await client->post_job_data(entry.endpoint, *tok, std::move(body), entry.describe());
    if (!reply.ok()) {
      if (reply.error().retryable() || is_auth_failure(reply.error())) {
        log->warn("{}", reply.error().message);
        observe_delivery(entry, "retry");
        co_return Delivery::kRetry;
      }
      log->error("{}", reply.error().message);
      observe_delivery(entry, "rejected");
      co_return Delivery::kReject;
    }
    if (reply->result.session_invalid()) {
      invalidate_session(*tok);
      observe_delivery(entry, "retry");
      co_return Delivery::kRetry;
    }
    if (reply->result.is_error()) {
      log->error("Command refused the {}: {}", entry.describe(), reply->result.describe());
      observe_delivery(entry, "rejected");
      co_return Delivery::kReject;
    }
    if (reply->result.status == ApiStatus::kWarning)
      log->warn("Command accepted the {} with a warning: {}", entry.describe(), reply->result.describe());
    ++stats.results_delivered;
    observe_delivery(entry, "delivered");
    log->debug("delivered the {}", entry.describe());
    if (entry.kind == EntryKind::kCompletion) test_kill_point("during-delivery");
    if (entry.kind == EntryKind::kCompletion) {
      const std::string chained = scalar_text(find_member(reply->body, "InventoryJob"));
      if (!chained.empty()) trigger_now(chained);
    }
    co_return Delivery::kDone;
  }

  // CSR entries left by a previous run: the job stopped halfway; tell Command so.
  void recover_interrupted_csrs() {
    for (const auto& entry : outbox->pending()) {
      if (entry.kind != EntryKind::kCsr) continue;
      JobEntry job;
      job.job_id = entry.job_id;
      job.completion_endpoint = entry.completion_endpoint;
      log->warn("job {} was waiting for Command to sign its CSR when the agent stopped; reporting it as failed",
                entry.job_id);
      store_completion(job, entry.audit_id, jobs::JobStatus::kFailure,
                       "Reenrollment job " + entry.job_id +
                           " did not finish: the agent stopped while Command was signing its CSR; the key created "
                           "on the host has no certificate. Schedule the reenrollment again.");
      (void)outbox->remove(entry);
    }
  }

  // ---- run ----

  net::awaitable<int> run() {
    for (const auto& note : outbox->recovery_notes()) log->warn("outbox: {}", note);
    const std::size_t pending = outbox->deliverable_count();
    if (pending > 0) log->info("outbox: {} result(s) from an earlier run will be delivered first", pending);
    recover_interrupted_csrs();
    log->info(
        "wincert-agent {} starting: orchestrator '{}', Command {}, auth {}, {} capabilities, at most {} jobs "
        "({} per host)",
        WINCERT_VERSION, config.orchestrator_name, config.agents_server_uri, describe_auth(config),
        registry->capability_names().size(), config.max_concurrent_jobs, config.max_jobs_per_host);

    spawn(sender->run(), "outbox sender");
    spawn(session_loop(), "session");
    spawn(heartbeat_loop(), "heartbeat");
    spawn(jobs_loop(), "job timer");
    spawn(held_loop(), "held results");

    while (!stopping) {
      stop_wake.expires_at(SteadyClock::time_point::max());
      co_await stop_wake.async_wait(kUseTuple);
    }

    // Graceful shutdown.
    const auto dropped = scheduler->stop_accepting();
    log->info("stopping: {} job(s) running, {} queued job(s) dropped; waiting up to {} s for running jobs",
              scheduler->running(), dropped.size(), config.shutdown_grace.count());
    const bool all_done = co_await scheduler->drain(config.shutdown_grace);
    if (!all_done) {
      std::string ids;
      for (const auto& id : scheduler->running_jobs()) ids += (ids.empty() ? "" : ", ") + id;
      log->warn("job(s) still running after {} s, abandoned (Command will show them unfinished): {}",
                config.shutdown_grace.count(), ids);
    }
    const auto flush_deadline = SteadyClock::now() + config.outbox_flush_timeout;
    sender->drain(flush_deadline);
    stop_deadline = flush_deadline;
    held_wake.cancel();
    // Wait for the loops (the sender, an in-flight heartbeat) to end, a little past the flush deadline.
    const auto tasks_deadline = flush_deadline + 2s;
    while (tasks > 0 && SteadyClock::now() < tasks_deadline) {
      tasks_done.expires_at(tasks_deadline);
      co_await tasks_done.async_wait(kUseTuple);
    }
    const std::size_t left = outbox->deliverable_count();
    if (left > 0) {
      log->warn("stopped with {} result(s) not yet delivered; they stay in {} and are sent at the next start", left,
                outbox->directory());
    }
    log->info("stopped: {} job(s) run, {} result(s) delivered, {} registration(s)", stats.jobs_finished,
              stats.results_delivered, stats.registrations);
    command_http->close_idle();
    if (token_http) token_http->close_idle();
    co_return exit_code;
  }
};

Agent::Agent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Agent::~Agent() = default;

Result<std::unique_ptr<Agent>> Agent::create(net::any_io_executor executor, AgentConfig config, AgentDeps deps) {
  if (deps.sessions == nullptr) return Error::internal("internal error: the agent needs a store session factory");
  auto impl = std::make_unique<Impl>(executor);
  impl->config = std::move(config);
  impl->deps = deps;
  if (deps.registry) {
    impl->registry = deps.registry;
  } else {
    impl->default_registry = jobs::make_default_registry();
    impl->registry = &impl->default_registry;
  }
  const AgentConfig& cfg = impl->config;
  for (const std::string& warning : cfg.warnings) logger("agent")->warn("{}: {}", cfg.source, warning);

  auto base = parse_url(cfg.agents_server_uri);
  if (!base.ok()) return base.error().context("AgentsServerUri: ");

  auto command = make_command_connection(executor, cfg, command_connection_use(cfg));
  if (!command.ok()) return command.error();
  impl->command_http = std::move(command->http);
  impl->token_http = std::move(command->token_http);
  impl->auth = std::move(command->auth);
  impl->client = std::move(command->client);

  auto outbox = Outbox::open(cfg.outbox_directory);
  if (!outbox.ok()) return outbox.error();
  impl->outbox = std::move(outbox.value());
  impl->agent_id_file = cfg.outbox_directory + "/agent-id";
  impl->agent_id = read_agent_id(impl->agent_id_file);

  Impl* raw = impl.get();
  impl->sender = std::make_unique<OutboxSender>(
      executor, *impl->outbox,
      [raw](const OutboxEntry& entry, std::string body) { return raw->deliver(entry, std::move(body)); },
      Backoff(cfg.retry_initial, cfg.retry_max));
  impl->scheduler =
      std::make_unique<Scheduler>(executor, SchedulerLimits{cfg.max_concurrent_jobs, cfg.max_jobs_per_host});

  if (!cfg.server_tls_verify)
    impl->log->warn(
        "TLS certificate verification towards Command is OFF (ServerTlsVerify=false): anyone on the path "
        "can impersonate Command");
  if (!base->tls() && cfg.auth_mode != CommandAuthMode::kNone)
    impl->log->warn(
        "AgentsServerUri uses plain http: credentials and job data (PFX files) cross the network "
        "unencrypted");
  return std::unique_ptr<Agent>(new Agent(std::move(impl)));
}

net::awaitable<int> Agent::run() { return impl_->run(); }

void Agent::request_stop() {
  Impl* impl = impl_.get();
  net::post(impl->ex, [impl] { impl->begin_stop(); });
}

std::optional<std::string> Agent::not_ready_reason() const {
  if (impl_->stopping) return "the agent is stopping";
  if (impl_->token.empty()) return "not registered with Command (no session yet)";
  if (!files::can_write(impl_->outbox->directory()))
    return "the outbox directory " + impl_->outbox->directory() + " is not writable";
  return std::nullopt;
}

bool Agent::quiescent() const { return impl_->tasks == 0 && impl_->scheduler->running() == 0; }
const AgentStats& Agent::stats() const { return impl_->stats; }
std::string Agent::agent_id() const { return impl_->agent_id; }
Outbox& Agent::outbox() { return *impl_->outbox; }
const Scheduler& Agent::scheduler() const { return *impl_->scheduler; }
std::size_t Agent::results_not_safe() const { return impl_->held.size(); }
bool Agent::agent_id_unsaved() const { return impl_->agent_id_unsaved; }

}  // namespace wincert::agent
