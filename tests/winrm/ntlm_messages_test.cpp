// NTLM message parsing on real Windows/pyspnego tokens, and the client's AUTHENTICATE parsed back.
#include <gtest/gtest.h>

#include "tests/support/result_matchers.hpp"
#include "tests/winrm/ntlm_test_util.hpp"
#include "winrm/auth/channel_binding.hpp"
#include "winrm/auth/ntlm.hpp"
#include "winrm/auth/ntlm_messages.hpp"

namespace wincert::winrm::ntlm {
namespace {

using testing::bytes_of;
using testing::from_hex;
using testing::read_fixture;
using testing::to_hex;

TEST(NtlmFixtures, WindowsChallengeParses) {
  const std::string raw = read_fixture("ntlm/ntlm_challenge");
  auto challenge = parse_challenge(bytes_of(raw));
  ASSERT_TRUE(challenge.ok()) << challenge.error().message;
  EXPECT_EQ(challenge->flags, 0xe2898235u);
  EXPECT_TRUE(challenge->flags & flag::kExtendedSessionSecurity);
  EXPECT_TRUE(challenge->flags & flag::kKeyExchange);
  EXPECT_EQ(challenge->target_name, "DOMAIN");
  EXPECT_EQ(to_hex(challenge->server_challenge), "e4101014cf8a90be");
  ASSERT_TRUE(challenge->version.has_value());
  EXPECT_EQ(challenge->version->major, 10);
  EXPECT_EQ(challenge->version->minor, 0);
  EXPECT_EQ(challenge->version->build, 14393);
  EXPECT_EQ(challenge->version->ntlm_revision, 15);

  const auto& info = challenge->target_info;
  ASSERT_EQ(info.pairs.size(), 6u);
  EXPECT_EQ(info.text(AvId::kNbDomainName), "DOMAIN");
  EXPECT_EQ(info.text(AvId::kNbComputerName), "DC01");
  EXPECT_EQ(info.text(AvId::kDnsDomainName), "domain.local");
  EXPECT_EQ(info.text(AvId::kDnsComputerName), "DC01.domain.local");
  EXPECT_EQ(info.text(AvId::kDnsTreeName), "domain.local");
  ASSERT_TRUE(info.timestamp().has_value());
  EXPECT_EQ(*info.timestamp(), 0x01d61e99889281f8ull);   // 2020-04-30, little-endian f8819288991ed601
  EXPECT_EQ(info.encode(), challenge->target_info_raw);  // re-encoding is lossless
}

TEST(NtlmFixtures, NegotiateParses) {
  const std::string raw = read_fixture("ntlm/ntlm_negotiate");
  auto negotiate = parse_negotiate(bytes_of(raw));
  ASSERT_TRUE(negotiate.ok()) << negotiate.error().message;
  EXPECT_EQ(negotiate->flags, 0xe20882b7u);
  EXPECT_TRUE(negotiate->domain.empty());
  EXPECT_TRUE(negotiate->workstation.empty());
  ASSERT_TRUE(negotiate->version.has_value());
  EXPECT_EQ(negotiate->version->build, 17763);
}

TEST(NtlmFixtures, AuthenticateWithUpnParses) {
  const std::string raw = read_fixture("ntlm/ntlm_authenticate");
  auto auth = parse_authenticate(bytes_of(raw));
  ASSERT_TRUE(auth.ok()) << auth.error().message;
  EXPECT_EQ(auth->user, "vagrant-domain@DOMAIN.LOCAL");  // UPN form: whole UPN as user, empty domain
  EXPECT_EQ(auth->domain, "");
  EXPECT_EQ(auth->workstation, "JBOREAN-LINUX");
  EXPECT_TRUE(auth->lm_challenge_response.empty());
  EXPECT_EQ(auth->encrypted_random_session_key.size(), 16u);
  EXPECT_FALSE(auth->mic.has_value());  // the payload starts at 72: no MIC field
  auto v2 = parse_ntlmv2_response(auth->nt_challenge_response);
  ASSERT_TRUE(v2.ok()) << v2.error().message;
  EXPECT_EQ(v2->timestamp, 0x01d61e99889281f8ull);
  EXPECT_EQ(v2->target_info.text(AvId::kTargetName), "dc01.domain.local");
  const auto* cbt = v2->target_info.find(AvId::kChannelBindings);
  ASSERT_NE(cbt, nullptr);
  EXPECT_EQ(cbt->value, Bytes(16, 0));  // the zeroed entry older gss-ntlmssp wrote (we never do)
}

TEST(NtlmFixtures, AuthenticateWithMicParses) {
  const std::string raw = read_fixture("ntlm/ntlm_authenticate_no_sign_seal");
  auto auth = parse_authenticate(bytes_of(raw));
  ASSERT_TRUE(auth.ok()) << auth.error().message;
  EXPECT_EQ(auth->lm_challenge_response.size(), 24u);
  EXPECT_EQ(auth->nt_challenge_response.size(), 0x110u);
  ASSERT_TRUE(auth->mic.has_value());
  EXPECT_EQ(to_hex(*auth->mic), "fe935dc88b782a1c01ae3965cf77627d");
  EXPECT_FALSE(auth->flags & flag::kSeal);
  EXPECT_TRUE(parse_ntlmv2_response(auth->nt_challenge_response).ok());
}

// ---- hostile input ------------------------------------------------------------------------------

TEST(NtlmParsing, EveryTruncationOfTheChallengeIsAnError) {
  const std::string raw = read_fixture("ntlm/ntlm_challenge");
  for (std::size_t n = 0; n < raw.size(); ++n) {
    auto parsed = parse_challenge(bytes_of(std::string_view(raw).substr(0, n)));
    EXPECT_FALSE(parsed.ok()) << "truncated to " << n << " bytes";
    if (!parsed.ok()) {
      EXPECT_THAT(parsed, HasCode(ErrorCode::kInvalidArgument));
    }
  }
}

TEST(NtlmParsing, OffsetsAndLengthsOutsideTheMessageAreErrors) {
  const std::string raw = read_fixture("ntlm/ntlm_challenge");
  auto with = [&](std::size_t at, std::uint8_t value) {
    std::string copy = raw;
    copy[at] = static_cast<char>(value);
    return parse_challenge(bytes_of(copy));
  };
  EXPECT_THAT(with(44, 0xF0), HasCode(ErrorCode::kInvalidArgument));  // TargetInfo offset far beyond the end
  EXPECT_THAT(with(40, 0xFF), HasCode(ErrorCode::kInvalidArgument));  // TargetInfo length beyond the end
  EXPECT_THAT(with(16, 0x04), HasCode(ErrorCode::kInvalidArgument));  // TargetName offset inside the fixed header
  EXPECT_THAT(with(12, 0x0D), HasCode(ErrorCode::kInvalidArgument));  // odd UTF-16 length
  EXPECT_THAT(with(8, 0x03), HasCode(ErrorCode::kInvalidArgument));   // wrong message type
  EXPECT_THAT(with(0, 'X'), HasCode(ErrorCode::kInvalidArgument));    // wrong signature
  // An AV pair whose length runs past the list.
  EXPECT_THAT(with(0x46, 0xFF), HasCode(ErrorCode::kInvalidArgument));
  // Timestamp with a length other than 8.
  EXPECT_THAT(with(0xC0, 0x07), HasCode(ErrorCode::kInvalidArgument));
  auto error = with(44, 0xF0);
  ASSERT_FALSE(error.ok());
  EXPECT_THAT(error, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(error.error().message.find("TargetInfo"), std::string::npos) << error.error().message;
}

TEST(NtlmParsing, AvPairListWithoutTerminatorIsAnError) {
  const Bytes no_eol = from_hex("0100 0400 4100 4200");
  EXPECT_FALSE(parse_target_info(no_eol).ok());
  const Bytes bad_eol = from_hex("0000 0200 0000");
  EXPECT_FALSE(parse_target_info(bad_eol).ok());
  EXPECT_TRUE(parse_target_info(from_hex("0000 0000")).ok());
}

TEST(NtlmParsing, OversizedMessageIsRejected) {
  std::string raw = read_fixture("ntlm/ntlm_challenge");
  raw.resize(kMaxMessageBytes + 1, '\0');
  EXPECT_FALSE(parse_challenge(bytes_of(raw)).ok());
}

// ---- our messages --------------------------------------------------------------------------------

TEST(NtlmClientMessages, NegotiateCarriesWinrmFlagsAndVersion) {
  Client client(Credentials{"user", "DOMAIN", Secret("pw")}, ClientOptions{});
  auto negotiate = client.negotiate();
  ASSERT_TRUE(negotiate.ok());
  EXPECT_EQ(negotiate->size(), 40u);
  auto parsed = parse_negotiate(*negotiate);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->flags, 0xe2888235u);
  for (auto f :
       {flag::kUnicode, flag::kRequestTarget, flag::kSign, flag::kSeal, flag::kNtlm, flag::kAlwaysSign,
        flag::kExtendedSessionSecurity, flag::kTargetInfo, flag::kVersion, flag::k128, flag::kKeyExchange, flag::k56})
    EXPECT_TRUE(parsed->flags & f) << std::hex << f;
  ASSERT_TRUE(parsed->version.has_value());
  EXPECT_EQ(parsed->version->ntlm_revision, 15);
}

ClientOptions deterministic_options() {
  ClientOptions options;
  options.target_spn = "HTTP/dc01.domain.local";
  std::uint8_t counter = 0;
  options.random = [counter](std::span<std::uint8_t> out) mutable -> Status {
    for (auto& b : out) b = ++counter;
    return {};
  };
  options.clock = [] { return 0x01d61e0000000000ull; };
  return options;
}

TEST(NtlmClientMessages, AuthenticateAgainstWindowsChallengeIsWellFormed) {
  const std::string challenge_raw = read_fixture("ntlm/ntlm_challenge");
  ClientOptions options = deterministic_options();
  options.channel_binding_application_data = std::string("tls-server-end-point:") + std::string(32, '\x42');
  Client client(Credentials{"vagrant-domain", "DOMAIN", Secret("VagrantPass1")}, options);
  auto negotiate = client.negotiate();
  ASSERT_TRUE(negotiate.ok());
  auto message = client.authenticate(bytes_of(challenge_raw));
  ASSERT_TRUE(message.ok()) << message.error().message;
  ASSERT_TRUE(client.complete());

  auto auth = parse_authenticate(*message);
  ASSERT_TRUE(auth.ok()) << auth.error().message;
  EXPECT_EQ(auth->user, "vagrant-domain");
  EXPECT_EQ(auth->domain, "DOMAIN");
  EXPECT_EQ(auth->flags, 0xe2888235u & 0xe2898235u);
  EXPECT_EQ(auth->lm_challenge_response, Bytes(24, 0));  // MIC present -> zero LM response
  EXPECT_EQ(auth->encrypted_random_session_key.size(), 16u);
  ASSERT_TRUE(auth->version.has_value());
  ASSERT_TRUE(auth->mic.has_value());

  // Every payload field lies after the 88-byte header (Version + MIC) and inside the message.
  const auto le16 = [&](std::size_t at) { return (*message)[at] | ((*message)[at + 1] << 8); };
  const auto le32 = [&](std::size_t at) {
    return static_cast<std::uint32_t>(le16(at)) | (static_cast<std::uint32_t>(le16(at + 2)) << 16);
  };
  for (std::size_t at : {12u, 20u, 28u, 36u, 44u, 52u}) {
    EXPECT_GE(le32(at + 4), 88u) << "field at " << at;
    EXPECT_LE(le32(at + 4) + le16(at), message->size()) << "field at " << at;
    EXPECT_EQ(le16(at), le16(at + 2)) << "Len == MaxLen at " << at;
  }

  // The client-modified AV pairs: server pairs kept in order, MIC flag, SPN and channel bindings.
  auto v2 = parse_ntlmv2_response(auth->nt_challenge_response);
  ASSERT_TRUE(v2.ok()) << v2.error().message;
  auto server = parse_challenge(bytes_of(challenge_raw));
  ASSERT_TRUE(server.ok());
  EXPECT_EQ(v2->timestamp, *server->target_info.timestamp());  // server time used
  for (std::size_t i = 0; i < server->target_info.pairs.size(); ++i) {
    EXPECT_EQ(v2->target_info.pairs[i].id, server->target_info.pairs[i].id);
    EXPECT_EQ(v2->target_info.pairs[i].value, server->target_info.pairs[i].value);
  }
  EXPECT_EQ(v2->target_info.av_flags(), kAvFlagMicPresent);
  EXPECT_EQ(v2->target_info.text(AvId::kTargetName), "HTTP/dc01.domain.local");
  const auto* cbt = v2->target_info.find(AvId::kChannelBindings);
  ASSERT_NE(cbt, nullptr);
  auto expected_cbt = ntlm_channel_bindings_hash(*options.channel_binding_application_data);
  ASSERT_TRUE(expected_cbt.ok());
  EXPECT_EQ(cbt->value, Bytes(expected_cbt->begin(), expected_cbt->end()));

  // Recompute the proof and MIC independently from the published formulas.
  auto key = nt_owf_v2(Secret("VagrantPass1"), "vagrant-domain", "DOMAIN");
  ASSERT_TRUE(key.ok());
  Bytes temp(auth->nt_challenge_response.begin() + 16, auth->nt_challenge_response.end());
  auto proof = ntlm_crypto::hmac_md5(*key, {server->server_challenge, temp});
  ASSERT_TRUE(proof.ok());
  EXPECT_EQ(*proof, v2->nt_proof_str);
  auto base_key = ntlm_crypto::hmac_md5(*key, *proof);
  ASSERT_TRUE(base_key.ok());
  auto exported = ntlm_crypto::rc4k(*base_key, auth->encrypted_random_session_key);
  ASSERT_TRUE(exported.ok());
  Bytes zeroed = *message;
  std::fill(zeroed.begin() + kMicOffset, zeroed.begin() + kMicOffset + 16, 0);
  auto mic = ntlm_crypto::hmac_md5(*exported, {*negotiate, bytes_of(challenge_raw), zeroed});
  ASSERT_TRUE(mic.ok());
  EXPECT_EQ(*mic, *auth->mic);
}

TEST(NtlmClientMessages, NoChannelBindingEntryWithoutTls) {
  Client client(Credentials{"u", "D", Secret("p")}, deterministic_options());
  ASSERT_TRUE(client.negotiate().ok());
  auto message = client.authenticate(bytes_of(read_fixture("ntlm/ntlm_challenge")));
  ASSERT_TRUE(message.ok());
  auto auth = parse_authenticate(*message);
  ASSERT_TRUE(auth.ok());
  auto v2 = parse_ntlmv2_response(auth->nt_challenge_response);
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->target_info.find(AvId::kChannelBindings), nullptr);
}

TEST(NtlmClientMessages, ChallengeWithoutTimestampUsesClockLmv2AndNoMic) {
  // Build a CHALLENGE without MsvAvTimestamp from the fixture's fields.
  TargetInfo info;
  info.set(AvId::kNbDomainName, Bytes{'D', 0});
  const Bytes info_bytes = info.encode();
  Bytes challenge = from_hex("4e544c4d53535000 02000000 0000 0000 38000000 35828ae2 0123456789abcdef 0000000000000000");
  challenge.push_back(static_cast<std::uint8_t>(info_bytes.size()));
  challenge.push_back(0);
  challenge.push_back(static_cast<std::uint8_t>(info_bytes.size()));
  challenge.push_back(0);
  for (std::uint8_t b : {0x38, 0, 0, 0}) challenge.push_back(b);
  for (std::uint8_t b : {10, 0, 0x39, 0x38, 0, 0, 0, 15}) challenge.push_back(b);
  challenge.insert(challenge.end(), info_bytes.begin(), info_bytes.end());

  ClientOptions options = deterministic_options();
  Client client(Credentials{"u", "D", Secret("p")}, options);
  ASSERT_TRUE(client.negotiate().ok());
  auto message = client.authenticate(challenge);
  ASSERT_TRUE(message.ok()) << message.error().message;
  auto auth = parse_authenticate(*message);
  ASSERT_TRUE(auth.ok());
  EXPECT_EQ(auth->lm_challenge_response.size(), 24u);
  EXPECT_NE(auth->lm_challenge_response, Bytes(24, 0));
  ASSERT_TRUE(auth->mic.has_value());
  EXPECT_EQ(*auth->mic, Digest16{});  // MIC field left zero
  auto v2 = parse_ntlmv2_response(auth->nt_challenge_response);
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->timestamp, 0x01d61e0000000000ull);
  EXPECT_FALSE(v2->target_info.av_flags().has_value());
}

TEST(NtlmClientMessages, ServerRefusingSealingIsAPermanentError) {
  std::string raw = read_fixture("ntlm/ntlm_challenge");
  raw[20] = static_cast<char>(raw[20] & ~0x20);  // clear NTLMSSP_NEGOTIATE_SEAL
  Client client(Credentials{"u", "D", Secret("p")}, deterministic_options());
  ASSERT_TRUE(client.negotiate().ok());
  auto message = client.authenticate(bytes_of(raw));
  // The server's policy, not a passing state: failed_precondition, not retried.
  EXPECT_THAT(message, HasCode(ErrorCode::kFailedPrecondition));
  EXPECT_FALSE(message.error().retryable());
}

TEST(NtlmClientMessages, ChallengeBeforeNegotiateIsAnError) {
  Client client(Credentials{"u", "D", Secret("p")}, deterministic_options());
  EXPECT_THAT(client.authenticate(bytes_of(read_fixture("ntlm/ntlm_challenge"))), HasCode(ErrorCode::kInternal));
}

TEST(NtlmClientMessages, NegotiateAgainStartsOverForReauthentication) {
  const std::string challenge = read_fixture("ntlm/ntlm_challenge");
  Client client(Credentials{"u", "D", Secret("p")}, ClientOptions{});
  ASSERT_TRUE(client.negotiate().ok());
  ASSERT_TRUE(client.authenticate(bytes_of(challenge)).ok());
  ASSERT_TRUE(client.complete());
  EXPECT_FALSE(client.authenticate(bytes_of(challenge)).ok()) << "a second CHALLENGE on a finished context";
  ASSERT_TRUE(client.negotiate().ok());  // new connection: everything reset
  EXPECT_FALSE(client.complete());
  EXPECT_EQ(client.session(), nullptr);
  ASSERT_TRUE(client.authenticate(bytes_of(challenge)).ok());
  EXPECT_TRUE(client.complete());
  auto session = client.take_session();
  ASSERT_TRUE(session.has_value());
  EXPECT_FALSE(client.complete());
}

TEST(NtlmClientMessages, PasswordNeverAppearsInTheMessage) {
  const std::string password = "Sup3rSecretPassw0rd";
  Client client(Credentials{"u", "D", Secret(password)}, deterministic_options());
  ASSERT_TRUE(client.negotiate().ok());
  auto message = client.authenticate(bytes_of(read_fixture("ntlm/ntlm_challenge")));
  ASSERT_TRUE(message.ok());
  const std::string bytes(message->begin(), message->end());
  EXPECT_EQ(bytes.find(password), std::string::npos);
  EXPECT_EQ(bytes.find(utf8_to_utf16le(password)), std::string::npos);
}

}  // namespace
}  // namespace wincert::winrm::ntlm
