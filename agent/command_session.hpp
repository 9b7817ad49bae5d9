// The Command session: registration (capabilities, the AgentId saved across restarts, approval waited
// for, a refusal ends the agent), the session token the other parts use, re-registration when Command
// says the session is invalid (ApiResult::session_invalid(), HeartbeatReply::session_valid: codes, never
// message text) or when the job list is due for a refresh, and heartbeats at Command's interval (or the
// configured one). New job lists go to the on_job_list handler.
//
// CommandApi is the narrow part of the Orchestrators API the agent's parts call: CommandClient in
// production (CommandClientApi), a scripted Command in unit tests (tests/agent/command_session_test.cpp).
// SessionTokens is what job running and the result sink need of the session.
//
// Runs on the agent's executor (one io_context thread); not thread-safe.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "agent/command_client.hpp"
#include "agent/metrics/agent_metrics.hpp"

namespace wincert::agent {

class CommandApi {
 public:
  virtual ~CommandApi() = default;
  // `csr`: base64 DER PKCS#10 for a new agent certificate, or "" (the body then says "CSR": null).
  virtual boost::asio::awaitable<Result<RegisterReply>> register_session(std::string agent_id,
                                                                         std::vector<std::string> capabilities,
                                                                         std::string csr) = 0;
  virtual boost::asio::awaitable<Result<HeartbeatReply>> heartbeat(std::string session_token) = 0;
  virtual boost::asio::awaitable<Result<JobConfigReply>> job_configuration(JobEntry job, std::string session_token) = 0;
  virtual boost::asio::awaitable<Result<PostReply>> post_job_data(std::string endpoint, std::string session_token,
                                                                  std::string body_object, std::string what) = 0;
};

// CommandApi over the real client (which must outlive it).
class CommandClientApi final : public CommandApi {
 public:
  explicit CommandClientApi(CommandClient& client) : client_(client) {}
  boost::asio::awaitable<Result<RegisterReply>> register_session(std::string agent_id,
                                                                 std::vector<std::string> capabilities,
                                                                 std::string csr) override;
  boost::asio::awaitable<Result<HeartbeatReply>> heartbeat(std::string session_token) override;
  boost::asio::awaitable<Result<JobConfigReply>> job_configuration(JobEntry job, std::string session_token) override;
  boost::asio::awaitable<Result<PostReply>> post_job_data(std::string endpoint, std::string session_token,
                                                          std::string body_object, std::string what) override;

 private:
  CommandClient& client_;
};

// Renewal of the agent's client certificate (agent/agent_certificate.hpp in production). The session
// asks for a CSR when Command wants a new certificate (A0100007/A0100008) or due() says it expires soon,
// installs what Command returns, and confirms or reverts it by the next registration's outcome.
class CertificateRenewal {
 public:
  virtual ~CertificateRenewal() = default;
  virtual bool due() = 0;
  // A new key's CSR, base64 DER.
  virtual boost::asio::awaitable<Result<std::string>> request() = 0;
  // Stores the certificate with the new key beside the current pair and presents it from now on.
  virtual boost::asio::awaitable<Status> install(std::string certificate) = 0;
  // The client presents a pair that has not been accepted yet.
  virtual bool unconfirmed() const = 0;
  // It was accepted: it becomes CertPath/KeyPath.
  virtual Status confirm() = 0;
  // It was refused: back to the current pair.
  virtual Status revert() = 0;
};

// The session as job running and the result sink see it.
class SessionTokens {
 public:
  virtual ~SessionTokens() = default;
  // The current token, waiting for a registration when there is none; nullopt once the agent stops.
  virtual boost::asio::awaitable<std::optional<std::string>> current_token() = 0;
  // Command said `seen` is no longer valid: register again (no-op when a newer token replaced it).
  virtual void invalidate(const std::string& seen) = 0;
  // Fetch the job list now (a chained job Command named before listing it).
  virtual void refresh_job_list() = 0;
  // A token is at hand right now (no waiting).
  virtual bool registered() const = 0;
};

struct SessionOptions {
  std::string orchestrator_name;
  std::vector<std::string> capabilities;
  std::string agent_id_file;                               // where the AgentId is kept across restarts
  std::optional<std::chrono::seconds> heartbeat_interval;  // configured: overrides Command's
  std::chrono::seconds job_poll_interval{0};               // 0: the job list is fetched only on demand
  std::chrono::milliseconds retry_initial{1000};
  std::chrono::milliseconds retry_max{60000};
  // Optional (outlives the session): without it a required renewal (A0100008) stops the agent.
  CertificateRenewal* renewal = nullptr;
};

struct SessionStats {
  std::uint64_t registrations = 0;
  std::uint64_t heartbeats = 0;
  std::uint64_t agent_id_save_failures = 0;  // failed attempts to write the AgentId file
  std::uint64_t certificates_renewed = 0;    // agent certificates Command issued and that were accepted
  std::uint64_t certificate_renewal_failures = 0;
};

// The AgentId file's content, or "" when it is missing or not an id.
std::string read_agent_id(const std::string& path);

class CommandSession final : public SessionTokens {
 public:
  // Takes a new job list; returns how many of its jobs are scheduled (for the log).
  using JobListHandler = std::function<std::size_t(const std::vector<JobEntry>& jobs)>;
  // Command refused the orchestrator (disapproved, 401/403): the agent must stop.
  using RefusedHandler = std::function<void()>;

  // `api` and `metrics` (optional) outlive the session. The AgentId is read from the file here.
  CommandSession(boost::asio::any_io_executor executor, CommandApi& api, SessionOptions options,
                 metrics::AgentMetrics* metrics = nullptr);

  void on_job_list(JobListHandler handler) { on_job_list_ = std::move(handler); }
  void on_refused(RefusedHandler handler) { on_refused_ = std::move(handler); }

  // The three loops; each returns after stop() (the AgentId saver once saved or past finish_by()).
  boost::asio::awaitable<void> run_registration();
  boost::asio::awaitable<void> run_heartbeats();
  boost::asio::awaitable<void> run_agent_id_saver();

  boost::asio::awaitable<std::optional<std::string>> current_token() override;
  void invalidate(const std::string& seen) override;
  void refresh_job_list() override;

  // No more registrations or heartbeats; waiters for a token get nullopt.
  void stop();
  // At shutdown: an unsaved AgentId is tried until `deadline`.
  void finish_by(std::chrono::steady_clock::time_point deadline);

  bool registered() const override { return !token_.empty(); }
  bool refused() const { return refused_; }
  const std::string& agent_id() const { return agent_id_; }
  bool agent_id_unsaved() const { return agent_id_unsaved_; }
  std::chrono::seconds heartbeat_interval() const { return heartbeat_interval_; }
  const SessionStats& stats() const { return stats_; }

 private:
  void observe(metrics::SessionState state);
  // After a registration answer: renewal bookkeeping. Returns false when the answer ends this attempt.
  boost::asio::awaitable<void> after_registration(RegisterReply& reply, bool sent_csr);
  void refuse();
  void remember_agent_id(const std::string& id);
  bool try_save_agent_id();
  boost::asio::awaitable<void> sleep_for(boost::asio::steady_timer& timer, std::chrono::steady_clock::duration d);

  boost::asio::any_io_executor executor_;
  CommandApi& api_;
  SessionOptions options_;
  metrics::AgentMetrics* metrics_;
  JobListHandler on_job_list_;
  RefusedHandler on_refused_;

  std::string agent_id_;
  std::string token_;
  std::chrono::seconds heartbeat_interval_{300};
  bool need_register_ = true;
  bool renewal_wanted_ = false;                                   // Command asked for a new agent certificate
  std::chrono::steady_clock::time_point renewal_paused_until_{};  // after a renewed certificate was refused
  bool agent_id_unsaved_ = false;
  bool stopping_ = false;
  bool refused_ = false;
  std::chrono::steady_clock::time_point save_deadline_ = std::chrono::steady_clock::time_point::max();
  SessionStats stats_;

  boost::asio::steady_timer session_wake_;    // register again now (invalid session, job list wanted)
  boost::asio::steady_timer token_ready_;     // a token arrived (or the agent stops)
  boost::asio::steady_timer heartbeat_wake_;  // restart heartbeat timing
  boost::asio::steady_timer save_wake_;       // the AgentId: try saving now
};

}  // namespace wincert::agent
