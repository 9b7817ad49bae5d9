#include "common/name_lookup.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <charconv>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

namespace wincert {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

std::atomic<std::size_t> lookups_in_flight{0};

std::mutex test_resolver_mutex;
BlockingNameResolver test_resolver;

NameLookup blocking_lookup(const std::string& host, const std::string& service) {
  BlockingNameResolver replaced;
  {
    std::lock_guard lock(test_resolver_mutex);
    replaced = test_resolver;
  }
  if (replaced) return replaced(host, service);
  net::io_context private_context;  // a synchronous resolve calls getaddrinfo on this thread
  tcp::resolver resolver(private_context);
  NameLookup outcome;
  outcome.results = resolver.resolve(host, service, outcome.error);
  return outcome;
}

// Tells lookup threads whether the caller's execution context still exists: its shutdown() runs when the
// io_context is destroyed, after which a late answer must not be posted there.
class LookupGate : public net::execution_context::service {
 public:
  using key_type = LookupGate;
  static inline net::execution_context::id id;

  struct State {
    std::mutex mutex;
    bool open = true;
  };

  explicit LookupGate(net::execution_context& context) : net::execution_context::service(context) {}
  std::shared_ptr<State> state() const { return state_; }

 private:
  void shutdown() override {
    std::lock_guard lock(state_->mutex);
    state_->open = false;
  }
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

// One lookup's rendezvous between the deadline and the lookup thread; whichever comes first wakes the caller.
struct Rendezvous {
  std::mutex mutex;
  bool done = false;
  std::optional<NameLookup> outcome;
};

}  // namespace

void set_blocking_name_resolver_for_tests(BlockingNameResolver resolver) {
  std::lock_guard lock(test_resolver_mutex);
  test_resolver = std::move(resolver);
}

net::awaitable<NameLookup> lookup_name(std::string host, std::string service, std::chrono::milliseconds timeout) {
  auto executor = co_await net::this_coro::executor;
  // An IP literal with a numeric port needs no resolver, and so no thread (loopback and most WinRM endpoints).
  boost::system::error_code not_literal;
  const auto address = net::ip::make_address(host, not_literal);
  unsigned port = 0;
  const auto [end, parse_error] = std::from_chars(service.data(), service.data() + service.size(), port);
  if (!not_literal && parse_error == std::errc() && end == service.data() + service.size() && port <= 65535) {
    NameLookup literal;
    literal.results =
        tcp::resolver::results_type::create(tcp::endpoint(address, static_cast<unsigned short>(port)), host, service);
    co_return literal;
  }
  if (lookups_in_flight.load() >= kMaxNameLookupsInFlight) {
    NameLookup refused;
    refused.too_many = true;
    co_return refused;
  }
  auto& context = net::query(executor, net::execution::context);
  auto gate = net::use_service<LookupGate>(context).state();
  auto rendezvous = std::make_shared<Rendezvous>();
  auto deadline = std::make_shared<net::steady_timer>(executor);
  deadline->expires_after(timeout);

  ++lookups_in_flight;
  // The thread never owns the timer: it may outlive the io_context the timer belongs to.
  std::weak_ptr<net::steady_timer> wake = deadline;
  std::thread([host, service, executor, gate, rendezvous, wake]() {
    NameLookup outcome = blocking_lookup(host, service);
    --lookups_in_flight;
    {
      std::lock_guard lock(rendezvous->mutex);
      if (rendezvous->done) return;  // the deadline won: drop the late answer
      rendezvous->done = true;
      rendezvous->outcome = std::move(outcome);
    }
    std::lock_guard lock(gate->mutex);
    if (!gate->open) return;
    // Wake the caller: cancelling the deadline's wait on its own executor (timers are not thread-safe).
    net::post(executor, [wake] {
      if (auto timer = wake.lock()) timer->cancel();
    });
  }).detach();

  co_await deadline->async_wait(net::as_tuple(net::use_awaitable));
  std::lock_guard lock(rendezvous->mutex);
  if (!rendezvous->done) {
    rendezvous->done = true;
    NameLookup late;
    late.timed_out = true;
    co_return late;
  }
  co_return std::move(*rendezvous->outcome);
}

}  // namespace wincert
