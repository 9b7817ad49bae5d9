#include "jobs/capabilities.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <exception>

#include "common/log.hpp"

namespace wincert::jobs {

namespace {

std::vector<std::string_view> split_dots(std::string_view s) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = s.find('.', start);
    parts.push_back(s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

}  // namespace

std::string_view store_type_name(StoreType type) {
  for (const StoreTypeModule& module : store_type_modules()) {
    if (module.properties == type) return module.name;
  }
  return "?";
}

std::string CapabilityKey::name() const {
  return "CertStores." + std::string(store_type_name(store)) + "." + std::string(job_kind_name(kind));
}

Result<CapabilityKey> parse_capability(std::string_view capability) {
  const std::string_view text = trim(capability);
  auto unknown = [&]() {
    std::string store_types;
    for (const StoreTypeModule& module : store_type_modules()) {
      store_types += (store_types.empty() ? "" : "|") + std::string(module.name);
    }
    return Error::invalid_argument("capability '" + std::string(text) +
                                   "' is not one wincert-agent handles (CertStores." + store_types +
                                   ".Inventory|Management|ReEnrollment)");
  };
  if (text.empty()) return Error::invalid_argument("the job has no Capability; cannot tell which handler runs it");
  auto parts = split_dots(text);
  if (parts.size() != 3 || !iequals(parts[0], "CertStores")) return unknown();
  CapabilityKey key;
  bool store_found = false, kind_found = false;
  if (const StoreTypeModule* module = find_store_type(parts[1])) {
    key.store = module->properties;
    store_found = true;
  }
  for (JobKind k : kJobKinds) {
    if (iequals(parts[2], job_kind_name(k))) {
      key.kind = k;
      kind_found = true;
    }
  }
  if (!store_found || !kind_found) return unknown();
  return key;
}

void CapabilityRegistry::add(CapabilityKey key, std::shared_ptr<JobHandler> handler) {
  handlers_[key] = std::move(handler);
}

Result<std::shared_ptr<JobHandler>> CapabilityRegistry::find(std::string_view capability) const {
  auto key = parse_capability(capability);
  if (!key.ok()) return key.error();
  auto it = handlers_.find(key.value());
  if (it == handlers_.end() || !it->second) {
    return Error::not_found("capability '" + std::string(trim(capability)) +
                            "' has no handler registered in this agent");
  }
  return it->second;
}

std::vector<std::string> CapabilityRegistry::capability_names() const {
  std::vector<std::string> names;
  names.reserve(handlers_.size());
  for (const auto& [key, handler] : handlers_) {
    if (handler) names.push_back(key.name());
  }
  return names;
}

CapabilityRegistry make_default_registry() {
  CapabilityRegistry registry;
  for (const StoreTypeModule& module : store_type_modules()) {
    const StoreTypeHandlers handlers = module.make_handlers();
    for (JobKind kind : kJobKinds) {
      if (auto handler = handlers.for_kind(kind)) registry.add({module.properties, kind}, std::move(handler));
    }
  }
  return registry;
}

namespace {

// One run of the handler on a fresh session. `safe_to_redo` says whether a failure of this run may be
// run again: always before the handler starts, then as the handler's Idempotence allows.
boost::asio::awaitable<JobResult> run_attempt(JobHandler& handler, const JobConfig& config, const Target& target,
                                              const JobServices& services, const JobLabel& label, bool& safe_to_redo) {
  safe_to_redo = true;
  try {
    auto session = co_await services.sessions->open(target);
    if (!session.ok()) {
      co_return JobResult::failure(config.job_history_id, failure_message(label, session.error().message),
                                   session.error());
    }
    JobContext ctx{config, target, services.callbacks, label};
    JobResult result = co_await handler.run(ctx, *session.value());
    safe_to_redo = handler.idempotence() == Idempotence::kIdempotent || !ctx.host_change_started ||
                   failed_before_reaching_host(result.error_detail);
    co_return result;
  } catch (const std::exception& e) {
    safe_to_redo = false;  // a bug, not a transient failure
    co_return JobResult::failure(config.job_history_id,
                                 failure_message(label, std::string("unexpected internal error: ") + e.what()),
                                 Error::internal(e.what()));
  }
}

}  // namespace

boost::asio::awaitable<JobResult> run_job(const CapabilityRegistry& registry, const JobConfig& config,
                                          const JobServices& services) {
  auto log = logger("jobs");
  JobLabel label{"Job", config.store.store_path, config.store.client_machine, config.job_id};
  auto handler = registry.find(config.capability);
  if (!handler.ok()) {
    log->error("job {} (history {}) not run: {}", config.job_id, config.job_history_id, handler.error().message);
    co_return JobResult::failure(config.job_history_id, failure_message(label, handler.error().message),
                                 handler.error());
  }
  label.job_kind = handler.value()->job_kind(config);
  if (config.job_cancelled) {
    log->info("{} job {} was cancelled by Command; not run", label.job_kind, config.job_id);
    co_return JobResult::warning(config.job_history_id,
                                 outcome_message(label, "cancelled in Command before it ran; nothing was done"));
  }

  // Inputs first, then where to connect: a bad entry parameter or store property fails the job
  // without a connection to the host.
  Status valid = handler.value()->validate(config);
  auto target = valid.ok() ? resolve_target(config, services.target_options) : Result<Target>(valid.error());
  if (!target.ok()) {
    JobResult failed =
        JobResult::failure(config.job_history_id, failure_message(label, target.error().message), target.error());
    log->error("{}", failed.message);
    co_return failed;
  }
  if (!target->local) label.host = target->machine;
  if (!services.sessions) {
    const Error missing = Error::internal("internal error: no session factory");
    co_return JobResult::failure(config.job_history_id, failure_message(label, missing.message), missing);
  }

  log->info("{} job {} (history {}, {}) on store '{}' at '{}' starting", label.job_kind, config.job_id,
            config.job_history_id, config.capability, label.store_path, label.host);
  const RetryPolicy policy(services.retry);
  boost::asio::steady_timer backoff(co_await boost::asio::this_coro::executor);
  JobResult result;
  for (int attempt = 1;; ++attempt) {
    bool safe_to_redo = true;
    result = co_await run_attempt(*handler.value(), config, target.value(), services, label, safe_to_redo);
    result.attempts = attempt;
    if (result.status != JobStatus::kFailure || !result.error_code) break;

    const auto now = std::chrono::steady_clock::now();
    const auto time_left = services.deadline > now ? services.deadline - now : std::chrono::steady_clock::duration{};
    const RetryDecision decision =
        policy.decide(*result.error_code, safe_to_redo, attempt, time_left, retry_jitter_random());
    if (decision.verdict != RetryVerdict::kRetry) {
      if (decision.verdict == RetryVerdict::kNoTimeLeft) {
        // The job ran out of time retrying: it ends as a deadline failure, with the last cause's detail.
        result.error_code = ErrorCode::kDeadlineExceeded;
        result.message += "; no time left for another attempt within the job's deadline (JobTimeoutSeconds)";
      } else if (decision.verdict == RetryVerdict::kUnsafe) {
        log->info("{} job {}: transient failure ({}) not retried: the host may already have changed", label.job_kind,
                  config.job_id, error_code_name(*result.error_code));
      }
      break;
    }
    log->warn("{} job {} attempt {} failed ({}), retrying in {} ms: {}", label.job_kind, config.job_id, attempt,
              error_code_name(*result.error_code), decision.delay.count(), result.message);
    backoff.expires_after(decision.delay);
    auto [waited] = co_await backoff.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    if (waited) break;  // cancelled (the job's deadline or the agent stopping): the last failure stands
  }
  result.message += attempts_note(result.attempts);
  if (result.status == JobStatus::kFailure) {
    log->error("{}", result.message);
  } else if (result.status == JobStatus::kWarning) {
    log->warn("Warning: {}", result.message);
  } else {
    log->info("{}: {}", job_status_name(result.status), result.message);
  }
  co_return result;
}

}  // namespace wincert::jobs
