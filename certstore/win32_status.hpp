// Win32 failures as coded errors. The mapping is plain numbers (no <windows.h>), so it is built and tested
// on every platform; certstore/local/win32_error.hpp builds the Errors at the Windows call sites.
#pragma once

#include "common/result.hpp"

#include <cstdint>
#include <string>

namespace wincert::certstore {

// The canonical code for a Win32 error (GetLastError, LSTATUS), an HRESULT wrapping one (0x8007xxxx) or a
// CryptoAPI/CNG status (CRYPT_E_*, NTE_*): ERROR_ACCESS_DENIED -> permission_denied, ERROR_FILE_NOT_FOUND
// and CRYPT_E_NOT_FOUND -> not_found, ... `otherwise` for a status that says nothing more specific.
ErrorCode code_for_win32(std::uint32_t status, ErrorCode otherwise = ErrorCode::kFailedPrecondition);

// An Error with that code and the status in its detail (SystemStatusKind::kWin32); the message as given.
Error win32_status_error(std::uint32_t status, std::string message,
                         ErrorCode otherwise = ErrorCode::kFailedPrecondition);

}  // namespace wincert::certstore
