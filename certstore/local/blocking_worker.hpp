// Runs a blocking Win32 call on a worker thread and completes on the caller's executor, so CryptoAPI,
// registry, SCM and child-process waits never stall the agent's network work. Used by the local SQL
// Server bindings, the local PowerShell runner and LocalCertStore.
#pragma once

#include "certstore/cert_store.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <optional>
#include <utility>

namespace wincert::certstore::local {

// Only the plain blocking call runs on the worker; no coroutine frame moves between threads. The value
// travels in an optional because completion values must be default-constructible, and Result<T> is not.
template <typename T, typename Work>
Task<T> run_on_worker(boost::asio::thread_pool& worker, Work work) {
  std::optional<Result<T>> result =
      co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void(std::optional<Result<T>>)>(
          [&worker](auto handler, Work blocking) {
            // Keeps the caller's executor alive (its io_context running) until the result is back.
            auto caller = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler));
            boost::asio::post(worker, [handler = std::move(handler), blocking = std::move(blocking),
                                       caller = std::move(caller)]() mutable {
              std::optional<Result<T>> value(blocking());
              auto executor = caller.get_executor();
              boost::asio::post(executor,
                                [handler = std::move(handler), value = std::move(value),
                                 caller = std::move(caller)]() mutable { std::move(handler)(std::move(value)); });
            });
          },
          boost::asio::use_awaitable, std::move(work));
  if (!result) co_return Error::internal("the local worker thread returned nothing");
  co_return std::move(*result);
}

}  // namespace wincert::certstore::local
