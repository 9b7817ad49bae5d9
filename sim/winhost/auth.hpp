// Authentication of incoming WS-Man requests. Kept behind a small per-connection interface so that
// NTLM/Kerberos acceptors (multi-leg, connection-bound, with message encryption) can be added beside Basic:
// an acceptor keeps its GSSAPI context in its ConnectionAuth, may unwrap request bodies and wrap responses.
#pragma once

#include <boost/beast/http.hpp>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "common/secret.hpp"

namespace wincert::sim {

namespace http = boost::beast::http;
using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;

// Accounts from a users file: lines "user:password" or "DOMAIN:user:password" (the second form is also
// gss-ntlmssp's NTLM_USER_FILE format). Blank lines and lines starting with '#' are ignored.
class UserDatabase {
 public:
  struct Account {
    std::string domain;  // may be empty
    std::string user;
    Secret password;
  };
  static Result<UserDatabase> load(const std::string& path);
  void add(std::string domain, std::string user, std::string password);
  // Accepts "user", "DOMAIN\user" and "user@domain"; names compare case-insensitively, passwords exactly.
  // Returns the canonical owner name ("user" or "DOMAIN\user") on success.
  std::optional<std::string> verify(const std::string& login, const std::string& password) const;
  bool empty() const { return accounts_.empty(); }

 private:
  std::vector<Account> accounts_;
};

// What the server does with a request after authentication.
struct AuthDecision {
  bool authenticated = false;
  std::string user;  // owner name for shells and quotas
  // When not authenticated: the status (401) of the challenge.
  unsigned status = 401;
  // Headers for the response: the challenge when refused; when accepted, e.g. the final
  // "WWW-Authenticate: Negotiate <token>" leg that goes on the (200/500) WS-Man response.
  std::vector<std::pair<std::string, std::string>> headers;
};

struct ConnectionInfo {
  bool tls = false;
  std::string client_ip;
  // RFC 5929 tls-server-end-point hash of the server certificate (raw bytes; empty on plain HTTP).
  // GSSAPI channel bindings' application data is "tls-server-end-point:" + this.
  std::string tls_server_end_point;
  // DER of the TLS client certificate when the client presented one (certificate authentication).
  std::string client_certificate_der;
};

// Authentication state of one TCP connection.
class ConnectionAuth {
 public:
  virtual ~ConnectionAuth() = default;
  virtual AuthDecision authenticate(const HttpRequest& request, const ConnectionInfo& conn) = 0;
  // Message encryption hooks: identity for Basic.
  virtual Result<std::string> unwrap_request(const HttpRequest& request) { return request.body(); }
  virtual void wrap_response(HttpResponse& /*response*/) {}
};

class Authenticator {
 public:
  virtual ~Authenticator() = default;
  virtual std::unique_ptr<ConnectionAuth> new_connection() = 0;
};

struct BasicAuthOptions {
  bool allow_unencrypted = false;  // like Windows' AllowUnencrypted: Basic over plain HTTP refused unless set
  bool accept_any = false;         // replay mode: any Basic credentials are fine
};

// Basic against a UserDatabase. Challenges advertise Negotiate and Basic like Windows does.
std::unique_ptr<Authenticator> make_basic_authenticator(std::shared_ptr<const UserDatabase> users,
                                                        BasicAuthOptions options);

// The 401 challenge headers Windows sends.
std::vector<std::pair<std::string, std::string>> windows_challenge_headers();

}  // namespace wincert::sim
