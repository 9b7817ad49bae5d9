#include "jobs/target.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace wincert::jobs {

namespace {

std::optional<std::uint16_t> parse_port(std::string_view text) {
  text = trim(text);
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || value < 1 || value > 65535) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(value);
}

bool valid_host_text(std::string_view host) {
  if (host.empty()) return false;
  for (char c : host) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || c == '/' || c == '\\' || c == '@' || c == '?' || c == '#' || c == '[' || c == ']') return false;
  }
  return true;
}

}  // namespace

std::optional<AuthScheme> parse_auth_scheme(std::string_view name) {
  name = trim(name);
  if (iequals(name, "basic")) return AuthScheme::kBasic;
  if (iequals(name, "ntlm")) return AuthScheme::kNtlm;
  if (iequals(name, "kerberos")) return AuthScheme::kKerberos;
  if (iequals(name, "negotiate")) return AuthScheme::kNegotiate;
  if (iequals(name, "certificate")) return AuthScheme::kCertificate;
  return std::nullopt;
}

std::optional<ExecutionMode> parse_execution_mode(std::string_view name) {
  name = trim(name);
  if (iequals(name, "psrp")) return ExecutionMode::kPsrp;
  if (iequals(name, "winrs")) return ExecutionMode::kWinrs;
  return std::nullopt;
}

std::string_view execution_mode_name(ExecutionMode mode) { return mode == ExecutionMode::kPsrp ? "psrp" : "winrs"; }

std::string_view auth_scheme_name(AuthScheme scheme) {
  switch (scheme) {
    case AuthScheme::kBasic:
      return "basic";
    case AuthScheme::kNtlm:
      return "ntlm";
    case AuthScheme::kKerberos:
      return "kerberos";
    case AuthScheme::kNegotiate:
      return "negotiate";
    case AuthScheme::kCertificate:
      return "certificate";
  }
  return "negotiate";
}

std::string endpoint_url(std::string_view host, std::uint16_t port, bool https) {
  std::string url = https ? "https://" : "http://";
  if (host.find(':') != std::string_view::npos) {
    url += '[';
    url += host;
    url += ']';
  } else {
    url += host;
  }
  url += ':';
  url += std::to_string(port);
  url += "/wsman";
  return url;
}

Result<ClientMachine> parse_client_machine(std::string_view client_machine) {
  const std::string_view whole = trim(client_machine);
  auto invalid = [&](std::string_view why) {
    return Error::invalid_argument("CertificateStoreDetails.ClientMachine '" + std::string(whole) + "' " +
                                   std::string(why));
  };
  if (whole.empty())
    return Error::invalid_argument(
        "CertificateStoreDetails.ClientMachine is empty; set the host name or IP of the Windows server");

  std::string_view machine = whole;
  std::string_view arg;
  if (std::size_t bar = whole.find('|'); bar != std::string_view::npos) {
    machine = trim(whole.substr(0, bar));
    arg = trim(whole.substr(bar + 1));
  }

  ClientMachine out;
  if (!machine.empty() && machine.front() == '[') {
    std::size_t close = machine.find(']');
    if (close == std::string_view::npos) return invalid("has '[' without ']'");
    out.host = std::string(machine.substr(1, close - 1));
    std::string_view rest = machine.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return invalid("has text after ']' that is not ':port'");
      out.port = parse_port(rest.substr(1));
      if (!out.port) return invalid("has a port that is not a number from 1 to 65535");
    }
  } else if (std::size_t colon = machine.find(':');
             colon != std::string_view::npos && machine.find(':', colon + 1) == std::string_view::npos) {
    out.host = std::string(machine.substr(0, colon));
    out.port = parse_port(machine.substr(colon + 1));
    if (!out.port) return invalid("has a port that is not a number from 1 to 65535");
  } else {
    out.host = std::string(machine);  // a host name, IPv4, or an unbracketed IPv6 literal (no port)
  }

  out.local = iequals(out.host, "localhost") || iequals(out.host, "localmachine") || iequals(arg, "localmachine");
  if (!out.local && !valid_host_text(out.host)) return invalid("is not a host name or IP address");
  return out;
}

namespace {

// PowerShell over SSH: the account and its key or password; no WinRM authentication settings apply.
Result<Target> resolve_ssh_target(const JobConfig& config, const ClientMachine& machine, Target target) {
  const StoreProperties& props = config.store.properties;
  RemoteTarget& remote = target.remote;
  remote.port = 22;
  if (machine.port) {
    remote.port = *machine.port;  // host:port in ClientMachine wins
  } else if (props.winrm_port && !trim(props.winrm_port->value).empty()) {
    auto port = parse_port(props.winrm_port->value);
    if (!port) {
      return Error::invalid_argument("store property '" + props.winrm_port->key + "' is '" +
                                     std::string(trim(props.winrm_port->value)) +
                                     "', not a port number from 1 to 65535 (22 for ssh)");
    }
    remote.port = *port;
  }
  const bool ipv6 = remote.host.find(':') != std::string::npos;
  remote.endpoint_url = "ssh://" + (ipv6 ? "[" + remote.host + "]" : remote.host) + ":" + std::to_string(remote.port);
  remote.username = config.server_username ? std::string(trim(*config.server_username)) : std::string();
  remote.password = config.server_password;
  if (remote.username.empty()) {
    return Error::invalid_argument("the store on " + target.machine +
                                   " uses PowerShell over SSH ('WinRM Protocol' = ssh), which needs ServerUsername "
                                   "(and a private key or password in ServerPassword)");
  }
  if (remote.password.empty()) {
    return Error::invalid_argument("the store on " + target.machine +
                                   " uses PowerShell over SSH: ServerPassword must hold the private key (PEM or "
                                   "OpenSSH) or the password of " +
                                   remote.username);
  }
  return target;
}

}  // namespace

Result<Target> resolve_target(const JobConfig& config, const TargetOptions& options) {
  const std::string& client_machine = config.store.client_machine;
  auto parsed = parse_client_machine(client_machine);
  if (!parsed.ok()) return parsed.error();

  Target target;
  target.machine = parsed->host;
  if (parsed->local) {
    if (!options.local_backend_available) {
      return Error::failed_precondition("ClientMachine '" + client_machine +
                                        "' asks for the local CryptoAPI path, which needs the Windows build of "
                                        "wincert-agent; use the server's host name to manage it over WinRM");
    }
    target.local = true;
    return target;
  }

  const StoreProperties& props = config.store.properties;
  RemoteTarget& remote = target.remote;
  remote.host = parsed->host;
  remote.spn_with_port = props.spn_with_port;
  remote.allow_unencrypted = props.winrm_allow_unencrypted;

  // Protocol: http unless the store says https (the extension's code default).
  if (props.winrm_protocol && !trim(props.winrm_protocol->value).empty()) {
    std::string_view protocol = trim(props.winrm_protocol->value);
    if (iequals(protocol, "https")) {
      remote.https = true;
    } else if (iequals(protocol, "http")) {
      remote.https = false;
    } else if (iequals(protocol, "ssh")) {
      remote.transport = RemoteTransport::kSsh;
    } else {
      return Error::invalid_argument("store property '" + props.winrm_protocol->key + "' is '" + std::string(protocol) +
                                     "'; set it to https, http or ssh");
    }
  }
  if (props.execution_mode && !trim(props.execution_mode->value).empty()) {
    remote.execution_mode = parse_execution_mode(props.execution_mode->value);
    if (!remote.execution_mode) {
      return Error::invalid_argument("store property '" + props.execution_mode->key + "' is '" +
                                     std::string(trim(props.execution_mode->value)) +
                                     "'; set it to psrp (PowerShell remoting) or winrs, or leave it empty for the "
                                     "agent's WinRM.ExecutionMode");
    }
  }
  if (props.jea_endpoint_name) {
    remote.configuration_name = std::string(trim(props.jea_endpoint_name->value));
    const bool valid = std::all_of(remote.configuration_name.begin(), remote.configuration_name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
    });
    if (!valid) {
      return Error::invalid_argument("store property '" + props.jea_endpoint_name->key + "' is '" +
                                     remote.configuration_name +
                                     "', not a PowerShell session configuration name (letters, digits, '.', '_', '-')");
    }
    if (!remote.configuration_name.empty() && remote.execution_mode == ExecutionMode::kWinrs) {
      return Error::invalid_argument("the store names the JEA endpoint '" + remote.configuration_name +
                                     "', which only PowerShell remoting reaches, but its ExecutionMode is winrs; "
                                     "clear one of them");
    }
  }
  if (remote.transport == RemoteTransport::kSsh) return resolve_ssh_target(config, *parsed, std::move(target));

  remote.port = remote.https ? 5986 : 5985;
  if (parsed->port) {
    remote.port = *parsed->port;  // host:port in ClientMachine wins
  } else if (props.winrm_port && !trim(props.winrm_port->value).empty()) {
    auto port = parse_port(props.winrm_port->value);
    if (!port) {
      return Error::invalid_argument("store property '" + props.winrm_port->key + "' is '" +
                                     std::string(trim(props.winrm_port->value)) +
                                     "', not a port number from 1 to 65535 (5985 for http, 5986 for https)");
    }
    remote.port = *port;
  }
  remote.endpoint_url = endpoint_url(remote.host, remote.port, remote.https);

  remote.auth = options.default_auth;
  if (props.winrm_authentication && !trim(props.winrm_authentication->value).empty()) {
    auto scheme = parse_auth_scheme(props.winrm_authentication->value);
    if (!scheme) {
      return Error::invalid_argument("store property '" + props.winrm_authentication->key + "' is '" +
                                     std::string(trim(props.winrm_authentication->value)) +
                                     "'; use basic, ntlm, kerberos, negotiate or certificate");
    }
    remote.auth = *scheme;
  }

  remote.username = config.server_username ? std::string(trim(*config.server_username)) : std::string();
  remote.password = config.server_password;
  if (remote.uses_agent_identity() && (remote.auth == AuthScheme::kBasic || remote.auth == AuthScheme::kNtlm)) {
    return Error::invalid_argument(
        "ServerUsername is empty, which means the agent's own Kerberos identity, but WinRM "
        "authentication is " +
        std::string(auth_scheme_name(remote.auth)) +
        "; set ServerUsername/ServerPassword on the store or set 'WinRM Authentication' to "
        "kerberos or negotiate");
  }
  if (!remote.https && remote.auth == AuthScheme::kBasic && !remote.allow_unencrypted) {
    return Error::invalid_argument(
        "Basic authentication over http would send the password in clear to " + remote.endpoint_url +
        "; set 'WinRM Protocol' to https, or set the store property 'WinRM AllowUnencrypted' "
        "to true if the host allows unencrypted WinRM");
  }
  if (!remote.https && remote.auth == AuthScheme::kCertificate) {
    return Error::invalid_argument("certificate authentication needs TLS but 'WinRM Protocol' is http for " +
                                   remote.endpoint_url + "; set it to https");
  }
  return target;
}

}  // namespace wincert::jobs
