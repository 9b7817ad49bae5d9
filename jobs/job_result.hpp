// What a job hands back: the UO's JobResult (status, JobHistoryId, message for Command's job
// history) and the inventory items (CurrentInventoryItem) an inventory job submits.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
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
  // A failure's cause as data: the code and detail of the Error that ended the job (empty when the
  // failure has no Error behind it, and for success and warning). What retries and metrics act on.
  std::optional<ErrorCode> error_code;
  ErrorDetail error_detail;
  int attempts = 1;  // how many times the job was run (1 + its retries of transient failures)

  // The failure was transient (host unreachable, timeout, 503, quota): worth running again later.
  bool retryable() const { return status == JobStatus::kFailure && error_code && is_transient(*error_code); }

  static JobResult success(std::int64_t history_id, std::string message = {}) {
    return make(JobStatus::kSuccess, history_id, std::move(message));
  }
  static JobResult warning(std::int64_t history_id, std::string message) {
    return make(JobStatus::kWarning, history_id, std::move(message));
  }
  static JobResult failure(std::int64_t history_id, std::string message) {
    return make(JobStatus::kFailure, history_id, std::move(message));
  }
  // A failure caused by `cause`: keeps its code and detail; `message` is what Command shows.
  static JobResult failure(std::int64_t history_id, std::string message, const Error& cause) {
    JobResult result = make(JobStatus::kFailure, history_id, std::move(message));
    result.error_code = cause.code;
    result.error_detail = cause.detail;
    return result;
  }

 private:
  static JobResult make(JobStatus status, std::int64_t history_id, std::string message) {
    JobResult result;
    result.status = status;
    result.job_history_id = history_id;
    result.message = std::move(message);
    return result;
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
  std::string job_kind;    // "Inventory", "Management Add", "Reenrollment"
  std::string store_path;  // "My"
  std::string host;        // "web01"
  std::string job_id;
};
// "Management Add failed on store 'My' at host 'web01' (job 5f5a...): <detail>"
std::string failure_message(const JobLabel& label, std::string_view detail);
// "Management Add on store 'My' at host 'web01' (job 5f5a...): <detail>"
std::string outcome_message(const JobLabel& label, std::string_view detail);

}  // namespace wincert::jobs
