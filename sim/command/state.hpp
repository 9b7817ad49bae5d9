// What the simulated Command remembers: orchestrators (agents), certificate stores with their current
// inventory, scheduled jobs, job history and issued certificates. Persisted in SQLite under --state DIR
// (state_db.hpp), each request's changes in one transaction, so a restart keeps everything but sessions, OAuth
// tokens, counters and faults (those live in memory on purpose: a restart invalidates sessions the way
// a Command failover would, which agents must survive).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "sim/command/json_util.hpp"
#include "sim/command/schedule.hpp"

namespace wincert::sim::command {

// Agent status as GET /Agents reports it.
enum class AgentStatus { kNew = 1, kApproved = 2, kDisapproved = 3 };
std::string_view agent_status_name(AgentStatus status);

// Admin "SetAuthCertificateReenrollment": request (A0100007, session granted) or require (A0100008, refused).
enum class AuthCertRenewal { kNone = 0, kRequest = 1, kRequire = 2 };

struct Agent {
  std::string id;  // lowercase GUID
  std::string client_machine;
  std::string username;  // the identity that authenticated its last registration
  int platform = 0;
  std::uint64_t version = 0;
  AgentStatus status = AgentStatus::kNew;
  std::vector<std::string> capabilities;
  std::vector<std::string> approved_capabilities;
  AuthCertRenewal auth_cert_renewal = AuthCertRenewal::kNone;
  std::string thumbprint;  // of the last agent authentication certificate we issued
  Json client_parameters = Json::object();
  std::string created;
  std::string last_seen;
};

// WinCert, IISU, WinSql: the Windows extension's custom store types. PEM: the built-in store type of
// Keyfactor's C agent (AgentPlatform 5; a PEM file on the agent's own host, reference 11.3/11.6).
enum class StoreType { kWinCert = 0, kIisu = 1, kWinSql = 2, kPem = 3 };
struct StoreTypeInfo {
  StoreType type;
  std::string_view name;  // the store type's ShortName = capability part
  int id;                 // Command's numeric store-type id (CertificateStoreDetails.Type)
};
const StoreTypeInfo& store_type_info(StoreType type);
const std::vector<StoreTypeInfo>& all_store_types();
std::optional<StoreType> parse_store_type(std::string_view name);

struct InventoryItem {
  std::string alias;
  bool private_key_entry = false;
  bool use_chain_level = false;
  int item_status = 0;                    // as submitted (0 Unknown = full snapshot)
  std::vector<std::string> certificates;  // base64 DER, leaf first
  std::vector<std::string> thumbprints;   // SHA-1 of each certificate, uppercase hex
  Json parameters;                        // entry-parameter values, null when absent
};

struct Store {
  std::string id;  // lowercase GUID
  StoreType type = StoreType::kWinCert;
  std::string client_machine;
  std::string store_path;
  Json properties = Json::object();  // custom fields, values as strings (or null), sent as a JSON string
  std::string agent_id;              // empty until the orchestrator named below registers
  std::string orchestrator;          // the agent's ClientMachine, for stores created before it registered
  std::string created;
  std::vector<InventoryItem> inventory;
  std::string inventory_updated;
  std::int64_t inventory_run = 0;  // JobHistoryId of the snapshot the inventory holds (chunked snapshots)
};

enum class JobKind { kInventory, kAdd, kRemove, kReenrollment };
std::string_view job_kind_name(JobKind kind);  // "Inventory", "Add", "Remove", "Reenrollment"
std::optional<JobKind> parse_job_kind(std::string_view text);
// "Inventory", "Management" or "Reenrollment": the capability's last part and the endpoint family.
std::string_view job_family(JobKind kind);
std::string capability_name(StoreType store, JobKind kind);  // "CertStores.IISU.Management", "...ReEnrollment"
// The job-type GUID of a store type's family (reference 11.3). PEM: the fixed GUIDs Keyfactor's C agent
// dispatches by (CAP_PEM_INVENTORY, ...). Others: a name-based UUID (version 5, SHA-1) of
// "CertStores.<ShortName>.<Family>" in command-sim's namespace, so stable across runs and versions.
std::string job_type_id(StoreType store, JobKind kind);
int job_priority(JobKind kind);  // Add 3 (reference 3.1), then 4, inventory 5

enum class JobState { kScheduled, kDone, kCancelled };
std::string_view job_state_name(JobState state);

struct Job {
  std::string id;  // lowercase GUID
  JobKind kind = JobKind::kInventory;
  std::string store_id;
  Schedule schedule;
  Json payload = Json::object();  // kind-specific fields, see admin_api.cpp
  JobState state = JobState::kScheduled;
  std::string created;
  std::int64_t open_run = 0;  // JobHistoryId handed out with a configuration, not completed yet
  std::string open_run_started;
  int runs = 0;  // completed runs
  std::string cancelled_at;
};

struct HistoryEntry {
  std::int64_t job_history_id = 0;
  std::string job_id;
  std::string store_id;
  std::string agent_id;
  std::string agent_machine;
  std::string client_machine;
  std::string store_path;
  std::string job_type;   // "Inventory", "Management", "Reenrollment"
  std::string operation;  // "Inventory", "Add", "Remove", "Reenrollment"
  std::string capability;
  std::string schedule;
  std::string operation_start;
  std::string operation_end;
  int status = 0;      // what the agent sent: 2 Success, 3 Warning, 4 Failure (0 Unknown)
  std::string result;  // "Success", "Warning", "Failure", "Unknown"
  std::string message;
  bool cancelled = false;  // the job had been cancelled when this completion arrived
};

struct IssuedRecord {
  std::string purpose;  // "reenrollment", "agent-authentication", "pfx"
  std::string thumbprint;
  std::string serial;
  std::string subject;
  std::vector<std::string> sans;  // "dns:www.example.com"
  std::string not_after;
  std::string issued_at;
  std::string job_id;
  std::string store_id;
  std::string agent_id;
  std::int64_t job_history_id = 0;
  std::string certificate;  // base64 DER
};

struct State {
  std::map<std::string, Agent> agents;  // by id
  std::map<std::string, Store> stores;
  std::map<std::string, Job> jobs;
  std::map<std::int64_t, HistoryEntry> history;  // by JobHistoryId
  std::vector<IssuedRecord> issued;
  std::int64_t next_history_id = 1000;

  Agent* find_agent(std::string_view id);
  Agent* find_agent_by_machine(std::string_view client_machine);
  Store* find_store(std::string_view id);
  Job* find_job(std::string_view id);
  // The agent a store's jobs go to (bound by id, or by the orchestrator name it was created for).
  bool store_belongs_to(const Store& store, const Agent& agent) const;

  Json to_json() const;
  static Result<State> from_json(const Json& doc);
};

// Why `job` is not in the job list `agent` gets at its next registration, "" when it is. A job is listed
// when it is scheduled, its orchestrator is approved, and the job's capability (capability_name, not the
// CapabilityOverride test knob) is one the orchestrator registered, matched case-insensitively: a job the
// agent cannot run would stay pending forever (Keyfactor's C agent drops such entries silently). `agent`
// is the store's orchestrator, null when it has not registered yet.
std::string job_withheld_reason(const Job& job, const Store& store, const Agent* agent);

// One record as the JSON document the state database keeps in its `doc` column (members as they are,
// enums by name), and back: a type mismatch is an Error. A Store's document leaves out its inventory
// (rows of their own). Defined for Agent, Store, InventoryItem, Job, HistoryEntry and IssuedRecord.
template <class Record>
Json to_document(const Record& record);
template <>
Json to_document(const Store& store);
template <class Record>
Result<Record> from_document(const Json& doc);

// STATE_DIR/state.json: the single document older command-sims kept, now read once to import it.
class StateFile {
 public:
  explicit StateFile(std::string dir);
  Result<State> load() const;  // a missing file is an empty state
  Status save(const State& state) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace wincert::sim::command
