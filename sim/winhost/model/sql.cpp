// The WinSql store type's part of the model: SQL Server instances and their TLS certificate (the host's
// "sql" object), and sql-list-instances, sql-bind, sql-unbind, sql-restart as the scripts of the same
// names do them on Windows.
#include <algorithm>

#include "certstore/x509.hpp"
#include "common/encoding.hpp"
#include "sim/winhost/model/host.hpp"
#include "sim/winhost/model/ops.hpp"
#include "sim/winhost/windows_model.hpp"

namespace wincert::sim::model {

using nlohmann::json;

// ---------------------------------------------------------------- SQL Server

bool Host::sql_installed() const {
  if (fault_flag("sql_not_installed")) return false;
  auto it = data_.find("sql");
  return it != data_.end() && it->is_object() && it->value("installed", true);
}

json& Host::sql_instances() {
  auto& list = data_["sql"]["instances"];
  if (!list.is_array()) list = json::array();
  return list;
}

json& Host::sql_instance(const std::string& name) {
  if (!sql_installed()) {
    fail("InstanceNotFound", "SQL Server is not installed on this host (no Instance Names\\SQL registry key)");
  }
  for (auto& instance : sql_instances()) {
    if (instance.is_object() && iequals(instance.value("name", std::string()), name) && !name.empty()) return instance;
  }
  fail("InstanceNotFound", "the SQL Server instance '" + name + "' does not exist on this host");
}

std::string Host::sql_service_name(const std::string& instance_name) {
  return instance_name == "MSSQLSERVER" ? std::string("MSSQLSERVER") : "MSSQL$" + instance_name;
}

std::string Host::restart_sql_service(json& instance, int timeout_seconds) {
  const std::string name = instance.value("name", std::string());
  const std::string service = sql_service_name(name);
  if (fault_names("sql_restart_fails", name)) {
    // Stopped fine, then never reached Running.
    instance["service_status"] = "Stopped";
    changed();
    fail("Timeout",
         "the service " + service + " did not restart within " + std::to_string(timeout_seconds) + " seconds");
  }
  instance["service_status"] = "Running";
  instance["restarts"] = instance.value("restarts", 0) + 1;
  changed();
  return "Running";
}

json Host::set_sql_certificate(const std::string& instance_name, const std::string& thumb, const json& cert,
                               bool restart) {
  json& instance = sql_instance(instance_name);
  if (!instance.value("netlib", true)) {
    fail("InstanceNotFound", "the SQL Server instance '" + instance_name + "' has no SuperSocketNetLib registry key");
  }
  instance["certificate"] = to_lower(thumb);
  changed();
  const std::string written = instance.value("certificate", std::string());
  const std::string account = instance.value("service_account", std::string());
  std::string file;
  if (json* key = key_of(cert)) {
    file = key_file(*key);
    if (!file.empty() && !account.empty() && account != "LocalSystem" && account != "NT AUTHORITY\\SYSTEM") {
      auto& acl = (*key)["acl"];
      if (!acl.is_array()) acl = json::array();
      if (std::find(acl.begin(), acl.end(), json(account)) == acl.end()) acl.push_back(account);
    }
  }
  bool restarted = false;
  if (restart) {
    restart_sql_service(instance, 90);
    restarted = true;
  }
  return json{{"InstanceName", instance_name},
              {"Verified", iequals(written, thumb)},
              {"KeyFile", file},
              {"Restarted", restarted}};
}
namespace ops {

namespace {

std::string as_name(const json& value) { return value.is_string() ? value.get<std::string>() : value.dump(); }

}  // namespace

json sql_list_instances(Host& host, const json&) {
  json instances = json::array();
  if (host.sql_installed()) {
    for (const auto& instance : host.sql_instances()) {
      if (!instance.is_object()) continue;
      const std::string name = instance.value("name", std::string());
      instances.push_back(
          json{{"InstanceName", name},
               {"InstanceId", instance.value("id", std::string())},
               {"Certificate",
                instance.value("netlib", true) ? instance.value("certificate", std::string()) : std::string()},
               {"ServiceName", Host::sql_service_name(name)},
               {"ServiceAccount", instance.value("service_account", std::string())}});
    }
  }
  return json{{"Instances", instances}};
}

json sql_bind(Host& host, const json& args) {
  const std::string thumbprint = to_upper(arg_string(args, "Thumbprint"));
  const std::string store_name = arg_string(args, "StoreName");
  const json cert = host.certificate_for_binding(store_name, thumbprint, "SQL Server");
  json instances = json::array();
  for (const auto& name : arg_list(args, "InstanceNames")) {
    instances.push_back(host.set_sql_certificate(as_name(name), thumbprint, cert, arg_bool(args, "RestartService")));
  }
  return json{{"Instances", instances}};
}

json sql_unbind(Host& host, const json& args) {
  const std::string thumbprint = to_upper(arg_string(args, "Thumbprint"));
  json instances = json::array();
  for (const auto& entry : arg_list(args, "InstanceNames")) {
    const std::string name = as_name(entry);
    json& instance = host.sql_instance(name);
    const std::string previous = instance.value("netlib", true) ? instance.value("certificate", std::string()) : "";
    bool unbound = false, restarted = false;
    if (!previous.empty() && iequals(trim(previous), thumbprint)) {
      // Blank rather than delete the value: SQL Server expects it to exist.
      instance["certificate"] = "";
      host.changed();
      unbound = true;
      if (arg_bool(args, "RestartService")) {
        host.restart_sql_service(instance, 90);
        restarted = true;
      }
    }
    instances.push_back(json{
        {"InstanceName", name}, {"Unbound", unbound}, {"PreviousCertificate", previous}, {"Restarted", restarted}});
  }
  return json{{"Instances", instances}};
}

json sql_restart(Host& host, const json& args) {
  int timeout = arg_int(args, "TimeoutSeconds");
  if (timeout <= 0) timeout = 90;
  json instances = json::array();
  for (const auto& entry : arg_list(args, "InstanceNames")) {
    const std::string name = as_name(entry);
    json& instance = host.sql_instance(name);
    const std::string status = host.restart_sql_service(instance, timeout);
    instances.push_back(
        json{{"InstanceName", name}, {"ServiceName", Host::sql_service_name(name)}, {"Status", status}});
  }
  return json{{"Instances", instances}};
}

}  // namespace ops
}  // namespace wincert::sim::model
