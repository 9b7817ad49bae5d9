// command-sim's certificate authority: signs the PKCS#10 requests agents send (reenrollment and agent
// authentication certificates) and makes test certificates with keys (PFX for Add jobs, TLS certificates
// for tests). Generated at first start and kept in the state directory, or loaded from files.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "certstore/x509.hpp"
#include "common/result.hpp"
#include "common/secret.hpp"

namespace wincert::sim::command {

enum class CertificateUse { kServerAndClient, kClientOnly, kServerOnly };

struct NewKeyRequest {
  std::string subject;  // "CN=www.example.com, O=Example, C=US" (most specific first, as Windows shows it)
  std::vector<certstore::SubjectAltName> sans;
  std::string key_type = "RSA";   // RSA, or EC / ECC / ECDSA
  std::string key_size = "2048";  // RSA bits; EC curve "P-256", "P-384", "P-521" (or 256/384/521)
  int validity_days = 365;
  CertificateUse use = CertificateUse::kServerAndClient;
};

struct IssuedCertificate {
  std::string der;
  certstore::CertificateInfo info;
};

struct IssuedKeyPair {
  IssuedCertificate certificate;
  Secret private_key_pem;  // unencrypted PKCS#8 PEM
};

class CertificateAuthority {
 public:
  // Loads cert_file/key_file when both are given; otherwise loads STATE_DIR/ca.pem + ca.key, creating
  // them (RSA 2048, ten years) when they do not exist yet.
  static Result<CertificateAuthority> load_or_create(const std::string& state_dir, const std::string& cert_file,
                                                     const std::string& key_file);

  // Signs a CSR (PEM, base64 DER or DER): subject and subjectAltName are copied from the request, the
  // request's own signature must verify. Other requested extensions are not honoured.
  Result<IssuedCertificate> sign_request(std::string_view csr, int validity_days, CertificateUse use) const;
  // A fresh key and a certificate for it.
  Result<IssuedKeyPair> issue(const NewKeyRequest& request) const;
  // PKCS#12 with the key, the certificate and this CA. Modern AES-256/PBKDF2 encryption unless legacy
  // (3DES/SHA-1, for Windows Server 2016 and older).
  Result<std::string> make_pfx(const IssuedKeyPair& pair, const Secret& password, std::string_view friendly_name,
                               bool legacy_encryption) const;

  const std::string& certificate_der() const { return der_; }
  std::string certificate_pem() const;
  const certstore::CertificateInfo& info() const { return info_; }

  CertificateAuthority(CertificateAuthority&&) noexcept;
  CertificateAuthority& operator=(CertificateAuthority&&) noexcept;
  ~CertificateAuthority();

 private:
  struct Keys;
  explicit CertificateAuthority(std::unique_ptr<Keys> keys);
  std::unique_ptr<Keys> keys_;
  std::string der_;
  certstore::CertificateInfo info_;
};

// SAN dictionary as Command sends it ({"dns": ["a", "b"], "ip4": ["10.0.0.1"]}) to typed SANs.
Result<std::vector<certstore::SubjectAltName>> sans_from_dictionary(
    const std::vector<std::pair<std::string, std::string>>& entries);

}  // namespace wincert::sim::command
