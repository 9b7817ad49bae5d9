// multipart/encrypted framing (winrm.md 3.9): exact bytes, multi-part bodies, hostile bodies.
#include "winrm/encryption.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "tests/support/result_matchers.hpp"
#include "tests/winrm/ntlm_test_util.hpp"
#include "winrm/auth/ntlm_messages.hpp"
#include "winrm/auth/ntlm_session.hpp"

namespace wincert::winrm {
namespace {

// A transparent sealer with a fixed 16-byte header and a byte-wise XOR "cipher", so the framing can
// be checked byte for byte (like pypsrp's mock header "reallylongheader").
class MockSealer final : public MessageSealer {
 public:
  Result<SealedMessage> wrap(std::string_view plain) override {
    SealedMessage out;
    out.header = "reallylongheader";
    out.payload = xor_bytes(plain);
    out.original_length = plain.size();
    return out;
  }
  Result<std::string> unwrap(std::string_view header, std::string_view payload) override {
    if (header != "reallylongheader") return Error::invalid_argument("mock: bad header");
    return xor_bytes(payload);
  }
  std::string_view protocol_name() const override { return kSpnegoEncryptedProtocol; }

 private:
  static std::string xor_bytes(std::string_view in) {
    std::string out(in);
    for (auto& c : out) c = static_cast<char>(c ^ 0x5A);
    return out;
  }
};

constexpr std::string_view kContentType =
    "multipart/encrypted;protocol=\"application/HTTP-SPNEGO-session-encrypted\";boundary=\"Encrypted Boundary\"";

std::string expected_body(std::string_view plain) {
  std::string payload(plain);
  for (auto& c : payload) c = static_cast<char>(c ^ 0x5A);
  return "--Encrypted Boundary\r\n"
         "\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n"
         "\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=" +
         std::to_string(plain.size()) +
         "\r\n"
         "--Encrypted Boundary\r\n"
         "\tContent-Type: application/octet-stream\r\n" +
         std::string("\x10\0\0\0", 4) + "reallylongheader" + payload + "--Encrypted Boundary--\r\n";
}

TEST(EncryptedBody, ExactLayout) {
  MockSealer sealer;
  auto built = build_encrypted_body("<s:Envelope>hi</s:Envelope>", sealer);
  ASSERT_TRUE(built.ok());
  EXPECT_EQ(built->content_type, kContentType);
  EXPECT_EQ(built->body, expected_body("<s:Envelope>hi</s:Envelope>"));
  // No CRLF between the payload and the closing delimiter.
  EXPECT_EQ(built->body.find("\r\n--Encrypted Boundary--"), std::string::npos);
  auto parsed = parse_encrypted_body(built->body, built->content_type, sealer);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, "<s:Envelope>hi</s:Envelope>");
}

TEST(EncryptedBody, MultiplePartPairsAreConcatenated) {
  MockSealer sealer;
  std::string first = expected_body("<part one>");
  std::string second = expected_body("<part two>");
  first.erase(first.size() - std::string_view("--Encrypted Boundary--\r\n").size());  // open-ended first pair
  auto parsed = parse_encrypted_body(first + second, kContentType, sealer);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, "<part one><part two>");
}

TEST(EncryptedBody, ExchangeSpaceAfterDashesIsTolerated) {
  MockSealer sealer;
  std::string body = expected_body("<exchange/>");
  for (std::size_t at = body.find("--Encrypted"); at != std::string::npos; at = body.find("--Encrypted", at + 3))
    body.insert(at + 2, " ");
  ASSERT_NE(body.find("-- Encrypted Boundary--"), std::string::npos);
  auto parsed = parse_encrypted_body(body, kContentType, sealer);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, "<exchange/>");
}

TEST(EncryptedBody, HeadersWithoutTabsAndUnquotedParametersAreAccepted) {
  MockSealer sealer;
  std::string body = expected_body("<ruby/>");
  body.erase(std::remove(body.begin(), body.end(), '\t'), body.end());
  auto parsed = parse_encrypted_body(
      body, "multipart/encrypted; protocol=application/HTTP-SPNEGO-session-encrypted; boundary=Encrypted Boundary",
      sealer);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, "<ruby/>");
}

TEST(EncryptedBody, TruncationsAreErrorsExceptAMissingClosingHyphen) {
  MockSealer sealer;
  const std::string plain = "<s:Envelope>some reply text</s:Envelope>";
  const std::string body = expected_body(plain);
  const std::size_t last_delimiter_end = body.size() - std::string_view("--\r\n").size();
  for (std::size_t n = 0; n < body.size(); ++n) {
    auto parsed = parse_encrypted_body(std::string_view(body).substr(0, n), kContentType, sealer);
    if (n == last_delimiter_end || n >= last_delimiter_end + 2) {
      // Only the closing "--" and/or the final CRLF are missing: accepted, as pypsrp does.
      ASSERT_TRUE(parsed.ok()) << "truncated to " << n << " bytes: " << parsed.error().message;
      EXPECT_EQ(*parsed, plain);
    } else {
      EXPECT_FALSE(parsed.ok()) << "truncated to " << n << " bytes";
    }
  }
}

// pypsrp tests/tests_pypsrp/test_encryption.py: its MockAuth returns header "reallylongheader" and
// payload = data + "-encrypted" (so the payload is longer than Length=), and unwraps by dropping 10 bytes.
class PypsrpMockSealer final : public MessageSealer {
 public:
  explicit PypsrpMockSealer(std::string_view protocol) : protocol_(protocol) {}
  Result<SealedMessage> wrap(std::string_view plain) override {
    return SealedMessage{"reallylongheader", std::string(plain) + "-encrypted", plain.size()};
  }
  Result<std::string> unwrap(std::string_view header, std::string_view payload) override {
    if (header != "reallylongheader" || payload.size() < 10) return Error::invalid_argument("mock: bad part");
    return std::string(payload.substr(0, payload.size() - 10));
  }
  std::string_view protocol_name() const override { return protocol_; }

 private:
  std::string protocol_;
};

const std::string kPypsrpSmallSpnego = std::string(
                                           "--Encrypted Boundary\r\n\tContent-Type: application"
                                           "/HTTP-SPNEGO-session-encrypted\r\n\tOriginalContent: "
                                           "type=application/soap+xml;charset=UTF-8;Length=9\r\n"
                                           "--Encrypted Boundary\r\n\tContent-Type: application/"
                                           "octet-stream\r\n") +
                                       std::string("\x10\x00\x00\x00", 4) +
                                       "reallylongheaderplaintext-"
                                       "encrypted--Encrypted Boundary--\r\n";

TEST(EncryptedBodyPypsrpVectors, WrapSmallSpnego) {
  PypsrpMockSealer sealer(kSpnegoEncryptedProtocol);
  auto built = build_encrypted_body("plaintext", sealer);
  ASSERT_TRUE(built.ok());
  EXPECT_EQ(built->body, kPypsrpSmallSpnego);
}

TEST(EncryptedBodyPypsrpVectors, WrapLargeKerberos) {
  PypsrpMockSealer sealer(kKerberosEncryptedProtocol);
  const std::string plain(20000, 'a');
  auto built = build_encrypted_body(plain, sealer);
  ASSERT_TRUE(built.ok());
  EXPECT_EQ(built->body,
            "--Encrypted Boundary\r\n\tContent-Type: application"
            "/HTTP-Kerberos-session-encrypted\r\n\tOriginalContent: "
            "type=application/soap+xml;charset=UTF-8;Length=20000"
            "\r\n--Encrypted Boundary\r\n\tContent-Type: application"
            "/octet-stream\r\n" +
                std::string("\x10\x00\x00\x00", 4) + "reallylongheader" + plain +
                "-encrypted--Encrypted Boundary--\r\n");
  EXPECT_EQ(
      built->content_type,
      "multipart/encrypted;protocol=\"application/HTTP-Kerberos-session-encrypted\";boundary=\"Encrypted Boundary\"");
}

TEST(EncryptedBodyPypsrpVectors, UnwrapSmallSpnegoWithAndWithoutEndHyphens) {
  PypsrpMockSealer sealer(kSpnegoEncryptedProtocol);
  auto parsed = parse_encrypted_body(kPypsrpSmallSpnego, kContentType, sealer);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, "plaintext");
  std::string without = kPypsrpSmallSpnego;
  without.replace(without.size() - 4, 4, "\r\n");  // "--Encrypted Boundary\r\n" at the end
  auto parsed_without = parse_encrypted_body(without, kContentType, sealer);
  ASSERT_TRUE(parsed_without.ok()) << parsed_without.error().message;
  EXPECT_EQ(*parsed_without, "plaintext");
}

TEST(EncryptedBodyPypsrpVectors, UnwrapKerberosWithSpacesAfterDashes) {
  PypsrpMockSealer sealer(kKerberosEncryptedProtocol);
  const std::string body = std::string(
                               "-- Encrypted Boundary\r\n\tContent-Type: application"
                               "/HTTP-Kerberos-session-encrypted\r\n\tOriginalContent: "
                               "type=application/soap+xml;charset=UTF-8;Length=9\r\n"
                               "-- Encrypted Boundary\r\n\tContent-Type: application/"
                               "octet-stream\r\n") +
                           std::string("\x10\x00\x00\x00", 4) +
                           "reallylongheaderplaintext-"
                           "encrypted-- Encrypted Boundary--\r\n";
  auto parsed = parse_encrypted_body(
      body,
      "multipart/encrypted;protocol=\"application/HTTP-Kerberos-session-encrypted\";boundary=\"Encrypted Boundary\"",
      sealer);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, "plaintext");
}

TEST(EncryptedBodyPypsrpVectors, UnwrapCredSspWithOtherBoundaryAndTwoParts) {
  PypsrpMockSealer sealer("application/HTTP-CredSSP-session-encrypted");
  const std::string small = std::string(
                                "--Encrypted Boundary2\r\n\tContent-Type: application"
                                "/HTTP-CredSSP-session-encrypted\r\n\tOriginalContent: "
                                "type=application/soap+xml;charset=UTF-8;Length=9\r\n"
                                "--Encrypted Boundary2\r\n\tContent-Type: application/"
                                "octet-stream\r\n") +
                            std::string("\x10\x00\x00\x00", 4) +
                            "reallylongheaderplaintext-encrypted"
                            "--Encrypted Boundary2--\r\n";
  auto parsed = parse_encrypted_body(small,
                                     "multipart/x-multi-encrypted;protocol=\"application/"
                                     "HTTP-CredSSP-session-encrypted\";boundary=\"Encrypted Boundary2\"",
                                     sealer);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, "plaintext");

  const std::string large = std::string(
                                "--Encrypted Boundary\r\n\tContent-Type: application"
                                "/HTTP-CredSSP-session-encrypted\r\n\tOriginalContent: "
                                "type=application/soap+xml;charset=UTF-8;Length=16384"
                                "\r\n--Encrypted Boundary\r\n\tContent-Type: application"
                                "/octet-stream\r\n") +
                            std::string("\x10\x00\x00\x00", 4) + "reallylongheader" + std::string(16384, 'a') +
                            "-encrypted--Encrypted Boundary\r\n\tContent-Type: "
                            "application/HTTP-CredSSP-session-encrypted\r\n"
                            "\tOriginalContent: type=application/soap+xml;"
                            "charset=UTF-8;Length=3616\r\n--Encrypted Boundary\r\n"
                            "\tContent-Type: application/octet-stream\r\n" +
                            std::string("\x10\x00\x00\x00", 4) + "reallylongheader" + std::string(3616, 'a') +
                            "-encrypted--Encrypted Boundary--\r\n";
  auto parsed_large = parse_encrypted_body(
      large, "multipart/x-multi-encrypted;protocol=\"application/HTTP-CredSSP-session-encrypted\"", sealer);
  ASSERT_TRUE(parsed_large.ok()) << parsed_large.error().message;
  EXPECT_EQ(*parsed_large, std::string(20000, 'a'));
}

TEST(EncryptedBodyPypsrpVectors, UnwrapLengthMismatch) {
  PypsrpMockSealer sealer(kSpnegoEncryptedProtocol);
  std::string body = kPypsrpSmallSpnego;
  body.replace(body.find("plaintext-"), 10, "plain-");
  auto parsed = parse_encrypted_body(body, kContentType, sealer);
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(parsed, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(parsed.error().message.find("decrypted to 5 bytes"), std::string::npos) << parsed.error().message;
  EXPECT_NE(parsed.error().message.find("Length=9"), std::string::npos) << parsed.error().message;
}

TEST(EncryptedBody, LengthMismatchIsAnError) {
  MockSealer sealer;
  std::string body = expected_body("<abc/>");
  const auto at = body.find("Length=6");
  body.replace(at, 8, "Length=7");
  auto parsed = parse_encrypted_body(body, kContentType, sealer);
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(parsed, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(parsed.error().message.find("Length=7"), std::string::npos) << parsed.error().message;
}

TEST(EncryptedBody, OversizedOrBogusHeaderLengthIsAnError) {
  MockSealer sealer;
  const std::string good = expected_body("<abc/>");
  const auto len_at =
      good.find("application/octet-stream\r\n") + std::string_view("application/octet-stream\r\n").size();
  for (std::string_view length : {std::string_view("\xff\xff\xff\xff", 4), std::string_view("\x00\x10\x00\x00", 4),
                                  std::string_view("\x40\x00\x00\x00", 4), std::string_view("\x0f\x00\x00\x00", 4)}) {
    std::string body = good;
    body.replace(len_at, 4, length);
    auto parsed = parse_encrypted_body(body, kContentType, sealer);
    EXPECT_FALSE(parsed.ok()) << testing::to_hex(length);
  }
}

TEST(EncryptedBody, WrongContentTypeOrProtocolIsAnError) {
  MockSealer sealer;
  const std::string body = expected_body("<abc/>");
  EXPECT_FALSE(parse_encrypted_body(body, "application/soap+xml;charset=UTF-8", sealer).ok());
  auto kerberos = parse_encrypted_body(
      body,
      "multipart/encrypted;protocol=\"application/HTTP-Kerberos-session-encrypted\";boundary=\"Encrypted Boundary\"",
      sealer);
  ASSERT_FALSE(kerberos.ok());
  EXPECT_THAT(kerberos, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(kerberos.error().message.find("Kerberos"), std::string::npos);
  EXPECT_FALSE(parse_encrypted_body("", kContentType, sealer).ok());
  EXPECT_FALSE(parse_encrypted_body("--Encrypted Boundary--\r\n", kContentType, sealer).ok());
  EXPECT_FALSE(parse_encrypted_body("garbage", kContentType, sealer).ok());
}

TEST(EncryptedBody, ContentTypeDetection) {
  EXPECT_TRUE(is_encrypted_content_type(kContentType));
  EXPECT_TRUE(is_encrypted_content_type(" Multipart/Encrypted;protocol=x"));
  EXPECT_TRUE(
      is_encrypted_content_type("multipart/x-multi-encrypted;protocol=\"application/HTTP-CredSSP-session-encrypted\""));
  EXPECT_FALSE(is_encrypted_content_type("application/soap+xml;charset=UTF-8"));
}

class NtlmEncryptedBody : public ::testing::Test {
 protected:
  void SetUp() override {
    ntlm::Digest16 key{};
    key.fill(0x33);
    auto c = ntlm::Session::create(key, ntlm::kWinrmClientFlags, ntlm::Role::kInitiator);
    auto s = ntlm::Session::create(key, ntlm::kWinrmClientFlags, ntlm::Role::kAcceptor);
    ASSERT_TRUE(c.ok() && s.ok());
    client_.emplace(std::move(*c));
    server_.emplace(std::move(*s));
  }
  std::optional<ntlm::NtlmSealer> client_;
  std::optional<ntlm::NtlmSealer> server_;
};

TEST_F(NtlmEncryptedBody, RequestAndMultiPartResponseRoundTrip) {
  const std::string request = "<s:Envelope>request</s:Envelope>";
  auto body = build_encrypted_body(request, *client_);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->body.find(request), std::string::npos) << "plaintext leaked into the body";
  auto received = parse_encrypted_body(body->body, body->content_type, *server_);
  ASSERT_TRUE(received.ok()) << received.error().message;
  EXPECT_EQ(*received, request);

  // A response in two part pairs (each sealed in order with the server's stream).
  auto part1 = build_encrypted_body("<s:Envelope>resp", *server_);
  auto part2 = build_encrypted_body("onse</s:Envelope>", *server_);
  ASSERT_TRUE(part1.ok() && part2.ok());
  std::string joined =
      part1->body.substr(0, part1->body.size() - std::string_view("--Encrypted Boundary--\r\n").size());
  joined += part2->body;
  auto response = parse_encrypted_body(joined, part1->content_type, *client_);
  ASSERT_TRUE(response.ok()) << response.error().message;
  EXPECT_EQ(*response, "<s:Envelope>response</s:Envelope>");
}

TEST_F(NtlmEncryptedBody, TamperedPayloadIsRejected) {
  auto body = build_encrypted_body("<s:Envelope>request</s:Envelope>", *client_);
  ASSERT_TRUE(body.ok());
  std::string tampered = body->body;
  tampered[tampered.size() - std::string_view("--Encrypted Boundary--\r\n").size() - 3] ^= 0x04;
  auto parsed = parse_encrypted_body(tampered, body->content_type, *server_);
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(parsed, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(parsed.error().message.find("signature"), std::string::npos) << parsed.error().message;
}

TEST_F(NtlmEncryptedBody, LargeMessage) {
  std::string big(1 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 + 7);
  auto body = build_encrypted_body(big, *client_);
  ASSERT_TRUE(body.ok());
  auto parsed = parse_encrypted_body(body->body, body->content_type, *server_);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, big);
}

}  // namespace
}  // namespace wincert::winrm
