// The HTTP authentication seam of the WS-Man transport. The transport drives an HttpAuth through
// each request; Basic lives here, NTLM / Kerberos / Negotiate and message encryption plug in the same way.
//
// Per request the transport does:
//   new connection  -> reset(connection)            (TLS peer certificate for channel binding)
//   every request   -> authorization()              (header value, or nullopt when the connection is
//                                                    already authenticated)
//   401             -> on_challenge(WWW-Authenticate values) -> kContinue: send the next leg on the
//                      same connection; kFailed: the credentials were refused
//   200/500/...     -> on_response(WWW-Authenticate values)  (Kerberos mutual auth: AP-REP on the 200)
//   bodies          -> wrap()/unwrap() when encrypts() (multipart/encrypted, reference winrm.md §3.9)
// Methods are synchronous (CPU work or GSSAPI calls); they never see the SOAP contents except to wrap.
// Those that may block (may_block()) run on the worker pool (common/worker_pool.hpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "common/secret.hpp"

namespace wincert::winrm {

// What an HttpAuth learns about a freshly opened connection.
struct ConnectionInfo {
  std::string host;  // as given in the endpoint (SPNs are built from it)
  unsigned short port = 0;
  bool tls = false;
  std::string peer_certificate_der;  // leaf certificate of the server (TLS only), for channel binding
};

// A request body ready to send: the bytes and their Content-Type.
struct HttpBody {
  std::string data;
  std::string content_type;
};

enum class ChallengeOutcome {
  kContinue,  // authorization() now returns the next leg; resend on the same connection
  kFailed,    // the server refused the credentials
};

class HttpAuth {
 public:
  HttpAuth() = default;
  HttpAuth(const HttpAuth&) = delete;
  HttpAuth& operator=(const HttpAuth&) = delete;
  virtual ~HttpAuth() = default;

  // "Basic", "Negotiate", ... for messages and logs.
  virtual std::string scheme() const = 0;
  // The account name for error messages ("authentication failed for USER at host:port"); never a secret.
  virtual std::string principal() const = 0;

  // Refuses unsafe combinations before anything is sent (e.g. Basic over plain HTTP).
  virtual Status check_transport(const ConnectionInfo& connection) const = 0;
  // Called on each new TCP/TLS connection: forget any per-connection context.
  virtual Status reset(const ConnectionInfo& connection) = 0;
  // The Authorization header for the next request; nullopt when none is needed.
  virtual Result<std::optional<std::string>> authorization() = 0;
  // A 401 arrived with these WWW-Authenticate values.
  virtual Result<ChallengeOutcome> on_challenge(const std::vector<std::string>& www_authenticate) = 0;
  // A non-401 response arrived; its WWW-Authenticate values (possibly none), e.g. the Kerberos AP-REP.
  virtual Status on_response(const std::vector<std::string>& www_authenticate) {
    (void)www_authenticate;
    return {};
  }

  // True when reset/authorization/on_challenge/on_response can block (GSSAPI/SSPI may ask a KDC
  // synchronously): the transport then calls them on the worker pool, never on its I/O thread. The
  // transport makes one call at a time per object, so an implementation needs no locking of its own.
  virtual bool may_block() const { return false; }

  // Message encryption. When encrypts() is true, the transport authenticates a new connection with
  // empty-body requests first (Windows refuses plaintext SOAP there), then wraps every request body and
  // unwraps every response body whose Content-Type is multipart/encrypted.
  virtual bool encrypts() const { return false; }
  virtual Result<HttpBody> wrap(std::string_view soap) {
    return HttpBody{std::string(soap), "application/soap+xml;charset=UTF-8"};
  }
  virtual Result<std::string> unwrap(std::string_view body, std::string_view content_type) {
    (void)content_type;
    return std::string(body);
  }
};

// HTTP Basic: "Authorization: Basic base64(user:password)" on every request. The password only ever
// travels inside TLS unless allow_unencrypted was set explicitly.
class BasicAuth final : public HttpAuth {
 public:
  BasicAuth(std::string user, Secret password, bool allow_unencrypted);

  std::string scheme() const override { return "Basic"; }
  std::string principal() const override { return user_; }
  Status check_transport(const ConnectionInfo& connection) const override;
  Status reset(const ConnectionInfo& connection) override;
  Result<std::optional<std::string>> authorization() override;
  Result<ChallengeOutcome> on_challenge(const std::vector<std::string>& www_authenticate) override;

 private:
  std::string user_;
  Secret header_value_;  // "Basic <base64>": as secret as the password
  bool allow_unencrypted_;
};

}  // namespace wincert::winrm
