#include "sim/command/admin_views.hpp"

#include "common/encoding.hpp"

namespace wincert::sim::command {
namespace {

Json redacted(const Json& properties) {
  Json out = properties;
  for (auto it = out.begin(); it != out.end(); ++it) {
    if ((iequals(it.key(), "ServerPassword") || iequals(it.key(), "StorePassword")) && !it.value().is_null())
      it.value() = "********";
  }
  return out;
}

}  // namespace

Json agent_json(const Agent& a, std::size_t sessions) {
  Json j = Json::object();
  j["AgentId"] = a.id;
  j["ClientMachine"] = a.client_machine;
  j["Username"] = a.username;
  j["AgentPlatform"] = a.platform;
  j["Version"] = a.version;
  j["Status"] = static_cast<int>(a.status);
  j["StatusName"] = agent_status_name(a.status);
  j["Capabilities"] = a.capabilities;
  j["ApprovedCapabilities"] = a.approved_capabilities;
  j["AuthCertificateReenrollment"] = a.auth_cert_renewal == AuthCertRenewal::kNone      ? "None"
                                     : a.auth_cert_renewal == AuthCertRenewal::kRequest ? "Request"
                                                                                        : "Require";
  j["Thumbprint"] = a.thumbprint;
  j["ClientParameters"] = a.client_parameters;
  j["Created"] = a.created;
  j["LastSeen"] = a.last_seen;
  j["Sessions"] = sessions;
  return j;
}

Json store_json(const Store& s) {
  Json j = Json::object();
  j["Id"] = s.id;
  j["CertStoreType"] = store_type_info(s.type).name;
  j["StoreTypeId"] = store_type_info(s.type).id;
  j["ClientMachine"] = s.client_machine;
  j["StorePath"] = s.store_path;
  j["Properties"] = redacted(s.properties);
  j["AgentId"] = s.agent_id.empty() ? Json(nullptr) : Json(s.agent_id);
  j["Orchestrator"] = s.orchestrator;
  j["Created"] = s.created;
  j["InventoryCount"] = s.inventory.size();
  j["InventoryUpdated"] = s.inventory_updated;
  return j;
}

Json job_json(const Job& job, const Store* store, const Agent* agent) {
  Json j = Json::object();
  j["JobId"] = job.id;
  j["Type"] = job_kind_name(job.kind);
  j["StoreId"] = job.store_id;
  j["Schedule"] = job.schedule.text();
  j["State"] = job_state_name(job.state);
  if (store != nullptr) {
    j["Capability"] = capability_name(store->type, job.kind);
    j["JobTypeId"] = job_type_id(store->type, job.kind);
    j["AgentId"] = store->agent_id;
  }
  const std::string withheld = store == nullptr ? "the store was deleted" : job_withheld_reason(job, *store, agent);
  j["HandedOut"] = withheld.empty();
  j["WithheldBecause"] = withheld.empty() ? Json(nullptr) : Json(withheld);
  j["Priority"] = job_priority(job.kind);
  j["Created"] = job.created;
  j["Runs"] = job.runs;
  j["OpenJobHistoryId"] = job.open_run;
  j["CancelledAt"] = job.cancelled_at;
  // The payload without secrets: PFX contents and password stay out of admin answers.
  Json payload = job.payload;
  if (const Json* contents = find_ci(payload, "Contents"); contents != nullptr && contents->is_string())
    payload["Contents"] = "(" + std::to_string(contents->get<std::string>().size()) + " base64 characters)";
  if (const Json* password = find_ci(payload, "PrivateKeyPassword"); password != nullptr)
    payload["PrivateKeyPassword"] = "********";
  j["Details"] = std::move(payload);
  return j;
}

Json history_json(const HistoryEntry& h) {
  Json j = Json::object();
  j["JobHistoryId"] = h.job_history_id;
  j["JobId"] = h.job_id;
  j["StoreId"] = h.store_id;
  j["AgentId"] = h.agent_id;
  j["AgentMachine"] = h.agent_machine;
  j["ClientMachine"] = h.client_machine;
  j["StorePath"] = h.store_path;
  j["JobType"] = h.job_type;
  j["OperationType"] = h.operation;
  j["Capability"] = h.capability;
  j["Schedule"] = h.schedule;
  j["OperationStart"] = h.operation_start;
  j["OperationEnd"] = h.operation_end;
  j["Status"] = h.status;
  j["Result"] = h.result;
  j["Message"] = h.message;
  j["Cancelled"] = h.cancelled;
  return j;
}

Json inventory_json(const Store& s) {
  Json items = Json::array();
  for (const auto& item : s.inventory) {
    Json j = Json::object();
    j["Alias"] = item.alias;
    j["PrivateKeyEntry"] = item.private_key_entry;
    j["UseChainLevel"] = item.use_chain_level;
    j["ItemStatus"] = item.item_status;
    j["Certificates"] = item.certificates;
    j["Thumbprints"] = item.thumbprints;
    j["Parameters"] = item.parameters;
    items.push_back(std::move(j));
  }
  Json j = Json::object();
  j["StoreId"] = s.id;
  j["Updated"] = s.inventory_updated;
  j["JobHistoryId"] = s.inventory_run;
  j["Items"] = std::move(items);
  return j;
}

Json issued_json(const IssuedRecord& r) {
  Json j = Json::object();
  j["Purpose"] = r.purpose;
  j["Thumbprint"] = r.thumbprint;
  j["SerialNumber"] = r.serial;
  j["Subject"] = r.subject;
  j["SANs"] = r.sans;
  j["NotAfter"] = r.not_after;
  j["IssuedAt"] = r.issued_at;
  j["JobId"] = r.job_id;
  j["StoreId"] = r.store_id;
  j["AgentId"] = r.agent_id;
  j["JobHistoryId"] = r.job_history_id;
  j["Certificate"] = r.certificate;
  return j;
}

Json store_types_json() {
  Json out = Json::array();
  for (const StoreTypeInfo& info : all_store_types()) {
    Json type = Json::object();
    type["Name"] = info.name;
    type["Id"] = info.id;
    Json families = Json::object();
    for (JobKind kind : {JobKind::kInventory, JobKind::kAdd, JobKind::kReenrollment}) {
      Json family = Json::object();
      family["Capability"] = capability_name(info.type, kind);
      family["JobTypeId"] = job_type_id(info.type, kind);
      families[std::string(job_family(kind))] = std::move(family);
    }
    type["JobTypes"] = std::move(families);
    out.push_back(std::move(type));
  }
  return out;
}

}  // namespace wincert::sim::command
