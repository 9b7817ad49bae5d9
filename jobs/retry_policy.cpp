#include "jobs/retry_policy.hpp"

#include <algorithm>
#include <cerrno>
#include <random>

namespace wincert::jobs {

namespace {
constexpr std::uint32_t kWsaConnectionRefused = 10061;  // WSAECONNREFUSED
}  // namespace

std::string_view retry_verdict_name(RetryVerdict verdict) {
  switch (verdict) {
    case RetryVerdict::kRetry:
      return "retry";
    case RetryVerdict::kPermanent:
      return "permanent";
    case RetryVerdict::kUnsafe:
      return "unsafe";
    case RetryVerdict::kAttemptsExhausted:
      return "attempts_exhausted";
    case RetryVerdict::kNoTimeLeft:
      return "no_time_left";
  }
  return "permanent";
}

RetryPolicy::RetryPolicy(RetryOptions options) : options_(options) {
  options_.max_attempts = std::max(options_.max_attempts, 1);
  options_.base_delay = std::max(options_.base_delay, std::chrono::milliseconds(0));
  options_.max_delay = std::max(options_.max_delay, options_.base_delay);
}

std::chrono::milliseconds RetryPolicy::backoff(int failed_attempts, double unit_random) const {
  using std::chrono::milliseconds;
  const long long cap = options_.max_delay.count();
  long long delay = options_.base_delay.count();
  for (int i = 1; i < failed_attempts && delay < cap; ++i) delay *= 2;
  delay = std::min(delay, cap);
  const double pick = std::clamp(unit_random, 0.0, 1.0);
  const long long half = delay / 2;
  return milliseconds(half + static_cast<long long>(static_cast<double>(delay - half) * pick));
}

RetryDecision RetryPolicy::decide(ErrorCode code, bool safe_to_redo, int attempts_made,
                                  std::chrono::steady_clock::duration time_left, double unit_random) const {
  if (!is_transient(code)) return {RetryVerdict::kPermanent, {}};
  if (!safe_to_redo) return {RetryVerdict::kUnsafe, {}};
  if (attempts_made >= options_.max_attempts) return {RetryVerdict::kAttemptsExhausted, {}};
  const auto delay = backoff(attempts_made, unit_random);
  // The wait must leave the next attempt some time before the deadline, not end on it.
  if (time_left <= delay) return {RetryVerdict::kNoTimeLeft, {}};
  return {RetryVerdict::kRetry, delay};
}

bool failed_before_reaching_host(const ErrorDetail& detail) {
  if (detail.system_kind == SystemStatusKind::kErrno)
    return detail.system_status == static_cast<std::uint32_t>(ECONNREFUSED);
  if (detail.system_kind == SystemStatusKind::kWin32) return detail.system_status == kWsaConnectionRefused;
  return false;
}

double retry_jitter_random() {
  thread_local std::mt19937 generator{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(generator);
}

std::string attempts_note(int attempts) {
  if (attempts <= 1) return {};
  return " (" + std::to_string(attempts) + " attempts)";
}

}  // namespace wincert::jobs
