// A winhost-sim child process with --model FILE, reached through the real WinRM path: certstore's remote
// backend -> WinrmScriptRunner -> winrm::run_ps -> HTTP -> the model's operations. saved_model() reads the
// file winhost-sim saved after each change, i.e. what the host holds now.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "../winrm/client_sim_util.hpp"
#include "../winrm/client_test_util.hpp"
#include "agent/winrm_script_runner.hpp"
#include "certstore/remote/remote_backend.hpp"
#include "common/encoding.hpp"
#include "model_test_support.hpp"
#include "winrm/http_auth.hpp"
#include "winrm/transport.hpp"

namespace wincert::sim::model::testing {

struct ModelE2e : ::testing::Test {
  static constexpr const char* kUser = "alice";
  static constexpr const char* kPassword = "Model-Passw0rd!";

  boost::asio::io_context io;
  std::filesystem::path dir;
  std::filesystem::path model_file;
  std::unique_ptr<winrm::test::SimProcess> sim;
  std::unique_ptr<winrm::WsmanTransport> transport;
  std::unique_ptr<winrm::WinrsSession> session;
  std::unique_ptr<agent::WinrmScriptRunner> runner;
  std::shared_ptr<certstore::remote::ScriptCaller> caller;

  void SetUp() override {
    if (!winrm::test::sim_available()) GTEST_SKIP() << "winhost-sim is not built";
    dir = std::filesystem::temp_directory_path() / ("winhost-model-e2e-" + random_uuid());
    std::filesystem::create_directories(dir);
    model_file = dir / "host.json";
    {
      std::ifstream in(WINCERT_MODEL_EXAMPLE);
      nlohmann::json host = nlohmann::json::parse(in);
      prepare(host);
      std::ofstream(model_file) << host.dump(2);
    }
    std::ofstream(dir / "users") << kUser << ":" << kPassword << "\n";
    sim = std::make_unique<winrm::test::SimProcess>(std::vector<std::string>{
        "--users", (dir / "users").string(), "--allow-unencrypted", "--model", model_file.string()});
    ASSERT_TRUE(sim->running()) << "winhost-sim did not start";
    auto endpoint = winrm::parse_endpoint(sim->url());
    ASSERT_TRUE(endpoint.ok());
    auto t = winrm::WsmanTransport::create(io.get_executor(), *endpoint,
                                           std::make_unique<winrm::BasicAuth>(kUser, Secret(kPassword), true), {});
    ASSERT_TRUE(t.ok()) << t.error().message;
    transport = std::move(*t);
    session = std::make_unique<winrm::WinrsSession>(*transport);
    runner = std::make_unique<agent::WinrmScriptRunner>(*session, "WEB01");
    caller = std::make_shared<certstore::remote::ScriptCaller>(*runner);
  }
  // Lets a test change the host before winhost-sim loads it (faults, extra sites).
  virtual void prepare(nlohmann::json&) {}
  void TearDown() override {
    if (session) (void)run(session->close());
    session.reset();
    sim.reset();
    std::error_code ec;
    if (!dir.empty()) std::filesystem::remove_all(dir, ec);
  }
  template <typename T>
  T run(boost::asio::awaitable<T> work) {
    return winrm::test::run_coro(io, std::move(work));
  }
  nlohmann::json saved_model() {
    std::ifstream in(model_file);
    return nlohmann::json::parse(in);
  }
};

}  // namespace wincert::sim::model::testing
