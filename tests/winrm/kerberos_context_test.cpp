// GssContext / GssAcceptor against a real MIT KDC on loopback (tests/support/krb5_kdc.hpp).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/support/result_matchers.hpp"
#include "tests/winrm/kerberos_test_util.hpp"

namespace wincert::testing {
namespace {

using winrm::gss::AcceptorOptions;
using winrm::gss::ClientOptions;
using winrm::gss::GssAcceptor;
using winrm::gss::GssContext;
using winrm::gss::Mechanism;

AcceptorOptions acceptor_options(std::string keytab, std::optional<std::string> binding = std::nullopt,
                                 bool required = false) {
  AcceptorOptions options;
  options.keytab = std::move(keytab);
  options.channel_binding = std::move(binding);
  options.require_channel_binding = required;
  return options;
}

std::unique_ptr<GssAcceptor> make_acceptor(AcceptorOptions options = {}) {
  auto acceptor = GssAcceptor::create(std::move(options));
  EXPECT_TRUE(acceptor.ok()) << (acceptor.ok() ? "" : acceptor.error().message);
  return acceptor.ok() ? std::move(acceptor).value() : nullptr;
}

std::unique_ptr<GssContext> make_client(ClientOptions options) {
  auto client = GssContext::create(std::move(options));
  EXPECT_TRUE(client.ok()) << (client.ok() ? "" : client.error().message);
  return client.ok() ? std::move(client).value() : nullptr;
}

class KerberosContextTest : public KerberosTest {};

TEST_F(KerberosContextTest, PasswordCredentialsStayInMemoryKerberosMech) {
  auto client = make_client(password_client(Mechanism::kKerberos));
  ASSERT_NE(client, nullptr);
  auto server = make_acceptor();
  ASSERT_NE(server, nullptr);
  const Status status = authenticate(*client, *server);
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_TRUE(client->complete());
  EXPECT_EQ(server->client_principal(), kdc().user_principal());
  EXPECT_EQ(client->client_principal(), kdc().user_principal());
  EXPECT_EQ(server->mechanism(), Mechanism::kKerberos);
  EXPECT_EQ(client->target_spn(), "HTTP/localhost");
  // Nothing was written: neither the per-test ccache nor the fixture's default one.
  EXPECT_FALSE(std::filesystem::exists(ccache()));
  EXPECT_FALSE(std::filesystem::exists(kdc().ccache_path()));
}

TEST_F(KerberosContextTest, PasswordCredentialsSpnegoMech) {
  auto client = make_client(password_client(Mechanism::kSpnego));
  ASSERT_NE(client, nullptr);
  auto server = make_acceptor();
  ASSERT_NE(server, nullptr);
  const Status status = authenticate(*client, *server);
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_EQ(server->mechanism(), Mechanism::kSpnego);
  EXPECT_EQ(server->client_principal(), kdc().user_principal());
  EXPECT_FALSE(std::filesystem::exists(ccache()));
}

TEST_F(KerberosContextTest, DownLevelAndLowerCaseUserNamesReachTheSamePrincipal) {
  for (const std::string user : {"TEST\\alice", "test\\alice", "alice@test.local", "alice"}) {
    ClientOptions options = password_client(Mechanism::kSpnego);
    options.user = user;
    auto client = make_client(options);
    ASSERT_NE(client, nullptr) << user;
    auto server = make_acceptor();
    ASSERT_NE(server, nullptr);
    const Status status = authenticate(*client, *server);
    ASSERT_TRUE(status.ok()) << user << ": " << status.error().message;
    EXPECT_EQ(server->client_principal(), "alice@TEST.LOCAL") << user;
  }
}

TEST_F(KerberosContextTest, MutualAuthenticationNeedsTheServerReply) {
  auto client = make_client(password_client(Mechanism::kKerberos));
  ASSERT_NE(client, nullptr);
  auto first = client->step("");
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_FALSE(first->empty());
  // Without the AP-REP the client must not consider the server authenticated, nor seal anything.
  EXPECT_FALSE(client->complete());
  EXPECT_FALSE(client->wrap("secret soap").ok());
  auto server = make_acceptor();
  ASSERT_NE(server, nullptr);
  auto ap_rep = server->step(*first);
  ASSERT_TRUE(ap_rep.ok()) << ap_rep.error().message;
  ASSERT_FALSE(ap_rep->empty()) << "the acceptor must answer a mutual-auth request with an AP-REP";
  EXPECT_TRUE(server->complete());
  auto last = client->step(*ap_rep);
  ASSERT_TRUE(last.ok()) << last.error().message;
  EXPECT_TRUE(last->empty());
  EXPECT_TRUE(client->complete());
}

TEST_F(KerberosContextTest, ForgedServerReplyIsRejected) {
  auto client = make_client(password_client(Mechanism::kKerberos));
  ASSERT_NE(client, nullptr);
  auto first = client->step("");
  ASSERT_TRUE(first.ok());
  auto server = make_acceptor();
  ASSERT_NE(server, nullptr);
  auto ap_rep = server->step(*first);
  ASSERT_TRUE(ap_rep.ok());
  std::string forged = *ap_rep;
  forged[forged.size() - 3] ^= 0x5a;  // inside the encrypted part
  auto result = client->step(forged);
  ASSERT_FALSE(result.ok());
  EXPECT_FALSE(client->complete());
  EXPECT_THAT(result, ErrorWith(ErrorCode::kUnauthenticated,
                                ::testing::Field(&ErrorDetail::system_kind, SystemStatusKind::kGss)));
  EXPECT_NE(result.error().message.find("HTTP/localhost"), std::string::npos) << result.error().message;
}

TEST_F(KerberosContextTest, GarbageTokensBecomeErrors) {
  auto server = make_acceptor();
  ASSERT_NE(server, nullptr);
  for (const std::string& garbage : {std::string("\x60\x03\x06\x01", 4), std::string(300, '\xff'),
                                     std::string("NTLMSSP\0\x01\0\0\0", 12), std::string(1, '\x60')}) {
    auto fresh = make_acceptor();
    ASSERT_NE(fresh, nullptr);
    auto result = fresh->step(garbage);
    EXPECT_FALSE(result.ok());
  }
  auto empty = server->step("");
  EXPECT_FALSE(empty.ok());
  auto client = make_client(password_client(Mechanism::kSpnego));
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->step("").ok());
  auto bad_reply = client->step(std::string(64, '\x01'));
  EXPECT_FALSE(bad_reply.ok());
}

TEST_F(KerberosContextTest, StoredTicketIsUsedByALaterContext) {
  ASSERT_TRUE(
      winrm::gss::store_ticket_in_ccache(kdc().user_principal(), Secret(kdc().user_password()), "FILE:" + ccache())
          .ok());
  ASSERT_TRUE(std::filesystem::exists(ccache()));
  // The default identity (no user, no password) now comes from KRB5CCNAME.
  ClientOptions options;
  options.target.host = "localhost";
  auto client = make_client(options);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->client_principal(), kdc().user_principal());
  auto server = make_acceptor();
  ASSERT_NE(server, nullptr);
  const Status status = authenticate(*client, *server);
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_EQ(server->client_principal(), kdc().user_principal());
  // Naming the user without a password picks that principal's ticket too.
  ClientOptions named = options;
  named.user = "alice";
  auto named_client = make_client(named);
  ASSERT_NE(named_client, nullptr);
  auto named_server = make_acceptor();
  ASSERT_NE(named_server, nullptr);
  const Status named_status = authenticate(*named_client, *named_server);
  ASSERT_TRUE(named_status.ok()) << named_status.error().message;
}

TEST_F(KerberosContextTest, KinitTicketIsUsed) {
  if (::access("/usr/bin/kinit", X_OK) != 0) GTEST_SKIP() << "kinit not installed (krb5-user)";
  const std::string keytab = kdc().client_keytab();
  const std::string command =
      "/usr/bin/kinit -k -t " + keytab + " -c FILE:" + ccache() + " " + kdc().agent_principal() + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0);
  ClientOptions options;
  options.target.host = "localhost";
  options.mechanism = Mechanism::kKerberos;
  auto client = make_client(options);
  ASSERT_NE(client, nullptr);
  auto server = make_acceptor();
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(authenticate(*client, *server).ok());
  EXPECT_EQ(server->client_principal(), kdc().agent_principal());
}

TEST_F(KerberosContextTest, ClientKeytabIsTheAgentsOwnIdentity) {
  // No ccache yet: MIT falls back to KRB5_CLIENT_KTNAME.
  ASSERT_FALSE(std::filesystem::exists(ccache()));
  ClientOptions options;
  options.target.host = "localhost";
  auto client = make_client(options);
  ASSERT_NE(client, nullptr);
  auto server = make_acceptor();
  ASSERT_NE(server, nullptr);
  const Status status = authenticate(*client, *server);
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_EQ(server->client_principal(), kdc().agent_principal());
}

TEST_F(KerberosContextTest, NoCredentialsAtAllIsAClearError) {
  ::setenv("KRB5_CLIENT_KTNAME", ("FILE:" + kdc().dir() + "/missing.keytab").c_str(), 1);
  ClientOptions options;
  options.target.host = "localhost";
  auto client = GssContext::create(options);
  ASSERT_FALSE(client.ok());
  EXPECT_THAT(client, HasCode(ErrorCode::kFailedPrecondition));
  const std::string& message = client.error().message;
  EXPECT_NE(message.find("no Kerberos ticket or client keytab"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos);
}

TEST_F(KerberosContextTest, SpnWithPortTargetsThePortPrincipal) {
  // A keytab holding only HTTP/localhost:5985 proves which ticket the client asked for.
  const std::string port_keytab = kdc().dir() + "/port-only.keytab";
  ASSERT_TRUE(kdc().kadmin("ktadd -k " + port_keytab + " -norandkey HTTP/localhost:5985").ok());
  ClientOptions options = password_client(Mechanism::kSpnego);
  options.target.port = 5985;
  options.target.spn_with_port = true;
  auto client = make_client(options);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->target_spn(), "HTTP/localhost:5985");
  auto server = make_acceptor(acceptor_options(port_keytab));
  ASSERT_NE(server, nullptr);
  const Status status = authenticate(*client, *server);
  ASSERT_TRUE(status.ok()) << status.error().message;

  // The plain host-based SPN is not in that keytab: the acceptor refuses it.
  auto plain_client = make_client(password_client(Mechanism::kSpnego));
  ASSERT_NE(plain_client, nullptr);
  auto plain_server = make_acceptor(acceptor_options(port_keytab));
  ASSERT_NE(plain_server, nullptr);
  EXPECT_FALSE(authenticate(*plain_client, *plain_server).ok());
}

TEST_F(KerberosContextTest, DelegationForwardsTheTicket) {
  ClientOptions options = password_client(Mechanism::kSpnego);
  options.delegate = true;
  auto client = make_client(options);
  ASSERT_NE(client, nullptr);
  auto server = make_acceptor();
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(authenticate(*client, *server).ok());
  EXPECT_TRUE(client->delegated());
  EXPECT_TRUE(server->delegated());
  auto plain = make_client(password_client(Mechanism::kSpnego));
  auto plain_server = make_acceptor();
  ASSERT_TRUE(authenticate(*plain, *plain_server).ok());
  EXPECT_FALSE(plain_server->delegated());
}

class KerberosChannelBindingTest : public KerberosTest, public ::testing::WithParamInterface<Mechanism> {};

TEST_P(KerberosChannelBindingTest, MatchingBindingsAreAccepted) {
  const std::string binding = "tls-server-end-point:" + std::string(32, '\x11');
  ClientOptions options = password_client(GetParam());
  options.channel_binding = binding;
  auto client = make_client(options);
  auto server = make_acceptor(acceptor_options("", binding, true));
  ASSERT_NE(client, nullptr);
  ASSERT_NE(server, nullptr);
  const Status status = authenticate(*client, *server);
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_TRUE(server->channel_bound());
}

TEST_P(KerberosChannelBindingTest, MismatchedBindingsAreRejected) {
  ClientOptions options = password_client(GetParam());
  options.channel_binding = "tls-server-end-point:" + std::string(32, '\x11');
  auto client = make_client(options);
  auto server = make_acceptor(acceptor_options("", "tls-server-end-point:" + std::string(32, '\x22')));
  ASSERT_NE(client, nullptr);
  ASSERT_NE(server, nullptr);
  const Status status = authenticate(*client, *server);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find("channel bindings do not match"), std::string::npos) << status.error().message;
  // The peer could not prove it is on the same TLS channel: unauthenticated, with the GSS status.
  EXPECT_THAT(status, ErrorWith(ErrorCode::kUnauthenticated,
                                ::testing::Field(&ErrorDetail::system_kind, SystemStatusKind::kGss)));
  EXPECT_FALSE(server->complete());
}

TEST_P(KerberosChannelBindingTest, MissingBindingsAreRejectedWhenRequired) {
  auto client = make_client(password_client(GetParam()));
  auto server = make_acceptor(acceptor_options("", "tls-server-end-point:" + std::string(32, '\x11'), true));
  ASSERT_NE(client, nullptr);
  ASSERT_NE(server, nullptr);
  const Status status = authenticate(*client, *server);
  EXPECT_THAT(status, HasCode(ErrorCode::kUnauthenticated));
  EXPECT_NE(status.error().message.find("channel"), std::string::npos) << status.error().message;
}

TEST_P(KerberosChannelBindingTest, MissingBindingsAreToleratedWhenRelaxed) {
  auto client = make_client(password_client(GetParam()));
  auto server = make_acceptor(acceptor_options("", "tls-server-end-point:" + std::string(32, '\x11')));
  ASSERT_NE(client, nullptr);
  ASSERT_NE(server, nullptr);
  const Status status = authenticate(*client, *server);
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_FALSE(server->channel_bound());
}

INSTANTIATE_TEST_SUITE_P(Mechs, KerberosChannelBindingTest, ::testing::Values(Mechanism::kKerberos, Mechanism::kSpnego),
                         [](const auto& param_info) {
                           return param_info.param == Mechanism::kKerberos ? "Kerberos" : "Spnego";
                         });

}  // namespace
}  // namespace wincert::testing

namespace wincert::testing {
namespace {

// Untrusted peer tokens never crash: every single-byte corruption of a real AP-REQ / AP-REP either
// fails with one clean line or (for bytes outside the integrity-protected parts) still works.
class KerberosTokenMutationTest : public KerberosTest {};

TEST_F(KerberosTokenMutationTest, CorruptedApReqAndApRepNeverCrash) {
  auto client = GssContext::create(password_client(Mechanism::kSpnego));
  ASSERT_TRUE(client.ok()) << client.error().message;
  auto ap_req = (*client)->step("");
  ASSERT_TRUE(ap_req.ok());
  // The genuine exchange first: afterwards the authenticator is in the replay cache.
  auto genuine_server = GssAcceptor::create({});
  ASSERT_TRUE(genuine_server.ok());
  auto ap_rep = (*genuine_server)->step(*ap_req);
  ASSERT_TRUE(ap_rep.ok()) << ap_rep.error().message;
  std::size_t rejected = 0;
  for (std::size_t i = 0; i < ap_req->size(); i += 3) {
    std::string token = *ap_req;
    token[i] = static_cast<char>(token[i] ^ (1 + i % 255));
    auto server = GssAcceptor::create({});
    ASSERT_TRUE(server.ok());
    auto reply = (*server)->step(token);
    if (!reply.ok()) {
      ++rejected;
      EXPECT_EQ(reply.error().message.find('\n'), std::string::npos);
    }
  }
  EXPECT_GT(rejected, ap_req->size() / 6);  // every third byte tried; nearly all are protected

  // Truncations of the AP-REQ.
  for (std::size_t length = 0; length < ap_req->size(); length += 7) {
    auto server = GssAcceptor::create({});
    ASSERT_TRUE(server.ok());
    EXPECT_FALSE((*server)->step(ap_req->substr(0, length)).ok()) << "length " << length;
  }

  // Corrupted AP-REPs against fresh clients (each one a new AS + TGS exchange: keep the count modest).
  for (std::size_t i = 0; i < ap_rep->size(); i += 5) {
    auto fresh = GssContext::create(password_client(Mechanism::kSpnego));
    ASSERT_TRUE(fresh.ok());
    ASSERT_TRUE((*fresh)->step("").ok());
    std::string token = *ap_rep;  // from another context: always wrong for this one, parsed anyway
    token[i] = static_cast<char>(token[i] ^ 0x81);
    auto result = (*fresh)->step(token);
    EXPECT_FALSE(result.ok() && (*fresh)->complete()) << "byte " << i;
  }
}

}  // namespace
}  // namespace wincert::testing
