#include "common/win32_acl.hpp"

#include <windows.h>

#include <aclapi.h>
#include <sddl.h>

#include <memory>
#include <vector>

#include "common/win32_text.hpp"

namespace wincert::win32_acl {

namespace {

struct LocalDeleter {
  void operator()(void* p) const { ::LocalFree(p); }
};
template <typename T>
using LocalPtr = std::unique_ptr<T, LocalDeleter>;

Error acl_error(DWORD code, std::string message) {
  Error error = code == ERROR_ACCESS_DENIED ? Error::permission_denied(std::move(message) + error_text(code))
                : (code == ERROR_FILE_NOT_FOUND || code == ERROR_PATH_NOT_FOUND)
                    ? Error::not_found(std::move(message) + error_text(code))
                    : Error::failed_precondition(std::move(message) + error_text(code));
  return std::move(error).with_system_status(SystemStatusKind::kWin32, code);
}

// The SID of the account this process runs as, as an SDDL string ("S-1-5-18" for LocalSystem).
Result<std::string> current_user_sid() {
  HANDLE token = nullptr;
  if (!::OpenProcessToken(::GetCurrentProcess(), TOKEN_QUERY, &token))
    return acl_error(::GetLastError(), "cannot read this process's account: ");
  DWORD size = 0;
  ::GetTokenInformation(token, TokenUser, nullptr, 0, &size);
  std::vector<unsigned char> buffer(size);
  const BOOL ok = ::GetTokenInformation(token, TokenUser, buffer.data(), size, &size);
  const DWORD code = ::GetLastError();
  ::CloseHandle(token);
  if (!ok) return acl_error(code, "cannot read this process's account: ");
  wchar_t* text = nullptr;
  if (!::ConvertSidToStringSidW(reinterpret_cast<TOKEN_USER*>(buffer.data())->User.Sid, &text))
    return acl_error(::GetLastError(), "cannot format this process's account: ");
  LocalPtr<wchar_t> owned(text);
  return narrow(text);
}

// An account name or SID string as a SID string.
Result<std::string> sid_of(const std::string& account) {
  if (account.rfind("S-", 0) == 0) return account;
  std::wstring name = widen(account);
  if (name.rfind(L".\\", 0) == 0) name = name.substr(2);  // ".\svc": a local account
  DWORD sid_size = 0;
  DWORD domain_size = 0;
  SID_NAME_USE use{};
  ::LookupAccountNameW(nullptr, name.c_str(), nullptr, &sid_size, nullptr, &domain_size, &use);
  if (sid_size == 0) {
    const DWORD code = ::GetLastError();
    return Error::not_found("no account '" + account + "' (" + error_text(code) + ")")
        .with_system_status(SystemStatusKind::kWin32, code);
  }
  std::vector<unsigned char> sid(sid_size);
  std::wstring domain(domain_size, L'\0');
  if (!::LookupAccountNameW(nullptr, name.c_str(), sid.data(), &sid_size, domain.data(), &domain_size, &use))
    return acl_error(::GetLastError(), "no account '" + account + "': ");
  wchar_t* text = nullptr;
  if (!::ConvertSidToStringSidW(sid.data(), &text)) return acl_error(::GetLastError(), "cannot format a SID: ");
  LocalPtr<wchar_t> owned(text);
  return narrow(text);
}

// "BUILTIN\Users (S-1-5-32-545)", or the SID alone when it has no name here.
std::string account_text(PSID sid) {
  wchar_t* sid_text = nullptr;
  std::string sid_string = "?";
  if (::ConvertSidToStringSidW(sid, &sid_text)) {
    sid_string = narrow(sid_text);
    ::LocalFree(sid_text);
  }
  wchar_t name[256];
  wchar_t domain[256];
  DWORD name_size = 256;
  DWORD domain_size = 256;
  SID_NAME_USE use{};
  if (!::LookupAccountSidW(nullptr, sid, name, &name_size, domain, &domain_size, &use)) return sid_string;
  const std::string who = domain_size > 0 && domain[0] != L'\0' ? narrow(domain) + "\\" + narrow(name) : narrow(name);
  return who + " (" + sid_string + ")";
}

bool is_trusted(PSID sid, PSID owner, PSID self) {
  static const WELL_KNOWN_SID_TYPE kTrusted[] = {WinLocalSystemSid, WinBuiltinAdministratorsSid, WinCreatorOwnerSid,
                                                 WinCreatorOwnerRightsSid};
  for (auto type : kTrusted)
    if (::IsWellKnownSid(sid, type)) return true;
  return (owner != nullptr && ::EqualSid(sid, owner)) || (self != nullptr && ::EqualSid(sid, self));
}

}  // namespace

Status restrict_to_owner(const std::string& path, const std::string& also_grant) {
  WINCERT_ASSIGN_OR_RETURN(const std::string self, current_user_sid());
  std::string extra;
  if (!also_grant.empty()) {
    WINCERT_ASSIGN_OR_RETURN(const std::string sid, sid_of(also_grant));
    extra = sid;
  }
  const std::wstring wide_path = widen(path);
  const DWORD attributes = ::GetFileAttributesW(wide_path.c_str());
  if (attributes == INVALID_FILE_ATTRIBUTES)
    return acl_error(::GetLastError(), "cannot restrict access to '" + path + "': ");
  // Directories pass the entries on to what is created in them (OICI); "P" protects the DACL from the
  // parent's inheritable entries (%ProgramData% grants Users read).
  const std::string inherit = (attributes & FILE_ATTRIBUTE_DIRECTORY) != 0 ? "OICI" : "";
  std::string sddl = "D:P(A;" + inherit + ";FA;;;SY)(A;" + inherit + ";FA;;;BA)(A;" + inherit + ";FA;;;" + self + ")";
  if (!extra.empty() && extra != self) sddl += "(A;" + inherit + ";FA;;;" + extra + ")";
  PSECURITY_DESCRIPTOR descriptor = nullptr;
  if (!::ConvertStringSecurityDescriptorToSecurityDescriptorW(widen(sddl).c_str(), SDDL_REVISION_1, &descriptor,
                                                              nullptr))
    return acl_error(::GetLastError(), "cannot build the owner-only ACL for '" + path + "': ");
  LocalPtr<void> owned(descriptor);
  if (!::SetFileSecurityW(wide_path.c_str(), DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                          descriptor))
    return acl_error(::GetLastError(), "cannot restrict access to '" + path + "' to its owner: ");
  return {};
}

std::optional<std::string> read_exposure(const std::string& path) {
  PSID owner = nullptr;
  PACL dacl = nullptr;
  PSECURITY_DESCRIPTOR descriptor = nullptr;
  const DWORD code = ::GetNamedSecurityInfoW(widen(path).c_str(), SE_FILE_OBJECT,
                                             OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, &owner, nullptr,
                                             &dacl, nullptr, &descriptor);
  if (code != ERROR_SUCCESS) return std::nullopt;
  LocalPtr<void> owned(descriptor);
  const std::string fix = ": run `wincert-agent service install` (it restricts the agent's files), or `icacls \"" +
                          path + "\" /inheritance:r /grant:r SYSTEM:F Administrators:F`";
  if (dacl == nullptr) return "'" + path + "' has no access list (everyone may read it)" + fix;
  std::vector<unsigned char> self_buffer;
  PSID self = nullptr;
  if (auto sid_text = current_user_sid(); sid_text.ok()) {
    PSID converted = nullptr;
    if (::ConvertStringSidToSidW(widen(*sid_text).c_str(), &converted)) {
      self_buffer.assign(static_cast<unsigned char*>(converted),
                         static_cast<unsigned char*>(converted) + ::GetLengthSid(converted));
      ::LocalFree(converted);
      self = self_buffer.data();
    }
  }
  constexpr ACCESS_MASK kRead = FILE_READ_DATA | GENERIC_READ | GENERIC_ALL;
  for (DWORD i = 0; i < dacl->AceCount; ++i) {
    void* entry = nullptr;
    if (!::GetAce(dacl, i, &entry)) continue;
    const auto* header = static_cast<ACE_HEADER*>(entry);
    if (header->AceType != ACCESS_ALLOWED_ACE_TYPE || (header->AceFlags & INHERIT_ONLY_ACE) != 0) continue;
    const auto* allowed = static_cast<ACCESS_ALLOWED_ACE*>(entry);
    if ((allowed->Mask & kRead) == 0) continue;
    PSID sid = const_cast<DWORD*>(&allowed->SidStart);
    if (is_trusted(sid, owner, self)) continue;
    return "'" + path + "' is readable by " + account_text(sid) + fix;
  }
  return std::nullopt;
}

}  // namespace wincert::win32_acl
