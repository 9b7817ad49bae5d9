// Interop under Wine: the Windows-built WinRM client (transport, WinRS shell, PowerShell runner) against
// the native Linux winhost-sim. tests/winrm/windows_interop.py starts the sims (and a KDC), then runs
// this program with the endpoints and credentials in WINCERT_INTEROP_* variables; a test whose variables
// are missing is skipped with the reason (running this program alone skips everything).
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "client_test_util.hpp"
#include "tests/support/result_matchers.hpp"
#include "winrm/auth/negotiate_http_auth.hpp"
#include "winrm/auth/ntlm_http_auth.hpp"
#include "winrm/powershell.hpp"
#include "winrm/transport.hpp"
#include "winrm/winrs.hpp"

namespace wincert::winrm {
namespace {

namespace net = boost::asio;

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

// The variables a test needs, or a skip naming the missing one.
#define REQUIRE_ENV(var, name)       \
  const std::string var = env(name); \
  if (var.empty()) GTEST_SKIP() << name << " is not set (run through tests/winrm/windows_interop.py)"

CommandSpec cmd(std::string line) {
  CommandSpec spec;
  spec.command = "cmd.exe";
  spec.arguments = {"/c", std::move(line)};
  return spec;
}

struct Interop : ::testing::Test {
  net::io_context io;

  std::unique_ptr<WsmanTransport> connect(const std::string& url, std::unique_ptr<HttpAuth> auth,
                                          TransportOptions options = {}) {
    auto endpoint = parse_endpoint(url);
    EXPECT_TRUE(endpoint.ok()) << url;
    if (!endpoint.ok()) return nullptr;
    auto transport = WsmanTransport::create(io.get_executor(), *endpoint, std::move(auth), std::move(options));
    EXPECT_TRUE(transport.ok()) << transport.error().message;
    return transport.ok() ? std::move(*transport) : nullptr;
  }
  template <typename T>
  T run(net::awaitable<T> work) {
    return test::run_coro(io, std::move(work));
  }

  // echo through cmd.exe, then a PowerShell operation whose JSON arguments come back unchanged.
  void exercise(WsmanTransport& transport, const std::string& tag) {
    WinrsSession session(transport);
    auto echoed = run(session.run(cmd("echo " + tag)));
    ASSERT_TRUE(echoed.ok()) << echoed.error().message;
    EXPECT_EQ(echoed->stdout_data, tag + "\r\n");
    EXPECT_EQ(echoed->exit_code, 0);
    const std::string text = "Zertifikat für " + tag + " – こんにちは 😀";
    const nlohmann::json args = {{"tag", tag}, {"text", text}, {"n", 42}};
    auto ps = run(run_ps(session, PsPayload{"# wincert-op: echo\n", args.dump()}));
    ASSERT_TRUE(ps.ok()) << ps.error().message;
    EXPECT_EQ(ps->exit_code, 0) << ps->error_text;
    const auto json = nlohmann::json::parse(ps->stdout_data, nullptr, false);
    ASSERT_FALSE(json.is_discarded()) << ps->stdout_data;
    EXPECT_EQ(json["text"], text);
    EXPECT_EQ(json["n"], 42);
    EXPECT_TRUE(run(session.close()).ok());
  }
};

TEST_F(Interop, BasicOverHttpsTrustingTheSimsCa) {
  REQUIRE_ENV(url, "WINCERT_INTEROP_HTTPS_URL");
  REQUIRE_ENV(ca_file, "WINCERT_INTEROP_CA_FILE");
  REQUIRE_ENV(user, "WINCERT_INTEROP_USER");
  REQUIRE_ENV(password, "WINCERT_INTEROP_PASSWORD");
  TransportOptions options;
  options.ca_file = ca_file;  // verify_peer stays on: chain and host name are checked
  auto transport = connect(url, std::make_unique<BasicAuth>(user, Secret(password), false), options);
  ASSERT_TRUE(transport);
  exercise(*transport, "basic-https");
}

TEST_F(Interop, HttpsRefusesAnUntrustedServer) {
  REQUIRE_ENV(url, "WINCERT_INTEROP_HTTPS_URL");
  REQUIRE_ENV(user, "WINCERT_INTEROP_USER");
  REQUIRE_ENV(password, "WINCERT_INTEROP_PASSWORD");
  auto transport = connect(url, std::make_unique<BasicAuth>(user, Secret(password), false));  // system store only
  ASSERT_TRUE(transport);
  WinrsSession session(*transport);
  auto out = run(session.run(cmd("echo never")));
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().message.find(password), std::string::npos);
}

TEST_F(Interop, NtlmOverHttpWithMessageEncryption) {
  REQUIRE_ENV(url, "WINCERT_INTEROP_HTTP_URL");
  REQUIRE_ENV(user, "WINCERT_INTEROP_USER");
  REQUIRE_ENV(password, "WINCERT_INTEROP_PASSWORD");
  auto auth = std::make_unique<NtlmHttpAuth>(user, Secret(password));
  const NtlmHttpAuth& ntlm = *auth;
  auto transport = connect(url, std::move(auth));
  ASSERT_TRUE(transport);
  exercise(*transport, "ntlm-http");
  EXPECT_TRUE(ntlm.encrypts());  // the sim refuses clear SOAP on HTTP, so the runs above were sealed
}

TEST_F(Interop, NtlmWrongPasswordIsAnAuthenticationFailure) {
  REQUIRE_ENV(url, "WINCERT_INTEROP_HTTP_URL");
  REQUIRE_ENV(user, "WINCERT_INTEROP_USER");
  const std::string wrong = "Wrong-Interop-Passw0rd";
  auto transport = connect(url, std::make_unique<NtlmHttpAuth>(user, Secret(wrong)));
  ASSERT_TRUE(transport);
  WinrsSession session(*transport);
  auto out = run(session.run(cmd("echo never")));
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out, ErrorWith(ErrorCode::kUnauthenticated, HttpStatus(401)));
  EXPECT_EQ(out.error().message.find(wrong), std::string::npos);
}

TEST_F(Interop, KerberosThroughSspiOverHttpWithEncryption) {
  REQUIRE_ENV(url, "WINCERT_INTEROP_KRB_URL");
  REQUIRE_ENV(user, "WINCERT_INTEROP_KRB_USER");
  REQUIRE_ENV(password, "WINCERT_INTEROP_KRB_PASSWORD");
  auto auth = std::make_unique<KerberosHttpAuth>(user, Secret(password));
  const KerberosHttpAuth& kerberos = *auth;
  auto transport = connect(url, std::move(auth));
  ASSERT_TRUE(transport);
  exercise(*transport, "kerberos-http");
  EXPECT_TRUE(kerberos.encrypts());
}

TEST_F(Interop, NegotiateThroughSspiOverHttpWithEncryption) {
  REQUIRE_ENV(url, "WINCERT_INTEROP_KRB_URL");
  REQUIRE_ENV(user, "WINCERT_INTEROP_KRB_USER");
  REQUIRE_ENV(password, "WINCERT_INTEROP_KRB_PASSWORD");
  auto auth = std::make_unique<NegotiateHttpAuth>(user, Secret(password));
  const NegotiateHttpAuth& negotiate = *auth;
  auto transport = connect(url, std::move(auth));
  ASSERT_TRUE(transport);
  exercise(*transport, "negotiate-http");
  EXPECT_FALSE(negotiate.using_ntlm()) << "Negotiate fell back to NTLM although a KDC was there";
}

TEST_F(Interop, KerberosWrongPasswordIsOneClearSspiError) {
  REQUIRE_ENV(url, "WINCERT_INTEROP_KRB_URL");
  REQUIRE_ENV(user, "WINCERT_INTEROP_KRB_USER");
  const std::string wrong = "Wrong-Kerberos-Passw0rd";
  auto transport = connect(url, std::make_unique<KerberosHttpAuth>(user, Secret(wrong)));
  ASSERT_TRUE(transport);
  WinrsSession session(*transport);
  auto out = run(session.run(cmd("echo never")));
  ASSERT_FALSE(out.ok());
  // Windows: unauthenticated; Wine cannot tell a refused password from a missing KDC (failed_precondition).
  EXPECT_THAT(out, ::testing::AnyOf(ErrorWith(ErrorCode::kUnauthenticated,
                                              ::testing::Field(&ErrorDetail::system_kind, SystemStatusKind::kSspi)),
                                    ErrorWith(ErrorCode::kFailedPrecondition,
                                              ::testing::Field(&ErrorDetail::system_kind, SystemStatusKind::kSspi))));
  const std::string& message = out.error().message;
  EXPECT_NE(message.find("[SSPI "), std::string::npos) << message;
  EXPECT_NE(message.find(user.substr(0, user.find('@'))), std::string::npos) << message;
  // Windows: SEC_E_LOGON_DENIED; Wine reports every KDC failure as one status, and the line says so.
  EXPECT_TRUE(message.find("refused the logon") != std::string::npos ||
              message.find("refused the user or password") != std::string::npos)
      << message;
  EXPECT_EQ(message.find(wrong), std::string::npos);
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST_F(Interop, KerberosWithoutAKdcIsOneClearSspiError) {
  REQUIRE_ENV(url, "WINCERT_INTEROP_HTTP_URL");
  REQUIRE_ENV(password, "WINCERT_INTEROP_PASSWORD");
  // A realm no KDC serves (the driver's krb5.conf does not know it).
  auto transport = connect(url, std::make_unique<KerberosHttpAuth>("alice@NO-KDC.INVALID", Secret(password)));
  ASSERT_TRUE(transport);
  WinrsSession session(*transport);
  auto out = run(session.run(cmd("echo never")));
  ASSERT_FALSE(out.ok());
  // Windows: unavailable; Wine reports every KDC failure as one status (failed_precondition).
  EXPECT_THAT(out, ::testing::AnyOf(ErrorWith(ErrorCode::kUnavailable,
                                              ::testing::Field(&ErrorDetail::system_kind, SystemStatusKind::kSspi)),
                                    ErrorWith(ErrorCode::kFailedPrecondition,
                                              ::testing::Field(&ErrorDetail::system_kind, SystemStatusKind::kSspi))));
  const std::string& message = out.error().message;
  EXPECT_NE(message.find("Kerberos"), std::string::npos) << message;
  EXPECT_NE(message.find("alice@NO-KDC.INVALID"), std::string::npos) << message;
  EXPECT_NE(message.find("cannot reach a KDC"), std::string::npos) << message;
  EXPECT_NE(message.find("[SSPI "), std::string::npos) << message;
  EXPECT_EQ(message.find(password), std::string::npos);
}

TEST_F(Interop, NegotiateFallsBackToNtlmWithoutKerberos) {
  REQUIRE_ENV(url, "WINCERT_INTEROP_HTTP_URL");
  REQUIRE_ENV(user, "WINCERT_INTEROP_USER");  // DOMAIN\user: a NetBIOS domain no KDC serves
  REQUIRE_ENV(password, "WINCERT_INTEROP_PASSWORD");
  auto auth = std::make_unique<NegotiateHttpAuth>(user, Secret(password));
  const NegotiateHttpAuth& negotiate = *auth;
  auto transport = connect(url, std::move(auth));
  ASSERT_TRUE(transport);
  exercise(*transport, "negotiate-ntlm");
  EXPECT_TRUE(negotiate.using_ntlm());
  EXPECT_TRUE(negotiate.encrypts());
}

}  // namespace
}  // namespace wincert::winrm
