#include "sim/winhost/model/host.hpp"

#include <algorithm>

#include "certstore/x509.hpp"
#include "common/encoding.hpp"
#include "sim/winhost/windows_model.hpp"

namespace wincert::sim::model {

using nlohmann::json;

void fail(std::string category, std::string message) { throw OpFailure{std::move(message), std::move(category)}; }

namespace {

const json* member(const json& args, std::string_view name) {
  if (!args.is_object()) return nullptr;
  auto it = args.find(std::string(name));
  if (it == args.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string lowercase_guid() {
  std::string g = to_lower(random_uuid());
  return g;
}

}  // namespace

std::string arg_string(const json& args, std::string_view name) {
  const json* v = member(args, name);
  if (!v) return {};
  if (v->is_string()) return v->get<std::string>();
  if (v->is_boolean()) return v->get<bool>() ? "True" : "False";
  if (v->is_number()) return v->dump();
  return v->dump();
}

bool arg_bool(const json& args, std::string_view name) {
  const json* v = member(args, name);
  if (!v) return false;
  if (v->is_boolean()) return v->get<bool>();
  if (v->is_number()) return v->get<double>() != 0;
  if (v->is_string()) return !v->get<std::string>().empty();  // PowerShell truthiness of [bool]"x"
  return !v->empty();
}

int arg_int(const json& args, std::string_view name) {
  const json* v = member(args, name);
  if (!v) return 0;
  if (v->is_number_integer()) return v->get<int>();
  if (v->is_number()) return static_cast<int>(v->get<double>());
  if (v->is_boolean()) return v->get<bool>() ? 1 : 0;
  if (v->is_string()) {
    const std::string s(trim(v->get<std::string>()));
    if (s.empty()) return 0;
    try {
      std::size_t used = 0;
      const int value = std::stoi(s, &used);
      if (used == s.size()) return value;
    } catch (const std::exception&) {
    }
    fail("InvalidArgument", "Cannot convert value \"" + s +
                                "\" to type \"System.Int32\". Error: \"Input string was not in a correct format.\"");
  }
  fail("InvalidArgument", "Cannot convert the value of " + std::string(name) + " to type \"System.Int32\".");
}

std::vector<json> arg_list(const json& args, std::string_view name) {
  const json* v = member(args, name);
  if (!v) return {};
  if (v->is_array()) return std::vector<json>(v->begin(), v->end());
  return {*v};
}

Host::Host(WindowsModel& model) : model_(model), data_(model.data()) {}

void Host::changed() { model_.mark_dirty(); }

int Host::os_build() const { return data_.value("os_build", 20348); }

bool Host::fault_flag(std::string_view key) const {
  auto f = data_.find("faults");
  if (f == data_.end() || !f->is_object()) return false;
  auto it = f->find(std::string(key));
  if (it == f->end()) return false;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_array() || it->is_object()) return !it->empty();
  return false;
}

bool Host::fault_names(std::string_view key, std::string_view name) const {
  auto f = data_.find("faults");
  if (f == data_.end() || !f->is_object()) return false;
  auto it = f->find(std::string(key));
  if (it == f->end()) return false;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_string()) return iequals(it->get<std::string>(), name);
  if (!it->is_array()) return false;
  for (const auto& entry : *it) {
    if (entry.is_string() && iequals(entry.get<std::string>(), name)) return true;
  }
  return false;
}

// ---------------------------------------------------------------- stores

json* Host::find_store(std::string_view name) {
  if (name.empty() || fault_names("store_missing", name)) return nullptr;
  auto& stores = data_["stores"];
  if (!stores.is_object()) return nullptr;
  for (auto& [key, value] : stores.items()) {
    if (iequals(key, name)) {
      if (!value.is_array()) value = json::array();
      return &value;
    }
  }
  return nullptr;
}

json& Host::open_store(std::string_view name, bool write) {
  if (name.empty()) fail("InvalidArgument", "StoreName is empty");
  json* store = find_store(name);
  if (!store) fail("StoreNotFound", "the certificate store LocalMachine\\" + std::string(name) + " does not exist");
  if (write && fault_names("access_denied_stores", name)) {
    fail("NotSpecified", "Exception calling \"Open\" with \"1\" argument(s): \"Access is denied.\r\n\"");
  }
  return *store;
}

std::string Host::der(const json& cert) {
  if (!cert.is_object()) return {};
  auto it = cert.find("der");
  if (it == cert.end() || !it->is_string()) return {};
  auto bytes = base64_decode(it->get<std::string>());
  return bytes ? *bytes : std::string();
}

std::string Host::thumbprint(const json& cert) {
  const std::string bytes = der(cert);
  return bytes.empty() ? std::string() : certstore::thumbprint_of(bytes);
}

json* Host::find_cert(json& store, std::string_view thumb) {
  if (thumb.empty()) return nullptr;
  for (auto& cert : store) {
    if (iequals(thumbprint(cert), thumb)) return &cert;
  }
  return nullptr;
}

void Host::add_cert(json& store, json entry) {
  const std::string thumb = thumbprint(entry);
  for (auto& cert : store) {
    if (iequals(thumbprint(cert), thumb)) {
      cert = std::move(entry);
      return;
    }
  }
  store.push_back(std::move(entry));
}

bool Host::remove_cert(json& store, std::string_view thumb) {
  for (auto it = store.begin(); it != store.end(); ++it) {
    if (iequals(thumbprint(*it), thumb)) {
      store.erase(it);
      return true;
    }
  }
  return false;
}

json Host::certificate_for_binding(const std::string& store_name, const std::string& thumbprint,
                                   const char* needed_by) {
  json* cert = find_cert(open_store(store_name, false), thumbprint);
  if (!cert) fail("CertificateNotFound", "certificate " + thumbprint + " is not in LocalMachine\\" + store_name);
  if (!has_private_key(*cert)) {
    fail("InvalidArgument", "certificate " + thumbprint + " has no private key, which " + needed_by + " needs");
  }
  return *cert;
}

// ---------------------------------------------------------------- keys

bool Host::has_private_key(const json& cert) {
  // Windows answers HasPrivateKey from the key-provider property on the certificate, not from the key.
  auto it = cert.find("key");
  return it != cert.end() && it->is_string() && !it->get<std::string>().empty();
}

json* Host::key_of(const json& cert) {
  if (!has_private_key(cert)) return nullptr;
  auto& keys = data_["keys"];
  if (!keys.is_object()) return nullptr;
  auto it = keys.find(cert["key"].get<std::string>());
  if (it == keys.end() || !it->is_object()) return nullptr;
  return &*it;
}

std::string Host::provider_of(const json& cert) {
  const json* key = key_of(cert);
  if (!key) return {};
  return key->value("provider", std::string());
}

std::string Host::key_file(const json& key) {
  const std::string unique = key.value("unique_name", std::string());
  if (unique.empty() || !key.value("file_exists", true)) return {};
  const bool capi = key.value("type", std::string("KSP")) == "CSP";
  return std::string(capi ? "C:\\ProgramData\\Microsoft\\Crypto\\RSA\\MachineKeys\\"
                          : "C:\\ProgramData\\Microsoft\\Crypto\\Keys\\") +
         unique;
}

std::string Host::new_key_container(const std::string& provider, const std::string& private_key_pem, bool pending) {
  auto& keys = data_["keys"];
  if (!keys.is_object()) keys = json::object();
  std::string machine_guid = data_.value("machine_guid", std::string());
  if (machine_guid.empty()) {
    machine_guid = lowercase_guid();
    data_["machine_guid"] = machine_guid;
  }
  std::string name;
  do {
    name = (pending ? "CertReq-" : "") + lowercase_guid();
  } while (keys.contains(name));
  std::string hash = to_lower(random_uuid());
  hash.erase(std::remove(hash.begin(), hash.end(), '-'), hash.end());
  keys[name] = json{{"provider", provider},
                    {"type", is_legacy_csp(provider) ? "CSP" : "KSP"},
                    {"unique_name", hash + "_" + machine_guid},
                    {"pending", pending},
                    {"acl", json::array()},
                    {"private_key_pem", private_key_pem}};
  return name;
}

std::vector<json*> Host::all_certificates() {
  std::vector<json*> out;
  auto& stores = data_["stores"];
  if (!stores.is_object()) return out;
  for (auto& [name, certs] : stores.items()) {
    if (fault_names("store_missing", name) || !certs.is_array()) continue;
    for (auto& cert : certs) out.push_back(&cert);
  }
  return out;
}

// ---------------------------------------------------------------- providers

std::vector<std::string> Host::providers() const {
  std::vector<std::string> out;
  auto it = data_.find("providers");
  if (it == data_.end() || !it->is_array()) return out;
  for (const auto& p : *it) {
    std::string name = p.is_string() ? p.get<std::string>() : p.is_object() ? p.value("name", std::string()) : "";
    if (!name.empty() && !fault_names("provider_missing", name)) out.push_back(std::move(name));
  }
  return out;
}

void Host::assert_provider(const std::string& name) const {
  for (const auto& p : providers()) {
    if (p == name) return;  // PowerShell -notcontains is case-insensitive, certutil names are exact: both agree
  }
  for (const auto& p : providers()) {
    if (iequals(p, name)) return;
  }
  fail("ProviderNotFound",
       "the crypto provider '" + name + "' is not installed on this host (certutil -csplist does not list it)");
}

bool Host::is_legacy_csp(const std::string& name) const {
  auto it = data_.find("providers");
  if (it != data_.end() && it->is_array()) {
    for (const auto& p : *it) {
      if (p.is_object() && iequals(p.value("name", std::string()), name) && p.contains("type")) {
        return iequals(p.value("type", std::string()), "CSP");
      }
    }
  }
  const std::string lower = to_lower(name);
  return lower.find("key storage provider") == std::string::npos && lower != "microsoft platform crypto provider";
}

}  // namespace wincert::sim::model
