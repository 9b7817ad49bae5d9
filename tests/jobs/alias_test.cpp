#include "jobs/alias.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace wincert::jobs {
namespace {

constexpr const char* kThumb = "D263D275D35E881C2AAFAC6AAC1E59AE384DB486";

TEST(Thumbprint, Normalised) {
  auto t = normalize_thumbprint("d2 63 d2 75 d3 5e 88 1c 2a af ac 6a ac 1e 59 ae 38 4d b4 86", "JobCertificate.Alias");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t.value(), kThumb);
  t = normalize_thumbprint(
      "\xE2\x80\x8E"
      "d263d275d35e881c2aafac6aac1e59ae384db486",
      "x");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t.value(), kThumb);
  auto bad = normalize_thumbprint("D263D275", "JobCertificate.Alias");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("JobCertificate.Alias"), std::string::npos);
  EXPECT_FALSE(normalize_thumbprint("Z263D275D35E881C2AAFAC6AAC1E59AE384DB486", "x").ok());
}

TEST(IisAlias, FivePartForms) {
  auto a = parse_iis_alias(std::string(kThumb) + ":Default Web Site:*:443:");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->thumbprint, kThumb);
  EXPECT_EQ(a->site_name, "Default Web Site");
  EXPECT_EQ(a->ip_address, "*");
  EXPECT_EQ(a->port, 443);
  EXPECT_EQ(a->host_name, "");

  a = parse_iis_alias(std::string("d263d275d35e881c2aafac6aac1e59ae384db486") + ":Shop:10.0.0.5:8443:shop.example.com");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->thumbprint, kThumb);
  EXPECT_EQ(a->ip_address, "10.0.0.5");
  EXPECT_EQ(a->port, 8443);
  EXPECT_EQ(a->host_name, "shop.example.com");
}

TEST(IisAlias, Ipv6BracketedAndNot) {
  auto a = parse_iis_alias(std::string(kThumb) + ":Default Web Site:[2001:db8::1]:443:");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->ip_address, "2001:db8::1");
  EXPECT_EQ(a->port, 443);
  EXPECT_EQ(a->host_name, "");

  a = parse_iis_alias(std::string(kThumb) + ":Default Web Site:[2001:db8::1]:443:www.example.com");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->ip_address, "2001:db8::1");
  EXPECT_EQ(a->host_name, "www.example.com");

  a = parse_iis_alias(std::string(kThumb) + ":Default Web Site:2001:db8::1:443:");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->ip_address, "2001:db8::1");
  EXPECT_EQ(a->port, 443);

  a = parse_iis_alias(std::string(kThumb) + ":Site:::1:8443:host");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->ip_address, "::1");
  EXPECT_EQ(a->port, 8443);
  EXPECT_EQ(a->host_name, "host");
}

TEST(IisAlias, FourPartLegacyFormWithoutHost) {
  auto a = parse_iis_alias(std::string(kThumb) + ":Default Web Site:*:443");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->ip_address, "*");
  EXPECT_EQ(a->port, 443);
  EXPECT_EQ(a->host_name, "");
}

TEST(IisAlias, MalformedIsAnErrorNamingTheAlias) {
  for (std::string bad : {std::string("ABC:Site:*:443:"), std::string(kThumb), std::string(kThumb) + ":Site",
                          std::string(kThumb) + ":Site:*:https:", std::string(kThumb) + ":Site:*:70000:",
                          std::string(kThumb) + "::*:443:", std::string(kThumb) + ":Site::443:"}) {
    auto a = parse_iis_alias(bad);
    EXPECT_FALSE(a.ok()) << bad;
    if (!a.ok()) {
      EXPECT_NE(a.error().message.find("IIS alias"), std::string::npos);
    }
  }
}

TEST(IisAlias, BuildRoundTrips) {
  EXPECT_EQ(build_iis_alias("d263d275d35e881c2aafac6aac1e59ae384db486", "Default Web Site", "*", 443, ""),
            std::string(kThumb) + ":Default Web Site:*:443:");
  const std::string v6 = build_iis_alias(kThumb, "Site", "2001:db8::1", 443, "h");
  EXPECT_EQ(v6, std::string(kThumb) + ":Site:[2001:db8::1]:443:h");
  auto back = parse_iis_alias(v6);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->ip_address, "2001:db8::1");
  EXPECT_EQ(back->host_name, "h");
  EXPECT_EQ(binding_information("[::1]", 443, ""), "[::1]:443:");
}

TEST(SniFlag, NormalisationTable) {
  const std::pair<const char*, int> table[] = {{"0", 0},
                                               {"1", 1},
                                               {"2", 2},
                                               {"3", 3},
                                               {"32", 32},
                                               {" 4 ", 4},
                                               {"true", 1},
                                               {"TRUE", 1},
                                               {"false", 0},
                                               {"False", 0},
                                               {"0 - No SNI", 0},
                                               {"1 - SNI Enabled", 1},
                                               {"2 - Non SNI Binding", 2},
                                               {"3 - SNI Binding", 3},
                                               {"3 - sni binding", 3}};
  for (const auto& [text, expected] : table) {
    auto flag = normalize_sni_flag(text);
    ASSERT_TRUE(flag.ok()) << text;
    EXPECT_EQ(flag.value(), expected) << text;
  }
  for (const char* bad : {"", "SniFlagGoesHere", "4 - Other", "200", "-1"}) {
    auto flag = normalize_sni_flag(bad);
    ASSERT_FALSE(flag.ok()) << bad;
    EXPECT_NE(flag.error().message.find("SniFlag"), std::string::npos);
  }
}

EntryParameters good_entry() {
  EntryParameters e;
  e.site_name = "Default Web Site";
  e.ip_address = "*";
  e.protocol = "https";
  return e;
}

TEST(IisBinding, FromEntryParametersWithDefaults) {
  auto b = iis_binding_from_entry_parameters(good_entry());
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->site_name, "Default Web Site");
  EXPECT_EQ(b->ip_address, "*");
  EXPECT_EQ(b->port, 443);
  EXPECT_EQ(b->host_name, "");
  EXPECT_EQ(b->ssl_flags, 0);
  EXPECT_EQ(b->protocol, "https");

  EntryParameters e = good_entry();
  e.port = "8443";
  e.ip_address = "[2001:db8::1]";
  e.host_name = "www.example.com";
  e.sni_flag = "1 - SNI Enabled";
  e.protocol = "HTTPS";
  b = iis_binding_from_entry_parameters(e);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->port, 8443);
  EXPECT_EQ(b->ip_address, "2001:db8::1");
  EXPECT_EQ(b->ssl_flags, 1);
  EXPECT_EQ(b->protocol, "https");
}

TEST(IisBinding, MissingOrInvalidEntryParametersAreNamed) {
  auto expect_named = [](EntryParameters e, const char* name) {
    auto b = iis_binding_from_entry_parameters(e);
    ASSERT_FALSE(b.ok()) << name;
    EXPECT_NE(b.error().message.find(name), std::string::npos) << b.error().message;
  };
  EntryParameters e = good_entry();
  e.site_name.reset();
  expect_named(e, "SiteName");
  e = good_entry();
  e.ip_address = "";
  expect_named(e, "IPAddress");
  e = good_entry();
  e.protocol.reset();
  expect_named(e, "Protocol");
  e = good_entry();
  e.protocol = "ftp";
  expect_named(e, "Protocol");
  for (const char* port : {"abc", "0", "65536", "IISPortGoesHere"}) {
    e = good_entry();
    e.port = port;
    expect_named(e, "Port");
  }
  e = good_entry();
  e.ip_address = "IPAddressGoesHere";
  expect_named(e, "IPAddress");
  e = good_entry();
  e.sni_flag = "SniFlagGoesHere";
  expect_named(e, "SniFlag");

  // The Management fixture's placeholders are rejected, naming the first bad one.
  auto parsed = parse_job_config(testing::read_fixture("Management.json"));
  ASSERT_TRUE(parsed.ok());
  auto b = iis_binding_from_entry_parameters(parsed->entry);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message.find("IPAddress"), std::string::npos) << b.error().message;
}

TEST(IisBinding, SameIpAddress) {
  EXPECT_TRUE(same_ip_address("*", "*"));
  EXPECT_FALSE(same_ip_address("*", "0.0.0.0"));
  EXPECT_TRUE(same_ip_address("2001:DB8::1", "[2001:db8:0::1]"));
  EXPECT_TRUE(same_ip_address("10.0.0.1", "10.0.0.1"));
  EXPECT_FALSE(same_ip_address("10.0.0.1", "10.0.0.2"));
}

}  // namespace
}  // namespace wincert::jobs
