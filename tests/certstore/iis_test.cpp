#include "certstore/iis.hpp"
#include "tests/support/result_matchers.hpp"

#include <gtest/gtest.h>

namespace wincert::certstore {
namespace {

TEST(IisBindingInformation, ParsesIpv4WildcardAndIpv6) {
  EXPECT_EQ(*parse_binding_information("*:443:www.example.com"), (BindingAddress{"*", 443, "www.example.com"}));
  EXPECT_EQ(*parse_binding_information("10.0.0.5:8443:"), (BindingAddress{"10.0.0.5", 8443, ""}));
  EXPECT_EQ(*parse_binding_information("[2001:db8::10]:443:www.example.com"),
            (BindingAddress{"2001:db8::10", 443, "www.example.com"}));
  EXPECT_EQ(*parse_binding_information("[::]:443:"), (BindingAddress{"::", 443, ""}));
  EXPECT_EQ(*parse_binding_information(":80:"), (BindingAddress{"*", 80, ""}));
  EXPECT_FALSE(parse_binding_information("2001:db8::10:443:host").ok());  // IPv6 needs brackets
  EXPECT_FALSE(parse_binding_information("[2001:db8::10:443:host").ok());
  EXPECT_FALSE(parse_binding_information("*:0:host").ok());
  EXPECT_FALSE(parse_binding_information("*:70000:host").ok());
  EXPECT_FALSE(parse_binding_information("*").ok());
}

TEST(IisBindingInformation, FormatsAndRoundTrips) {
  EXPECT_EQ(*format_binding_information({"*", 443, "www.example.com"}), "*:443:www.example.com");
  EXPECT_EQ(*format_binding_information({"", 443, ""}), "*:443:");
  EXPECT_EQ(*format_binding_information({"2001:db8::10", 443, "a"}), "[2001:db8::10]:443:a");
  EXPECT_EQ(*format_binding_information({"[2001:db8::10]", 443, "a"}), "[2001:db8::10]:443:a");
  EXPECT_EQ(*format_binding_information({"192.0.2.10", 8443, ""}), "192.0.2.10:8443:");
  EXPECT_FALSE(format_binding_information({"300.1.1.1", 443, ""}).ok());
  EXPECT_FALSE(format_binding_information({"web server", 443, ""}).ok());
  EXPECT_FALSE(format_binding_information({"*", 0, ""}).ok());
  EXPECT_FALSE(format_binding_information({"*", 443, "a:b"}).ok());
  for (const BindingAddress& address : {BindingAddress{"fe80::1", 443, "h"}, BindingAddress{"*", 1, ""},
                                        BindingAddress{"10.1.2.3", 65535, "x.example.com"}}) {
    EXPECT_EQ(*parse_binding_information(*format_binding_information(address)), address);
  }
}

struct FlagCase {
  int build;
  int flags;
  bool valid;
};

TEST(IisSslFlags, ValidationMatrixPerOsBuild) {
  const FlagCase cases[] = {
      // Windows Server 2012 R2 (9600): SNI and central certificate store only.
      {9600, 0, true},
      {9600, 1, true},
      {9600, 3, true},
      {9600, 2, false},
      {9600, 4, false},
      // Server 2016 (14393): SNI and disable HTTP/2.
      {14393, 1, true},
      {14393, 4, true},
      {14393, 5, true},
      {14393, 3, false},
      {14393, 8, false},
      // Server 2019 (17763): plus disable OCSP stapling.
      {17763, 8, true},
      {17763, 13, true},
      {17763, 16, false},
      {17763, 2, false},
      // Server 2022 (20348) and later: plus QUIC, TLS 1.3 over TCP, legacy TLS.
      {20348, 16, true},
      {20348, 32, true},
      {20348, 64, true},
      {20348, 125, true},
      {20348, 127, false},
      {26100, 65, true},
      {26100, 2, false},
      {26100, 128, false},
      {26100, -1, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE("build " + std::to_string(c.build) + " flags " + std::to_string(c.flags));
    EXPECT_EQ(validate_ssl_flags(c.flags, c.build).ok(), c.valid);
  }
}

TEST(IisSslFlags, MessagesNameTheBitsAndTheBuild) {
  auto error = validate_ssl_flags(9, 14393);
  ASSERT_FALSE(error.ok());
  EXPECT_EQ(error.error().message,
            "the SSL flags value 9 uses bit(s) 8 that Windows build 14393 does not support (allowed: 1, 4)");
  auto central = validate_ssl_flags(2, 9600);
  ASSERT_FALSE(central.ok());
  EXPECT_THAT(central, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(central.error().message.find("without 1 (SNI)"), std::string::npos);
}

TEST(IisSslFlags, ParsesCommandText) {
  EXPECT_EQ(*parse_ssl_flags(""), 0);
  EXPECT_EQ(*parse_ssl_flags("0"), 0);
  EXPECT_EQ(*parse_ssl_flags(" 65 "), 65);
  EXPECT_EQ(*parse_ssl_flags("1 - SNI enabled"), 1);
  EXPECT_FALSE(parse_ssl_flags("SNI").ok());
  EXPECT_FALSE(parse_ssl_flags("1x").ok());
}

}  // namespace
}  // namespace wincert::certstore
