#include "sim/command/agent_api.hpp"

#include <algorithm>
#include <array>
#include <tuple>

#include "certstore/x509.hpp"
#include "common/encoding.hpp"
#include "common/log.hpp"
#include "sim/command/error_reply.hpp"
#include "sim/command/job_config.hpp"

namespace wincert::sim::command {
namespace {

constexpr std::array<std::string_view, 10> kRoutes = {
    "Session/Register",
    "Session/Heartbeat",
    "CertStoreInventory/Configuration",
    "CertStoreInventory/Update",
    "CertStoreInventory/Complete",
    "CertStoreManagement/Configuration",
    "CertStoreManagement/Complete",
    "CertStoreReenrollment/Configuration",
    "CertStoreReenrollment/Enroll",
    "CertStoreReenrollment/Complete",
};

auto log() { return logger("command-sim"); }

// A request that failed with `error`: the status of its code (error_reply.hpp), the message twice, as
// ASP.NET's {"Message"} and as the Orchestrators API's Result.Error.
HttpReply failed_request(const Error& error) {
  Json body = Json::object();
  body["Message"] = error.message;
  body["Result"] = result_with_error(3, kNoCode, error.message);
  return HttpReply::json(http_status_for(error.code), body);
}

HttpReply bad_request(const std::string& message) { return failed_request(Error::invalid_argument(message)); }

HttpReply result_reply(Json result) { return HttpReply::json(200, object_of("Result", std::move(result))); }

// The thumbprint of an inventoried certificate (base64 DER, as agents send it; PEM is taken too). Only the
// DER structure is checked and hashed, as Command needs no more to key its inventory: a full OpenSSL parse of
// every certificate was 88% of command-sim's CPU under agent load (bench/results/callgrind_command_sim.md).
Result<std::string> inventory_thumbprint(std::string_view text) {
  if (trim(text).starts_with("-----BEGIN")) {
    WINCERT_ASSIGN_OR_RETURN(auto info, certstore::parse_certificate_text(text));
    return info.thumbprint;
  }
  const auto der = base64_decode(trim(text));
  if (!der) return Error::invalid_argument("the certificate is neither PEM nor base64 DER");
  WINCERT_ASSIGN_OR_RETURN(auto facts, certstore::inventory_facts_der(*der));
  return facts.thumbprint;
}

std::string_view result_name(int status) {
  switch (status) {
    case 2:
      return "Success";
    case 3:
      return "Warning";
    case 4:
      return "Failure";
    default:
      return "Unknown";
  }
}

bool is_empty_guid(std::string_view id) {
  for (char c : id) {
    if (c != '0' && c != '-') return false;
  }
  return true;
}

bool contains_ci(const std::vector<std::string>& list, std::string_view value) {
  return std::any_of(list.begin(), list.end(), [&](const std::string& s) { return iequals(s, value); });
}

std::vector<std::string> san_texts(const std::vector<certstore::SubjectAltName>& sans) {
  std::vector<std::string> out;
  for (const auto& san : sans) out.push_back(std::string(certstore::san_type_key(san.type)) + ":" + san.value);
  return out;
}

}  // namespace

std::optional<std::string> AgentApi::canonical_route(std::string_view route) {
  while (!route.empty() && route.front() == '/') route.remove_prefix(1);
  while (!route.empty() && route.back() == '/') route.remove_suffix(1);
  for (auto r : kRoutes) {
    if (iequals(r, route)) return std::string(r);
  }
  return std::nullopt;
}

HttpReply AgentApi::handle(const std::string& route, std::string_view body_text, const Principal& principal,
                           const std::string& origin) {
  auto body = parse_json(body_text);
  if (!body) return failed_request(body.error());
  if (!body->is_object()) return bad_request("the request body must be a JSON object");
  if (route == "Session/Register") return register_session(*body, principal, origin);
  if (route == "Session/Heartbeat") return heartbeat(*body);
  const std::string_view family = std::string_view(route).substr(0, route.find('/'));
  const std::string_view action = std::string_view(route).substr(route.find('/') + 1);
  if (action == "Configuration") return configuration(*body, family, origin);
  if (action == "Complete") return complete(*body, family);
  if (action == "Update") return inventory_update(*body);
  if (action == "Enroll") return enroll(*body);
  return HttpReply::message(404, "no such endpoint");
}

// ---- sessions

HttpReply AgentApi::register_session(const Json& body, const Principal& principal, const std::string& origin) {
  const std::string client_machine(trim(get_string(body, "ClientMachine").value_or("")));
  if (client_machine.empty()) return bad_request("ClientMachine is required");
  auto platform = get_int(body, "AgentPlatform");
  auto version = get_int(body, "AgentVersion");
  if (!platform) return failed_request(platform.error());
  if (!version) return failed_request(version.error());
  std::vector<std::string> capabilities;
  if (const Json* caps = find_ci(body, "Capabilities")) {
    if (!caps->is_array()) return bad_request("Capabilities must be an array of strings");
    for (const auto& c : *caps) {
      if (c.is_string() && !contains_ci(capabilities, c.get<std::string>()))
        capabilities.push_back(c.get<std::string>());
    }
  }
  const std::string requested_id = get_string(body, "AgentId").value_or("");
  const std::string csr = get_string(body, "CSR").value_or("");

  State& st = rt_.state;
  Agent* agent = requested_id.empty() || is_empty_guid(requested_id) ? nullptr : st.find_agent(requested_id);
  if (agent == nullptr) agent = st.find_agent_by_machine(client_machine);
  const bool created = agent == nullptr;
  if (created) {
    Agent fresh;
    fresh.id = new_guid();
    fresh.client_machine = client_machine;
    fresh.created = now_iso8601();
    fresh.status = rt_.settings.auto_approve ? AgentStatus::kApproved : AgentStatus::kNew;
    agent = &(st.agents[fresh.id] = std::move(fresh));
    log()->info("new orchestrator '{}' registered as {} ({})", client_machine, agent->id,
                agent_status_name(agent->status));
  }
  ++rt_.counters.registrations;
  agent->username = principal.name;
  agent->platform = static_cast<int>(platform->value_or(agent->platform));
  agent->version = static_cast<std::uint64_t>(version->value_or(static_cast<std::int64_t>(agent->version)));
  agent->capabilities = capabilities;
  agent->last_seen = now_iso8601();
  if (const Json* params = find_ci(body, "ClientParameters"); params != nullptr && params->is_object())
    agent->client_parameters = *params;
  if (agent->status == AgentStatus::kApproved) {
    const bool grew = std::any_of(capabilities.begin(), capabilities.end(),
                                  [&](const std::string& c) { return !contains_ci(agent->approved_capabilities, c); });
    if (rt_.settings.auto_approve || created) {
      agent->approved_capabilities = capabilities;
    } else if (grew) {
      // Command: an orchestrator reporting a new capability must be approved again (reference 4.2).
      agent->status = AgentStatus::kNew;
      log()->info("orchestrator '{}' reports new capabilities: back to New until approved again", client_machine);
    }
  }
  // Stores created for this orchestrator's name before it first registered now belong to it.
  for (auto& [id, store] : st.stores) {
    if (store.agent_id.empty() && iequals(store.orchestrator, client_machine)) {
      store.agent_id = agent->id;
      rt_.changed_store(id);
    }
  }
  rt_.changed_agent(agent->id);  // the agent row is written when the request ends, whatever the outcome

  Json response = Json::object();
  if (agent->status == AgentStatus::kDisapproved) {
    response["Session"] = nullptr;
    response["Result"] =
        result_with_error(3, kNoCode, "The orchestrator '" + client_machine + "' has been disapproved.");
    return HttpReply::json(200, response);
  }

  // An agent authentication certificate: on first enrollment or when a renewal was requested/required.
  Json certificate = nullptr;
  std::string csr_problem;
  // Keyfactor's C agent throws away a certificate that comes with a Warning (awaiting approval) and
  // enrolls again once approved (reference 11.6): sign only what it keeps.
  const bool csr_deferred = native_agent(*agent) && agent->status == AgentStatus::kNew;
  if (!csr.empty() && !csr_deferred) {
    auto issued = rt_.ca.sign_request(csr, rt_.settings.certificate_validity_days, CertificateUse::kClientOnly);
    if (issued) {
      certificate = base64_encode(issued->der);
      agent->thumbprint = issued->info.thumbprint;
      agent->auth_cert_renewal = AuthCertRenewal::kNone;
      IssuedRecord rec;
      rec.purpose = "agent-authentication";
      rec.thumbprint = issued->info.thumbprint;
      rec.serial = issued->info.serial;
      rec.subject = issued->info.subject;
      rec.sans = san_texts(issued->info.sans);
      rec.not_after = issued->info.not_after;
      rec.issued_at = now_iso8601();
      rec.agent_id = agent->id;
      rec.certificate = certificate.get<std::string>();
      st.issued.push_back(std::move(rec));
      ++rt_.counters.csrs_signed;
    } else {
      csr_problem = issued.error().message;
      log()->info("registration CSR of '{}' not signed: {}", client_machine, csr_problem);
    }
  }
  if (agent->auth_cert_renewal == AuthCertRenewal::kRequire) {
    response["Session"] = nullptr;
    response["Result"] = result_with_error(
        3, kCodeAuthCertRequired,
        "The orchestrator must enroll for a new authentication certificate: register again with a CSR.");
    return HttpReply::json(200, response);
  }

  Json result = result_success();
  if (agent->status == AgentStatus::kNew) {
    result = result_with_error(
        2, kNoCode,
        "The orchestrator '" + client_machine + "' is awaiting approval; it gets no jobs until approved" +
            (csr_deferred && !csr.empty() ? std::string(", and its CSR is signed then.") : std::string(".")));
  } else if (agent->auth_cert_renewal == AuthCertRenewal::kRequest) {
    result = result_with_error(2, kCodeAuthCertRequested,
                               "The orchestrator should enroll for a new authentication certificate (send a CSR).");
  } else if (!csr_problem.empty()) {
    result = result_with_error(2, kNoCode, "The CSR was not signed: " + csr_problem);
  }

  const bool native = native_agent(*agent);
  EndpointWriter endpoints(rt_, origin, native);
  Json jobs = Json::array();
  if (agent->status == AgentStatus::kApproved) {
    std::vector<const Job*> mine;
    std::size_t withheld = 0;
    for (const auto& [id, job] : st.jobs) {
      if (job.state != JobState::kScheduled) continue;
      const Store* store = st.find_store(job.store_id);
      if (store == nullptr || !st.store_belongs_to(*store, *agent)) continue;
      if (job_withheld_reason(job, *store, agent).empty()) {
        mine.push_back(&job);
      } else {
        ++withheld;  // a capability it did not register; the admin API's job view says so
      }
    }
    if (withheld != 0)
      log()->info("{} job(s) of '{}' not listed: capabilities it did not register (see /admin/jobs)", withheld,
                  client_machine);
    std::sort(mine.begin(), mine.end(), [](const Job* a, const Job* b) {
      const int pa = job_priority(a->kind);
      const int pb = job_priority(b->kind);
      return std::tie(pa, a->created, a->id) < std::tie(pb, b->created, b->id);
    });
    for (const Job* job : mine)
      jobs.push_back(
          session_job_entry(*job, *st.find_store(job->store_id), endpoints, native, rt_.settings.capability_in));
  }
  Json session = Json::object();
  session["Token"] = rt_.sessions.open(agent->id, principal.name);
  session["AgentId"] = agent->id;
  session["HeartbeatInterval"] = rt_.settings.heartbeat_minutes;
  session["ClientMachine"] = agent->client_machine;
  session["Certificate"] = certificate;
  session["ClientParameters"] = Json::object();
  const std::size_t job_count = jobs.size();
  session["Jobs"] = std::move(jobs);
  response["Session"] = std::move(session);
  response["Result"] = std::move(result);
  log()->info("session opened for '{}' ({}, {}): {} job(s)", agent->client_machine, agent->id,
              agent_status_name(agent->status), job_count);
  return HttpReply::json(200, response);
}

HttpReply AgentApi::heartbeat(const Json& body) {
  const std::string token = get_string(body, "SessionToken").value_or("");
  const Session* session = token.empty() ? nullptr : rt_.sessions.find(token);
  Agent* agent = session == nullptr ? nullptr : rt_.state.find_agent(session->agent_id);
  const bool valid = agent != nullptr && agent->status != AgentStatus::kDisapproved;
  if (valid) agent->last_seen = now_iso8601();  // persisted with the next change, not on every heartbeat
  Json response = Json::object();
  response["HeartbeatInterval"] = rt_.settings.heartbeat_minutes;
  response["SessionValid"] = valid;
  response["Result"] = result_success();
  return HttpReply::json(200, response);
}

// ---- jobs

std::optional<HttpReply> AgentApi::resolve_job(const Json& body, std::string_view family, JobContext& out) {
  const std::string token = get_string(body, "SessionToken").value_or("");
  const std::string job_id = get_string(body, "JobId").value_or("");
  if (job_id.empty()) return bad_request("JobId is required");
  const Session* session = token.empty() ? nullptr : rt_.sessions.find(token);
  Agent* agent = session == nullptr ? nullptr : rt_.state.find_agent(session->agent_id);
  if (agent == nullptr || agent->status == AgentStatus::kDisapproved)
    return result_reply(result_with_error(3, kCodeInvalidSession,
                                          "The session token is not valid (expired or invalidated); register again."));
  agent->last_seen = now_iso8601();
  rt_.changed_agent(agent->id);  // job traffic records LastSeen (heartbeats alone do not: no write per heartbeat)
  Job* job = rt_.state.find_job(job_id);
  Store* store = job == nullptr ? nullptr : rt_.state.find_store(job->store_id);
  if (job == nullptr || store == nullptr || !rt_.state.store_belongs_to(*store, *agent))
    return result_reply(result_with_error(3, kNoCode, "Job " + job_id + " is not scheduled for this orchestrator."));
  if (route_family(job->kind) != family)
    return result_reply(result_with_error(3, kNoCode,
                                          "Job " + job_id + " is a " + std::string(job_kind_name(job->kind)) +
                                              " job; use its own endpoints (" + std::string(route_family(job->kind)) +
                                              "/...), not " + std::string(family) + "/..."));
  out = JobContext{agent, job, store};
  return std::nullopt;
}

HttpReply AgentApi::configuration(const Json& body, std::string_view family, const std::string& origin) {
  JobContext ctx;
  if (auto refused = resolve_job(body, family, ctx)) return std::move(*refused);
  Job& job = *ctx.job;
  if (job.state == JobState::kDone)
    return result_reply(result_with_error(3, kNoCode, "Job " + job.id + " has completed and is no longer scheduled."));
  // A cancelled job's configuration says so (JobCancelled) and starts no run.
  if (job.state == JobState::kScheduled && job.open_run == 0) {
    job.open_run = rt_.state.next_history_id++;
    job.open_run_started = now_iso8601();
    rt_.changed_job(job.id);
  }
  log()->info("configuration of {} job {} (JobHistoryId {}) to '{}'{}", job_kind_name(job.kind), job.id, job.open_run,
              ctx.agent->client_machine, job.state == JobState::kCancelled ? " - cancelled" : "");
  const bool native = native_agent(*ctx.agent);
  EndpointWriter endpoints(rt_, origin, native);
  return HttpReply::json(
      200, job_configuration(job, *ctx.store, job.open_run, endpoints, native, rt_.settings.capability_in));
}

HttpReply AgentApi::complete(const Json& body, std::string_view family) {
  if (const unsigned status = rt_.faults.on_completion(); status != 0) {
    ++rt_.counters.completions_rejected;
    log()->info("completion refused with HTTP {} (fault injection)", status);
    return HttpReply::message(status, "The completion could not be processed (injected fault).");
  }
  JobContext ctx;
  if (auto refused = resolve_job(body, family, ctx)) return std::move(*refused);
  Job& job = *ctx.job;
  auto status = get_int(body, "Status");
  if (!status) return failed_request(status.error());
  if (!status->has_value()) {
    // The UO's JobResult names it Result (a number, or the enum's name).
    if (auto text = get_string(body, "Result")) {
      for (int s : {0, 2, 3, 4}) {
        if (iequals(*text, result_name(s)) || *text == std::to_string(s)) *status = s;
      }
      if (iequals(*text, "Failure") || iequals(*text, "Error")) *status = 4;
    }
  }
  if (!status->has_value() || **status < 0 || **status > 4)
    return bad_request("Status must be 0..4 (2 Success, 3 Warning, 4 Failure)");
  auto audit = get_int(body, "AuditId");
  if (!audit) return failed_request(audit.error());
  if (!audit->has_value() || **audit == 0) {
    audit = get_int(body, "JobHistoryId");
    if (!audit) return failed_request(audit.error());
  }
  const std::string message = get_string(body, "Message").value_or(get_string(body, "FailureMessage").value_or(""));
  const bool cancelled = job.state == JobState::kCancelled;
  Json response = Json::object();
  response["Result"] =
      cancelled ? result_with_error(2, kNoCode, "Job " + job.id + " was cancelled.") : result_success();
  if (cancelled) response["JobCancelled"] = true;

  const std::int64_t run = audit->value_or(0) != 0 ? **audit : job.open_run;
  if (auto done = rt_.state.history.find(run); run != 0 && done != rt_.state.history.end()) {
    if (!same_id(done->second.job_id, job.id))
      return result_reply(result_with_error(3, kNoCode, "AuditId " + std::to_string(run) + " belongs to another job."));
    // Already recorded (the agent retried after a lost response): acknowledge, record nothing.
    ++rt_.counters.duplicate_completions;
    log()->info("duplicate completion of job {} (JobHistoryId {}) acknowledged", job.id, run);
    return HttpReply::json(200, response);
  }
  if (run == 0 || run != job.open_run)
    return result_reply(result_with_error(
        3, kNoCode,
        run == 0 ? "No run of job " + job.id + " is in progress: fetch its configuration first."
                 : "AuditId " + std::to_string(run) + " is not the current run of job " + job.id + "."));
  if (**status == 1) return HttpReply::json(200, response);  // in progress: nothing to record yet

  HistoryEntry entry;
  entry.job_history_id = run;
  entry.job_id = job.id;
  entry.store_id = ctx.store->id;
  entry.agent_id = ctx.agent->id;
  entry.agent_machine = ctx.agent->client_machine;
  entry.client_machine = ctx.store->client_machine;
  entry.store_path = ctx.store->store_path;
  entry.job_type = std::string(job_family(job.kind));
  entry.operation = std::string(job_kind_name(job.kind));
  entry.capability = capability_name(ctx.store->type, job.kind);
  entry.schedule = job.schedule.text();
  entry.operation_start = job.open_run_started;
  entry.operation_end = now_iso8601();
  entry.status = static_cast<int>(**status);
  entry.result = std::string(result_name(entry.status));
  entry.message = message;
  entry.cancelled = cancelled;
  rt_.state.history[run] = entry;
  rt_.recorded_history(run);
  rt_.changed_job(job.id);
  ++rt_.counters.completions_recorded;
  job.open_run = 0;
  job.open_run_started.clear();
  ++job.runs;
  if (job.state == JobState::kScheduled && !job.schedule.recurring()) job.state = JobState::kDone;
  log()->info("job {} ({} on {} {}) completed: {}{}", job.id, entry.operation, entry.client_machine, entry.store_path,
              entry.result, cancelled ? " (after it was cancelled)" : "");
  // Command may chain an inventory after a management or reenrollment job (reference 3.6).
  if (rt_.settings.chain_inventory && job.kind != JobKind::kInventory && entry.status == 2 && !cancelled) {
    const Store store_copy = *ctx.store;
    Job& chained = rt_.add_job(JobKind::kInventory, store_copy, Schedule{}, Json::object());
    response["InventoryJob"] = chained.id;
  }
  return HttpReply::json(200, response);
}

HttpReply AgentApi::inventory_update(const Json& body) {
  JobContext ctx;
  if (auto refused = resolve_job(body, "CertStoreInventory", ctx)) return std::move(*refused);
  const Json* items = find_ci(body, "Inventory");
  if (items == nullptr || !items->is_array()) return bad_request("Inventory must be an array");
  std::vector<InventoryItem> parsed;
  bool snapshot = true;
  for (std::size_t i = 0; i < items->size(); ++i) {
    const Json& raw = (*items)[i];
    if (!raw.is_object()) return bad_request("Inventory[" + std::to_string(i) + "] must be an object");
    InventoryItem item;
    item.alias = get_string(raw, "Alias").value_or("");
    auto pk = get_bool(raw, "PrivateKeyEntry");
    auto chain = get_bool(raw, "UseChainLevel");
    auto item_status = get_int(raw, "ItemStatus");
    if (!pk || !chain || !item_status)
      return bad_request("Inventory[" + std::to_string(i) + "]: " +
                         (!pk      ? pk.error().message
                          : !chain ? chain.error().message
                                   : item_status.error().message));
    item.private_key_entry = pk->value_or(false);
    item.use_chain_level = chain->value_or(false);
    item.item_status = static_cast<int>(item_status->value_or(0));
    if (item.item_status < 0 || item.item_status > 4)
      return bad_request("Inventory[" + std::to_string(i) + "].ItemStatus must be 0..4");
    if (item.item_status != 0) snapshot = false;
    if (const Json* certs = find_ci(raw, "Certificates")) {
      if (!certs->is_array()) return bad_request("Inventory[" + std::to_string(i) + "].Certificates must be an array");
      for (std::size_t c = 0; c < certs->size(); ++c) {
        const Json& cert = (*certs)[c];
        auto thumbprint = cert.is_string() ? inventory_thumbprint(cert.get<std::string>())
                                           : Result<std::string>(Error::invalid_argument("not a string"));
        if (!thumbprint)
          return result_reply(result_with_error(3, kNoCode,
                                                "Inventory item '" + item.alias + "' certificate " + std::to_string(c) +
                                                    " is not a base64 DER certificate: " + thumbprint.error().message));
        item.certificates.push_back(cert.get<std::string>());
        item.thumbprints.push_back(std::move(*thumbprint));
      }
    }
    const bool needs_certificate = item.item_status == 0 || item.item_status == 1 || item.item_status == 2;
    if (needs_certificate && item.certificates.empty())
      return result_reply(result_with_error(3, kNoCode, "Inventory item '" + item.alias + "' carries no certificate."));
    if (item.alias.empty() && !item.thumbprints.empty()) item.alias = item.thumbprints.front();
    if (const Json* params = find_ci(raw, "Parameters")) item.parameters = *params;
    parsed.push_back(std::move(item));
  }

  Store& store = *ctx.store;
  auto upsert = [&](InventoryItem item) {
    auto it = std::find_if(store.inventory.begin(), store.inventory.end(),
                           [&](const InventoryItem& existing) { return iequals(existing.alias, item.alias); });
    if (it == store.inventory.end()) {
      store.inventory.push_back(std::move(item));
    } else {
      *it = std::move(item);
    }
  };
  const std::int64_t run = ctx.job->open_run;
  if (snapshot) {
    // A full snapshot replaces the inventory; later parts of the same run (a large inventory split into
    // several submissions) add to it. An empty snapshot says the store is empty.
    if (run == 0 || store.inventory_run != run || parsed.empty()) store.inventory.clear();
    for (auto& item : parsed) upsert(std::move(item));
    store.inventory_run = run;
  } else {
    // A diff against LastInventory, as the C agent sends it.
    for (auto& item : parsed) {
      if (item.item_status == 3) {
        std::erase_if(store.inventory, [&](const InventoryItem& e) { return iequals(e.alias, item.alias); });
      } else if (item.item_status != 4) {
        upsert(std::move(item));
      }
    }
    store.inventory_run = 0;  // a snapshot after a diff starts afresh
  }
  store.inventory_updated = now_iso8601();
  ++rt_.counters.inventory_submissions;
  rt_.changed_store(store.id);
  rt_.changed_inventory(store.id);
  log()->info("inventory of store {} {} ({}): {} item(s) after a {} of {} item(s)", store.client_machine,
              store.store_path, store.id, store.inventory.size(), snapshot ? "snapshot" : "diff", parsed.size());
  return result_reply(result_success());
}

HttpReply AgentApi::enroll(const Json& body) {
  JobContext ctx;
  if (auto refused = resolve_job(body, "CertStoreReenrollment", ctx)) return std::move(*refused);
  std::string csr = get_string(body, "CSRText").value_or(get_string(body, "CSR").value_or(""));
  if (csr.empty()) return bad_request("CSRText is required");
  Json response = Json::object();
  auto issued = rt_.ca.sign_request(csr, rt_.settings.certificate_validity_days, CertificateUse::kServerAndClient);
  if (!issued) {
    log()->info("CSR of job {} rejected: {}", ctx.job->id, issued.error().message);
    response["Result"] = result_with_error(3, kNoCode, "The CSR was not signed: " + issued.error().message);
    response["Certificate"] = nullptr;
    return HttpReply::json(200, response);
  }
  IssuedRecord rec;
  rec.purpose = "reenrollment";
  rec.thumbprint = issued->info.thumbprint;
  rec.serial = issued->info.serial;
  rec.subject = issued->info.subject;
  rec.sans = san_texts(issued->info.sans);
  rec.not_after = issued->info.not_after;
  rec.issued_at = now_iso8601();
  rec.job_id = ctx.job->id;
  rec.store_id = ctx.store->id;
  rec.agent_id = ctx.agent->id;
  rec.job_history_id = ctx.job->open_run;
  rec.certificate = base64_encode(issued->der);
  response["Result"] = result_success();
  response["Certificate"] = rec.certificate;
  rt_.state.issued.push_back(std::move(rec));
  ++rt_.counters.csrs_signed;  // the issued record is committed at the request's end
  log()->info("signed the CSR of job {}: '{}' ({})", ctx.job->id, issued->info.subject, issued->info.thumbprint);
  return HttpReply::json(200, response);
}

}  // namespace wincert::sim::command
