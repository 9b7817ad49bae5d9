#include "certstore/win32_status.hpp"

#include <utility>

namespace wincert::certstore {
namespace {

// The statuses the local backend meets, by value (winerror.h).
struct Win32Code {
  std::uint32_t status;
  ErrorCode code;
};
constexpr Win32Code kTable[] = {
    {5, ErrorCode::kPermissionDenied},             // ERROR_ACCESS_DENIED
    {1314, ErrorCode::kPermissionDenied},          // ERROR_PRIVILEGE_NOT_HELD
    {0x80090010, ErrorCode::kPermissionDenied},    // NTE_PERM
    {2, ErrorCode::kNotFound},                     // ERROR_FILE_NOT_FOUND
    {3, ErrorCode::kNotFound},                     // ERROR_PATH_NOT_FOUND
    {1060, ErrorCode::kNotFound},                  // ERROR_SERVICE_DOES_NOT_EXIST
    {0x80092004, ErrorCode::kNotFound},            // CRYPT_E_NOT_FOUND
    {0x80090016, ErrorCode::kNotFound},            // NTE_BAD_KEYSET
    {0x80090011, ErrorCode::kNotFound},            // NTE_NOT_FOUND
    {0x80090019, ErrorCode::kNotFound},            // NTE_KEYSET_NOT_DEF (provider not installed)
    {0x8009001E, ErrorCode::kNotFound},            // NTE_PROV_DLL_NOT_FOUND
    {80, ErrorCode::kAlreadyExists},               // ERROR_FILE_EXISTS
    {183, ErrorCode::kAlreadyExists},              // ERROR_ALREADY_EXISTS
    {0x8009000F, ErrorCode::kAlreadyExists},       // NTE_EXISTS
    {0x80092005, ErrorCode::kAlreadyExists},       // CRYPT_E_EXISTS
    {13, ErrorCode::kInvalidArgument},             // ERROR_INVALID_DATA
    {87, ErrorCode::kInvalidArgument},             // ERROR_INVALID_PARAMETER
    {0x80090005, ErrorCode::kInvalidArgument},     // NTE_BAD_DATA
    {0x80090027, ErrorCode::kInvalidArgument},     // NTE_INVALID_PARAMETER
    {0x80090029, ErrorCode::kFailedPrecondition},  // NTE_NOT_SUPPORTED
    {0x80090022, ErrorCode::kFailedPrecondition},  // NTE_SILENT_CONTEXT (the provider wants a person at a UI)
    {1058, ErrorCode::kFailedPrecondition},        // ERROR_SERVICE_DISABLED
    {1062, ErrorCode::kFailedPrecondition},        // ERROR_SERVICE_NOT_ACTIVE
    {8, ErrorCode::kResourceExhausted},            // ERROR_NOT_ENOUGH_MEMORY
    {14, ErrorCode::kResourceExhausted},           // ERROR_OUTOFMEMORY
    {112, ErrorCode::kResourceExhausted},          // ERROR_DISK_FULL
    {0x8009000E, ErrorCode::kResourceExhausted},   // NTE_NO_MEMORY
    {258, ErrorCode::kDeadlineExceeded},           // WAIT_TIMEOUT
    {1053, ErrorCode::kDeadlineExceeded},          // ERROR_SERVICE_REQUEST_TIMEOUT
    {1460, ErrorCode::kDeadlineExceeded},          // ERROR_TIMEOUT
    {32, ErrorCode::kUnavailable},                 // ERROR_SHARING_VIOLATION
    {33, ErrorCode::kUnavailable},                 // ERROR_LOCK_VIOLATION
    {170, ErrorCode::kUnavailable},                // ERROR_BUSY
    {1055, ErrorCode::kUnavailable},               // ERROR_SERVICE_DATABASE_LOCKED
    {1061, ErrorCode::kUnavailable},               // ERROR_SERVICE_CANNOT_ACCEPT_CTRL (starting or stopping)
    {1722, ErrorCode::kUnavailable},               // RPC_S_SERVER_UNAVAILABLE
    {1223, ErrorCode::kCancelled},                 // ERROR_CANCELLED
};

}  // namespace

ErrorCode code_for_win32(std::uint32_t status, ErrorCode otherwise) {
  // HRESULT_FROM_WIN32: FACILITY_WIN32 with the severity bit carries a plain Win32 error in its low word.
  if ((status & 0xFFFF0000u) == 0x80070000u) status &= 0xFFFFu;
  for (const auto& entry : kTable) {
    if (entry.status == status) return entry.code;
  }
  return otherwise;
}

Error win32_status_error(std::uint32_t status, std::string message, ErrorCode otherwise) {
  return Error::make(code_for_win32(status, otherwise), std::move(message))
      .with_system_status(SystemStatusKind::kWin32, status);
}

}  // namespace wincert::certstore
