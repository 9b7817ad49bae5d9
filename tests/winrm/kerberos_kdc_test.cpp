// The test KDC fixture itself: it must be solid, many tests build on it.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/krb5_kdc.hpp"
#include "winrm/auth/gssapi_context.hpp"

namespace wincert::testing {
namespace {

Krb5KdcOptions realm_options(std::string realm) {
  Krb5KdcOptions options;
  options.realm = std::move(realm);
  return options;
}

bool port_open(unsigned short port) {
  const int sock = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool open = ::connect(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(sock);
  return open;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(KerberosKdcFixture, StartsIssuesTicketsStopsAndCleansUp) {
  if (!Krb5Kdc::binaries_available()) GTEST_SKIP() << Krb5Kdc::missing_binaries();
  std::string dir;
  unsigned short port = 0;
  {
    auto started = Krb5Kdc::start(realm_options("FIXTURE.TEST"));
    ASSERT_TRUE(started.ok()) << started.error().message;
    Krb5Kdc& kdc = **started;
    dir = kdc.dir();
    port = kdc.port();
    EXPECT_TRUE(kdc.running());
    EXPECT_TRUE(port_open(port));
    const std::string conf = read_all(kdc.krb5_conf());
    EXPECT_NE(conf.find("kdc = 127.0.0.1:" + std::to_string(port)), std::string::npos);
    EXPECT_NE(conf.find("udp_preference_limit = 1"), std::string::npos);
    EXPECT_NE(conf.find("dns_canonicalize_hostname = false"), std::string::npos);
    EXPECT_TRUE(std::filesystem::file_size(kdc.service_keytab()) > 0);
    EXPECT_TRUE(std::filesystem::file_size(kdc.client_keytab()) > 0);
    EXPECT_EQ(kdc.user_principal(), "alice@FIXTURE.TEST");

    kdc.apply_environment();
    const std::string cc = "FILE:" + kdc.dir() + "/fixture.cc";
    const Status ticket = winrm::gss::store_ticket_in_ccache(kdc.user_principal(), Secret(kdc.user_password()), cc);
    ASSERT_TRUE(ticket.ok()) << ticket.error().message;
    // Extra principals can be added at run time.
    ASSERT_TRUE(kdc.add_user("bob", "Bob-Passw0rd").ok());
    EXPECT_TRUE(winrm::gss::store_ticket_in_ccache("bob", Secret("Bob-Passw0rd"), cc).ok());

    kdc.stop();
    EXPECT_FALSE(kdc.running());
    EXPECT_FALSE(port_open(port));
    ASSERT_TRUE(kdc.restart().ok());
    EXPECT_TRUE(port_open(kdc.port()));
    EXPECT_TRUE(winrm::gss::store_ticket_in_ccache("bob", Secret("Bob-Passw0rd"), cc).ok());
  }
  EXPECT_FALSE(std::filesystem::exists(dir)) << "the realm directory must be removed";
}

TEST(KerberosKdcFixture, TwoRealmsSideBySide) {
  if (!Krb5Kdc::binaries_available()) GTEST_SKIP() << Krb5Kdc::missing_binaries();
  auto first = Krb5Kdc::start();
  auto second = Krb5Kdc::start(realm_options("SECOND.TEST"));
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_NE((*first)->port(), (*second)->port());
  EXPECT_NE((*first)->dir(), (*second)->dir());
}

}  // namespace
}  // namespace wincert::testing
