// The one place winhost-sim turns an ErrorCode into what a Windows host sends. Two layers meet a client:
// HTTP.sys, before the SOAP layer (a body that cannot be unwrapped), and WS-Management (a request that
// cannot be parsed). Faults about the sim's own state (shell not found, quota, timeout) are built where
// they are decided, with the texts of soap.hpp.
#pragma once

#include "common/http_status.hpp"
#include "common/result.hpp"
#include "sim/winhost/soap.hpp"

namespace wincert::sim {

// The HTTP status for a request refused before WS-Management sees it. Windows answers 400 to a body it
// cannot decrypt or will not accept unencrypted (both kInvalidArgument here).
// HTTP.sys has no 429: a request refused for want of resources is 503 there.
constexpr unsigned http_status_for(ErrorCode code) {
  return code == ErrorCode::kResourceExhausted ? 503 : wincert::http::status_for_code(code);
}

// The WS-Man fault for a request the service cannot process: a request it cannot read is
// w:SchemaValidationError (what Windows sends for a missing or invalid element), a timeout w:TimedOut.
inline Fault wsman_fault_for(const Error& error) {
  if (error.code == ErrorCode::kDeadlineExceeded) return timed_out_fault();
  return schema_validation_fault(error.message);
}

}  // namespace wincert::sim
