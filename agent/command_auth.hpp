// How the agent authenticates each request to Command: HTTP Basic with the connect account, OAuth 2.0
// client credentials (token fetched from BearerTokenUrl, cached, refreshed before it expires and
// re-fetched once after a 401), or nothing at the HTTP level when the client certificate (mTLS, set up
// in the HttpClient) is the credential. Header values are Secrets: they never reach a log.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "agent/command_http.hpp"
#include "agent/config.hpp"
#include "common/result.hpp"
#include "common/secret.hpp"

namespace wincert::agent {

class CommandAuth {
 public:
  virtual ~CommandAuth() = default;
  // The Authorization header value, or nullopt when none is sent.
  virtual boost::asio::awaitable<Result<std::optional<Secret>>> authorization() = 0;
  // Command answered 401: drop cached credentials. True when asking again could succeed (a new token).
  virtual bool on_unauthorized() = 0;
  // Who we are, for messages: "basic user 'DOMAIN\\svc'", "OAuth client 'agent'", "client certificate".
  virtual std::string principal() const = 0;
};

std::unique_ptr<CommandAuth> make_basic_auth(std::string username, Secret password);
std::unique_ptr<CommandAuth> make_certificate_only_auth(std::string certificate_file);

// OAuth 2.0 client credentials (RFC 6749 4.4; client_secret_post, as Keycloak and Entra ID accept).
class OAuthClientCredentials final : public CommandAuth {
 public:
  using SteadyNow = std::function<std::chrono::steady_clock::time_point()>;
  // `http` sends the token requests (no client certificate needed there); it must outlive this.
  OAuthClientCredentials(HttpClient& http, OAuthSettings settings, SteadyNow now = nullptr);
  ~OAuthClientCredentials() override;

  boost::asio::awaitable<Result<std::optional<Secret>>> authorization() override;
  bool on_unauthorized() override;
  std::string principal() const override;

  std::uint64_t tokens_fetched() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The auth the configuration asks for. token_http is used by OAuth only.
std::unique_ptr<CommandAuth> make_command_auth(const AgentConfig& config, HttpClient& token_http);

// application/x-www-form-urlencoded escaping.
// expires_in of an OAuth token reply in seconds: a whole number (or its text) in 1 s .. 366 days;
// nothing otherwise (a huge or negative double is never cast: that would be undefined behaviour).
std::optional<long long> expires_in_seconds(const nlohmann::json& value);
std::string form_encode(std::string_view text);

}  // namespace wincert::agent
