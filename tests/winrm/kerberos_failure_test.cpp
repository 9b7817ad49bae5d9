// What a person sees when Kerberos fails: one actionable line naming the user / SPN, never a secret.
#include <gtest/gtest.h>
#include <krb5.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <string>

#include "tests/support/result_matchers.hpp"
#include "tests/winrm/kerberos_test_util.hpp"

namespace wincert::testing {
namespace {

using winrm::gss::ClientOptions;
using winrm::gss::GssAcceptor;
using winrm::gss::GssContext;
using winrm::gss::Mechanism;

winrm::gss::AcceptorOptions keytab_only(std::string keytab) {
  winrm::gss::AcceptorOptions options;
  options.keytab = std::move(keytab);
  return options;
}

constexpr const char* kWrongPassword = "Wr0ng-Secret-Value";

// The detail every GSSAPI failure carries: the GSS major status (an error status, so never 0).
auto gss_status() {
  return ::testing::AllOf(::testing::Field(&ErrorDetail::system_kind, SystemStatusKind::kGss),
                          ::testing::Field(&ErrorDetail::system_status, ::testing::Ne(0u)));
}

// The error of the whole client-side attempt (create, then the first leg), or nullopt on success.
std::optional<Error> attempt(const ClientOptions& options) {
  auto client = GssContext::create(options);
  if (!client) return client.error();
  auto token = (*client)->step("");
  if (!token) return token.error();
  return std::nullopt;
}

class KerberosFailureTest : public KerberosTest {
 protected:
  void expect_clean(const Error& error) {
    EXPECT_EQ(error.message.find('\n'), std::string::npos) << error.message;
    EXPECT_EQ(error.message.find(kdc().user_password()), std::string::npos) << error.message;
    EXPECT_EQ(error.message.find(kWrongPassword), std::string::npos) << error.message;
    std::cout << "    message: " << error.message << "\n";
  }
};

TEST_F(KerberosFailureTest, WrongPassword) {
  for (Mechanism mech : {Mechanism::kKerberos, Mechanism::kSpnego}) {
    ClientOptions options = password_client(mech);
    options.password = Secret(kWrongPassword);
    auto error = attempt(options);
    ASSERT_TRUE(error.has_value());
    expect_clean(*error);
    EXPECT_NE(error->message.find("refused the password of alice@TEST.LOCAL"), std::string::npos) << error->message;
    EXPECT_THAT(*error, ErrorWith(ErrorCode::kUnauthenticated, gss_status()));
    EXPECT_FALSE(error->retryable());
  }
}

TEST_F(KerberosFailureTest, UnknownUser) {
  ClientOptions options = password_client();
  options.user = "mallory";  // default realm applies
  auto error = attempt(options);
  ASSERT_TRUE(error.has_value());
  expect_clean(*error);
  EXPECT_NE(error->message.find("user mallory is unknown to the KDC"), std::string::npos) << error->message;
  EXPECT_THAT(*error, ErrorWith(ErrorCode::kUnauthenticated, gss_status()));
  EXPECT_FALSE(error->retryable());
}

TEST_F(KerberosFailureTest, WrongSpn) {
  for (Mechanism mech : {Mechanism::kKerberos, Mechanism::kSpnego}) {
    ClientOptions options = password_client(mech);
    options.target.host = "10.0.0.7";  // an IP address has no SPN
    auto error = attempt(options);
    ASSERT_TRUE(error.has_value());
    expect_clean(*error);
    EXPECT_NE(error->message.find("no service principal HTTP/10.0.0.7 is registered"), std::string::npos)
        << error->message;
    EXPECT_THAT(*error, ErrorWith(ErrorCode::kUnauthenticated, gss_status()));
    EXPECT_FALSE(error->retryable());
  }
  ClientOptions with_port = password_client();
  with_port.target.port = 5986;
  with_port.target.spn_with_port = true;
  auto error = attempt(with_port);
  ASSERT_TRUE(error.has_value());
  EXPECT_NE(error->message.find("HTTP/localhost:5986"), std::string::npos) << error->message;
  EXPECT_THAT(*error, ErrorWith(ErrorCode::kUnauthenticated, gss_status()));
}

TEST_F(KerberosFailureTest, KdcOnAClosedPort) {
  // A port that was just free: connection refused, quickly.
  int sock = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(sock, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(sock);
  const std::string conf = kdc().write_client_config("closed-port.conf", ntohs(addr.sin_port));
  ::setenv("KRB5_CONFIG", conf.c_str(), 1);
  auto error = attempt(password_client());
  ASSERT_TRUE(error.has_value());
  expect_clean(*error);
  EXPECT_NE(error->message.find("cannot reach a KDC"), std::string::npos) << error->message;
  EXPECT_NE(error->message.find("alice@TEST.LOCAL"), std::string::npos) << error->message;
  EXPECT_THAT(*error, ErrorWith(ErrorCode::kUnavailable, gss_status()));
  EXPECT_TRUE(error->retryable());
}

TEST_F(KerberosFailureTest, KdcStopped) {
  kdc().stop();
  auto error = attempt(password_client(Mechanism::kKerberos));
  ASSERT_TRUE(error.has_value());
  expect_clean(*error);
  EXPECT_NE(error->message.find("cannot reach a KDC"), std::string::npos) << error->message;
  EXPECT_THAT(*error, ErrorWith(ErrorCode::kUnavailable, gss_status()));
  EXPECT_TRUE(error->retryable());
  ASSERT_TRUE(kdc().restart().ok());
  EXPECT_FALSE(attempt(password_client(Mechanism::kKerberos)).has_value());
}

// The client believes its clock is an hour ahead: MIT keeps a KDC time offset in the ccache header
// (kdc_timesync), so a ccache written by a context whose clock was shifted makes every later request
// from that ccache carry a skewed timestamp, which the real KDC rejects.
TEST_F(KerberosFailureTest, ClockSkew) {
  const std::string good = kdc().dir() + "/skew-source.cc";
  ASSERT_TRUE(
      winrm::gss::store_ticket_in_ccache(kdc().user_principal(), Secret(kdc().user_password()), "FILE:" + good).ok());
  krb5_context context = nullptr;
  ASSERT_EQ(krb5_init_context(&context), 0);
  krb5_ccache source = nullptr;
  krb5_ccache skewed = nullptr;
  krb5_principal principal = nullptr;
  ASSERT_EQ(krb5_cc_resolve(context, ("FILE:" + good).c_str(), &source), 0);
  ASSERT_EQ(krb5_cc_get_principal(context, source, &principal), 0);
  ASSERT_EQ(krb5_set_real_time(context, static_cast<krb5_timestamp>(std::time(nullptr) + 3600), 0), 0);
  ASSERT_EQ(krb5_cc_resolve(context, ("FILE:" + ccache()).c_str(), &skewed), 0);
  ASSERT_EQ(krb5_cc_initialize(context, skewed, principal), 0);
  ASSERT_EQ(krb5_cc_copy_creds(context, source, skewed), 0);
  krb5_free_principal(context, principal);
  krb5_cc_close(context, source);
  krb5_cc_close(context, skewed);
  krb5_free_context(context);

  ClientOptions options;  // the default identity: the skewed ccache
  options.target.host = "localhost";
  options.mechanism = Mechanism::kKerberos;
  auto error = attempt(options);
  ASSERT_TRUE(error.has_value()) << "the KDC accepted a request one hour in the future";
  expect_clean(*error);
  EXPECT_NE(error->message.find("clocks of this machine"), std::string::npos) << error->message;
  EXPECT_THAT(*error, ErrorWith(ErrorCode::kUnauthenticated, gss_status()));
}

TEST_F(KerberosFailureTest, AcceptorWithoutTheServiceKey) {
  // The ticket is fine, but the acceptor's keytab lacks HTTP/localhost (wrong keytab deployed).
  auto client = GssContext::create(password_client(Mechanism::kKerberos));
  ASSERT_TRUE(client.ok()) << client.error().message;
  auto token = (*client)->step("");
  ASSERT_TRUE(token.ok());
  auto server = GssAcceptor::create(keytab_only(kdc().client_keytab()));
  ASSERT_TRUE(server.ok()) << server.error().message;
  auto reply = (*server)->step(*token);
  ASSERT_FALSE(reply.ok());
  expect_clean(reply.error());
  // The server's own keytab is wrong: its configuration, not the client's credentials.
  EXPECT_THAT(reply, ErrorWith(ErrorCode::kFailedPrecondition, gss_status()));
}

TEST_F(KerberosFailureTest, MissingKeytabForTheAcceptor) {
  auto server = GssAcceptor::create(keytab_only(kdc().dir() + "/no-such.keytab"));
  if (server.ok()) {
    // MIT may defer opening the keytab to the first token; then that token fails.
    auto client = GssContext::create(password_client(Mechanism::kKerberos));
    ASSERT_TRUE(client.ok());
    auto token = (*client)->step("");
    ASSERT_TRUE(token.ok());
    auto reply = (*server)->step(*token);
    ASSERT_FALSE(reply.ok());
    expect_clean(reply.error());
  } else {
    expect_clean(server.error());
    EXPECT_NE(server.error().message.find("no-such.keytab"), std::string::npos) << server.error().message;
  }
}

}  // namespace
}  // namespace wincert::testing
