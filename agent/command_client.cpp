#include "agent/command_client.hpp"

#include <charconv>
#include <cmath>
#include <limits>
#include <utility>

#include "common/encoding.hpp"
#include "common/log.hpp"

namespace wincert::agent {

namespace net = boost::asio;
using json = nlohmann::ordered_json;

namespace {

constexpr std::string_view kTenantId = "00000000-0000-0000-0000-000000000000";
// Codes the reference does not document for Command, in the same style, as sim/command answers them
// (sim/command/agent_api.hpp): the orchestrator awaits approval / was disapproved, and the session token is
// not valid (expired or invalidated). Command's own codes for these are not public; when they are known,
// they join these lists. Nothing is decided from Error.Message.
constexpr std::string_view kAwaitingApproval = "A0100010";
constexpr std::string_view kDisapproved = "A0100011";
constexpr std::string_view kInvalidSession = "A0100012";

std::string text_of(const json* value) {
  if (value == nullptr || value->is_null()) return {};
  if (value->is_string()) return value->get<std::string>();
  if (value->is_number_integer()) return std::to_string(value->get<long long>());
  if (value->is_number()) return std::to_string(value->get<double>());
  if (value->is_boolean()) return value->get<bool>() ? "true" : "false";
  return value->dump();
}

std::optional<long long> integer_of(const json* value) {
  return integer_in_range(value, std::numeric_limits<long long>::min(), std::numeric_limits<long long>::max());
}

std::optional<bool> bool_of(const json* value) {
  if (value == nullptr) return std::nullopt;
  if (value->is_boolean()) return value->get<bool>();
  if (value->is_string()) {
    if (iequals(value->get_ref<const std::string&>(), "true")) return true;
    if (iequals(value->get_ref<const std::string&>(), "false")) return false;
  }
  if (value->is_number_integer()) return value->get<long long>() != 0;
  return std::nullopt;
}

// HeartbeatInterval is minutes on the wire; fractions are accepted (handy for simulators).
std::optional<std::chrono::seconds> interval_minutes(const json* value) {
  if (value == nullptr || !value->is_number()) return std::nullopt;
  const double minutes = value->get<double>();
  if (!(minutes > 0) || minutes > 24 * 60) return std::nullopt;
  return std::chrono::seconds(std::max<long long>(1, static_cast<long long>(minutes * 60.0)));
}

}  // namespace

const json* find_member(const json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  auto exact = object.find(std::string(key));
  if (exact != object.end()) return &*exact;
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (iequals(it.key(), key)) return &it.value();
  }
  return nullptr;
}

std::string scalar_text(const json* value) { return text_of(value); }

std::optional<long long> integer_in_range(const json* value, long long min, long long max) {
  if (value == nullptr) return std::nullopt;
  std::optional<long long> out;
  if (value->is_number_unsigned()) {
    const auto v = value->get<unsigned long long>();
    if (v <= static_cast<unsigned long long>(std::numeric_limits<long long>::max())) out = static_cast<long long>(v);
  } else if (value->is_number_integer()) {
    out = value->get<long long>();
  } else if (value->is_number_float()) {
    // Only a whole double inside long long's range converts; 2^63 itself is outside.
    const double d = value->get<double>();
    if (std::isfinite(d) && d == std::trunc(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0)
      out = static_cast<long long>(d);
  } else if (value->is_string()) {
    const std::string& s = value->get_ref<const std::string&>();
    long long v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc{} && ptr == s.data() + s.size()) out = v;
  }
  if (out && (*out < min || *out > max)) return std::nullopt;
  return out;
}

ApiResult parse_api_result(const json& body) {
  ApiResult out;
  const json* result = find_member(body, "Result");
  if (result == nullptr || !result->is_object()) return out;
  out.present = true;
  if (auto status = integer_of(find_member(*result, "Status")); status && *status >= 0 && *status <= 3)
    out.status = static_cast<ApiStatus>(*status);
  if (const json* error = find_member(*result, "Error"); error && error->is_object()) {
    out.code = text_of(find_member(*error, "CodeString"));
    if (out.code.empty()) out.code = text_of(find_member(*error, "HResult"));
    if (out.code.empty()) {
      const std::string numeric = text_of(find_member(*error, "Code"));
      if (numeric != "0") out.code = numeric;
    }
    out.message = text_of(find_member(*error, "Message"));
  }
  return out;
}

bool is_auth_failure(const Error& error) {
  // An HTTP peer's refusal (Command, or the identity provider that issues its tokens), not a TLS
  // certificate that failed verification (also unauthenticated, but without an HTTP status).
  return (error.code == ErrorCode::kUnauthenticated || error.code == ErrorCode::kPermissionDenied) &&
         error.detail.http_status != 0;
}

bool ApiResult::session_invalid() const { return is_error() && iequals(code, kInvalidSession); }

std::string ApiResult::describe() const {
  std::string out = code;
  if (!message.empty()) out += (out.empty() ? "" : ": ") + body_excerpt(message);
  if (out.empty()) out = "Result.Status " + std::to_string(static_cast<int>(status));
  return out;
}

std::uint64_t pack_agent_version(std::string_view version) {
  std::uint64_t out = 0;
  int index = 0;
  while (!version.empty() && index < 4) {
    const auto dot = version.find('.');
    const std::string_view part = version.substr(0, dot);
    unsigned value = 0;
    std::from_chars(part.data(), part.data() + part.size(), value);
    out |= static_cast<std::uint64_t>(value & 0xFFFF) << (48 - 16 * index);
    ++index;
    if (dot == std::string_view::npos) break;
    version.remove_prefix(dot + 1);
  }
  return out;
}

std::string completion_body(std::string_view job_id, int status, std::int64_t audit_id, std::string_view message) {
  json body = json::object();
  body["JobId"] = std::string(job_id);
  body["Status"] = status;
  body["AuditId"] = audit_id;
  body["Message"] = std::string(message);
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string csr_body(std::string_view job_id, std::string_view csr_base64) {
  json body = json::object();
  body["JobId"] = std::string(job_id);
  body["CSRText"] = std::string(csr_base64);
  return body.dump();
}

namespace {
constexpr std::string_view kInventoryTail = "]}";
}

InventoryBodyBuilder::InventoryBodyBuilder(std::string_view job_id, std::size_t max_bytes)
    : head_("{\"JobId\":" + json(std::string(job_id)).dump() + ",\"Inventory\":["),
      max_bytes_(max_bytes),
      current_(head_) {}

std::optional<std::string> InventoryBodyBuilder::add(const jobs::InventoryItem& item) {
  const std::string text = jobs::to_json(item).dump(-1, ' ', false, json::error_handler_t::replace);
  std::optional<std::string> full;
  if (!empty_ && current_.size() + 1 + text.size() + kInventoryTail.size() > max_bytes_) {
    full = std::exchange(current_, head_) + std::string(kInventoryTail);
    empty_ = true;
  }
  if (!empty_) current_ += ',';
  current_ += text;
  empty_ = false;
  return full;
}

std::string InventoryBodyBuilder::finish() {
  empty_ = true;
  return std::exchange(current_, head_) + std::string(kInventoryTail);
}

Result<RegisterReply> interpret_register_reply(const json& doc) {
  RegisterReply reply;
  reply.result = parse_api_result(doc);
  const json* session = find_member(doc, "Session");
  if (session != nullptr && session->is_object()) {
    // The token goes back into every request: a string or nothing (never the text of another type).
    if (const json* token = find_member(*session, "Token"); token && token->is_string())
      reply.session.token = token->get<std::string>();
    reply.session.agent_id = text_of(find_member(*session, "AgentId"));
    reply.session.certificate = text_of(find_member(*session, "Certificate"));
    if (auto interval = interval_minutes(find_member(*session, "HeartbeatInterval")))
      reply.session.heartbeat_interval = *interval;
    if (const json* jobs = find_member(*session, "Jobs"); jobs && jobs->is_array()) {
      for (const json& j : *jobs) {
        if (!j.is_object()) continue;
        JobEntry entry;
        entry.job_id = text_of(find_member(j, "JobId"));
        entry.job_type_id = text_of(find_member(j, "JobTypeId"));
        entry.configuration_endpoint = text_of(find_member(j, "ConfigurationEndpoint"));
        entry.completion_endpoint = text_of(find_member(j, "CompletionEndpoint"));
        entry.schedule = text_of(find_member(j, "Schedule"));
        entry.cron = text_of(find_member(j, "Cron"));
        entry.capability = text_of(find_member(j, "Capability"));
        if (auto p = integer_in_range(find_member(j, "Priority"), std::numeric_limits<int>::min(),
                                      std::numeric_limits<int>::max()))
          entry.priority = static_cast<int>(*p);
        reply.session.jobs.push_back(std::move(entry));
      }
    }
  }

  const bool renewal_requested = iequals(reply.result.code, kRenewalRequested);
  const bool renewal_required = iequals(reply.result.code, kRenewalRequired);
  if (!reply.session.token.empty()) {
    reply.state = RegisterState::kSession;
    return reply;
  }
  // No session. Say why in the caller's terms: wait (not approved yet, or renewal merely requested)
  // or stop (disapproved, or a new auth certificate is required).
  if (renewal_required || iequals(reply.result.code, kDisapproved)) {
    reply.state = RegisterState::kRejected;
    return reply;
  }
  if (renewal_requested || iequals(reply.result.code, kAwaitingApproval) ||
      reply.result.status == ApiStatus::kSuccess || reply.result.status == ApiStatus::kWarning) {
    reply.state = RegisterState::kPendingApproval;
    return reply;
  }
  // Any other Error without a session: Command may answer differently later (the C agent retries too).
  if (reply.result.is_error())
    return Error::unavailable("Register: Command did not open a session (" + reply.result.describe() + ")")
        .with_command_code(reply.result.code);
  return Error::invalid_argument("Register: the response has neither a session token nor a Result error: " +
                                 body_excerpt(doc.dump(-1, ' ', false, json::error_handler_t::replace)));
}

HeartbeatReply interpret_heartbeat_reply(const json& doc) {
  HeartbeatReply reply;
  reply.result = parse_api_result(doc);
  reply.heartbeat_interval = interval_minutes(find_member(doc, "HeartbeatInterval"));
  if (auto valid = bool_of(find_member(doc, "SessionValid"))) {
    reply.session_valid = *valid;
  } else {
    reply.session_valid = !reply.result.is_error();
  }
  return reply;
}

JobConfigReply interpret_job_configuration(json doc, const JobEntry& job) {
  JobConfigReply reply;
  reply.result = parse_api_result(doc);
  const json* wrapped = find_member(doc, "Job");
  const bool uo_wrapped = wrapped && wrapped->is_object() &&
                          (find_member(*wrapped, "Capability") || find_member(*wrapped, "CertificateStoreDetails"));
  // Envelope fields may sit at either level.
  auto either = [&](std::string_view key) -> const json* {
    if (const json* v = find_member(doc, key); v && !v->is_null()) return v;
    if (uo_wrapped) return find_member(*wrapped, key);
    return nullptr;
  };
  reply.cancelled = bool_of(either("JobCancelled")).value_or(false);
  if (auto audit = integer_of(either("AuditId"))) {
    reply.audit_id = *audit;
  } else if (auto history = integer_of(either("JobHistoryId"))) {
    reply.audit_id = *history;
  }
  reply.inventory_endpoint = text_of(either("InventoryEndpoint"));
  reply.enroll_endpoint = text_of(either("EnrollEndpoint"));

  const json* server_error = either("ServerError");
  if (!reply.result.present && server_error && !server_error->is_null()) {
    reply.result.present = true;
    reply.result.status = ApiStatus::kError;
    reply.result.message =
        server_error->is_object() ? text_of(find_member(*server_error, "Message")) : text_of(server_error);
    if (reply.result.message.empty())
      reply.result.message = server_error->dump(-1, ' ', false, json::error_handler_t::replace);
  }
  // The configuration is moved out of the reply, never copied (it may be tens of MB).
  reply.config = uo_wrapped ? std::move(const_cast<json&>(*wrapped)) : std::move(doc);
  json& config = reply.config;
  if (!config.is_object()) return reply;  // parse_job_config says what is wrong with it
  // Fill in what the job list knows and the configuration left out.
  if (!find_member(config, "JobId") || text_of(find_member(config, "JobId")).empty()) config["JobId"] = job.job_id;
  if (!find_member(config, "JobHistoryId") && reply.audit_id != 0) config["JobHistoryId"] = reply.audit_id;
  if (!find_member(config, "JobCancelled")) config["JobCancelled"] = reply.cancelled;
  if ((!find_member(config, "Capability") || text_of(find_member(config, "Capability")).empty()) &&
      !job.capability.empty())
    config["Capability"] = job.capability;
  if (!find_member(config, "JobTypeId") && !job.job_type_id.empty()) config["JobTypeId"] = job.job_type_id;
  return reply;
}

CommandClient::CommandClient(HttpClient& http, CommandAuth& auth, ClientIdentity identity)
    : http_(http), auth_(auth), identity_(std::move(identity)) {}

Result<Url> CommandClient::resolve(std::string_view endpoint) const {
  auto url = resolve_endpoint(identity_.base, endpoint);
  if (!url.ok()) return url.error().context("endpoint '" + body_excerpt(endpoint) + "' from Command: ");
  return url;
}

net::awaitable<Result<json>> CommandClient::call(Url url, std::string body, std::string what,
                                                 const PeerJsonLimits& limits, json::parser_callback_t on_parse,
                                                 bool priority) {
  // Credentials go to AgentsServerUri's origin only (resolve() refuses others; this guards every path).
  if (!same_origin(url, identity_.base))
    co_return Error::invalid_argument(what + ": " + url.origin() + " is not AgentsServerUri's origin " +
                                      identity_.base.origin() + ": refused, no credentials sent");
  for (int attempt = 0;; ++attempt) {
    HttpRequest request;
    request.url = url;
    request.body = body;
    request.priority = priority;
    auto header = co_await auth_.authorization();
    if (!header.ok()) co_return std::move(header).error().context(what + ": authentication: ");
    if (*header) request.headers.emplace_back("Authorization", (*header)->reveal());
    auto response = co_await http_.send(std::move(request), what);
    if (!response.ok()) co_return std::move(response).error().context(what + ": ");
    const unsigned status = response->status;
    const int http_status = static_cast<int>(status);
    const std::string where = url.origin() + url.path();
    if (status == 401) {
      if (attempt == 0 && auth_.on_unauthorized()) continue;  // a fresh token may do
      co_return Error::unauthenticated(what + ": Command rejected " + auth_.principal() + " (HTTP 401 at " + where +
                                       "): check the account, its password or client secret, and that it may use "
                                       "the Orchestrators API")
          .with_http_status(http_status);
    }
    if (status == 403)
      co_return Error::permission_denied(what + ": Command refused " + auth_.principal() + " (HTTP 403 at " + where +
                                         "): the account lacks the Agent Management permission or the certificate "
                                         "is not trusted for agents")
          .with_http_status(http_status);
    if (status == 404)
      co_return Error::not_found(what + ": " + where +
                                 " not found (HTTP 404): check AgentsServerUri (usually "
                                 "https://host/KeyfactorAgents)")
          .with_http_status(http_status);
    if (status == 408 || status == 429 || status >= 500) {
      const std::string message = what + ": Command answered HTTP " + std::to_string(status) + " " + response->reason +
                                  " at " + where + ": " + body_excerpt(response->body);
      if (status == 429) co_return Error::resource_exhausted(message).with_http_status(http_status);
      co_return Error::unavailable(message).with_http_status(http_status);
    }
    if (status < 200 || status >= 300)
      co_return Error::failed_precondition(what + ": unexpected HTTP " + std::to_string(status) + " " +
                                           response->reason + " at " + where + ": " + body_excerpt(response->body))
          .with_http_status(http_status);
    if (trim(response->body).empty()) co_return json::object();
    auto doc = parse_peer_ordered_json(response->body, limits, "the response from " + where, on_parse);
    if (!doc.ok()) co_return std::move(doc).error().context(what + ": ");
    if (!doc->is_object())
      co_return Error::invalid_argument(what + ": the response from " + where +
                                        " is not a JSON object: " + body_excerpt(response->body));
    response->body = std::string();  // the text is no longer needed: free it before the caller works
    co_return std::move(doc.value());
  }
}

net::awaitable<Result<RegisterReply>> CommandClient::register_session(std::string agent_id,
                                                                      std::vector<std::string> capabilities,
                                                                      std::string csr) {
  json body = json::object();
  body["AgentPlatform"] = identity_.agent_platform;
  body["AgentVersion"] = identity_.agent_version;
  body["TenantId"] = std::string(kTenantId);
  body["ClientMachine"] = identity_.orchestrator_name;
  body["AgentId"] = agent_id;
  if (csr.empty()) {
    body["CSR"] = nullptr;
  } else {
    body["CSR"] = std::move(csr);
  }
  body["Capabilities"] = capabilities;
  body["ClientParameters"] = identity_.client_parameters;
  WINCERT_CO_ASSIGN_OR_RETURN(Url url, resolve("/Session/Register"));
  WINCERT_CO_ASSIGN_OR_RETURN(json doc, co_await call(url, body.dump(), "Register", peer_json_limits::kCommandReply));
  co_return interpret_register_reply(doc);
}

net::awaitable<Result<HeartbeatReply>> CommandClient::heartbeat(std::string session_token) {
  json body = json::object();
  body["AgentPlatform"] = identity_.agent_platform;
  body["TenantId"] = std::string(kTenantId);
  body["ClientMachine"] = identity_.orchestrator_name;
  body["SessionToken"] = session_token;
  WINCERT_CO_ASSIGN_OR_RETURN(Url url, resolve("/Session/Heartbeat"));
  // Priority: a heartbeat never waits behind the configuration fetches and deliveries sharing the connection.
  WINCERT_CO_ASSIGN_OR_RETURN(
      json doc, co_await call(url, body.dump(), "Heartbeat", peer_json_limits::kCommandReply, nullptr, true));
  co_return interpret_heartbeat_reply(doc);
}

net::awaitable<Result<JobConfigReply>> CommandClient::job_configuration(JobEntry job, std::string session_token) {
  const std::string what = "configuration of job " + job.job_id;
  auto url = resolve(job.configuration_endpoint);
  if (!url.ok()) co_return url.error().context(what + ": ");
  json body = json::object();
  body["SessionToken"] = session_token;
  body["JobId"] = job.job_id;
  auto last_inventory = std::make_shared<jobs::LastInventoryReader>();
  WINCERT_CO_ASSIGN_OR_RETURN(json doc, co_await call(*url, body.dump(), what, peer_json_limits::kJobConfiguration,
                                                      last_inventory->callback()));
  JobConfigReply reply = interpret_job_configuration(std::move(doc), job);
  reply.last_inventory = std::move(last_inventory);
  co_return reply;
}

net::awaitable<Result<PostReply>> CommandClient::post_job_data(std::string endpoint, std::string session_token,
                                                               std::string body_object, std::string what) {
  auto url = resolve(endpoint);
  if (!url.ok()) co_return url.error().context(what + ": ");
  // SessionToken first, spliced in front of the stored body (which may be megabytes of inventory).
  std::string_view rest = trim(body_object);
  if (rest.empty() || rest.front() != '{')
    co_return Error::invalid_argument(what + ": stored body is not a JSON object");
  rest.remove_prefix(1);
  std::string body = "{\"SessionToken\":" + json(session_token).dump();
  if (!trim(rest).empty() && trim(rest).front() != '}') body += ",";
  body += rest;
  WINCERT_CO_ASSIGN_OR_RETURN(json doc, co_await call(*url, std::move(body), what, peer_json_limits::kCommandReply));
  PostReply reply;
  reply.result = parse_api_result(doc);
  reply.body = std::move(doc);
  co_return reply;
}

}  // namespace wincert::agent
