// The process's worker threads, for work that must not run on an I/O thread: CPU-heavy crypto (PKCS#12
// key derivation, key generation) and calls that can block (GSSAPI talking to a KDC, getaddrinfo).
// A coroutine awaits run_on_worker(fn): fn runs on a worker, the coroutine resumes on its own executor,
// and the I/O thread keeps serving heartbeats and other jobs meanwhile.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstddef>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace wincert {

inline constexpr std::size_t kDefaultWorkerThreads = 2;

// Sets the number of worker threads; only before the first use of worker_pool() (later calls are ignored).
void configure_worker_threads(std::size_t threads);
// The pool, created on first use; joined at process exit.
boost::asio::thread_pool& worker_pool();

// Called on a worker after each task: frees the thread's OpenSSL state (its error queue), which OpenSSL
// would otherwise keep until the thread ends; the pool's threads live until exit.
void release_worker_thread_state() noexcept;

// Runs fn() on the worker pool and returns its result to the awaiting coroutine, resumed on the
// coroutine's own executor. fn must not touch objects that the I/O thread changes meanwhile; the
// coroutine stays suspended, so what it owns (its locals, its arguments) is fn's to use.
template <class F>
boost::asio::awaitable<std::invoke_result_t<F&>> run_on_worker(F fn) {
  namespace net = boost::asio;
  using R = std::invoke_result_t<F&>;
  auto home = co_await net::this_coro::executor;
  std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> result;
  std::exception_ptr failure;
  co_await net::async_initiate<decltype(net::use_awaitable), void()>(
      [&](auto handler) {
        // Keeps the caller's io_context from running out of work while fn runs elsewhere.
        auto work = net::make_work_guard(home);
        net::post(worker_pool(), [&, handler = std::move(handler), work = std::move(work)]() mutable {
          try {
            if constexpr (std::is_void_v<R>) {
              fn();
              result.emplace(true);
            } else {
              result.emplace(fn());
            }
          } catch (...) {
            failure = std::current_exception();
          }
          release_worker_thread_state();
          auto resume_on = work.get_executor();
          net::post(resume_on, std::move(handler));
          work.reset();
        });
      },
      net::use_awaitable);
  if (failure) std::rethrow_exception(failure);
  if constexpr (!std::is_void_v<R>) co_return std::move(*result);
}

}  // namespace wincert
