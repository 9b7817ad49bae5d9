// Which capability a job from Command is, when Command does not say it by name.
//
// A job is dispatched by its Capability ("CertStores.WinCert.Inventory"): from the session's job list
// when the entry names it, else from the job configuration. When neither does, its JobTypeId GUID is
// mapped through this table: the JobTypes configured (an administrator copies them from Command's
// certificate store types: InventoryJobType, ManagementJobType, ...), plus what this run learnt from job
// entries and configurations that carried both a JobTypeId and a Capability. Command gives custom store
// types (WinCert, IISU, WinSql) their job-type GUIDs when the store type is created, so no GUID for them
// can be built in (../shared/reference/orchestrators-api.md 11.7). Keyfactor's C agent's fixed GUIDs
// (PEM, its built-in store types) are recognised for the message only: wincert-agent has no handler for
// them.
//
// A job that still has no capability is never dropped: the caller completes it as a Failure with
// undispatchable_message(), which names the JobTypeId and what to configure.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace wincert::agent {

class JobTypeTable {
 public:
  JobTypeTable() = default;
  // `configured`: JobTypeId -> capability name (the configuration's JobTypes; keys in any case).
  explicit JobTypeTable(const std::map<std::string, std::string>& configured);

  // Remembers a pairing Command showed (a job entry or configuration with both members). A configured
  // entry wins over a learnt one; empty or malformed ids are ignored. Returns true when it was new.
  bool learn(std::string_view job_type_id, std::string_view capability);
  // The capability of a JobTypeId (case-insensitive), or nullopt.
  std::optional<std::string> capability_for(std::string_view job_type_id) const;
  std::size_t size() const { return by_id_.size(); }

 private:
  std::map<std::string, std::string> by_id_;  // lower-case GUID -> capability
  std::map<std::string, bool> configured_;    // lower-case GUID -> from the configuration
};

// Keyfactor's C agent's job type ("PEM inventory", "IIS management", ...) for its fixed GUIDs, else nullopt.
std::optional<std::string_view> native_job_type_name(std::string_view job_type_id);

// Why a job with no capability cannot be run, for its Failure completion and the log.
std::string undispatchable_message(std::string_view job_type_id);

// A configuration in the shape Command sends Keyfactor's C agent (AgentPlatform 5): a "Job" wrapper
// holding StorePath/OperationType/Inventory without CertificateStoreDetails, or a flat reenrollment with
// Subject/KeyType/EnrollEndpoint. Returns a description of the shape, else nullopt. wincert-agent
// cannot run that shape (no store properties, entry parameters or credentials): the job fails naming it.
std::optional<std::string> native_configuration_shape(const nlohmann::ordered_json& config);

}  // namespace wincert::agent
