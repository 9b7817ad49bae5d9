// The one place that turns the configuration into a Command client: the HTTP client for AgentsServerUri (with
// the client certificate when configured), the one for the OAuth token endpoint (never the client
// certificate), the auth and the CommandClient. `run` and `doctor` both use it, so they cannot drift apart.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "agent/command_auth.hpp"
#include "agent/command_client.hpp"
#include "agent/command_http.hpp"
#include "agent/config.hpp"
#include "common/result.hpp"

namespace wincert::agent {

struct CommandConnection {
  std::unique_ptr<HttpClient> http;        // AgentsServerUri
  std::unique_ptr<HttpClient> token_http;  // BearerTokenUrl (OAuth only; idle otherwise)
  std::unique_ptr<CommandAuth> auth;
  std::unique_ptr<CommandClient> client;
};

// How a caller uses the connection; the TLS files, verification and identity come from the configuration.
struct CommandConnectionUse {
  std::chrono::milliseconds connect_timeout;
  std::chrono::milliseconds request_timeout;
  std::size_t max_connections_per_origin = 4;
  std::string user_agent_suffix;  // e.g. " (doctor)"
};

// The default use: the configuration's own timeouts.
CommandConnectionUse command_connection_use(const AgentConfig& config);

// Fails when AgentsServerUri is not a usable URL, or the TLS files (ServerCaFile, CertPath, KeyPath) cannot
// be used; the error says which setting to check.
// With `shared_auth`, the client authenticates through it (one OAuth token for both connections) and the
// result has no auth and no token_http of its own: for the agent's second connection, the one results are
// delivered on.
Result<CommandConnection> make_command_connection(boost::asio::any_io_executor executor, const AgentConfig& config,
                                                  const CommandConnectionUse& use, CommandAuth* shared_auth = nullptr);

}  // namespace wincert::agent
