#include "common/worker_pool.hpp"

#include <atomic>
#include <memory>

namespace wincert {
namespace {

std::atomic<std::size_t> configured_threads{kDefaultWorkerThreads};

}  // namespace

void configure_worker_threads(std::size_t threads) {
  configured_threads = threads == 0 ? kDefaultWorkerThreads : threads;
}

boost::asio::thread_pool& worker_pool() {
  // Function-local static: created on first use, thread-safe, stopped and joined at exit.
  static boost::asio::thread_pool pool(configured_threads.load());
  return pool;
}

}  // namespace wincert
