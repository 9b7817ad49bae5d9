#include "model_test_support.hpp"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <sstream>

#include "certstore/x509.hpp"
#include "common/encoding.hpp"

namespace wincert::sim::model::testing {
namespace {

template <auto Fn>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    Fn(p);
  }
};
using PKeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using Pkcs12Ptr = std::unique_ptr<PKCS12, Deleter<PKCS12_free>>;
struct X509StackDeleter {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};

std::string key_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

PKeyPtr load_key(const TestKey& k) {
  BioPtr bio(BIO_new_mem_buf(k.pem.data(), static_cast<int>(k.pem.size())));
  return PKeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

X509Ptr load_cert(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  return X509Ptr(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  ASSERT_NE(ext, nullptr) << value;
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

int serial_counter = 1000;

}  // namespace

TestKey make_rsa_key(int bits) {
  PKeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(bits)));
  return TestKey{key_pem(key.get())};
}

TestKey make_ec_key(const char* curve) {
  PKeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
  return TestKey{key_pem(key.get())};
}

TestCert make_cert(const std::string& subject_cn, const TestKey& key, const TestCert* issuer, bool ca,
                   const std::vector<std::string>& dns_sans) {
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), ++serial_counter);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("Model Test"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(subject_cn.c_str()), -1,
                             -1, 0);
  PKeyPtr pkey = load_key(key);
  X509_set_pubkey(cert.get(), pkey.get());
  X509Ptr issuer_cert;
  PKeyPtr issuer_key;
  if (issuer) {
    issuer_cert = load_cert(issuer->der);
    issuer_key = load_key(issuer->key);
    X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer_cert.get()));
  } else {
    X509_set_issuer_name(cert.get(), name);
  }
  X509* signer_cert = issuer ? issuer_cert.get() : cert.get();
  add_ext(cert.get(), signer_cert, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
  add_ext(cert.get(), signer_cert, NID_subject_key_identifier, "hash");
  if (!dns_sans.empty()) {
    std::string value;
    for (const auto& d : dns_sans) value += (value.empty() ? "DNS:" : ",DNS:") + d;
    add_ext(cert.get(), signer_cert, NID_subject_alt_name, value.c_str());
  }
  X509_sign(cert.get(), issuer ? issuer_key.get() : pkey.get(), EVP_sha256());
  unsigned char* der = nullptr;
  int n = i2d_X509(cert.get(), &der);
  TestCert out{std::string(reinterpret_cast<char*>(der), static_cast<std::size_t>(n)), key, {}};
  OPENSSL_free(der);
  out.thumbprint = certstore::thumbprint_of(out.der);
  return out;
}

std::string make_pfx(const TestCert& leaf, const std::vector<TestCert>& chain, const std::string& password,
                     const std::string& friendly_name) {
  X509Ptr cert = load_cert(leaf.der);
  PKeyPtr key = load_key(leaf.key);
  std::unique_ptr<STACK_OF(X509), X509StackDeleter> ca(sk_X509_new_null());
  for (const auto& c : chain) sk_X509_push(ca.get(), load_cert(c.der).release());
  Pkcs12Ptr p12(PKCS12_create(password.c_str(), friendly_name.empty() ? nullptr : friendly_name.c_str(), key.get(),
                              cert.get(), ca.get(), NID_aes_256_cbc, NID_aes_256_cbc, 2048, 2048, 0));
  EXPECT_NE(p12, nullptr);
  unsigned char* der = nullptr;
  int n = i2d_PKCS12(p12.get(), &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
  OPENSSL_free(der);
  return out;
}

std::string issue_from_csr(const std::string& csr_der, const TestCert& issuer) {
  const auto* p = reinterpret_cast<const unsigned char*>(csr_der.data());
  std::unique_ptr<X509_REQ, Deleter<X509_REQ_free>> req(d2i_X509_REQ(nullptr, &p, static_cast<long>(csr_der.size())));
  EXPECT_NE(req, nullptr);
  if (!req) return {};
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), ++serial_counter);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600);
  X509_set_subject_name(cert.get(), X509_REQ_get_subject_name(req.get()));
  X509Ptr issuer_cert = load_cert(issuer.der);
  PKeyPtr issuer_key = load_key(issuer.key);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer_cert.get()));
  PKeyPtr pub(X509_REQ_get_pubkey(req.get()));
  X509_set_pubkey(cert.get(), pub.get());
  X509_sign(cert.get(), issuer_key.get(), EVP_sha256());
  unsigned char* der = nullptr;
  int n = i2d_X509(cert.get(), &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
  OPENSSL_free(der);
  return out;
}

std::string b64(const std::string& bytes) { return base64_encode(bytes); }

nlohmann::json contract(const std::string& op) {
  std::ifstream in(std::string(WINCERT_CERTSTORE_SCRIPT_DIR) + "/" + op + ".contract.json");
  std::stringstream ss;
  ss << in.rdbuf();
  auto doc = nlohmann::json::parse(ss.str(), nullptr, false);
  EXPECT_FALSE(doc.is_discarded()) << op;
  return doc;
}

void expect_same_shape(const nlohmann::json& actual, const nlohmann::json& expected, const std::string& path) {
  if (expected.is_object()) {
    ASSERT_TRUE(actual.is_object()) << path << " should be an object: " << actual.dump();
    for (auto& [k, v] : expected.items()) {
      ASSERT_TRUE(actual.contains(k)) << path << " lacks " << k;
      if (!v.is_null() && !actual[k].is_null()) expect_same_shape(actual[k], v, path + "." + k);
    }
    for (auto& [k, v] : actual.items()) EXPECT_TRUE(expected.contains(k)) << path << " has an extra key " << k;
  } else if (expected.is_array()) {
    ASSERT_TRUE(actual.is_array()) << path << " should be an array";
    if (!expected.empty()) {
      for (std::size_t i = 0; i < actual.size(); ++i)
        expect_same_shape(actual[i], expected[0], path + "[" + std::to_string(i) + "]");
    }
  } else if (!expected.is_null()) {
    EXPECT_EQ(actual.type_name(), std::string(expected.type_name())) << path;
  }
}

Chain make_chain(const std::string& cn, bool ec_leaf, const std::string& friendly) {
  Chain c;
  c.root = make_cert("Model Root CA", make_ec_key("P-384"), nullptr, true);
  c.issuing = make_cert("Model Issuing CA", make_ec_key("P-256"), &c.root, true);
  c.leaf = make_cert(cn, ec_leaf ? make_ec_key("P-256") : make_rsa_key(2048), &c.issuing, false, {cn});
  c.pfx = make_pfx(c.leaf, {c.issuing, c.root}, c.password, friendly);
  return c;
}

void ModelTest::SetUp() {
  model_ = std::make_unique<WindowsModel>();
  install(*model_);
}

nlohmann::json ModelTest::ok(const std::string& op, const nlohmann::json& args) {
  auto outcome = run(op, args);
  EXPECT_TRUE(outcome.ok) << op << ": " << outcome.error.message << " [" << outcome.error.category << "]";
  return outcome.result;
}

std::string ModelTest::fails(const std::string& op, const nlohmann::json& args, const std::string& category) {
  auto outcome = run(op, args);
  EXPECT_FALSE(outcome.ok) << op << " should fail, gave " << outcome.result.dump();
  EXPECT_EQ(outcome.error.category, category) << outcome.error.message;
  return outcome.error.message;
}

nlohmann::json ModelTest::add(const Chain& chain, const std::string& store_name, bool overwrite,
                              const std::string& provider) {
  return ok("cert-add", {{"StoreName", store_name},
                         {"ContentsBase64", b64(chain.pfx)},
                         {"PfxPassword", chain.password},
                         {"Thumbprint", chain.leaf.thumbprint},
                         {"Overwrite", overwrite},
                         {"ProviderName", provider},
                         {"AddChainToCaStore", false},
                         {"IisBinding", nullptr},
                         {"SqlBinding", nullptr},
                         {"ReplacedThumbprint", ""}});
}

}  // namespace wincert::sim::model::testing
