#include "jobs/job_result.hpp"

namespace wincert::jobs {

std::string_view job_status_name(JobStatus status) {
  switch (status) {
    case JobStatus::kSuccess:
      return "Success";
    case JobStatus::kWarning:
      return "Warning";
    case JobStatus::kFailure:
      return "Failure";
    case JobStatus::kUnknown:
      return "Unknown";
  }
  return "Unknown";
}

nlohmann::ordered_json to_json(const JobResult& result) {
  nlohmann::ordered_json j;
  j["Result"] = static_cast<int>(result.status);
  j["JobHistoryId"] = result.job_history_id;
  j["FailureMessage"] = result.message;
  return j;
}

nlohmann::ordered_json to_json(const InventoryItem& item) {
  nlohmann::ordered_json j;
  j["Alias"] = item.alias;
  j["PrivateKeyEntry"] = item.private_key_entry;
  j["ItemStatus"] = static_cast<int>(item.item_status);
  j["UseChainLevel"] = item.use_chain_level;
  j["Certificates"] = item.certificates;
  nlohmann::ordered_json params = nlohmann::ordered_json::object();
  for (const auto& [key, value] : item.parameters) params[key] = value;
  j["Parameters"] = std::move(params);
  return j;
}

nlohmann::ordered_json to_json(const std::vector<InventoryItem>& items) {
  nlohmann::ordered_json j = nlohmann::ordered_json::array();
  for (const auto& item : items) j.push_back(to_json(item));
  return j;
}

namespace {
std::string where(const JobLabel& label) {
  std::string out = " on store '" + label.store_path + "' at host '" + label.host + "'";
  if (!label.job_id.empty()) out += " (job " + label.job_id + ")";
  return out;
}
}  // namespace

std::string failure_message(const JobLabel& label, std::string_view detail) {
  return label.job_kind + " failed" + where(label) + ": " + std::string(detail);
}

std::string outcome_message(const JobLabel& label, std::string_view detail) {
  return label.job_kind + where(label) + ": " + std::string(detail);
}

}  // namespace wincert::jobs
