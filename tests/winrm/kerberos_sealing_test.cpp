// WinRM message sealing (winrm.md §3.9) over a real Kerberos context: header/payload split, both
// directions, ordering, tampering.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "tests/support/result_matchers.hpp"
#include "tests/winrm/kerberos_test_util.hpp"

namespace wincert::testing {
namespace {

using winrm::gss::GssAcceptor;
using winrm::gss::GssContext;
using winrm::gss::Mechanism;

class KerberosSealingTest : public KerberosTest, public ::testing::WithParamInterface<Mechanism> {
 protected:
  void SetUp() override {
    KerberosTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto client = GssContext::create(password_client(GetParam()));
    ASSERT_TRUE(client.ok()) << client.error().message;
    client_ = std::move(client).value();
    auto server = GssAcceptor::create({});
    ASSERT_TRUE(server.ok()) << server.error().message;
    server_ = std::move(server).value();
    const Status status = authenticate(*client_, *server_);
    ASSERT_TRUE(status.ok()) << status.error().message;
  }

  std::unique_ptr<GssContext> client_;
  std::unique_ptr<GssAcceptor> server_;
};

std::string soap_like(std::size_t size) {
  std::string text = "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\">";
  while (text.size() < size) text += static_cast<char>('a' + text.size() % 26);
  text.resize(size);
  return text;
}

TEST_P(KerberosSealingTest, ClientToServerRoundTripWithSspiHeaderLayout) {
  const std::string plain = soap_like(1500);
  auto sealed = client_->wrap(plain);
  ASSERT_TRUE(sealed.ok()) << sealed.error().message;
  // AES256-CTS-HMAC-SHA1-96 (the fixture's first enctype): 16-byte token header + 16 confounder +
  // 16 encrypted header copy + 12 checksum, all rotated into the header (RRC 28) = 60 bytes.
  EXPECT_EQ(sealed->header.size(), 60u);
  EXPECT_EQ(static_cast<unsigned char>(sealed->header[0]), 0x05);  // RFC 4121 wrap token id 05 04
  EXPECT_EQ(static_cast<unsigned char>(sealed->header[1]), 0x04);
  EXPECT_EQ(sealed->payload.size(), plain.size());  // AES-CTS: no padding
  EXPECT_EQ(sealed->original_length, plain.size());
  EXPECT_EQ(sealed->payload.find("Envelope"), std::string::npos) << "payload must be encrypted";
  auto opened = server_->unwrap(sealed->header, sealed->payload);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  EXPECT_EQ(*opened, plain);
}

TEST_P(KerberosSealingTest, ServerToClientRoundTrip) {
  const std::string plain = soap_like(70000);
  auto sealed = server_->wrap(plain);
  ASSERT_TRUE(sealed.ok()) << sealed.error().message;
  EXPECT_EQ(sealed->header.size(), 60u);
  auto opened = client_->unwrap(sealed->header, sealed->payload);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  EXPECT_EQ(*opened, plain);
}

TEST_P(KerberosSealingTest, ManyMessagesBothDirectionsInOrder) {
  for (std::size_t i = 0; i < 20; ++i) {
    const std::string request = soap_like(1 + i * 97);
    auto sealed = client_->wrap(request);
    ASSERT_TRUE(sealed.ok());
    auto opened = server_->unwrap(sealed->header, sealed->payload);
    ASSERT_TRUE(opened.ok()) << "message " << i << ": " << opened.error().message;
    EXPECT_EQ(*opened, request);
    const std::string response = soap_like(3 + i * 211);
    auto reply = server_->wrap(response);
    ASSERT_TRUE(reply.ok());
    auto reply_opened = client_->unwrap(reply->header, reply->payload);
    ASSERT_TRUE(reply_opened.ok()) << "reply " << i << ": " << reply_opened.error().message;
    EXPECT_EQ(*reply_opened, response);
  }
}

TEST_P(KerberosSealingTest, OneMegabyteMessage) {
  const std::string plain = soap_like(1 << 20);
  auto sealed = client_->wrap(plain);
  ASSERT_TRUE(sealed.ok());
  auto opened = server_->unwrap(sealed->header, sealed->payload);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  EXPECT_EQ(*opened, plain);
}

TEST_P(KerberosSealingTest, TamperedPayloadIsRejected) {
  auto sealed = client_->wrap(soap_like(512));
  ASSERT_TRUE(sealed.ok());
  std::string payload = sealed->payload;
  payload[100] ^= 0x01;
  auto opened = server_->unwrap(sealed->header, payload);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().message.find('\n'), std::string::npos);
  EXPECT_THAT(opened, ErrorWith(ErrorCode::kUnauthenticated,
                                ::testing::Field(&ErrorDetail::system_kind, SystemStatusKind::kGss)));
}

TEST_P(KerberosSealingTest, TamperedHeaderIsRejected) {
  auto sealed = server_->wrap(soap_like(512));
  ASSERT_TRUE(sealed.ok());
  for (std::size_t at : {std::size_t{20}, std::size_t{59}}) {
    std::string header = sealed->header;
    header[at] ^= 0x40;
    EXPECT_FALSE(client_->unwrap(header, sealed->payload).ok()) << "byte " << at;
  }
}

TEST_P(KerberosSealingTest, TruncatedOrEmptyPartsAreErrors) {
  auto sealed = client_->wrap(soap_like(256));
  ASSERT_TRUE(sealed.ok());
  EXPECT_FALSE(server_->unwrap("", sealed->payload).ok());
  EXPECT_FALSE(server_->unwrap(sealed->header.substr(0, 10), sealed->payload).ok());
  EXPECT_FALSE(server_->unwrap(sealed->header, sealed->payload.substr(0, 100)).ok());
  EXPECT_FALSE(server_->unwrap(std::string(60, '\0'), sealed->payload).ok());
}

TEST_P(KerberosSealingTest, ReplayedMessageIsRejected) {
  auto first = client_->wrap(soap_like(300));
  auto second = client_->wrap(soap_like(301));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(server_->unwrap(first->header, first->payload).ok());
  auto replay = server_->unwrap(first->header, first->payload);
  EXPECT_THAT(replay, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_TRUE(server_->unwrap(second->header, second->payload).ok());
}

TEST_P(KerberosSealingTest, ProtocolNameFollowsTheHttpScheme) {
  EXPECT_EQ(client_->protocol_name(), winrm::kSpnegoEncryptedProtocol);
  auto options = password_client(GetParam());
  options.scheme = winrm::gss::HttpScheme::kKerberos;
  auto kerberos_scheme = GssContext::create(options);
  ASSERT_TRUE(kerberos_scheme.ok());
  EXPECT_EQ((*kerberos_scheme)->protocol_name(), winrm::kKerberosEncryptedProtocol);
}

TEST_P(KerberosSealingTest, RandomCorruptionIsRejectedAndTheContextSurvives) {
  std::uint32_t seed = 12345;
  const auto next = [&seed] {
    seed = seed * 1103515245u + 12345u;
    return seed >> 8;
  };
  for (int round = 0; round < 300; ++round) {
    const std::string plain = soap_like(64 + next() % 2000);
    auto sealed = client_->wrap(plain);
    ASSERT_TRUE(sealed.ok());
    std::string header = sealed->header;
    std::string payload = sealed->payload;
    const std::size_t total = header.size() + payload.size();
    const std::size_t at = next() % total;
    const auto flip = static_cast<char>(1 + next() % 255);
    if (at < header.size()) {
      header[at] = static_cast<char>(header[at] ^ flip);
    } else {
      payload[at - header.size()] = static_cast<char>(payload[at - header.size()] ^ flip);
    }
    EXPECT_FALSE(server_->unwrap(header, payload).ok()) << "round " << round << " byte " << at;
    // The genuine message still opens afterwards: a forged one must not desynchronise the context.
    auto opened = server_->unwrap(sealed->header, sealed->payload);
    ASSERT_TRUE(opened.ok()) << "round " << round << ": " << opened.error().message;
    EXPECT_EQ(*opened, plain);
  }
}

INSTANTIATE_TEST_SUITE_P(Mechs, KerberosSealingTest, ::testing::Values(Mechanism::kKerberos, Mechanism::kSpnego),
                         [](const auto& param_info) {
                           return param_info.param == Mechanism::kKerberos ? "Kerberos" : "Spnego";
                         });

}  // namespace
}  // namespace wincert::testing
