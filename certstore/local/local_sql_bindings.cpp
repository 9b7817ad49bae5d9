#include "certstore/local/local_sql_bindings.hpp"

#include "certstore/local/blocking_worker.hpp"
#include "certstore/local/certificate_key.hpp"
#include "certstore/local/key_file_acl.hpp"
#include "certstore/local/registry.hpp"
#include "certstore/local/system_store.hpp"
#include "certstore/x509.hpp"
#include "common/encoding.hpp"
#include "common/log.hpp"

#include <boost/asio/thread_pool.hpp>

namespace wincert::certstore::local {
namespace {

constexpr std::string_view kCertificateValue = "Certificate";
constexpr std::string_view kSqlCertificateStore = "My";  // SQL Server reads its certificate only from here

// Where one instance's settings live in the registry.
struct SqlInstanceKeys {
  std::string name;
  std::string id;           // "MSSQL16.MSSQLSERVER"
  std::string netlib_path;  // below HKLM
  std::string netlib_text;  // "HKLM\...\SuperSocketNetLib" for messages
};

std::string instance_names_path(const LocalSqlOptions& options) {
  return options.sql_server_key + "\\Instance Names\\SQL";
}

std::string netlib_path(const LocalSqlOptions& options, const std::string& instance_id) {
  return options.sql_server_key + "\\" + instance_id + "\\MSSQLServer\\SuperSocketNetLib";
}

// What the request names, trimmed; the default instance when it names none.
std::vector<std::string> requested_instances(const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (const auto& name : names) {
    if (!trim(name).empty()) out.emplace_back(trim(name));
  }
  if (out.empty()) out.emplace_back("MSSQLSERVER");
  return out;
}

// SQL Server's tools write the thumbprint in lower case, people paste it with spaces: compare normalized.
std::string thumbprint_or_empty(std::string_view raw) {
  if (trim(raw).empty()) return {};
  const std::string normalized = normalize_thumbprint(raw);
  return normalized.empty() ? to_upper(trim(raw)) : normalized;
}

Result<SqlInstanceKeys> resolve_instance(const LocalSqlOptions& options, const std::string& name) {
  const std::string names_path = instance_names_path(options);
  const std::string names_text = registry_path_text(HKEY_LOCAL_MACHINE, names_path);
  auto key = open_registry_key(HKEY_LOCAL_MACHINE, names_path, RegistryAccess::kRead);
  if (!key) return key.error();
  if (!*key) {
    return Error::failed_precondition("SQL Server is not installed on this machine (there is no registry key " +
                                      names_text + "), so instance '" + name + "' cannot be used");
  }
  auto id = read_string_value(key->get(), name, names_text);
  if (!id) return id.error();
  if (!*id || trim(**id).empty()) {
    return Error::not_found("the SQL Server instance '" + name + "' does not exist on this machine (no value '" + name +
                            "' under " + names_text + "); check the store's InstanceName");
  }
  SqlInstanceKeys keys;
  keys.name = name;
  keys.id = std::string(trim(**id));
  keys.netlib_path = netlib_path(options, keys.id);
  keys.netlib_text = registry_path_text(HKEY_LOCAL_MACHINE, keys.netlib_path);
  return keys;
}

// Every instance resolved before anything changes: a typo in the list fails the job with nothing done.
Result<std::vector<SqlInstanceKeys>> resolve_instances(const LocalSqlOptions& options,
                                                       const std::vector<std::string>& names) {
  std::vector<SqlInstanceKeys> out;
  for (const auto& name : requested_instances(names)) {
    auto keys = resolve_instance(options, name);
    if (!keys) return keys.error();
    out.push_back(std::move(*keys));
  }
  return out;
}

Result<std::string> read_bound_certificate(HKEY netlib, const SqlInstanceKeys& keys) {
  auto value = read_string_value(netlib, kCertificateValue, keys.netlib_text);
  if (!value) return value.error().context("SQL Server instance '" + keys.name + "': ");
  return value->value_or(std::string());
}

bool is_local_system(std::string_view account) {
  return account.empty() || iequals(account, "NT AUTHORITY\\SYSTEM") || iequals(account, "LocalSystem");
}

// The extension's rule: a failed restart leaves the change in place and only asks for a manual restart.
bool restart_or_warn(const LocalSqlOptions& options, const SqlInstanceKeys& keys, std::string_view what) {
  const std::string service = sql_service_name(keys.name);
  auto restarted = restart_service(service, options.restart_timeouts);
  if (restarted) return true;
  logger("certstore")
      ->warn(
          "{} on SQL Server instance '{}' is done, but restarting the service '{}' failed; restart "
          "it manually: {}",
          what, keys.name, service, restarted.error().message);
  return false;
}

// The certificate SQL Server will use must be in LocalMachine\My with a usable private key; its key file
// ("" when Windows keeps the key elsewhere) is what the service account gets read access to.
Result<std::string> check_certificate_and_find_key_file(const LocalSqlOptions& options, const std::string& thumbprint) {
  auto store = open_machine_store(kSqlCertificateStore, StoreAccess::kRead);
  if (!store) return store.error();
  auto certificate = find_by_thumbprint(store->get(), thumbprint);
  if (!certificate) return certificate.error();
  if (!*certificate) {
    return Error::not_found("certificate " + thumbprint +
                            " is not in LocalMachine\\My, the only store SQL Server reads its certificate from");
  }
  const PrivateKeyCheck key = check_private_key(certificate->get());
  if (!key.link) {
    return Error::failed_precondition("certificate " + thumbprint +
                                      " in LocalMachine\\My has no private key, which SQL Server needs");
  }
  if (!key.usable) {
    return Error::failed_precondition("the private key of certificate " + thumbprint + " (" + key.link->describe() +
                                      ") cannot be used, and SQL Server needs it: " + key.problem);
  }
  const std::string crypto = options.crypto_directory.empty() ? machine_crypto_directory() : options.crypto_directory;
  auto file = find_key_file(*key.link, crypto);
  if (!file) return file.error().context("certificate " + thumbprint + ": ");
  return std::move(*file);
}

Result<SqlInstanceBinding> bind_instance(const LocalSqlOptions& options, const SqlInstanceKeys& keys,
                                         const std::string& thumbprint, const std::string& key_file, bool restart) {
  auto netlib = open_registry_key(HKEY_LOCAL_MACHINE, keys.netlib_path, RegistryAccess::kWrite);
  if (!netlib) return netlib.error().context("SQL Server instance '" + keys.name + "': ");
  if (!*netlib) {
    return Error::failed_precondition(
        "the SQL Server instance '" + keys.name + "' has no registry key " + keys.netlib_text +
        "; check that the instance is installed completely (SQL Server Configuration Manager)");
  }
  if (auto written = write_string_value(netlib->get(), kCertificateValue, to_lower(thumbprint), keys.netlib_text);
      !written) {
    return written.error().context("SQL Server instance '" + keys.name + "': ");
  }
  auto read_back = read_bound_certificate(netlib->get(), keys);
  if (!read_back) return read_back.error();

  SqlInstanceBinding binding;
  binding.instance = keys.name;
  binding.verified = thumbprint_or_empty(*read_back) == thumbprint;
  binding.key_file = key_file;

  const std::string service = sql_service_name(keys.name);
  auto account = service_account(service);
  if (!account) return account.error().context("SQL Server instance '" + keys.name + "': ");
  // No service (a half-installed instance): nobody to grant; as the remote script does.
  if (!key_file.empty() && *account && !is_local_system(**account)) {
    if (auto granted = grant_read_access(key_file, **account); !granted) {
      return granted.error().context("SQL Server instance '" + keys.name + "' (service '" + service + "'): ");
    }
  }
  if (restart) binding.restarted = restart_or_warn(options, keys, "binding certificate " + thumbprint);
  return binding;
}

}  // namespace

std::string sql_service_name(const std::string& instance) {
  if (iequals(instance, "MSSQLSERVER")) return "MSSQLSERVER";
  return "MSSQL$" + instance;
}

Result<std::vector<SqlInstance>> list_sql_instances_now(const LocalSqlOptions& options) {
  const std::string names_path = instance_names_path(options);
  const std::string names_text = registry_path_text(HKEY_LOCAL_MACHINE, names_path);
  std::vector<SqlInstance> instances;
  auto key = open_registry_key(HKEY_LOCAL_MACHINE, names_path, RegistryAccess::kRead);
  if (!key) return key.error();
  if (!*key) return instances;  // SQL Server is not installed
  auto values = string_values(key->get(), names_text);
  if (!values) return values.error();
  for (auto& [name, id] : *values) {
    SqlInstance instance;
    instance.name = name;
    instance.instance_id = std::string(trim(id));
    const SqlInstanceKeys keys{name, instance.instance_id, netlib_path(options, instance.instance_id),
                               registry_path_text(HKEY_LOCAL_MACHINE, netlib_path(options, instance.instance_id))};
    auto netlib = open_registry_key(HKEY_LOCAL_MACHINE, keys.netlib_path, RegistryAccess::kRead);
    if (!netlib) return netlib.error().context("SQL Server instance '" + name + "': ");
    if (*netlib) {
      auto bound = read_bound_certificate(netlib->get(), keys);
      if (!bound) return bound.error();
      instance.thumbprint = thumbprint_or_empty(*bound);
    }
    instance.service_name = sql_service_name(name);
    auto account = service_account(instance.service_name);
    if (!account) return account.error().context("SQL Server instance '" + name + "': ");
    instance.service_account = account->value_or(std::string());
    instances.push_back(std::move(instance));
  }
  return instances;
}

Result<std::vector<SqlInstanceBinding>> bind_sql_now(const LocalSqlOptions& options, const SqlBindingRequest& request,
                                                     const std::string& thumbprint_in, const std::string& store_in) {
  const std::string thumbprint = normalize_thumbprint(thumbprint_in);
  if (thumbprint.empty())
    return Error::invalid_argument("cannot bind '" + std::string(trim(thumbprint_in)) +
                                   "' to SQL Server: not a thumbprint");
  const std::string_view store = trim(store_in).empty() ? kSqlCertificateStore : trim(store_in);
  if (!iequals(store, kSqlCertificateStore)) {
    return Error::invalid_argument(
        "SQL Server reads its certificate only from LocalMachine\\My, not from LocalMachine\\" + std::string(store) +
        "; set the store's StorePath to My");
  }
  const std::string context = "binding certificate " + thumbprint + " to SQL Server: ";
  auto instances = resolve_instances(options, request.instances);
  if (!instances) return instances.error().context(context);
  auto key_file = check_certificate_and_find_key_file(options, thumbprint);
  if (!key_file) return key_file.error().context(context);

  std::vector<SqlInstanceBinding> bindings;
  for (const auto& keys : *instances) {
    auto binding = bind_instance(options, keys, thumbprint, *key_file, request.restart_service);
    if (!binding) return binding.error().context(context);
    bindings.push_back(std::move(*binding));
  }
  return bindings;
}

Result<std::vector<SqlUnbindOutcome>> unbind_sql_now(const LocalSqlOptions& options, const SqlBindingRequest& request,
                                                     const std::string& thumbprint_in) {
  const std::string thumbprint = normalize_thumbprint(thumbprint_in);
  if (thumbprint.empty()) {
    return Error::invalid_argument("cannot unbind '" + std::string(trim(thumbprint_in)) +
                                   "' from SQL Server: not a thumbprint");
  }
  const std::string context = "unbinding certificate " + thumbprint + " from SQL Server: ";
  auto instances = resolve_instances(options, request.instances);
  if (!instances) return instances.error().context(context);

  std::vector<SqlUnbindOutcome> outcomes;
  for (const auto& keys : *instances) {
    SqlUnbindOutcome outcome;
    outcome.instance = keys.name;
    auto netlib = open_registry_key(HKEY_LOCAL_MACHINE, keys.netlib_path, RegistryAccess::kWrite);
    if (!netlib) return netlib.error().context(context + "SQL Server instance '" + keys.name + "': ");
    if (*netlib) {
      auto previous = read_bound_certificate(netlib->get(), keys);
      if (!previous) return previous.error().context(context);
      outcome.previous_thumbprint = thumbprint_or_empty(*previous);
      // Only this certificate is cleared; an instance bound to another one is left alone.
      if (outcome.previous_thumbprint == thumbprint) {
        // Blanked, not deleted: SQL Server expects the value to exist.
        if (auto cleared = write_string_value(netlib->get(), kCertificateValue, "", keys.netlib_text); !cleared) {
          return cleared.error().context(context + "SQL Server instance '" + keys.name + "': ");
        }
        outcome.unbound = true;
        if (request.restart_service) {
          outcome.restarted = restart_or_warn(options, keys, "unbinding certificate " + thumbprint);
        }
      }
    }
    outcomes.push_back(std::move(outcome));
  }
  return outcomes;
}

Result<std::vector<SqlServiceState>> restart_sql_now(const LocalSqlOptions& options,
                                                     const std::vector<std::string>& names) {
  auto instances = resolve_instances(options, names);
  if (!instances) return instances.error().context("restarting SQL Server: ");
  std::vector<SqlServiceState> states;
  for (const auto& keys : *instances) {
    const std::string service = sql_service_name(keys.name);
    auto status = restart_service(service, options.restart_timeouts);
    if (!status) return status.error().context("restarting SQL Server instance '" + keys.name + "': ");
    states.push_back({keys.name, service, *status});
  }
  return states;
}

LocalSqlBindings::LocalSqlBindings(LocalSqlOptions options)
    : options_(std::move(options)), worker_(std::make_unique<boost::asio::thread_pool>(1)) {}

LocalSqlBindings::~LocalSqlBindings() { worker_->join(); }

Task<std::vector<SqlInstance>> LocalSqlBindings::list_instances() {
  return run_on_worker<std::vector<SqlInstance>>(*worker_,
                                                 [options = options_] { return list_sql_instances_now(options); });
}

Task<std::vector<SqlInstanceBinding>> LocalSqlBindings::bind(SqlBindingRequest request, std::string thumbprint,
                                                             std::string store) {
  return run_on_worker<std::vector<SqlInstanceBinding>>(
      *worker_, [options = options_, request = std::move(request), thumbprint = std::move(thumbprint),
                 store = std::move(store)] { return bind_sql_now(options, request, thumbprint, store); });
}

Task<std::vector<SqlUnbindOutcome>> LocalSqlBindings::unbind(SqlBindingRequest request, std::string thumbprint) {
  return run_on_worker<std::vector<SqlUnbindOutcome>>(
      *worker_, [options = options_, request = std::move(request), thumbprint = std::move(thumbprint)] {
        return unbind_sql_now(options, request, thumbprint);
      });
}

Task<std::vector<SqlServiceState>> LocalSqlBindings::restart(std::vector<std::string> instances) {
  return run_on_worker<std::vector<SqlServiceState>>(
      *worker_, [options = options_, instances = std::move(instances)] { return restart_sql_now(options, instances); });
}

}  // namespace wincert::certstore::local
