// The Windows GssContext (SSPI) without a KDC: option checks, one clear error line when no Kerberos
// ticket can be had, no sealing before authentication, and the conversion of Wine's sealing layout.
#include <gtest/gtest.h>

#include <string>

#include "tests/support/result_matchers.hpp"
#include "winrm/auth/gssapi_context.hpp"
#include "winrm/auth/negotiate_http_auth.hpp"
#include "winrm/auth/wine_layout.hpp"

namespace wincert::winrm::gss {
namespace {

using winrm::kerberos_unavailable;

// An RFC 4121 wrap token as gss_wrap() emits it (RRC 0): header(16) || confounder(16) || data ||
// encrypted header copy(16) || checksum(12). The "ciphertext" bytes are labelled by their part.
std::string plain_wrap_token(const std::string& data, unsigned rrc = 0) {
  std::string header = {'\x05', '\x04', '\x06', '\xff', '\x00', '\x00', '\x00', '\x00'};
  header += std::string(8, '\x01');  // sequence number
  header[6] = static_cast<char>(rrc >> 8);
  header[7] = static_cast<char>(rrc & 0xff);
  std::string cipher = std::string(16, 'C') + data + std::string(16, 'H') + std::string(12, 'K');
  if (rrc != 0) cipher = cipher.substr(cipher.size() - rrc) + cipher.substr(0, cipher.size() - rrc);
  return header + cipher;
}

TEST(WineLayout, RotatesThePlainWrapTokenIntoTheWinrmLayout) {
  const std::string data = "0123456789abcdefghij-encrypted-soap";
  const std::string token = plain_wrap_token(data);
  // Wine: DATA = the token's first len(data) bytes, TOKEN = the rest.
  auto parts = wine::rotate_wrap_token(token.substr(0, data.size()), token.substr(data.size()));
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  ASSERT_EQ(parts->header.size(), 60u);  // what Windows sends for AES: 16 + 28 (trailer) + 16 (confounder)
  EXPECT_EQ(parts->header.substr(0, 6), token.substr(0, 6));
  EXPECT_EQ(static_cast<unsigned char>(parts->header[6]), 0u);
  EXPECT_EQ(static_cast<unsigned char>(parts->header[7]), 28u);  // RRC = trailer length
  EXPECT_EQ(parts->header.substr(8, 8), token.substr(8, 8));
  EXPECT_EQ(parts->header.substr(16), std::string(16, 'H') + std::string(12, 'K') + std::string(16, 'C'));
  EXPECT_EQ(parts->payload, data);
  // The same token from gss_wrap with the rotation already applied gives the same layout.
  const std::string rotated_input = plain_wrap_token(data, 7);
  auto again = wine::rotate_wrap_token(rotated_input.substr(0, data.size()), rotated_input.substr(data.size()));
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->header.substr(16), parts->header.substr(16));
  EXPECT_EQ(again->payload, data);
}

TEST(WineLayout, KeepsTheWinrmLayoutAsItIs) {
  const std::string data = "already rotated";
  const std::string token = plain_wrap_token(data, 28);
  const std::string header = token.substr(0, 60);
  const std::string payload = token.substr(60);
  auto parts = wine::rotate_wrap_token(payload, header);
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  EXPECT_EQ(parts->header, header);
  EXPECT_EQ(parts->payload, payload);
}

TEST(WineLayout, RejectsWhatIsNotASealedWrapToken) {
  EXPECT_FALSE(wine::rotate_wrap_token("not a token at all, no", "trailer bytes").ok());
  std::string unsealed = plain_wrap_token("data");
  unsealed[2] = '\x04';  // Sealed flag cleared
  EXPECT_FALSE(wine::rotate_wrap_token(unsealed.substr(0, 4), unsealed.substr(4)).ok());
  const std::string short_token = plain_wrap_token("data").substr(0, 30);
  EXPECT_FALSE(wine::rotate_wrap_token(short_token.substr(0, 4), short_token.substr(4)).ok());
}

TEST(SspiContext, NoTicketIsOneClearLineWithoutTheSecret) {
  // A realm nobody serves: SSPI cannot get a ticket. The error names the user or SPN and the SSPI status.
  ClientOptions options;
  options.target.host = "web01.nowhere.invalid";
  options.mechanism = Mechanism::kKerberos;
  options.scheme = HttpScheme::kKerberos;
  options.user = "alice@NOWHERE.INVALID";
  options.password = Secret("Sspi-Test-S3cret");
  auto context = GssContext::create(options);
  Result<std::string> first = context.ok() ? (*context)->step("") : Result<std::string>(context.error());
  ASSERT_FALSE(first.ok()) << "Kerberos to a realm without a KDC unexpectedly produced a token";
  const std::string& message = first.error().message;
  EXPECT_NE(message.find("Kerberos"), std::string::npos) << message;
  EXPECT_TRUE(message.find("alice@NOWHERE.INVALID") != std::string::npos ||
              message.find("HTTP/web01.nowhere.invalid") != std::string::npos)
      << message;
  EXPECT_NE(message.find("[SSPI "), std::string::npos) << message;
  EXPECT_EQ(message.find("Sspi-Test-S3cret"), std::string::npos);
  EXPECT_THAT(first.error().detail, ::testing::Field(&ErrorDetail::system_kind, SystemStatusKind::kSspi));
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(SspiContext, CurrentIdentityWithoutTicketsLetsNegotiateFallBack) {
  ClientOptions options;
  options.target.host = "web01.nowhere.invalid";
  auto context = GssContext::create(options);  // the current identity
  if (!context.ok()) {
    // No domain logon here (Wine, a workgroup machine): the error's code and SSPI status must make
    // NegotiateHttpAuth use NTLM instead.
    EXPECT_TRUE(kerberos_unavailable(context.error())) << context.error().message;
    EXPECT_NE(context.error().message.find("[SSPI AcquireCredentialsHandleW(Negotiate)"), std::string::npos)
        << context.error().message;
    return;
  }
  // A domain member: a credential handle exists, but nothing is sealed before authentication.
  EXPECT_FALSE((*context)->complete());
  EXPECT_FALSE((*context)->wrap("<s:Envelope/>").ok());
  EXPECT_FALSE((*context)->unwrap(std::string(60, 'h'), "payload").ok());
  EXPECT_EQ((*context)->target_spn(), "HTTP/web01.nowhere.invalid");
  EXPECT_EQ((*context)->protocol_name(), kSpnegoEncryptedProtocol);
}

}  // namespace
}  // namespace wincert::winrm::gss
