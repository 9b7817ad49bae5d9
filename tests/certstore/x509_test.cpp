#include "certstore/x509.hpp"
#include "common/encoding.hpp"
#include "test_support.hpp"
#include "tests/support/result_matchers.hpp"

#include <gtest/gtest.h>

#include <regex>

namespace wincert::certstore {
namespace {

using testing::load_contract;

std::string golden_der(std::size_t index) {
  const auto contract = load_contract("store-inventory");
  return *base64_decode(contract["output"]["Certificates"][index]["Base64"].get<std::string>());
}

TEST(X509, ParsesRsaLeafWithEverySanTypeLikeWindows) {
  auto info = parse_certificate_der(golden_der(0));
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->thumbprint, "426E9669376072D8D1461082A6E31AB4023E1857");
  EXPECT_EQ(info->subject, "CN=www.example.com, O=\"Keyfactor, Inc\", C=US");
  EXPECT_EQ(info->issuer, "CN=Example Issuing CA 1, O=Example Trust, C=US");
  EXPECT_EQ(info->serial, "00C0FFEE01");  // leading 00 kept, as Windows shows it
  EXPECT_EQ(info->key, (KeyParameters{KeyAlgorithm::kRsa, 2048, ""}));
  EXPECT_EQ(info->key.display(), "RSA 2048");
  EXPECT_FALSE(info->self_signed);
  const std::vector<SubjectAltName> expected = {
      {SanType::kDns, "www.example.com"},
      {SanType::kDns, "example.com"},
      {SanType::kIp, "192.0.2.10"},
      {SanType::kIp, "2001:db8::10"},
      {SanType::kEmail, "webmaster@example.com"},
      {SanType::kUri, "https://www.example.com/"},
      {SanType::kUpn, "web01@corp.example.com"},
  };
  EXPECT_EQ(info->sans, expected);
  const std::regex iso(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)");
  EXPECT_TRUE(std::regex_match(info->not_before, iso)) << info->not_before;
  EXPECT_TRUE(std::regex_match(info->not_after, iso)) << info->not_after;
  EXPECT_LT(info->not_before, info->not_after);
}

TEST(X509, ParsesEcP256SelfSigned) {
  auto info = parse_certificate_der(golden_der(1));
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->thumbprint, "3A95FCE68019E31A67985E09377E5AD7976F8FD9");
  EXPECT_EQ(info->subject, "CN=old.example.com");
  EXPECT_EQ(info->serial, "3003");
  EXPECT_EQ(info->key.algorithm, KeyAlgorithm::kEc);
  EXPECT_EQ(info->key.curve, "P-256");
  EXPECT_EQ(info->key.bits, 256);
  EXPECT_EQ(info->key.display(), "EC P-256");
  EXPECT_TRUE(info->self_signed);
}

TEST(X509, AcceptsBase64AndPem) {
  const std::string der = golden_der(0);
  auto from_base64 = parse_certificate_text(base64_encode(der));
  ASSERT_TRUE(from_base64.ok());
  std::string pem = "-----BEGIN CERTIFICATE-----\n";
  const std::string b64 = base64_encode(der);
  for (std::size_t i = 0; i < b64.size(); i += 64) pem += b64.substr(i, 64) + "\n";
  pem += "-----END CERTIFICATE-----\n";
  auto from_pem = parse_certificate_text(pem);
  ASSERT_TRUE(from_pem.ok()) << from_pem.error().message;
  EXPECT_EQ(from_pem->thumbprint, from_base64->thumbprint);
}

TEST(X509, GarbageTruncatedAndTrailingBytesAreErrorsNotCrashes) {
  const std::string der = golden_der(0);
  for (std::size_t cut : {std::size_t{0}, std::size_t{1}, std::size_t{10}, der.size() / 2, der.size() - 1}) {
    auto info = parse_certificate_der(der.substr(0, cut));
    ASSERT_FALSE(info.ok()) << "cut at " << cut;
    EXPECT_EQ(info.error().code, ErrorCode::kInvalidArgument);
  }
  auto trailing = parse_certificate_der(der + "x");
  ASSERT_FALSE(trailing.ok());
  EXPECT_THAT(trailing, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(trailing.error().message.find("trailing"), std::string::npos);
  std::string flipped = der;
  for (std::size_t i = 0; i < flipped.size(); i += 7) {
    flipped[i] = static_cast<char>(flipped[i] ^ 0x5A);
    (void)parse_certificate_der(flipped);  // must not crash, whatever it returns
  }
  EXPECT_FALSE(parse_certificate_text("not base64 !!").ok());
  EXPECT_FALSE(parse_certificate_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").ok());
}

// Both readers accept `der` and report the same thumbprint and SANs.
void expect_same_facts(const std::string& der) {
  auto full = parse_certificate_der(der);
  auto facts = inventory_facts_der(der);
  ASSERT_TRUE(full.ok()) << full.error().message;
  ASSERT_TRUE(facts.ok()) << facts.error().message;
  EXPECT_EQ(facts->thumbprint, full->thumbprint);
  EXPECT_EQ(facts->sans, full->sans);
}

// Inventory decodes only the thumbprint and the SANs (no OpenSSL X.509 parse): the same facts as the full parse.
TEST(X509, InventoryFactsAgreeWithTheFullParse) {
  for (std::size_t index : {std::size_t{0}, std::size_t{1}}) {
    SCOPED_TRACE(index);
    expect_same_facts(golden_der(index));
  }
  EXPECT_EQ(inventory_facts_der(golden_der(0))->sans.size(), 7u);  // every SAN type of the golden leaf
}

TEST(X509, InventoryFactsRefuseBrokenDerWithTheFullParsesMessages) {
  const std::string der = golden_der(0);
  EXPECT_EQ(inventory_facts_der("").error().message, parse_certificate_der("").error().message);
  const std::string garbage = "not a certificate";
  EXPECT_EQ(inventory_facts_der(garbage).error().message, "the certificate is not valid DER X.509");
  EXPECT_EQ(parse_certificate_der(garbage).error().message, "the certificate is not valid DER X.509");
  for (std::size_t cut = 0; cut < der.size(); ++cut) {
    auto facts = inventory_facts_der(der.substr(0, cut));
    ASSERT_FALSE(facts.ok()) << "cut at " << cut;
    EXPECT_THAT(facts, HasCode(ErrorCode::kInvalidArgument));
  }
  auto trailing = inventory_facts_der(der + "x");
  ASSERT_FALSE(trailing.ok());
  EXPECT_EQ(trailing.error().message, parse_certificate_der(der + "x").error().message);
  // BER's indefinite length, a SEQUENCE that is not a Certificate, a certificate with its fields out of order.
  EXPECT_FALSE(inventory_facts_der(std::string("\x30\x80\x02\x01\x00\x00\x00", 7)).ok());
  EXPECT_FALSE(inventory_facts_der(std::string("\x30\x03\x02\x01\x00", 5)).ok());
  std::string swapped = der;
  ASSERT_EQ(static_cast<unsigned char>(der[4]), 0x30u);  // tbsCertificate, after a 4-byte outer header
  swapped[4] = '\x31';                                   // a SET where tbsCertificate's SEQUENCE belongs
  EXPECT_FALSE(inventory_facts_der(swapped).ok());
  // Flipped bytes: never a crash, and whatever the full parse accepts gives the same facts.
  std::string flipped = der;
  for (std::size_t i = 0; i < flipped.size(); i += 7) {
    flipped[i] = static_cast<char>(flipped[i] ^ 0x5A);
    auto facts = inventory_facts_der(flipped);
    if (auto full = parse_certificate_der(flipped); full.ok()) {
      ASSERT_TRUE(facts.ok()) << "flip at " << i;
      EXPECT_EQ(facts->thumbprint, full->thumbprint);
      EXPECT_EQ(facts->sans, full->sans);
    }
  }
}

// Found by fuzz_pkcs12_x509: a DSA certificate whose subjectAltName holds an ediPartyName with a primitive
// [1] partyName (broken: the field is EXPLICIT). Both readers must report the same facts for it.
TEST(X509, InventoryFactsAgreeOnAnEdiPartyNameTheFullParseTakes) {
  const std::string der =
      base64_decode(
          "MIICujCCAnagAwIBAgIBLDALBgcqhkjOOAQDBQAwKjELMAkGA1UEBhMCdXMxDDAKBgNVBAoTA3N1bjENMAsGA1UECxMEbGFiczAe"
          "Fw0wNDAyMDkxOTQzNTJaFw0wNDAyMDkxOTTJNTJaMDsxCzAJBgNVBAYTAnVzMQwwCgYDVQQKEwNzdW4xDTALBgNbBAMTBGxhYnMx"
          "DzANBgNVBAMTBnlhc3NpcjCCAbcwggEsBgcqhkjOOAQBMIIBHwKBgQD9f1OBHXUSKVLfSpwu7OTn9hG3UjzvRADDHj+AtlEmaUVd"
          "QC9R+1k9jVj6v8X1ujD2y5tVbNeBO4AdNG/yZmC3a5lQpaSfn+gEexAiwk+7qdf+t8Yb+DstLS0tLUVORP+D9tPFHsMCNVQTWhaR"
          "MvZ1864rYdcq7/IiAxmd0UgBxwIVAJdgUI8VIwvMspK5gqLrhAvwWBz1AoGBAPfhoIXWmz3ey7yrXDa4V7l5lK+7+jrqgvlXTAs9"
          "B4JnUVlXjrrUWU/mcQcQgYC0SRZxI+hMKBYTt88JMIzIpuE8FnqLVHyNKOCjrh4rs6Z1kW6jfwv6ITVi8ftiegEkO8yk8b6oUZCJ"
          "qIPf4VrlnwaSi2ZegHtVJWQBTDv+z0kqA4GEAAKBgA2SU4K/vPP3bSu89PY+wY9WCpXiXE0P48RS3kCW2xtyMDHD0jWNlXAwOoQt"
          "d1xMzDgLP7+rKNiS0DlXcFWYjVq8O6txdXDLBPdOV9jRfCqgmKSqKOOB3Kqbqq5ugNwW3Sfz9+aWdW10L4QNgjGClBFllH5tzZMH"
          "aZPAPcc9XKy7oxswGTAXBgNVHREEEDAOpQyBChMIZWRpUGFydHkwCwYHKoZIzjgEAwUAAzEH0NH96v9yUUXreYTYZQdRbwP0Cvtg"
          "VF7IfAIVAIaUd40H3/1qE9/Jt4ci+JYBYXz3")
          .value();
  expect_same_facts(der);
  EXPECT_EQ(inventory_facts_der(der)->thumbprint, thumbprint_of(der));  // the input's bytes, as Windows hashes
}

TEST(X509, ThumbprintHelpers) {
  EXPECT_EQ(thumbprint_of(golden_der(0)), "426E9669376072D8D1461082A6E31AB4023E1857");
  // Copied from the Windows certificate dialog: spaces, lowercase and an invisible U+200E in front.
  EXPECT_EQ(normalize_thumbprint("\xE2\x80\x8E"
                                 "42 6e 96 69 37 60 72 d8 d1 46 10 82 a6 e3 1a b4 02 3e 18 57"),
            "426E9669376072D8D1461082A6E31AB4023E1857");
  EXPECT_EQ(normalize_thumbprint("42:6E:96:69:37:60:72:D8:D1:46:10:82:A6:E3:1A:B4:02:3E:18:57"),
            "426E9669376072D8D1461082A6E31AB4023E1857");
  EXPECT_EQ(normalize_thumbprint("426E"), "");
  EXPECT_EQ(normalize_thumbprint("Z26E9669376072D8D1461082A6E31AB4023E1857"), "");
}

TEST(X509, SanLabels) {
  EXPECT_EQ(san_type_windows_label(SanType::kDns), "DNS Name");
  EXPECT_EQ(san_type_windows_label(SanType::kIp), "IP Address");
  EXPECT_EQ(san_type_windows_label(SanType::kUpn), "Principal Name");
  EXPECT_EQ(san_type_key(SanType::kEmail), "email");
  EXPECT_EQ(san_type_key(SanType::kUri), "uri");
}

}  // namespace
}  // namespace wincert::certstore
