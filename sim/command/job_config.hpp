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

// AgentPlatform 5, Keyfactor's C agent: it reads its own shape (reference 11.3/11.4), chosen per agent.
// Every other platform (1 .NET / Universal Orchestrator, ...) gets the Universal Orchestrator's shape.
inline constexpr int kNativeAgentPlatform = 5;
inline bool native_agent(const Agent& agent) { return agent.platform == kNativeAgentPlatform; }

// Job endpoint routes below the base path.
std::string_view route_family(JobKind kind);  // "CertStoreInventory", "CertStoreManagement", "CertStoreReenrollment"

class EndpointWriter {
 public:
  // origin: "http://127.0.0.1:8080" (for absolute URLs when no public URL is configured).
  // native: for a platform-5 agent, which cannot use absolute URLs (reference 11.4): those become rooted.
  EndpointWriter(Runtime& runtime, std::string origin, bool native = false)
      : runtime_(runtime), origin_(std::move(origin)), native_(native) {}
  // "CertStoreInventory/Configuration" -> "KeyfactorAgents/CertStoreInventory/Configuration" (or rooted/absolute).
  std::string url(std::string_view route);

 private:
  Runtime& runtime_;
  std::string origin_;
  bool native_ = false;
};

// {"AuditId"..} envelope helpers: Result with Status 1 and no Error.
Json result_success();
// Status 2 (Warning) or 3 (Error) with an error object; code_string like "A0100007", or empty for a
// refusal with no documented code (agent_api.hpp).
Json result_with_error(int status, std::string_view code_string, const std::string& message);

// One entry of Session.Jobs; native (platform 5): without Capability, which the C agent never reads.
// `capability_in` (a UO only): whether the entry names its Capability (Settings::capability_in).
Json session_job_entry(const Job& job, const Store& store, EndpointWriter& endpoints, bool native = false,
                       CapabilityIn capability_in = CapabilityIn::kBoth);
// The configuration of one run of a job: the Universal Orchestrator's shape, or for a native agent
// (platform 5) exactly what Keyfactor's C agent reads (reference 11.4): the envelope AuditId,
// JobCancelled, Result; a Job wrapper for inventory (+ InventoryEndpoint) and management; flat
// reenrollment (+ EnrollEndpoint); Properties always a JSON string holding separatePrivateKey and
// privateKeyPath.
Json job_configuration(const Job& job, const Store& store, std::int64_t job_history_id, EndpointWriter& endpoints,
                       bool native = false, CapabilityIn capability_in = CapabilityIn::kBoth);
// The store's custom fields for a native agent: properties_string() plus separatePrivateKey ("false") and
// privateKeyPath ("") when the store has none (the C agent crashes on a reenrollment without the first).
std::string native_properties_string(const Store& store);
// The store's entry parameters with the store type's defaults, overridden by `given` (case-insensitive keys).
Json entry_parameters(StoreType type, const Json* given);
// The store's custom fields as Command sends them: one JSON object serialized into a string.
std::string properties_string(const Store& store);

}  // namespace wincert::sim::command
