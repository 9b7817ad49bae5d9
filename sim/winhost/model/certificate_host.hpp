// winhost-sim's Windows host for the certificate-store operations: every `# wincert-op:` of
// certstore/scripts (store-inventory, cert-add, cert-remove, iis-*, sql-*, csr-*) run against the
// WindowsModel's JSON with the same argument and output contract as the PowerShell scripts.
// Model schema and fault keys: sim/winhost/model/README.md.
#pragma once

#include <nlohmann/json.hpp>

namespace wincert::sim {
class WindowsModel;
}

namespace wincert::sim::model {

// The default host's certificate-related state: empty My/WebHosting/CA stores, a Root store with two CA
// certificates, IIS "Default Web Site" with http *:80:, SQL Server MSSQLSERVER running as
// NT Service\MSSQLSERVER, the standard Microsoft CSPs and KSPs.
nlohmann::json default_host_data();

// Adds the default host's top-level keys the model does not have yet ("stores", "keys", "providers", "iis",
// "sql", "faults") and registers every certificate-store operation. Safe to call more than once.
void install(WindowsModel& model);

// Only the operations (for a model whose data is set up by the caller).
void register_operations(WindowsModel& model);

}  // namespace wincert::sim::model
