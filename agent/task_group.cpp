#include "agent/task_group.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#ifndef _WIN32
#include <signal.h>
#include <unistd.h>
#endif

#include <cstdlib>
#include <exception>

#include "common/log.hpp"

namespace wincert::agent {

namespace net = boost::asio;

TaskGroup::TaskGroup(net::any_io_executor executor) : executor_(executor), done_(executor) {}

void TaskGroup::spawn(net::awaitable<void> task, std::string name) {
  ++count_;
  net::co_spawn(executor_, wrap(std::move(task), std::move(name)), net::detached);
}

void TaskGroup::leave() {
  --count_;
  done_.cancel();
}

net::awaitable<void> TaskGroup::wrap(net::awaitable<void> task, std::string name) {
  try {
    co_await std::move(task);
  } catch (const std::exception& e) {
    logger("agent")->error("internal error in {}: {}", name, e.what());
  }
  leave();
}

net::awaitable<void> TaskGroup::wait_until(std::chrono::steady_clock::time_point deadline) {
  while (count_ > 0 && std::chrono::steady_clock::now() < deadline) {
    done_.expires_at(deadline);
    co_await done_.async_wait(net::as_tuple(net::use_awaitable));
  }
}

void test_kill_point([[maybe_unused]] std::string_view step) {
#ifdef WINCERT_TEST_HOOKS
  static const char* const kill_at = std::getenv("WINCERT_TEST_KILL_AT");
  if (kill_at == nullptr || step != kill_at) return;
  logger("agent")->warn("test hook: killing the agent at step {} (WINCERT_TEST_KILL_AT)", step);
  logger("agent")->flush();
#ifdef _WIN32
  std::_Exit(137);
#else
  ::kill(::getpid(), SIGKILL);
#endif
#endif  // WINCERT_TEST_HOOKS
}

}  // namespace wincert::agent
