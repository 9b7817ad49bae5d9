// The overall deadline of one job: whatever a job waits on (hosts, Command, workers), it ends by then
// with a clear failure instead of holding a scheduler slot (and its host's) for ever.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <string>

#include "jobs/job_result.hpp"

namespace wincert::agent {

inline constexpr std::chrono::seconds kDefaultJobTimeout{3600};

// Runs `job`; past `limit` it is cancelled (its network operations end, see below) and a failure
// "job <id> did not finish within <limit> (JobTimeoutSeconds) and was stopped" comes back with code
// deadline_exceeded (retryable). Cancellation reaches every pending socket/timer operation of the job's coroutine; work
// already on a worker thread (a PFX being opened) finishes first, bounded by its own limits.
boost::asio::awaitable<jobs::JobResult> run_with_deadline(boost::asio::awaitable<jobs::JobResult> job,
                                                          std::chrono::seconds limit, std::string job_id,
                                                          std::int64_t history_id);

}  // namespace wincert::agent
