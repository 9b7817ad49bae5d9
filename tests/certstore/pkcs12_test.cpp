#include "certstore/pkcs12.hpp"
#include "certstore/openssl_util.hpp"
#include "common/encoding.hpp"
#include "test_support.hpp"
#include "tests/support/result_matchers.hpp"

#include <gtest/gtest.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <filesystem>
#include <map>

namespace wincert::certstore {
namespace {

using testing::read_file;
using testing::vectors_dir;

enum class Expect { kCertAndKey, kCertWithoutKey, kKeyWithoutCert };

struct VectorCase {
  std::string password;
  Expect expect;
  std::vector<std::string> friendly_names;  // leaf first, then the chain's, sorted; "" = no name
};

std::string vector_password(const std::string& file) {
  if (file.starts_with("cert-") || file.starts_with("no-cert-key")) return "cryptography";
  if (file.ends_with("-no-pwd.p12") || file == "no-password.p12") return "";
  return "password";
}

// What each file in Debian's python3-cryptography-vectors pkcs12/ directory holds (see cryptography's
// tests/hazmat/primitives/test_pkcs12.py): the CA certificate + key named "name", two extra certificates
// named "name2" and "name3"; "no-cert" files drop the key and its certificate.
std::map<std::string, VectorCase> vector_cases() {
  std::map<std::string, VectorCase> cases;
  auto add = [&](const std::string& file, Expect expect, std::vector<std::string> names) {
    cases[file] = {vector_password(file), expect, std::move(names)};
  };
  add("cert-aes256cbc-no-key.p12", Expect::kCertWithoutKey, {""});
  add("cert-key-aes256cbc.p12", Expect::kCertAndKey, {""});
  add("cert-none-key-none.p12", Expect::kCertAndKey, {""});
  add("cert-rc2-key-3des.p12", Expect::kCertAndKey, {""});
  add("no-cert-key-aes256cbc.p12", Expect::kKeyWithoutCert, {});
  add("no-password.p12", Expect::kCertAndKey, {"cryptography CA"});
  for (const std::string suffix : {"-no-pwd.p12", "-pwd.p12"}) {
    add("name-1" + suffix, Expect::kCertAndKey, {"name", "", ""});
    add("name-2-3" + suffix, Expect::kCertAndKey, {"", "name2", "name3"});
    add("name-2" + suffix, Expect::kCertAndKey, {"", "", "name2"});
    add("name-3" + suffix, Expect::kCertAndKey, {"", "", "name3"});
    add("name-all" + suffix, Expect::kCertAndKey, {"name", "name2", "name3"});
    add("name-unicode" + suffix, Expect::kCertAndKey, {"\u263A", "\u00E4", "\u00E7"});
    add("no-name" + suffix, Expect::kCertAndKey, {"", "", ""});
    add("no-cert-name-2" + suffix, Expect::kCertWithoutKey, {"", "name2"});
    add("no-cert-name-3" + suffix, Expect::kCertWithoutKey, {"", "name3"});
    add("no-cert-name-all" + suffix, Expect::kCertWithoutKey, {"name2", "name3"});
    add("no-cert-name-unicode" + suffix, Expect::kCertWithoutKey, {"\u00EF", "\u2639"});
    add("no-cert-no-name" + suffix, Expect::kCertWithoutKey, {"", ""});
  }
  return cases;
}

std::vector<std::string> names_of(const PfxContents& pfx) {
  std::vector<std::string> chain_names;
  for (const auto& cert : pfx.chain) chain_names.push_back(cert.friendly_name);
  std::vector<std::string> names;
  if (pfx.has_private_key) {
    names.push_back(pfx.leaf->friendly_name);
  } else {
    chain_names.push_back(pfx.leaf->friendly_name);  // without a key there is no distinguished leaf name
  }
  std::sort(chain_names.begin(), chain_names.end());
  names.insert(names.end(), chain_names.begin(), chain_names.end());
  return names;
}

TEST(Pkcs12Vectors, EveryVectorIsImportedOrRejectedForTheRightReason) {
  const auto cases = vector_cases();
  std::size_t seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(vectors_dir())) {
    const std::string file = entry.path().filename().string();
    SCOPED_TRACE(file);
    const auto it = cases.find(file);
    ASSERT_NE(it, cases.end()) << "a vector this test does not know: add its expectation";
    const VectorCase& expected = it->second;
    ++seen;
    const std::string der = read_file(entry.path().string());
    auto pfx = open_pfx(der, Secret(expected.password), "'" + file + "'");
    if (expected.expect == Expect::kKeyWithoutCert) {
      ASSERT_FALSE(pfx.ok());
      EXPECT_EQ(pfx.error().message, "the PFX for certificate '" + file +
                                         "' could not be opened: it holds no certificate (only a private key)");
      continue;
    }
    ASSERT_TRUE(pfx.ok()) << pfx.error().message;
    ASSERT_TRUE(pfx->leaf.has_value());
    EXPECT_EQ(pfx->leaf->info.thumbprint.size(), 40u);
    EXPECT_EQ(pfx->leaf->info.thumbprint, thumbprint_of(pfx->leaf->der));
    EXPECT_EQ(names_of(*pfx), expected.friendly_names);
    if (expected.expect == Expect::kCertAndKey) {
      EXPECT_TRUE(pfx->has_private_key);
      EXPECT_TRUE(pfx->key_matches_leaf);
      ASSERT_TRUE(pfx->private_key.has_value());
      EXPECT_EQ(pfx->private_key->algorithm, pfx->leaf->info.key.algorithm);
      EXPECT_TRUE(check_importable(*pfx, "'" + file + "'", true).ok());
    } else {
      EXPECT_FALSE(pfx->has_private_key);
      auto importable = check_importable(*pfx, "'" + file + "'", true);
      ASSERT_FALSE(importable.ok());
      EXPECT_THAT(importable, HasCode(ErrorCode::kInvalidArgument));
      EXPECT_NE(importable.error().message.find("holds no private key"), std::string::npos);
      EXPECT_TRUE(check_importable(*pfx, "'" + file + "'", false).ok());  // WinCert accepts a bare certificate
    }
  }
  EXPECT_EQ(seen, cases.size()) << "vectors missing from " << vectors_dir();
}

TEST(Pkcs12Vectors, WrongPasswordIsAClearErrorWithoutTheSecret) {
  for (const auto& [file, expected] : vector_cases()) {
    SCOPED_TRACE(file);
    const std::string der = read_file(vectors_dir() + "/" + file);
    const std::string wrong = "Wr0ng-secret-" + file;
    auto pfx = open_pfx(der, Secret(wrong), certificate_label("", "D263D275D35E881C2AAFAC6AAC1E59AE384DB486"));
    ASSERT_FALSE(pfx.ok());
    EXPECT_THAT(pfx, HasCode(ErrorCode::kInvalidArgument));
    EXPECT_EQ(pfx.error().message,
              "the PFX for certificate 'D263D275D35E881C2AAFAC6AAC1E59AE384DB486' could not be opened: wrong password "
              "or corrupt file");
    EXPECT_EQ(pfx.error().message.find(wrong), std::string::npos);
  }
}

TEST(Pkcs12Vectors, LegacyRc2And3desWorkWithoutTouchingTheDefaultContext) {
  ASSERT_TRUE(legacy_pfx_algorithms_available());
  for (const std::string file : {"cert-rc2-key-3des.p12", "no-password.p12"}) {
    SCOPED_TRACE(file);
    const std::string der = read_file(vectors_dir() + "/" + file);
    auto pfx = open_pfx(der, Secret(vector_password(file)), "in this job");
    ASSERT_TRUE(pfx.ok()) << pfx.error().message;
    EXPECT_TRUE(pfx->has_private_key);

    // The process-wide default context has no legacy provider, so RC2 fails there: our private context
    // is what makes the file readable.
    EXPECT_EQ(OSSL_PROVIDER_available(nullptr, "legacy"), 0);
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    ossl::Pkcs12Ptr p12(d2i_PKCS12(nullptr, &p, static_cast<long>(der.size())));
    ASSERT_TRUE(p12);
    EVP_PKEY* key = nullptr;
    X509* cert = nullptr;
    STACK_OF(X509)* ca = nullptr;
    const std::string pass = vector_password(file);
    EXPECT_EQ(PKCS12_parse(p12.get(), pass.c_str(), &key, &cert, &ca), 0);
    EVP_PKEY_free(key);
    X509_free(cert);
    sk_X509_pop_free(ca, X509_free);
    ERR_clear_error();
  }
}

// The "cannot read this algorithm" answer is decided on OpenSSL's packed error codes, not the reason text:
// the real queue left by an RC2 PFX parsed where no legacy provider is loaded says "unsupported" by code.
TEST(Pkcs12Vectors, AnUnsupportedAlgorithmIsRecognisedByItsOpenSslCode) {
  const std::string der = read_file(vectors_dir() + "/cert-rc2-key-3des.p12");
  ASSERT_EQ(OSSL_PROVIDER_available(nullptr, "legacy"), 0);
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ossl::Pkcs12Ptr p12(d2i_PKCS12(nullptr, &p, static_cast<long>(der.size())));
  ASSERT_TRUE(p12);
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  STACK_OF(X509)* ca = nullptr;
  const std::string pass = vector_password("cert-rc2-key-3des.p12");
  ERR_clear_error();
  EXPECT_EQ(PKCS12_parse(p12.get(), pass.c_str(), &key, &cert, &ca), 0);
  EVP_PKEY_free(key);
  X509_free(cert);
  sk_X509_pop_free(ca, X509_free);
  const auto drained = ossl::drain_error_queue();
  EXPECT_TRUE(drained.unsupported_algorithm) << drained.text;
  EXPECT_EQ(ERR_peek_error(), 0u) << "the queue is drained";

  // The codes themselves, whatever their reason text says.
  EXPECT_TRUE(ossl::is_unsupported_algorithm(ERR_PACK(ERR_LIB_EVP, 0, ERR_R_UNSUPPORTED)));
  EXPECT_TRUE(ossl::is_unsupported_algorithm(ERR_PACK(ERR_LIB_PKCS12, 0, ERR_R_FETCH_FAILED)));
  EXPECT_TRUE(ossl::is_unsupported_algorithm(ERR_PACK(ERR_LIB_EVP, 0, EVP_R_UNSUPPORTED_CIPHER)));
  EXPECT_TRUE(ossl::is_unsupported_algorithm(ERR_PACK(ERR_LIB_PKCS12, 0, PKCS12_R_UNSUPPORTED_PKCS12_MODE)));
  EXPECT_FALSE(ossl::is_unsupported_algorithm(ERR_PACK(ERR_LIB_PKCS12, 0, PKCS12_R_MAC_VERIFY_FAILURE)));
  EXPECT_FALSE(ossl::is_unsupported_algorithm(ERR_PACK(ERR_LIB_ASN1, 0, 107)))
      << "the same reason number in another library means something else";
  EXPECT_FALSE(ossl::is_unsupported_algorithm(ERR_PACK(ERR_LIB_EVP, 0, EVP_R_BAD_DECRYPT)));
}

// --- PFX files made at test time ---

struct MadePfx {
  std::string der;
  std::string thumbprint;
};

// A self-signed EC P-256 certificate and key, packed with the given password and algorithms
// (NID_undef = OpenSSL's default: AES-256-CBC PBES2 with a SHA-256 MAC).
MadePfx make_pfx(const std::string& password, int key_nid, int cert_nid, OSSL_LIB_CTX* ctx) {
  ossl::PKeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  ossl::X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 4242);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("pfx.example.com"), -1,
                             -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key.get());
  X509_sign(cert.get(), key.get(), EVP_sha256());
  ossl::Pkcs12Ptr p12(PKCS12_create_ex(password.c_str(), "made at test time", key.get(), cert.get(), nullptr, key_nid,
                                       cert_nid, 0, 0, 0, ctx, nullptr));
  EXPECT_TRUE(p12) << ossl::drain_errors();
  unsigned char* der = nullptr;
  const int length = i2d_PKCS12(p12.get(), &der);
  MadePfx made{std::string(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length)), {}};
  OPENSSL_free(der);
  unsigned char* cert_der = nullptr;
  const int cert_length = i2d_X509(cert.get(), &cert_der);
  made.thumbprint =
      thumbprint_of(std::string_view(reinterpret_cast<const char*>(cert_der), static_cast<std::size_t>(cert_length)));
  OPENSSL_free(cert_der);
  return made;
}

TEST(Pkcs12, PasswordWithShellAndQuoteCharactersWorks) {
  const std::string password = "p@ss $word+ \"double\" 'single' `tick` & end ";
  const auto made = make_pfx(password, NID_undef, NID_undef, nullptr);
  auto pfx = open_pfx(made.der, Secret(password), "'web'");
  ASSERT_TRUE(pfx.ok()) << pfx.error().message;
  EXPECT_EQ(pfx->leaf->info.thumbprint, made.thumbprint);
  EXPECT_EQ(pfx->leaf->friendly_name, "made at test time");
  EXPECT_TRUE(pfx->key_matches_leaf);
  EXPECT_EQ(pfx->private_key->curve, "P-256");
  // One character off is a wrong password.
  auto wrong = open_pfx(made.der, Secret(password.substr(0, password.size() - 1)), "'web'");
  ASSERT_FALSE(wrong.ok());
  EXPECT_THAT(wrong, HasCode(ErrorCode::kInvalidArgument)) << "a wrong PFX password is the job's data";
  EXPECT_NE(wrong.error().message.find("wrong password or corrupt file"), std::string::npos);
}

TEST(Pkcs12, LegacyPfxMadeWithRc2And3desWorks) {
  // Making one needs the legacy provider too: a test-local context, so the default one stays clean.
  ossl::LibCtxPtr ctx(OSSL_LIB_CTX_new());
  ossl::ProviderPtr legacy(OSSL_PROVIDER_load(ctx.get(), "legacy"));
  ossl::ProviderPtr fallback(OSSL_PROVIDER_load(ctx.get(), "default"));
  ASSERT_TRUE(legacy && fallback);
  const auto made =
      make_pfx("legacy pass", NID_pbe_WithSHA1And3_Key_TripleDES_CBC, NID_pbe_WithSHA1And40BitRC2_CBC, ctx.get());
  auto pfx = open_pfx(made.der, Secret("legacy pass"), "in this job");
  ASSERT_TRUE(pfx.ok()) << pfx.error().message;
  EXPECT_EQ(pfx->leaf->info.thumbprint, made.thumbprint);
  EXPECT_TRUE(pfx->has_private_key);
}

TEST(Pkcs12, EmptyPasswordCoversAbsentPassword) {
  const auto made = make_pfx("", NID_undef, NID_undef, nullptr);
  auto pfx = open_pfx(made.der, Secret(""), "in this job");
  ASSERT_TRUE(pfx.ok()) << pfx.error().message;
  EXPECT_TRUE(pfx->has_private_key);
}

TEST(Pkcs12, CorruptAndTruncatedFilesAreErrors) {
  const auto made = make_pfx("pw", NID_undef, NID_undef, nullptr);
  for (std::size_t cut : {std::size_t{0}, std::size_t{3}, made.der.size() / 2, made.der.size() - 1}) {
    auto pfx = open_pfx(made.der.substr(0, cut), Secret("pw"), "'alias1'");
    ASSERT_FALSE(pfx.ok()) << cut;
    EXPECT_TRUE(pfx.error().message.starts_with("the PFX for certificate 'alias1' could not be opened: "))
        << pfx.error().message;
  }
  for (std::size_t i = 0; i < made.der.size(); i += 11) {
    std::string copy = made.der;
    copy[i] = static_cast<char>(copy[i] ^ 0x01);
    (void)open_pfx(copy, Secret("pw"), "x");  // never crashes
  }
  auto not_pfx = open_pfx("hello world", Secret(""), "in this job");
  ASSERT_FALSE(not_pfx.ok());
  EXPECT_EQ(not_pfx.error().message,
            "the PFX for certificate in this job could not be opened: it is not a PKCS#12 (PFX) file or it is corrupt");
}

TEST(Pkcs12, JobContentsAcceptPfxOrBareDer) {
  const auto made = make_pfx("pw", NID_undef, NID_undef, nullptr);
  auto pfx = open_job_certificate(Secret(base64_encode(made.der)), Secret("pw"), "in this job");
  ASSERT_TRUE(pfx.ok()) << pfx.error().message;

  const auto contract = testing::load_contract("store-inventory");
  const std::string der_b64 = contract["output"]["Certificates"][0]["Base64"].get<std::string>();
  auto bare = open_job_certificate(Secret(der_b64), Secret(""), "in this job");
  ASSERT_TRUE(bare.ok()) << bare.error().message;
  EXPECT_EQ(bare->leaf->info.thumbprint, "426E9669376072D8D1461082A6E31AB4023E1857");
  EXPECT_FALSE(bare->has_private_key);
  auto needs_key = check_importable(*bare, "in this job", true);
  ASSERT_FALSE(needs_key.ok());
  EXPECT_THAT(needs_key, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(needs_key.error().message.find("holds no private key"), std::string::npos);

  auto bad = open_job_certificate(Secret("%%%"), Secret(""), "'a1'");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(bad.error().message.find("not valid base64"), std::string::npos);
}

TEST(Pkcs12, GoldenChainPfxHasLeafAndChain) {
  const auto args = testing::load_contract("cert-add")["args"];
  auto pfx = open_job_certificate(Secret(args["ContentsBase64"].get<std::string>()),
                                  Secret(args["PfxPassword"].get<std::string>()), "in this job");
  ASSERT_TRUE(pfx.ok()) << pfx.error().message;
  EXPECT_EQ(pfx->leaf->info.thumbprint, args["Thumbprint"].get<std::string>());
  EXPECT_EQ(pfx->leaf->friendly_name, "www.example.com");
  ASSERT_EQ(pfx->chain.size(), 2u);
  EXPECT_EQ(pfx->chain[0].info.subject, "CN=Example Issuing CA 1, O=Example Trust, C=US");
  EXPECT_EQ(pfx->chain[1].info.subject, "CN=Example Root CA, O=Example Trust, C=US");
  EXPECT_TRUE(pfx->chain[1].info.self_signed);
}

TEST(Pkcs12, CertificateLabel) {
  EXPECT_EQ(certificate_label("web-alias", "ABC"), "'web-alias'");
  EXPECT_EQ(certificate_label("", "ABC"), "'ABC'");
  EXPECT_EQ(certificate_label(" ", ""), "in this job");
}

}  // namespace
}  // namespace wincert::certstore
