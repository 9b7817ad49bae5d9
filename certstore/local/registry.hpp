// The few registry operations the SQL Server bindings need, UTF-8 in and out, every failure naming the
// key and value ("HKLM\SOFTWARE\...\SuperSocketNetLib value 'Certificate'").
#pragma once

#include "certstore/local/handles.hpp"
#include "common/result.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wincert::certstore::local {

// "HKLM", "HKCU", ... for messages.
std::string registry_root_name(HKEY root);
// "HKLM\<path>" for messages.
std::string registry_path_text(HKEY root, std::string_view path);

enum class RegistryAccess { kRead, kWrite };

// The key, or an empty RegistryKey when it does not exist; other failures (access denied) are errors.
Result<RegistryKey> open_registry_key(HKEY root, std::string_view path, RegistryAccess access);
// Opens or creates the key (and the keys above it).
Result<RegistryKey> create_registry_key(HKEY root, std::string_view path);
// Deletes the key with everything below it; a missing key counts as deleted.
Status delete_registry_tree(HKEY root, std::string_view path);

// A REG_SZ / REG_EXPAND_SZ value (not expanded); nullopt when the value does not exist. `where` names the
// key in error messages.
Result<std::optional<std::string>> read_string_value(HKEY key, std::string_view name, std::string_view where);
Status write_string_value(HKEY key, std::string_view name, std::string_view value, std::string_view where);
// The key's string values in registry order (other value types are skipped): name -> data.
Result<std::vector<std::pair<std::string, std::string>>> string_values(HKEY key, std::string_view where);

}  // namespace wincert::certstore::local
