// PKCS#12 (PFX) reading with OpenSSL 3: modern AES/PBES2 files and legacy RC2/3DES ones (through a
// private library context that loads the legacy provider; the rest of the process stays on default).
#pragma once

#include "certstore/x509.hpp"
#include "common/result.hpp"
#include "common/secret.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wincert::certstore {

struct PfxCertificate {
  std::string der;  // the certificate's DER bytes
  CertificateInfo info;
  std::string friendly_name;  // the bag's friendlyName as UTF-8 ("" when absent)
};

struct PfxContents {
  std::optional<PfxCertificate> leaf;  // the certificate matching the key; without a key, the end entity
  std::vector<PfxCertificate> chain;   // every other certificate, in file order
  bool has_private_key = false;
  bool key_matches_leaf = false;  // has_private_key and the leaf's public key is the key's
  std::optional<KeyParameters> private_key;
};

// What a job calls the certificate in messages: its alias, else its thumbprint, else "in this job".
std::string certificate_label(std::string_view alias, std::string_view thumbprint);

// What opening one PFX may cost. PKCS#12 lets the file choose its key-derivation iteration counts, and
// each derivation runs that many hash rounds: a 2.5 KB file with a MAC count of 2^28 costs half a minute.
// Counts are read from the ASN.1 before any key is derived; a file above a limit is refused.
struct PfxLimits {
  // Any one derivation (the MAC, an encrypted part, a shrouded key). Windows exports use 2,000-600,000.
  std::int64_t max_iterations = 10'000'000;
  // The sum over every derivation in the file (many parts of "allowed" cost add up).
  std::int64_t max_total_iterations = 30'000'000;
  // Encrypted parts and shrouded keys looked at (a file of thousands of bags is not a certificate).
  std::size_t max_bags = 1024;
};

// Opens a PFX. An empty password tries both the empty and the absent password, as Windows does.
// Errors (kInvalidInput) name the certificate: "the PFX for certificate <label> could not be opened:
// wrong password or corrupt file"; a PFX without any certificate is an error too. The password never
// appears in a message.
// A file whose iteration counts exceed `limits` is refused (kInvalidInput) before any key is derived:
// "... could not be opened: its MAC iteration count N is above this agent's limit of M ...".
// CPU-heavy (a legitimate file costs up to seconds): callers on an I/O thread run it on the worker pool.
Result<PfxContents> open_pfx(std::string_view pfx_der, const Secret& password, std::string_view label,
                             const PfxLimits& limits = {});

// Job contents as Command sends them (base64): a PFX, or a bare DER certificate (no key, no password).
Result<PfxContents> open_job_certificate(const Secret& contents_base64, const Secret& password, std::string_view label,
                                         const PfxLimits& limits = {});

// Checks a PFX is fit to import: it has a leaf, and when a key is required (IIS, or a PFX carrying a key)
// the key exists and matches the leaf. "no private key" and "key does not match" are separate messages.
Status check_importable(const PfxContents& pfx, std::string_view label, bool private_key_required);

// True when the legacy provider (RC2, 3DES, RC4-based PBE) could be loaded for PFX reading.
bool legacy_pfx_algorithms_available();

}  // namespace wincert::certstore
