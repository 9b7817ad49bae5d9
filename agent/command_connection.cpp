#include "agent/command_connection.hpp"

#ifndef WINCERT_VERSION
#define WINCERT_VERSION "0.0.0"
#endif

namespace wincert::agent {

CommandConnectionUse command_connection_use(const AgentConfig& config) {
  CommandConnectionUse use;
  use.connect_timeout = config.server_connect_timeout;
  use.request_timeout = config.server_request_timeout;
  return use;
}

Result<CommandConnection> make_command_connection(boost::asio::any_io_executor executor, const AgentConfig& config,
                                                  const CommandConnectionUse& use, CommandAuth* shared_auth) {
  auto base = parse_url(config.agents_server_uri);
  if (!base.ok()) return base.error().context("AgentsServerUri: ");

  HttpClientOptions options;
  options.connect_timeout = use.connect_timeout;
  options.request_timeout = use.request_timeout;
  options.verify_peer = config.server_tls_verify;
  options.ca_file = config.server_ca_file;
  options.client_certificate = config.client_cert;
  options.client_key = config.client_key;
  options.user_agent = std::string("wincert-agent/") + WINCERT_VERSION + use.user_agent_suffix;
  options.max_connections_per_origin = use.max_connections_per_origin;

  CommandConnection out;
  auto http = HttpClient::create(executor, options);
  if (!http.ok()) return http.error().context("connection to Command: ");
  out.http = std::move(http.value());

  if (shared_auth == nullptr) {
    HttpClientOptions token_options = options;
    token_options.client_certificate.clear();
    token_options.client_key.clear();
    token_options.max_connections_per_origin = 1;
    auto token_http = HttpClient::create(executor, token_options);
    if (!token_http.ok()) return token_http.error().context("connection to the token endpoint: ");
    out.token_http = std::move(token_http.value());
    out.auth = make_command_auth(config, *out.token_http);
  }

  ClientIdentity identity;
  identity.base = *base;
  identity.orchestrator_name = config.orchestrator_name;
  identity.agent_platform = config.agent_platform;
  identity.agent_version = pack_agent_version(WINCERT_VERSION);
  identity.client_parameters = config.client_parameters;
  out.client = std::make_unique<CommandClient>(*out.http, shared_auth ? *shared_auth : *out.auth, std::move(identity));
  return out;
}

}  // namespace wincert::agent
