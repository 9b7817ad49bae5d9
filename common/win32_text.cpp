#include "common/win32_text.hpp"

// Order matters (windows.h first): the NTE_/CRYPT_E_/SEC_E_ codes come from these.
#include <windows.h>

#include <wincrypt.h>

#include <ncrypt.h>

#include <winerror.h>

#include <array>
#include <cstdio>
#include <utility>

namespace wincert {
namespace {

// The codes the Win32 call sites meet; Wine has no message text for most NTE_/CRYPT_E_ codes, and the names
// are what people search for.
constexpr std::array<std::pair<DWORD, const char*>, 40> kNames{{
    {ERROR_FILE_NOT_FOUND, "ERROR_FILE_NOT_FOUND"},
    {ERROR_ACCESS_DENIED, "ERROR_ACCESS_DENIED"},
    {ERROR_INVALID_PARAMETER, "ERROR_INVALID_PARAMETER"},
    {ERROR_MORE_DATA, "ERROR_MORE_DATA"},
    {ERROR_NOT_SUPPORTED, "ERROR_NOT_SUPPORTED"},
    {ERROR_NO_MORE_ITEMS, "ERROR_NO_MORE_ITEMS"},
    {ERROR_SERVICE_DOES_NOT_EXIST, "ERROR_SERVICE_DOES_NOT_EXIST"},
    {static_cast<DWORD>(E_ACCESSDENIED), "E_ACCESSDENIED"},
    {static_cast<DWORD>(E_INVALIDARG), "E_INVALIDARG"},
    {static_cast<DWORD>(NTE_BAD_DATA), "NTE_BAD_DATA"},
    {static_cast<DWORD>(NTE_BAD_SIGNATURE), "NTE_BAD_SIGNATURE"},
    {static_cast<DWORD>(NTE_BAD_LEN), "NTE_BAD_LEN"},
    {static_cast<DWORD>(NTE_BAD_ALGID), "NTE_BAD_ALGID"},
    {static_cast<DWORD>(NTE_BAD_FLAGS), "NTE_BAD_FLAGS"},
    {static_cast<DWORD>(NTE_BAD_TYPE), "NTE_BAD_TYPE"},
    {static_cast<DWORD>(NTE_BAD_KEY), "NTE_BAD_KEY"},
    {static_cast<DWORD>(NTE_BAD_KEY_STATE), "NTE_BAD_KEY_STATE"},
    {static_cast<DWORD>(NTE_NO_KEY), "NTE_NO_KEY"},
    {static_cast<DWORD>(NTE_NO_MEMORY), "NTE_NO_MEMORY"},
    {static_cast<DWORD>(NTE_EXISTS), "NTE_EXISTS"},
    {static_cast<DWORD>(NTE_PERM), "NTE_PERM"},
    {static_cast<DWORD>(NTE_NOT_FOUND), "NTE_NOT_FOUND"},
    {static_cast<DWORD>(NTE_BAD_KEYSET), "NTE_BAD_KEYSET"},
    {static_cast<DWORD>(NTE_KEYSET_NOT_DEF), "NTE_KEYSET_NOT_DEF"},
    {static_cast<DWORD>(NTE_PROV_TYPE_NOT_DEF), "NTE_PROV_TYPE_NOT_DEF"},
    {static_cast<DWORD>(NTE_PROVIDER_DLL_FAIL), "NTE_PROVIDER_DLL_FAIL"},
    {static_cast<DWORD>(NTE_BAD_PROVIDER), "NTE_BAD_PROVIDER"},
    {static_cast<DWORD>(NTE_SILENT_CONTEXT), "NTE_SILENT_CONTEXT"},
    {static_cast<DWORD>(NTE_INVALID_HANDLE), "NTE_INVALID_HANDLE"},
    {static_cast<DWORD>(NTE_INVALID_PARAMETER), "NTE_INVALID_PARAMETER"},
    {static_cast<DWORD>(NTE_BUFFER_TOO_SMALL), "NTE_BUFFER_TOO_SMALL"},
    {static_cast<DWORD>(NTE_NOT_SUPPORTED), "NTE_NOT_SUPPORTED"},
    {static_cast<DWORD>(NTE_INTERNAL_ERROR), "NTE_INTERNAL_ERROR"},
    {static_cast<DWORD>(NTE_BAD_KEYSET_PARAM), "NTE_BAD_KEYSET_PARAM"},
    {static_cast<DWORD>(CRYPT_E_NOT_FOUND), "CRYPT_E_NOT_FOUND"},
    {static_cast<DWORD>(CRYPT_E_EXISTS), "CRYPT_E_EXISTS"},
    {static_cast<DWORD>(CRYPT_E_NO_KEY_PROPERTY), "CRYPT_E_NO_KEY_PROPERTY"},
    {static_cast<DWORD>(CRYPT_E_ASN1_BADTAG), "CRYPT_E_ASN1_BADTAG"},
    {static_cast<DWORD>(CRYPT_E_ASN1_EOD), "CRYPT_E_ASN1_EOD"},
    {static_cast<DWORD>(SCARD_W_CANCELLED_BY_USER), "SCARD_W_CANCELLED_BY_USER"},
}};

std::string system_message(DWORD code) {
  wchar_t* buffer = nullptr;
  const DWORD length =
      FormatMessageW(FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
                     nullptr, code, 0, reinterpret_cast<wchar_t*>(&buffer), 0, nullptr);
  std::string text;
  if (length > 0 && buffer != nullptr) text = narrow(std::wstring_view(buffer, length));
  if (buffer != nullptr) LocalFree(buffer);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' || text.back() == '.')) {
    text.pop_back();
  }
  return text;
}

}  // namespace

std::wstring widen(std::string_view utf8) {
  if (utf8.empty()) return {};
  const int size = MultiByteToWideChar(CP_UTF8, 0, utf8.data(), static_cast<int>(utf8.size()), nullptr, 0);
  if (size <= 0) return {};
  std::wstring out(static_cast<std::size_t>(size), L'\0');
  MultiByteToWideChar(CP_UTF8, 0, utf8.data(), static_cast<int>(utf8.size()), out.data(), size);
  return out;
}

std::string narrow(std::wstring_view utf16) {
  if (utf16.empty()) return {};
  const int size =
      WideCharToMultiByte(CP_UTF8, 0, utf16.data(), static_cast<int>(utf16.size()), nullptr, 0, nullptr, nullptr);
  if (size <= 0) return {};
  std::string out(static_cast<std::size_t>(size), '\0');
  WideCharToMultiByte(CP_UTF8, 0, utf16.data(), static_cast<int>(utf16.size()), out.data(), size, nullptr, nullptr);
  return out;
}

std::string narrow(const wchar_t* utf16) { return utf16 == nullptr ? std::string() : narrow(std::wstring_view(utf16)); }

std::string error_text(DWORD code) {
  char hex[16];
  std::snprintf(hex, sizeof hex, "0x%08lX", static_cast<unsigned long>(code));
  std::string text = hex;
  for (const auto& [value, name] : kNames) {
    if (value == code) {
      text += ' ';
      text += name;
      break;
    }
  }
  if (const std::string message = system_message(code); !message.empty()) text += ": " + message;
  return text;
}

std::string call_failed(std::string_view call, DWORD code) {
  return std::string(call) + " failed: " + error_text(code);
}

std::string last_error(std::string_view call) { return call_failed(call, GetLastError()); }

}  // namespace wincert
