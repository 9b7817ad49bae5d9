#include "certstore/csr.hpp"
#include "certstore/openssl_util.hpp"
#include "common/encoding.hpp"
#include "test_support.hpp"
#include "tests/support/result_matchers.hpp"

#include <gtest/gtest.h>
#include <openssl/pem.h>

namespace wincert::certstore {
namespace {

std::string golden_csr() { return testing::load_contract("csr-create")["output"]["Csr"].get<std::string>(); }

// An RSA CSR made here, as a device would: subject, SANs, signed with its own key.
std::string make_rsa_csr_pem(int bits, bool corrupt_signature = false) {
  ossl::PKeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)));
  ossl::X509ReqPtr req(X509_REQ_new());
  X509_REQ_set_version(req.get(), 0);
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("US"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("sql01.example.com"), -1,
                             -1, 0);
  X509_REQ_set_pubkey(req.get(), key.get());
  STACK_OF(X509_EXTENSION)* extensions = sk_X509_EXTENSION_new_null();
  X509_EXTENSION* san =
      X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, "DNS:sql01.example.com,IP:10.1.2.3");
  sk_X509_EXTENSION_push(extensions, san);
  X509_REQ_add_extensions(req.get(), extensions);
  sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
  X509_REQ_sign(req.get(), key.get(), EVP_sha256());
  if (corrupt_signature) {
    const ASN1_BIT_STRING* signature = nullptr;
    X509_REQ_get0_signature(req.get(), &signature, nullptr);
    auto* data = const_cast<unsigned char*>(ASN1_STRING_get0_data(signature));
    data[5] ^= 0xFF;
  }
  ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ_NEW(bio.get(), req.get());
  char* text = nullptr;
  const long length = BIO_get_mem_data(bio.get(), &text);
  return std::string(text, static_cast<std::size_t>(length));
}

TEST(Csr, ParsesGoldenEcCsr) {
  auto csr = parse_csr(golden_csr());
  ASSERT_TRUE(csr.ok()) << csr.error().message;
  EXPECT_TRUE(csr->signature_valid);
  EXPECT_EQ(csr->subject, "CN=web01.example.com, O=\"Keyfactor, Inc\", C=US");
  EXPECT_EQ(csr->key, (KeyParameters{KeyAlgorithm::kEc, 256, "P-256"}));
  const std::vector<SubjectAltName> sans = {
      {SanType::kDns, "web01.example.com"}, {SanType::kDns, "web01"}, {SanType::kIp, "2001:db8::21"}};
  EXPECT_EQ(csr->sans, sans);
}

TEST(Csr, ParsesRsaPemAndChecksFacts) {
  const std::string pem = make_rsa_csr_pem(3072);
  ASSERT_NE(pem.find("NEW CERTIFICATE REQUEST"), std::string::npos);
  auto csr = parse_csr(pem);
  ASSERT_TRUE(csr.ok()) << csr.error().message;
  EXPECT_TRUE(csr->signature_valid);
  EXPECT_EQ(csr->subject, "CN=sql01.example.com, C=US");
  EXPECT_EQ(csr->key.algorithm, KeyAlgorithm::kRsa);
  EXPECT_EQ(csr->key.bits, 3072);

  CsrExpectation expected;
  expected.subject = "CN=sql01.example.com, C=US";
  expected.sans = {{SanType::kIp, "10.1.2.3"}};
  expected.key = KeyParameters{KeyAlgorithm::kRsa, 3072, ""};
  EXPECT_TRUE(check_csr(*csr, expected).ok());

  expected.key = KeyParameters{KeyAlgorithm::kRsa, 2048, ""};
  auto wrong_size = check_csr(*csr, expected);
  ASSERT_FALSE(wrong_size.ok());
  EXPECT_THAT(wrong_size, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_EQ(wrong_size.error().message, "the certificate request's key is RSA 3072, expected RSA 2048");

  expected.key.reset();
  expected.sans = {{SanType::kDns, "other.example.com"}};
  auto missing_san = check_csr(*csr, expected);
  ASSERT_FALSE(missing_san.ok());
  EXPECT_THAT(missing_san, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(missing_san.error().message.find("lacks the SAN dns=other.example.com"), std::string::npos);
}

TEST(Csr, BadSignatureAndGarbageAreCaught) {
  auto csr = parse_csr(make_rsa_csr_pem(2048, true));
  ASSERT_TRUE(csr.ok()) << csr.error().message;
  EXPECT_FALSE(csr->signature_valid);
  auto checked = check_csr(*csr, {});
  ASSERT_FALSE(checked.ok());
  EXPECT_THAT(checked, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(checked.error().message.find("signature does not verify"), std::string::npos);

  EXPECT_FALSE(parse_csr("").ok());
  EXPECT_FALSE(parse_csr("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----").ok());
  const std::string der = *base64_decode(golden_csr());
  for (std::size_t cut = 0; cut < der.size(); cut += 13) (void)parse_csr(base64_encode(der.substr(0, cut)));
  EXPECT_TRUE(parse_csr(der).ok());  // raw DER works too
}

// The one CSR type: the backend parses the request once; PEM and base64 are made from its DER at the edge and
// read back to the same request.
TEST(CertificateRequest, EncodesItsDerAtTheEdgeAndReadsBackToTheSameRequest) {
  auto parsed = parse_certificate_request(make_rsa_csr_pem(2048), "Microsoft Software Key Storage Provider");
  ASSERT_THAT(parsed, IsOk());
  const CertificateRequest& csr = *parsed;
  EXPECT_EQ(csr.provider_name, "Microsoft Software Key Storage Provider");
  EXPECT_TRUE(csr.info.signature_valid);
  EXPECT_EQ(csr.der(), csr.info.der);

  EXPECT_EQ(base64_decode(csr.base64()), csr.der());
  const std::string pem = csr.pem();
  EXPECT_TRUE(pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----\n")) << pem;
  EXPECT_TRUE(pem.ends_with("-----END CERTIFICATE REQUEST-----\n")) << pem;
  for (std::size_t start = pem.find('\n') + 1; start < pem.size();) {  // 64-character lines, as certreq writes
    const std::size_t end = pem.find('\n', start);
    EXPECT_LE(end - start, 64u);
    start = end + 1;
  }

  for (const std::string& form : {pem, csr.base64(), csr.der()}) {
    auto again = parse_certificate_request(form);
    ASSERT_THAT(again, IsOk());
    EXPECT_EQ(again->der(), csr.der());
    EXPECT_EQ(again->info.subject, csr.info.subject);
    EXPECT_EQ(again->info.sans, csr.info.sans);
    EXPECT_EQ(again->info.key, csr.info.key);
    EXPECT_TRUE(again->provider_name.empty());
  }
}

TEST(CertificateRequest, TheGoldenDeviceCsrRoundTrips) {
  auto csr = parse_certificate_request(golden_csr());
  ASSERT_THAT(csr, IsOk());
  EXPECT_EQ(csr->base64(), base64_encode(*base64_decode(golden_csr())));
  EXPECT_EQ(parse_csr(csr->pem())->der, csr->der());
}

TEST(CertificateRequest, NotARequestIsInvalidArgument) {
  EXPECT_THAT(parse_certificate_request("not a CSR"), HasCode(ErrorCode::kInvalidArgument));
}

TEST(CertreqMapping, RsaKeySpecs) {
  EXPECT_EQ(*certreq_key_spec("RSA", "2048"), (CertreqKeySpec{"RSA", 2048}));
  EXPECT_EQ(*certreq_key_spec("rsa", "4096"), (CertreqKeySpec{"RSA", 4096}));
  EXPECT_EQ(*certreq_key_spec("RSA", ""), (CertreqKeySpec{"RSA", 2048}));
  EXPECT_EQ(*certreq_key_spec("", "0"), (CertreqKeySpec{"RSA", 2048}));
  EXPECT_FALSE(certreq_key_spec("RSA", "512").ok());
  EXPECT_FALSE(certreq_key_spec("RSA", "P-256").ok());
  EXPECT_FALSE(certreq_key_spec("RSA", "2048x").ok());
}

TEST(CertreqMapping, EccCurvesMapToCertreqNames) {
  // Command sends ECC with a curve name (or its size) as keySize; certreq wants ECDSA_P256 and the size.
  EXPECT_EQ(*certreq_key_spec("ECC", "P-256"), (CertreqKeySpec{"ECDSA_P256", 256}));
  EXPECT_EQ(*certreq_key_spec("ECC", "256"), (CertreqKeySpec{"ECDSA_P256", 256}));
  EXPECT_EQ(*certreq_key_spec("ECC", "prime256v1"), (CertreqKeySpec{"ECDSA_P256", 256}));
  EXPECT_EQ(*certreq_key_spec("ecc", "secp384r1"), (CertreqKeySpec{"ECDSA_P384", 384}));
  EXPECT_EQ(*certreq_key_spec("EC", "P-521"), (CertreqKeySpec{"ECDSA_P521", 521}));
  EXPECT_EQ(*certreq_key_spec("ECDSA", "nistp384"), (CertreqKeySpec{"ECDSA_P384", 384}));
  EXPECT_EQ(*certreq_key_spec("ECDSA_P384", ""), (CertreqKeySpec{"ECDSA_P384", 384}));
  EXPECT_EQ(*certreq_key_spec("P-521", ""), (CertreqKeySpec{"ECDSA_P521", 521}));
  EXPECT_FALSE(certreq_key_spec("ECC", "").ok());
  EXPECT_FALSE(certreq_key_spec("ECC", "P-192").ok());
  EXPECT_FALSE(certreq_key_spec("ECC", "secp256k1").ok());  // not a NIST curve Windows' KSP offers
  auto dsa = certreq_key_spec("DSA", "2048");
  ASSERT_FALSE(dsa.ok());
  EXPECT_THAT(dsa, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(dsa.error().message.find("not supported for on-device key generation"), std::string::npos);
}

TEST(CertreqMapping, ProviderDefaultsAndEccNeedsAKsp) {
  EXPECT_EQ(*certreq_provider("", CertreqKeySpec{"RSA", 2048}), "Microsoft Strong Cryptographic Provider");
  EXPECT_EQ(*certreq_provider("", CertreqKeySpec{"ECDSA_P256", 256}), "Microsoft Software Key Storage Provider");
  EXPECT_EQ(*certreq_provider(" SafeNet Key Storage Provider ", CertreqKeySpec{"ECDSA_P384", 384}),
            "SafeNet Key Storage Provider");
  auto csp_for_ecc =
      certreq_provider("Microsoft Enhanced RSA and AES Cryptographic Provider", CertreqKeySpec{"ECDSA_P256", 256});
  ASSERT_FALSE(csp_for_ecc.ok());
  EXPECT_THAT(csp_for_ecc, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(csp_for_ecc.error().message.find("legacy CSP"), std::string::npos);
}

TEST(CertreqMapping, SubjectWithEscapedCommaIsQuotedForTheInf) {
  EXPECT_EQ(*certreq_subject("CN=web01.example.com,O=Keyfactor\\, Inc,C=US"),
            "CN=web01.example.com,O=\"\"Keyfactor, Inc\"\",C=US");
  EXPECT_EQ(*certreq_subject("CN=web01, OU=IT, O=\"Keyfactor, Inc\", L=Independence, S=OH, C=US"),
            "CN=web01,OU=IT,O=\"\"Keyfactor, Inc\"\",L=Independence,S=OH,C=US");
  EXPECT_EQ(*certreq_subject("CN=plain"), "CN=plain");
  EXPECT_FALSE(certreq_subject("").ok());
  EXPECT_FALSE(certreq_subject("CN=a,garbage").ok());
  EXPECT_FALSE(certreq_subject("CN=\"unterminated").ok());
}

TEST(CertreqMapping, SanEntries) {
  auto entries = certreq_san_entries({{SanType::kDns, "a.example.com"},
                                      {SanType::kIp, "2001:db8::1"},
                                      {SanType::kEmail, "x@example.com"},
                                      {SanType::kUpn, "svc@corp.example.com"},
                                      {SanType::kUri, "https://a.example.com/"}});
  ASSERT_TRUE(entries.ok());
  const std::vector<std::string> expected = {"dns=a.example.com", "ipaddress=2001:db8::1", "email=x@example.com",
                                             "upn=svc@corp.example.com", "url=https://a.example.com/"};
  EXPECT_EQ(*entries, expected);
  EXPECT_FALSE(certreq_san_entries({{SanType::kDns, "a&b"}}).ok());  // & ends a _continue_ entry
  EXPECT_FALSE(certreq_san_entries({{SanType::kDns, " "}}).ok());
  EXPECT_EQ(san_type_from_key("IP6"), SanType::kIp);
  EXPECT_EQ(san_type_from_key("rfc822"), SanType::kEmail);
  EXPECT_EQ(san_type_from_key("url"), SanType::kUri);
  EXPECT_FALSE(san_type_from_key("x400").has_value());
}

}  // namespace
}  // namespace wincert::certstore
