// Coded errors for failed Win32 / CryptoAPI / CNG calls on this machine: the message as a person reads it
// ("<what failed>: <call> failed: 0x... NAME: text"), the code from the status (certstore/win32_status.hpp)
// and the status in the detail (SystemStatusKind::kWin32).
#pragma once

#include "certstore/win32_status.hpp"
#include "common/win32_text.hpp"

#include <string>
#include <string_view>
#include <utility>

namespace wincert::certstore::local {

// prefix + "<call> failed: <status text>", coded from `status`.
inline Error win32_call_error(std::string prefix, std::string_view call, DWORD status,
                              ErrorCode otherwise = ErrorCode::kFailedPrecondition) {
  return win32_status_error(status, std::move(prefix) + call_failed(call, status), otherwise);
}

// The same for GetLastError() right after the failing call.
inline Error last_win32_error(std::string prefix, std::string_view call,
                              ErrorCode otherwise = ErrorCode::kFailedPrecondition) {
  const DWORD status = GetLastError();
  return win32_call_error(std::move(prefix), call, status, otherwise);
}

}  // namespace wincert::certstore::local
