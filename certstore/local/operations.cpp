#include "certstore/local/operations.hpp"

#include "certstore/local/certificate_key.hpp"
#include "certstore/local/machine_key.hpp"
#include "certstore/local/pfx_key.hpp"
#include "certstore/local/request_builder.hpp"
#include "certstore/local/system_store.hpp"
#include "certstore/local/win32_error.hpp"
#include "certstore/pkcs12.hpp"
#include "common/encoding.hpp"
#include "common/log.hpp"
#include "common/win32_text.hpp"

namespace wincert::certstore::local {
namespace {

constexpr DWORD kEncoding = X509_ASN_ENCODING | PKCS_7_ASN_ENCODING;

std::string store_path(std::string_view store) { return "LocalMachine\\" + std::string(store); }

// Key names are ours and unique, so a retried job never collides with a half-written earlier attempt.
std::string new_key_name() { return "wincert-" + to_lower(random_uuid()); }

// True when any certificate in any LocalMachine store (pending requests included) links to this key.
bool key_in_use(const KeyLink& link) {
  for (const auto& name : machine_store_names()) {
    auto store = open_machine_store(name, StoreAccess::kRead);
    if (!store) continue;
    bool used = false;
    for_each_certificate(store->get(), [&](PCCERT_CONTEXT certificate) {
      const auto other = key_link_of(certificate);
      used = other && other->same_key(link);
      return !used;
    });
    if (used) return true;
  }
  return false;
}

// Deletes a key nothing links to any more; a failure is logged, not fatal (the certificate work is done).
void delete_key_if_orphaned(const KeyLink& link, std::string_view where) {
  if (key_in_use(link)) return;
  if (auto deleted = delete_machine_key(link); !deleted) {
    logger("certstore")
        ->warn("{}the replaced certificate's private key could not be deleted: {}", where, deleted.error().message);
  }
}

void fill_key_facts(PCCERT_CONTEXT certificate, bool& has_private_key, std::string& provider_name) {
  const auto check = check_private_key(certificate);
  has_private_key = check.usable;
  provider_name = check.usable ? check.link->provider : std::string();
}

DigestAlgorithm digest_for(const CertreqKeySpec& spec) {
  if (spec.key_algorithm == "ECDSA_P384") return DigestAlgorithm::kSha384;
  if (spec.key_algorithm == "ECDSA_P521") return DigestAlgorithm::kSha512;
  return DigestAlgorithm::kSha256;
}

const char* signature_oid(DigestAlgorithm digest, bool ecdsa) {
  switch (digest) {
    case DigestAlgorithm::kSha384:
      return ecdsa ? szOID_ECDSA_SHA384 : szOID_RSA_SHA384RSA;
    case DigestAlgorithm::kSha512:
      return ecdsa ? szOID_ECDSA_SHA512 : szOID_RSA_SHA512RSA;
    case DigestAlgorithm::kSha256:
      break;
  }
  return ecdsa ? szOID_ECDSA_SHA256 : szOID_RSA_SHA256RSA;
}

// certreq's bookkeeping, done natively: a self-signed placeholder for the request's subject and key in
// LocalMachine\REQUEST, linked to the new key. install_issued() finds it by public key.
Status record_pending_request(const MachineKey& key, std::string& subject_der, DigestAlgorithm digest) {
  CERT_NAME_BLOB subject{static_cast<DWORD>(subject_der.size()), reinterpret_cast<BYTE*>(subject_der.data())};
  std::wstring container = widen(key.link().container), provider = widen(key.link().provider);
  CRYPT_KEY_PROV_INFO info{};
  info.pwszContainerName = container.data();
  info.pwszProvName = provider.data();
  info.dwProvType = key.link().provider_type;
  info.dwFlags = key.link().flags;
  info.dwKeySpec = key.link().key_spec;
  CRYPT_ALGORITHM_IDENTIFIER algorithm{};
  algorithm.pszObjId = const_cast<char*>(signature_oid(digest, key.is_ecdsa()));
  CertContext placeholder(
      CertCreateSelfSignCertificate(key.signing_handle(), &subject, 0, &info, &algorithm, nullptr, nullptr, nullptr));
  if (!placeholder) return last_win32_error("recording the pending request: ", "CertCreateSelfSignCertificate");
  WINCERT_TRY(set_key_link(placeholder.get(), key.link()));
  WINCERT_TRY(set_friendly_name(placeholder.get(), "wincert-agent pending request"));

  auto requests = open_machine_store(kPendingRequestStore, StoreAccess::kOpenOrCreate);
  if (!requests) return requests.error();
  auto stored = add_to_store(requests->get(), placeholder.get(), CERT_STORE_ADD_NEW);
  if (!stored)
    return stored.error().context("recording the pending request in " + store_path(kPendingRequestStore) + ": ");
  return commit_changes(requests->get(), kPendingRequestStore);
}

// The pending request whose key matches the issued certificate's public key (a duplicate the caller owns).
CertContext find_pending_request(HCERTSTORE requests, PCCERT_CONTEXT issued) {
  CertContext match;
  for_each_certificate(requests, [&](PCCERT_CONTEXT candidate) {
    if (CertComparePublicKeyInfo(kEncoding, &candidate->pCertInfo->SubjectPublicKeyInfo,
                                 &issued->pCertInfo->SubjectPublicKeyInfo) &&
        key_link_of(candidate)) {
      match.reset(CertDuplicateCertificateContext(candidate));
      return false;
    }
    return true;
  });
  return match;
}

Result<std::vector<std::string>> add_chain_to_ca_store(const PfxContents& pfx) {
  std::vector<std::string> added;
  if (pfx.chain.empty()) return added;
  auto ca = open_machine_store("CA", StoreAccess::kWrite);
  if (!ca) return ca.error();
  for (const auto& certificate : pfx.chain) {
    // Intermediates only: trusting a root is a decision for the machine's administrator, not this job.
    if (certificate.info.self_signed) continue;
    if (!CertAddEncodedCertificateToStore(ca->get(), kEncoding, reinterpret_cast<const BYTE*>(certificate.der.data()),
                                          static_cast<DWORD>(certificate.der.size()), CERT_STORE_ADD_NEW, nullptr)) {
      const DWORD code = GetLastError();
      if (code == static_cast<DWORD>(CRYPT_E_EXISTS)) continue;
      return win32_status_error(code, "adding chain certificate " + certificate.info.thumbprint + " to " +
                                          store_path("CA") + ": " +
                                          call_failed("CertAddEncodedCertificateToStore", code));
    }
    added.push_back(certificate.info.thumbprint);
  }
  WINCERT_TRY(commit_changes(ca->get(), "CA"));
  return added;
}

}  // namespace

Result<StoreInventory> inventory_now(const std::string& store_name) {
  auto store = open_machine_store(store_name, StoreAccess::kRead);
  if (!store) return store.error();
  StoreInventory inventory;
  inventory.store = store_name;
  std::size_t index = 0;
  for_each_certificate(store->get(), [&](PCCERT_CONTEXT certificate) {
    ++index;
    InventoryEntry entry;
    entry.der = der_of(certificate);
    auto info = inventory_facts_der(entry.der);
    if (!info) {
      inventory.problems.push_back("entry " + std::to_string(index) + " (" + thumbprint_of(entry.der) +
                                   "): " + info.error().message);
      return true;
    }
    entry.thumbprint = info->thumbprint;
    entry.friendly_name = friendly_name_of(certificate);
    fill_key_facts(certificate, entry.has_private_key, entry.provider_name);
    entry.sans = std::move(info->sans);
    inventory.entries.push_back(std::move(entry));
    return true;
  });
  return inventory;
}

Result<AddCertificateResult> add_now(const AddCertificateRequest& request) {
  const std::string label = request.label.empty() ? std::string("in this job") : request.label;
  // The PFX is checked before the machine is touched: a wrong password or a key-less PFX changes nothing.
  auto pfx = open_job_certificate(request.contents_base64, request.password, label);
  if (!pfx) return pfx.error();
  WINCERT_TRY(check_importable(*pfx, label, request.private_key_required));
  if (!request.steps.empty()) {
    // make_local_cert_store() (local_bindings.hpp) runs the post-import steps; this call only imports.
    // A request this call cannot carry out (the caller asked for a binding here): refused before anything changes.
    return Error::invalid_argument("certificate " + label +
                                   ": add_now() imports only; bind through make_local_cert_store()");
  }
  const std::string thumbprint = pfx->leaf->info.thumbprint;
  const std::string where = "adding certificate " + thumbprint + " to " + store_path(request.store) + ": ";

  auto store = open_machine_store(request.store, StoreAccess::kWrite);
  if (!store) return store.error();
  auto existing = find_by_thumbprint(store->get(), thumbprint);
  if (!existing) return existing.error().context(where);

  AddCertificateResult result;
  result.thumbprint = thumbprint;
  std::optional<KeyLink> replaced_key;
  if (*existing) {
    if (!request.overwrite) {
      result.outcome = AddOutcome::kAlreadyPresent;
      fill_key_facts(existing->get(), result.has_private_key, result.provider_name);
      return result;
    }
    result.outcome = AddOutcome::kReplaced;
    replaced_key = key_link_of(existing->get());
  }

  std::optional<MachineKey> key;
  if (pfx->has_private_key) {
    auto provider = find_provider(trim(request.provider_name).empty() ? kDefaultKeyStorageProvider
                                                                      : std::string_view(request.provider_name));
    if (!provider) return provider.error().context(where);
    auto private_key = pfx_private_key(request.contents_base64, request.password, label);
    if (!private_key) return private_key.error();
    auto imported = MachineKey::import(*provider, private_key->get(), new_key_name());
    if (!imported) return imported.error().context(where);
    key.emplace(std::move(*imported));
  }
  // Any failure from here on removes the key this call made, so nothing is left behind unlinked. The key is
  // closed first: Wine's CSP writes a container back when its last handle closes.
  auto abandon_key = [&] {
    if (!key) return;
    const KeyLink link = key->link();
    key.reset();
    discard_machine_key(link);
  };

  auto certificate = certificate_from_der(pfx->leaf->der);
  if (!certificate) {
    abandon_key();
    return certificate.error().context(where);
  }
  if (key) {
    if (auto linked = set_key_link(certificate->get(), key->link()); !linked) {
      abandon_key();
      return linked.error().context(where);
    }
  }
  if (!pfx->leaf->friendly_name.empty()) {
    if (auto named = set_friendly_name(certificate->get(), pfx->leaf->friendly_name); !named) {
      logger("certstore")->warn("{}{}", where, named.error().message);
    }
  }
  // A replacement without a key keeps the old key link and friendly name, as .NET's X509Store.Add does.
  if (*existing && !key) {
    if (replaced_key) WINCERT_TRY(set_key_link(certificate->get(), *replaced_key));
    if (pfx->leaf->friendly_name.empty()) {
      if (const std::string old_name = friendly_name_of(existing->get()); !old_name.empty()) {
        WINCERT_TRY(set_friendly_name(certificate->get(), old_name));
      }
    }
  }
  auto stored = put_certificate(store->get(), certificate->get(), std::move(*existing));
  if (!stored) {
    abandon_key();
    return stored.error().context(where);
  }
  if (auto committed = commit_changes(store->get(), request.store); !committed) {
    abandon_key();
    return committed.error().context(where);
  }
  if (request.add_chain_to_ca_store) {
    auto chain = add_chain_to_ca_store(*pfx);
    if (!chain) return chain.error().context(where);
    result.chain_added = std::move(*chain);
  }

  fill_key_facts(stored->get(), result.has_private_key, result.provider_name);
  if (key && !result.has_private_key) {
    return Error::failed_precondition(where + "the certificate was imported but Windows cannot open its private key (" +
                                      check_private_key(stored->get()).problem + ")");
  }
  if (replaced_key && key && !replaced_key->same_key(key->link())) {
    delete_key_if_orphaned(*replaced_key, where);
  }
  return result;
}

Result<RemoveResult> remove_now(const RemoveRequest& request) {
  const std::string& store_name = request.store;
  const std::string& thumbprint_in = request.thumbprint;
  const std::string thumbprint = normalize_thumbprint(thumbprint_in);
  if (thumbprint.empty()) {
    return Error::invalid_argument("cannot remove '" + std::string(trim(thumbprint_in)).substr(0, 80) +
                                   "' from store '" + store_name + "': it is not a 40-digit SHA-1 thumbprint");
  }
  const std::string where = "removing certificate " + thumbprint + " from " + store_path(store_name) + ": ";
  auto store = open_machine_store(store_name, StoreAccess::kWrite);
  if (!store) return store.error();
  auto existing = find_by_thumbprint(store->get(), thumbprint);
  if (!existing) return existing.error().context(where);
  RemoveResult result;
  if (!*existing) return result;
  result.found = true;

  const auto link = key_link_of(existing->get());
  // CertDeleteCertificateFromStore frees the context whatever happens.
  if (!CertDeleteCertificateFromStore(existing->release()))
    return last_win32_error(where, "CertDeleteCertificateFromStore");
  WINCERT_TRY(commit_changes(store->get(), store_name));
  result.removed = true;
  // The key stays unless the store opted in (an HSM key may be shared with other servers); renewals
  // often reuse a key, so even then it goes only when no other LocalMachine certificate links to it.
  if (request.delete_unused_key && link && !key_in_use(*link)) {
    if (auto deleted = delete_machine_key(*link); !deleted) {
      return std::move(deleted).error().context(
          where + "the certificate was removed, but its private key could not be deleted: ");
    }
    result.key_removed = true;
  }
  return result;
}

Result<CertificateRequest> create_csr_now(const CsrRequest& request) {
  auto spec = certreq_key_spec(request.key_type, request.key_size);
  if (!spec) return spec.error();
  const std::string requested_provider(trim(request.provider_name));
  auto provider_name = certreq_provider(
      requested_provider.empty() ? std::string(kDefaultKeyStorageProvider) : requested_provider, *spec);
  if (!provider_name) return provider_name.error();
  auto provider = find_provider(*provider_name);
  if (!provider) return provider.error();
  auto subject_der = encode_subject(request.subject);
  if (!subject_der) return subject_der.error();
  {
    auto target = open_machine_store(request.store, StoreAccess::kRead);  // fail before making a key
    if (!target) return target.error();
  }

  auto created = MachineKey::create(*provider, *spec, new_key_name());
  if (!created) return created.error();
  std::optional<MachineKey> key(std::move(*created));
  const KeyLink link = key->link();
  // A failure removes the new key (closed first: Wine's CSP writes a container back when it closes).
  auto fail = [&](const Error& error) -> Result<CertificateRequest> {
    key.reset();
    discard_machine_key(link);
    return error.context("creating a certificate request for '" + request.subject + "': ");
  };

  auto public_key = key->public_key_der();
  if (!public_key) return fail(public_key.error());
  const DigestAlgorithm digest = digest_for(*spec);
  auto der = build_signed_request(request.subject, request.sans, *public_key, digest, key->is_ecdsa(),
                                  [&](std::string_view hash) { return key->sign_digest(hash, digest); });
  if (!der) return fail(der.error());
  auto info = parse_csr(*der);
  if (!info) return fail(info.error());
  CsrExpectation expected;
  expected.sans = request.sans;
  expected.key = spec->key_algorithm == "RSA"
                     ? KeyParameters{KeyAlgorithm::kRsa, spec->key_length, {}}
                     : KeyParameters{KeyAlgorithm::kEc, spec->key_length, "P-" + std::to_string(spec->key_length)};
  if (auto checked = check_csr(*info, expected); !checked) return fail(checked.error());
  if (auto recorded = record_pending_request(*key, *subject_der, digest); !recorded) return fail(recorded.error());

  CertificateRequest result;
  result.provider_name = provider->name;
  result.info = std::move(*info);
  return result;
}

Result<InstallIssuedResult> install_issued_now(const InstallIssuedRequest& request) {
  auto info = parse_certificate_der(request.certificate_der);
  if (!info) return info.error().context("the issued certificate cannot be installed: ");
  const std::string where =
      "installing issued certificate " + info->thumbprint + " into " + store_path(request.store) + ": ";
  auto created = certificate_from_der(request.certificate_der);
  if (!created) return created.error().context(where);
  CertContext issued = std::move(*created);

  auto target = open_machine_store(request.store, StoreAccess::kWrite);
  if (!target) return target.error();
  // A retried job: the certificate is already in place with its key.
  auto existing = find_by_thumbprint(target->get(), info->thumbprint);
  if (!existing) return existing.error().context(where);
  if (*existing && check_private_key(existing->get()).usable) return InstallIssuedResult{info->thumbprint, true};

  auto requests = open_machine_store(kPendingRequestStore, StoreAccess::kWrite);
  if (!requests) {
    Error error = std::move(requests).error();  // its code and Win32 status stay (missing store, access denied)
    error.message = where + "there is no pending request on this machine (" + error.message + ")";
    return error;
  }
  CertContext pending = find_pending_request(requests->get(), issued.get());
  if (!pending) {
    return Error::not_found(
        where + "no pending request in " + store_path(kPendingRequestStore) +
        " has this certificate's public key (the request was made elsewhere, or already installed)");
  }
  const KeyLink link = *key_link_of(pending.get());
  if (auto key = MachineKey::open(link); !key) {
    return std::move(key).error().context(where + "the key generated for the request is gone: ");
  }

  if (auto linked = set_key_link(issued.get(), link); !linked) return linked.error().context(where);
  auto stored = put_certificate(target->get(), issued.get(), std::move(*existing));
  if (!stored) return stored.error().context(where);
  if (auto committed = commit_changes(target->get(), request.store); !committed)
    return committed.error().context(where);
  // The placeholder has done its job; the key now belongs to the issued certificate.
  if (!CertDeleteCertificateFromStore(pending.release())) {
    logger("certstore")
        ->warn("{}the pending request could not be removed from {}: {}", where, store_path(kPendingRequestStore),
               last_error("CertDeleteCertificateFromStore"));
  } else if (auto committed = commit_changes(requests->get(), kPendingRequestStore); !committed) {
    logger("certstore")->warn("{}{}", where, committed.error().message);
  }
  const auto check = check_private_key(stored->get());
  if (!check.usable) {
    return Error::failed_precondition(
        where + "the certificate was installed but is not linked to the key generated for its request (" +
        check.problem + ")");
  }
  return InstallIssuedResult{info->thumbprint, true};
}

}  // namespace wincert::certstore::local
