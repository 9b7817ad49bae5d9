// An async mutex for coroutines: a channel with room for one token; holding the token = holding the
// lock. Waiters queue in FIFO order without blocking a thread.
#pragma once

#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace wincert::winrm {

class AsyncLock {
 public:
  explicit AsyncLock(const boost::asio::any_io_executor& executor) : channel_(executor, 1) {}

  class Guard {
   public:
    explicit Guard(AsyncLock* lock) : lock_(lock) {}
    Guard(Guard&& other) noexcept : lock_(std::exchange(other.lock_, nullptr)) {}
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    Guard& operator=(Guard&&) = delete;
    ~Guard() {
      if (lock_ != nullptr) lock_->channel_.try_receive([](boost::system::error_code) {});
    }
    // False when the wait was cancelled (the lock is not held then).
    bool locked() const { return lock_ != nullptr; }

   private:
    AsyncLock* lock_;
  };

  boost::asio::awaitable<Guard> acquire() {
    auto [ec] =
        co_await channel_.async_send(boost::system::error_code{}, boost::asio::as_tuple(boost::asio::use_awaitable));
    co_return Guard(ec ? nullptr : this);
  }

 private:
  boost::asio::experimental::concurrent_channel<void(boost::system::error_code)> channel_;
};

}  // namespace wincert::winrm
