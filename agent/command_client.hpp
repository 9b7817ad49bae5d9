// The Orchestrators API ("KeyfactorAgents") as the Keyfactor agents speak it: /Session/Register,
// /Session/Heartbeat, and the per-job endpoints Command names (configuration, completion, inventory,
// CSR enrollment). JSON POSTs; every response carries a Result envelope {Status, Error{Code,
// CodeString, Message}}. See ../shared/reference/orchestrators-api.md sections 1-4.
//
// Errors carry a code and the HTTP status: transport failures and HTTP 408/5xx are unavailable, 429
// resource_exhausted, timeouts deadline_exceeded (all transient); 401 (after one re-fetched OAuth token) is
// unauthenticated, 403 permission_denied, 404 not_found, other statuses failed_precondition; a body that is
// not the expected JSON is invalid_argument. An API-level Error (Result.Status 3) comes back inside the
// reply so the caller can tell "session invalid" (re-register) from "Command refused this" (give up on
// the entry); a refused registration carries Command's code in detail.command_code.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/command_auth.hpp"
#include "agent/command_http.hpp"
#include "common/peer_json.hpp"
#include "common/result.hpp"
#include "jobs/job_result.hpp"

namespace wincert::agent {

// Codes Command answers /Session/Register with when the agent's auth certificate must be renewed
// (reference section 2): 7 requests it (a session may still be granted), 8 requires it.
inline constexpr std::string_view kRenewalRequested = "A0100007";
inline constexpr std::string_view kRenewalRequired = "A0100008";

// AgentApiResultStatus.
enum class ApiStatus : int { kUnknown = 0, kSuccess = 1, kWarning = 2, kError = 3 };

struct ApiResult {
  bool present = false;  // the response had a Result object
  ApiStatus status = ApiStatus::kUnknown;
  std::string code;     // CodeString, else HResult, else Code ("A0100007")
  std::string message;  // Error.Message as Command sent it
  bool is_error() const { return status == ApiStatus::kError; }
  // Command says the session token is no longer valid: register again. The rule: Result.Status 3 (Error)
  // with the invalid-session code A0100012 (what sim/command answers on every job endpoint; the reference
  // documents no code of Command's own). Any other Error, with another code or none (a ServerError),
  // means "Command refused this": re-registering would not change the answer and would retry it forever.
  // The message is never read. The heartbeat has its own field for it (SessionValid).
  bool session_invalid() const;
  std::string describe() const;  // "A0100007: message" or "status 3"
};

// One entry of Session.Jobs.
struct JobEntry {
  std::string job_id;
  std::string job_type_id;
  std::string configuration_endpoint;
  std::string completion_endpoint;
  std::string schedule;
  std::string cron;
  int priority = 5;
  std::string capability;  // when Command (or the simulator) names it in the list; else from the config
};

struct SessionInfo {
  std::string token;
  std::string agent_id;
  std::chrono::seconds heartbeat_interval{300};  // HeartbeatInterval is in minutes on the wire
  std::vector<JobEntry> jobs;
  std::string certificate;  // Session.Certificate when Command issued an agent auth certificate
};

enum class RegisterState {
  kSession,  // token granted (possibly with a warning)
  // No session yet: awaiting approval (A0100010), auth certificate renewal requested (A0100007), or a
  // Success/Warning Result without a token; retry later.
  kPendingApproval,
  kRejected,  // disapproved (A0100011) / auth certificate renewal required (A0100008): stop
};

struct RegisterReply {
  RegisterState state = RegisterState::kSession;
  SessionInfo session;
  ApiResult result;
};

struct HeartbeatReply {
  bool session_valid = true;
  std::optional<std::chrono::seconds> heartbeat_interval;
  ApiResult result;
};

// A job configuration response. `config` is the Universal Orchestrator-shaped configuration for
// jobs::parse_job_config (the "Job" object when Command wraps it, else the whole body), completed with
// JobId, JobHistoryId (from AuditId) and Capability from the job list when the body lacks them.
struct JobConfigReply {
  ApiResult result;
  bool cancelled = false;
  std::int64_t audit_id = 0;
  std::string inventory_endpoint;
  std::string enroll_endpoint;
  nlohmann::ordered_json config;  // moved out of the parsed reply, never copied (it may be 64 MiB)
  // LastInventory, taken out of `config` while the reply was parsed: give it to jobs::parse_job_config_document.
  std::shared_ptr<jobs::LastInventoryReader> last_inventory;
};

// Reply to a completion, inventory or CSR POST.
struct PostReply {
  ApiResult result;
  nlohmann::ordered_json body;  // the whole response (InventoryJob, Certificate, ...)
};

struct ClientIdentity {
  Url base;                       // AgentsServerUri
  std::string orchestrator_name;  // ClientMachine
  int agent_platform = 1;
  std::uint64_t agent_version = 0;  // major<<48 | minor<<32 | build<<16 | revision
  std::map<std::string, std::string> client_parameters;
};

// "1.2.3" -> packed agent version.
std::uint64_t pack_agent_version(std::string_view version);

class CommandClient {
 public:
  // http and auth must outlive the client.
  CommandClient(HttpClient& http, CommandAuth& auth, ClientIdentity identity);

  // `csr`: base64 DER PKCS#10 for a new agent certificate; "" sends "CSR": null.
  boost::asio::awaitable<Result<RegisterReply>> register_session(std::string agent_id,
                                                                 std::vector<std::string> capabilities,
                                                                 std::string csr = {});
  boost::asio::awaitable<Result<HeartbeatReply>> heartbeat(std::string session_token);
  boost::asio::awaitable<Result<JobConfigReply>> job_configuration(JobEntry job, std::string session_token);
  // POSTs `body_object` (a JSON object's text without SessionToken) to a Command-named endpoint with
  // SessionToken added first. Used for completions and inventory (from the outbox) and CSRs.
  boost::asio::awaitable<Result<PostReply>> post_job_data(std::string endpoint, std::string session_token,
                                                          std::string body_object, std::string what);

  const ClientIdentity& identity() const { return identity_; }
  Result<Url> resolve(std::string_view endpoint) const;

 private:
  // Replies are parsed with parse_peer_json under `limits` (job configurations get the larger ones); on_parse
  // may take values out of the tree while it is built (jobs::LastInventoryReader).
  boost::asio::awaitable<Result<nlohmann::ordered_json>> call(
      Url url, std::string body, std::string what, const PeerJsonLimits& limits,
      nlohmann::ordered_json::parser_callback_t on_parse = nullptr, bool priority = false);

  HttpClient& http_;
  CommandAuth& auth_;
  ClientIdentity identity_;
};

// Body builders (the outbox stores these; SessionToken is added when sent).
std::string completion_body(std::string_view job_id, int status, std::int64_t audit_id, std::string_view message);
std::string csr_body(std::string_view job_id, std::string_view csr_base64);
// Builds an inventory's request bodies {"JobId", "Inventory": [...]} one item at a time, each at most
// max_bytes (an item larger than that on its own goes alone), so that only one body is held at once.
class InventoryBodyBuilder {
 public:
  InventoryBodyBuilder(std::string_view job_id, std::size_t max_bytes);
  // Adds an item; returns the body before it when the item did not fit beside what it holds.
  std::optional<std::string> add(const jobs::InventoryItem& item);
  // The last body. An empty inventory is one body with an empty list: the store is empty, and Command
  // must hear so.
  std::string finish();

 private:
  std::string head_;
  std::size_t max_bytes_;
  std::string current_;
  bool empty_ = true;
};

// What Command's replies mean, from the parsed document (pure: unit-tested and fuzzed).
Result<RegisterReply> interpret_register_reply(const nlohmann::ordered_json& doc);
HeartbeatReply interpret_heartbeat_reply(const nlohmann::ordered_json& doc);
// `doc` is moved into the reply's config (never copied); `job` fills in what the body left out.
JobConfigReply interpret_job_configuration(nlohmann::ordered_json doc, const JobEntry& job);

// True for the errors that mean "Command does not accept our credentials": unauthenticated or
// permission_denied with an HTTP status (Command's 401 after a token refresh or 403, or the identity
// provider refusing the client credentials). Retrying with the same credentials will not help, dropping
// results would be wrong. A TLS certificate that fails verification (unauthenticated without an HTTP
// status) is not one.
bool is_auth_failure(const Error& error);

// Case-insensitive member lookup (Command is .NET; casing of keys is not something to bet on).
const nlohmann::ordered_json* find_member(const nlohmann::ordered_json& object, std::string_view key);
ApiResult parse_api_result(const nlohmann::ordered_json& body);
// A scalar member as text ("" for null or absent).
std::string scalar_text(const nlohmann::ordered_json* value);
// A whole number from Command (a number or its text), or nothing when it is absent, not a whole
// number or outside [min, max]: a double out of range is never cast (that is undefined behaviour).
std::optional<long long> integer_in_range(const nlohmann::ordered_json* value, long long min, long long max);

}  // namespace wincert::agent
