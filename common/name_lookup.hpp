// Name resolution with a deadline that really ends the wait. Asio's resolver runs getaddrinfo on one
// private thread per io_context: cancel() cannot interrupt a lookup already running, and every later
// lookup queues behind a slow one. Here each lookup runs on its own short-lived thread; when the deadline
// passes first the caller goes on at once and the late answer is dropped.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

namespace wincert {

struct NameLookup {
  boost::system::error_code error;  // set when the lookup failed (not on timeout)
  bool timed_out = false;           // the deadline passed first
  bool too_many = false;            // too many lookups still running (a stuck resolver): not started
  boost::asio::ip::tcp::resolver::results_type results;
};

// At most this many lookups run at once in the process; more fail at once (too_many).
inline constexpr std::size_t kMaxNameLookupsInFlight = 64;

// Resolves host:service; completes on the caller's executor by `timeout` at the latest.
boost::asio::awaitable<NameLookup> lookup_name(std::string host, std::string service,
                                               std::chrono::milliseconds timeout);

// Tests only: replaces the blocking lookup (getaddrinfo) run on the lookup thread; empty restores it.
using BlockingNameResolver = std::function<NameLookup(const std::string& host, const std::string& service)>;
void set_blocking_name_resolver_for_tests(BlockingNameResolver resolver);

}  // namespace wincert
