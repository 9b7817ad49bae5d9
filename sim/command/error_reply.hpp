// The one place command-sim turns an ErrorCode into what it sends: the HTTP status an ASP.NET API answers
// a failed request with (the usual mapping of the canonical codes). Replies about Command's own states
// (invalid session, unknown job, CSR rejected) carry their Command codes where they are decided.
#pragma once

#include "common/result.hpp"
#include "sim/command/http_types.hpp"

namespace wincert::sim::command {

constexpr unsigned http_status_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kFailedPrecondition:
      return 400;
    case ErrorCode::kUnauthenticated:
      return 401;
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kAlreadyExists:
      return 409;
    case ErrorCode::kAborted:
      return 409;
    case ErrorCode::kResourceExhausted:
      return 429;
    case ErrorCode::kInternal:
      return 500;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kCancelled:
      return 503;
    case ErrorCode::kDeadlineExceeded:
      return 504;
  }
  return 500;
}

// {"Message": text} with the status of the error's code (the admin API's error shape).
inline HttpReply error_reply(const Error& error) {
  return HttpReply::message(http_status_for(error.code), error.message);
}

}  // namespace wincert::sim::command
