// RFC 5929 tls-server-end-point hashes for certificates generated at test time with OpenSSL.
#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <memory>

#include "tests/winrm/ntlm_test_util.hpp"
#include "winrm/auth/channel_binding.hpp"

namespace wincert::winrm {
namespace {

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertFree {
  void operator()(X509* x) const { X509_free(x); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;
using CertPtr = std::unique_ptr<X509, CertFree>;

KeyPtr make_key(const char* type) {
  if (std::string_view(type) == "RSA") return KeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
  if (std::string_view(type) == "EC") return KeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
  return KeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, type));
}

// A self-signed certificate signed with `md` (nullptr for Ed25519).
CertPtr make_certificate(EVP_PKEY* key, const EVP_MD* md) {
  CertPtr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 42);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("winhost.test"), -1, -1,
                             0);
  X509_set_issuer_name(cert.get(), name);
  if (X509_sign(cert.get(), key, md) <= 0) return nullptr;
  return cert;
}

std::string der_of(X509* cert) {
  unsigned char* der = nullptr;
  const int n = i2d_X509(cert, &der);
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(n));
  OPENSSL_free(der);
  return out;
}

std::string digest_of(const std::string& data, const EVP_MD* md) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), out, &n, md, nullptr);
  return std::string(reinterpret_cast<const char*>(out), n);
}

struct Case {
  const char* name;
  const char* key_type;
  const EVP_MD* (*sign_md)();
  const EVP_MD* (*expected_md)();
};

class EndPointHash : public ::testing::TestWithParam<Case> {};

TEST_P(EndPointHash, FollowsRfc5929) {
  const Case& c = GetParam();
  auto key = make_key(c.key_type);
  ASSERT_NE(key, nullptr);
  auto cert = make_certificate(key.get(), c.sign_md ? c.sign_md() : nullptr);
  ASSERT_NE(cert, nullptr) << "OpenSSL could not sign a test certificate for " << c.name;
  const std::string der = der_of(cert.get());
  const std::string expected = digest_of(der, c.expected_md());

  auto from_x509 = tls_server_end_point_hash(cert.get());
  ASSERT_TRUE(from_x509.ok()) << from_x509.error().message;
  EXPECT_EQ(testing::to_hex(*from_x509), testing::to_hex(expected)) << c.name;
  auto from_der = tls_server_end_point_application_data_der(der);
  ASSERT_TRUE(from_der.ok());
  EXPECT_EQ(*from_der, "tls-server-end-point:" + expected);
}

INSTANTIATE_TEST_SUITE_P(Certificates, EndPointHash,
                         ::testing::Values(Case{"RsaSha256", "RSA", EVP_sha256, EVP_sha256},
                                           Case{"EcdsaSha384", "EC", EVP_sha384, EVP_sha384},
                                           Case{"RsaSha1UsesSha256", "RSA", EVP_sha1, EVP_sha256},
                                           Case{"RsaSha512", "RSA", EVP_sha512, EVP_sha512},
                                           Case{"Ed25519UsesSha256", "ED25519", nullptr, EVP_sha256}),
                         [](const ::testing::TestParamInfo<Case>& param_info) {
                           return std::string(param_info.param.name);
                         });

TEST(ChannelBinding, GarbageDerIsAnError) {
  auto r = tls_server_end_point_hash_der("not a certificate");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(tls_server_end_point_hash(nullptr).ok());
}

TEST(ChannelBinding, GssStructLayoutAndMd5) {
  const std::string app = "tls-server-end-point:" + std::string(32, '\x11');
  const std::string bytes = gss_channel_bindings_bytes(app);
  ASSERT_EQ(bytes.size(), 20 + app.size());
  EXPECT_EQ(bytes.substr(0, 16), std::string(16, '\0'));
  EXPECT_EQ(bytes.substr(16, 4), std::string("\x35\0\0\0", 4));  // 53 = 21 + 32
  EXPECT_EQ(bytes.substr(20), app);
  auto hash = ntlm_channel_bindings_hash(app);
  ASSERT_TRUE(hash.ok());
  EXPECT_EQ(testing::to_hex(*hash), testing::to_hex(digest_of(bytes, EVP_md5())));
}

}  // namespace
}  // namespace wincert::winrm
