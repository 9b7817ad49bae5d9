#include "sim/command/admin_api.hpp"

#include <algorithm>

#include "certstore/pkcs12.hpp"
#include "common/encoding.hpp"
#include "common/log.hpp"
#include "sim/command/admin_views.hpp"
#include "sim/command/error_reply.hpp"
#include "sim/command/job_config.hpp"

namespace wincert::sim::command {
namespace {

using http::verb;

auto log() { return logger("command-sim"); }

HttpReply ok(const Json& body) { return HttpReply::json(200, body); }
HttpReply created(const Json& body) { return HttpReply::json(201, body); }
HttpReply error(unsigned status, const std::string& message) { return HttpReply::message(status, message); }
HttpReply not_found(const std::string& what) { return error(404, what + " not found"); }
HttpReply method_not_allowed() { return error(405, "method not allowed on this admin route"); }

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> parts;
  while (!path.empty()) {
    const auto slash = path.find('/');
    const std::string_view part = path.substr(0, slash);
    if (!part.empty()) parts.push_back(url_decode(part, false).value_or(std::string(part)));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return parts;
}

// {"dns": ["a", "b"], "ip": "10.0.0.1"} -> ordered (type, value) pairs; an Error names the bad member.
Result<std::vector<std::pair<std::string, std::string>>> san_pairs(const Json* sans) {
  std::vector<std::pair<std::string, std::string>> out;
  if (sans == nullptr) return out;
  if (!sans->is_object())
    return Error::invalid_argument("SANs must be an object of arrays, e.g. {\"dns\": [\"a.example\"]}");
  for (auto it = sans->begin(); it != sans->end(); ++it) {
    const Json values = it.value().is_array() ? it.value() : Json::array({it.value()});
    for (const auto& v : values) {
      if (!v.is_string()) return Error::invalid_argument("SANs." + it.key() + " must hold strings");
      out.emplace_back(it.key(), v.get<std::string>());
    }
  }
  return out;
}

// The SANs map normalized to arrays of strings (what the agent receives).
Json sans_map(const std::vector<std::pair<std::string, std::string>>& pairs) {
  Json out = Json::object();
  for (const auto& [k, v] : pairs) {
    if (!out.contains(k)) out[k] = Json::array();
    out[k].push_back(v);
  }
  return out;
}

// Store custom fields: scalars become strings (Command stores them so); objects (PAM) become JSON text.
Result<Json> store_properties(const Json* given, StoreType type) {
  Json props = Json::object();
  if (given != nullptr) {
    if (!given->is_object()) return Error::invalid_argument("Properties must be an object");
    for (auto it = given->begin(); it != given->end(); ++it) {
      if (it.value().is_null()) {
        props[it.key()] = nullptr;
      } else if (auto text = scalar_text(it.value())) {
        props[it.key()] = *text;
      } else if (it.value().is_object()) {
        props[it.key()] = dump_json(it.value());
      } else {
        return Error::invalid_argument("Properties." + it.key() + " must be a string, number, boolean, object or null");
      }
    }
  }
  auto add_default = [&](const char* key, Json value) {
    for (auto it = props.begin(); it != props.end(); ++it) {
      if (iequals(it.key(), key)) return;  // present (even as null): the administrator's value stands
    }
    props[key] = std::move(value);
  };
  if (type == StoreType::kPem) {
    // Keyfactor's C agent: a separate key file (management Remove, reenrollment); it must find
    // separatePrivateKey as a string in every reenrollment (reference 11.4).
    add_default("separatePrivateKey", "false");
    add_default("privateKeyPath", "");
    return props;
  }
  const std::string protocol = get_string(props, "WinRM Protocol").value_or("https");
  add_default("spnwithport", "false");
  add_default("WinRM Protocol", "https");
  add_default("WinRM Port", iequals(protocol, "http") ? "5985" : "5986");
  add_default("ServerUsername", nullptr);
  add_default("ServerPassword", nullptr);
  add_default("ServerUseSsl", "true");
  if (type == StoreType::kWinSql) add_default("RestartService", "false");
  return props;
}

std::optional<std::map<std::string, std::string>> parse_query(std::string_view query) {
  auto form = parse_form(query);
  if (!form) return std::nullopt;
  std::map<std::string, std::string> out;
  for (auto& [k, v] : *form) out[to_lower(k)] = v;
  return out;
}

std::string query_value(const std::map<std::string, std::string>& query, const char* key) {
  auto it = query.find(key);
  return it == query.end() ? std::string() : it->second;
}

}  // namespace

HttpReply AdminApi::handle(verb method, std::string_view path, std::string_view query_text,
                           std::string_view body_text) {
  const auto parts = split_path(path);
  if (parts.empty()) return not_found("admin route");
  Json body = Json::object();
  if (!trim(body_text).empty()) {
    auto parsed = parse_json(body_text);
    if (!parsed) return error_reply(parsed.error());
    body = std::move(parsed.value());
  }
  auto query = parse_query(query_text);
  if (!query) return error(400, "the query string is malformed");
  const std::string& head = parts[0];
  if (head == "health") return ok(object_of("Ok", true));
  if (head == "agents") return agents(method, parts, body);
  if (head == "stores") return stores(method, parts, body);
  if (head == "jobs") return jobs(method, parts, body, *query);
  if (head == "store-types") {
    if (method != verb::get) return method_not_allowed();
    return ok(store_types_json());
  }
  if (head == "history") {
    if (method != verb::get) return method_not_allowed();
    return history(*query);
  }
  if (head == "certificates") {
    if (method != verb::get) return method_not_allowed();
    Json out = Json::array();
    for (const auto& r : rt_.state.issued) out.push_back(issued_json(r));
    return ok(out);
  }
  if (head == "ca") {
    if (method != verb::get) return method_not_allowed();
    Json out = Json::object();
    out["Certificate"] = base64_encode(rt_.ca.certificate_der());
    out["Pem"] = rt_.ca.certificate_pem();
    out["Subject"] = rt_.ca.info().subject;
    out["Thumbprint"] = rt_.ca.info().thumbprint;
    return ok(out);
  }
  if (head == "pfx") {
    if (method != verb::post) return method_not_allowed();
    return make_pfx(body);
  }
  if (head == "settings") return settings(method, body);
  if (head == "counters") {
    if (parts.size() == 2 && parts[1] == "reset" && method == verb::post) {
      rt_.counters = Counters{};
      return ok(rt_.counters.to_json());
    }
    if (parts.size() != 1 || method != verb::get) return method_not_allowed();
    return ok(rt_.counters.to_json());
  }
  if (head == "faults") return faults(method, body);
  if (head == "sessions" && parts.size() == 2 && parts[1] == "invalidate" && method == verb::post) {
    std::size_t n = 0;
    if (auto agent_id = get_string(body, "AgentId")) {
      const Agent* agent = rt_.state.find_agent(*agent_id);
      if (agent == nullptr) agent = rt_.state.find_agent_by_machine(*agent_id);
      if (agent == nullptr) return not_found("agent " + *agent_id);
      n = rt_.invalidate_agent_sessions(agent->id);
    } else {
      n = rt_.sessions.invalidate_all();
      rt_.counters.sessions_invalidated += n;
    }
    log()->info("admin: invalidated {} session(s)", n);
    return ok(object_of("Invalidated", n));
  }
  if (head == "tokens" && parts.size() == 2 && parts[1] == "expire" && method == verb::post) {
    rt_.auth.expire_all_tokens();
    return ok(object_of("Expired", true));
  }
  return not_found("admin route /admin/" + std::string(path));
}

// ---- agents

HttpReply AdminApi::agents(verb method, const std::vector<std::string>& parts, const Json& body) {
  if (parts.size() == 1) {
    if (method != verb::get) return method_not_allowed();
    Json out = Json::array();
    for (const auto& [id, a] : rt_.state.agents) out.push_back(agent_json(a, rt_.sessions.count(a.id)));
    return ok(out);
  }
  Agent* agent = rt_.state.find_agent(parts[1]);
  if (agent == nullptr) agent = rt_.state.find_agent_by_machine(parts[1]);
  if (agent == nullptr) return not_found("agent " + parts[1]);
  if (parts.size() == 2) {
    if (method != verb::get) return method_not_allowed();
    return ok(agent_json(*agent, rt_.sessions.count(agent->id)));
  }
  if (parts.size() != 3 || method != verb::post) return method_not_allowed();
  const std::string& action = parts[2];
  if (action == "approve") {
    agent->status = AgentStatus::kApproved;
    agent->approved_capabilities = agent->capabilities;
  } else if (action == "disapprove") {
    agent->status = AgentStatus::kDisapproved;
  } else if (action == "reset") {
    agent->status = AgentStatus::kNew;
    agent->approved_capabilities.clear();
  } else if (action == "auth-cert-renewal") {
    const std::string mode = to_lower(get_string(body, "Mode").value_or(get_string(body, "Status").value_or("")));
    if (mode == "request" || mode == "1") {
      agent->auth_cert_renewal = AuthCertRenewal::kRequest;
    } else if (mode == "require" || mode == "2") {
      agent->auth_cert_renewal = AuthCertRenewal::kRequire;
    } else if (mode == "none" || mode == "0") {
      agent->auth_cert_renewal = AuthCertRenewal::kNone;
    } else {
      return error(400, "Mode must be request, require or none");
    }
  } else {
    return not_found("agent action " + action);
  }
  // The agent learns about the change at its next registration: make its next heartbeat say so.
  const std::size_t n = rt_.invalidate_agent_sessions(agent->id);
  rt_.changed_agent(agent->id);
  log()->info("admin: {} agent '{}' ({}); {} session(s) invalidated", action, agent->client_machine, agent->id, n);
  return ok(agent_json(*agent, 0));
}

// ---- stores

HttpReply AdminApi::stores(verb method, const std::vector<std::string>& parts, const Json& body) {
  if (parts.size() == 1) {
    if (method == verb::get) {
      Json out = Json::array();
      for (const auto& [id, s] : rt_.state.stores) out.push_back(store_json(s));
      return ok(out);
    }
    if (method == verb::post) return create_store(body);
    return method_not_allowed();
  }
  Store* store = rt_.state.find_store(parts[1]);
  if (store == nullptr) return not_found("store " + parts[1]);
  if (parts.size() == 2) {
    if (method == verb::get) return ok(store_json(*store));
    if (method == verb::delete_) {
      const std::string id = store->id;
      const std::string agent_id = store->agent_id;
      for (auto& [jid, job] : rt_.state.jobs) {
        if (job.store_id == id && job.state == JobState::kScheduled) {
          job.state = JobState::kCancelled;
          job.cancelled_at = now_iso8601();
          rt_.changed_job(jid);
        }
      }
      rt_.state.stores.erase(id);
      rt_.changed_store(id);  // gone from State: its row and its inventory rows are deleted
      if (!agent_id.empty()) rt_.notify_agent(agent_id, "a store was deleted");
      return ok(object_of("Deleted", id));
    }
    return method_not_allowed();
  }
  if (parts.size() == 3 && parts[2] == "inventory" && method == verb::get) return ok(inventory_json(*store));
  return not_found("store route");
}

HttpReply AdminApi::create_store(const Json& body) {
  if (!body.is_object()) return error(400, "the body must be a JSON object");
  const std::string type_text =
      get_string(body, "CertStoreType")
          .value_or(get_string(body, "StoreType").value_or(get_string(body, "Type").value_or("")));
  auto type = parse_store_type(type_text);
  if (!type) return error(400, "CertStoreType must be WinCert, IISU, WinSql or PEM");
  Store store;
  store.id = new_guid();
  store.type = *type;
  store.client_machine = std::string(trim(get_string(body, "ClientMachine").value_or("")));
  store.store_path =
      std::string(trim(get_string(body, "StorePath").value_or(get_string(body, "Storepath").value_or(""))));
  if (store.client_machine.empty()) return error(400, "ClientMachine is required");
  if (store.store_path.empty()) return error(400, "StorePath is required (e.g. My, WebHosting)");
  auto props = store_properties(find_ci(body, "Properties"), *type);
  if (!props) return error_reply(props.error());
  store.properties = std::move(props.value());
  if (auto agent_ref = get_string(body, "AgentId")) {
    const Agent* agent = rt_.state.find_agent(*agent_ref);
    if (agent == nullptr) agent = rt_.state.find_agent_by_machine(*agent_ref);
    if (agent == nullptr) return error(400, "AgentId " + *agent_ref + " is not a known orchestrator");
    store.agent_id = agent->id;
    store.orchestrator = agent->client_machine;
  } else if (auto name = get_string(body, "Orchestrator")) {
    store.orchestrator = *name;
    if (const Agent* agent = rt_.state.find_agent_by_machine(*name)) store.agent_id = agent->id;
  } else {
    return error(400, "AgentId (an orchestrator's id or name) or Orchestrator (a name, registered later) is required");
  }
  store.created = now_iso8601();
  const Json* inventory_schedule = find_ci(body, "InventorySchedule");
  std::optional<Schedule> schedule;
  if (inventory_schedule != nullptr) {
    auto parsed = schedule_from_json(inventory_schedule);
    if (!parsed) return error_reply(parsed.error().context("InventorySchedule: "));
    schedule = std::move(parsed.value());
  }
  const std::string id = store.id;
  Store& stored = rt_.state.stores[id] = std::move(store);
  log()->info("admin: created {} store {} {} ({}) for orchestrator '{}'", store_type_info(stored.type).name,
              stored.client_machine, stored.store_path, id, stored.orchestrator);
  Json out = store_json(stored);
  rt_.changed_store(id);
  if (schedule) out["InventoryJobId"] = rt_.add_job(JobKind::kInventory, stored, *schedule, Json::object()).id;
  return created(out);
}

// ---- jobs

Agent* AdminApi::store_agent(const Store* store) {
  if (store == nullptr) return nullptr;
  if (!store->agent_id.empty()) return rt_.state.find_agent(store->agent_id);
  return store->orchestrator.empty() ? nullptr : rt_.state.find_agent_by_machine(store->orchestrator);
}

HttpReply AdminApi::jobs(verb method, const std::vector<std::string>& parts, const Json& body,
                         const std::map<std::string, std::string>& query) {
  if (parts.size() == 1) {
    if (method == verb::post) return create_job(body);
    if (method != verb::get) return method_not_allowed();
    const std::string store_filter = query_value(query, "store");
    const std::string agent_filter = query_value(query, "agent");
    const bool all = query_value(query, "all") == "1" || query_value(query, "all") == "true";
    Json out = Json::array();
    for (const auto& [id, job] : rt_.state.jobs) {
      const Store* store = rt_.state.find_store(job.store_id);
      if (!all && job.state != JobState::kScheduled) continue;
      if (!store_filter.empty() && !same_id(job.store_id, store_filter)) continue;
      if (!agent_filter.empty() && (store == nullptr || !same_id(store->agent_id, agent_filter))) continue;
      out.push_back(job_json(job, store, store_agent(store)));
    }
    return ok(out);
  }
  Job* job = rt_.state.find_job(parts[1]);
  if (job == nullptr) return not_found("job " + parts[1]);
  const Store* store = rt_.state.find_store(job->store_id);
  const bool cancel = (parts.size() == 3 && parts[2] == "cancel" && method == verb::post) ||
                      (parts.size() == 2 && method == verb::delete_);
  if (cancel) {
    if (job->state == JobState::kDone) return error(409, "job " + job->id + " has already completed");
    if (job->state == JobState::kScheduled) {
      job->state = JobState::kCancelled;
      job->cancelled_at = now_iso8601();
      log()->info("admin: cancelled job {}", job->id);
      if (store != nullptr && !store->agent_id.empty()) rt_.notify_agent(store->agent_id, "a job was cancelled");
      rt_.changed_job(job->id);
    }
    return ok(job_json(*job, store, store_agent(store)));
  }
  if (parts.size() == 2 && method == verb::get) return ok(job_json(*job, store, store_agent(store)));
  return method_not_allowed();
}

HttpReply AdminApi::create_job(const Json& body) {
  if (!body.is_object()) return error(400, "the body must be a JSON object");
  auto kind = parse_job_kind(get_string(body, "Type").value_or(get_string(body, "JobType").value_or("")));
  if (!kind) return error(400, "Type must be Inventory, Add, Remove or Reenrollment");
  const std::string store_id = get_string(body, "StoreId").value_or("");
  const Store* store = rt_.state.find_store(store_id);
  if (store == nullptr) return error(400, "StoreId '" + store_id + "' is not a known store");
  auto schedule = schedule_from_json(find_ci(body, "Schedule"));
  if (!schedule) return error_reply(schedule.error().context("Schedule: "));
  const Json* entry = find_ci(body, "EntryParameters");
  if (entry != nullptr && !entry->is_object()) return error(400, "EntryParameters must be an object");
  auto overwrite = get_bool(body, "Overwrite");
  if (!overwrite) return error_reply(overwrite.error());

  // A native agent (Keyfactor's C agent, AgentPlatform 5) cannot add a PFX and removes by SHA-1 thumbprint
  // (reference 11.4): refuse such jobs now rather than let them end as failures.
  const Agent* orchestrator = store_agent(store);
  const bool native = orchestrator != nullptr && native_agent(*orchestrator);
  if (native && *kind == JobKind::kAdd && (find_ci(body, "PfxPassword") || find_ci(body, "PrivateKeyPassword")))
    return error(400, "orchestrator '" + orchestrator->client_machine +
                          "' is a native agent (AgentPlatform 5), which cannot add a PFX: give Contents as a base64 "
                          "DER certificate without PfxPassword");
  if (native && *kind == JobKind::kRemove) {
    const std::string alias = get_string(body, "Alias").value_or("");
    if (alias.size() != 40 || alias.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
      return error(400, "orchestrator '" + orchestrator->client_machine +
                            "' is a native agent (AgentPlatform 5), which removes by SHA-1 thumbprint: Alias must "
                            "be 40 hex digits");
  }

  Json payload = Json::object();
  if (entry != nullptr) payload["EntryParameters"] = *entry;
  switch (*kind) {
    case JobKind::kInventory:
      break;
    case JobKind::kAdd: {
      const std::string contents = get_string(body, "Contents").value_or(get_string(body, "Pfx").value_or(""));
      if (contents.empty()) return error(400, "Contents (base64 PFX, or base64 DER without a password) is required");
      const Json* pw = find_ci(body, "PfxPassword");
      if (pw == nullptr) pw = find_ci(body, "PrivateKeyPassword");
      if (pw != nullptr && !pw->is_string()) return error(400, "PfxPassword must be a string");
      const std::string alias = get_string(body, "Alias").value_or("");
      std::string thumbprint;
      // Checked here so a typo in a test shows up at scheduling time, not as a job failure.
      if (pw != nullptr) {
        auto der = base64_decode(contents);
        if (!der) return error(400, "Contents is not base64");
        auto pfx = certstore::open_pfx(*der, Secret(pw->get<std::string>()), alias);
        if (!pfx) return error_reply(pfx.error());
        if (pfx->leaf) thumbprint = pfx->leaf->info.thumbprint;
      } else {
        auto info = certstore::parse_certificate_text(contents);
        if (!info)
          return error_reply(info.error().context("Contents without a PfxPassword must be a base64 DER certificate: "));
        thumbprint = info->thumbprint;
      }
      payload["Contents"] = contents;
      payload["PrivateKeyPassword"] = pw == nullptr ? Json(nullptr) : *pw;
      payload["Alias"] = alias;
      payload["Thumbprint"] = thumbprint.empty() ? Json(nullptr) : Json(thumbprint);
      payload["Overwrite"] = overwrite->value_or(false);
      break;
    }
    case JobKind::kRemove: {
      const std::string alias = get_string(body, "Alias").value_or("");
      if (alias.empty()) return error(400, "Alias (the thumbprint or alias to remove) is required");
      payload["Alias"] = alias;
      break;
    }
    case JobKind::kReenrollment: {
      const std::string subject = get_string(body, "SubjectText").value_or(get_string(body, "Subject").value_or(""));
      if (subject.empty()) return error(400, "Subject is required (e.g. CN=www.example.com)");
      auto sans = san_pairs(find_ci(body, "SANs"));
      if (!sans) return error_reply(sans.error());
      payload["SubjectText"] = subject;
      payload["KeyType"] = get_string(body, "KeyType").value_or("RSA");
      payload["KeySize"] = get_string(body, "KeySize").value_or("2048");
      if (const Json* provider = find_ci(body, "ProviderName")) payload["ProviderName"] = *provider;
      if (auto legacy = get_string(body, "SAN")) payload["SAN"] = *legacy;
      payload["SANs"] = sans_map(*sans);
      payload["Alias"] = get_string(body, "Alias").value_or("");
      payload["Overwrite"] = overwrite->value_or(false);
      break;
    }
  }
  // Test knobs: "Capability" replaces the job's capability name (session list and configuration);
  // "ConfigurationPatch" is merged (RFC 7386) into every configuration served for the job.
  if (const Json* cap = find_ci(body, "Capability")) {
    if (!cap->is_string() || cap->get<std::string>().empty())
      return error(400, "Capability must be a non-empty string");
    payload["CapabilityOverride"] = *cap;
  }
  if (const Json* patch = find_ci(body, "ConfigurationPatch")) {
    if (!patch->is_object()) return error(400, "ConfigurationPatch must be an object (a JSON merge patch)");
    payload["ConfigurationPatch"] = *patch;
  }
  Job& job = rt_.add_job(*kind, *store, std::move(schedule.value()), std::move(payload));
  return created(job_json(job, store, store_agent(store)));
}

HttpReply AdminApi::history(const std::map<std::string, std::string>& query) {
  const std::string store = query_value(query, "store");
  const std::string job = query_value(query, "job");
  const std::string agent = query_value(query, "agent");
  const std::string result = query_value(query, "result");
  Json out = Json::array();
  for (const auto& [id, h] : rt_.state.history) {
    if (!store.empty() && !same_id(h.store_id, store)) continue;
    if (!job.empty() && !same_id(h.job_id, job)) continue;
    if (!agent.empty() && !same_id(h.agent_id, agent) && !iequals(h.agent_machine, agent)) continue;
    if (!result.empty() && !iequals(h.result, result)) continue;
    out.push_back(history_json(h));
  }
  return ok(out);
}

// ---- CA, settings, faults

HttpReply AdminApi::make_pfx(const Json& body) {
  NewKeyRequest request;
  request.subject = get_string(body, "Subject").value_or("");
  if (request.subject.empty()) return error(400, "Subject is required (e.g. CN=www.example.com)");
  const Json* password = find_ci(body, "Password");
  if (password != nullptr && !password->is_string()) return error(400, "Password must be a string");
  auto pairs = san_pairs(find_ci(body, "SANs"));
  if (!pairs) return error_reply(pairs.error());
  auto sans = sans_from_dictionary(*pairs);
  if (!sans) return error_reply(sans.error());
  request.sans = std::move(sans.value());
  request.key_type = get_string(body, "KeyType").value_or("RSA");
  request.key_size = get_string(body, "KeySize").value_or(iequals(request.key_type, "RSA") ? "2048" : "P-256");
  auto days = get_int(body, "Days");
  if (!days) return error_reply(days.error());
  request.validity_days = static_cast<int>(days->value_or(rt_.settings.certificate_validity_days));
  auto legacy = get_bool(body, "Legacy");
  if (!legacy) return error_reply(legacy.error());
  auto issued = rt_.ca.issue(request);
  if (!issued) return error_reply(issued.error());
  const Secret pfx_password(password == nullptr ? std::string() : password->get<std::string>());
  auto pfx =
      rt_.ca.make_pfx(*issued, pfx_password, get_string(body, "FriendlyName").value_or(""), legacy->value_or(false));
  if (!pfx) return error_reply(pfx.error());
  const auto& info = issued->certificate.info;
  IssuedRecord rec;
  rec.purpose = "pfx";
  rec.thumbprint = info.thumbprint;
  rec.serial = info.serial;
  rec.subject = info.subject;
  for (const auto& san : info.sans)
    rec.sans.push_back(std::string(certstore::san_type_key(san.type)) + ":" + san.value);
  rec.not_after = info.not_after;
  rec.issued_at = now_iso8601();
  rec.certificate = base64_encode(issued->certificate.der);
  Json out = Json::object();
  out["Pfx"] = base64_encode(*pfx);
  out["Thumbprint"] = info.thumbprint;
  out["Subject"] = info.subject;
  out["SerialNumber"] = info.serial;
  out["NotAfter"] = info.not_after;
  out["Certificate"] = rec.certificate;
  rt_.state.issued.push_back(std::move(rec));  // committed at the request's end
  return ok(out);
}

HttpReply AdminApi::settings(verb method, const Json& body) {
  Settings& s = rt_.settings;
  if (method == verb::put || method == verb::post) {
    Settings next = s;
    int token_lifetime = rt_.auth.token_lifetime();
    if (auto form = get_string(body, "EndpointForm")) {
      auto parsed = parse_endpoint_form(*form);
      if (!parsed) return error(400, "EndpointForm must be prefixed, rooted, absolute or rotate");
      next.endpoint_form = *parsed;
    }
    if (auto where = get_string(body, "CapabilityIn")) {
      auto parsed = parse_capability_in(*where);
      if (!parsed) return error(400, "CapabilityIn must be both, configuration or nowhere");
      next.capability_in = *parsed;
    }
    if (auto url = get_string(body, "PublicUrl")) {
      std::string u = *url;
      while (!u.empty() && u.back() == '/') u.pop_back();
      next.public_url = u;
    }
    auto heartbeat = get_int(body, "HeartbeatMinutes");
    auto validity = get_int(body, "CertificateValidityDays");
    auto lifetime = get_int(body, "TokenLifetimeSeconds");
    auto auto_approve = get_bool(body, "AutoApprove");
    auto invalidate = get_bool(body, "InvalidateOnSchedule");
    auto chain = get_bool(body, "ChainInventory");
    for (const Error* e :
         {heartbeat.ok() ? nullptr : &heartbeat.error(), validity.ok() ? nullptr : &validity.error(),
          lifetime.ok() ? nullptr : &lifetime.error(), auto_approve.ok() ? nullptr : &auto_approve.error(),
          invalidate.ok() ? nullptr : &invalidate.error(), chain.ok() ? nullptr : &chain.error()}) {
      if (e != nullptr) return error_reply(*e);
    }
    if (heartbeat->has_value()) {
      if (!valid_heartbeat_minutes(**heartbeat))
        return error(400, "HeartbeatMinutes must be " + std::to_string(kMinHeartbeatMinutes) + ".." +
                              std::to_string(kMaxHeartbeatMinutes) + " (whole minutes; " + std::to_string(**heartbeat) +
                              " is not a valid HeartbeatInterval)");
      next.heartbeat_minutes = static_cast<int>(**heartbeat);
    }
    if (validity->has_value()) {
      if (**validity < 1 || **validity > 36500) return error(400, "CertificateValidityDays must be 1..36500");
      next.certificate_validity_days = static_cast<int>(**validity);
    }
    if (lifetime->has_value()) {
      if (**lifetime < 1 || **lifetime > 86400 * 30) return error(400, "TokenLifetimeSeconds must be 1..2592000");
      token_lifetime = static_cast<int>(**lifetime);
    }
    if (auto_approve->has_value()) next.auto_approve = **auto_approve;
    if (invalidate->has_value()) next.invalidate_on_schedule = **invalidate;
    if (chain->has_value()) next.chain_inventory = **chain;
    s = next;
    rt_.auth.set_token_lifetime(token_lifetime);
    log()->info("admin: settings changed");
  } else if (method != verb::get) {
    return method_not_allowed();
  }
  Json out = Json::object();
  out["BasePath"] = s.base_path;
  out["EndpointForm"] = endpoint_form_name(s.endpoint_form);
  out["PublicUrl"] = s.public_url;
  out["CapabilityIn"] = capability_in_name(s.capability_in);
  out["HeartbeatMinutes"] = s.heartbeat_minutes;
  out["AutoApprove"] = s.auto_approve;
  out["InvalidateOnSchedule"] = s.invalidate_on_schedule;
  out["ChainInventory"] = s.chain_inventory;
  out["CertificateValidityDays"] = s.certificate_validity_days;
  out["TokenLifetimeSeconds"] = rt_.auth.token_lifetime();
  out["TokenPath"] = rt_.auth.token_path();
  out["AuthMethods"] = rt_.auth.methods();
  return ok(out);
}

HttpReply AdminApi::faults(verb method, const Json& body) {
  if (method == verb::delete_) {
    rt_.faults.clear();
    log()->info("admin: faults cleared");
  } else if (method == verb::post || method == verb::put) {
    auto invalidate = get_bool(body, "InvalidateSessions");
    if (!invalidate) return error_reply(invalidate.error());
    if (auto st = rt_.faults.configure(body); !st) return error_reply(st.error());
    if (invalidate->value_or(false)) {
      const std::size_t n = rt_.sessions.invalidate_all();
      rt_.counters.sessions_invalidated += n;
      log()->info("admin: invalidated all {} session(s)", n);
    }
    log()->info("admin: faults now {}", dump_json(rt_.faults.to_json()));
  } else if (method != verb::get) {
    return method_not_allowed();
  }
  return ok(rt_.faults.to_json());
}

}  // namespace wincert::sim::command
