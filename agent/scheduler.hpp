// Runs jobs as coroutines on the agent's executor with priorities and two limits: at most
// `global` jobs at once, and at most `per_host` jobs against one host, so a thousand slow hosts cost a
// thousand suspended coroutines, not a thousand threads, and no host sees more parallel WinRM work
// than configured. Order: Add, then Reenrollment, then other Management, then Inventory (the C agent's
// order, reference 3.1); first come, first served within a priority. A job whose host is at its limit
// waits without blocking jobs for other hosts.
//
// A job whose host is not known yet (its configuration, which names the host, is still in Command) is
// submitted unplaced: its `fetch` runs only when a job could start now, and returns where it goes. Admission
// is in two steps, a global slot for the fetch, then the per-host limit for the run:
//  - a fetch starts only while running jobs + fetches in flight < `global`, so there are never more fetches
//    than free capacity (no stampede at registration, and Command sees a job open only when it can run);
//  - a fetched job whose host is at its limit does not keep its global slot while it waits (that would idle
//    the slot, and a backlog for one host could fill every slot): it is parked, and the slot goes to the next
//    fetch. Parked jobs are bounded too (parked + fetches < `global`), so at most 2 x `global` configurations
//    are held. No deadlock: a parked job waits only for running jobs on its host, which always end.
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
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "jobs/job_config.hpp"

namespace wincert::agent {

enum class JobPriority : int { kAdd = 0, kReenrollment = 1, kManagement = 2, kInventory = 3, kOther = 4 };
std::string_view priority_name(JobPriority priority);

// From the capability's job kind and the management operation.
JobPriority classify_job(const jobs::JobConfig& config);
// The host a job works on, for the per-host limit: the ClientMachine's host, lowercase, and its port when
// one is named ("host:5986", "[::1]:5985"); two WinRM endpoints on one name are two hosts ("localhost" for
// the local machine).
std::string host_key(const jobs::JobConfig& config);

struct SchedulerLimits {
  int global = 32;
  int per_host = 2;
};

class Scheduler {
 public:
  using Work = std::function<boost::asio::awaitable<void>()>;
  // Where a fetched job goes; nullopt from a Fetch: the job does not run (it said why itself).
  struct Placement {
    std::string host;
    JobPriority priority = JobPriority::kOther;
    Work work;
  };
  using Fetch = std::function<boost::asio::awaitable<std::optional<Placement>>()>;

  Scheduler(boost::asio::any_io_executor executor, SchedulerLimits limits);

  // Queues a job. False when the scheduler no longer accepts work or this job id is already queued or
  // running (a schedule firing while the previous run is still going).
  bool submit(std::string job_id, std::string host, JobPriority priority, Work work);
  // Queues a job whose host is not known yet: `fetch` runs when capacity allows (see above); `priority`
  // orders the fetches (the Placement's own priority orders the run). False as for submit().
  bool submit_unplaced(std::string job_id, JobPriority priority, Fetch fetch);
  // Stops accepting; queued jobs that have not started are dropped (they return their ids).
  std::vector<std::string> stop_accepting();
  // Waits until no job runs or `grace` has passed; true when everything finished.
  boost::asio::awaitable<bool> drain(std::chrono::steady_clock::duration grace);

  bool busy(const std::string& job_id) const { return busy_.count(job_id) != 0; }
  std::size_t queued() const { return queue_.size() + unplaced_.size(); }
  std::size_t fetching() const { return static_cast<std::size_t>(fetching_); }
  int max_fetching_seen() const { return max_fetching_; }
  // Highest running jobs + fetches in flight seen: never above `global`.
  int max_admitted_seen() const { return max_admitted_; }
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
  struct Unplaced {
    std::string job_id;
    Fetch fetch;
  };
  void dispatch();
  boost::asio::awaitable<void> run_ticket(Ticket ticket);
  boost::asio::awaitable<void> run_fetch(Unplaced job);
  void enqueue(Ticket ticket);

  boost::asio::any_io_executor executor_;
  SchedulerLimits limits_;
  bool accepting_ = true;
  std::uint64_t next_seq_ = 0;
  std::map<std::pair<int, std::uint64_t>, Ticket> queue_;       // (priority, arrival) -> ticket
  std::map<std::pair<int, std::uint64_t>, Unplaced> unplaced_;  // waiting for a fetch slot
  int fetching_ = 0;
  int max_fetching_ = 0;
  int max_admitted_ = 0;
  std::set<std::string> busy_;  // queued or running job ids
  std::map<std::string, int> running_per_host_;
  std::map<std::string, std::string> running_hosts_;  // job id -> host
  int running_ = 0;
  int max_running_ = 0;
  std::map<std::string, int> max_per_host_;
  std::vector<std::string> start_order_;
  boost::asio::steady_timer idle_;  // cancelled whenever a job ends
};

}  // namespace wincert::agent
