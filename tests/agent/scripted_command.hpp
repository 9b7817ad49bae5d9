// A scripted Command for the unit tests of the agent's parts (CommandSession, JobRunner, ResultSink):
// CommandApi answered by the test's functions, every call recorded; and a fixed session token source.
// Used on one io_context thread.
#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/command_session.hpp"

namespace wincert::agent::testing {

inline ApiResult api_ok() {
  ApiResult r;
  r.present = true;
  r.status = ApiStatus::kSuccess;
  return r;
}
inline ApiResult api_error(std::string code) {
  ApiResult r;
  r.present = true;
  r.status = ApiStatus::kError;
  r.code = std::move(code);
  r.message = "refused by the scripted Command";
  return r;
}
inline constexpr const char* kInvalidSessionCode = "A0100012";

inline JobEntry job_entry(std::string job_id) {
  JobEntry entry;
  entry.job_id = job_id;
  entry.configuration_endpoint = "KeyfactorAgents/Jobs/" + job_id + "/Config";
  entry.completion_endpoint = "KeyfactorAgents/Jobs/" + job_id + "/Complete";
  return entry;
}

inline RegisterReply session_reply(std::string token, std::string agent_id = "0f0e0d0c-0b0a-0908-0706-050403020100",
                                   std::chrono::seconds heartbeat = std::chrono::seconds(300),
                                   std::vector<JobEntry> jobs = {}) {
  RegisterReply reply;
  reply.state = RegisterState::kSession;
  reply.result = api_ok();
  reply.session.token = std::move(token);
  reply.session.agent_id = std::move(agent_id);
  reply.session.heartbeat_interval = heartbeat;
  reply.session.jobs = std::move(jobs);
  return reply;
}

inline PostReply post_ok(nlohmann::ordered_json body = nlohmann::ordered_json::object()) {
  return PostReply{api_ok(), std::move(body)};
}

class ScriptedCommand final : public CommandApi {
 public:
  struct Post {
    std::string endpoint;
    std::string token;
    nlohmann::json body;
    std::string what;
  };

  // Register answers, in order; when empty: a session "tok-<n>" with `default_jobs`.
  std::deque<Result<RegisterReply>> register_script;
  std::vector<JobEntry> default_jobs;
  std::chrono::seconds default_heartbeat{300};
  std::function<Result<HeartbeatReply>(const std::string& token)> on_heartbeat;
  std::function<Result<JobConfigReply>(const JobEntry& job, const std::string& token)> on_config;
  std::function<Result<PostReply>(const Post& post)> on_post;  // default: accepted

  int registrations = 0;
  std::vector<std::string> register_agent_ids;
  std::vector<std::vector<std::string>> register_capabilities;
  std::vector<std::string> register_csrs;  // "" when none was sent
  std::vector<std::string> heartbeat_tokens;
  std::vector<std::string> config_requests;  // job ids
  std::vector<Post> posts;

  boost::asio::awaitable<Result<RegisterReply>> register_session(std::string agent_id,
                                                                 std::vector<std::string> capabilities,
                                                                 std::string csr) override {
    ++registrations;
    register_agent_ids.push_back(agent_id);
    register_csrs.push_back(csr);
    register_capabilities.push_back(capabilities);
    if (!register_script.empty()) {
      auto reply = std::move(register_script.front());
      register_script.pop_front();
      co_return reply;
    }
    co_return session_reply("tok-" + std::to_string(registrations), "0f0e0d0c-0b0a-0908-0706-050403020100",
                            default_heartbeat, default_jobs);
  }
  boost::asio::awaitable<Result<HeartbeatReply>> heartbeat(std::string session_token) override {
    heartbeat_tokens.push_back(session_token);
    if (on_heartbeat) co_return on_heartbeat(session_token);
    HeartbeatReply reply;
    reply.result = api_ok();
    co_return reply;
  }
  boost::asio::awaitable<Result<JobConfigReply>> job_configuration(JobEntry job, std::string session_token) override {
    config_requests.push_back(job.job_id);
    if (on_config) co_return on_config(job, session_token);
    co_return Error::not_found("the scripted Command has no configuration for job " + job.job_id);
  }
  boost::asio::awaitable<Result<PostReply>> post_job_data(std::string endpoint, std::string session_token,
                                                          std::string body_object, std::string what) override {
    Post post{std::move(endpoint), std::move(session_token), nlohmann::json::parse(body_object, nullptr, false),
              std::move(what)};
    posts.push_back(post);
    if (on_post) co_return on_post(post);
    co_return post_ok();
  }
};

// A session that always has a token ("tok-<generation>"); invalidate() starts a new generation.
class FixedSession final : public SessionTokens {
 public:
  boost::asio::awaitable<std::optional<std::string>> current_token() override {
    if (stopped) co_return std::nullopt;
    co_return token();
  }
  void invalidate(const std::string& seen) override {
    if (seen == token()) {
      ++invalidations;
      ++generation;
    }
  }
  void refresh_job_list() override { ++refreshes; }
  bool registered() const override { return !stopped; }
  std::string token() const { return "tok-" + std::to_string(generation); }

  int generation = 1;
  int invalidations = 0;
  int refreshes = 0;
  bool stopped = false;
};

// Runs `io` until `done` or `limit` passed; true when done.
inline bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    io.run_for(std::chrono::milliseconds(5));
    if (io.stopped()) {  // nothing to run just now
      io.restart();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  return true;
}

}  // namespace wincert::agent::testing
