// The host-side PowerShell, embedded into the binary at build time (certstore/ps/assemble.py): one
// assembled wincert-op script per operation (what one powershell.exe runs over WinRS) and the whole
// WincertOps module (what a PowerShell remoting runspace loads once).
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace wincert::certstore {

// The assembled script text for an op name ("store-inventory"), or nullopt for an unknown op.
std::optional<std::string_view> script_for(std::string_view op);
// Every embedded op name, sorted.
std::vector<std::string_view> embedded_ops();
// The text of certstore/ps/WincertOps.psm1.
std::string_view module_text();
// SHA-256 of module_text(), lowercase hex (64 characters): tells a runspace's loaded module apart.
std::string_view module_version();

}  // namespace wincert::certstore
