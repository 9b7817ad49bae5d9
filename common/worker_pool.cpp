#include "common/worker_pool.hpp"

#include <openssl/crypto.h>

#include <atomic>
#include <memory>

namespace wincert {
namespace {

std::atomic<std::size_t> configured_threads{kDefaultWorkerThreads};

}  // namespace

void configure_worker_threads(std::size_t threads) {
  configured_threads = threads == 0 ? kDefaultWorkerThreads : threads;
}

void release_worker_thread_state() noexcept { OPENSSL_thread_stop(); }

boost::asio::thread_pool& worker_pool() {
  // OpenSSL is initialised before the pool exists, so its exit handler runs after the pool is joined (exit
  // handlers and static destructors run in reverse order): the workers' thread-local OpenSSL state (the
  // error queue) is then freed as each worker ends, not left behind when the first OpenSSL use was on a worker.
  static const bool openssl_ready = OPENSSL_init_crypto(0, nullptr) == 1;
  (void)openssl_ready;
  // Function-local static: created on first use, thread-safe, stopped and joined at exit.
  static boost::asio::thread_pool pool(configured_threads.load());
  return pool;
}

}  // namespace wincert
