#include "local_test_support.hpp"

#include "certstore/local/certificate_key.hpp"
#include "certstore/local/operations.hpp"
#include "certstore/local/system_store.hpp"

#include <gtest/gtest.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <sstream>

namespace wincert::certstore::local::testing {
namespace {

void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  X509_add_ext(cert, extension, -1);
  X509_EXTENSION_free(extension);
}

void set_random_serial(X509* cert) {
  unsigned char bytes[12];
  RAND_bytes(bytes, sizeof bytes);
  bytes[0] &= 0x7F;  // positive
  ossl::BignumPtr number(BN_bin2bn(bytes, sizeof bytes, nullptr));
  BN_to_ASN1_INTEGER(number.get(), X509_get_serialNumber(cert));
}

void set_validity(X509* cert, long days) {
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), days * 24 * 3600);
}

// Windows always has these LocalMachine stores; a fresh Wine prefix has only Root and My until something
// writes to the others. Created only under Wine: on Windows a missing store is a finding, not a fixture.
class StandardStores : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!running_under_wine()) return;
    for (const char* name : {"My", "CA"}) static_cast<void>(open_machine_store(name, StoreAccess::kOpenOrCreate));
  }
};
[[maybe_unused]] ::testing::Environment* const kStandardStores =
    ::testing::AddGlobalTestEnvironment(new StandardStores);

}  // namespace

bool running_under_wine() {
  HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
  return ntdll != nullptr && GetProcAddress(ntdll, "wine_get_version") != nullptr;
}

std::string rsa_provider_for_this_platform() {
  return running_under_wine() ? std::string(kAesCsp) : std::string(kDefaultKeyStorageProvider);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string vectors_dir() { return WINCERT_PKCS12_VECTORS; }

ossl::PKeyPtr make_rsa_key(int bits) { return ossl::PKeyPtr(EVP_RSA_gen(static_cast<unsigned int>(bits))); }

ossl::PKeyPtr make_ec_key(const char* curve) { return ossl::PKeyPtr(EVP_EC_gen(curve)); }

ossl::X509Ptr make_certificate(EVP_PKEY* subject_key, const std::string& common_name, bool is_ca, X509* issuer_cert,
                               EVP_PKEY* issuer_key) {
  ossl::X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  set_random_serial(cert.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("wincert tests"), -1, -1,
                             0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(cert.get(), issuer_cert != nullptr ? X509_get_subject_name(issuer_cert) : name);
  set_validity(cert.get(), 30);
  X509_set_pubkey(cert.get(), subject_key);
  add_extension(cert.get(), issuer_cert, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add_extension(cert.get(), issuer_cert, NID_key_usage,
                is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,keyEncipherment");
  X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : subject_key, EVP_sha256());
  return cert;
}

std::string der_of(X509* cert) {
  unsigned char* der = nullptr;
  const int length = i2d_X509(cert, &der);
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length > 0 ? length : 0));
  OPENSSL_free(der);
  return out;
}

std::string make_pfx(EVP_PKEY* key, X509* leaf, const std::vector<X509*>& chain, const std::string& password,
                     const std::string& friendly_name, bool legacy) {
  // RC2 needs the legacy provider: a private library context keeps the test process's default one clean.
  static OSSL_LIB_CTX* legacy_context = [] {
    OSSL_LIB_CTX* ctx = OSSL_LIB_CTX_new();
    OSSL_PROVIDER_load(ctx, "default");
    OSSL_PROVIDER_load(ctx, "legacy");
    return ctx;
  }();
  ossl::X509StackPtr others(sk_X509_new_null());
  for (X509* cert : chain) sk_X509_push(others.get(), cert);
  const int key_nid = legacy ? NID_pbe_WithSHA1And3_Key_TripleDES_CBC : NID_undef;
  const int cert_nid = legacy ? NID_pbe_WithSHA1And40BitRC2_CBC : NID_undef;
  PKCS12* p12 = PKCS12_create_ex(password.c_str(), friendly_name.empty() ? nullptr : friendly_name.c_str(), key, leaf,
                                 others.get(), key_nid, cert_nid, 0, 0, 0, legacy ? legacy_context : nullptr, nullptr);
  for (int i = sk_X509_num(others.get()); i > 0; --i) sk_X509_pop(others.get());  // borrowed, not owned
  ossl::Pkcs12Ptr owned(p12);
  unsigned char* der = nullptr;
  const int length = owned ? i2d_PKCS12(owned.get(), &der) : 0;
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length > 0 ? length : 0));
  OPENSSL_free(der);
  return out;
}

TestCa::TestCa()
    : key_(make_ec_key("P-256")), cert_(make_certificate(key_.get(), "wincert test CA", true, nullptr, nullptr)) {}

std::string TestCa::issue(const std::string& csr_der) const {
  const auto* p = reinterpret_cast<const unsigned char*>(csr_der.data());
  ossl::X509ReqPtr request(d2i_X509_REQ(nullptr, &p, static_cast<long>(csr_der.size())));
  if (!request) return {};
  ossl::PKeyPtr public_key(X509_REQ_get_pubkey(request.get()));
  ossl::X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  set_random_serial(cert.get());
  X509_set_subject_name(cert.get(), X509_REQ_get_subject_name(request.get()));
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert_.get()));
  set_validity(cert.get(), 30);
  X509_set_pubkey(cert.get(), public_key.get());
  STACK_OF(X509_EXTENSION)* extensions = X509_REQ_get_extensions(request.get());
  for (int i = 0; i < sk_X509_EXTENSION_num(extensions); ++i)
    X509_add_ext(cert.get(), sk_X509_EXTENSION_value(extensions, i), -1);
  sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
  add_extension(cert.get(), cert_.get(), NID_basic_constraints, "critical,CA:FALSE");
  X509_sign(cert.get(), key_.get(), EVP_sha256());
  return der_of(cert.get());
}

std::string sha256(const std::string& message) {
  unsigned char hash[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(message.data(), message.size(), hash, &length, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(hash), length);
}

bool signature_verifies(const std::string& cert_der, const std::string& message, const std::string& signature) {
  const auto* p = reinterpret_cast<const unsigned char*>(cert_der.data());
  ossl::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(cert_der.size())));
  if (!cert) return false;
  EVP_PKEY* public_key = X509_get0_pubkey(cert.get());
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, public_key) == 1 &&
                  EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                                   reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  ERR_clear_error();
  return ok;
}

namespace {

CertContext find_in(const std::string& store_name, const std::string& thumbprint, StoreHandle& store) {
  auto opened = open_machine_store(store_name, StoreAccess::kRead);
  if (!opened) return CertContext();
  store = std::move(*opened);
  auto found = find_by_thumbprint(store.get(), thumbprint);
  return found ? std::move(*found) : CertContext();
}

}  // namespace

bool store_has(const std::string& store, const std::string& thumbprint) {
  StoreHandle handle;
  return find_in(store, thumbprint, handle) != nullptr;
}

void remove_if_present(const std::string& store, const std::string& thumbprint) {
  if (store_has(store, thumbprint)) static_cast<void>(remove_now({store, thumbprint, true}));
}

bool linked_key_opens(const std::string& store, const std::string& thumbprint) {
  StoreHandle handle;
  CertContext cert = find_in(store, thumbprint, handle);
  return cert && certificate_private_key(cert.get()).ok();
}

bool windows_acquires_key(const std::string& store, const std::string& thumbprint) {
  StoreHandle handle;
  CertContext cert = find_in(store, thumbprint, handle);
  if (!cert) return false;
  HCRYPTPROV_OR_NCRYPT_KEY_HANDLE key = 0;
  DWORD spec = 0;
  BOOL caller_frees = FALSE;
  if (!CryptAcquireCertificatePrivateKey(cert.get(), CRYPT_ACQUIRE_SILENT_FLAG | CRYPT_ACQUIRE_ALLOW_NCRYPT_KEY_FLAG,
                                         nullptr, &key, &spec, &caller_frees)) {
    return false;
  }
  if (caller_frees) {
    if (spec == CERT_NCRYPT_KEY_SPEC)
      NCryptFreeObject(key);
    else
      CryptReleaseContext(key, 0);
  }
  return true;
}

bool key_exists(const KeyLink& link) { return MachineKey::open(link).ok(); }

std::optional<KeyLink> key_link_in_store(const std::string& store, const std::string& thumbprint) {
  StoreHandle handle;
  CertContext cert = find_in(store, thumbprint, handle);
  if (!cert) return std::nullopt;
  return key_link_of(cert.get());
}

}  // namespace wincert::certstore::local::testing
