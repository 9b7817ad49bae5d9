// Result<T>: the value or the error a module returns across its border (no exceptions cross it).
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace wincert {

// What kind of failure this is; it decides whether a caller should retry.
enum class ErrorKind {
  kTransient,     // connection refused/reset, timeout, 503, WinRM quota: retry with backoff
  kPermanent,     // bad password, store missing, bad PFX: fail the job now
  kInvalidInput,  // malformed data from a peer or a job: permanent, names the field or the byte
};

struct Error {
  ErrorKind kind = ErrorKind::kPermanent;
  std::string message;  // one line a person can act on; never a secret

  static Error transient(std::string msg) { return {ErrorKind::kTransient, std::move(msg)}; }
  static Error permanent(std::string msg) { return {ErrorKind::kPermanent, std::move(msg)}; }
  static Error invalid(std::string msg) { return {ErrorKind::kInvalidInput, std::move(msg)}; }

  bool retryable() const { return kind == ErrorKind::kTransient; }
  // Prefixes context ("on host X: ") while keeping the kind.
  Error context(std::string_view prefix) const& { return {kind, std::string(prefix) + message}; }
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { assert(!ok_); return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace wincert

// Early return of an error from a Result-returning function.
#define WINCERT_TRY(expr)                                  \
  do {                                                     \
    auto&& wincert_try_result_ = (expr);                   \
    if (!wincert_try_result_.ok()) return wincert_try_result_.error(); \
  } while (0)
