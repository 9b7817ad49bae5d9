// Result<T>: the value or the error a module returns across its border (no exceptions cross it).
//
// An Error carries three things: a canonical code a program acts on (retry, re-authenticate, give up),
// optional structured detail from the peer or the OS (HTTP status, WS-Man fault, Command error code, script
// category, Win32/SSPI/GSS status), and one line for people. No behaviour is decided by reading the line.
#pragma once

#include <cassert>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace wincert {

// The canonical codes (the gRPC/Abseil set, minus the ones this agent never needs).
enum class ErrorCode : std::uint8_t {
  kInvalidArgument,     // malformed data from a peer, a job or the configuration; names the field
  kNotFound,            // the store, certificate, site or instance does not exist
  kAlreadyExists,       // the alias is taken and overwrite was not asked for
  kPermissionDenied,    // authenticated, but not allowed (WinRM AccessDenied, ACLs, Command 403)
  kUnauthenticated,     // credentials refused (HTTP 401, Kerberos/NTLM failure, OAuth token refused)
  kUnavailable,         // refused, reset, DNS, 503, WinRM quota, a broken shell/runspace: transient
  kDeadlineExceeded,    // a timeout or the job's deadline
  kResourceExhausted,   // a size or count limit was hit, the disk is full
  kFailedPrecondition,  // the host is not in a state to do it (IIS missing, SQL instance stopped)
  kAborted,             // a concurrent change or session invalidation; the whole step may be redone
  kCancelled,           // the agent is stopping or the job was cancelled
  kInternal,            // a bug or an impossible state in the agent itself
};

// "unavailable", "not_found", ...: the name logs, metrics and `doctor --json` use.
constexpr std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kAlreadyExists:
      return "already_exists";
    case ErrorCode::kPermissionDenied:
      return "permission_denied";
    case ErrorCode::kUnauthenticated:
      return "unauthenticated";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kDeadlineExceeded:
      return "deadline_exceeded";
    case ErrorCode::kResourceExhausted:
      return "resource_exhausted";
    case ErrorCode::kFailedPrecondition:
      return "failed_precondition";
    case ErrorCode::kAborted:
      return "aborted";
    case ErrorCode::kCancelled:
      return "cancelled";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "internal";
}

// Transient codes are worth retrying (with backoff, within the job's deadline, for idempotent steps only).
constexpr bool is_transient(ErrorCode code) {
  return code == ErrorCode::kUnavailable || code == ErrorCode::kDeadlineExceeded ||
         code == ErrorCode::kResourceExhausted || code == ErrorCode::kAborted;
}

// Which family an OS/security status belongs to.
enum class SystemStatusKind : std::uint8_t { kNone, kWin32, kSspi, kGss, kErrno, kOpenSsl };

// Structured facts from the peer or the OS. Every field is optional; empty means "not known".
struct ErrorDetail {
  int http_status = 0;          // HTTP status of the reply that failed (0: none)
  std::string wsman_fault;      // WS-Man fault subcode, e.g. "w:QuotaLimit", or the WSManFault Code
  std::string command_code;     // Keyfactor Command error code, e.g. "A0100007"
  std::string script_category;  // the category a host script reported, e.g. "StoreNotFound"
  SystemStatusKind system_kind = SystemStatusKind::kNone;
  std::uint32_t system_status = 0;  // Win32 error, SECURITY_STATUS, GSS major status, errno

  bool empty() const {
    return http_status == 0 && wsman_fault.empty() && command_code.empty() && script_category.empty() &&
           system_kind == SystemStatusKind::kNone;
  }
};

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;  // one line a person can act on; never a secret
  ErrorDetail detail;

  // One factory per code: Error::not_found("store My on host h1 ...").
  static Error invalid_argument(std::string msg) { return make(ErrorCode::kInvalidArgument, std::move(msg)); }
  static Error not_found(std::string msg) { return make(ErrorCode::kNotFound, std::move(msg)); }
  static Error already_exists(std::string msg) { return make(ErrorCode::kAlreadyExists, std::move(msg)); }
  static Error permission_denied(std::string msg) { return make(ErrorCode::kPermissionDenied, std::move(msg)); }
  static Error unauthenticated(std::string msg) { return make(ErrorCode::kUnauthenticated, std::move(msg)); }
  static Error unavailable(std::string msg) { return make(ErrorCode::kUnavailable, std::move(msg)); }
  static Error deadline_exceeded(std::string msg) { return make(ErrorCode::kDeadlineExceeded, std::move(msg)); }
  static Error resource_exhausted(std::string msg) { return make(ErrorCode::kResourceExhausted, std::move(msg)); }
  static Error failed_precondition(std::string msg) { return make(ErrorCode::kFailedPrecondition, std::move(msg)); }
  static Error aborted(std::string msg) { return make(ErrorCode::kAborted, std::move(msg)); }
  static Error cancelled(std::string msg) { return make(ErrorCode::kCancelled, std::move(msg)); }
  static Error internal(std::string msg) { return make(ErrorCode::kInternal, std::move(msg)); }
  static Error make(ErrorCode code, std::string msg) { return Error{code, std::move(msg), {}}; }

  // Detail setters, chainable on a temporary: Error::unauthenticated(m).with_http_status(401).
  Error&& with_http_status(int status) && {
    detail.http_status = status;
    return std::move(*this);
  }
  Error&& with_wsman_fault(std::string fault) && {
    detail.wsman_fault = std::move(fault);
    return std::move(*this);
  }
  Error&& with_command_code(std::string c) && {
    detail.command_code = std::move(c);
    return std::move(*this);
  }
  Error&& with_script_category(std::string c) && {
    detail.script_category = std::move(c);
    return std::move(*this);
  }
  Error&& with_system_status(SystemStatusKind kind, std::uint32_t status) && {
    detail.system_kind = kind;
    detail.system_status = status;
    return std::move(*this);
  }

  bool retryable() const { return is_transient(code); }
  // Prefixes context ("on host X: ") while keeping the code and the detail.
  Error context(std::string_view prefix) const& { return {code, std::string(prefix) + message, detail}; }
  Error context(std::string_view prefix) && {
    message.insert(0, prefix);
    return std::move(*this);
  }
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const& {
    assert(!ok());
    return std::get<1>(v_);
  }
  Error&& error() && {
    assert(!ok());
    return std::get<1>(std::move(v_));
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT
  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const& {
    assert(!ok());
    return *error_;
  }
  Error&& error() && {
    assert(!ok());
    return std::move(*error_);
  }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;

}  // namespace wincert

// Early return of an error, parameterised by the return keyword so that coroutines can use it too
// (the way Abseil's status macros take theirs). Plain functions use WINCERT_TRY / WINCERT_ASSIGN_OR_RETURN,
// coroutines WINCERT_CO_TRY / WINCERT_CO_ASSIGN_OR_RETURN.
#define WINCERT_TRY_WITH_(return_keyword, expr)                                           \
  do {                                                                                    \
    auto&& wincert_try_result_ = (expr);                                                  \
    if (!wincert_try_result_.ok()) return_keyword std::move(wincert_try_result_).error(); \
  } while (0)

#define WINCERT_TRY(expr) WINCERT_TRY_WITH_(return, expr)
#define WINCERT_CO_TRY(expr) WINCERT_TRY_WITH_(co_return, expr)

#define WINCERT_CONCAT_INNER_(a, b) a##b
#define WINCERT_CONCAT_(a, b) WINCERT_CONCAT_INNER_(a, b)

// lhs may declare: WINCERT_ASSIGN_OR_RETURN(auto reply, client.send(...));
#define WINCERT_ASSIGN_OR_RETURN_WITH_(return_keyword, tmp, lhs, expr) \
  auto tmp = (expr);                                                   \
  if (!tmp.ok()) return_keyword std::move(tmp).error();                \
  lhs = std::move(tmp).value()

#define WINCERT_ASSIGN_OR_RETURN(lhs, expr) \
  WINCERT_ASSIGN_OR_RETURN_WITH_(return, WINCERT_CONCAT_(wincert_assign_, __LINE__), lhs, expr)
#define WINCERT_CO_ASSIGN_OR_RETURN(lhs, expr) \
  WINCERT_ASSIGN_OR_RETURN_WITH_(co_return, WINCERT_CONCAT_(wincert_assign_, __LINE__), lhs, expr)
