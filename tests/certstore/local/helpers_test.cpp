// The local backend's building blocks that need no key storage: text at the Win32 boundary, signature
// encodings, subject encoding, and the PKCS#10 builder signing through an in-process OpenSSL key (which
// covers its ECDSA path even under Wine, whose key providers hold no ECC keys).
#include "certstore/csr.hpp"
#include "certstore/local/machine_key.hpp"
#include "certstore/local/request_builder.hpp"
#include "common/win32_text.hpp"
#include "local_test_support.hpp"
#include "tests/support/result_matchers.hpp"

#include <gtest/gtest.h>
#include <openssl/ecdsa.h>

namespace wincert::certstore::local {
namespace {

using testing::make_ec_key;
using testing::make_rsa_key;

TEST(Win32Text, WidenNarrowRoundTripsUnicode) {
  const std::string text = "Caf\u00E9 \u263A \U0001F512 Keyfactor";
  const std::wstring wide = widen(text);
  EXPECT_EQ(wide.size(), 19u);  // the lock is a surrogate pair
  EXPECT_EQ(narrow(wide), text);
  EXPECT_EQ(narrow(static_cast<const wchar_t*>(nullptr)), "");
  EXPECT_TRUE(widen("").empty());
}

TEST(Win32Text, ErrorTextNamesTheCode) {
  EXPECT_EQ(error_text(static_cast<DWORD>(NTE_BAD_KEYSET)).rfind("0x80090016 NTE_BAD_KEYSET", 0), 0u);
  EXPECT_EQ(error_text(static_cast<DWORD>(CRYPT_E_NOT_FOUND)).rfind("0x80092004 CRYPT_E_NOT_FOUND", 0), 0u);
  EXPECT_EQ(call_failed("CertOpenStore", ERROR_ACCESS_DENIED)
                .rfind("CertOpenStore failed: 0x00000005 ERROR_ACCESS_DENIED", 0),
            0u);
  // Unknown codes still show their number.
  EXPECT_EQ(error_text(0x12345678).rfind("0x12345678", 0), 0u);
}

TEST(SignatureEncoding, CryptoApiSignaturesAreReversed) {
  EXPECT_EQ(reversed(std::string("\x01\x02\x03", 3)), std::string("\x03\x02\x01", 3));
  EXPECT_EQ(reversed(""), "");
}

TEST(SignatureEncoding, P1363ToDerKeepsRAndS) {
  std::string rs(64, '\0');
  rs[0] = '\x80';  // r with the high bit set needs a leading zero in DER
  rs[31] = '\x01';
  rs[63] = '\x02';
  auto der = ecdsa_p1363_to_der(rs);
  ASSERT_TRUE(der.ok()) << der.error().message;
  const auto* p = reinterpret_cast<const unsigned char*>(der->data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der->size()));
  ASSERT_NE(sig, nullptr);
  unsigned char r[32], s[32];
  ASSERT_EQ(BN_bn2binpad(ECDSA_SIG_get0_r(sig), r, 32), 32);
  ASSERT_EQ(BN_bn2binpad(ECDSA_SIG_get0_s(sig), s, 32), 32);
  ECDSA_SIG_free(sig);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(r), 32), rs.substr(0, 32));
  EXPECT_EQ(std::string(reinterpret_cast<char*>(s), 32), rs.substr(32));
  EXPECT_FALSE(ecdsa_p1363_to_der("abc").ok());
  EXPECT_FALSE(ecdsa_p1363_to_der("").ok());
}

std::string windows_form(const std::string& subject_der) {
  const auto* p = reinterpret_cast<const unsigned char*>(subject_der.data());
  X509_NAME* name = d2i_X509_NAME(nullptr, &p, static_cast<long>(subject_der.size()));
  // Describe through a throwaway request so the project's own Windows-form printer is used.
  ossl::X509ReqPtr request(X509_REQ_new());
  X509_REQ_set_subject_name(request.get(), name);
  X509_NAME_free(name);
  auto key = make_ec_key("P-256");
  X509_REQ_set_pubkey(request.get(), key.get());
  X509_REQ_sign(request.get(), key.get(), EVP_sha256());
  unsigned char* der = nullptr;
  const int length = i2d_X509_REQ(request.get(), &der);
  auto info = parse_csr(std::string(reinterpret_cast<char*>(der), static_cast<std::size_t>(length)));
  OPENSSL_free(der);
  return info ? info->subject : "unparsable: " + info.error().message;
}

TEST(SubjectEncoding, MostSpecificFirstAsWindowsShowsIt) {
  auto der = encode_subject("CN=web01.example.com,OU=Web,O=Keyfactor\\, Inc,L=Independence,S=Ohio,C=US");
  ASSERT_TRUE(der.ok()) << der.error().message;
  EXPECT_EQ(windows_form(*der), "CN=web01.example.com, OU=Web, O=\"Keyfactor, Inc\", L=Independence, S=Ohio, C=US");
  // The encoding itself starts with C (least specific), as CAs and certreq write it.
  const auto* p = reinterpret_cast<const unsigned char*>(der->data());
  X509_NAME* name = d2i_X509_NAME(nullptr, &p, static_cast<long>(der->size()));
  ASSERT_NE(name, nullptr);
  EXPECT_EQ(OBJ_obj2nid(X509_NAME_ENTRY_get_object(X509_NAME_get_entry(name, 0))), NID_countryName);
  X509_NAME_free(name);
}

TEST(SubjectEncoding, QuotesOidsAndWindowsKeys) {
  auto der = encode_subject("CN=\"a, b\", E=admin@example.com, OID.2.5.4.97=VATDE-123, DC=corp, DC=example");
  ASSERT_TRUE(der.ok()) << der.error().message;
  EXPECT_EQ(windows_form(*der), "CN=\"a, b\", E=admin@example.com, OID.2.5.4.97=VATDE-123, DC=corp, DC=example");
}

TEST(SubjectEncoding, BadSubjectsAreInvalidInput) {
  for (const char* subject : {"", "   ", "CN", "=x", "CN=\"open", "XYZ=1", "C=USA"}) {
    SCOPED_TRACE(subject);
    auto der = encode_subject(subject);
    ASSERT_FALSE(der.ok());
    EXPECT_EQ(der.error().code, ErrorCode::kInvalidArgument);
  }
}

// A signer backed by an in-process OpenSSL key (what MachineKey::sign_digest returns, X.509-encoded).
DigestSigner openssl_signer(EVP_PKEY* key, const EVP_MD* md) {
  return [key, md](std::string_view digest) -> Result<std::string> {
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(key, nullptr);
    std::size_t size = 0;
    std::string signature;
    if (EVP_PKEY_sign_init(ctx) == 1 && EVP_PKEY_CTX_set_signature_md(ctx, md) == 1 &&
        EVP_PKEY_sign(ctx, nullptr, &size, reinterpret_cast<const unsigned char*>(digest.data()), digest.size()) == 1) {
      signature.resize(size);
      if (EVP_PKEY_sign(ctx, reinterpret_cast<unsigned char*>(signature.data()), &size,
                        reinterpret_cast<const unsigned char*>(digest.data()), digest.size()) != 1) {
        size = 0;
      }
    }
    EVP_PKEY_CTX_free(ctx);
    if (size == 0) return Error::internal("test signer failed");
    signature.resize(size);
    return signature;
  };
}

std::string public_key_der(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int length = i2d_PUBKEY(key, &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(length));
  OPENSSL_free(der);
  return out;
}

const std::vector<SubjectAltName> kSans{{SanType::kDns, "web01.example.com"},
                                        {SanType::kDns, "www.example.com"},
                                        {SanType::kIp, "192.0.2.10"},
                                        {SanType::kIp, "2001:db8::1"},
                                        {SanType::kEmail, "admin@example.com"},
                                        {SanType::kUri, "https://example.com/"},
                                        {SanType::kUpn, "svc-web@corp.example.com"}};

TEST(RequestBuilder, RsaRequestCarriesSubjectSansAndAValidSignature) {
  auto key = make_rsa_key(2048);
  auto der = build_signed_request("CN=web01.example.com,O=Keyfactor\\, Inc,C=US", kSans, public_key_der(key.get()),
                                  DigestAlgorithm::kSha256, false, openssl_signer(key.get(), EVP_sha256()));
  ASSERT_TRUE(der.ok()) << der.error().message;
  auto info = parse_csr(*der);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_TRUE(info->signature_valid);
  EXPECT_EQ(info->subject, "CN=web01.example.com, O=\"Keyfactor, Inc\", C=US");
  EXPECT_EQ(info->sans, kSans);
  EXPECT_EQ(info->key.display(), "RSA 2048");
}

TEST(RequestBuilder, EcdsaRequestsUseTheCurvesDigest) {
  struct Case {
    const char* curve;
    DigestAlgorithm digest;
    const EVP_MD* md;
  };
  for (const Case& c :
       {Case{"P-256", DigestAlgorithm::kSha256, EVP_sha256()}, Case{"P-384", DigestAlgorithm::kSha384, EVP_sha384()},
        Case{"P-521", DigestAlgorithm::kSha512, EVP_sha512()}}) {
    SCOPED_TRACE(c.curve);
    auto key = make_ec_key(c.curve);
    auto der = build_signed_request("CN=ecc.example.com", {{SanType::kDns, "ecc.example.com"}},
                                    public_key_der(key.get()), c.digest, true, openssl_signer(key.get(), c.md));
    ASSERT_TRUE(der.ok()) << der.error().message;
    auto info = parse_csr(*der);
    ASSERT_TRUE(info.ok());
    EXPECT_TRUE(info->signature_valid);
    EXPECT_EQ(info->key.curve, c.curve);
  }
}

TEST(RequestBuilder, ASignatureFromAnotherKeyIsRefused) {
  auto key = make_rsa_key(2048);
  auto other = make_rsa_key(2048);
  auto der = build_signed_request("CN=x", {}, public_key_der(key.get()), DigestAlgorithm::kSha256, false,
                                  openssl_signer(other.get(), EVP_sha256()));
  ASSERT_FALSE(der.ok());
  EXPECT_THAT(der, HasCode(ErrorCode::kFailedPrecondition));
}

TEST(RequestBuilder, BadSansAreInvalidInput) {
  auto key = make_ec_key("P-256");
  for (const SubjectAltName& san :
       {SubjectAltName{SanType::kIp, "300.1.1.1"}, SubjectAltName{SanType::kDns, ""},
        SubjectAltName{SanType::kDns, "b\u00FCcher.example"}, SubjectAltName{SanType::kOther, "x"}}) {
    SCOPED_TRACE(san.value);
    auto der = build_signed_request("CN=x", {san}, public_key_der(key.get()), DigestAlgorithm::kSha256, true,
                                    openssl_signer(key.get(), EVP_sha256()));
    ASSERT_FALSE(der.ok());
    EXPECT_EQ(der.error().code, ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace wincert::certstore::local
