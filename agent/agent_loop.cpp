#include "agent/agent_loop.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

#include "agent/agent_certificate.hpp"
#include "agent/command_connection.hpp"
#include "agent/command_session.hpp"
#include "agent/host_change_log.hpp"
#include "agent/job_runner.hpp"
#include "agent/job_timetable.hpp"
#include "agent/job_types.hpp"
#include "agent/platform/files.hpp"
#include "agent/result_sink.hpp"
#include "agent/task_group.hpp"
#include "common/log.hpp"

#ifndef WINCERT_VERSION
#define WINCERT_VERSION "0.0.0"
#endif

namespace wincert::agent {

namespace net = boost::asio;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

// Deliveries in flight at once, on the delivery connection (one HTTP connection each).
constexpr int kDeliveryLanes = 4;

TimePoint wall_now() { return std::chrono::time_point_cast<std::chrono::seconds>(Clock::now()); }

}  // namespace

// The composition: the Command session, job timing (the timetable and its timer), job running and the
// result sink, wired to each other; the stop sequence.
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
  std::unique_ptr<CommandClientApi> api;
  // Results go through a connection of their own: deliveries never wait behind configuration fetches, and
  // heartbeats (on the first connection) never wait behind a backlog of results.
  std::unique_ptr<HttpClient> delivery_http;
  std::unique_ptr<CommandClient> delivery_client;
  std::unique_ptr<CommandClientApi> delivery_api;
  std::unique_ptr<Outbox> outbox;
  std::unique_ptr<HostChangeLog> host_changes;
  std::unique_ptr<AgentCertificate> agent_certificate;  // with CertPath/KeyPath only
  std::unique_ptr<AgentCertificateRenewal> certificate_renewal;
  JobTypeTable job_types;
  TaskGroup tasks;
  std::unique_ptr<CommandSession> session;
  std::unique_ptr<ResultSink> sink;
  std::unique_ptr<JobRunner> runner;

  JobTimetable timetable;  // the job list and when each job runs next
  net::steady_timer jobs_wake;
  net::steady_timer stop_wake;
  bool stopping = false;
  int exit_code = kExitOk;
  AgentStats stats;  // refreshed from the parts by Agent::stats()

  explicit Impl(net::any_io_executor executor)
      : ex(executor), tasks(executor), jobs_wake(executor), stop_wake(executor) {}

  void begin_stop() {
    if (stopping) return;
    stopping = true;
    if (deps.metrics) deps.metrics->session_state(metrics::SessionState::kStopping);
    stop_wake.cancel();
    session->stop();
    sink->stop();
    runner->stop_accepting();
    jobs_wake.cancel();
  }

  // ---- job timing ----

  std::size_t take_job_list(const std::vector<JobEntry>& jobs) {
    for (const auto& job : jobs) {
      if (job_types.learn(job.job_type_id, job.capability))
        log->debug("job type {} is {}", job.job_type_id, job.capability);
    }
    timetable.apply(jobs, wall_now());
    jobs_wake.cancel();
    return timetable.size();
  }

  // Runs a known job now (Command chained it: "InventoryJob" in a completion reply).
  void trigger_now(const std::string& job_id) {
    if (timetable.trigger_now(job_id, wall_now())) {
      jobs_wake.cancel();
      return;
    }
    // A job created just now (a chained inventory): fetch the job list that names it; it runs then.
    log->debug("Command asked to run job {} now; fetching the job list that names it", job_id);
    session->refresh_job_list();
  }

  net::awaitable<void> jobs_loop() {
    while (!stopping) {
      const TimePoint now = wall_now();
      timetable.observe_clock(now, SteadyClock::now());
      const auto due = timetable.take_due(now);
      for (const auto& entry : due) runner->dispatch(entry);
      if (!due.empty()) continue;  // recompute with the new next times
      // Wake at the next due time, at least once a minute (the wall clock may jump).
      auto wait = std::chrono::duration_cast<SteadyClock::duration>(std::chrono::seconds(60));
      if (const auto earliest = timetable.earliest())
        wait = std::min(wait, std::chrono::duration_cast<SteadyClock::duration>(*earliest - now));
      jobs_wake.expires_after(wait);
      co_await jobs_wake.async_wait(net::as_tuple(net::use_awaitable));
    }
  }

  // ---- run ----

  net::awaitable<int> run() {
    for (const auto& note : outbox->recovery_notes()) log->warn("outbox: {}", note);
    const std::size_t pending = outbox->deliverable_count();
    if (pending > 0) log->info("outbox: {} result(s) from an earlier run will be delivered first", pending);
    for (const auto& note : host_changes->recovery_notes()) log->warn("host-change log: {}", note);
    sink->recover_interrupted_csrs();
    runner->report_interrupted_host_changes();
    log->info(
        "wincert-agent {} starting: orchestrator '{}', Command {}, auth {}, {} capabilities, at most {} jobs "
        "({} per host)",
        WINCERT_VERSION, config.orchestrator_name, config.agents_server_uri, describe_auth(config),
        registry->capability_names().size(), config.max_concurrent_jobs, config.max_jobs_per_host);

    tasks.spawn(sink->run_sender(), "outbox sender");
    tasks.spawn(session->run_registration(), "session");
    tasks.spawn(session->run_heartbeats(), "heartbeat");
    tasks.spawn(jobs_loop(), "job timer");
    tasks.spawn(sink->run_held(), "held results");
    tasks.spawn(session->run_agent_id_saver(), "AgentId");

    while (!stopping) {
      stop_wake.expires_at(SteadyClock::time_point::max());
      co_await stop_wake.async_wait(net::as_tuple(net::use_awaitable));
    }

    // Graceful shutdown: running jobs get their grace, then the outbox (and held results, an unsaved
    // AgentId) until the flush deadline; the loops (the sender, an in-flight heartbeat) a little longer.
    co_await runner->stop(config.shutdown_grace);
    const auto flush_deadline = SteadyClock::now() + config.outbox_flush_timeout;
    sink->flush_by(flush_deadline);
    session->finish_by(flush_deadline);
    co_await tasks.wait_until(flush_deadline + 2s);
    const std::size_t left = outbox->deliverable_count();
    if (left > 0) {
      log->warn("stopped with {} result(s) not yet delivered; they stay in {} and are sent at the next start", left,
                outbox->directory());
    }
    const std::uint64_t finished = runner->stats().jobs_finished;
    const std::uint64_t syncs = files::sync_count();
    log->info(
        "stopped: {} job(s) run, {} result(s) delivered, {} registration(s); {} disk sync(s) ({:.2f} per job), "
        "{} outbox commit(s) for {} entries",
        finished, sink->stats().results_delivered, session->stats().registrations, syncs,
        finished ? static_cast<double>(syncs) / static_cast<double>(finished) : 0.0, outbox->commits(),
        outbox->committed_entries());
    command_http->close_idle();
    if (delivery_http) delivery_http->close_idle();
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
  // With a client certificate (CertPath/KeyPath) results share the first connection: the certificate's
  // renewal (agent_certificate.hpp) switches that connection's certificate, and only that one.
  const bool own_delivery_connection = cfg.client_cert.empty();
  if (own_delivery_connection) {
    CommandConnectionUse delivery_use = command_connection_use(cfg);
    delivery_use.max_connections_per_origin = kDeliveryLanes;
    auto delivery = make_command_connection(executor, cfg, delivery_use, impl->auth.get());
    if (!delivery.ok()) return delivery.error().context("result delivery: ");
    impl->delivery_http = std::move(delivery->http);
    impl->delivery_client = std::move(delivery->client);
  }

  auto outbox = Outbox::open(cfg.outbox_directory);
  if (!outbox.ok()) return outbox.error();
  impl->outbox = std::move(outbox.value());
  auto host_changes = HostChangeLog::open(cfg.outbox_directory);
  if (!host_changes.ok()) return host_changes.error();
  impl->host_changes = std::move(host_changes.value());
  Impl* raw = impl.get();
  impl->api = std::make_unique<CommandClientApi>(*impl->client);
  impl->delivery_api =
      std::make_unique<CommandClientApi>(impl->delivery_client ? *impl->delivery_client : *impl->client);
  impl->job_types = JobTypeTable(cfg.job_types);
  if (!cfg.client_cert.empty() && !cfg.client_key.empty()) {
    impl->agent_certificate = std::make_unique<AgentCertificate>(cfg.client_cert, cfg.client_key, cfg.agent_certificate,
                                                                 "CN=" + cfg.orchestrator_name);
    impl->certificate_renewal =
        std::make_unique<AgentCertificateRenewal>(*impl->agent_certificate, *impl->command_http);
    if (Status started = impl->certificate_renewal->start(); !started.ok())
      return started.error().context("agent certificate (CertPath/KeyPath): ");
  }

  SessionOptions session_options;
  session_options.orchestrator_name = cfg.orchestrator_name;
  session_options.capabilities = impl->registry->capability_names();
  session_options.agent_id_file = cfg.outbox_directory + "/agent-id";
  session_options.heartbeat_interval = cfg.heartbeat_interval;
  session_options.job_poll_interval = cfg.job_poll_interval;
  session_options.retry_initial = cfg.retry_initial;
  session_options.retry_max = cfg.retry_max;
  session_options.renewal = impl->certificate_renewal.get();
  impl->session = std::make_unique<CommandSession>(executor, *impl->api, std::move(session_options), deps.metrics);
  impl->session->on_job_list([raw](const std::vector<JobEntry>& jobs) { return raw->take_job_list(jobs); });
  impl->session->on_refused([raw] {
    raw->exit_code = kExitRefused;
    raw->begin_stop();
  });

  SinkOptions sink_options;
  sink_options.retry_initial = cfg.retry_initial;
  sink_options.retry_max = cfg.retry_max;
  sink_options.inventory_max_update_bytes = cfg.inventory_max_update_bytes;
  sink_options.inventory_part_bytes = cfg.inventory_part_bytes;
  sink_options.delivery_lanes = kDeliveryLanes;
  impl->sink = std::make_unique<ResultSink>(executor, *impl->outbox, *impl->delivery_api, *impl->session, sink_options,
                                            deps.metrics);
  impl->sink->on_chained_job([raw](const std::string& job_id) { raw->trigger_now(job_id); });
  // A completion held in memory (outbox not writable) that is stored or delivered later is safe too: its
  // host-change record goes, so the next start does not report the job as interrupted.
  impl->sink->on_held_completion_safe(
      [log = impl->host_changes.get()](const std::string& job_id) { log->clear(job_id); });

  RunnerOptions runner_options;
  runner_options.retry_initial = cfg.retry_initial;
  runner_options.retry_max = cfg.retry_max;
  runner_options.job_timeout = cfg.job_timeout;
  runner_options.limits = SchedulerLimits{cfg.max_concurrent_jobs, cfg.max_jobs_per_host};
  runner_options.target_options.default_auth = cfg.winrm.default_auth;
  runner_options.target_options.local_backend_available = deps.local_backend_available;
  RunnerDeps runner_deps;
  runner_deps.api = impl->api.get();
  runner_deps.session = impl->session.get();
  runner_deps.sink = impl->sink.get();
  runner_deps.registry = impl->registry;
  runner_deps.sessions = deps.sessions;
  runner_deps.tasks = &impl->tasks;
  runner_deps.metrics = deps.metrics;
  runner_deps.host_changes = impl->host_changes.get();
  runner_deps.job_types = &impl->job_types;
  impl->runner = std::make_unique<JobRunner>(executor, runner_options, runner_deps);

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
  if (!impl_->session->registered()) return "not registered with Command (no session yet)";
  if (!files::can_write(impl_->outbox->directory()))
    return "the outbox directory " + impl_->outbox->directory() + " is not writable";
  return std::nullopt;
}

bool Agent::quiescent() const { return impl_->tasks.count() == 0 && impl_->runner->running() == 0; }

const AgentStats& Agent::stats() const {
  AgentStats& s = impl_->stats;
  const SessionStats& session = impl_->session->stats();
  const RunnerStats& runner = impl_->runner->stats();
  const SinkStats& sink = impl_->sink->stats();
  s.registrations = session.registrations;
  s.heartbeats = session.heartbeats;
  s.agent_id_save_failures = session.agent_id_save_failures;
  s.jobs_started = runner.jobs_started;
  s.jobs_finished = runner.jobs_finished;
  s.jobs_cancelled = runner.jobs_cancelled;
  s.results_delivered = sink.results_delivered;
  s.results_held = sink.results_held;
  s.disk_syncs = files::sync_count();
  s.outbox_commits = impl_->outbox->commits();
  s.outbox_committed_entries = impl_->outbox->committed_entries();
  return s;
}

std::string Agent::agent_id() const { return impl_->session->agent_id(); }
Outbox& Agent::outbox() { return *impl_->outbox; }
const Scheduler& Agent::scheduler() const { return impl_->runner->scheduler(); }
std::size_t Agent::results_not_safe() const { return impl_->sink->held(); }
bool Agent::agent_id_unsaved() const { return impl_->session->agent_id_unsaved(); }

}  // namespace wincert::agent
