// Text at the Win32 boundary: UTF-8 <-> UTF-16 (UTF-16 lives only at the call site), and Win32 /
// HRESULT / SECURITY_STATUS codes as text a person can act on ("0x80090016 NTE_BAD_KEYSET: Keyset does
// not exist").
#pragma once

#include <windows.h>

#include <string>
#include <string_view>

namespace wincert {

std::wstring widen(std::string_view utf8);
std::string narrow(std::wstring_view utf16);
std::string narrow(const wchar_t* utf16);  // nullptr -> ""

// The code in hex, its symbolic name when it is one of the codes our Win32 call sites meet, and the system's
// message for it when Windows has one.
std::string error_text(DWORD code);
// "<call> failed: <error_text>"
std::string call_failed(std::string_view call, DWORD code);
// GetLastError() right after the failing call, as call_failed() text.
std::string last_error(std::string_view call);

}  // namespace wincert
