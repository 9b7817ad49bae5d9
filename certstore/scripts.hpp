// The wincert-op PowerShell scripts (certstore/scripts/*.ps1), embedded into the binary at build time.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace wincert::certstore {

// The script text for an op name ("store-inventory"), or nullopt for an unknown op.
std::optional<std::string_view> script_for(std::string_view op);
// Every embedded op name, sorted.
std::vector<std::string_view> embedded_ops();

}  // namespace wincert::certstore
