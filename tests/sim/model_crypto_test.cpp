// sim/winhost/model/crypto: the structured PFX password check the model's cert-add decides on (no message
// text is read), and the codes of the model's OpenSSL helpers.
#include <gmock/gmock.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>

#include <memory>

#include "model_test_support.hpp"
#include "sim/winhost/model/crypto.hpp"
#include "tests/support/result_matchers.hpp"

namespace wincert::sim::model::testing {
namespace {

using nlohmann::json;

// A PFX holding only a private key: its MAC verifies with the password, but Windows (and certstore's
// open_pfx) cannot import it because it carries no certificate.
std::string key_only_pfx(const std::string& password) {
  auto key = make_rsa_key();
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(key.pem.data(), static_cast<int>(key.pem.size())),
                                                &BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  std::unique_ptr<PKCS12, decltype(&PKCS12_free)> p12(
      PKCS12_create(password.c_str(), nullptr, pkey.get(), nullptr, nullptr, NID_aes_256_cbc, NID_aes_256_cbc, 2048,
                    2048, 0),
      &PKCS12_free);
  EXPECT_NE(p12, nullptr);
  unsigned char* der = nullptr;
  const int n = i2d_PKCS12(p12.get(), &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
  OPENSSL_free(der);
  return out;
}

TEST(ModelCrypto, PfxPasswordIsWrongOnlyWhenTheMacDoesNotVerify) {
  const auto chain = make_chain("pw-check.example.com");
  EXPECT_FALSE(pfx_password_is_wrong(chain.pfx, Secret(chain.password)));
  EXPECT_TRUE(pfx_password_is_wrong(chain.pfx, Secret("not-the-password")));
  EXPECT_TRUE(pfx_password_is_wrong(chain.pfx, Secret("")));
  // Bytes that are no PKCS#12 at all are not a password problem.
  EXPECT_FALSE(pfx_password_is_wrong("this is not a PFX", Secret("x")));
  EXPECT_FALSE(pfx_password_is_wrong("", Secret("x")));
}

TEST(ModelCrypto, EmptyAndAbsentPasswordCountAlike) {
  const auto chain = make_chain("empty-pw.example.com");
  const std::string pfx = make_pfx(chain.leaf, {}, "");
  EXPECT_FALSE(pfx_password_is_wrong(pfx, Secret("")));
  EXPECT_TRUE(pfx_password_is_wrong(pfx, Secret("something")));
}

TEST(ModelCrypto, HelpersReportInvalidInputAsInvalidArgument) {
  EXPECT_THAT(generate_key("DSA", 2048), HasCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(generate_key("RSA", 1001), HasCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(parse_certreq_san("dns"), HasCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(parse_certreq_san("carrier-pigeon=x"), HasCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(parse_certreq_subject("CN=\"unclosed"), HasCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(make_csr("not a key", {{"CN", "x"}}, {}), HasCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(pfx_private_key_pem("not a PFX", Secret("x")), HasCode(ErrorCode::kInvalidArgument));
}

// cert-add tells Windows' "wrong password" from its other PFX failures by asking the file, not by reading
// the text of certstore's error (whose code, kInvalidArgument, is the same for both).
TEST_F(ModelTest, CertAddOfAPfxWithoutCertificateIsNotAPasswordError) {
  const std::string password = "right";
  const std::string pfx = key_only_pfx(password);
  json args = {{"StoreName", "My"},       {"ContentsBase64", b64(pfx)},
               {"PfxPassword", password}, {"Thumbprint", std::string(40, 'A')},
               {"Overwrite", false},      {"ProviderName", ""}};
  auto message = fails("cert-add", args, "PfxInvalid");
  EXPECT_NE(message.find("An internal error occurred."), std::string::npos) << message;
  EXPECT_EQ(message.find("password is not correct"), std::string::npos) << message;
  // Through certutil (a provider named): CRYPT_E_BAD_ENCODE, not ERROR_INVALID_PASSWORD.
  args["ProviderName"] = "Microsoft Software Key Storage Provider";
  message = fails("cert-add", args, "CommandFailed");
  EXPECT_NE(message.find("CRYPT_E_BAD_ENCODE"), std::string::npos) << message;
  // The same file with the wrong password is the password error.
  args["PfxPassword"] = "wrong";
  message = fails("cert-add", args, "CommandFailed");
  EXPECT_NE(message.find("ERROR_INVALID_PASSWORD"), std::string::npos) << message;
  EXPECT_TRUE(store("My").empty());
}

}  // namespace
}  // namespace wincert::sim::model::testing
