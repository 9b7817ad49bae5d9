// When a failed job is run again (issue 17, "the scheduler honours the code"): a transient failure
// (is_transient(code): unavailable, deadline_exceeded, resource_exhausted, aborted) is retried with
// exponential backoff and jitter, within the job's deadline (JobTimeoutSeconds), and only when redoing
// the job is safe; a permanent failure ends the job at once.
//
// The policy is pure (no clock, no randomness of its own) so that it is unit-tested alone; run_job
// supplies the time left and a random number, and does the waiting.
#pragma once

#include <chrono>
#include <string>

#include "common/result.hpp"

namespace wincert::jobs {

struct RetryOptions {
  int max_attempts = 4;  // attempts in all, the first one included; 1 never retries
  std::chrono::milliseconds base_delay{std::chrono::seconds(1)};  // the wait before the first retry (0.5-1 s)
  std::chrono::milliseconds max_delay{std::chrono::seconds(60)};  // no single wait is longer
};

enum class RetryVerdict {
  kRetry,              // wait `delay`, then run the job again
  kPermanent,          // the code is not transient: retrying cannot help
  kUnsafe,             // transient, but the failed step may already have changed the host
  kAttemptsExhausted,  // max_attempts reached
  kNoTimeLeft,         // the wait would end past the job's deadline
};
std::string_view retry_verdict_name(RetryVerdict verdict);

struct RetryDecision {
  RetryVerdict verdict = RetryVerdict::kPermanent;
  std::chrono::milliseconds delay{0};  // for kRetry
};

class RetryPolicy {
 public:
  explicit RetryPolicy(RetryOptions options = {});

  // The wait after `failed_attempts` failures (1 = before the second attempt): base * 2^(n-1), capped
  // at max_delay, then "equal jitter": a uniform pick in [half, whole] of it, `unit_random` in [0, 1).
  std::chrono::milliseconds backoff(int failed_attempts, double unit_random) const;

  // Whether to run the job again after attempt number `attempts_made` failed with `code`.
  // `safe_to_redo`: the job's steps so far may be redone (see JobHandler::idempotence()).
  // `time_left`: until the job's deadline.
  RetryDecision decide(ErrorCode code, bool safe_to_redo, int attempts_made,
                       std::chrono::steady_clock::duration time_left, double unit_random) const;

  const RetryOptions& options() const { return options_; }

 private:
  RetryOptions options_;
};

// True when the failure provably happened before the request reached the host: the connection was
// refused at connect (ECONNREFUSED / WSAECONNREFUSED in the error's system status). Such a failure
// of a host-changing step changed nothing and may be retried.
bool failed_before_reaching_host(const ErrorDetail& detail);

// A uniform number in [0, 1) for the jitter (per-thread generator, seeded once).
double retry_jitter_random();

// " (3 attempts)" when more than one attempt was made, else "".
std::string attempts_note(int attempts);

}  // namespace wincert::jobs
