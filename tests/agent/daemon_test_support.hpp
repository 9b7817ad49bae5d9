// Test support for the daemon's tests: a small HTTP/1.1 server on loopback (port 0, own thread) that
// plays whatever the test's handler answers, including dropped connections and slow answers; a fake
// slow store-session factory that records parallelism per host; and helpers.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/result.hpp"
#include "jobs/handler.hpp"

namespace wincert::agent::testing {

struct FakeRequest {
  std::string method;
  std::string target;
  std::string body;
  std::map<std::string, std::string> headers;  // lowercase names
  nlohmann::json json() const;                 // body parsed (discarded value when not JSON)
  std::string header(const std::string& lower_name) const;
};

struct FakeResponse {
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
  bool drop = false;   // close the connection instead of answering
  bool close = false;  // answer with Connection: close
  std::chrono::milliseconds delay{0};

  static FakeResponse json(const nlohmann::json& body, unsigned status = 200);
};

class FakeServer {
 public:
  using Handler = std::function<FakeResponse(const FakeRequest&)>;
  explicit FakeServer(Handler handler);
  ~FakeServer();
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url(const std::string& path = "") const;  // http://127.0.0.1:port + path
  std::vector<FakeRequest> requests() const;
  std::size_t count(const std::string& target_prefix) const;  // requests whose target starts with it
  int connections() const { return connections_.load(); }
  void set_handler(Handler handler);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::uint16_t port_ = 0;
  std::atomic<int> connections_{0};
};

// Runs one awaitable on a fresh io_context and returns its value (rethrows its exception).
template <typename T>
T run_awaitable(boost::asio::awaitable<T> task) {
  boost::asio::io_context io;
  std::optional<T> value;
  std::exception_ptr error;
  // Through a void coroutine: co_spawn's value form needs a default-constructible T.
  boost::asio::co_spawn(
      io, [&, t = std::move(task)]() mutable -> boost::asio::awaitable<void> { value.emplace(co_await std::move(t)); },
      [&](std::exception_ptr e) { error = e; });
  io.run();
  if (error) std::rethrow_exception(error);
  return std::move(*value);
}

// A fresh directory under the build's temp dir, removed at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_text(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);

// Store sessions whose certificate store answers inventory after `delay`, counting how many jobs run
// against each host at once. Thread-compatible with one io_context thread.
class SlowSessions final : public jobs::StoreSessionFactory {
 public:
  explicit SlowSessions(std::chrono::milliseconds delay) : delay_(delay) {}
  boost::asio::awaitable<Result<jobs::HostSessionHandle>> open(const jobs::Target& target) override;

  struct HostStats {
    int current = 0;
    int max = 0;
    int jobs = 0;
  };
  std::map<std::string, HostStats> hosts;
  int current_total = 0;
  int max_total = 0;
  std::chrono::milliseconds delay_;
  int inventory_items = 1;  // certificates each store holds
};

// A UO-shaped inventory job configuration for `host` (WinCert over https:5986).
nlohmann::json inventory_job_config(const std::string& job_id, const std::string& host, std::int64_t history_id,
                                    const std::string& capability = "CertStores.WinCert.Inventory");

}  // namespace wincert::agent::testing
