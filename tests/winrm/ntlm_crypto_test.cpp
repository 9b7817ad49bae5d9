// MS-NLMP section 4.2 published vectors (NTLMv2, 4.2.4) and session security behaviour.
#include <gtest/gtest.h>

#include "tests/support/result_matchers.hpp"
#include "tests/winrm/ntlm_test_util.hpp"
#include "winrm/auth/legacy_crypto.hpp"
#include "winrm/auth/ntlm.hpp"
#include "winrm/auth/ntlm_session.hpp"

namespace wincert::winrm::ntlm {
namespace {

using testing::from_hex;
using testing::to_hex;

// MS-NLMP 4.2.1 common values.
const Challenge8 kServerChallenge = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
const Challenge8 kClientChallenge = {0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa};
Digest16 random_session_key() {
  Digest16 k;
  k.fill(0x55);
  return k;
}
// MS-NLMP 4.2.4: flags of the NTLMv2 example (KEY_EXCH, 56, 128, VERSION, TARGET_INFO, ESS,
// TARGET_TYPE_SERVER, ALWAYS_SIGN, NTLM, SEAL, SIGN, OEM, UNICODE).
constexpr std::uint32_t kVectorFlags = 0xe28a8233;

// 4.2.4.1.3: the AV pairs of the example CHALLENGE (MsvAvNbDomainName "Domain", MsvAvNbComputerName "Server").
Bytes vector_target_info() {
  TargetInfo info;
  const std::string domain = utf8_to_utf16le("Domain");
  const std::string server = utf8_to_utf16le("Server");
  info.pairs.push_back({AvId::kNbDomainName, Bytes(domain.begin(), domain.end())});
  info.pairs.push_back({AvId::kNbComputerName, Bytes(server.begin(), server.end())});
  return info.encode();
}

TEST(NtlmCrypto, LegacyProviderLoadsInItsOwnContext) {
  ASSERT_TRUE(ntlm_crypto::legacy_provider_available().ok());
  // MD4 is not reachable through the default library context: the legacy provider stays private.
  EVP_MD* md4_default = EVP_MD_fetch(nullptr, "MD4", nullptr);
  EXPECT_EQ(md4_default, nullptr) << "the legacy provider leaked into the default library context";
  EVP_MD_free(md4_default);
}

TEST(NtlmCrypto, Md4AndNtHashVectors) {
  auto empty = ntlm_crypto::md4({});
  ASSERT_TRUE(empty.ok()) << empty.error().message;
  EXPECT_EQ(to_hex(*empty), "31d6cfe0d16ae931b73c59d7e0c089c0");  // RFC 1320
  // MS-NLMP 4.2.2.1.2 NTOWFv1("Password")
  auto nt = ntlm_crypto::md4(testing::bytes_of(utf8_to_utf16le("Password")));
  ASSERT_TRUE(nt.ok());
  EXPECT_EQ(to_hex(*nt), "a4f49c406510bdcab6824ee7c30fd852");
}

TEST(NtlmCrypto, HmacMd5Rfc2202) {
  const Bytes key(16, 0x0b);
  auto mac = ntlm_crypto::hmac_md5(key, testing::bytes_of("Hi There"));
  ASSERT_TRUE(mac.ok());
  EXPECT_EQ(to_hex(*mac), "9294727a3638bb1c13f48ef8158bfc9d");
  auto split = ntlm_crypto::hmac_md5(key, {testing::bytes_of("Hi "), testing::bytes_of("There")});
  ASSERT_TRUE(split.ok());
  EXPECT_EQ(*split, *mac);
}

TEST(NtlmCrypto, Rc4StreamContinuesAcrossCalls) {
  // RFC 6229 key 0102030405 (40-bit), keystream offset 0: b2396305f03dc027ccc3524a0a1118a8
  const Bytes key = from_hex("0102030405");
  auto stream = ntlm_crypto::Rc4Stream::create(key);
  ASSERT_TRUE(stream.ok());
  Bytes first(8, 0), second(8, 0);
  ASSERT_TRUE(stream->apply(first.data(), first.size()).ok());
  ASSERT_TRUE(stream->apply(second.data(), second.size()).ok());
  EXPECT_EQ(to_hex(first) + to_hex(second), "b2396305f03dc027ccc3524a0a1118a8");
}

TEST(NtlmV2Vectors, ResponseKeyNt) {
  auto key = nt_owf_v2(Secret("Password"), "User", "Domain");
  ASSERT_TRUE(key.ok()) << key.error().message;
  EXPECT_EQ(to_hex(*key), "0c868a403bfd7a93a3001ef22ef02e3f");
}

TEST(NtlmV2Vectors, NtProofStrSessionBaseKeyAndLmv2) {
  auto key = nt_owf_v2(Secret("Password"), "User", "Domain");
  ASSERT_TRUE(key.ok());
  auto v2 = compute_ntlmv2_response(*key, kServerChallenge, kClientChallenge, 0, vector_target_info());
  ASSERT_TRUE(v2.ok()) << v2.error().message;
  EXPECT_EQ(to_hex(v2->nt_proof_str), "68cd0ab851e51c96aabc927bebef6a1c");
  EXPECT_EQ(to_hex(v2->session_base_key), "8de40ccadbc14a82f15cb0ad0de95ca3");
  // NtChallengeResponse = NTProofStr || temp (28 fixed bytes + AV pairs + 4 zero bytes).
  EXPECT_EQ(v2->nt_challenge_response.size(), 16u + 28u + vector_target_info().size() + 4u);
  auto parsed = parse_ntlmv2_response(v2->nt_challenge_response);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->client_challenge, kClientChallenge);
  EXPECT_EQ(parsed->timestamp, 0u);
  EXPECT_EQ(parsed->target_info.text(AvId::kNbComputerName), "Server");

  auto lm = lmv2_response(*key, kServerChallenge, kClientChallenge);
  ASSERT_TRUE(lm.ok());
  EXPECT_EQ(to_hex(*lm), "86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa");
}

TEST(NtlmV2Vectors, EncryptedRandomSessionKey) {
  const Bytes session_base_key = from_hex("8de40ccadbc14a82f15cb0ad0de95ca3");
  auto encrypted = ntlm_crypto::rc4k(session_base_key, random_session_key());
  ASSERT_TRUE(encrypted.ok());
  EXPECT_EQ(to_hex(*encrypted), "c5dad2544fc9799094ce1ce90bc9d03e");
}

TEST(NtlmV2Vectors, ClientSignAndSealKeys) {
  auto sign = sign_key(random_session_key(), true);
  auto seal = seal_key(random_session_key(), kVectorFlags, true);
  ASSERT_TRUE(sign.ok() && seal.ok());
  EXPECT_EQ(to_hex(*sign), "4788dc861b4782f35d43fd98fe1a2d39");
  EXPECT_EQ(to_hex(*seal), "59f600973cc4960a25480a7c196e4c58");
}

TEST(NtlmV2Vectors, GssWrapExOfPlaintext) {
  auto session = Session::create(random_session_key(), kVectorFlags, Role::kInitiator);
  ASSERT_TRUE(session.ok()) << session.error().message;
  auto wrapped = session->wrap(testing::bytes_of(utf8_to_utf16le("Plaintext")));
  ASSERT_TRUE(wrapped.ok()) << wrapped.error().message;
  EXPECT_EQ(to_hex(wrapped->sealed), "54e50165bf1936dc996020c1811b0f06fb5f");
  EXPECT_EQ(to_hex(wrapped->signature), "010000007fb38ec5c55d497600000000");
  EXPECT_EQ(session->outbound_sequence(), 1u);

  // The acceptor side of the same session key unwraps it.
  auto acceptor = Session::create(random_session_key(), kVectorFlags, Role::kAcceptor);
  ASSERT_TRUE(acceptor.ok());
  auto plain = acceptor->unwrap(wrapped->signature, wrapped->sealed);
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_EQ(std::string(plain->begin(), plain->end()), utf8_to_utf16le("Plaintext"));
}

class NtlmSessionPair : public ::testing::Test {
 protected:
  void SetUp() override {
    Digest16 key{};
    for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i * 7 + 3);
    auto c = Session::create(key, kWinrmClientFlags, Role::kInitiator);
    auto s = Session::create(key, kWinrmClientFlags, Role::kAcceptor);
    ASSERT_TRUE(c.ok() && s.ok());
    client_.emplace(std::move(*c));
    server_.emplace(std::move(*s));
  }
  std::optional<Session> client_;
  std::optional<Session> server_;
};

TEST_F(NtlmSessionPair, StreamsStayInStepAcrossManyMessagesBothWays) {
  for (int i = 0; i < 50; ++i) {
    const std::string request = "request " + std::to_string(i) + std::string(static_cast<std::size_t>(i * 13), 'x');
    auto sealed = client_->wrap(testing::bytes_of(request));
    ASSERT_TRUE(sealed.ok());
    EXPECT_NE(std::string(sealed->sealed.begin(), sealed->sealed.end()), request);
    auto opened = server_->unwrap(sealed->signature, sealed->sealed);
    ASSERT_TRUE(opened.ok()) << "message " << i << ": " << opened.error().message;
    EXPECT_EQ(std::string(opened->begin(), opened->end()), request);

    const std::string response = "response " + std::to_string(i);
    auto reply = server_->wrap(testing::bytes_of(response));
    ASSERT_TRUE(reply.ok());
    auto got = client_->unwrap(reply->signature, reply->sealed);
    ASSERT_TRUE(got.ok()) << got.error().message;
    EXPECT_EQ(std::string(got->begin(), got->end()), response);
  }
  EXPECT_EQ(client_->outbound_sequence(), 50u);
  EXPECT_EQ(client_->inbound_sequence(), 50u);
}

TEST_F(NtlmSessionPair, TamperedPayloadIsAnErrorNotACrash) {
  auto sealed = client_->wrap(testing::bytes_of("<s:Envelope/>"));
  ASSERT_TRUE(sealed.ok());
  sealed->sealed[3] ^= 0x01;
  auto opened = server_->unwrap(sealed->signature, sealed->sealed);
  ASSERT_FALSE(opened.ok());
  EXPECT_THAT(opened, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(opened.error().message.find("does not verify"), std::string::npos) << opened.error().message;
}

TEST_F(NtlmSessionPair, TamperedSignatureAndWrongSizeAreErrors) {
  auto sealed = client_->wrap(testing::bytes_of("payload"));
  ASSERT_TRUE(sealed.ok());
  auto bad = sealed->signature;
  bad[5] ^= 0x80;
  EXPECT_FALSE(server_->unwrap(bad, sealed->sealed).ok());
  EXPECT_FALSE(server_->unwrap(ByteView(sealed->signature).first(15), sealed->sealed).ok());
  EXPECT_FALSE(server_->unwrap({}, {}).ok());
}

TEST_F(NtlmSessionPair, SkippedMessageReportsSequenceMismatch) {
  ASSERT_TRUE(client_->wrap(testing::bytes_of("lost on the wire")).ok());
  auto second = client_->wrap(testing::bytes_of("arrives"));
  ASSERT_TRUE(second.ok());
  auto opened = server_->unwrap(second->signature, second->sealed);
  ASSERT_FALSE(opened.ok());
  EXPECT_THAT(opened, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(opened.error().message.find("sequence number 1"), std::string::npos) << opened.error().message;
}

TEST_F(NtlmSessionPair, ResetRestartsStreamsAndSequenceNumbers) {
  auto first = client_->wrap(testing::bytes_of("same"));
  ASSERT_TRUE(client_->wrap(testing::bytes_of("more")).ok());
  ASSERT_TRUE(client_->reset().ok());
  EXPECT_EQ(client_->outbound_sequence(), 0u);
  auto again = client_->wrap(testing::bytes_of("same"));
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_EQ(first->sealed, again->sealed);
  EXPECT_EQ(first->signature, again->signature);
}

TEST_F(NtlmSessionPair, SignAndVerifyWithoutSealing) {
  auto mic = client_->sign(testing::bytes_of("integrity only"));
  ASSERT_TRUE(mic.ok());
  EXPECT_TRUE(server_->verify(testing::bytes_of("integrity only"), *mic).ok());
  auto mic2 = client_->sign(testing::bytes_of("second"));
  ASSERT_TRUE(mic2.ok());
  EXPECT_FALSE(server_->verify(testing::bytes_of("Second"), *mic2).ok());
}

TEST(NtlmSession, RequiresExtendedSessionSecurity) {
  auto s = Session::create(random_session_key(), kWinrmClientFlags & ~flag::kExtendedSessionSecurity, Role::kInitiator);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s, HasCode(ErrorCode::kFailedPrecondition));
  EXPECT_NE(s.error().message.find("extended session security"), std::string::npos);
}

TEST(NtlmCredentials, DomainUserUpnAndLocal) {
  auto a = parse_credentials("CONTOSO\\alice", Secret("pw"));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->domain, "CONTOSO");
  EXPECT_EQ(a->user, "alice");
  auto b = parse_credentials("alice@contoso.com", Secret("pw"));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->domain, "");
  EXPECT_EQ(b->user, "alice@contoso.com");
  auto c = parse_credentials("administrator", Secret("pw"));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->domain, "");
  EXPECT_FALSE(parse_credentials("CONTOSO\\", Secret("pw")).ok());
  EXPECT_FALSE(parse_credentials("", Secret("pw")).ok());
}

TEST(NtlmCredentials, UserNameIsUppercasedBeyondAscii) {
  // NTOWFv2 upper-cases the user (not the domain): "user" and "USER" give the same key, and so do
  // "jörg" and "JÖRG"; the domain's case matters.
  auto lower = nt_owf_v2(Secret("pw"), "jörg", "Dom");
  auto upper = nt_owf_v2(Secret("pw"), "JÖRG", "Dom");
  auto other_domain_case = nt_owf_v2(Secret("pw"), "JÖRG", "DOM");
  ASSERT_TRUE(lower.ok() && upper.ok() && other_domain_case.ok());
  EXPECT_EQ(*lower, *upper);
  EXPECT_NE(*upper, *other_domain_case);
}

}  // namespace
}  // namespace wincert::winrm::ntlm
