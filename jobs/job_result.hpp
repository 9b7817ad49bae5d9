// What a job hands back: the UO's JobResult (status, JobHistoryId, message for Command's job
// history) and the inventory items (CurrentInventoryItem) an inventory job submits.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"

namespace wincert::jobs {

// Keyfactor job completion status numbers (OrchestratorJobStatusJobResult / JobCompleteStatus).
enum class JobStatus : int { kUnknown = 0, kSuccess = 2, kWarning = 3, kFailure = 4 };
std::string_view job_status_name(JobStatus status);  // "Success", "Warning", "Failure", "Unknown"

struct JobResult {
  JobStatus status = JobStatus::kUnknown;
  std::int64_t job_history_id = 0;
  std::string message;  // Command's FailureMessage; never a secret
  bool retryable = false;  // the failure was transient (host unreachable, timeout): worth retrying

  static JobResult success(std::int64_t history_id, std::string message = {}) {
    return {JobStatus::kSuccess, history_id, std::move(message), false};
  }
  static JobResult warning(std::int64_t history_id, std::string message) {
    return {JobStatus::kWarning, history_id, std::move(message), false};
  }
  static JobResult failure(std::int64_t history_id, std::string message) {
    return {JobStatus::kFailure, history_id, std::move(message), false};
  }
};

// {"Result": 2, "JobHistoryId": 26009, "FailureMessage": "..."} as the UO's JobResult serialises.
nlohmann::ordered_json to_json(const JobResult& result);

// OrchestratorInventoryItemStatus; extensions send Unknown (0) and Command reconciles.
enum class ItemStatus : int { kUnknown = 0, kNew = 1, kModified = 2, kDeleted = 3, kUnchanged = 4 };

struct InventoryItem {
  std::string alias;
  bool private_key_entry = false;
  ItemStatus item_status = ItemStatus::kUnknown;
  bool use_chain_level = false;
  std::vector<std::string> certificates;  // base64 DER, leaf first
  // Entry-parameter values in insertion order: SiteName, Port, IPAddress, HostName, SniFlag,
  // Protocol, ProviderName, SAN (IISU); ProviderName, SAN (WinCert); InstanceName, ProviderName (WinSql).
  std::vector<std::pair<std::string, std::string>> parameters;

  bool operator==(const InventoryItem&) const = default;
};

// {"Alias", "PrivateKeyEntry", "ItemStatus", "UseChainLevel", "Certificates", "Parameters"}.
nlohmann::ordered_json to_json(const InventoryItem& item);
nlohmann::ordered_json to_json(const std::vector<InventoryItem>& items);

// Where a job ran, for messages a person can act on.
struct JobLabel {
  std::string job_kind;   // "Inventory", "Management Add", "Reenrollment"
  std::string store_path; // "My"
  std::string host;       // "web01"
  std::string job_id;
};
// "Management Add failed on store 'My' at host 'web01' (job 5f5a...): <detail>"
std::string failure_message(const JobLabel& label, std::string_view detail);
// "Management Add on store 'My' at host 'web01' (job 5f5a...): <detail>"
std::string outcome_message(const JobLabel& label, std::string_view detail);

}  // namespace wincert::jobs
