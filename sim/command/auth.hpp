// Authentication of agents on the Orchestrators API: HTTP Basic (users file or one user whose password
// comes from the environment), client certificates (mTLS against --client-ca, or a forwarded
// X-ARR-ClientCert header when a TLS-terminating proxy is trusted; the subject CN is the identity), and
// OAuth 2.0 client credentials (a token endpoint issuing Bearer tokens with a configurable lifetime).
// Several methods may be on at once; a request passes when one of them accepts it.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "common/secret.hpp"
#include "sim/command/http_types.hpp"

namespace wincert::sim::command {

struct Credential {
  std::string name;  // user name ("DOMAIN\user" allowed) or OAuth client_id
  Secret secret;
};
// Lines "name:secret" (split at the first ':'); blank lines and lines starting with '#' are skipped.
Result<std::vector<Credential>> load_credentials_file(const std::string& path);

struct AuthOptions {
  bool anonymous = false;  // no authentication at all (when no method is configured)
  bool basic = false;
  bool certificate = false;
  bool oauth = false;
  std::vector<Credential> users;
  std::vector<Credential> oauth_clients;
  std::string token_path = "/oauth/token";
  int token_lifetime_seconds = 300;
  std::string required_scope;     // when set, a requested scope must include it
  std::string required_audience;  // when set, a requested audience must equal it
  bool trust_arr_header = false;  // accept X-ARR-ClientCert (URL-encoded PEM) from a proxy
  std::string client_ca_file;     // verifies forwarded certificates
};

struct Principal {
  std::string name;
  std::string method;  // "basic", "certificate", "oauth", "anonymous"
};

struct AuthOutcome {
  std::optional<Principal> principal;
  HttpReply refusal;   // 401 with WWW-Authenticate when principal is empty
  std::string reason;  // for the log; never holds a secret
};

class AgentAuthenticator {
 public:
  static Result<AgentAuthenticator> create(AuthOptions options);

  AuthOutcome authenticate(const HttpRequest& request, const ConnectionInfo& connection);
  // POST {token_path}: form-encoded grant_type=client_credentials with client_id/client_secret in the
  // body or in a Basic header (RFC 6749 2.3.1). `auth_failed` tells the caller to count a failure.
  HttpReply token_endpoint(const HttpRequest& request, bool& auth_failed);

  const std::string& token_path() const { return options_.token_path; }
  int token_lifetime() const { return options_.token_lifetime_seconds; }
  void set_token_lifetime(int seconds) { options_.token_lifetime_seconds = seconds; }
  // Every token issued so far answers "expired" from now on.
  void expire_all_tokens();
  std::vector<std::string> methods() const;

 private:
  explicit AgentAuthenticator(AuthOptions options) : options_(std::move(options)) {}
  HttpReply challenge(const std::string& bearer_error) const;
  std::optional<std::string> verify_forwarded_certificate(const std::string& header_value) const;

  struct Token {
    std::string client_id;
    std::chrono::steady_clock::time_point expires;
  };
  AuthOptions options_;
  std::map<std::string, Token> tokens_;
};

// The subject CN of a DER certificate ("" when it has none or does not parse).
std::string common_name_of(const std::string& der);

}  // namespace wincert::sim::command
