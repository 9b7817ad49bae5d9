// Building a WinRM connection from settings: the HttpAuth for a scheme and credentials, and a
// WsmanTransport with the agent's TLS options. Shared by `wincert-agent winrm exec|ps` (settings from
// flags) and the store session factory (settings from a job's target and the agent's WinRM defaults),
// so both authenticate the same way.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
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
  // certificate: the PEM client certificate (shown in messages; the TLS layer presents it).
  std::string client_certificate_file;
};

// The transport's timeouts and TLS settings.
struct TransportSettings {
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(30)};  // resolve + TCP, and TLS handshake
  std::optional<std::chrono::milliseconds> read_timeout;                // unset: the transport's default
  std::string ca_file;                  // PEM CAs trusted for the host's TLS certificate; empty = system store
  bool verify_peer = true;              // off only by an explicit, logged option
  std::string client_certificate_file;  // PEM, presented in the TLS handshake (certificate auth)
  std::string client_key_file;
  winrm::WinrmObserver* observer = nullptr;  // connections and auth handshakes (metrics); may be null
};

// The HttpAuth for spec, or an Error saying which setting is missing. Never contacts the host.
Result<std::unique_ptr<winrm::HttpAuth>> make_http_auth(const HttpAuthSpec& spec);

winrm::TransportOptions make_transport_options(const TransportSettings& settings);

// A transport to endpoint authenticating as spec (fails on unusable TLS files, e.g. an unreadable CA
// file). Logs a warning when TLS verification is off for an https endpoint.
Result<std::unique_ptr<winrm::WsmanTransport>> make_transport(boost::asio::any_io_executor executor,
                                                              winrm::Endpoint endpoint, const HttpAuthSpec& spec,
                                                              const TransportSettings& settings);

}  // namespace wincert::agent
