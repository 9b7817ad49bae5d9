// Helpers for the store-session and replay tests: a winhost-sim child with a fresh copy of the example
// Windows host (example-model.json), `wincert-agent replay` as a child process, real PFX files and a CA
// made with OpenSSL, and the fixture job files of ../shared/fixtures/jobs.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../winrm/client_sim_util.hpp"
#include "tests/sim/model_test_support.hpp"

namespace wincert::agent::testing {

namespace fs = std::filesystem;
using nlohmann::json;

inline constexpr const char* kNtlmUser = "WINCERT\\alice";
inline constexpr const char* kPassword = "Ntlm-Secr3t-Pw!";
inline constexpr const char* kBasicUser = "alice";

// ../shared/fixtures/jobs/NAME
std::string fixture_job(const std::string& name);

enum class SimAuth { kNtlm, kBasicUnencrypted };

// A winhost-sim child serving a copy of example-model.json; the model file is rewritten by the sim
// after every change.
class Host {
 public:
  // prepare: edits the model file before the sim loads it (faults, missing certificates).
  explicit Host(SimAuth auth = SimAuth::kNtlm, const std::function<void(json&)>& prepare = {});
  ~Host();
  bool running() const { return sim_ && sim_->running(); }
  unsigned short port() const { return sim_->port(); }
  std::string client_machine() const { return "127.0.0.1:" + std::to_string(port()); }
  json model() const;  // the host as the sim last saved it
  json status() const { return sim_->status(); }
  std::uint64_t counter(const std::string& name) const { return sim_->counter(name); }
  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_;
  fs::path model_file_;
  std::unique_ptr<winrm::test::SimProcess> sim_;
};

// A port on 127.0.0.1 nobody listens on (bound, then closed).
unsigned short closed_port();

struct ReplayRun {
  int exit_code = -1;
  std::string out;
  std::string err;
  json doc;  // stdout parsed (discarded when it is not JSON)
  int result() const { return doc.contains("JobResult") ? doc["JobResult"].value("Result", -1) : -1; }
  std::string message() const {
    return doc.contains("JobResult") ? doc["JobResult"].value("FailureMessage", std::string()) : std::string();
  }
};

// Runs `wincert-agent replay JOB args...`; env_extra holds "NAME=value" entries for --set-env.
ReplayRun replay(const std::string& job_file, const std::vector<std::string>& args,
                 const std::vector<std::string>& env_extra = {});

// --set overrides that point a fixture job at host with NTLM credentials (password via --set-env
// WINCERT_TEST_PASSWORD).
std::vector<std::string> ntlm_target_args(const Host& host);
inline std::vector<std::string> ntlm_env() { return {std::string("WINCERT_TEST_PASSWORD=") + kPassword}; }

// args + more
std::vector<std::string> concat(std::vector<std::string> args, const std::vector<std::string>& more);

// A CA (RSA, self-signed) written to dir as ca.pem / ca.key; and PFX material.
struct CaFiles {
  std::string cert_file, key_file;
  std::string subject;  // Windows-like, as certstore prints it
};
CaFiles write_ca(const fs::path& dir);

// Thumbprints of the certificates in one store of a saved model.
std::vector<std::string> thumbprints(const json& model, const std::string& store);
// The https binding of a site with this binding information ("*:443:www.example.com"), or null.
json find_binding(const json& model, const std::string& site, const std::string& binding_information);

// Runs a coroutine to completion on io (with a safety limit).
template <typename T>
T run_coro(boost::asio::io_context& io, boost::asio::awaitable<T> work,
           std::chrono::seconds limit = std::chrono::seconds(120)) {
  std::optional<T> value;
  std::exception_ptr failure;
  auto wrapper = [](boost::asio::awaitable<T> inner, std::optional<T>& out) -> boost::asio::awaitable<void> {
    out.emplace(co_await std::move(inner));
  };
  boost::asio::co_spawn(io, wrapper(std::move(work), value), [&failure](std::exception_ptr e) { failure = e; });
  io.restart();
  io.run_for(limit);
  if (failure) std::rethrow_exception(failure);
  if (!value) throw std::runtime_error("coroutine did not finish within the test's safety limit");
  return std::move(*value);
}

inline void run_coro(boost::asio::io_context& io, boost::asio::awaitable<void> work) {
  auto as_bool = [](boost::asio::awaitable<void> inner) -> boost::asio::awaitable<bool> {
    co_await std::move(inner);
    co_return true;
  };
  (void)run_coro(io, as_bool(std::move(work)));
}

}  // namespace wincert::agent::testing
