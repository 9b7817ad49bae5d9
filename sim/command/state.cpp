#include "sim/command/state.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include <openssl/evp.h>

#include "common/encoding.hpp"
#include "sim/command/durable_file.hpp"

namespace wincert::sim::command {

namespace {
// PEM's numeric id is not public; the C agent parses StoreType/Category and never uses them [I].
constexpr std::array<StoreTypeInfo, 4> kStoreTypes = {{
    {StoreType::kWinCert, "WinCert", 104},
    {StoreType::kIisu, "IISU", 105},
    {StoreType::kWinSql, "WinSql", 106},
    {StoreType::kPem, "PEM", 2},
}};
// The namespace of command-sim's name-based job-type GUIDs (a random version 4 UUID, fixed forever).
constexpr std::array<unsigned char, 16> kJobTypeNamespace = {0x3c, 0x0e, 0x5d, 0x8a, 0x71, 0x2b, 0x4f, 0x19,
                                                             0x9a, 0x47, 0x6e, 0xd2, 0x0b, 0x83, 0xc5, 0x56};

// RFC 4122 section 4.3: SHA-1 of namespace + name, version 5, variant 10.
std::string name_based_uuid(std::string_view name) {
  std::string input(reinterpret_cast<const char*>(kJobTypeNamespace.data()), kJobTypeNamespace.size());
  input.append(name);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(input.data(), input.size(), digest, &length, EVP_sha1(), nullptr) != 1 || length < 16)
    throw std::runtime_error("SHA-1 is not available for a job-type GUID");
  digest[6] = static_cast<unsigned char>((digest[6] & 0x0F) | 0x50);
  digest[8] = static_cast<unsigned char>((digest[8] & 0x3F) | 0x80);
  char buf[37];
  std::snprintf(buf, sizeof buf, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", digest[0],
                digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7], digest[8], digest[9],
                digest[10], digest[11], digest[12], digest[13], digest[14], digest[15]);
  return buf;
}
constexpr std::size_t kMaxStateBytes = std::size_t{2} << 30;
}  // namespace

std::string_view agent_status_name(AgentStatus status) {
  switch (status) {
    case AgentStatus::kNew:
      return "New";
    case AgentStatus::kApproved:
      return "Approved";
    case AgentStatus::kDisapproved:
      return "Disapproved";
  }
  return "New";
}

const StoreTypeInfo& store_type_info(StoreType type) { return kStoreTypes[static_cast<std::size_t>(type)]; }

const std::vector<StoreTypeInfo>& all_store_types() {
  static const std::vector<StoreTypeInfo> all(kStoreTypes.begin(), kStoreTypes.end());
  return all;
}

std::optional<StoreType> parse_store_type(std::string_view name) {
  for (const auto& info : kStoreTypes) {
    if (iequals(name, info.name) || name == std::to_string(info.id)) return info.type;
  }
  return std::nullopt;
}

std::string_view job_kind_name(JobKind kind) {
  switch (kind) {
    case JobKind::kInventory:
      return "Inventory";
    case JobKind::kAdd:
      return "Add";
    case JobKind::kRemove:
      return "Remove";
    case JobKind::kReenrollment:
      return "Reenrollment";
  }
  return "Inventory";
}

std::optional<JobKind> parse_job_kind(std::string_view text) {
  for (JobKind k : {JobKind::kInventory, JobKind::kAdd, JobKind::kRemove, JobKind::kReenrollment}) {
    if (iequals(text, job_kind_name(k))) return k;
  }
  if (iequals(text, "ReEnrollment") || iequals(text, "ODKG")) return JobKind::kReenrollment;
  return std::nullopt;
}

std::string_view job_family(JobKind kind) {
  switch (kind) {
    case JobKind::kInventory:
      return "Inventory";
    case JobKind::kAdd:
    case JobKind::kRemove:
      return "Management";
    case JobKind::kReenrollment:
      return "Reenrollment";
  }
  return "Inventory";
}

std::string capability_name(StoreType store, JobKind kind) {
  // Spelled as orchestrators register it (the extension's manifest: "ReEnrollment"); matched case-insensitively.
  const std::string_view job = kind == JobKind::kReenrollment ? std::string_view("ReEnrollment") : job_family(kind);
  return "CertStores." + std::string(store_type_info(store).name) + "." + std::string(job);
}

std::string job_type_id(StoreType store, JobKind kind) {
  if (store == StoreType::kPem) {
    // Keyfactor-CAgent constants.h: CAP_PEM_INVENTORY, CAP_PEM_MANAGEMENT, CAP_PEM_REENROLLMENT.
    switch (kind) {
      case JobKind::kInventory:
        return "a809ce1f-1eea-4738-a38e-15708c89c981";
      case JobKind::kAdd:
      case JobKind::kRemove:
        return "1d411b36-ae72-433f-9f3f-8593e836a1af";
      case JobKind::kReenrollment:
        return "aa015d10-cffc-41f7-a9a4-c9615f6f3bdf";
    }
  }
  return name_based_uuid("CertStores." + std::string(store_type_info(store).name) + "." +
                         std::string(job_family(kind)));
}

int job_priority(JobKind kind) {
  switch (kind) {
    case JobKind::kAdd:
      return 3;
    case JobKind::kReenrollment:
    case JobKind::kRemove:
      return 4;
    case JobKind::kInventory:
      return 5;
  }
  return 5;
}

std::string job_withheld_reason(const Job& job, const Store& store, const Agent* agent) {
  if (job.state != JobState::kScheduled) return "the job is " + std::string(job_state_name(job.state));
  if (agent == nullptr)
    return "no orchestrator named '" + store.orchestrator + "' has registered yet (the store's orchestrator)";
  if (agent->status != AgentStatus::kApproved)
    return "the orchestrator '" + agent->client_machine + "' is " + std::string(agent_status_name(agent->status)) +
           " (only approved orchestrators get jobs)";
  const std::string capability = capability_name(store.type, job.kind);
  const bool registered = std::any_of(agent->capabilities.begin(), agent->capabilities.end(),
                                      [&](const std::string& c) { return iequals(c, capability); });
  if (!registered)
    return "the orchestrator '" + agent->client_machine + "' did not register the capability " + capability;
  return {};
}

std::string_view job_state_name(JobState state) {
  switch (state) {
    case JobState::kScheduled:
      return "Scheduled";
    case JobState::kDone:
      return "Done";
    case JobState::kCancelled:
      return "Cancelled";
  }
  return "Scheduled";
}

// ---- persistence: the members as they are, enums by name

NLOHMANN_JSON_SERIALIZE_ENUM(AgentStatus, {{AgentStatus::kNew, "New"},
                                           {AgentStatus::kApproved, "Approved"},
                                           {AgentStatus::kDisapproved, "Disapproved"}})
NLOHMANN_JSON_SERIALIZE_ENUM(AuthCertRenewal, {{AuthCertRenewal::kNone, "None"},
                                               {AuthCertRenewal::kRequest, "Request"},
                                               {AuthCertRenewal::kRequire, "Require"}})
NLOHMANN_JSON_SERIALIZE_ENUM(StoreType, {{StoreType::kWinCert, "WinCert"},
                                         {StoreType::kIisu, "IISU"},
                                         {StoreType::kWinSql, "WinSql"},
                                         {StoreType::kPem, "PEM"}})
NLOHMANN_JSON_SERIALIZE_ENUM(JobKind, {{JobKind::kInventory, "Inventory"},
                                       {JobKind::kAdd, "Add"},
                                       {JobKind::kRemove, "Remove"},
                                       {JobKind::kReenrollment, "Reenrollment"}})
NLOHMANN_JSON_SERIALIZE_ENUM(JobState, {{JobState::kScheduled, "Scheduled"},
                                        {JobState::kDone, "Done"},
                                        {JobState::kCancelled, "Cancelled"}})

void to_json(Json& j, const Schedule& s) { j = s.text(); }
void from_json(const Json& j, Schedule& s) {
  auto parsed = parse_schedule_string(j.is_string() ? j.get<std::string>() : std::string());
  if (!parsed) throw std::invalid_argument(parsed.error().message);
  s = std::move(parsed.value());
}

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Agent, id, client_machine, username, platform, version, status,
                                                capabilities, approved_capabilities, auth_cert_renewal, thumbprint,
                                                client_parameters, created, last_seen)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(InventoryItem, alias, private_key_entry, use_chain_level, item_status,
                                                certificates, thumbprints, parameters)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Store, id, type, client_machine, store_path, properties, agent_id,
                                                orchestrator, created, inventory, inventory_updated, inventory_run)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Job, id, kind, store_id, schedule, payload, state, created, open_run,
                                                open_run_started, runs, cancelled_at)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(HistoryEntry, job_history_id, job_id, store_id, agent_id, agent_machine,
                                                client_machine, store_path, job_type, operation, capability, schedule,
                                                operation_start, operation_end, status, result, message, cancelled)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(IssuedRecord, purpose, thumbprint, serial, subject, sans, not_after,
                                                issued_at, job_id, store_id, agent_id, job_history_id, certificate)

// ---- records as documents (the state database's rows)

template <class Record>
Json to_document(const Record& record) {
  return Json(record);
}
template <>
Json to_document(const Store& store) {
  Json doc = store;
  doc.erase("inventory");
  return doc;
}

template <class Record>
Result<Record> from_document(const Json& doc) {
  try {
    return doc.get<Record>();
  } catch (const std::exception& e) {
    return Error::invalid_argument(std::string("a record of the state is damaged: ") + e.what());
  }
}

template Json to_document(const Agent&);
template Json to_document(const InventoryItem&);
template Json to_document(const Job&);
template Json to_document(const HistoryEntry&);
template Json to_document(const IssuedRecord&);
template Result<Agent> from_document(const Json&);
template Result<Store> from_document(const Json&);
template Result<InventoryItem> from_document(const Json&);
template Result<Job> from_document(const Json&);
template Result<HistoryEntry> from_document(const Json&);
template Result<IssuedRecord> from_document(const Json&);

// ---- lookups

Agent* State::find_agent(std::string_view id) {
  auto it = agents.find(to_lower(id));
  return it == agents.end() ? nullptr : &it->second;
}

Agent* State::find_agent_by_machine(std::string_view client_machine) {
  for (auto& [id, agent] : agents) {
    if (iequals(agent.client_machine, client_machine)) return &agent;
  }
  return nullptr;
}

Store* State::find_store(std::string_view id) {
  auto it = stores.find(to_lower(id));
  return it == stores.end() ? nullptr : &it->second;
}

Job* State::find_job(std::string_view id) {
  auto it = jobs.find(to_lower(id));
  return it == jobs.end() ? nullptr : &it->second;
}

bool State::store_belongs_to(const Store& store, const Agent& agent) const {
  if (!store.agent_id.empty()) return same_id(store.agent_id, agent.id);
  return !store.orchestrator.empty() && iequals(store.orchestrator, agent.client_machine);
}

Json State::to_json() const {
  Json doc = Json::object();
  doc["format"] = 1;
  doc["next_history_id"] = next_history_id;
  Json list = Json::array();
  for (const auto& [id, a] : agents) list.push_back(a);
  doc["agents"] = std::move(list);
  list = Json::array();
  for (const auto& [id, s] : stores) list.push_back(s);
  doc["stores"] = std::move(list);
  list = Json::array();
  for (const auto& [id, j] : jobs) list.push_back(j);
  doc["jobs"] = std::move(list);
  list = Json::array();
  for (const auto& [id, h] : history) list.push_back(h);
  doc["history"] = std::move(list);
  doc["issued"] = issued;
  return doc;
}

Result<State> State::from_json(const Json& doc) {
  // The file is ours, but a person may have edited it: a type mismatch is an Error, not a crash.
  try {
    State s;
    s.next_history_id = doc.value("next_history_id", std::int64_t{1000});
    for (const auto& a : doc.value("agents", Json::array())) {
      auto agent = a.get<Agent>();
      s.agents[to_lower(agent.id)] = std::move(agent);
    }
    for (const auto& st : doc.value("stores", Json::array())) {
      auto store = st.get<Store>();
      s.stores[to_lower(store.id)] = std::move(store);
    }
    for (const auto& j : doc.value("jobs", Json::array())) {
      auto job = j.get<Job>();
      s.jobs[to_lower(job.id)] = std::move(job);
    }
    for (const auto& h : doc.value("history", Json::array())) {
      auto entry = h.get<HistoryEntry>();
      s.next_history_id = std::max(s.next_history_id, entry.job_history_id + 1);
      s.history[entry.job_history_id] = std::move(entry);
    }
    for (const auto& [id, job] : s.jobs) s.next_history_id = std::max(s.next_history_id, job.open_run + 1);
    s.issued = doc.value("issued", std::vector<IssuedRecord>{});
    return s;
  } catch (const std::exception& e) {
    return Error::invalid_argument(std::string("the state file is damaged: ") + e.what());
  }
}

StateFile::StateFile(std::string dir) : path_((std::filesystem::path(dir) / "state.json").string()) {}

Result<State> StateFile::load() const {
  std::error_code ec;
  if (!std::filesystem::exists(path_, ec)) return State{};
  WINCERT_ASSIGN_OR_RETURN(auto text, read_small_file(path_, kMaxStateBytes));
  auto doc = parse_json(text);
  if (!doc) return Error::invalid_argument(path_ + " is not valid JSON");
  auto state = State::from_json(*doc);
  if (!state) return state.error().context(path_ + ": ");
  return state;
}

Status StateFile::save(const State& state) const {
  return write_file_durably(path_, dump_json(state.to_json(), 1) + "\n");
}

}  // namespace wincert::sim::command
