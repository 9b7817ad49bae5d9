// GoogleTest matchers for Result/Error: tests assert codes and structured detail, not message text.
//   EXPECT_THAT(reply, IsOk());
//   EXPECT_THAT(reply, HasCode(ErrorCode::kUnauthenticated));
//   EXPECT_THAT(reply, ErrorWith(ErrorCode::kUnavailable, HttpStatus(503)));
//   EXPECT_THAT(reply.error(), HasCode(ErrorCode::kNotFound));
// Message checks stay only where the message itself is the behaviour (what a person reads).
#pragma once

#include <gmock/gmock.h>

#include <ostream>

#include "common/result.hpp"

namespace wincert {

inline void PrintTo(ErrorCode code, std::ostream* os) { *os << error_code_name(code); }
inline void PrintTo(const Error& e, std::ostream* os) {
  *os << error_code_name(e.code) << ": " << e.message;
  if (e.detail.http_status) *os << " [http " << e.detail.http_status << "]";
  if (!e.detail.wsman_fault.empty()) *os << " [wsman " << e.detail.wsman_fault << "]";
  if (!e.detail.command_code.empty()) *os << " [command " << e.detail.command_code << "]";
  if (!e.detail.script_category.empty()) *os << " [script " << e.detail.script_category << "]";
  if (e.detail.system_kind != SystemStatusKind::kNone) *os << " [status " << e.detail.system_status << "]";
}
template <typename T>
void PrintTo(const Result<T>& r, std::ostream* os) {
  if (r.ok()) {
    *os << "ok";
  } else {
    PrintTo(r.error(), os);
  }
}

namespace result_matchers_internal {
template <typename T>
const Error* error_of(const Result<T>& r) {
  return r.ok() ? nullptr : &r.error();
}
inline const Error* error_of(const Error& e) { return &e; }
}  // namespace result_matchers_internal

MATCHER(IsOk, "is ok") { return arg.ok(); }

// Matches a failed Result, or an Error, with the code.
MATCHER_P(HasCode, code, std::string("fails with ") + std::string(error_code_name(code))) {
  const Error* e = result_matchers_internal::error_of(arg);
  if (!e) {
    *result_listener << "which is ok";
    return false;
  }
  *result_listener << "whose code is " << error_code_name(e->code) << " (" << e->message << ")";
  return e->code == code;
}

// Matches a failed Result, or an Error, with the code and a matcher on its ErrorDetail.
MATCHER_P2(ErrorWith, code, detail_matcher,
           std::string("fails with ") + std::string(error_code_name(code)) + " and detail that " +
               ::testing::DescribeMatcher<ErrorDetail>(detail_matcher)) {
  const Error* e = result_matchers_internal::error_of(arg);
  if (!e) {
    *result_listener << "which is ok";
    return false;
  }
  *result_listener << "whose code is " << error_code_name(e->code) << " (" << e->message << ")";
  return e->code == code && ::testing::ExplainMatchResult(detail_matcher, e->detail, result_listener);
}

MATCHER(IsRetryable, "fails with a transient (retryable) code") {
  const Error* e = result_matchers_internal::error_of(arg);
  return e && e->retryable();
}

// Detail matchers (for ErrorWith).
inline auto HttpStatus(int status) { return ::testing::Field(&ErrorDetail::http_status, status); }
inline auto WsmanFault(std::string fault) { return ::testing::Field(&ErrorDetail::wsman_fault, fault); }
inline auto CommandCode(std::string c) { return ::testing::Field(&ErrorDetail::command_code, c); }
inline auto ScriptCategory(std::string c) { return ::testing::Field(&ErrorDetail::script_category, c); }
inline auto SystemStatus(SystemStatusKind kind, std::uint32_t status) {
  return ::testing::AllOf(::testing::Field(&ErrorDetail::system_kind, kind),
                          ::testing::Field(&ErrorDetail::system_status, status));
}

}  // namespace wincert
