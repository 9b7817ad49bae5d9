// iis-list-bindings, iis-bind, iis-unbind, iis-remove-cert-if-unused, sql-list-instances, sql-bind,
// sql-unbind, sql-restart, as the scripts of the same names do them on Windows.
#include "common/encoding.hpp"
#include "sim/winhost/model/ops.hpp"

namespace wincert::sim::model::ops {

using nlohmann::json;

namespace {

std::string as_name(const json& value) { return value.is_string() ? value.get<std::string>() : value.dump(); }

// The certificate a binding step needs: in the store, with a private key.
json certificate_for_binding(Host& host, const std::string& store_name, const std::string& thumbprint,
                             const char* needed_by) {
  json* cert = Host::find_cert(host.open_store(store_name, false), thumbprint);
  if (!cert) fail("CertificateNotFound", "certificate " + thumbprint + " is not in LocalMachine\\" + store_name);
  if (!Host::has_private_key(*cert)) {
    fail("InvalidArgument", "certificate " + thumbprint + " has no private key, which " + needed_by + " needs");
  }
  return *cert;
}

}  // namespace

json iis_list_bindings(Host& host, const json&) {
  json bindings = json::array();
  for (const auto& site : host.iis_sites()) {
    if (!site.is_object() || host.fault_names("site_missing", site.value("name", std::string()))) continue;
    for (const auto& b : site.value("bindings", json::array())) {
      if (iequals(b.value("protocol", std::string()), "https")) bindings.push_back(Host::binding_result(site, b));
    }
  }
  return json{{"Bindings", bindings}};
}

json iis_bind(Host& host, const json& args) {
  const std::string thumbprint = to_upper(arg_string(args, "Thumbprint"));
  const std::string store_name = arg_string(args, "StoreName");
  certificate_for_binding(host, store_name, thumbprint, "an https binding");
  return host.set_iis_binding(arg_string(args, "SiteName"), arg_string(args, "BindingInformation"), thumbprint,
                              store_name, arg_int(args, "SslFlags"));
}

json iis_unbind(Host& host, const json& args) {
  const std::string site_name = arg_string(args, "SiteName");
  const std::string binding_information = arg_string(args, "BindingInformation");
  host.iis_sites();
  json* site = host.find_site(site_name);
  bool removed = false;
  if (site) {
    auto& bindings = (*site)["bindings"];
    for (auto it = bindings.begin(); it != bindings.end();) {
      if (iequals(it->value("protocol", std::string()), "https") &&
          iequals(it->value("binding_information", std::string()), binding_information)) {
        it = bindings.erase(it);
        removed = true;
      } else {
        ++it;
      }
    }
    if (removed) host.changed();
  }
  return json{{"SiteFound", site != nullptr}, {"Removed", removed}};
}

json iis_remove_cert_if_unused(Host& host, const json& args) {
  const std::string store_name = arg_string(args, "StoreName");
  const std::string thumbprint = to_upper(arg_string(args, "Thumbprint"));
  json bound_sites = json::array();
  for (auto& site : host.iis_bindings_using(thumbprint)) bound_sites.push_back(site);
  bool removed = false;
  if (bound_sites.empty()) {
    json& store = host.open_store(store_name, true);
    if (Host::remove_cert(store, thumbprint)) {
      removed = true;
      host.changed();
    }
  }
  return json{{"Thumbprint", thumbprint}, {"Removed", removed}, {"BoundSites", bound_sites}};
}

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
  const json cert = certificate_for_binding(host, store_name, thumbprint, "SQL Server");
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

}  // namespace wincert::sim::model::ops
