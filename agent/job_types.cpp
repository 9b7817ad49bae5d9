#include "agent/job_types.hpp"

#include <array>
#include <cctype>
#include <utility>

#include "agent/command_client.hpp"
#include "common/encoding.hpp"

namespace wincert::agent {

namespace {

// A GUID as Command writes it (36 characters, hex and dashes), lower-cased; "" when it is not one.
std::string guid_key(std::string_view text) {
  text = trim(text);
  if (text.size() != 36) return {};
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? c != '-' : !std::isxdigit(static_cast<unsigned char>(c))) return {};
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  if (out == "00000000-0000-0000-0000-000000000000") return {};  // the UO fixtures' placeholder
  return out;
}

// Keyfactor-CAgent constants.h (reference 11.3).
constexpr std::array<std::pair<std::string_view, std::string_view>, 21> kNativeJobTypes{{
    {"a809ce1f-1eea-4738-a38e-15708c89c981", "PEM inventory"},
    {"1d411b36-ae72-433f-9f3f-8593e836a1af", "PEM management"},
    {"aa015d10-cffc-41f7-a9a4-c9615f6f3bdf", "PEM reenrollment"},
    {"0d8cf0c8-56ca-4b8a-b16a-c062018e170d", "fetch logs"},
    {"e98151de-53ad-4b99-b52a-f37118ec0c5c", "PEM discovery"},
    {"afb8c78d-1436-4c93-a8e7-0218c2cb6955", "AWS inventory"},
    {"56c1e4f9-366c-44b3-8cae-1b8f39e2026c", "AWS management"},
    {"9b04e8de-e2ce-4a50-bd3f-31037d3ee751", "F5 inventory"},
    {"e9a34338-c99f-46da-94d2-4f97dc6943af", "F5 management"},
    {"76f99194-c129-4954-b76e-11c80816643e", "FTP inventory"},
    {"4ae72d54-7f91-4359-9da5-e1f633031070", "FTP management"},
    {"5b9cf048-e95f-4331-a510-0cdfabac1703", "IIS inventory"},
    {"ce2325e3-801c-4576-9b0a-5fdcaf66aa88", "IIS management"},
    {"b80019d6-df3d-4a8c-9e60-1977b806f545", "IIS reenrollment"},
    {"74d9f7c5-b2ac-4f21-a72b-29b5adc90651", "JKS discovery"},
    {"67b63010-d738-47c3-87a2-9f289466c881", "JKS inventory"},
    {"b614f9e2-c56b-421c-b548-03d42eb32f8a", "JKS management"},
    {"48743e90-108e-4dc3-b81c-7fb830215d1f", "JKS reenrollment"},
    {"78ff1c19-893f-4e5e-90a5-0459f1823778", "NetScaler inventory"},
    {"b7c94ad1-8a33-45ea-98b3-d77ca14e7830", "NetScaler management"},
    {"c0ffee00-feed-f00d-cafe-c0ffeec0ffee", "empty session"},
}};

}  // namespace

JobTypeTable::JobTypeTable(const std::map<std::string, std::string>& configured) {
  for (const auto& [id, capability] : configured) {
    const std::string key = guid_key(id);
    if (key.empty() || trim(capability).empty()) continue;
    by_id_[key] = std::string(trim(capability));
    configured_[key] = true;
  }
}

bool JobTypeTable::learn(std::string_view job_type_id, std::string_view capability) {
  const std::string key = guid_key(job_type_id);
  capability = trim(capability);
  if (key.empty() || capability.empty() || configured_.contains(key)) return false;
  auto [it, inserted] = by_id_.try_emplace(key, capability);
  if (!inserted && it->second != capability) {
    it->second = std::string(capability);  // Command's latest word
    return true;
  }
  return inserted;
}

std::optional<std::string> JobTypeTable::capability_for(std::string_view job_type_id) const {
  const auto it = by_id_.find(guid_key(job_type_id));
  if (it == by_id_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string_view> native_job_type_name(std::string_view job_type_id) {
  const std::string key = guid_key(job_type_id);
  for (const auto& [id, name] : kNativeJobTypes) {
    if (id == key) return name;
  }
  return std::nullopt;
}

std::string undispatchable_message(std::string_view job_type_id) {
  const std::string id(trim(job_type_id));
  if (id.empty()) {
    return "the job names neither a Capability nor a JobTypeId, in the job list or in its configuration: "
           "wincert-agent cannot tell which kind of job it is";
  }
  if (auto native = native_job_type_name(id)) {
    return "job type " + id + " is Keyfactor's native-agent " + std::string(*native) +
           " job: wincert-agent runs WinCert, IISU and WinSql jobs only (no handler for it)";
  }
  return "job type " + id +
         " is not known to this agent: neither the job list nor the configuration named its Capability, and the "
         "configuration's JobTypes has no entry for it. Add \"JobTypes\": {\"" +
         id +
         "\": \"CertStores.<StoreType>.<Inventory|Management|ReEnrollment>\"} with the job type GUIDs of the "
         "certificate store type in Command";
}

std::optional<std::string> native_configuration_shape(const nlohmann::ordered_json& config) {
  if (!config.is_object() || find_member(config, "CertificateStoreDetails") != nullptr ||
      find_member(config, "Capability") != nullptr)
    return std::nullopt;
  if (const auto* job = find_member(config, "Job"); job != nullptr && job->is_object()) {
    if (find_member(*job, "CertificateStoreDetails") == nullptr && find_member(*job, "Capability") == nullptr &&
        (find_member(*job, "StorePath") != nullptr || find_member(*job, "OperationType") != nullptr)) {
      return "the native agent's (AgentPlatform 5) shape: a \"Job\" wrapper with StorePath and no "
             "CertificateStoreDetails";
    }
    return std::nullopt;
  }
  if (find_member(config, "Subject") != nullptr && find_member(config, "KeyType") != nullptr) {
    return "the native agent's (AgentPlatform 5) flat reenrollment shape: Subject and KeyType with no "
           "CertificateStoreDetails";
  }
  return std::nullopt;
}

}  // namespace wincert::agent
