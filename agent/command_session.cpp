#include "agent/command_session.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cctype>
#include <fstream>

#include "agent/outbox.hpp"
#include "common/encoding.hpp"
#include "common/log.hpp"

namespace wincert::agent {

namespace net = boost::asio;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);

double seconds_of(std::chrono::milliseconds d) { return static_cast<double>(d.count()) / 1000.0; }

}  // namespace

// ---- CommandClientApi ----

net::awaitable<Result<RegisterReply>> CommandClientApi::register_session(std::string agent_id,
                                                                         std::vector<std::string> capabilities) {
  return client_.register_session(std::move(agent_id), std::move(capabilities));
}
net::awaitable<Result<HeartbeatReply>> CommandClientApi::heartbeat(std::string session_token) {
  return client_.heartbeat(std::move(session_token));
}
net::awaitable<Result<JobConfigReply>> CommandClientApi::job_configuration(JobEntry job, std::string session_token) {
  return client_.job_configuration(std::move(job), std::move(session_token));
}
net::awaitable<Result<PostReply>> CommandClientApi::post_job_data(std::string endpoint, std::string session_token,
                                                                  std::string body_object, std::string what) {
  return client_.post_job_data(std::move(endpoint), std::move(session_token), std::move(body_object), std::move(what));
}

// ---- the AgentId file ----

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

// ---- CommandSession ----

CommandSession::CommandSession(net::any_io_executor executor, CommandApi& api, SessionOptions options,
                               metrics::AgentMetrics* metrics)
    : executor_(executor),
      api_(api),
      options_(std::move(options)),
      metrics_(metrics),
      agent_id_(read_agent_id(options_.agent_id_file)),
      session_wake_(executor),
      token_ready_(executor),
      heartbeat_wake_(executor),
      save_wake_(executor) {}

void CommandSession::observe(metrics::SessionState state) {
  if (metrics_) metrics_->session_state(state);
}

net::awaitable<void> CommandSession::sleep_for(net::steady_timer& timer, SteadyClock::duration d) {
  timer.expires_after(d);
  co_await timer.async_wait(kUseTuple);
}

void CommandSession::stop() {
  if (stopping_) return;
  stopping_ = true;
  session_wake_.cancel();
  token_ready_.cancel();
  heartbeat_wake_.cancel();
}

void CommandSession::finish_by(SteadyClock::time_point deadline) {
  save_deadline_ = deadline;
  save_wake_.cancel();
}

void CommandSession::refuse() {
  refused_ = true;
  if (on_refused_) on_refused_();
  stop();
  observe(metrics::SessionState::kRejected);  // after the agent's stop: the state to show
}

net::awaitable<std::optional<std::string>> CommandSession::current_token() {
  while (token_.empty()) {
    if (stopping_) co_return std::nullopt;
    token_ready_.expires_at(SteadyClock::time_point::max());
    co_await token_ready_.async_wait(kUseTuple);
  }
  co_return token_;
}

void CommandSession::invalidate(const std::string& seen) {
  if (seen.empty() || seen != token_) return;  // somebody already did
  logger("agent")->info("session ended by Command; registering again");
  token_.clear();
  observe(metrics::SessionState::kUnregistered);
  need_register_ = true;
  session_wake_.cancel();
}

void CommandSession::refresh_job_list() {
  need_register_ = true;  // the old token stays usable until the new one arrives
  session_wake_.cancel();
}

void CommandSession::remember_agent_id(const std::string& id) {
  if (id.empty() || id == agent_id_) return;
  agent_id_ = id;  // kept in memory either way: this run uses it
  agent_id_unsaved_ = true;
  if (!try_save_agent_id()) save_wake_.cancel();  // run_agent_id_saver retries it
}

bool CommandSession::try_save_agent_id() {
  auto saved = write_file_durably(options_.agent_id_file, agent_id_ + "\n");
  if (!saved.ok()) {
    // Said once as an error; the retries (with backoff) only at debug level.
    logger("agent")->log(++stats_.agent_id_save_failures == 1 ? spdlog::level::err : spdlog::level::debug,
                         "cannot save the AgentId {} to '{}': {}; keeping it in memory and retrying", agent_id_,
                         options_.agent_id_file, saved.error().message);
    return false;
  }
  if (agent_id_unsaved_ && stats_.agent_id_save_failures > 0)
    logger("agent")->info("saved the AgentId to '{}'", options_.agent_id_file);
  agent_id_unsaved_ = false;
  return true;
}

net::awaitable<void> CommandSession::run_agent_id_saver() {
  Backoff backoff(options_.retry_initial, std::min<std::chrono::milliseconds>(options_.retry_max, 60s));
  for (;;) {
    if (!agent_id_unsaved_) {
      if (stopping_ && save_deadline_ != SteadyClock::time_point::max()) break;
      save_wake_.expires_at(save_deadline_);
      co_await save_wake_.async_wait(kUseTuple);
      continue;
    }
    if (try_save_agent_id()) {
      backoff.reset();
      continue;
    }
    if (stopping_ && SteadyClock::now() >= save_deadline_) {
      logger("agent")->error("stopping without having saved the AgentId to '{}'", options_.agent_id_file);
      break;
    }
    auto delay = backoff.next();
    if (stopping_) delay = std::min<std::chrono::milliseconds>(delay, 1s);
    co_await sleep_for(save_wake_, delay);
  }
}

net::awaitable<void> CommandSession::run_registration() {
  auto log = logger("agent");
  Backoff backoff(options_.retry_initial, options_.retry_max);
  while (!stopping_) {
    if (need_register_) {
      auto reply = co_await api_.register_session(agent_id_, options_.capabilities);
      if (stopping_) break;
      if (!reply.ok()) {
        if (is_auth_failure(reply.error())) {
          log->error("{}: stopping", reply.error().message);
          refuse();
          break;
        }
        const auto delay = backoff.next();
        log->warn("{}; retrying in {} s", reply.error().message, seconds_of(delay));
        co_await sleep_for(session_wake_, delay);
        continue;
      }
      ++stats_.registrations;
      remember_agent_id(reply->session.agent_id);
      if (reply->state == RegisterState::kRejected) {
        log->error(
            "Command refused orchestrator '{}' ({}): it was disapproved in Command, or Command requires a new "
            "agent authentication certificate. Approve it again (Orchestrators > Management) or renew its "
            "certificate, then restart the agent",
            options_.orchestrator_name, reply->result.describe());
        refuse();
        break;
      }
      if (reply->state == RegisterState::kPendingApproval) {
        observe(metrics::SessionState::kPendingApproval);
        const auto delay = std::min<std::chrono::milliseconds>(backoff.next(), 60s);
        log->warn(
            "orchestrator '{}' has no session yet ({}): it is not approved in Command yet (Orchestrators > "
            "Management > Approve), or Command asks for a new authentication certificate; asking again in {} s",
            options_.orchestrator_name, reply->result.describe(), seconds_of(delay));
        co_await sleep_for(session_wake_, delay);
        continue;
      }
      backoff.reset();
      token_ = reply->session.token;
      heartbeat_interval_ = options_.heartbeat_interval.value_or(reply->session.heartbeat_interval);
      need_register_ = false;
      observe(metrics::SessionState::kRegistered);
      if (reply->result.status == ApiStatus::kWarning) {
        log->warn("Command registered the orchestrator with a warning: {}{}", reply->result.describe(),
                  reply->result.code == "A0100007" || reply->result.code == "A0100008"
                      ? " (Command asks for a new agent authentication certificate: renew CertPath/KeyPath)"
                      : "");
      }
      const std::size_t scheduled = on_job_list_ ? on_job_list_(reply->session.jobs) : reply->session.jobs.size();
      log->info("registered orchestrator '{}' (AgentId {}): {} job(s), heartbeat every {} s",
                options_.orchestrator_name, agent_id_.empty() ? "-" : agent_id_, scheduled,
                heartbeat_interval_.count());
      token_ready_.cancel();
      heartbeat_wake_.cancel();  // restart heartbeat timing from this session
    }
    // Sleep until the session is invalidated, or the job list is due for a refresh.
    const bool poll = options_.job_poll_interval.count() > 0;
    session_wake_.expires_after(poll ? SteadyClock::duration(options_.job_poll_interval)
                                     : SteadyClock::duration::max() / 2);
    co_await session_wake_.async_wait(kUseTuple);
    if (!stopping_ && poll && SteadyClock::now() >= session_wake_.expiry()) {
      log->debug("refreshing the job list");
      need_register_ = true;  // the old token stays usable until the new one arrives
    }
  }
}

net::awaitable<void> CommandSession::run_heartbeats() {
  auto log = logger("agent");
  int failures = 0;
  while (!stopping_) {
    heartbeat_wake_.expires_after(heartbeat_interval_);
    co_await heartbeat_wake_.async_wait(kUseTuple);
    if (stopping_) break;
    if (SteadyClock::now() < heartbeat_wake_.expiry() || token_.empty()) continue;  // re-armed or no session
    const std::string seen = token_;
    auto reply = co_await api_.heartbeat(seen);
    if (stopping_) break;
    if (!reply.ok()) {
      ++failures;
      if (metrics_) metrics_->heartbeat_failed();
      log->warn("heartbeat failed ({} in a row): {}", failures, reply.error().message);
      continue;
    }
    ++stats_.heartbeats;
    if (metrics_) metrics_->heartbeat_ok(std::chrono::system_clock::now());
    if (failures > 0) log->info("Command reachable again after {} failed heartbeat(s)", failures);
    failures = 0;
    if (reply->heartbeat_interval && !options_.heartbeat_interval) heartbeat_interval_ = *reply->heartbeat_interval;
    if (!reply->session_valid) invalidate(seen);
  }
}

}  // namespace wincert::agent
