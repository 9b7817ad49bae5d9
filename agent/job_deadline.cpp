#include "agent/job_deadline.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <variant>

#include "common/text.hpp"

namespace wincert::agent {

namespace net = boost::asio;
using namespace net::experimental::awaitable_operators;

net::awaitable<jobs::JobResult> run_with_deadline(net::awaitable<jobs::JobResult> job, std::chrono::seconds limit,
                                                  std::string job_id, std::int64_t history_id) {
  net::steady_timer deadline(co_await net::this_coro::executor);
  deadline.expires_after(limit);
  auto expiry = deadline.async_wait(net::as_tuple(net::use_awaitable));
  // The first to finish wins; the other is cancelled and awaited.
  std::variant<jobs::JobResult, std::tuple<boost::system::error_code>> outcome =
      co_await (std::move(job) || std::move(expiry));
  if (outcome.index() == 0) co_return std::get<0>(std::move(outcome));
  const Error stopped =
      Error::deadline_exceeded("job " + job_id + " did not finish within " +
                               duration_text(std::chrono::duration_cast<std::chrono::milliseconds>(limit)) +
                               " (JobTimeoutSeconds) and was stopped");
  co_return jobs::JobResult::failure(history_id, stopped.message, stopped);
}

}  // namespace wincert::agent
