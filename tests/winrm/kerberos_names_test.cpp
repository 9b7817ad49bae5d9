// Pure naming rules (no KDC): SPNs and user principal mapping.
#include <gtest/gtest.h>

#include "tests/support/result_matchers.hpp"
#include "winrm/auth/gssapi_context.hpp"

namespace wincert::winrm::gss {
namespace {

Target target(std::string host, std::string service, std::uint16_t port, bool with_port) {
  Target t;
  t.host = std::move(host);
  t.service = std::move(service);
  t.port = port;
  t.spn_with_port = with_port;
  return t;
}

TEST(KerberosNames, ServicePrincipal) {
  EXPECT_EQ(service_principal(target("web01.corp.example", "HTTP", 0, false)), "HTTP/web01.corp.example");
  EXPECT_EQ(service_principal(target("web01", "WSMAN", 0, false)), "WSMAN/web01");
  EXPECT_EQ(service_principal(target("web01", "HTTP", 5985, true)), "HTTP/web01:5985");
  EXPECT_EQ(service_principal(target("web01", "HTTP", 5985, false)), "HTTP/web01");
}

TEST(KerberosNames, UserPrincipalMapping) {
  EXPECT_EQ(map_user_principal("alice", "CORP.EXAMPLE.COM"), "alice");
  EXPECT_EQ(map_user_principal("alice@corp.example.com", "CORP.EXAMPLE.COM"), "alice@CORP.EXAMPLE.COM");
  EXPECT_EQ(map_user_principal("alice@OTHER.ORG", ""), "alice@OTHER.ORG");
  EXPECT_EQ(map_user_principal("CORP\\alice", "CORP.EXAMPLE.COM"), "alice@CORP.EXAMPLE.COM");
  EXPECT_EQ(map_user_principal("corp\\alice", "CORP.EXAMPLE.COM"), "alice@CORP.EXAMPLE.COM");
  EXPECT_EQ(map_user_principal("OTHER\\alice", "CORP.EXAMPLE.COM"), "alice@OTHER");
  EXPECT_EQ(map_user_principal("corp.example.com\\alice", ""), "alice@CORP.EXAMPLE.COM");
  EXPECT_EQ(map_user_principal("  alice@test.local ", "TEST.LOCAL"), "alice@TEST.LOCAL");
}

TEST(KerberosNames, CreateRejectsIncompleteOptions) {
  auto no_host = GssContext::create({});
  ASSERT_FALSE(no_host.ok());
  EXPECT_EQ(no_host.error().code, ErrorCode::kInvalidArgument);
  ClientOptions no_port;
  no_port.target = target("h", "HTTP", 0, true);
  ASSERT_FALSE(GssContext::create(no_port).ok());
  ClientOptions password_only;
  password_only.target = target("h", "HTTP", 0, false);
  password_only.password = Secret("Sup3r-S3cret");
  auto refused = GssContext::create(password_only);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_EQ(refused.error().message.find("Sup3r-S3cret"), std::string::npos);
#ifndef _WIN32  // the acceptor (tests and winhost-sim) exists only in the Linux (MIT GSSAPI) build
  AcceptorOptions strict;
  strict.require_channel_binding = true;
  auto strict_without_data = GssAcceptor::create(strict);
  ASSERT_FALSE(strict_without_data.ok());
#endif
}

}  // namespace
}  // namespace wincert::winrm::gss
