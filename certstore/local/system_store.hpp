// The LocalMachine system certificate stores through CryptoAPI: opening, walking, finding by thumbprint,
// and the certificate properties the backend reads and writes (friendly name, the key link).
#pragma once

#include "certstore/local/handles.hpp"
#include "common/result.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wincert::certstore::local {

enum class StoreAccess {
  kRead,          // read-only; the store must exist
  kWrite,         // read-write; the store must exist
  kOpenOrCreate,  // read-write; created when missing (only for our own REQUEST bookkeeping)
};

// LocalMachine\<name> (CertOpenSystemStore would reach only the current user's stores). A missing store
// is a permanent error naming it.
Result<StoreHandle> open_machine_store(std::string_view name, StoreAccess access);

// Writes a store's changes through. Windows' system stores persist each change at once (this is then a
// no-op); Wine's registry stores keep deletions in memory until told, even across CertCloseStore.
Status commit_changes(HCERTSTORE store, std::string_view name);

// Every LocalMachine system store name Windows reports, plus the well-known ones (some hosts, and Wine,
// do not enumerate stores that exist but are empty).
std::vector<std::string> machine_store_names();

// Calls visit(context) for each certificate until it returns false. The context is only valid during the
// call (CertEnumCertificatesInStore frees it when it moves on); keep one with CertDuplicateCertificateContext.
template <typename Visit>
void for_each_certificate(HCERTSTORE store, Visit&& visit) {
  PCCERT_CONTEXT context = nullptr;
  while ((context = CertEnumCertificatesInStore(store, context)) != nullptr) {
    if (!visit(context)) {
      CertFreeCertificateContext(context);
      return;
    }
  }
}

// The certificate with this SHA-1 thumbprint (40 hex digits), or an empty CertContext when there is none.
Result<CertContext> find_by_thumbprint(HCERTSTORE store, std::string_view thumbprint);

// A certificate context in no store yet. Properties (key link, friendly name) are set on it before it is
// added, so they go into the store with the certificate: Wine saves a later property change of a stored
// certificate only when something else in that store changes too.
Result<CertContext> certificate_from_der(std::string_view der);
// Adds the context and its properties (disposition: CERT_STORE_ADD_*); returns the stored copy.
Result<CertContext> add_to_store(HCERTSTORE store, PCCERT_CONTEXT context, DWORD disposition);
// Adds the context, replacing a certificate with the same thumbprint: the old one is deleted first and put
// back if the add fails. (CERT_STORE_ADD_REPLACE_EXISTING would be one call, but Wine keeps the old
// registry entry with it.) The caller commits.
Result<CertContext> put_certificate(HCERTSTORE store, PCCERT_CONTEXT context, CertContext existing);

// The encoded certificate bytes.
std::string der_of(PCCERT_CONTEXT context);
std::string friendly_name_of(PCCERT_CONTEXT context);
Status set_friendly_name(PCCERT_CONTEXT context, std::string_view name);

// CERT_KEY_PROV_INFO_PROP_ID: which provider holds the certificate's key, under which name.
struct KeyLink {
  std::string provider;     // "Microsoft Software Key Storage Provider", "Microsoft Strong Cryptographic Provider"
  std::string container;    // CNG key name or CSP container name
  DWORD provider_type = 0;  // 0 = CNG key storage provider; else the CSP type (PROV_RSA_FULL, ...)
  DWORD flags = 0;          // CRYPT_MACHINE_KEYSET (== NCRYPT_MACHINE_KEY_FLAG) for machine keys
  DWORD key_spec = 0;       // AT_KEYEXCHANGE / AT_SIGNATURE for CSP keys; 0 for CNG keys

  bool cng() const { return provider_type == 0; }
  bool machine() const { return (flags & CRYPT_MACHINE_KEYSET) != 0; }
  // The same persisted key: provider names compare case-insensitively, as Windows does.
  bool same_key(const KeyLink& other) const;
  // "key 'name' in 'provider'" for messages.
  std::string describe() const;
};

std::optional<KeyLink> key_link_of(PCCERT_CONTEXT context);
Status set_key_link(PCCERT_CONTEXT context, const KeyLink& link);

}  // namespace wincert::certstore::local
