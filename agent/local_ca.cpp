#include "agent/local_ca.hpp"

#include <openssl/pem.h>
#include <openssl/rand.h>

#include <fstream>
#include <sstream>

#include "certstore/csr.hpp"
#include "certstore/openssl_util.hpp"
#include "certstore/x509.hpp"
#include "common/encoding.hpp"
#include "common/log.hpp"

namespace wincert::agent {

namespace ossl = certstore::ossl;

namespace {

struct ExtensionStackDeleter {
  void operator()(STACK_OF(X509_EXTENSION) * s) const { sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free); }
};
using ExtensionStackPtr = std::unique_ptr<STACK_OF(X509_EXTENSION), ExtensionStackDeleter>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, ossl::Deleter<X509_EXTENSION_free>>;
using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, ossl::Deleter<ASN1_INTEGER_free>>;

std::string with_openssl_reason(std::string message) {
  const std::string reason = ossl::drain_errors();
  if (!reason.empty()) message += " (" + reason + ")";
  return message;
}

Result<std::string> read_file(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error::not_found("cannot read the " + std::string(what) + " '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Refuses to prompt for a pass phrase: replay runs unattended.
int no_passphrase(char*, int, int, void*) { return -1; }

Status add_extension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return Error::internal(with_openssl_reason(std::string("cannot add the ") + OBJ_nid2sn(nid) + " extension"));
  }
  return {};
}

// 128 random bits, positive (RFC 5280: at most 20 octets, non-negative).
Status set_random_serial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return Error::internal(with_openssl_reason("no random serial number"));
  bytes[0] &= 0x7F;
  bytes[0] |= 0x01;  // never a leading zero octet, so the encoding keeps all 16 bytes
  ossl::BignumPtr bn(BN_bin2bn(bytes, sizeof bytes, nullptr));
  Asn1IntegerPtr serial(bn ? BN_to_ASN1_INTEGER(bn.get(), nullptr) : nullptr);
  if (!serial || X509_set_serialNumber(cert, serial.get()) != 1) {
    return Error::internal(with_openssl_reason("cannot set the serial number"));
  }
  return {};
}

}  // namespace

struct LocalCa::Impl {
  ossl::X509Ptr certificate;
  ossl::PKeyPtr key;
  std::string subject;
};

Result<LocalCa> LocalCa::load(const std::string& certificate_file, const std::string& key_file) {
  auto cert_pem = read_file(certificate_file, "CA certificate file");
  if (!cert_pem.ok()) return cert_pem.error();
  auto key_pem = read_file(key_file, "CA key file");
  if (!key_pem.ok()) return key_pem.error();

  auto impl = std::make_shared<Impl>();
  ossl::BioPtr cert_bio(BIO_new_mem_buf(cert_pem->data(), static_cast<int>(cert_pem->size())));
  impl->certificate.reset(PEM_read_bio_X509(cert_bio.get(), nullptr, no_passphrase, nullptr));
  if (!impl->certificate) {
    (void)ossl::drain_errors();
    return Error::invalid_argument("the CA certificate file '" + certificate_file + "' holds no PEM certificate");
  }
  ossl::BioPtr key_bio(BIO_new_mem_buf(key_pem->data(), static_cast<int>(key_pem->size())));
  impl->key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, no_passphrase, nullptr));
  // The key file's bytes never reach a message: only its name and what is wrong with it.
  OPENSSL_cleanse(key_pem->data(), key_pem->size());
  if (!impl->key) {
    (void)ossl::drain_errors();
    return Error::invalid_argument("the CA key file '" + key_file +
                                   "' holds no unencrypted PEM private key (encrypted keys are not supported here)");
  }
  if (X509_check_private_key(impl->certificate.get(), impl->key.get()) != 1) {
    (void)ossl::drain_errors();
    return Error::invalid_argument("the CA key '" + key_file + "' does not belong to the CA certificate '" +
                                   certificate_file + "'");
  }
  unsigned char* der = nullptr;
  const int der_len = i2d_X509(impl->certificate.get(), &der);
  if (der_len > 0) {
    auto info = certstore::parse_certificate_der(std::string_view(reinterpret_cast<const char*>(der), der_len));
    if (info.ok()) impl->subject = info->subject;
  }
  OPENSSL_free(der);
  if (X509_check_ca(impl->certificate.get()) == 0) {
    logger("agent")->warn("the CA certificate '{}' ({}) is not marked as a CA; issuing with it anyway",
                          certificate_file, impl->subject);
  }
  return LocalCa(std::move(impl));
}

const std::string& LocalCa::subject() const { return impl_->subject; }

Result<std::string> LocalCa::issue(std::string_view csr, std::chrono::hours validity) const {
  auto info = certstore::parse_csr(csr);
  if (!info.ok()) return info.error().context("the CSR to sign: ");
  return issue(*info, validity);
}

Result<std::string> LocalCa::issue(const certstore::CsrInfo& csr, std::chrono::hours validity) const {
  const certstore::CsrInfo* info = &csr;
  if (!info->signature_valid)
    return Error::invalid_argument("the CSR's self-signature does not verify; not signing it");
  const auto* der_bytes = reinterpret_cast<const unsigned char*>(info->der.data());
  ossl::X509ReqPtr request(d2i_X509_REQ(nullptr, &der_bytes, static_cast<long>(info->der.size())));
  if (!request) return Error::invalid_argument(with_openssl_reason("the CSR to sign is not a PKCS#10 request"));
  EVP_PKEY* public_key = X509_REQ_get0_pubkey(request.get());
  if (public_key == nullptr) return Error::invalid_argument(with_openssl_reason("the CSR has no usable public key"));

  ossl::X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1) return Error::internal(with_openssl_reason("X509_new failed"));
  WINCERT_TRY(set_random_serial(cert.get()));
  // A few minutes of back-dating absorbs clock skew between this machine and the host.
  const long validity_seconds = static_cast<long>(std::chrono::duration_cast<std::chrono::seconds>(validity).count());
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), -300) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), validity_seconds) == nullptr ||
      X509_set_subject_name(cert.get(), X509_REQ_get_subject_name(request.get())) != 1 ||
      X509_set_issuer_name(cert.get(), X509_get_subject_name(impl_->certificate.get())) != 1 ||
      X509_set_pubkey(cert.get(), public_key) != 1) {
    return Error::internal(with_openssl_reason("cannot fill in the certificate"));
  }

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, impl_->certificate.get(), cert.get(), request.get(), nullptr, 0);
  const bool rsa = EVP_PKEY_get_base_id(public_key) == EVP_PKEY_RSA;
  WINCERT_TRY(add_extension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE"));
  WINCERT_TRY(add_extension(cert.get(), &ctx, NID_key_usage,
                            rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature"));
  WINCERT_TRY(add_extension(cert.get(), &ctx, NID_ext_key_usage, "serverAuth,clientAuth"));
  WINCERT_TRY(add_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  WINCERT_TRY(add_extension(cert.get(), &ctx, NID_authority_key_identifier, "keyid,issuer"));
  // The requested subjectAltName, as the device asked for it (certreq's extensionRequest).
  ExtensionStackPtr requested(X509_REQ_get_extensions(request.get()));
  for (int i = 0; requested && i < sk_X509_EXTENSION_num(requested.get()); ++i) {
    X509_EXTENSION* ext = sk_X509_EXTENSION_value(requested.get(), i);
    if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_subject_alt_name) continue;
    if (X509_add_ext(cert.get(), ext, -1) != 1) {
      return Error::internal(with_openssl_reason("cannot copy the requested subjectAltName"));
    }
  }

  // EdDSA keys sign without a separate digest.
  const int ca_key_type = EVP_PKEY_get_base_id(impl_->key.get());
  const EVP_MD* digest = (ca_key_type == EVP_PKEY_ED25519 || ca_key_type == EVP_PKEY_ED448) ? nullptr : EVP_sha256();
  if (X509_sign(cert.get(), impl_->key.get(), digest) <= 0) {
    return Error::internal(with_openssl_reason("signing with the CA key failed"));
  }
  unsigned char* out = nullptr;
  const int out_len = i2d_X509(cert.get(), &out);
  if (out_len <= 0) return Error::internal(with_openssl_reason("cannot encode the issued certificate"));
  std::string der(reinterpret_cast<const char*>(out), static_cast<std::size_t>(out_len));
  OPENSSL_free(out);
  return der;
}

std::string pem_encode(std::string_view der, std::string_view label) {
  const std::string body = base64_encode(der);
  std::string pem = "-----BEGIN " + std::string(label) + "-----\n";
  for (std::size_t i = 0; i < body.size(); i += 64) {
    pem += body.substr(i, 64);
    pem += '\n';
  }
  pem += "-----END " + std::string(label) + "-----\n";
  return pem;
}

}  // namespace wincert::agent
