// The Win32 status -> code table the local backend uses (plain numbers, so it runs on every platform).
#include "certstore/win32_status.hpp"

#include "tests/support/result_matchers.hpp"

#include <gtest/gtest.h>

namespace wincert::certstore {
namespace {

TEST(Win32Status, CommonFailuresMapToTheirCodes) {
  EXPECT_EQ(code_for_win32(5), ErrorCode::kPermissionDenied);           // ERROR_ACCESS_DENIED
  EXPECT_EQ(code_for_win32(0x80070005), ErrorCode::kPermissionDenied);  // E_ACCESSDENIED (HRESULT_FROM_WIN32)
  EXPECT_EQ(code_for_win32(0x80090010), ErrorCode::kPermissionDenied);  // NTE_PERM
  EXPECT_EQ(code_for_win32(2), ErrorCode::kNotFound);                   // ERROR_FILE_NOT_FOUND
  EXPECT_EQ(code_for_win32(0x80070002), ErrorCode::kNotFound);          // HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND)
  EXPECT_EQ(code_for_win32(0x80092004), ErrorCode::kNotFound);          // CRYPT_E_NOT_FOUND
  EXPECT_EQ(code_for_win32(0x80090016), ErrorCode::kNotFound);          // NTE_BAD_KEYSET
  EXPECT_EQ(code_for_win32(1060), ErrorCode::kNotFound);                // ERROR_SERVICE_DOES_NOT_EXIST
  EXPECT_EQ(code_for_win32(183), ErrorCode::kAlreadyExists);            // ERROR_ALREADY_EXISTS
  EXPECT_EQ(code_for_win32(0x8009000F), ErrorCode::kAlreadyExists);     // NTE_EXISTS
  EXPECT_EQ(code_for_win32(87), ErrorCode::kInvalidArgument);           // ERROR_INVALID_PARAMETER
  EXPECT_EQ(code_for_win32(0x80090005), ErrorCode::kInvalidArgument);   // NTE_BAD_DATA
  EXPECT_EQ(code_for_win32(1460), ErrorCode::kDeadlineExceeded);        // ERROR_TIMEOUT
  EXPECT_EQ(code_for_win32(1053), ErrorCode::kDeadlineExceeded);        // ERROR_SERVICE_REQUEST_TIMEOUT
  EXPECT_EQ(code_for_win32(32), ErrorCode::kUnavailable);               // ERROR_SHARING_VIOLATION
  EXPECT_EQ(code_for_win32(1061), ErrorCode::kUnavailable);             // ERROR_SERVICE_CANNOT_ACCEPT_CTRL
  EXPECT_EQ(code_for_win32(112), ErrorCode::kResourceExhausted);        // ERROR_DISK_FULL
  EXPECT_EQ(code_for_win32(1058), ErrorCode::kFailedPrecondition);      // ERROR_SERVICE_DISABLED
  EXPECT_EQ(code_for_win32(1223), ErrorCode::kCancelled);               // ERROR_CANCELLED
}

TEST(Win32Status, AnUnknownStatusTakesTheCallersDefault) {
  EXPECT_EQ(code_for_win32(0x8009FFFF), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(code_for_win32(0x8009FFFF, ErrorCode::kInvalidArgument), ErrorCode::kInvalidArgument);
  // A known status wins over the default.
  EXPECT_EQ(code_for_win32(5, ErrorCode::kInvalidArgument), ErrorCode::kPermissionDenied);
  // Only FACILITY_WIN32 HRESULTs are unwrapped: 0x80090002 is NTE_BAD_UID, not ERROR_FILE_NOT_FOUND.
  EXPECT_EQ(code_for_win32(0x80090002), ErrorCode::kFailedPrecondition);
}

TEST(Win32Status, TheErrorCarriesTheStatusAndKeepsTheMessage) {
  const Error error = win32_status_error(5, "the certificate store LocalMachine\\My cannot be opened for writing");
  EXPECT_THAT(error, ErrorWith(ErrorCode::kPermissionDenied, SystemStatus(SystemStatusKind::kWin32, 5)));
  EXPECT_EQ(error.message, "the certificate store LocalMachine\\My cannot be opened for writing");
  EXPECT_FALSE(error.retryable());
  EXPECT_THAT(win32_status_error(32, "key file busy"), IsRetryable());
}

}  // namespace
}  // namespace wincert::certstore
