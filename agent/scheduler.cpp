#include "agent/scheduler.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>

#include "common/encoding.hpp"
#include "common/log.hpp"
#include "jobs/capabilities.hpp"
#include "jobs/target.hpp"

namespace wincert::agent {

namespace net = boost::asio;

std::string_view priority_name(JobPriority priority) {
  switch (priority) {
    case JobPriority::kAdd:
      return "add";
    case JobPriority::kReenrollment:
      return "reenrollment";
    case JobPriority::kManagement:
      return "management";
    case JobPriority::kInventory:
      return "inventory";
    case JobPriority::kOther:
      return "other";
  }
  return "other";
}

JobPriority classify_job(const jobs::JobConfig& config) {
  auto key = jobs::parse_capability(config.capability);
  if (!key.ok()) return JobPriority::kOther;
  switch (key->kind) {
    case jobs::JobKind::kInventory:
      return JobPriority::kInventory;
    case jobs::JobKind::kReenrollment:
      return JobPriority::kReenrollment;
    case jobs::JobKind::kManagement: {
      const auto op = config.operation_type.value_or(jobs::OperationType::kUnknown);
      return op == jobs::OperationType::kAdd || op == jobs::OperationType::kCreateAdd ? JobPriority::kAdd
                                                                                      : JobPriority::kManagement;
    }
  }
  return JobPriority::kOther;
}

std::string host_key(const jobs::JobConfig& config) {
  auto machine = jobs::parse_client_machine(config.store.client_machine);
  if (!machine.ok()) return to_lower(trim(config.store.client_machine));
  if (machine->local) return "localhost";
  std::string key = to_lower(machine->host);
  if (key.find(':') != std::string::npos) key = "[" + key + "]";  // an IPv6 literal
  if (machine->port) key += ":" + std::to_string(*machine->port);
  return key;
}

Scheduler::Scheduler(net::any_io_executor executor, SchedulerLimits limits)
    : executor_(executor), limits_(limits), idle_(executor) {
  if (limits_.global < 1) limits_.global = 1;
  if (limits_.per_host < 1) limits_.per_host = 1;
}

bool Scheduler::submit(std::string job_id, std::string host, JobPriority priority, Work work) {
  if (!accepting_ || busy_.count(job_id)) return false;
  busy_.insert(job_id);
  enqueue(Ticket{std::move(job_id), std::move(host), priority, std::move(work)});
  dispatch();
  return true;
}

void Scheduler::enqueue(Ticket ticket) {
  const auto key = std::make_pair(static_cast<int>(ticket.priority), next_seq_++);
  queue_.emplace(key, std::move(ticket));
}

bool Scheduler::submit_unplaced(std::string job_id, JobPriority priority, Fetch fetch) {
  if (!accepting_ || busy_.count(job_id)) return false;
  busy_.insert(job_id);
  const auto key = std::make_pair(static_cast<int>(priority), next_seq_++);
  unplaced_.emplace(key, Unplaced{std::move(job_id), std::move(fetch)});
  dispatch();
  return true;
}

std::vector<std::string> Scheduler::stop_accepting() {
  accepting_ = false;
  std::vector<std::string> dropped;
  for (auto& [key, ticket] : queue_) {
    busy_.erase(ticket.job_id);
    dropped.push_back(ticket.job_id);
  }
  queue_.clear();
  for (auto& [key, job] : unplaced_) {
    busy_.erase(job.job_id);
    dropped.push_back(job.job_id);
  }
  unplaced_.clear();
  return dropped;
}

int Scheduler::max_running_seen(const std::string& host) const {
  auto it = max_per_host_.find(host);
  return it == max_per_host_.end() ? 0 : it->second;
}

std::vector<std::string> Scheduler::running_jobs() const {
  std::vector<std::string> out;
  for (const auto& [id, host] : running_hosts_) out.push_back(id);
  return out;
}

void Scheduler::dispatch() {
  // Fetched jobs first (their configuration is here), then fetches for the slots left (see the header).
  while (running_ + fetching_ < limits_.global) {
    auto pick = queue_.end();
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      if (running_per_host_[it->second.host] < limits_.per_host) {
        pick = it;
        break;
      }
    }
    if (pick == queue_.end()) break;  // everything queued waits for a busy host
    Ticket ticket = std::move(pick->second);
    queue_.erase(pick);
    ++running_;
    const int on_host = ++running_per_host_[ticket.host];
    max_running_ = std::max(max_running_, running_);
    // Diagnostics only: bounded, so a long-running agent does not grow with every job and host it saw.
    if (max_per_host_.size() >= kHostsKept && !max_per_host_.count(ticket.host)) {
      std::erase_if(max_per_host_, [this](const auto& item) { return !running_per_host_.count(item.first); });
    }
    max_per_host_[ticket.host] = std::max(max_per_host_[ticket.host], on_host);
    running_hosts_[ticket.job_id] = ticket.host;
    if (start_order_.size() >= kStartOrderKept)
      start_order_.erase(start_order_.begin(), start_order_.begin() + kStartOrderKept / 2);
    start_order_.push_back(ticket.job_id);
    max_admitted_ = std::max(max_admitted_, running_ + fetching_);
    net::co_spawn(executor_, run_ticket(std::move(ticket)), net::detached);
  }
  while (accepting_ && !unplaced_.empty() && running_ + fetching_ < limits_.global &&
         static_cast<int>(queue_.size()) + fetching_ < limits_.global) {
    Unplaced job = std::move(unplaced_.begin()->second);
    unplaced_.erase(unplaced_.begin());
    ++fetching_;
    max_fetching_ = std::max(max_fetching_, fetching_);
    max_admitted_ = std::max(max_admitted_, running_ + fetching_);
    net::co_spawn(executor_, run_fetch(std::move(job)), net::detached);
  }
}

net::awaitable<void> Scheduler::run_fetch(Unplaced job) {
  std::optional<Placement> placement;
  try {
    placement = co_await job.fetch();
  } catch (const std::exception& e) {
    logger("agent")->error("job {}: preparing it ended with an internal error: {}", job.job_id, e.what());
  }
  --fetching_;
  if (placement && accepting_) {
    enqueue(Ticket{job.job_id, std::move(placement->host), placement->priority, std::move(placement->work)});
  } else {
    busy_.erase(job.job_id);
  }
  idle_.cancel();
  dispatch();
}

net::awaitable<void> Scheduler::run_ticket(Ticket ticket) {
  try {
    co_await ticket.work();
  } catch (const std::exception& e) {
    // Jobs report their own failures; this is a bug guard so one job cannot take the agent down.
    logger("agent")->error("job {} ended with an internal error: {}", ticket.job_id, e.what());
  }
  // Explicit bookkeeping (not a destructor): a job abandoned at exit never touches the scheduler.
  --running_;
  if (--running_per_host_[ticket.host] <= 0) running_per_host_.erase(ticket.host);
  running_hosts_.erase(ticket.job_id);
  busy_.erase(ticket.job_id);
  idle_.cancel();
  dispatch();
}

net::awaitable<bool> Scheduler::drain(std::chrono::steady_clock::duration grace) {
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (running_ > 0 || fetching_ > 0 || !queue_.empty()) {
    if (std::chrono::steady_clock::now() >= deadline) co_return false;
    idle_.expires_at(deadline);
    co_await idle_.async_wait(net::as_tuple(net::use_awaitable));
  }
  co_return true;
}

}  // namespace wincert::agent
