// Persisted machine keys, in a CNG key storage provider (KSP, the modern default) or a legacy CryptoAPI
// CSP (when a job names one), behind one type: create, import a PFX's key, open the key a certificate
// links to, sign, export the public key, delete.
#pragma once

#include "certstore/csr.hpp"
#include "certstore/local/handles.hpp"
#include "certstore/local/system_store.hpp"
#include "common/result.hpp"

#include <openssl/evp.h>

#include <string>
#include <string_view>

namespace wincert::certstore::local {

// Where a job without a ProviderName gets its keys.
inline constexpr std::string_view kDefaultKeyStorageProvider = "Microsoft Software Key Storage Provider";

struct Provider {
  std::string name;
  DWORD csp_type = 0;  // 0 = a CNG key storage provider; else the legacy CSP's type (PROV_RSA_FULL, ...)
  bool cng() const { return csp_type == 0; }
};

// A legacy CSP when CryptEnumProviders lists the name (that is where its type comes from), else a CNG KSP
// when NCryptOpenStorageProvider accepts it. Unknown names are a permanent error naming them.
Result<Provider> find_provider(std::string_view name);

enum class DigestAlgorithm { kSha256, kSha384, kSha512 };

class MachineKey {
 public:
  // A new non-exportable machine key named `name`: RSA (CSP: AT_KEYEXCHANGE) or ECDSA P-256/384/521 (KSP only).
  static Result<MachineKey> create(const Provider& provider, const CertreqKeySpec& spec, const std::string& name);
  // A PFX's private key, persisted as the non-exportable machine key `name`.
  static Result<MachineKey> import(const Provider& provider, EVP_PKEY* key, const std::string& name);
  // The key a certificate links to, honouring the link's machine flag.
  static Result<MachineKey> open(const KeyLink& link);

  const KeyLink& link() const { return link_; }
  bool is_ecdsa() const { return ecdsa_; }
  // The SubjectPublicKeyInfo DER.
  Result<std::string> public_key_der() const;
  // Signs a message digest; the signature comes back as X.509 encodes it (RSA PKCS#1 v1.5 big-endian,
  // ECDSA as a DER Ecdsa-Sig-Value).
  Result<std::string> sign_digest(std::string_view digest, DigestAlgorithm algorithm) const;
  // What CertCreateSelfSignCertificate-style APIs take to sign with this key.
  HCRYPTPROV_OR_NCRYPT_KEY_HANDLE signing_handle() const;

 private:
  explicit MachineKey(KeyLink link) : link_(std::move(link)) {}

  KeyLink link_;
  bool ecdsa_ = false;
  NcryptHandle cng_key_;
  CryptProvider csp_;         // the container through the key's own CSP
  CryptProvider csp_signer_;  // the same container through the AES CSP when the key's CSP lacks SHA-2
};

// Deletes a persisted key. A key that is already gone counts as deleted.
Status delete_machine_key(const KeyLink& link);
// Best-effort cleanup after another failure (that first error is the one worth reporting).
void discard_machine_key(const KeyLink& link);

// Signature encodings between Windows and X.509 (exposed for tests).
std::string reversed(std::string_view bytes);                      // CryptoAPI signatures are little-endian
Result<std::string> ecdsa_p1363_to_der(std::string_view r_and_s);  // CNG's r||s -> Ecdsa-Sig-Value

}  // namespace wincert::certstore::local
