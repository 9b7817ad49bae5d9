// HTTP statuses and canonical error codes, both ways, for every HTTP peer and server of the project: what a
// client makes of a status it did not expect, and what a server (the simulators) answers for a failed request.
#pragma once

#include "common/result.hpp"

namespace wincert::http {

// The code of an HTTP status a caller did not expect (401 unauthenticated, 403 permission denied, 404 not found,
// 408/504 deadline exceeded, 429 resource exhausted, other 5xx unavailable, anything else failed precondition).
constexpr ErrorCode code_for_status(unsigned status) {
  switch (status) {
    case 401:
      return ErrorCode::kUnauthenticated;
    case 403:
      return ErrorCode::kPermissionDenied;
    case 404:
      return ErrorCode::kNotFound;
    case 408:
    case 504:
      return ErrorCode::kDeadlineExceeded;
    case 429:
      return ErrorCode::kResourceExhausted;
    default:
      return status >= 500 ? ErrorCode::kUnavailable : ErrorCode::kFailedPrecondition;
  }
}

// The status a server answers a request that failed with `code` (the usual mapping of the canonical codes).
constexpr unsigned status_for_code(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kFailedPrecondition:
      return 400;
    case ErrorCode::kUnauthenticated:
      return 401;
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kAborted:
      return 409;
    case ErrorCode::kResourceExhausted:
      return 429;
    case ErrorCode::kInternal:
      return 500;
    case ErrorCode::kUnavailable:
    case ErrorCode::kCancelled:
      return 503;
    case ErrorCode::kDeadlineExceeded:
      return 504;
  }
  return 500;
}

}  // namespace wincert::http
