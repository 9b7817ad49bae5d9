// The coroutines the agent waits for at shutdown: its loops, each job's preparation and each job run.
// Bookkeeping is explicit (not a destructor) so a coroutine destroyed with the io_context never touches
// the agent. Not thread-safe: used on the agent's executor only.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <string>

namespace wincert::agent {

class TaskGroup {
 public:
  explicit TaskGroup(boost::asio::any_io_executor executor);

  // Starts `task` detached; an exception it throws is logged as an internal error of `name`.
  void spawn(boost::asio::awaitable<void> task, std::string name);
  // For a coroutine started elsewhere (the Scheduler runs jobs): counted all the same.
  void enter() { ++count_; }
  void leave();

  int count() const { return count_; }
  // Waits until every task ended or `deadline` passed.
  boost::asio::awaitable<void> wait_until(std::chrono::steady_clock::time_point deadline);

 private:
  boost::asio::awaitable<void> wrap(boost::asio::awaitable<void> task, std::string name);

  boost::asio::any_io_executor executor_;
  int count_ = 0;
  boost::asio::steady_timer done_;  // cancelled whenever a task ends
};

// Test hook for the kill -9 end-to-end scenario (tests/e2e/scenarios.py kill_steps): with
// WINCERT_TEST_KILL_AT=<step> in its environment the agent kills itself with SIGKILL when a job reaches
// that step, which an outside `kill -9` can only hit by luck. Steps: after-fetch (configuration
// received), after-host-change (the job ran, its result not stored yet), after-outbox-write (result
// stored, not sent), during-delivery (Command acknowledged the completion, the outbox entry not yet
// removed). Compiled in only with WINCERT_TEST_HOOKS (builds with tests, agent/CMakeLists.txt); a
// release build without tests ignores the variable.
void test_kill_point(std::string_view step);

}  // namespace wincert::agent
