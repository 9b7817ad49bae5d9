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

// Command asks for a new agent authentication certificate: requested (A0100007) or required (A0100008).
// The C agent treats both alike, ignoring case (reference 11.2).
bool asks_for_new_certificate(const ApiResult& result) {
  return iequals(result.code, kRenewalRequested) || iequals(result.code, kRenewalRequired);
}

// The first registration with a renewed certificate failed in a way the certificate may cause: anything but a
// network failure. A server that rejects a client certificate answers 401/403, fails the handshake, or (TLS
// 1.3) sends an alert in place of the response ("malformed HTTP ... unknown ca").
bool certificate_refused(const Error& error) {
  if (error.detail.system_kind == SystemStatusKind::kOpenSsl) return true;
  return !(error.code == ErrorCode::kUnavailable || error.code == ErrorCode::kDeadlineExceeded ||
           error.code == ErrorCode::kCancelled);
}

// After a renewed certificate was refused, renewing for expiry waits this long (Command asking still counts).
constexpr auto kRenewalPauseAfterRefusal = std::chrono::hours(6);

}  // namespace

// ---- CommandClientApi ----

net::awaitable<Result<RegisterReply>> CommandClientApi::register_session(std::string agent_id,
                                                                         std::vector<std::string> capabilities,
                                                                         std::string csr) {
  return client_.register_session(std::move(agent_id), std::move(capabilities), std::move(csr));
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
      CertificateRenewal* renewal = options_.renewal;
      std::string csr;
      bool request_tried = false;  // this round made (or failed to make) a request: no immediate re-register
      const bool expiry_renewal = SteadyClock::now() >= renewal_paused_until_ && renewal != nullptr && renewal->due();
      if (renewal != nullptr && !renewal->unconfirmed() && (renewal_wanted_ || expiry_renewal)) {
        request_tried = true;
        auto made = co_await renewal->request();
        if (made.ok()) {
          csr = std::move(made.value());
          log->info("asking Command for a new agent certificate ({})",
                    renewal_wanted_ ? "Command asked for one" : "the current one expires soon");
        } else {
          ++stats_.certificate_renewal_failures;
          log->error("cannot make the request for a new agent certificate: {}", made.error().message);
        }
      }
      auto reply = co_await api_.register_session(agent_id_, options_.capabilities, csr);
      if (stopping_) break;
      if (!reply.ok()) {
        if (renewal != nullptr && renewal->unconfirmed() && certificate_refused(reply.error())) {
          ++stats_.certificate_renewal_failures;
          log->error("Command did not accept the renewed agent certificate ({}); going back to CertPath/KeyPath",
                     reply.error().message);
          if (Status back = renewal->revert(); !back.ok())
            log->error("going back to the previous agent certificate: {}", back.error().message);
          renewal_paused_until_ = SteadyClock::now() + kRenewalPauseAfterRefusal;
          renewal_wanted_ = false;
          log->warn(
              "the agent certificate is renewed for expiry again in {} h at the earliest; check that Command's "
              "TLS trusts the CA that issues agent certificates",
              std::chrono::duration_cast<std::chrono::hours>(kRenewalPauseAfterRefusal).count());
          const auto delay = backoff.next();
          co_await sleep_for(session_wake_, delay);
          continue;
        }
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
      if (renewal != nullptr && renewal->unconfirmed()) {
        // The renewed pair got an answer: Command accepted it.
        if (Status promoted = renewal->confirm(); promoted.ok()) {
          ++stats_.certificates_renewed;
          log->info(
              "the renewed agent certificate was accepted: it is now CertPath/KeyPath (the previous pair is "
              "kept as .previous)");
        } else {
          log->error(
              "the renewed agent certificate works, but making it CertPath/KeyPath failed: {}; it stays "
              "pending and is tried first at the next start",
              promoted.error().message);
        }
      }
      const bool new_certificate_asked = asks_for_new_certificate(reply->result);
      bool installed = false;
      if (!csr.empty() && !reply->session.certificate.empty()) {
        if (Status used = co_await renewal->install(reply->session.certificate); used.ok()) {
          installed = true;
          renewal_wanted_ = false;
          log->info("Command issued a new agent certificate; presenting it from now on");
        } else {
          ++stats_.certificate_renewal_failures;
          log->error("cannot use the agent certificate Command issued: {}", used.error().message);
        }
      } else if (!csr.empty()) {
        ++stats_.certificate_renewal_failures;
        log->warn("Command returned no certificate for the agent certificate request ({})", reply->result.describe());
      }
      if (new_certificate_asked && renewal != nullptr && !request_tried) {
        renewal_wanted_ = true;
        if (reply->session.token.empty()) {
          log->info("Command asks for a new agent certificate ({}); registering again with a request",
                    reply->result.describe());
          continue;
        }
      }
      if (installed && reply->session.token.empty()) continue;  // register again, presenting the new pair
      if (reply->state == RegisterState::kRejected && new_certificate_asked && renewal != nullptr) {
        // We sent a request and Command still requires one: it may sign later (an administrator's step).
        const auto delay = backoff.next();
        log->error(
            "Command requires a new agent certificate for orchestrator '{}' and did not issue one ({}); "
            "asking again in {} s",
            options_.orchestrator_name, reply->result.describe(), seconds_of(delay));
        co_await sleep_for(session_wake_, delay);
        continue;
      }
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
                  new_certificate_asked && renewal == nullptr
                      ? " (Command asks for a new agent authentication certificate: renew CertPath/KeyPath, or "
                        "configure CertPath/KeyPath so that the agent renews it itself)"
                      : "");
      }
      const std::size_t scheduled = on_job_list_ ? on_job_list_(reply->session.jobs) : reply->session.jobs.size();
      log->info("registered orchestrator '{}' (AgentId {}): {} job(s), heartbeat every {} s",
                options_.orchestrator_name, agent_id_.empty() ? "-" : agent_id_, scheduled,
                heartbeat_interval_.count());
      token_ready_.cancel();
      heartbeat_wake_.cancel();  // restart heartbeat timing from this session
      if (installed || (renewal_wanted_ && !request_tried)) {
        // Present the new certificate once to confirm it, or send the request Command asked for.
        need_register_ = true;
        continue;
      }
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
