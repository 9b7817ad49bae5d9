// The doctor's hint table (agent/doctor.cpp doctor_advice): one case per row of each step, chosen from
// the error's code and detail. Every error here carries a message that would have fooled the old text
// matching ("TLS", "timed out", "quota", "HTTP 401", ...) pointing at another row, to pin that the message
// is not read.
#include <gtest/gtest.h>

#include <openssl/x509_vfy.h>

#include "agent/doctor.hpp"
#include "common/result.hpp"

namespace wincert::agent {
namespace {

constexpr const char* kMisleading =
    "TLS timed out: quota, kerberos ticket, unencrypted, host-info failed (HTTP 401 at x)";

Error openssl(ErrorCode code, int verify) {
  return Error::make(code, kMisleading)
      .with_system_status(SystemStatusKind::kOpenSsl, static_cast<std::uint32_t>(verify));
}

struct Row {
  const char* name;
  DoctorStep step;
  Error error;
  DoctorAdvice advice;
  DoctorFacts facts{};
};

std::vector<Row> rows() {
  const Error plain = Error::internal(kMisleading);
  DoctorFacts in_clear;
  in_clear.basic_over_http = true;
  return {
      // BearerTokenUrl (OAuth token request)
      {"token tls name", DoctorStep::kCommandToken, openssl(ErrorCode::kUnauthenticated, X509_V_ERR_HOSTNAME_MISMATCH),
       DoctorAdvice::kTlsName},
      {"token tls trust", DoctorStep::kCommandToken,
       openssl(ErrorCode::kUnauthenticated, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY), DoctorAdvice::kTlsTrust},
      {"token tls other", DoctorStep::kCommandToken, openssl(ErrorCode::kUnavailable, 1), DoctorAdvice::kTls},
      {"token refused 401", DoctorStep::kCommandToken, Error::unauthenticated(kMisleading).with_http_status(401),
       DoctorAdvice::kCredentials},
      {"token refused 400", DoctorStep::kCommandToken, Error::unauthenticated(kMisleading).with_http_status(400),
       DoctorAdvice::kCredentials},
      {"token refused 503", DoctorStep::kCommandToken, Error::unavailable(kMisleading).with_http_status(503),
       DoctorAdvice::kCredentials},
      {"token unreachable", DoctorStep::kCommandToken,
       Error::unavailable(kMisleading).with_system_status(SystemStatusKind::kErrno, 111), DoctorAdvice::kUnreachable},
      {"token connect timeout", DoctorStep::kCommandToken, Error::deadline_exceeded(kMisleading),
       DoctorAdvice::kUnreachable},
      {"token other", DoctorStep::kCommandToken, Error::invalid_argument(kMisleading), DoctorAdvice::kGeneric},
      // Session/Heartbeat (the authenticated Orchestrators API probe)
      {"call tls ip", DoctorStep::kCommandCall, openssl(ErrorCode::kUnauthenticated, X509_V_ERR_IP_ADDRESS_MISMATCH),
       DoctorAdvice::kTlsName},
      {"call tls trust", DoctorStep::kCommandCall,
       openssl(ErrorCode::kUnauthenticated, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT), DoctorAdvice::kTlsTrust},
      {"call tls other", DoctorStep::kCommandCall, openssl(ErrorCode::kUnavailable, 1), DoctorAdvice::kTls},
      {"call 401", DoctorStep::kCommandCall, Error::unauthenticated(kMisleading).with_http_status(401),
       DoctorAdvice::kCredentials},
      {"call 403", DoctorStep::kCommandCall, Error::permission_denied(kMisleading).with_http_status(403),
       DoctorAdvice::kPermission},
      {"call 404", DoctorStep::kCommandCall, Error::not_found(kMisleading).with_http_status(404), DoctorAdvice::kNoApi},
      {"call timeout", DoctorStep::kCommandCall, Error::deadline_exceeded(kMisleading), DoctorAdvice::kSlow},
      {"call 500", DoctorStep::kCommandCall, Error::unavailable(kMisleading).with_http_status(500),
       DoctorAdvice::kGeneric},
      {"call other", DoctorStep::kCommandCall, plain, DoctorAdvice::kGeneric},
      // WinRM session + host-info
      {"winrm 401", DoctorStep::kWinrm, Error::unauthenticated(kMisleading).with_http_status(401),
       DoctorAdvice::kCredentials},
      {"winrm tls name", DoctorStep::kWinrm, openssl(ErrorCode::kUnauthenticated, X509_V_ERR_HOSTNAME_MISMATCH),
       DoctorAdvice::kTlsName},
      {"winrm tls trust", DoctorStep::kWinrm, openssl(ErrorCode::kUnauthenticated, X509_V_ERR_CERT_HAS_EXPIRED),
       DoctorAdvice::kTlsTrust},
      {"winrm tls other", DoctorStep::kWinrm, openssl(ErrorCode::kUnavailable, 1), DoctorAdvice::kTls},
      {"winrm quota subcode", DoctorStep::kWinrm,
       Error::resource_exhausted(kMisleading).with_wsman_fault("w:QuotaLimit"), DoctorAdvice::kQuota},
      {"winrm quota code", DoctorStep::kWinrm, Error::unavailable(kMisleading).with_wsman_fault("2150859173"),
       DoctorAdvice::kQuota},
      {"winrm gss", DoctorStep::kWinrm,
       Error::unauthenticated(kMisleading).with_system_status(SystemStatusKind::kGss, 851968), DoctorAdvice::kKerberos},
      {"winrm sspi", DoctorStep::kWinrm,
       Error::unauthenticated(kMisleading).with_system_status(SystemStatusKind::kSspi, 0x8009030C),
       DoctorAdvice::kKerberos},
      {"winrm basic in clear", DoctorStep::kWinrm, Error::failed_precondition(kMisleading), DoctorAdvice::kUnencrypted,
       in_clear},
      {"winrm timeout", DoctorStep::kWinrm, Error::deadline_exceeded(kMisleading), DoctorAdvice::kSlow},
      {"winrm script", DoctorStep::kWinrm, Error::failed_precondition(kMisleading).with_script_category("ScriptError"),
       DoctorAdvice::kScript},
      {"winrm other", DoctorStep::kWinrm, Error::failed_precondition(kMisleading), DoctorAdvice::kGeneric},
      // A timeout is not "refused in clear", even for Basic over http.
      {"winrm timeout in clear", DoctorStep::kWinrm, Error::deadline_exceeded(kMisleading), DoctorAdvice::kSlow,
       in_clear},
  };
}

TEST(DoctorAdviceTest, OneCasePerRow) {
  for (const Row& row : rows()) {
    EXPECT_EQ(doctor_advice_name(doctor_advice(row.step, row.error, row.facts)), doctor_advice_name(row.advice))
        << row.name;
  }
}

// The first matching row wins: a 401 that also carries a GSS status is a refused credential.
TEST(DoctorAdviceTest, RowOrder) {
  const Error both = Error::unauthenticated("x").with_http_status(401).with_system_status(SystemStatusKind::kGss, 1);
  EXPECT_EQ(doctor_advice(DoctorStep::kWinrm, both), DoctorAdvice::kCredentials);
  const Error quota_timeout = Error::deadline_exceeded("x").with_wsman_fault("w:QuotaLimit");
  EXPECT_EQ(doctor_advice(DoctorStep::kWinrm, quota_timeout), DoctorAdvice::kQuota);
}

}  // namespace
}  // namespace wincert::agent
