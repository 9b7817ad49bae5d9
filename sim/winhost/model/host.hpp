// Access to the certificate-store parts of the WindowsModel's JSON (schema: sim/winhost/model/README.md),
// with the checks Windows itself makes (store exists, access, provider installed, IIS/SQL present) and the
// selectable faults. Internal to the model library: operations throw OpFailure, and the registration
// wrapper turns it into the script's {"error":{message, category}} document.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace wincert::sim {
class WindowsModel;
}

namespace wincert::sim::model {

// A terminating error as the scripts raise it (New-OpError), or a .NET exception PowerShell reports.
struct OpFailure {
  std::string message;
  std::string category;
};
[[noreturn]] void fail(std::string category, std::string message);

// Argument access as `[string]$a.X`, `[bool]$a.X`, `[int]$a.X` read them: absent or null is "" / false / 0.
std::string arg_string(const nlohmann::json& args, std::string_view name);
bool arg_bool(const nlohmann::json& args, std::string_view name);
int arg_int(const nlohmann::json& args, std::string_view name);
// @($a.X): an array stays an array, a single value becomes one element, null becomes empty.
std::vector<nlohmann::json> arg_list(const nlohmann::json& args, std::string_view name);

class Host {
 public:
  explicit Host(WindowsModel& model);

  nlohmann::json& data() { return data_; }
  void changed();
  int os_build() const;

  // --- faults ("faults" object) ---
  bool fault_flag(std::string_view key) const;                          // true, or a non-empty list
  bool fault_names(std::string_view key, std::string_view name) const;  // true, or the list holds name

  // --- certificate stores ---
  // The store's certificate array, or nullptr when LocalMachine\<name> does not exist (names are
  // case-insensitive, as Cert:\LocalMachine is).
  nlohmann::json* find_store(std::string_view name);
  // Open-LocalMachineStore: InvalidArgument (empty), StoreNotFound, or access denied when opening for write.
  nlohmann::json& open_store(std::string_view name, bool write);
  static std::string thumbprint(const nlohmann::json& cert);
  static std::string der(const nlohmann::json& cert);
  static nlohmann::json* find_cert(nlohmann::json& store, std::string_view thumbprint);
  // X509Store.Add: a certificate already there (same thumbprint) is replaced by the new entry.
  static void add_cert(nlohmann::json& store, nlohmann::json entry);
  static bool remove_cert(nlohmann::json& store, std::string_view thumbprint);
  // The certificate a binding needs: in the store (CertificateNotFound), with a private key (InvalidArgument).
  nlohmann::json certificate_for_binding(const std::string& store_name, const std::string& thumbprint,
                                         const char* needed_by);

  // --- key containers ("keys" object, keyed by container name) ---
  nlohmann::json* key_of(const nlohmann::json& cert);  // nullptr: no key, or its container is gone
  static bool has_private_key(const nlohmann::json& cert);
  std::string provider_of(const nlohmann::json& cert);  // "" when none or unreadable
  static std::string key_file(const nlohmann::json& key);
  // Creates a container; returns its name.
  std::string new_key_container(const std::string& provider, const std::string& private_key_pem, bool pending);
  // Every certificate of every store (Get-ChildItem Cert:\LocalMachine -Recurse).
  std::vector<nlohmann::json*> all_certificates();

  // --- crypto providers ("providers": names or {"name","type":"CSP"|"KSP"}) ---
  std::vector<std::string> providers() const;           // what certutil -csplist lists
  void assert_provider(const std::string& name) const;  // ProviderNotFound
  bool is_legacy_csp(const std::string& name) const;

  // --- IIS ("iis": {"installed", "sites": [...]}); defined in iis.cpp, the IISU store type's model ---
  bool iis_installed() const;
  nlohmann::json& iis_sites();  // IisNotInstalled
  nlohmann::json* find_site(std::string_view name);
  // "Site (IP:Port:Host)" for each https binding that uses the thumbprint ([] when IIS is absent).
  std::vector<std::string> iis_bindings_using(std::string_view thumbprint);
  // Set-IisBinding of the scripts; returns {Binding, ReplacedExisting}.
  nlohmann::json set_iis_binding(const std::string& site_name, const std::string& binding_information,
                                 const std::string& thumbprint, const std::string& store_name, int ssl_flags);
  static nlohmann::json binding_result(const nlohmann::json& site, const nlohmann::json& binding);

  // --- SQL Server ("sql": {"installed", "instances": [...]}); defined in sql.cpp, WinSql's model ---
  bool sql_installed() const;
  nlohmann::json& sql_instances();                        // callers check sql_installed() first
  nlohmann::json& sql_instance(const std::string& name);  // InstanceNotFound
  static std::string sql_service_name(const std::string& instance_name);
  // Stop + start with a bounded wait; Timeout when the model says the service hangs. Returns the status.
  std::string restart_sql_service(nlohmann::json& instance, int timeout_seconds);
  // Set-SqlCertificate of the scripts: {InstanceName, Verified, KeyFile, Restarted}.
  nlohmann::json set_sql_certificate(const std::string& instance_name, const std::string& thumbprint,
                                     const nlohmann::json& cert, bool restart);

 private:
  WindowsModel& model_;
  nlohmann::json& data_;
};

}  // namespace wincert::sim::model
