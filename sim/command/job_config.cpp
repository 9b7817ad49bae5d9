#include "sim/command/job_config.hpp"

#include <cctype>
#include <iterator>
#include <utility>
#include <vector>

#include "common/encoding.hpp"

namespace wincert::sim::command {
namespace {

// Entry parameters per store type with the defaults an administrator sees prefilled in Command
// (wincert-extension 1.2); null where the store type has no default.
std::vector<std::pair<std::string, Json>> entry_parameter_defaults(StoreType type) {
  switch (type) {
    case StoreType::kIisu:
      return {{"Port", "443"},  {"IPAddress", "*"},    {"HostName", nullptr},     {"SiteName", "Default Web Site"},
              {"SniFlag", "0"}, {"Protocol", "https"}, {"ProviderName", nullptr}, {"SAN", nullptr}};
    case StoreType::kWinSql:
      return {{"InstanceName", nullptr}, {"ProviderName", nullptr}, {"SAN", nullptr}};
    case StoreType::kWinCert:
      return {{"ProviderName", nullptr}, {"SAN", nullptr}};
    case StoreType::kPem:
      return {};
  }
  return {};
}

Json last_inventory(const Store& store) {
  Json out = Json::array();
  for (const auto& item : store.inventory) {
    Json entry = Json::object();
    entry["Alias"] = item.alias;
    entry["PrivateKeyEntry"] = item.private_key_entry;
    // The leaf's thumbprint, as in the fixtures.
    Json thumbprints = Json::array();
    if (!item.thumbprints.empty()) thumbprints.push_back(item.thumbprints.front());
    entry["Thumbprints"] = std::move(thumbprints);
    out.push_back(std::move(entry));
  }
  return out;
}

Json property_or_null(const Store& store, std::string_view key) {
  const Json* v = find_ci(store.properties, key);
  return v == nullptr ? Json(nullptr) : *v;
}

Json payload_value(const Job& job, std::string_view key) {
  const Json* v = find_ci(job.payload, key);
  return v == nullptr ? Json(nullptr) : *v;
}

}  // namespace

std::string_view route_family(JobKind kind) {
  switch (kind) {
    case JobKind::kInventory:
      return "CertStoreInventory";
    case JobKind::kAdd:
    case JobKind::kRemove:
      return "CertStoreManagement";
    case JobKind::kReenrollment:
      return "CertStoreReenrollment";
  }
  return "CertStoreInventory";
}

std::string EndpointWriter::url(std::string_view route) {
  const Settings& s = runtime_.settings;
  EndpointForm form = s.endpoint_form;
  if (form == EndpointForm::kRotate) {
    constexpr EndpointForm kCycle[] = {EndpointForm::kPrefixed, EndpointForm::kRooted, EndpointForm::kAbsolute};
    form = kCycle[runtime_.urls_handed_out % 3];
  }
  ++runtime_.urls_handed_out;
  // base_path is "/KeyfactorAgents" (or "/" when the API is served at the root).
  if (native_ && form == EndpointForm::kAbsolute) form = EndpointForm::kRooted;
  std::string base = s.base_path == "/" ? std::string() : s.base_path;
  const std::string rooted = base + "/" + std::string(route);
  switch (form) {
    case EndpointForm::kRooted:
      return rooted;
    case EndpointForm::kAbsolute:
      return (s.public_url.empty() ? origin_ : s.public_url) + rooted;
    case EndpointForm::kPrefixed:
    case EndpointForm::kRotate:
      break;
  }
  return rooted.substr(1);  // "KeyfactorAgents/CertStoreInventory/Configuration"
}

Json result_success() {
  Json r = Json::object();
  r["Status"] = 1;
  r["Error"] = nullptr;
  return r;
}

Json result_with_error(int status, std::string_view code_string, const std::string& message) {
  Json error = Json::object();
  // The code strings read as HRESULT-like hex ("A0100007"); Code carries the same value as a signed int.
  std::uint32_t code = 0;
  for (char c : code_string) {
    const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const int digit = lower >= '0' && lower <= '9' ? lower - '0' : lower >= 'a' && lower <= 'f' ? lower - 'a' + 10 : 0;
    code = code * 16 + static_cast<std::uint32_t>(digit);
  }
  // No code (kNoCode): Code 0 and empty strings rather than nulls, because Keyfactor's C agent reads
  // several string members without a NULL check (reference 11.1).
  error["Code"] = static_cast<std::int32_t>(code);
  error["CodeString"] = code_string;
  error["HResult"] = code_string;
  error["Message"] = message;
  Json r = Json::object();
  r["Status"] = status;
  r["Error"] = std::move(error);
  return r;
}

Json session_job_entry(const Job& job, const Store& store, EndpointWriter& endpoints, bool native,
                       CapabilityIn capability_in) {
  const std::string family(route_family(job.kind));
  Json entry = Json::object();
  entry["JobTypeId"] = job_type_id(store.type, job.kind);
  entry["JobId"] = job.id;
  entry["ConfigurationEndpoint"] = endpoints.url(family + "/Configuration");
  entry["CompletionEndpoint"] = endpoints.url(family + "/Complete");
  entry["Cron"] = nullptr;
  entry["Schedule"] = job.schedule.wire();
  entry["Priority"] = job_priority(job.kind);
  if (native || capability_in != CapabilityIn::kBoth) return entry;
  // Not in the C agent's DTO; sent so an agent need not map job-type GUIDs to capabilities (reference 3.1).
  entry["Capability"] = capability_name(store.type, job.kind);
  // Test knob (admin "Capability"): a capability the agent may not know.
  if (const Json* cap = find_ci(job.payload, "CapabilityOverride"); cap != nullptr && cap->is_string())
    entry["Capability"] = *cap;
  return entry;
}

std::string properties_string(const Store& store) { return dump_json(store.properties); }

std::string native_properties_string(const Store& store) {
  Json props = store.properties.is_object() ? store.properties : Json::object();
  // The C agent takes the first case-insensitive match: a non-string one (null) must go, not sit beside ours.
  for (const char* key : {"separatePrivateKey", "privateKeyPath"}) {
    const Json* value = find_ci(props, key);
    if (value != nullptr && value->is_string()) continue;
    for (auto it = props.begin(); it != props.end();) {
      it = iequals(it.key(), key) ? props.erase(it) : std::next(it);
    }
    props[key] = std::string_view(key) == "separatePrivateKey" ? "false" : "";
  }
  return dump_json(props);
}

Json entry_parameters(StoreType type, const Json* given) {
  Json out = Json::object();
  for (auto& [key, value] : entry_parameter_defaults(type)) out[key] = value;
  if (given != nullptr && given->is_object()) {
    for (auto it = given->begin(); it != given->end(); ++it) {
      // Keep the store type's spelling for known parameters (they are case sensitive on the agent side).
      std::string key = it.key();
      for (auto d = out.begin(); d != out.end(); ++d) {
        if (iequals(d.key(), key)) key = d.key();
      }
      out[key] = it.value();
    }
  }
  return out;
}

namespace {

// Keyfactor's C agent (AgentPlatform 5), reference 11.4: each member below is one it reads.
Json native_job_configuration(const Job& job, const Store& store, std::int64_t job_history_id,
                              EndpointWriter& endpoints) {
  const std::string family(route_family(job.kind));
  const Json store_password = property_or_null(store, "StorePassword");
  Json c = Json::object();
  c["AuditId"] = job_history_id;  // a JSON number: a string would read as 0
  c["JobCancelled"] = job.state == JobState::kCancelled;
  c["Result"] = result_success();
  switch (job.kind) {
    case JobKind::kInventory: {
      c["InventoryEndpoint"] = endpoints.url(family + "/Update");  // without it no update is sent
      Json j = Json::object();
      j["ClientMachine"] = store.client_machine;
      j["StorePath"] = store.store_path;
      j["StorePassword"] = store_password;
      j["Category"] = store_type_info(store.type).id;
      j["Inventory"] = last_inventory(store);  // every Alias a string (compared without a NULL check)
      c["Job"] = std::move(j);
      break;
    }
    case JobKind::kAdd:
    case JobKind::kRemove: {
      const bool add = job.kind == JobKind::kAdd;
      const Json pfx_password = add ? payload_value(job, "PrivateKeyPassword") : Json(nullptr);
      const std::string thumbprint = get_string(job.payload, "Thumbprint").value_or("");
      std::string alias = get_string(job.payload, "Alias").value_or("");
      if (add && alias.empty()) alias = to_lower(thumbprint);  // the C agent's aliases: lower-case SHA-1
      Json j = Json::object();
      j["OperationType"] = add ? 2 : 3;
      j["ClientMachine"] = store.client_machine;
      j["StorePath"] = store.store_path;
      j["StorePassword"] = store_password;
      j["StoreType"] = store_type_info(store.type).id;
      j["Category"] = store_type_info(store.type).id;
      j["Alias"] = alias;  // Remove: the SHA-1 thumbprint, required
      j["PrivateKeyEntry"] = add && !pfx_password.is_null();
      j["EntryPassword"] = nullptr;
      j["Thumbprint"] = add && !thumbprint.empty() ? Json(thumbprint) : Json(nullptr);
      j["EntryContents"] = add ? Json(get_string(job.payload, "Contents").value_or("")) : Json("");  // Add: base64 DER
      j["PfxPassword"] = pfx_password;
      j["Overwrite"] = payload_value(job, "Overwrite").is_boolean() ? payload_value(job, "Overwrite") : Json(false);
      j["Properties"] = native_properties_string(store);
      c["Job"] = std::move(j);
      break;
    }
    case JobKind::kReenrollment: {
      c["Subject"] = get_string(job.payload, "SubjectText").value_or("");
      const std::string key_type = get_string(job.payload, "KeyType").value_or("");
      c["KeyType"] = key_type.empty() ? std::string("RSA") : key_type;
      const Json key_size = payload_value(job, "KeySize");
      if (key_size.is_string() && !key_size.get<std::string>().empty() &&
          key_size.get<std::string>().find_first_not_of("0123456789") == std::string::npos &&
          key_size.get<std::string>().size() <= 6) {
        c["KeySize"] = std::stoi(key_size.get<std::string>());
      } else {
        c["KeySize"] = key_size.is_number_integer() ? key_size : Json(2048);
      }
      c["Entropy"] = nullptr;
      c["ClientMachine"] = store.client_machine;
      c["StorePath"] = store.store_path;
      c["StorePassword"] = store_password;
      c["EnrollEndpoint"] = endpoints.url(family + "/Enroll");
      c["Properties"] = native_properties_string(store);
      break;
    }
  }
  if (const Json* patch = find_ci(job.payload, "ConfigurationPatch"); patch != nullptr && patch->is_object())
    c.merge_patch(*patch);
  return c;
}

}  // namespace

Json job_configuration(const Job& job, const Store& store, std::int64_t job_history_id, EndpointWriter& endpoints,
                       bool native, CapabilityIn capability_in) {
  if (native) return native_job_configuration(job, store, job_history_id, endpoints);
  const bool cancelled = job.state == JobState::kCancelled;
  const std::string family(route_family(job.kind));
  Json c = Json::object();
  // The C agent's envelope (AuditId = JobHistoryId).
  c["AuditId"] = job_history_id;
  c["Result"] = result_success();
  // The Universal Orchestrator's *JobConfiguration (fixtures/jobs/*.json).
  c["LastInventory"] = last_inventory(store);
  Json details = Json::object();
  details["ClientMachine"] = store.client_machine;
  details["StorePath"] = store.store_path;
  details["StorePassword"] = job.kind == JobKind::kInventory ? Json("") : Json(nullptr);
  details["Properties"] = properties_string(store);
  details["Type"] = store_type_info(store.type).id;
  c["CertificateStoreDetails"] = std::move(details);
  switch (job.kind) {
    case JobKind::kInventory:
      break;
    case JobKind::kAdd: {
      c["OperationType"] = 2;
      c["Overwrite"] = payload_value(job, "Overwrite").is_boolean() ? payload_value(job, "Overwrite") : Json(false);
      Json cert = Json::object();
      cert["Thumbprint"] = payload_value(job, "Thumbprint");
      cert["Contents"] = payload_value(job, "Contents");
      cert["Alias"] = get_string(job.payload, "Alias").value_or("");
      cert["PrivateKeyPassword"] = payload_value(job, "PrivateKeyPassword");
      c["JobCertificate"] = std::move(cert);
      break;
    }
    case JobKind::kRemove: {
      c["OperationType"] = 3;
      c["Overwrite"] = false;
      Json cert = Json::object();
      cert["Thumbprint"] = nullptr;
      cert["Contents"] = "";
      cert["Alias"] = get_string(job.payload, "Alias").value_or("");
      cert["PrivateKeyPassword"] = nullptr;
      c["JobCertificate"] = std::move(cert);
      break;
    }
    case JobKind::kReenrollment: {
      c["Alias"] = get_string(job.payload, "Alias").value_or("");
      c["Overwrite"] = payload_value(job, "Overwrite").is_boolean() ? payload_value(job, "Overwrite") : Json(false);
      const Json sans = payload_value(job, "SANs");
      c["SANs"] = sans.is_object() ? sans : Json::object();
      break;
    }
  }
  c["JobCancelled"] = cancelled;
  c["ServerError"] = nullptr;
  c["JobHistoryId"] = job_history_id;
  c["RequestStatus"] = 1;
  // The extension uses these top-level copies (PAM-resolved in the UO), not the ones inside Properties.
  c["ServerUsername"] = property_or_null(store, "ServerUsername");
  c["ServerPassword"] = property_or_null(store, "ServerPassword");
  c["UseSSL"] = !iequals(get_string(store.properties, "ServerUseSsl").value_or("true"), "false");
  switch (job.kind) {
    case JobKind::kInventory:
      c["JobProperties"] = nullptr;
      c["InventoryEndpoint"] = endpoints.url(family + "/Update");
      break;
    case JobKind::kAdd:
    case JobKind::kRemove:
      c["JobProperties"] = entry_parameters(store.type, find_ci(job.payload, "EntryParameters"));
      break;
    case JobKind::kReenrollment: {
      Json props = entry_parameters(store.type, find_ci(job.payload, "EntryParameters"));
      props["subjectText"] = payload_value(job, "SubjectText");
      props["keyType"] = payload_value(job, "KeyType");
      props["keySize"] = payload_value(job, "KeySize");
      if (const Json* provider = find_ci(job.payload, "ProviderName")) props["ProviderName"] = *provider;
      if (const Json* san = find_ci(job.payload, "SAN")) props["SAN"] = *san;
      c["JobProperties"] = std::move(props);
      c["EnrollEndpoint"] = endpoints.url(family + "/Enroll");
      break;
    }
  }
  c["JobTypeId"] = job_type_id(store.type, job.kind);
  c["JobId"] = job.id;
  if (capability_in != CapabilityIn::kNowhere) {
    c["Capability"] = capability_name(store.type, job.kind);
    // Test knob (admin "Capability"): a capability the agent may not know.
    if (const Json* cap = find_ci(job.payload, "CapabilityOverride"); cap != nullptr && cap->is_string())
      c["Capability"] = *cap;
  }
  // Test knob (admin "ConfigurationPatch"): a malformed configuration.
  if (const Json* patch = find_ci(job.payload, "ConfigurationPatch"); patch != nullptr && patch->is_object())
    c.merge_patch(*patch);  // RFC 7386: members set (null removes one)
  return c;
}

}  // namespace wincert::sim::command
