// Paths of the helper programs the tests start (fake_powershell.exe, sql_test_service.exe).
#pragma once

#include "common/win32_text.hpp"

#include <windows.h>

#include <string>

namespace wincert::certstore::local::testing {

// CMake hands over the Linux path of a test program; Windows APIs (CreateProcessW, the SCM) want a drive
// path: under Wine the Z: drive, on Windows the path is one already.
inline std::string windows_path(const std::string& path) {
  const std::wstring wide = widen(path);
  wchar_t full[MAX_PATH] = {};
  const DWORD length = GetFullPathNameW(wide.c_str(), MAX_PATH, full, nullptr);
  return length > 0 && length < MAX_PATH ? narrow(std::wstring_view(full, length)) : path;
}

}  // namespace wincert::certstore::local::testing
