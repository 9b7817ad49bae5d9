// The request router of command-sim: /admin/... to the admin API (loopback or --admin-token-env),
// the token path to the OAuth token endpoint, BASE/... to the Orchestrators API after authentication;
// fault injection and counters on the agent-facing side.
#pragma once

#include "common/secret.hpp"
#include "sim/command/admin_api.hpp"
#include "sim/command/agent_api.hpp"
#include "sim/command/http_types.hpp"
#include "sim/command/runtime.hpp"

namespace wincert::sim::command {

class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  virtual HttpReply handle(const HttpRequest& request, const ConnectionInfo& connection) = 0;
  // A request whose body exceeded the limit (the server answers 413 itself).
  virtual void note_oversized(std::string_view target) = 0;
};

class App : public RequestHandler {
 public:
  App(Runtime& runtime, Secret admin_token)
      : rt_(runtime), admin_token_(std::move(admin_token)), agent_(runtime), admin_(runtime) {}

  HttpReply handle(const HttpRequest& request, const ConnectionInfo& connection) override;
  void note_oversized(std::string_view target) override;

 private:
  HttpReply handle_admin(const HttpRequest& request, const ConnectionInfo& connection, std::string_view path,
                         std::string_view query);
  HttpReply handle_agent_facing(const HttpRequest& request, const ConnectionInfo& connection, std::string_view path);

  Runtime& rt_;
  Secret admin_token_;
  AgentApi agent_;
  AdminApi admin_;
};

}  // namespace wincert::sim::command
