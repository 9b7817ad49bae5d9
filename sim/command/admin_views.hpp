// How the admin API shows the simulator's records: PascalCase JSON like Command's REST API, with
// secrets (store passwords, PFX contents and passwords) redacted.
#pragma once

#include <cstddef>

#include "sim/command/json_util.hpp"
#include "sim/command/state.hpp"

namespace wincert::sim::command {

Json agent_json(const Agent& agent, std::size_t sessions);
Json store_json(const Store& store);
// store may be null (deleted); agent is the store's orchestrator, null when it has not registered.
// HandedOut / WithheldBecause: whether its next job list carries the job (job_withheld_reason).
Json job_json(const Job& job, const Store* store, const Agent* agent);
Json history_json(const HistoryEntry& entry);
Json inventory_json(const Store& store);
Json issued_json(const IssuedRecord& record);
// Every store type: Name, Id, and per family (Inventory, Management, Reenrollment) its Capability and
// JobTypeId, the GUID the job list names its jobs by (an agent may map GUIDs to capabilities with it).
Json store_types_json();

}  // namespace wincert::sim::command
