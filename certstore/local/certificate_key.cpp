#include "certstore/local/certificate_key.hpp"

#include "common/win32_text.hpp"

namespace wincert::certstore::local {
namespace {

// Frees what CryptAcquireCertificatePrivateKey handed out, when it says the caller owns it.
void release_acquired(HCRYPTPROV_OR_NCRYPT_KEY_HANDLE handle, DWORD key_spec, BOOL caller_frees) {
  if (!caller_frees || handle == 0) return;
  if (key_spec == CERT_NCRYPT_KEY_SPEC) {
    NCryptFreeObject(handle);
  } else {
    CryptReleaseContext(handle, 0);
  }
}

}  // namespace

PrivateKeyCheck check_private_key(PCCERT_CONTEXT certificate) {
  PrivateKeyCheck check;
  check.link = key_link_of(certificate);
  if (!check.link) return check;

  HCRYPTPROV_OR_NCRYPT_KEY_HANDLE handle = 0;
  DWORD key_spec = 0;
  BOOL caller_frees = FALSE;
  if (CryptAcquireCertificatePrivateKey(certificate, CRYPT_ACQUIRE_SILENT_FLAG | CRYPT_ACQUIRE_ALLOW_NCRYPT_KEY_FLAG,
                                        nullptr, &handle, &key_spec, &caller_frees)) {
    release_acquired(handle, key_spec, caller_frees);
    check.usable = true;
    return check;
  }
  const DWORD code = GetLastError();
  if (code == static_cast<DWORD>(NTE_SILENT_CONTEXT)) {
    check.usable = true;  // it exists; only using it would ask a person
    return check;
  }
  auto opened = MachineKey::open(*check.link);
  check.usable = opened.ok();
  if (!opened) check.problem = opened.error().message;
  return check;
}

Result<MachineKey> certificate_private_key(PCCERT_CONTEXT certificate) {
  const auto link = key_link_of(certificate);
  if (!link) return Error::failed_precondition("the certificate has no private key (no CERT_KEY_PROV_INFO_PROP_ID)");
  return MachineKey::open(*link);
}

}  // namespace wincert::certstore::local
