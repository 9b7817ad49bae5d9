// PKCS#12 (PFX) reading with OpenSSL 3: modern AES/PBES2 files and legacy RC2/3DES ones (through a
// private library context that loads the legacy provider; the rest of the process stays on default).
#pragma once

#include "certstore/x509.hpp"
#include "common/result.hpp"
#include "common/secret.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wincert::certstore {

struct PfxCertificate {
  std::string der;             // the certificate's DER bytes
  CertificateInfo info;
  std::string friendly_name;   // the bag's friendlyName as UTF-8 ("" when absent)
};

struct PfxContents {
  std::optional<PfxCertificate> leaf;   // the certificate matching the key; without a key, the end entity
  std::vector<PfxCertificate> chain;    // every other certificate, in file order
  bool has_private_key = false;
  bool key_matches_leaf = false;        // has_private_key and the leaf's public key is the key's
  std::optional<KeyParameters> private_key;
};

// What a job calls the certificate in messages: its alias, else its thumbprint, else "in this job".
std::string certificate_label(std::string_view alias, std::string_view thumbprint);

// Opens a PFX. An empty password tries both the empty and the absent password, as Windows does.
// Errors (kInvalidInput) name the certificate: "the PFX for certificate <label> could not be opened:
// wrong password or corrupt file"; a PFX without any certificate is an error too. The password never
// appears in a message.
Result<PfxContents> open_pfx(std::string_view pfx_der, const Secret& password, std::string_view label);

// Job contents as Command sends them (base64): a PFX, or a bare DER certificate (no key, no password).
Result<PfxContents> open_job_certificate(std::string_view contents_base64, const Secret& password,
                                         std::string_view label);

// Checks a PFX is fit to import: it has a leaf, and when a key is required (IIS, or a PFX carrying a key)
// the key exists and matches the leaf. "no private key" and "key does not match" are separate messages.
Status check_importable(const PfxContents& pfx, std::string_view label, bool private_key_required);

// True when the legacy provider (RC2, 3DES, RC4-based PBE) could be loaded for PFX reading.
bool legacy_pfx_algorithms_available();

}  // namespace wincert::certstore
