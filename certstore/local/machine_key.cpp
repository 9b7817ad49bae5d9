#include "certstore/local/machine_key.hpp"

#include "certstore/local/win32_error.hpp"
#include "certstore/openssl_util.hpp"
#include "common/encoding.hpp"
#include "common/win32_text.hpp"

#include <openssl/ecdsa.h>

#include <utility>
#include <vector>

namespace wincert::certstore::local {
namespace {

constexpr DWORD kEncoding = X509_ASN_ENCODING | PKCS_7_ASN_ENCODING;

std::string provider_error(const std::string& provider, const std::string& what, const std::string& detail) {
  return "the crypto provider '" + provider + "' could not " + what + ": " + detail;
}

bool is_rsa(const CertreqKeySpec& spec) { return spec.key_algorithm == "RSA"; }

const wchar_t* cng_algorithm(const CertreqKeySpec& spec) {
  if (spec.key_algorithm == "ECDSA_P256") return BCRYPT_ECDSA_P256_ALGORITHM;
  if (spec.key_algorithm == "ECDSA_P384") return BCRYPT_ECDSA_P384_ALGORITHM;
  if (spec.key_algorithm == "ECDSA_P521") return BCRYPT_ECDSA_P521_ALGORITHM;
  return BCRYPT_RSA_ALGORITHM;
}

ALG_ID csp_hash_algorithm(DigestAlgorithm algorithm) {
  switch (algorithm) {
    case DigestAlgorithm::kSha384:
      return CALG_SHA_384;
    case DigestAlgorithm::kSha512:
      return CALG_SHA_512;
    case DigestAlgorithm::kSha256:
      break;
  }
  return CALG_SHA_256;
}

const wchar_t* cng_hash_algorithm(DigestAlgorithm algorithm) {
  switch (algorithm) {
    case DigestAlgorithm::kSha384:
      return BCRYPT_SHA384_ALGORITHM;
    case DigestAlgorithm::kSha512:
      return BCRYPT_SHA512_ALGORITHM;
    case DigestAlgorithm::kSha256:
      break;
  }
  return BCRYPT_SHA256_ALGORITHM;
}

// Microsoft's software RSA CSPs share key containers; only the AES one (PROV_RSA_AES) hashes with SHA-2.
// So a key in the Base/Strong/Enhanced CSP signs through the AES CSP, as .NET and certreq do.
bool needs_aes_signer(const KeyLink& link) {
  return (link.provider_type == PROV_RSA_FULL || link.provider_type == PROV_RSA_SCHANNEL) &&
         istarts_with(link.provider, "Microsoft");
}

DWORD keyset_flags(const KeyLink& link) { return (link.machine() ? CRYPT_MACHINE_KEYSET : 0) | CRYPT_SILENT; }

// The algorithm group of a CNG key ("RSA", "ECDSA", "ECDH").
std::string cng_algorithm_group(NCRYPT_KEY_HANDLE key) {
  wchar_t group[64] = {};
  DWORD size = 0;
  if (NCryptGetProperty(key, NCRYPT_ALGORITHM_GROUP_PROPERTY, reinterpret_cast<BYTE*>(group), sizeof(group) - 2, &size,
                        0) != ERROR_SUCCESS) {
    return {};
  }
  return narrow(group);
}

Result<NcryptHandle> open_storage_provider(const std::string& name) {
  NcryptHandle provider;
  const std::wstring wide = widen(name);
  const SECURITY_STATUS status = NCryptOpenStorageProvider(provider.put(), wide.c_str(), 0);
  if (status != ERROR_SUCCESS) {
    return win32_status_error(status,
                              provider_error(name, "be opened", call_failed("NCryptOpenStorageProvider", status)));
  }
  return provider;
}

Result<std::string> encode_public_key_info(const CERT_PUBLIC_KEY_INFO* info) {
  BYTE* der = nullptr;
  DWORD size = 0;
  if (!CryptEncodeObjectEx(X509_ASN_ENCODING, X509_PUBLIC_KEY_INFO, info, CRYPT_ENCODE_ALLOC_FLAG, nullptr, &der,
                           &size)) {
    return last_win32_error("encoding the public key: ", "CryptEncodeObjectEx");
  }
  LocalMemory<BYTE> owned(der);
  return std::string(reinterpret_cast<const char*>(der), size);
}

// The PKCS#1 RSAPrivateKey DER as CryptoAPI's PRIVATEKEYBLOB (Windows' own decoder does the layout).
Result<std::string> rsa_private_key_blob(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int length = i2d_PrivateKey(key, &der);
  if (length <= 0) return Error::internal("the private key cannot be encoded: " + ossl::drain_errors());
  BYTE* blob = nullptr;
  DWORD size = 0;
  const BOOL ok = CryptDecodeObjectEx(kEncoding, PKCS_RSA_PRIVATE_KEY, der, static_cast<DWORD>(length),
                                      CRYPT_DECODE_ALLOC_FLAG, nullptr, &blob, &size);
  const DWORD code = GetLastError();
  OPENSSL_clear_free(der, static_cast<std::size_t>(length));
  if (!ok)
    return win32_status_error(code, "converting the RSA private key: " + call_failed("CryptDecodeObjectEx", code));
  std::string out(reinterpret_cast<const char*>(blob), size);
  SecureZeroMemory(blob, size);
  LocalFree(blob);
  return out;
}

Result<std::string> pkcs8_der(EVP_PKEY* key) {
  PKCS8_PRIV_KEY_INFO* info = EVP_PKEY2PKCS8(key);
  if (info == nullptr) return Error::internal("the private key cannot be encoded as PKCS#8: " + ossl::drain_errors());
  unsigned char* der = nullptr;
  const int length = i2d_PKCS8_PRIV_KEY_INFO(info, &der);
  PKCS8_PRIV_KEY_INFO_free(info);
  if (length <= 0) return Error::internal("the private key cannot be encoded as PKCS#8: " + ossl::drain_errors());
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length));
  OPENSSL_clear_free(der, static_cast<std::size_t>(length));
  return out;
}

// A new CSP key container; the caller fills it and releases the handle (Wine writes the container only
// when its handle is released, Windows at once: reopening afterwards works on both).
Result<CryptProvider> new_csp_container(const Provider& provider, const std::string& name) {
  CryptProvider handle;
  const std::wstring container = widen(name), provider_name = widen(provider.name);
  if (!CryptAcquireContextW(handle.put(), container.c_str(), provider_name.c_str(), provider.csp_type,
                            CRYPT_NEWKEYSET | CRYPT_MACHINE_KEYSET | CRYPT_SILENT)) {
    const DWORD failure = GetLastError();
    return win32_status_error(failure, provider_error(provider.name, "create the machine key container '" + name + "'",
                                                      call_failed("CryptAcquireContext", failure)));
  }
  return handle;
}

KeyLink link_for(const Provider& provider, const std::string& name) {
  KeyLink link;
  link.provider = provider.name;
  link.container = name;
  link.provider_type = provider.csp_type;
  link.flags = CRYPT_MACHINE_KEYSET;  // == NCRYPT_MACHINE_KEY_FLAG
  link.key_spec = provider.cng() ? 0 : AT_KEYEXCHANGE;
  return link;
}

// Opens the key just written, so a provider that accepted a key without persisting it (Wine's KSP keeps
// named keys in memory only) is an error here rather than a certificate linked to nothing.
Result<MachineKey> reopen_persisted(const KeyLink& link) {
  auto key = MachineKey::open(link);
  if (!key) {
    discard_machine_key(link);
    return std::move(key).error().context("the new machine key was accepted but not kept: ");
  }
  return key;
}

Status finalize_cng_key(NCRYPT_KEY_HANDLE key, const std::string& provider, const std::string& name) {
  DWORD export_policy = 0;  // not exportable: the key never leaves this machine
  SECURITY_STATUS status =
      NCryptSetProperty(key, NCRYPT_EXPORT_POLICY_PROPERTY, reinterpret_cast<BYTE*>(&export_policy),
                        sizeof(export_policy), NCRYPT_PERSIST_FLAG | NCRYPT_SILENT_FLAG);
  if (status != ERROR_SUCCESS) {
    return win32_status_error(status, provider_error(provider, "set the export policy of key '" + name + "'",
                                                     call_failed("NCryptSetProperty", status)));
  }
  status = NCryptFinalizeKey(key, NCRYPT_SILENT_FLAG);
  if (status != ERROR_SUCCESS) {
    return win32_status_error(
        status, provider_error(provider, "finalize key '" + name + "'", call_failed("NCryptFinalizeKey", status)));
  }
  return {};
}

}  // namespace

Result<Provider> find_provider(std::string_view name_in) {
  const std::string name(trim(name_in));
  if (name.empty()) return Error::invalid_argument("the crypto provider name is empty");
  for (DWORD index = 0;; ++index) {
    DWORD type = 0, size = 0;
    if (!CryptEnumProvidersW(index, nullptr, 0, &type, nullptr, &size)) break;
    std::wstring listed(size / sizeof(wchar_t), L'\0');
    if (!CryptEnumProvidersW(index, nullptr, 0, &type, listed.data(), &size)) break;
    while (!listed.empty() && listed.back() == L'\0') listed.pop_back();
    if (iequals(narrow(listed), name)) return Provider{narrow(listed), type};
  }
  auto ksp = open_storage_provider(name);
  if (!ksp) {
    return Error::not_found(
        "the crypto provider '" + name +
        "' is not installed on this machine (neither a CryptoAPI CSP nor a CNG key storage provider)");
  }
  return Provider{name, 0};
}

Result<MachineKey> MachineKey::create(const Provider& provider, const CertreqKeySpec& spec, const std::string& name) {
  const KeyLink link = link_for(provider, name);
  if (provider.cng()) {
    auto storage = open_storage_provider(provider.name);
    if (!storage) return storage.error();
    NcryptHandle key;
    const std::wstring wide_name = widen(name);
    SECURITY_STATUS status = NCryptCreatePersistedKey(storage->get(), key.put(), cng_algorithm(spec), wide_name.c_str(),
                                                      0, NCRYPT_MACHINE_KEY_FLAG);
    if (status != ERROR_SUCCESS) {
      return win32_status_error(
          status, provider_error(provider.name, "create " + spec.key_algorithm + " machine key '" + name + "'",
                                 call_failed("NCryptCreatePersistedKey", status)));
    }
    if (is_rsa(spec)) {
      DWORD bits = static_cast<DWORD>(spec.key_length);
      status = NCryptSetProperty(key.get(), NCRYPT_LENGTH_PROPERTY, reinterpret_cast<BYTE*>(&bits), sizeof(bits),
                                 NCRYPT_SILENT_FLAG);
      if (status != ERROR_SUCCESS) {
        return win32_status_error(status,
                                  provider_error(provider.name, "use RSA keys of " + std::to_string(bits) + " bits",
                                                 call_failed("NCryptSetProperty", status)));
      }
    }
    if (auto finalized = finalize_cng_key(key.get(), provider.name, name); !finalized) return finalized.error();
    key.reset();
    return reopen_persisted(link);
  }

  if (!is_rsa(spec)) {
    return Error::invalid_argument("the crypto provider '" + provider.name + "' is a legacy CSP and cannot create " +
                                   spec.key_algorithm + " keys; use a key storage provider such as '" +
                                   std::string(kDefaultKeyStorageProvider) + "'");
  }
  auto container = new_csp_container(provider, name);
  if (!container) return container.error();
  CryptKey key;
  if (!CryptGenKey(container->get(), AT_KEYEXCHANGE, static_cast<DWORD>(spec.key_length) << 16, key.put())) {
    const DWORD failure = GetLastError();
    const std::string reason = call_failed("CryptGenKey", failure);
    container->reset();
    discard_machine_key(link);
    return win32_status_error(failure, provider_error(provider.name,
                                                      "create a " + std::to_string(spec.key_length) +
                                                          "-bit RSA key in container '" + name + "'",
                                                      reason));
  }
  key.reset();
  container->reset();
  return reopen_persisted(link);
}

Result<MachineKey> MachineKey::import(const Provider& provider, EVP_PKEY* private_key, const std::string& name) {
  const KeyLink link = link_for(provider, name);
  if (provider.cng()) {
    auto storage = open_storage_provider(provider.name);
    if (!storage) return storage.error();
    auto pkcs8 = pkcs8_der(private_key);
    if (!pkcs8) return pkcs8.error();
    std::wstring wide_name = widen(name);
    NCryptBuffer name_buffer{static_cast<ULONG>((wide_name.size() + 1) * sizeof(wchar_t)), NCRYPTBUFFER_PKCS_KEY_NAME,
                             wide_name.data()};
    NCryptBufferDesc parameters{NCRYPTBUFFER_VERSION, 1, &name_buffer};
    NcryptHandle key;
    // Not finalized yet: the export policy is set first (non-exportable), then the key is written.
    const SECURITY_STATUS status =
        NCryptImportKey(storage->get(), 0, NCRYPT_PKCS8_PRIVATE_KEY_BLOB, &parameters, key.put(),
                        reinterpret_cast<BYTE*>(pkcs8->data()), static_cast<DWORD>(pkcs8->size()),
                        NCRYPT_MACHINE_KEY_FLAG | NCRYPT_DO_NOT_FINALIZE_FLAG | NCRYPT_SILENT_FLAG);
    SecureZeroMemory(pkcs8->data(), pkcs8->size());
    if (status != ERROR_SUCCESS) {
      return win32_status_error(status,
                                provider_error(provider.name, "import the private key as machine key '" + name + "'",
                                               call_failed("NCryptImportKey", status)));
    }
    if (auto finalized = finalize_cng_key(key.get(), provider.name, name); !finalized) return finalized.error();
    key.reset();
    return reopen_persisted(link);
  }

  if (EVP_PKEY_get_base_id(private_key) != EVP_PKEY_RSA) {
    return Error::invalid_argument(
        "the crypto provider '" + provider.name +
        "' is a legacy CSP and can hold only RSA keys; this PFX holds another kind (use a key "
        "storage provider such as '" +
        std::string(kDefaultKeyStorageProvider) + "')");
  }
  auto blob = rsa_private_key_blob(private_key);
  if (!blob) return blob.error();
  auto container = new_csp_container(provider, name);
  if (!container) {
    SecureZeroMemory(blob->data(), blob->size());
    return container.error();
  }
  CryptKey key;
  const BOOL imported = CryptImportKey(container->get(), reinterpret_cast<const BYTE*>(blob->data()),
                                       static_cast<DWORD>(blob->size()), 0, 0, key.put());
  const DWORD code = GetLastError();
  SecureZeroMemory(blob->data(), blob->size());
  if (!imported) {
    container->reset();
    discard_machine_key(link);
    return win32_status_error(code,
                              provider_error(provider.name, "import the private key into container '" + name + "'",
                                             call_failed("CryptImportKey", code)));
  }
  key.reset();
  container->reset();
  return reopen_persisted(link);
}

Result<MachineKey> MachineKey::open(const KeyLink& link) {
  MachineKey key(link);
  const std::wstring container = widen(link.container);
  if (link.cng()) {
    auto storage = open_storage_provider(link.provider);
    if (!storage) return storage.error();
    const SECURITY_STATUS status = NCryptOpenKey(storage->get(), key.cng_key_.put(), container.c_str(), link.key_spec,
                                                 (link.machine() ? NCRYPT_MACHINE_KEY_FLAG : 0) | NCRYPT_SILENT_FLAG);
    if (status != ERROR_SUCCESS) {
      return win32_status_error(status, provider_error(link.provider, "open key '" + link.container + "'",
                                                       call_failed("NCryptOpenKey", status)));
    }
    const std::string group = cng_algorithm_group(key.cng_key_.get());
    key.ecdsa_ = group == "ECDSA" || group == "ECDH" || group == "ECC";
    return key;
  }
  const std::wstring provider = widen(link.provider);
  if (!CryptAcquireContextW(key.csp_.put(), container.c_str(), provider.c_str(), link.provider_type,
                            keyset_flags(link))) {
    const DWORD failure = GetLastError();
    return win32_status_error(failure, provider_error(link.provider, "open key container '" + link.container + "'",
                                                      call_failed("CryptAcquireContext", failure)));
  }
  CryptKey pair;
  const DWORD spec = link.key_spec != 0 ? link.key_spec : AT_KEYEXCHANGE;
  if (!CryptGetUserKey(key.csp_.get(), spec, pair.put())) {
    const DWORD failure = GetLastError();
    return win32_status_error(failure,
                              provider_error(link.provider, "find the key pair in container '" + link.container + "'",
                                             call_failed("CryptGetUserKey", failure)));
  }
  key.link_.key_spec = spec;
  if (needs_aes_signer(link)) {
    // Best effort: without it, signing falls back to the key's own CSP (and fails there only for SHA-2).
    CryptAcquireContextW(key.csp_signer_.put(), container.c_str(), MS_ENH_RSA_AES_PROV_W, PROV_RSA_AES,
                         keyset_flags(link));
  }
  return key;
}

HCRYPTPROV_OR_NCRYPT_KEY_HANDLE MachineKey::signing_handle() const {
  if (link_.cng()) return cng_key_.get();
  return csp_signer_ ? csp_signer_.get() : csp_.get();
}

Result<std::string> MachineKey::public_key_der() const {
  const HCRYPTPROV_OR_NCRYPT_KEY_HANDLE handle = link_.cng() ? cng_key_.get() : csp_.get();
  const DWORD spec = link_.cng() ? 0 : link_.key_spec;
  DWORD size = 0;
  if (!CryptExportPublicKeyInfo(handle, spec, X509_ASN_ENCODING, nullptr, &size)) {
    return last_win32_error("exporting the public key of " + link_.describe() + ": ", "CryptExportPublicKeyInfo");
  }
  std::vector<BYTE> buffer(size);
  auto* info = reinterpret_cast<CERT_PUBLIC_KEY_INFO*>(buffer.data());
  if (!CryptExportPublicKeyInfo(handle, spec, X509_ASN_ENCODING, info, &size)) {
    return last_win32_error("exporting the public key of " + link_.describe() + ": ", "CryptExportPublicKeyInfo");
  }
  return encode_public_key_info(info);
}

Result<std::string> MachineKey::sign_digest(std::string_view digest, DigestAlgorithm algorithm) const {
  const std::string what = "sign with " + link_.describe();
  if (link_.cng()) {
    BCRYPT_PKCS1_PADDING_INFO padding{cng_hash_algorithm(algorithm)};
    void* padding_info = ecdsa_ ? nullptr : &padding;
    const DWORD flags = (ecdsa_ ? 0 : BCRYPT_PAD_PKCS1) | NCRYPT_SILENT_FLAG;
    auto* input = reinterpret_cast<BYTE*>(const_cast<char*>(digest.data()));
    DWORD size = 0;
    SECURITY_STATUS status = NCryptSignHash(cng_key_.get(), padding_info, input, static_cast<DWORD>(digest.size()),
                                            nullptr, 0, &size, flags);
    std::string signature(size, '\0');
    if (status == ERROR_SUCCESS) {
      status = NCryptSignHash(cng_key_.get(), padding_info, input, static_cast<DWORD>(digest.size()),
                              reinterpret_cast<BYTE*>(signature.data()), size, &size, flags);
    }
    if (status != ERROR_SUCCESS)
      return win32_status_error(status, "could not " + what + ": " + call_failed("NCryptSignHash", status));
    signature.resize(size);
    if (ecdsa_) return ecdsa_p1363_to_der(signature);
    return signature;
  }
  const HCRYPTPROV provider = csp_signer_ ? csp_signer_.get() : csp_.get();
  CryptHash hash;
  if (!CryptCreateHash(provider, csp_hash_algorithm(algorithm), 0, 0, hash.put())) {
    return last_win32_error("could not " + what + ": ", "CryptCreateHash");
  }
  if (!CryptSetHashParam(hash.get(), HP_HASHVAL, reinterpret_cast<const BYTE*>(digest.data()), 0)) {
    return last_win32_error("could not " + what + ": ", "CryptSetHashParam");
  }
  DWORD size = 0;
  if (!CryptSignHashW(hash.get(), link_.key_spec, nullptr, 0, nullptr, &size)) {
    return last_win32_error("could not " + what + ": ", "CryptSignHash");
  }
  std::string signature(size, '\0');
  if (!CryptSignHashW(hash.get(), link_.key_spec, nullptr, 0, reinterpret_cast<BYTE*>(signature.data()), &size)) {
    return last_win32_error("could not " + what + ": ", "CryptSignHash");
  }
  signature.resize(size);
  return reversed(signature);
}

Status delete_machine_key(const KeyLink& link) {
  const std::wstring container = widen(link.container);
  if (link.cng()) {
    auto storage = open_storage_provider(link.provider);
    if (!storage) return storage.error();
    NcryptHandle key;
    SECURITY_STATUS status = NCryptOpenKey(storage->get(), key.put(), container.c_str(), link.key_spec,
                                           (link.machine() ? NCRYPT_MACHINE_KEY_FLAG : 0) | NCRYPT_SILENT_FLAG);
    if (status == NTE_BAD_KEYSET || status == NTE_NOT_FOUND) return {};
    if (status != ERROR_SUCCESS) {
      return win32_status_error(status, provider_error(link.provider, "open key '" + link.container + "' to delete it",
                                                       call_failed("NCryptOpenKey", status)));
    }
    status = NCryptDeleteKey(key.get(), NCRYPT_SILENT_FLAG);
    if (status != ERROR_SUCCESS) {
      return win32_status_error(status, provider_error(link.provider, "delete key '" + link.container + "'",
                                                       call_failed("NCryptDeleteKey", status)));
    }
    key.release();  // NCryptDeleteKey freed the handle
    return {};
  }
  HCRYPTPROV unused = 0;  // CRYPT_DELETEKEYSET returns no handle to release
  const std::wstring provider = widen(link.provider);
  if (!CryptAcquireContextW(&unused, container.c_str(), provider.c_str(), link.provider_type,
                            CRYPT_DELETEKEYSET | keyset_flags(link))) {
    const DWORD code = GetLastError();
    if (code == static_cast<DWORD>(NTE_BAD_KEYSET)) return {};
    return win32_status_error(code, provider_error(link.provider, "delete key container '" + link.container + "'",
                                                   call_failed("CryptAcquireContext", code)));
  }
  return {};
}

void discard_machine_key(const KeyLink& link) { static_cast<void>(delete_machine_key(link)); }

std::string reversed(std::string_view bytes) { return std::string(bytes.rbegin(), bytes.rend()); }

Result<std::string> ecdsa_p1363_to_der(std::string_view r_and_s) {
  if (r_and_s.empty() || r_and_s.size() % 2 != 0) {
    return Error::failed_precondition("the ECDSA signature has an odd length (" + std::to_string(r_and_s.size()) +
                                      " bytes)");
  }
  const std::size_t half = r_and_s.size() / 2;
  const auto* bytes = reinterpret_cast<const unsigned char*>(r_and_s.data());
  BIGNUM* r = BN_bin2bn(bytes, static_cast<int>(half), nullptr);
  BIGNUM* s = BN_bin2bn(bytes + half, static_cast<int>(half), nullptr);
  ECDSA_SIG* sig = ECDSA_SIG_new();
  if (r == nullptr || s == nullptr || sig == nullptr || ECDSA_SIG_set0(sig, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return Error::internal("encoding the ECDSA signature: " + ossl::drain_errors());
  }
  unsigned char* der = nullptr;
  const int length = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (length <= 0) return Error::internal("encoding the ECDSA signature: " + ossl::drain_errors());
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length));
  OPENSSL_free(der);
  return out;
}

}  // namespace wincert::certstore::local
