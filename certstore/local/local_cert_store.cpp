#include "certstore/local/local_cert_store.hpp"

#include "certstore/local/operations.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <optional>
#include <utility>

namespace wincert::certstore::local {
namespace {

// Runs work on the worker thread and completes on the caller's executor. Only the plain blocking call
// runs on the worker; no coroutine frame ever moves between threads. The value travels in an optional
// because completion values must be default-constructible, and Result<T> is not.
template <typename T, typename Work>
Task<T> on_worker(boost::asio::thread_pool& worker, Work work) {
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
  if (!result) co_return Error::permanent("the local certificate store worker returned nothing");
  co_return std::move(*result);
}

}  // namespace

LocalCertStore::LocalCertStore() : worker_(std::make_unique<boost::asio::thread_pool>(1)) {}

LocalCertStore::~LocalCertStore() { worker_->join(); }

Task<StoreInventory> LocalCertStore::inventory(std::string store) {
  return on_worker<StoreInventory>(*worker_, [store = std::move(store)] { return inventory_now(store); });
}

Task<AddCertificateResult> LocalCertStore::add(AddCertificateRequest request) {
  return on_worker<AddCertificateResult>(*worker_, [request = std::move(request)] { return add_now(request); });
}

Task<RemoveResult> LocalCertStore::remove(std::string store, std::string thumbprint) {
  return on_worker<RemoveResult>(*worker_, [store = std::move(store), thumbprint = std::move(thumbprint)] {
    return remove_now(store, thumbprint);
  });
}

Task<CsrResult> LocalCertStore::create_csr(CsrRequest request) {
  return on_worker<CsrResult>(*worker_, [request = std::move(request)] { return create_csr_now(request); });
}

Task<InstallIssuedResult> LocalCertStore::install_issued(InstallIssuedRequest request) {
  return on_worker<InstallIssuedResult>(*worker_,
                                        [request = std::move(request)] { return install_issued_now(request); });
}

}  // namespace wincert::certstore::local
