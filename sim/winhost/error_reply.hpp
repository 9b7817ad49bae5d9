// The one place winhost-sim turns an ErrorCode into what a Windows host sends. Two layers meet a client:
// HTTP.sys, before the SOAP layer (a body that cannot be unwrapped), and WS-Management (a request that
// cannot be parsed). Faults about the sim's own state (shell not found, quota, timeout) are built where
// they are decided, with the texts of soap.hpp.
#pragma once

#include "common/result.hpp"
#include "sim/winhost/soap.hpp"

namespace wincert::sim {

// The HTTP status for a request refused before WS-Management sees it. Windows answers 400 to a body it
// cannot decrypt or will not accept unencrypted (both kInvalidArgument here).
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
      return 503;
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

// The WS-Man fault for a request the service cannot process: a request it cannot read is
// w:SchemaValidationError (what Windows sends for a missing or invalid element), a timeout w:TimedOut.
inline Fault wsman_fault_for(const Error& error) {
  if (error.code == ErrorCode::kDeadlineExceeded) return timed_out_fault();
  return schema_validation_fault(error.message);
}

}  // namespace wincert::sim
