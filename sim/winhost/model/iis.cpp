// The IISU store type's part of the model: IIS sites and https bindings (the host's "iis" object), and
// iis-list-bindings, iis-bind, iis-unbind, iis-remove-cert-if-unused as the scripts of the same names do
// them on Windows.
#include <algorithm>

#include "certstore/x509.hpp"
#include "common/encoding.hpp"
#include "sim/winhost/model/host.hpp"
#include "sim/winhost/model/ops.hpp"
#include "sim/winhost/windows_model.hpp"

namespace wincert::sim::model {

using nlohmann::json;

// ---------------------------------------------------------------- IIS

bool Host::iis_installed() const {
  if (fault_flag("iis_not_installed")) return false;
  auto it = data_.find("iis");
  return it != data_.end() && it->is_object() && it->value("installed", true);
}

json& Host::iis_sites() {
  if (!iis_installed()) {
    fail("IisNotInstalled", "IIS is not installed on this host (Microsoft.Web.Administration.dll is missing)");
  }
  auto& sites = data_["iis"]["sites"];
  if (!sites.is_array()) sites = json::array();
  return sites;
}

json* Host::find_site(std::string_view name) {
  if (fault_names("site_missing", name)) return nullptr;
  for (auto& site : iis_sites()) {
    if (site.is_object() && iequals(site.value("name", std::string()), name)) {
      if (!site["bindings"].is_array()) site["bindings"] = json::array();
      return &site;
    }
  }
  return nullptr;
}

json Host::binding_result(const json& site, const json& binding) {
  return json{{"SiteName", site.value("name", std::string())},
              {"Protocol", binding.value("protocol", std::string())},
              {"BindingInformation", binding.value("binding_information", std::string())},
              {"CertificateHash", to_upper(binding.value("certificate_hash", std::string()))},
              {"CertificateStoreName", binding.value("certificate_store_name", std::string())},
              {"SslFlags", binding.value("ssl_flags", 0)}};
}

std::vector<std::string> Host::iis_bindings_using(std::string_view thumb) {
  std::vector<std::string> users;
  if (!iis_installed()) return users;
  for (auto& site : iis_sites()) {
    if (!site.is_object() || fault_names("site_missing", site.value("name", std::string()))) continue;
    for (const auto& b : site.value("bindings", json::array())) {
      if (iequals(b.value("protocol", std::string()), "https") &&
          iequals(b.value("certificate_hash", std::string()), thumb) && !thumb.empty()) {
        users.push_back(site.value("name", std::string()) + " (" + b.value("binding_information", std::string()) + ")");
      }
    }
  }
  return users;
}

json Host::set_iis_binding(const std::string& site_name, const std::string& binding_information,
                           const std::string& thumb, const std::string& store_name, int ssl_flags) {
  iis_sites();
  json* site = find_site(site_name);
  if (!site) fail("SiteNotFound", "the IIS site '" + site_name + "' does not exist");
  // The applicationHost.config schema of this OS build decides which sslFlags bits exist.
  const int build = os_build();
  const int known = build >= 20348 ? 127 : build >= 17763 ? 15 : build >= 14393 ? 7 : 3;
  if (ssl_flags < 0 || (ssl_flags & ~known) != 0) {
    fail("NotSpecified", "Exception calling \"SetAttributeValue\" with \"2\" argument(s): \"Invalid flags value '" +
                             std::to_string(ssl_flags) + "' for attribute 'sslFlags' (OS build " +
                             std::to_string(build) + ")\"");
  }
  if (fault_flag("binding_conflict")) {
    for (auto& other : iis_sites()) {
      if (!other.is_object() || iequals(other.value("name", std::string()), site_name)) continue;
      for (const auto& b : other.value("bindings", json::array())) {
        if (iequals(b.value("protocol", std::string()), "https") &&
            iequals(b.value("binding_information", std::string()), binding_information)) {
          fail("NotSpecified",
               "Exception calling \"CommitChanges\" with \"0\" argument(s): \"Cannot commit configuration changes: the "
               "binding 'https " +
                   binding_information + "' is already used by the site '" + other.value("name", std::string()) +
                   "'. (Exception from HRESULT: 0x800700B7)\"");
        }
      }
    }
  }
  auto& bindings = (*site)["bindings"];
  bool replaced = false;
  for (auto it = bindings.begin(); it != bindings.end();) {
    if (iequals(it->value("protocol", std::string()), "https") &&
        iequals(it->value("binding_information", std::string()), binding_information)) {
      it = bindings.erase(it);
      replaced = true;
    } else {
      ++it;
    }
  }
  json binding = {{"protocol", "https"},
                  {"binding_information", binding_information},
                  {"certificate_hash", to_upper(thumb)},
                  {"certificate_store_name", store_name},
                  {"ssl_flags", ssl_flags}};
  bindings.push_back(binding);
  changed();
  return json{{"Binding", binding_result(*site, binding)}, {"ReplacedExisting", replaced}};
}
namespace ops {

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
  host.certificate_for_binding(store_name, thumbprint, "an https binding");
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

}  // namespace ops
}  // namespace wincert::sim::model
