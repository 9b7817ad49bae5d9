#include "certstore/local/system_store.hpp"

#include "certstore/local/win32_error.hpp"
#include "common/encoding.hpp"
#include "common/win32_text.hpp"

#include <algorithm>
#include <array>

namespace wincert::certstore::local {
namespace {

constexpr DWORD kEncoding = X509_ASN_ENCODING | PKCS_7_ASN_ENCODING;

// Stores a LocalMachine has on every supported Windows version (certlm.msc's list).
constexpr std::array<const char*, 13> kWellKnownStores{"My",
                                                       "Root",
                                                       "CA",
                                                       "Trust",
                                                       "AuthRoot",
                                                       "TrustedPublisher",
                                                       "TrustedPeople",
                                                       "Disallowed",
                                                       "WebHosting",
                                                       "Remote Desktop",
                                                       "REQUEST",
                                                       "SmartCardRoot",
                                                       "TrustedDevices"};

BOOL WINAPI collect_store_name(const void* name, DWORD, PCERT_SYSTEM_STORE_INFO, void*, void* arg) {
  static_cast<std::vector<std::string>*>(arg)->push_back(narrow(static_cast<const wchar_t*>(name)));
  return TRUE;
}

// Reads a property into a byte buffer (probe for the size, then fill); nullopt when it is not set.
std::optional<std::string> property_bytes(PCCERT_CONTEXT context, DWORD property) {
  DWORD size = 0;
  if (!CertGetCertificateContextProperty(context, property, nullptr, &size)) return std::nullopt;
  std::string bytes(size, '\0');
  if (!CertGetCertificateContextProperty(context, property, bytes.data(), &size)) return std::nullopt;
  bytes.resize(size);
  return bytes;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> thumbprint_bytes(std::string_view hex) {
  if (hex.size() != 40) return std::nullopt;
  std::string bytes;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int high = hex_digit(hex[i]), low = hex_digit(hex[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    bytes.push_back(static_cast<char>(high * 16 + low));
  }
  return bytes;
}

}  // namespace

Result<StoreHandle> open_machine_store(std::string_view name, StoreAccess access) {
  if (name.empty()) return Error::invalid_argument("the store name is empty");
  DWORD flags = CERT_SYSTEM_STORE_LOCAL_MACHINE;
  if (access == StoreAccess::kRead) flags |= CERT_STORE_READONLY_FLAG;
  if (access != StoreAccess::kOpenOrCreate) flags |= CERT_STORE_OPEN_EXISTING_FLAG;
  const std::wstring wide_name = widen(name);
  StoreHandle store(CertOpenStore(CERT_STORE_PROV_SYSTEM_W, 0, 0, flags, wide_name.c_str()));
  if (!store) {
    const DWORD code = GetLastError();
    const std::string where = "the certificate store LocalMachine\\" + std::string(name);
    if (code == ERROR_FILE_NOT_FOUND) return win32_status_error(code, where + " does not exist");
    if (code == ERROR_ACCESS_DENIED || code == static_cast<DWORD>(E_ACCESSDENIED)) {
      return win32_status_error(
          code, where + " cannot be opened " + (access == StoreAccess::kRead ? "for reading" : "for writing") +
                    " by this account (run the agent as LocalSystem or an administrator): " + error_text(code));
    }
    return win32_status_error(code, where + " cannot be opened: " + call_failed("CertOpenStore", code));
  }
  return store;
}

Status commit_changes(HCERTSTORE store, std::string_view name) {
  if (!CertControlStore(store, 0, CERT_STORE_CTRL_COMMIT, nullptr)) {
    return last_win32_error(
        "the changes to the certificate store LocalMachine\\" + std::string(name) + " could not be saved: ",
        "CertControlStore");
  }
  return {};
}

std::vector<std::string> machine_store_names() {
  std::vector<std::string> names;
  CertEnumSystemStore(CERT_SYSTEM_STORE_LOCAL_MACHINE, nullptr, &names, collect_store_name);
  for (const char* known : kWellKnownStores) {
    const bool listed =
        std::any_of(names.begin(), names.end(), [&](const std::string& n) { return iequals(n, known); });
    if (!listed) names.emplace_back(known);
  }
  return names;
}

Result<CertContext> find_by_thumbprint(HCERTSTORE store, std::string_view thumbprint) {
  auto hash = thumbprint_bytes(thumbprint);
  if (!hash)
    return Error::invalid_argument("'" + std::string(thumbprint) + "' is not a SHA-1 thumbprint (40 hex digits)");
  CRYPT_HASH_BLOB blob{static_cast<DWORD>(hash->size()), reinterpret_cast<BYTE*>(hash->data())};
  PCCERT_CONTEXT found = CertFindCertificateInStore(store, kEncoding, 0, CERT_FIND_SHA1_HASH, &blob, nullptr);
  if (found == nullptr) {
    const DWORD code = GetLastError();
    if (code == static_cast<DWORD>(CRYPT_E_NOT_FOUND)) return CertContext();
    return win32_status_error(code, "looking up certificate " + std::string(thumbprint) + ": " +
                                        call_failed("CertFindCertificateInStore", code));
  }
  return CertContext(found);
}

Result<CertContext> certificate_from_der(std::string_view der) {
  CertContext context(CertCreateCertificateContext(kEncoding, reinterpret_cast<const BYTE*>(der.data()),
                                                   static_cast<DWORD>(der.size())));
  if (!context)
    return last_win32_error("the certificate cannot be read by Windows: ", "CertCreateCertificateContext",
                            ErrorCode::kInvalidArgument);
  return context;
}

Result<CertContext> add_to_store(HCERTSTORE store, PCCERT_CONTEXT context, DWORD disposition) {
  PCCERT_CONTEXT stored = nullptr;
  if (!CertAddCertificateContextToStore(store, context, disposition, &stored)) {
    return last_win32_error("", "CertAddCertificateContextToStore");
  }
  return CertContext(stored);
}

Result<CertContext> put_certificate(HCERTSTORE store, PCCERT_CONTEXT context, CertContext existing) {
  CertContext previous;
  if (existing) {
    previous.reset(CertDuplicateCertificateContext(existing.get()));  // stays readable after the delete
    if (!CertDeleteCertificateFromStore(existing.release())) {
      return last_win32_error("replacing the existing certificate: ", "CertDeleteCertificateFromStore");
    }
  }
  auto stored = add_to_store(store, context, CERT_STORE_ADD_NEW);
  if (!stored && previous) static_cast<void>(add_to_store(store, previous.get(), CERT_STORE_ADD_NEW));
  return stored;
}

std::string der_of(PCCERT_CONTEXT context) {
  return std::string(reinterpret_cast<const char*>(context->pbCertEncoded), context->cbCertEncoded);
}

std::string friendly_name_of(PCCERT_CONTEXT context) {
  auto bytes = property_bytes(context, CERT_FRIENDLY_NAME_PROP_ID);
  if (!bytes || bytes->size() < sizeof(wchar_t)) return {};
  std::wstring_view text(reinterpret_cast<const wchar_t*>(bytes->data()), bytes->size() / sizeof(wchar_t));
  while (!text.empty() && text.back() == L'\0') text.remove_suffix(1);
  return narrow(text);
}

Status set_friendly_name(PCCERT_CONTEXT context, std::string_view name) {
  std::wstring wide = widen(name);
  CRYPT_DATA_BLOB blob{static_cast<DWORD>((wide.size() + 1) * sizeof(wchar_t)), reinterpret_cast<BYTE*>(wide.data())};
  if (!CertSetCertificateContextProperty(context, CERT_FRIENDLY_NAME_PROP_ID, 0, &blob)) {
    return last_win32_error("setting the friendly name: ", "CertSetCertificateContextProperty");
  }
  return {};
}

bool KeyLink::same_key(const KeyLink& other) const {
  return iequals(provider, other.provider) && container == other.container && machine() == other.machine();
}

std::string KeyLink::describe() const { return "key '" + container + "' in '" + provider + "'"; }

std::optional<KeyLink> key_link_of(PCCERT_CONTEXT context) {
  auto bytes = property_bytes(context, CERT_KEY_PROV_INFO_PROP_ID);
  if (!bytes || bytes->size() < sizeof(CRYPT_KEY_PROV_INFO)) return std::nullopt;
  const auto* info = reinterpret_cast<const CRYPT_KEY_PROV_INFO*>(bytes->data());
  KeyLink link;
  link.provider = narrow(info->pwszProvName);
  link.container = narrow(info->pwszContainerName);
  link.provider_type = info->dwProvType;
  link.flags = info->dwFlags;
  link.key_spec = info->dwKeySpec;
  return link;
}

Status set_key_link(PCCERT_CONTEXT context, const KeyLink& link) {
  std::wstring container = widen(link.container);
  std::wstring provider = widen(link.provider);
  CRYPT_KEY_PROV_INFO info{};
  info.pwszContainerName = container.data();
  info.pwszProvName = provider.data();
  info.dwProvType = link.provider_type;
  info.dwFlags = link.flags;
  info.dwKeySpec = link.key_spec;
  if (!CertSetCertificateContextProperty(context, CERT_KEY_PROV_INFO_PROP_ID, 0, &info)) {
    return last_win32_error("linking the certificate to " + link.describe() + ": ",
                            "CertSetCertificateContextProperty");
  }
  return {};
}

}  // namespace wincert::certstore::local
