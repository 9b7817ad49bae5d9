#include "certstore/local/registry.hpp"

#include "certstore/local/win32_error.hpp"
#include "common/win32_text.hpp"

namespace wincert::certstore::local {
namespace {

std::string value_where(std::string_view where, std::string_view name) {
  return std::string(where) + " value '" + std::string(name) + "'";
}

// REG_SZ data as stored: UTF-16, usually but not always NUL-terminated.
std::string string_from_registry(const std::wstring& data) {
  std::wstring_view text(data);
  while (!text.empty() && text.back() == L'\0') text.remove_suffix(1);
  return narrow(text);
}

}  // namespace

std::string registry_root_name(HKEY root) {
  if (root == HKEY_LOCAL_MACHINE) return "HKLM";
  if (root == HKEY_CURRENT_USER) return "HKCU";
  if (root == HKEY_USERS) return "HKU";
  if (root == HKEY_CLASSES_ROOT) return "HKCR";
  return "HKEY";
}

std::string registry_path_text(HKEY root, std::string_view path) {
  return registry_root_name(root) + "\\" + std::string(path);
}

Result<RegistryKey> open_registry_key(HKEY root, std::string_view path, RegistryAccess access) {
  RegistryKey key;
  const std::wstring wide = widen(path);
  const REGSAM sam = access == RegistryAccess::kRead ? KEY_READ : (KEY_READ | KEY_SET_VALUE);
  const LSTATUS status = RegOpenKeyExW(root, wide.c_str(), 0, sam | KEY_WOW64_64KEY, key.put());
  if (status == ERROR_FILE_NOT_FOUND) return RegistryKey();
  if (status != ERROR_SUCCESS) {
    return win32_status_error(static_cast<DWORD>(status),
                              "the registry key " + registry_path_text(root, path) + " cannot be opened" +
                                  (access == RegistryAccess::kWrite ? " for writing" : "") +
                                  " (the agent needs to run as LocalSystem or an administrator): " +
                                  call_failed("RegOpenKeyEx", static_cast<DWORD>(status)));
  }
  return key;
}

Result<RegistryKey> create_registry_key(HKEY root, std::string_view path) {
  RegistryKey key;
  const std::wstring wide = widen(path);
  const LSTATUS status = RegCreateKeyExW(root, wide.c_str(), 0, nullptr, REG_OPTION_NON_VOLATILE,
                                         KEY_READ | KEY_WRITE | KEY_WOW64_64KEY, nullptr, key.put(), nullptr);
  if (status != ERROR_SUCCESS) {
    return win32_status_error(static_cast<DWORD>(status),
                              "the registry key " + registry_path_text(root, path) +
                                  " cannot be created: " + call_failed("RegCreateKeyEx", static_cast<DWORD>(status)));
  }
  return key;
}

Status delete_registry_tree(HKEY root, std::string_view path) {
  const std::wstring wide = widen(path);
  const LSTATUS status = RegDeleteTreeW(root, wide.c_str());
  if (status == ERROR_SUCCESS || status == ERROR_FILE_NOT_FOUND) {
    // RegDeleteTree empties the key; the key itself goes with RegDeleteKeyEx.
    const LSTATUS removed = RegDeleteKeyExW(root, wide.c_str(), KEY_WOW64_64KEY, 0);
    if (removed == ERROR_SUCCESS || removed == ERROR_FILE_NOT_FOUND) return {};
    return win32_status_error(static_cast<DWORD>(removed),
                              "the registry key " + registry_path_text(root, path) +
                                  " cannot be deleted: " + call_failed("RegDeleteKeyEx", static_cast<DWORD>(removed)));
  }
  return win32_status_error(static_cast<DWORD>(status),
                            "the registry key " + registry_path_text(root, path) +
                                " cannot be deleted: " + call_failed("RegDeleteTree", static_cast<DWORD>(status)));
}

Result<std::optional<std::string>> read_string_value(HKEY key, std::string_view name, std::string_view where) {
  const std::wstring wide = widen(name);
  DWORD type = 0, size = 0;
  LSTATUS status = RegQueryValueExW(key, wide.c_str(), nullptr, &type, nullptr, &size);
  if (status == ERROR_FILE_NOT_FOUND) return std::optional<std::string>();
  std::wstring data;
  // The value may grow between the two calls (another writer): retry with the new size.
  for (int attempt = 0; status == ERROR_SUCCESS || status == ERROR_MORE_DATA; ++attempt) {
    data.assign(size / sizeof(wchar_t) + 1, L'\0');
    size = static_cast<DWORD>(data.size() * sizeof(wchar_t));
    status = RegQueryValueExW(key, wide.c_str(), nullptr, &type, reinterpret_cast<BYTE*>(data.data()), &size);
    if (status == ERROR_SUCCESS || attempt == 3) break;
  }
  if (status != ERROR_SUCCESS) {
    return win32_status_error(static_cast<DWORD>(status),
                              "the registry " + value_where(where, name) +
                                  " cannot be read: " + call_failed("RegQueryValueEx", static_cast<DWORD>(status)));
  }
  if (type != REG_SZ && type != REG_EXPAND_SZ) {
    return Error::failed_precondition("the registry " + value_where(where, name) + " is not text (type " +
                                      std::to_string(type) + "); check what wrote it");
  }
  data.resize(size / sizeof(wchar_t));
  return std::optional<std::string>(string_from_registry(data));
}

Status write_string_value(HKEY key, std::string_view name, std::string_view value, std::string_view where) {
  const std::wstring wide_name = widen(name), wide_value = widen(value);
  const LSTATUS status =
      RegSetValueExW(key, wide_name.c_str(), 0, REG_SZ, reinterpret_cast<const BYTE*>(wide_value.c_str()),
                     static_cast<DWORD>((wide_value.size() + 1) * sizeof(wchar_t)));
  if (status != ERROR_SUCCESS) {
    return win32_status_error(static_cast<DWORD>(status),
                              "the registry " + value_where(where, name) +
                                  " cannot be written: " + call_failed("RegSetValueEx", static_cast<DWORD>(status)));
  }
  return {};
}

Result<std::vector<std::pair<std::string, std::string>>> string_values(HKEY key, std::string_view where) {
  DWORD count = 0, longest_name = 0, longest_data = 0;
  LSTATUS status = RegQueryInfoKeyW(key, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, &count, &longest_name,
                                    &longest_data, nullptr, nullptr);
  if (status != ERROR_SUCCESS) {
    return win32_status_error(static_cast<DWORD>(status),
                              "the registry key " + std::string(where) +
                                  " cannot be listed: " + call_failed("RegQueryInfoKey", static_cast<DWORD>(status)));
  }
  std::vector<std::pair<std::string, std::string>> values;
  for (DWORD index = 0; index < count; ++index) {
    std::wstring name(longest_name + 1, L'\0');
    std::wstring data(longest_data / sizeof(wchar_t) + 1, L'\0');
    DWORD name_size = static_cast<DWORD>(name.size());
    DWORD data_size = static_cast<DWORD>(data.size() * sizeof(wchar_t));
    DWORD type = 0;
    status = RegEnumValueW(key, index, name.data(), &name_size, nullptr, &type, reinterpret_cast<BYTE*>(data.data()),
                           &data_size);
    if (status == ERROR_NO_MORE_ITEMS) break;
    if (status != ERROR_SUCCESS) {
      return win32_status_error(static_cast<DWORD>(status),
                                "the registry key " + std::string(where) +
                                    " cannot be listed: " + call_failed("RegEnumValue", static_cast<DWORD>(status)));
    }
    if (type != REG_SZ && type != REG_EXPAND_SZ) continue;
    name.resize(name_size);
    data.resize(data_size / sizeof(wchar_t));
    values.emplace_back(narrow(name), string_from_registry(data));
  }
  return values;
}

}  // namespace wincert::certstore::local
