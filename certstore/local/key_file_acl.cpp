#include "certstore/local/key_file_acl.hpp"

#include "certstore/local/handles.hpp"
#include "certstore/local/win32_error.hpp"
#include "common/win32_text.hpp"

#include <aclapi.h>
#include <sddl.h>

#include <vector>

namespace wincert::certstore::local {
namespace {

// What FileSystemRights.Read means to Set-Acl (read data, attributes, extended attributes, permissions).
constexpr DWORD kReadRights = FILE_GENERIC_READ;

std::string join_path(const std::string& directory, std::string_view name) {
  std::string path = directory;
  if (!path.empty() && path.back() != '\\' && path.back() != '/') path += '\\';
  path += name;
  return path;
}

bool file_exists(const std::string& path) {
  const std::wstring wide = widen(path);
  const DWORD attributes = GetFileAttributesW(wide.c_str());
  return attributes != INVALID_FILE_ATTRIBUTES && (attributes & FILE_ATTRIBUTE_DIRECTORY) == 0;
}

Result<std::string> cng_unique_name(const KeyLink& link) {
  NcryptHandle provider;
  const std::wstring provider_name = widen(link.provider), container = widen(link.container);
  SECURITY_STATUS status = NCryptOpenStorageProvider(provider.put(), provider_name.c_str(), 0);
  if (status != ERROR_SUCCESS) {
    return win32_status_error(status, "the key storage provider '" + link.provider +
                                          "' cannot be opened: " + call_failed("NCryptOpenStorageProvider", status));
  }
  NcryptHandle key;
  status = NCryptOpenKey(provider.get(), key.put(), container.c_str(), 0,
                         (link.machine() ? NCRYPT_MACHINE_KEY_FLAG : 0) | NCRYPT_SILENT_FLAG);
  if (status != ERROR_SUCCESS) {
    return win32_status_error(status, link.describe() + " cannot be opened: " + call_failed("NCryptOpenKey", status));
  }
  DWORD size = 0;
  status = NCryptGetProperty(key.get(), NCRYPT_UNIQUE_NAME_PROPERTY, nullptr, 0, &size, 0);
  std::wstring name(size / sizeof(wchar_t) + 1, L'\0');
  if (status == ERROR_SUCCESS) {
    status = NCryptGetProperty(key.get(), NCRYPT_UNIQUE_NAME_PROPERTY, reinterpret_cast<BYTE*>(name.data()),
                               static_cast<DWORD>(name.size() * sizeof(wchar_t)), &size, 0);
  }
  if (status != ERROR_SUCCESS) {
    return win32_status_error(status, "the file name of " + link.describe() +
                                          " is unknown: " + call_failed("NCryptGetProperty(Unique Name)", status));
  }
  return narrow(name.c_str());
}

Result<std::string> csp_unique_name(const KeyLink& link) {
  CryptProvider provider;
  const std::wstring provider_name = widen(link.provider), container = widen(link.container);
  if (!CryptAcquireContextW(provider.put(), container.c_str(), provider_name.c_str(), link.provider_type,
                            (link.machine() ? CRYPT_MACHINE_KEYSET : 0) | CRYPT_SILENT)) {
    return last_win32_error(link.describe() + " cannot be opened: ", "CryptAcquireContext");
  }
  DWORD size = 0;
  if (!CryptGetProvParam(provider.get(), PP_UNIQUE_CONTAINER, nullptr, &size, 0)) {
    return last_win32_error("the file name of " + link.describe() + " is unknown: ",
                            "CryptGetProvParam(PP_UNIQUE_CONTAINER)");
  }
  std::string name(size, '\0');  // ANSI text, NUL-terminated
  if (!CryptGetProvParam(provider.get(), PP_UNIQUE_CONTAINER, reinterpret_cast<BYTE*>(name.data()), &size, 0)) {
    return last_win32_error("the file name of " + link.describe() + " is unknown: ",
                            "CryptGetProvParam(PP_UNIQUE_CONTAINER)");
  }
  return std::string(name.c_str());
}

Result<std::vector<BYTE>> account_sid(const std::string& account) {
  const std::wstring wide = widen(account);
  DWORD sid_size = 0, domain_size = 0;
  SID_NAME_USE use{};
  LookupAccountNameW(nullptr, wide.c_str(), nullptr, &sid_size, nullptr, &domain_size, &use);
  std::vector<BYTE> sid(sid_size > 0 ? sid_size : SECURITY_MAX_SID_SIZE);
  std::wstring domain(domain_size + 1, L'\0');
  sid_size = static_cast<DWORD>(sid.size());
  domain_size = static_cast<DWORD>(domain.size());
  if (!LookupAccountNameW(nullptr, wide.c_str(), sid.data(), &sid_size, domain.data(), &domain_size, &use)) {
    return last_win32_error("the account '" + account +
                                "' is unknown to this machine (check the service's Log On account and that the "
                                "domain is reachable): ",
                            "LookupAccountName");
  }
  return sid;
}

struct FileDacl {
  LocalMemory<void> descriptor;  // owns the memory dacl points into
  PACL dacl = nullptr;
};

Result<FileDacl> read_dacl(const std::string& path) {
  std::wstring wide = widen(path);
  PSECURITY_DESCRIPTOR descriptor = nullptr;
  FileDacl out;
  const DWORD status = GetNamedSecurityInfoW(wide.c_str(), SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, nullptr, nullptr,
                                             &out.dacl, nullptr, &descriptor);
  if (status != ERROR_SUCCESS) {
    return win32_status_error(status, "the permissions of the key file " + path +
                                          " cannot be read: " + call_failed("GetNamedSecurityInfo", status));
  }
  out.descriptor.reset(descriptor);
  return out;
}

}  // namespace

std::string machine_crypto_directory() {
  wchar_t buffer[MAX_PATH] = {};
  const DWORD length = GetEnvironmentVariableW(L"ProgramData", buffer, MAX_PATH);
  std::string program_data =
      length > 0 && length < MAX_PATH ? narrow(std::wstring_view(buffer, length)) : std::string("C:\\ProgramData");
  return join_path(program_data, "Microsoft\\Crypto");
}

Result<std::string> key_unique_name(const KeyLink& link) {
  return link.cng() ? cng_unique_name(link) : csp_unique_name(link);
}

std::vector<std::string> key_file_folders(const KeyLink& link, const std::string& crypto_directory) {
  if (link.cng()) {
    return {join_path(crypto_directory, "Keys"), join_path(crypto_directory, "SystemKeys"),
            join_path(crypto_directory, "RSA\\MachineKeys")};
  }
  return {join_path(crypto_directory, "RSA\\MachineKeys")};
}

Result<std::string> find_key_file(const KeyLink& link, const std::string& crypto_directory) {
  auto unique_name = key_unique_name(link);
  if (!unique_name) return unique_name.error();
  if (unique_name->empty()) return std::string();
  for (const auto& folder : key_file_folders(link, crypto_directory)) {
    const std::string candidate = join_path(folder, *unique_name);
    if (file_exists(candidate)) return candidate;
  }
  return std::string();
}

Result<bool> account_can_read(const std::string& path, const std::string& account) {
  auto sid = account_sid(account);
  if (!sid) return sid.error();
  auto dacl = read_dacl(path);
  if (!dacl) return dacl.error();
  if (dacl->dacl == nullptr) return true;  // a NULL DACL allows everyone everything
  ACL_SIZE_INFORMATION info{};
  if (!GetAclInformation(dacl->dacl, &info, sizeof(info), AclSizeInformation)) {
    return last_win32_error("the permissions of the key file " + path + " cannot be read: ", "GetAclInformation");
  }
  for (DWORD index = 0; index < info.AceCount; ++index) {
    void* ace = nullptr;
    if (!GetAce(dacl->dacl, index, &ace)) continue;
    const auto* header = static_cast<const ACE_HEADER*>(ace);
    if (header->AceType != ACCESS_ALLOWED_ACE_TYPE) continue;
    const auto* allowed = static_cast<const ACCESS_ALLOWED_ACE*>(ace);
    if (!EqualSid(const_cast<DWORD*>(&allowed->SidStart), sid->data())) continue;
    // GENERIC_READ appears as itself until Windows maps it to the file rights.
    if ((allowed->Mask & GENERIC_READ) != 0 || (allowed->Mask & FILE_READ_DATA) != 0) return true;
  }
  return false;
}

Status grant_read_access(const std::string& path, const std::string& account) {
  auto sid = account_sid(account);
  if (!sid) return sid.error();
  auto current = read_dacl(path);
  if (!current) return current.error();

  EXPLICIT_ACCESS_W entry{};
  entry.grfAccessPermissions = kReadRights;
  entry.grfAccessMode = GRANT_ACCESS;
  entry.grfInheritance = NO_INHERITANCE;
  entry.Trustee.TrusteeForm = TRUSTEE_IS_SID;
  entry.Trustee.TrusteeType = TRUSTEE_IS_UNKNOWN;
  entry.Trustee.ptstrName = reinterpret_cast<wchar_t*>(sid->data());
  PACL merged = nullptr;
  DWORD status = SetEntriesInAclW(1, &entry, current->dacl, &merged);
  if (status != ERROR_SUCCESS) {
    return win32_status_error(status, "granting '" + account + "' read access to the key file " + path +
                                          " failed: " + call_failed("SetEntriesInAcl", status));
  }
  LocalMemory<ACL> owned_acl(merged);
  std::wstring wide = widen(path);
  status =
      SetNamedSecurityInfoW(wide.data(), SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, nullptr, nullptr, merged, nullptr);
  if (status != ERROR_SUCCESS) {
    return win32_status_error(
        status, "granting '" + account + "' read access to the key file " + path + " failed (the agent " +
                    "needs to run as LocalSystem or an administrator): " + call_failed("SetNamedSecurityInfo", status));
  }
  auto granted = account_can_read(path, account);
  if (!granted) return granted.error();
  if (!*granted) {
    return Error::failed_precondition(
        "granting '" + account + "' read access to the key file " + path +
        " did not take effect: the file's permissions do not show it; check them with icacls");
  }
  return {};
}

}  // namespace wincert::certstore::local
