// Runs jobs as coroutines on the agent's executor with priorities and two limits: at most
// `global` jobs at once, and at most `per_host` jobs against one host, so a thousand slow hosts cost a
// thousand suspended coroutines, not a thousand threads, and no host sees more parallel WinRM work
// than configured. Order: Add, then Reenrollment, then other Management, then Inventory (the C agent's
// order, reference 3.1); first come, first served within a priority. A job whose host is at its limit
// waits without blocking jobs for other hosts.
//
// Not thread-safe: call it from the executor's thread (the agent runs one io_context thread).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "jobs/job_config.hpp"

namespace wincert::agent {

enum class JobPriority : int { kAdd = 0, kReenrollment = 1, kManagement = 2, kInventory = 3, kOther = 4 };
std::string_view priority_name(JobPriority priority);

// From the capability's job kind and the management operation.
JobPriority classify_job(const jobs::JobConfig& config);
// The host a job works on, for the per-host limit: the ClientMachine's host, lowercase, without port
// ("localhost" for the local machine).
std::string host_key(const jobs::JobConfig& config);

struct SchedulerLimits {
  int global = 32;
  int per_host = 2;
};

class Scheduler {
 public:
  using Work = std::function<boost::asio::awaitable<void>()>;

  Scheduler(boost::asio::any_io_executor executor, SchedulerLimits limits);

  // Queues a job. False when the scheduler no longer accepts work or this job id is already queued or
  // running (a schedule firing while the previous run is still going).
  bool submit(std::string job_id, std::string host, JobPriority priority, Work work);
  // Stops accepting; queued jobs that have not started are dropped (they return their ids).
  std::vector<std::string> stop_accepting();
  // Waits until no job runs or `grace` has passed; true when everything finished.
  boost::asio::awaitable<bool> drain(std::chrono::steady_clock::duration grace);

  bool busy(const std::string& job_id) const { return busy_.count(job_id) != 0; }
  std::size_t queued() const { return queue_.size(); }
  std::size_t running() const { return static_cast<std::size_t>(running_); }
  std::vector<std::string> running_jobs() const;

  // Highest parallelism seen, overall and per host (tests and diagnostics).
  int max_running_seen() const { return max_running_; }
  int max_running_seen(const std::string& host) const;
  // The order the most recent jobs started in (job ids, at most kStartOrderKept), for tests.
  const std::vector<std::string>& start_order() const { return start_order_; }
  static constexpr std::size_t kStartOrderKept = 1024;
  // Hosts whose highest parallelism is remembered (the busiest first-seen ones; running hosts always).
  static constexpr std::size_t kHostsKept = 4096;

 private:
  struct Ticket {
    std::string job_id;
    std::string host;
    JobPriority priority;
    Work work;
  };
  void dispatch();
  boost::asio::awaitable<void> run_ticket(Ticket ticket);

  boost::asio::any_io_executor executor_;
  SchedulerLimits limits_;
  bool accepting_ = true;
  std::uint64_t next_seq_ = 0;
  std::map<std::pair<int, std::uint64_t>, Ticket> queue_;  // (priority, arrival) -> ticket
  std::set<std::string> busy_;                             // queued or running job ids
  std::map<std::string, int> running_per_host_;
  std::map<std::string, std::string> running_hosts_;  // job id -> host
  int running_ = 0;
  int max_running_ = 0;
  std::map<std::string, int> max_per_host_;
  std::vector<std::string> start_order_;
  boost::asio::steady_timer idle_;  // cancelled whenever a job ends
};

}  // namespace wincert::agent
