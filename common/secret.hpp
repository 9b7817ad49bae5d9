// Secret: a password, token or key that must never reach a log line or an error message.
// It has no stream or fmt formatter on purpose, so `spdlog::info("{}", secret)` does not compile.
#pragma once

#include <openssl/crypto.h>

#include <string>
#include <utility>

namespace wincert {

class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}
  Secret(const Secret&) = default;
  Secret& operator=(const Secret&) = default;
  Secret(Secret&&) noexcept = default;
  Secret& operator=(Secret&&) noexcept = default;
  ~Secret() { OPENSSL_cleanse(value_.data(), value_.size()); }

  const std::string& reveal() const { return value_; }
  bool empty() const { return value_.empty(); }

 private:
  std::string value_;
};

}  // namespace wincert
