// The JSON an agent receives for its jobs: the Session's job entries (reference 3.1) and the per-job
// configuration in the Universal Orchestrator's shape (reference 3.3 / fixtures/jobs/*.json):
// CertificateStoreDetails with Properties as a JSON *string*, JobProperties, JobCertificate,
// OperationType (Add 2, Remove 3), plus the C-agent envelope fields AuditId/JobCancelled/Result and the
// endpoints the job needs (InventoryEndpoint, EnrollEndpoint).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "sim/command/runtime.hpp"

namespace wincert::sim::command {

// Job endpoint routes below the base path.
std::string_view route_family(JobKind kind);  // "CertStoreInventory", "CertStoreManagement", "CertStoreReenrollment"

class EndpointWriter {
 public:
  // origin: "http://127.0.0.1:8080" (for absolute URLs when no public URL is configured).
  EndpointWriter(Runtime& runtime, std::string origin) : runtime_(runtime), origin_(std::move(origin)) {}
  // "CertStoreInventory/Configuration" -> "KeyfactorAgents/CertStoreInventory/Configuration" (or rooted/absolute).
  std::string url(std::string_view route);

 private:
  Runtime& runtime_;
  std::string origin_;
};

// {"AuditId"..} envelope helpers: Result with Status 1 and no Error.
Json result_success();
// Status 2 (Warning) or 3 (Error) with an error object; code_string like "A0100007", or empty for a
// refusal with no documented code (agent_api.hpp).
Json result_with_error(int status, std::string_view code_string, const std::string& message);

// One entry of Session.Jobs.
Json session_job_entry(const Job& job, const Store& store, EndpointWriter& endpoints);
// The configuration of one run of a job.
Json job_configuration(const Job& job, const Store& store, std::int64_t job_history_id, EndpointWriter& endpoints);
// The store's entry parameters with the store type's defaults, overridden by `given` (case-insensitive keys).
Json entry_parameters(StoreType type, const Json* given);
// The store's custom fields as Command sends them: one JSON object serialized into a string.
std::string properties_string(const Store& store);

}  // namespace wincert::sim::command
