// Building a WinRM connection: the HttpAuth for a scheme and credentials, and a WsmanTransport with the transport
// options as they are (the configuration holds them directly: agent/winrm_settings.hpp). Shared by
// `wincert-agent winrm exec|ps` (options from flags), `doctor` and the store session factory (the configuration's
// options, a job's target), so all of them authenticate the same way.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <memory>
#include <optional>
#include <string>

#include "common/result.hpp"
#include "common/secret.hpp"
#include "jobs/target.hpp"
#include "winrm/endpoint.hpp"
#include "winrm/http_auth.hpp"
#include "winrm/transport.hpp"

namespace wincert::agent {

// Who authenticates, and how.
struct HttpAuthSpec {
  std::optional<jobs::AuthScheme> scheme;  // nullopt: no Authorization header at all
  // basic/ntlm: required. kerberos/negotiate: empty = the agent's own identity (ccache / client
  // keytab); with a user and no password, that user's ccache or keytab entry.
  std::string user;
  Secret password;
  bool spn_with_port = false;      // Kerberos/NTLM target HTTP/host:port
  bool allow_unencrypted = false;  // Basic over plain http (the host must allow it too)
};

// The HttpAuth for spec, or an Error saying which setting is missing. Never contacts the host. Certificate
// authentication names `client_certificate_file` in messages (the TLS layer presents it).
Result<std::unique_ptr<winrm::HttpAuth>> make_http_auth(const HttpAuthSpec& spec,
                                                        const std::string& client_certificate_file = {});

// The agent's transport options for a host authenticated with `scheme`: the agent's client certificate and key
// are presented only for certificate authentication, never to a store that authenticates otherwise.
winrm::TransportOptions transport_options_for(const winrm::TransportOptions& agent,
                                              std::optional<jobs::AuthScheme> scheme);

// A transport to endpoint authenticating as spec, with `options` as given (fails on unusable TLS files, e.g. an
// unreadable CA file). Logs a warning when TLS verification is off for an https endpoint.
Result<std::unique_ptr<winrm::WsmanTransport>> make_transport(boost::asio::any_io_executor executor,
                                                              winrm::Endpoint endpoint, const HttpAuthSpec& spec,
                                                              winrm::TransportOptions options);

}  // namespace wincert::agent
