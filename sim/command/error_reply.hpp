// The one place command-sim turns an ErrorCode into what it sends: the HTTP status an ASP.NET API answers
// a failed request with (the usual mapping of the canonical codes). Replies about Command's own states
// (invalid session, unknown job, CSR rejected) carry their Command codes where they are decided.
#pragma once

#include "common/http_status.hpp"
#include "common/result.hpp"
#include "sim/command/http_types.hpp"

namespace wincert::sim::command {

constexpr unsigned http_status_for(ErrorCode code) { return wincert::http::status_for_code(code); }

// {"Message": text} with the status of the error's code (the admin API's error shape).
inline HttpReply error_reply(const Error& error) {
  return HttpReply::message(http_status_for(error.code), error.message);
}

}  // namespace wincert::sim::command
