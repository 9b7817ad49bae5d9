// Starts winhost-sim (and the wincert-agent CLI) as child processes for the end-to-end client tests.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/encoding.hpp"

extern char** environ;

namespace wincert::winrm::test {

inline std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline std::string sim_binary() {
#ifdef WINCERT_WINHOST_SIM
  return WINCERT_WINHOST_SIM;
#else
  return {};
#endif
}

inline bool sim_available() {
  const std::string path = sim_binary();
  return !path.empty() && std::filesystem::exists(path);
}

// A winhost-sim child on 127.0.0.1:0; killed (SIGTERM, then SIGKILL) when destroyed.
class SimProcess {
 public:
  explicit SimProcess(std::vector<std::string> extra_args) {
    dir_ = std::filesystem::temp_directory_path() / ("wincert-client-sim-" + random_uuid());
    std::filesystem::create_directories(dir_);
    port_file_ = dir_ / "port";
    status_file_ = dir_ / "status.json";
    std::vector<std::string> args = {sim_binary(),
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--port-file",
                                     port_file_.string(),
                                     "--status-file",
                                     status_file_.string(),
                                     "--log-file",
                                     (dir_ / "sim.log").string(),
                                     "--log-level",
                                     "debug"};
    // Not about the host's PowerShell start cost (--ps-start-ms, default 250 ms per powershell.exe): 0 keeps
    // these tests' runtime; a test about the cost passes its own value.
    if (std::find(extra_args.begin(), extra_args.end(), "--ps-start-ms") == extra_args.end())
      extra_args.insert(extra_args.end(), {"--ps-start-ms", "0"});
    for (auto& a : extra_args) args.push_back(std::move(a));
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, argv[0], nullptr, nullptr, argv.data(), environ) != 0) {
      pid_ = -1;
      return;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      const std::string text = read_text_file(port_file_);
      if (!text.empty() && text.back() == '\n') {
        port_ = static_cast<unsigned short>(std::stoul(text));
        break;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ~SimProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      for (int i = 0; i < 200; ++i) {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
      }
      if (pid_ > 0) {
        kill(pid_, SIGKILL);
        int status = 0;
        waitpid(pid_, &status, 0);
      }
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  SimProcess(const SimProcess&) = delete;
  SimProcess& operator=(const SimProcess&) = delete;

  bool running() const { return pid_ > 0 && port_ != 0; }
  unsigned short port() const { return port_; }
  std::string url(bool https = false) const {
    return std::string(https ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + "/wsman";
  }
  const std::filesystem::path& dir() const { return dir_; }
  std::string log() const { return read_text_file(dir_ / "sim.log"); }

  // The sim's counters (rewritten after every request).
  nlohmann::json status() const {
    for (int i = 0; i < 50; ++i) {
      auto parsed = nlohmann::json::parse(read_text_file(status_file_), nullptr, false);
      if (!parsed.is_discarded()) return parsed;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return nlohmann::json::object();
  }
  std::uint64_t counter(const std::string& name) const { return status().value(name, std::uint64_t{0}); }
  std::uint64_t action_count(const std::string& action) const {
    auto s = status();
    if (!s.contains("requests_by_action")) return 0;
    return s["requests_by_action"].value(action, std::uint64_t{0});
  }

 private:
  std::filesystem::path dir_;
  std::filesystem::path port_file_;
  std::filesystem::path status_file_;
  pid_t pid_ = -1;
  unsigned short port_ = 0;
};

// Runs a program, capturing stdout and stderr separately; returns the exit status.
struct ProcessResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline ProcessResult run_process(const std::vector<std::string>& args, const std::vector<std::string>& env_extra = {}) {
  static int counter = 0;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("wincert-client-proc-" + std::to_string(getpid()) + "-" + std::to_string(++counter));
  std::filesystem::create_directories(dir);
  const auto out_path = (dir / "out").string();
  const auto err_path = (dir / "err").string();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<std::string> args_copy = args;
  std::vector<char*> argv;
  for (auto& a : args_copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_copy;
  for (char** e = environ; *e != nullptr; ++e) env_copy.emplace_back(*e);
  for (const auto& e : env_extra) env_copy.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_copy) envp.push_back(e.data());
  envp.push_back(nullptr);
  ProcessResult result;
  pid_t pid = -1;
  if (posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data()) == 0) {
    int status = 0;
    waitpid(pid, &status, 0);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  posix_spawn_file_actions_destroy(&actions);
  result.out = read_text_file(out_path);
  result.err = read_text_file(err_path);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return result;
}

}  // namespace wincert::winrm::test
