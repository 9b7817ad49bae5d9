// The Orchestrators API as Keyfactor's agents speak it (reference 3): POST /Session/Register and
// /Session/Heartbeat, and the per-job endpoints handed out in the job list and configurations
// (Configuration, Complete, inventory Update, reenrollment Enroll). Every call is a POST with a JSON
// body; business outcomes travel in the body's Result envelope with HTTP 200, malformed requests get 400.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "sim/command/http_types.hpp"
#include "sim/command/runtime.hpp"

namespace wincert::sim::command {

// Error codes in Result.Error.CodeString. Only A0100007/A0100008 are documented for Command (auth
// certificate renewal requested / required; reference 2 and 11.2, the only codes Keyfactor's C agent
// tests). Every other refusal carries no code (kNoCode: Code 0, empty CodeString and HResult) and says
// why in Error.Message and Result.Status: Command's own codes for those cases are not public.
inline constexpr std::string_view kNoCode = "";
inline constexpr std::string_view kCodeAuthCertRequested = "A0100007";
inline constexpr std::string_view kCodeAuthCertRequired = "A0100008";
// The one undocumented code kept: wincert-agent (agent/command_client.cpp kInvalidSession) reads Status 3
// with this code as "the session token is not valid, register again". The reference documents no code
// for an invalid session; keep it until the agent stops depending on it.
inline constexpr std::string_view kCodeInvalidSession = "A0100012";

class AgentApi {
 public:
  explicit AgentApi(Runtime& runtime) : rt_(runtime) {}

  // The canonical spelling of a route below the base path ("session/register" -> "Session/Register"),
  // nullopt when there is no such endpoint.
  static std::optional<std::string> canonical_route(std::string_view route);

  // route: canonical; origin: "http(s)://host:port" the agent used (for absolute endpoint URLs).
  HttpReply handle(const std::string& route, std::string_view body, const Principal& principal,
                   const std::string& origin);

 private:
  struct JobContext {
    Agent* agent = nullptr;
    Job* job = nullptr;
    Store* store = nullptr;
  };
  HttpReply register_session(const Json& body, const Principal& principal, const std::string& origin);
  HttpReply heartbeat(const Json& body);
  // Validates the session and finds the job of the family the route belongs to; a reply on failure.
  std::optional<HttpReply> resolve_job(const Json& body, std::string_view family, JobContext& out);
  HttpReply configuration(const Json& body, std::string_view family, const std::string& origin);
  HttpReply complete(const Json& body, std::string_view family);
  HttpReply inventory_update(const Json& body);
  HttpReply enroll(const Json& body);

  Runtime& rt_;
};

}  // namespace wincert::sim::command
