// The private key a stored certificate is linked to, found the way Windows finds it.
#pragma once

#include "certstore/local/machine_key.hpp"
#include "certstore/local/system_store.hpp"
#include "common/result.hpp"

#include <optional>
#include <string>

namespace wincert::certstore::local {

struct PrivateKeyCheck {
  std::optional<KeyLink> link;  // CERT_KEY_PROV_INFO_PROP_ID, when the certificate has one
  bool usable = false;          // the linked key exists and can be opened without UI
  std::string problem;          // why not, when there is a link but no usable key
};

// CryptAcquireCertificatePrivateKey (silent, CNG keys allowed) first. When it fails, the linked key is
// opened explicitly with the link's own flags: Wine's CryptAcquireCertificatePrivateKey drops the
// CRYPT_MACHINE_KEYSET flag of the link and so never finds machine keys; on Windows both ways reach the
// same key. A key that exists but needs UI (NTE_SILENT_CONTEXT, e.g. strong key protection) is usable.
PrivateKeyCheck check_private_key(PCCERT_CONTEXT certificate);

// The linked key itself, open for signing.
Result<MachineKey> certificate_private_key(PCCERT_CONTEXT certificate);

}  // namespace wincert::certstore::local
