#include "agent/doctor.hpp"

#include <openssl/x509_vfy.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>

#include "agent/command_auth.hpp"
#include "agent/command_client.hpp"
#include "agent/command_connection.hpp"
#include "agent/command_http.hpp"
#include "agent/config.hpp"
#include "agent/local_sessions.hpp"
#include "agent/platform/files.hpp"
#include "agent/winrm_auth_factory.hpp"
#include "agent/winrm_script_runner.hpp"
#include "agent/wsman_psrp_runner.hpp"
#include "certstore/remote/remote_backend.hpp"
#include "common/encoding.hpp"
#include "common/log.hpp"
#include "common/text.hpp"
#include "jobs/job_config.hpp"
#include "jobs/target.hpp"
#include "winrm/winrs.hpp"

#ifndef WINCERT_VERSION
#define WINCERT_VERSION "0.0.0"
#endif

namespace wincert::agent {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace fs = std::filesystem;
using tcp = net::ip::tcp;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);
constexpr std::string_view kEmDash = "\xE2\x80\x94";
// host-info answers in well under a second; a doctor run should not hang on a stuck host for the
// agent's 10-minute job deadline.
constexpr seconds kHostInfoDeadline{60};
// The session token of the Command probe: a well-formed GUID no session ever has.
constexpr std::string_view kProbeSessionToken = "00000000-0000-0000-0000-000000000000";

DoctorCheck pass(std::string name, std::string detail) { return {true, std::move(name), std::move(detail), {}, {}}; }
DoctorCheck fail(std::string name, std::string detail, std::string hint) {
  return {false, std::move(name), std::move(detail), std::move(hint), {}};
}
// A failed check that keeps the error its hint was chosen from (for --json).
DoctorCheck fail(std::string name, std::string detail, std::string hint, const Error& error) {
  return {false, std::move(name), std::move(detail), std::move(hint), error};
}

// ---------------------------------------------------------------------------------------------------------
// The hint table: rows of (advice, predicate on the error's code and detail), per step, first match wins.

using AdviceTest = bool (*)(const Error&, const DoctorFacts&);
struct AdviceRow {
  DoctorAdvice advice;
  AdviceTest matches;
};

bool tls_name_mismatch(const Error& e, const DoctorFacts&) {
  return e.detail.system_kind == SystemStatusKind::kOpenSsl &&
         (e.detail.system_status == X509_V_ERR_HOSTNAME_MISMATCH ||
          e.detail.system_status == X509_V_ERR_IP_ADDRESS_MISMATCH);
}
// A certificate that failed verification: unauthenticated, with OpenSSL's verify result.
bool tls_not_trusted(const Error& e, const DoctorFacts&) {
  return e.detail.system_kind == SystemStatusKind::kOpenSsl && e.code == ErrorCode::kUnauthenticated;
}
bool tls_other(const Error& e, const DoctorFacts&) { return e.detail.system_kind == SystemStatusKind::kOpenSsl; }
bool http_answered(const Error& e, const DoctorFacts&) { return e.detail.http_status != 0; }
bool http_401(const Error& e, const DoctorFacts&) { return e.detail.http_status == 401; }
bool http_403(const Error& e, const DoctorFacts&) { return e.detail.http_status == 403; }
bool http_404(const Error& e, const DoctorFacts&) { return e.detail.http_status == 404; }
bool not_reached(const Error& e, const DoctorFacts&) {
  return e.detail.http_status == 0 && (e.code == ErrorCode::kUnavailable || e.code == ErrorCode::kDeadlineExceeded);
}
bool timed_out(const Error& e, const DoctorFacts&) { return e.code == ErrorCode::kDeadlineExceeded; }
// WS-Man's quota fault, by subcode ("w:QuotaLimit") or WSManFault Code (2150859173 = 0x803381A5).
bool quota(const Error& e, const DoctorFacts&) {
  const std::string& fault = e.detail.wsman_fault;
  const bool quota_fault =
      fault == "2150859173" || (fault.size() >= 10 && fault.compare(fault.size() - 10, 10, "QuotaLimit") == 0);
  return quota_fault || e.code == ErrorCode::kResourceExhausted;
}
bool gss_or_sspi(const Error& e, const DoctorFacts&) {
  return e.detail.system_kind == SystemStatusKind::kGss || e.detail.system_kind == SystemStatusKind::kSspi;
}
// Basic over plain http without AllowUnencrypted is refused before anything is sent: no peer fact at all.
bool refused_in_clear(const Error& e, const DoctorFacts& facts) {
  return facts.basic_over_http && e.detail.empty() && !e.retryable();
}
bool script_failed(const Error& e, const DoctorFacts&) { return !e.detail.script_category.empty(); }

constexpr AdviceRow kTokenRows[] = {
    {DoctorAdvice::kTlsName, tls_name_mismatch},
    {DoctorAdvice::kTlsTrust, tls_not_trusted},
    {DoctorAdvice::kTls, tls_other},
    {DoctorAdvice::kCredentials, http_answered},  // any answer but 200 is the identity provider's refusal
    {DoctorAdvice::kUnreachable, not_reached},
};
constexpr AdviceRow kCallRows[] = {
    {DoctorAdvice::kTlsName, tls_name_mismatch},
    {DoctorAdvice::kTlsTrust, tls_not_trusted},
    {DoctorAdvice::kTls, tls_other},
    {DoctorAdvice::kCredentials, http_401},
    {DoctorAdvice::kPermission, http_403},
    {DoctorAdvice::kNoApi, http_404},
    {DoctorAdvice::kSlow, timed_out},
};
constexpr AdviceRow kWinrmRows[] = {
    {DoctorAdvice::kCredentials, http_401},
    {DoctorAdvice::kTlsName, tls_name_mismatch},
    {DoctorAdvice::kTlsTrust, tls_not_trusted},
    {DoctorAdvice::kTls, tls_other},
    {DoctorAdvice::kQuota, quota},
    {DoctorAdvice::kKerberos, gss_or_sspi},
    {DoctorAdvice::kUnencrypted, refused_in_clear},
    {DoctorAdvice::kSlow, timed_out},
    {DoctorAdvice::kScript, script_failed},
};

template <std::size_t N>
DoctorAdvice first_match(const AdviceRow (&rows)[N], const Error& error, const DoctorFacts& facts) {
  for (const AdviceRow& row : rows) {
    if (row.matches(error, facts)) return row.advice;
  }
  return DoctorAdvice::kGeneric;
}

bool is_tls(DoctorAdvice advice) {
  return advice == DoctorAdvice::kTlsName || advice == DoctorAdvice::kTlsTrust || advice == DoctorAdvice::kTls;
}

template <typename D>
milliseconds capped(D value, const std::optional<seconds>& cap) {
  milliseconds out = std::chrono::duration_cast<milliseconds>(value);
  if (cap && *cap < out) out = *cap;
  return out;
}

// Library messages end with their own advice (": set ServerCaFile ...", ": check ..."); the doctor's line
// carries the fix after the dash, so the detail keeps only what failed. The call name prefix goes too.
std::string what_failed(std::string message) {
  for (std::string_view prefix : {"Heartbeat: authentication: ", "Heartbeat: "}) {
    if (message.rfind(prefix, 0) == 0) message = message.substr(prefix.size());
  }
  std::size_t cut = std::string::npos;
  for (std::string_view advice : {": set ", ": check ", ": use ", ": is the ", ": is WinRM ", ": retrying later"}) {
    const std::size_t at = message.find(advice);
    if (at != std::string::npos && at > 0) cut = std::min(cut, at);
  }
  if (cut != std::string::npos) message.resize(cut);
  return message;
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out += separator;
    out += parts[i];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// DNS + TCP, checked by hand before any HTTP so a failure names the step (the HTTP clients fold both into
// their connect errors).

struct TcpProbe {
  bool resolved = false;
  bool connected = false;
  bool timed_out = false;
  bool refused = false;
  std::string error;                   // the system's text for the failing step
  std::vector<std::string> addresses;  // resolved addresses
  std::string peer;                    // the address:port connected to
};

std::string endpoint_text(const tcp::endpoint& endpoint) {
  const std::string address = endpoint.address().to_string();
  const std::string host = endpoint.address().is_v6() ? "[" + address + "]" : address;
  return host + ":" + std::to_string(endpoint.port());
}

net::awaitable<TcpProbe> probe_tcp(std::string host, std::uint16_t port, milliseconds timeout) {
  TcpProbe probe;
  auto executor = co_await net::this_coro::executor;
  auto resolver = std::make_shared<tcp::resolver>(executor);
  net::steady_timer deadline(executor);
  deadline.expires_after(timeout);
  auto timed_out = std::make_shared<bool>(false);
  deadline.async_wait([resolver, timed_out](boost::system::error_code ec) {
    if (!ec) {
      *timed_out = true;
      resolver->cancel();
    }
  });
  const std::string service = std::to_string(port);
  auto [resolve_ec, results] = co_await resolver->async_resolve(host, service, kUseTuple);
  deadline.cancel();
  if (resolve_ec) {
    probe.timed_out = *timed_out;
    probe.error = resolve_ec.message();
    co_return probe;
  }
  probe.resolved = true;
  for (const auto& entry : results) {
    const std::string address = entry.endpoint().address().to_string();
    if (std::find(probe.addresses.begin(), probe.addresses.end(), address) == probe.addresses.end())
      probe.addresses.push_back(address);
  }

  beast::tcp_stream stream(executor);
  stream.expires_after(timeout);
  auto [connect_ec, endpoint] = co_await stream.async_connect(results, kUseTuple);
  if (connect_ec) {
    probe.timed_out = connect_ec == beast::error::timeout;
    probe.refused = connect_ec == net::error::connection_refused;
    probe.error = connect_ec.message();
    co_return probe;
  }
  probe.connected = true;
  probe.peer = endpoint_text(endpoint);
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream.close();
  co_return probe;
}

// ---------------------------------------------------------------------------------------------------------
// Configuration

// load_agent_config lists every problem with the key it is about; each goes to the check it belongs to.
std::vector<DoctorCheck> config_failure_checks(const Error& error, const std::vector<ConfigProblem>& problems,
                                               const std::string& path) {
  if (error.code != ErrorCode::kInvalidArgument) {  // the file itself cannot be read
    return {fail("config", error.message, "check the --config path and that this user can read the file", error)};
  }
  if (problems.empty()) {  // not JSON, or not an object
    return {fail("config", error.message,
                 "fix the JSON syntax at the position shown (compare config/agent.example.json)", error)};
  }
  std::vector<std::string> config, secrets, files;
  for (const auto& p : problems) {
    const std::string text = p.key + ": " + p.what;
    if (p.key == "Password" || p.key == "ClientSecret" || p.key == "SecretsFile") {
      secrets.push_back(text);
    } else if (p.unreadable_file) {
      files.push_back(text);
    } else {
      config.push_back(text);
    }
  }
  std::vector<DoctorCheck> out;
  if (!config.empty())
    out.push_back(fail("config", path + ": " + join(config, "; "),
                       "correct the keys named above (names and allowed values: config/agent.example.json)", error));
  if (!secrets.empty())
    out.push_back(fail("secrets", join(secrets, "; "),
                       "put the secret into SecretsFile (a JSON object, chmod 600, owned by the agent's user) or "
                       "its environment variable",
                       error));
  if (!files.empty())
    out.push_back(fail("files", join(files, "; "), "check the paths and that the agent's user may read them", error));
  return out;
}

DoctorCheck secrets_check(const AgentConfig& cfg) {
  const auto from = [&](std::string_view env) {
    if (std::getenv(std::string(env).c_str()) != nullptr) return "from " + std::string(env);
    return "from SecretsFile '" + cfg.secrets_file + "'";
  };
  std::vector<std::string> found;
  switch (cfg.auth_mode) {
    case CommandAuthMode::kBasic:
      if (cfg.password.empty())
        return fail("secrets", "the Command password of '" + cfg.username + "' is empty (" + from(kPasswordEnv) + ")",
                    "set \"Password\" in SecretsFile or " + std::string(kPasswordEnv));
      found.push_back("Command password of '" + cfg.username + "' present (" + from(kPasswordEnv) + ")");
      break;
    case CommandAuthMode::kOAuth:
      found.push_back("OAuth client secret of '" + cfg.oauth.client_id + "' present (" + from(kClientSecretEnv) + ")");
      break;
    case CommandAuthMode::kNone:
      found.push_back("no Command password needed (client certificate)");
      break;
  }
  if (!cfg.doctor_targets.empty()) {
    std::size_t with = 0;
    for (const auto& t : cfg.doctor_targets) with += t.has_password ? 1 : 0;
    found.push_back("DoctorPasswords for " + std::to_string(with) + " of " + std::to_string(cfg.doctor_targets.size()) +
                    " DoctorTargets");
  }
  return pass("secrets", join(found, "; "));
}

// Nearest existing ancestor of a path (or the path itself).
fs::path existing_ancestor(fs::path path) {
  std::error_code ec;
  path = fs::absolute(path, ec);
  while (!path.empty() && !fs::exists(path, ec)) {
    const fs::path parent = path.parent_path();
    if (parent == path) break;
    path = parent;
  }
  return path;
}

std::string errno_text() { return files::last_error_text(); }

DoctorCheck files_check(const AgentConfig& cfg, const std::optional<seconds>& cap) {
  std::vector<std::string> checked;
  const auto note = [&](std::string_view key, const std::string& path) {
    if (!path.empty()) checked.push_back(std::string(key) + " " + path);
  };
  // Readability of these was checked by the configuration; loading them as PEM happens here.
  note("ServerCaFile", cfg.server_ca_file);
  note("CertPath", cfg.client_cert);
  note("KeyPath", cfg.client_key);
  note("WinRM.CaFile", cfg.winrm.transport.ca_file);
  note("WinRM.ClientCertPath", cfg.winrm.transport.client_certificate_file);
  note("WinRM.ClientKeyPath", cfg.winrm.transport.client_key_file);
  {
    net::io_context io(1);
    HttpClientOptions options;
    options.connect_timeout = capped(cfg.server_connect_timeout, cap);
    options.verify_peer = cfg.server_tls_verify;
    options.ca_file = cfg.server_ca_file;
    options.client_certificate = cfg.client_cert;
    options.client_key = cfg.client_key;
    auto http = HttpClient::create(io.get_executor(), options);
    if (!http.ok())
      return fail("files", http.error().message,
                  "ServerCaFile must be a PEM CA bundle, CertPath a PEM certificate (chain) and KeyPath its "
                  "unencrypted PEM key");
  }
  if (!cfg.log_file.empty()) {
    std::error_code ec;
    if (fs::exists(cfg.log_file, ec)) {
      if (!files::can_write(cfg.log_file))
        return fail("files", "LogFile '" + cfg.log_file + "' is not writable: " + errno_text(),
                    "chown/chmod the file for the agent's user, or clear LogFile to log to stderr (journald)");
    } else {
      const fs::path dir = existing_ancestor(fs::path(cfg.log_file).parent_path());
      if (!files::can_write(dir.string()))
        return fail("files",
                    "LogFile '" + cfg.log_file + "' cannot be created in '" + dir.string() + "': " + errno_text(),
                    "create the directory for the agent's user, or clear LogFile to log to stderr (journald)");
    }
    checked.push_back("LogFile " + cfg.log_file + " (writable)");
  }
  if (checked.empty()) return pass("files", "no files configured besides SecretsFile");
  return pass("files", "readable: " + join(checked, ", "));
}

DoctorCheck outbox_check(const AgentConfig& cfg) {
  const std::string dir = cfg.outbox_directory;
  const std::string hint =
      "make OutboxDirectory a directory the agent's user owns (mkdir -p, chown; systemd: ReadWritePaths=)";
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    const fs::path ancestor = existing_ancestor(dir);
    if (!fs::is_directory(ancestor, ec) || !files::can_write(ancestor.string()))
      return fail(
          "outbox",
          "'" + dir + "' does not exist and cannot be created in '" + ancestor.string() + "' (" + errno_text() + ")",
          hint);
    return pass("outbox", "'" + dir + "' does not exist yet; the agent creates it (mode 0700) under writable '" +
                              ancestor.string() + "'");
  }
  if (!fs::is_directory(dir, ec)) return fail("outbox", "'" + dir + "' exists but is not a directory", hint);
  // A real write: access(2) says yes to root even on a read-only mount.
  if (auto probed = files::probe_write(dir); !probed.ok()) return fail("outbox", probed.error().message, hint);

  std::string detail = "'" + dir + "' writable";
  const fs::path outbox = fs::path(dir) / "outbox";
  if (fs::is_directory(outbox, ec)) {
    if (!files::can_write(outbox.string()))
      return fail("outbox", "'" + outbox.string() + "' is not writable: " + errno_text(), hint);
    std::size_t waiting = 0;
    for (const auto& entry : fs::directory_iterator(outbox, ec)) waiting += entry.is_regular_file(ec) ? 1 : 0;
    detail += ", " + std::to_string(waiting) + " result file(s) waiting for delivery";
  }
  // Results are written before they are sent: a nearly full disk keeps them in memory only (the agent
  // logs "its result is not safe yet"), so say it before it happens.
  constexpr std::uintmax_t kMinFree = 16u * 1024 * 1024;
  if (const auto space = fs::space(dir, ec); !ec && space.available < kMinFree)
    return fail("outbox",
                "only " + std::to_string(space.available / 1024) + " KiB free under '" + dir +
                    "': results that cannot be stored stay in memory and are lost if the agent stops",
                "free disk space on that file system, or move OutboxDirectory");
  for (const char* aside : {"outbox-corrupt", "outbox-rejected"}) {
    std::size_t kept = 0;
    for (const auto& entry : fs::directory_iterator(fs::path(dir) / aside, ec)) kept += entry.exists(ec) ? 1 : 0;
    if (kept > 0)
      detail += ", " + std::to_string(kept) + " entr" + (kept == 1 ? "y" : "ies") + " in " + aside +
                (std::string(aside) == "outbox-corrupt" ? " (damaged, not delivered)" : " (refused by Command)");
  }
  if (fs::exists(fs::path(dir) / "agent-id", ec)) detail += ", AgentId from an earlier registration present";
  return pass("outbox", detail);
}

// ---------------------------------------------------------------------------------------------------------
// Command

std::string dns_hint(std::string_view key, const std::string& host) {
  return "check the host name in " + std::string(key) + " and this machine's DNS (`getent hosts " + host +
         "`, /etc/resolv.conf)";
}

// DNS and TCP checks for one host; returns false when a later step cannot run.
bool tcp_checks(const TcpProbe& probe, const std::string& prefix, const std::string& host, std::uint16_t port,
                milliseconds timeout, std::string_view key, std::string_view service, std::vector<DoctorCheck>& out) {
  const std::string where =
      (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  if (!probe.resolved) {
    out.push_back(fail(prefix + " dns",
                       probe.timed_out ? "no DNS answer for '" + host + "' within " + duration_text(timeout)
                                       : "cannot resolve '" + host + "': " + probe.error,
                       dns_hint(key, host)));
    return false;
  }
  out.push_back(pass(prefix + " dns", host + " -> " + join(probe.addresses, ", ")));
  if (!probe.connected) {
    if (probe.refused) {
      out.push_back(fail(prefix + " tcp", "connection refused to " + where,
                         "is " + std::string(service) + " running and listening on port " + std::to_string(port) +
                             "? check the port in " + std::string(key) + " and firewalls"));
    } else if (probe.timed_out) {
      out.push_back(fail(prefix + " tcp", "no answer from " + where + " within " + duration_text(timeout),
                         "a firewall or route drops TCP " + std::to_string(port) + " from this machine to " + host +
                             ": open it, or check " + std::string(key)));
    } else {
      out.push_back(fail(prefix + " tcp", "cannot connect to " + where + ": " + probe.error,
                         "check the network path from this machine to " + host + " (routing, firewall)"));
    }
    return false;
  }
  out.push_back(pass(prefix + " tcp", "connected to " + probe.peer));
  return true;
}

std::string tls_hint(DoctorAdvice advice, std::string_view ca_key, std::string_view name_key) {
  if (advice == DoctorAdvice::kTlsName)
    return "use the host name the certificate was issued for in " + std::string(name_key) +
           " (or reissue the certificate with this name)";
  if (advice == DoctorAdvice::kTlsTrust)
    return "set " + std::string(ca_key) + " to the PEM CA that issued the server's certificate";
  return "check that the port speaks HTTPS and, if a client certificate is required, CertPath/KeyPath";
}

struct Timeouts {
  milliseconds command_connect;
  milliseconds command_request;
  milliseconds winrm_connect;
  milliseconds winrm_operation;
  milliseconds winrm_command;
};

// Why Session/Heartbeat: it is the cheapest authenticated call of the Orchestrators API that changes
// nothing. Register would create (or update) the orchestrator in Command and may need approval; job
// endpoints need a real job. A heartbeat with a session token Command never issued (the all-zero GUID)
// goes through the same authentication as every agent call (IIS Basic / client certificate / bearer
// token) and is answered 200 with SessionValid=false: no orchestrator is created, no session touched,
// LastSeen unchanged. A 401/403 there means exactly what it would mean for the running agent.
net::awaitable<std::vector<DoctorCheck>> check_command(const AgentConfig& cfg, Timeouts timeouts) {
  std::vector<DoctorCheck> out;
  auto executor = co_await net::this_coro::executor;
  auto base = parse_url(cfg.agents_server_uri);
  if (!base.ok()) {
    out.push_back(fail("command", "AgentsServerUri: " + base.error().message,
                       "set AgentsServerUri to https://<host>/KeyfactorAgents"));
    co_return out;
  }
  auto probe = co_await probe_tcp(base->host, base->port, timeouts.command_connect);
  if (!tcp_checks(probe, "command", base->host, base->port, timeouts.command_connect, "AgentsServerUri",
                  "Command's web server (IIS)", out))
    co_return out;

  CommandConnectionUse use;
  use.connect_timeout = timeouts.command_connect;
  use.request_timeout = timeouts.command_request;
  use.max_connections_per_origin = 1;
  use.user_agent_suffix = " (doctor)";
  auto command = make_command_connection(executor, cfg, use);
  if (!command.ok()) {
    out.push_back(fail("command tls", command.error().message, "check ServerCaFile, CertPath and KeyPath (PEM files)",
                       command.error()));
    co_return out;
  }
  CommandAuth* auth = command->auth.get();
  const std::string trust = !cfg.server_tls_verify ? "certificate NOT verified (ServerTlsVerify is false)"
                            : cfg.server_ca_file.empty()
                                ? "certificate verified against the system CA store"
                                : "certificate verified against ServerCaFile " + cfg.server_ca_file;

  if (cfg.auth_mode == CommandAuthMode::kOAuth) {
    const std::string reachable_hint =
        "is the identity provider running and reachable at BearerTokenUrl (port, firewall)?";
    // The identity provider's name and port are probed like Command's, so a failure names the step.
    if (auto token_url = parse_url(cfg.oauth.token_url); token_url.ok()) {
      auto idp = co_await probe_tcp(token_url->host, token_url->port, timeouts.command_connect);
      const std::string idp_where = token_url->authority();
      if (!idp.resolved) {
        out.push_back(fail("command oauth",
                           idp.timed_out ? "no DNS answer for '" + token_url->host + "' within " +
                                               duration_text(timeouts.command_connect)
                                         : "cannot resolve '" + token_url->host + "': " + idp.error,
                           "check the host name in BearerTokenUrl and DNS"));
        co_return out;
      }
      if (!idp.connected) {
        out.push_back(fail("command oauth",
                           idp.refused ? "connection refused to " + idp_where
                           : idp.timed_out
                               ? "no answer from " + idp_where + " within " + duration_text(timeouts.command_connect)
                               : "cannot connect to " + idp_where + ": " + idp.error,
                           reachable_hint));
        co_return out;
      }
    }
    auto header = co_await auth->authorization();
    if (!header.ok()) {
      const Error& error = header.error();
      const DoctorAdvice advice = doctor_advice(DoctorStep::kCommandToken, error);
      std::string hint;
      if (is_tls(advice)) {
        hint = tls_hint(advice, "ServerCaFile", "BearerTokenUrl");
      } else if (advice == DoctorAdvice::kUnreachable) {
        hint = reachable_hint;
      } else if (advice == DoctorAdvice::kCredentials) {
        hint = "check ClientId and the client secret (SecretsFile \"ClientSecret\" or " +
               std::string(kClientSecretEnv) + "), Scope and Audience against the identity provider";
      } else {
        hint = "check BearerTokenUrl is the identity provider's token endpoint";
      }
      out.push_back(fail("command oauth", what_failed(error.message), hint, error));
      co_return out;
    }
    out.push_back(
        pass("command oauth", "token issued for client '" + cfg.oauth.client_id + "' by " + cfg.oauth.token_url));
  }

  CommandClient& client = *command->client;
  const std::string probe_token(kProbeSessionToken);
  auto reply = co_await client.heartbeat(probe_token);
  const std::string endpoint = base->origin() + base->path() + "/Session/Heartbeat";
  if (!reply.ok()) {
    const Error& error = reply.error();
    const std::string& m = error.message;
    const DoctorAdvice advice = doctor_advice(DoctorStep::kCommandCall, error);
    if (base->tls() && is_tls(advice)) {
      out.push_back(fail("command tls", what_failed(m), tls_hint(advice, "ServerCaFile", "AgentsServerUri"), error));
      co_return out;
    }
    if (base->tls()) out.push_back(pass("command tls", "handshake with " + base->authority() + ", " + trust));
    if (advice == DoctorAdvice::kCredentials) {
      std::string hint;
      switch (cfg.auth_mode) {
        case CommandAuthMode::kBasic:
          hint = "check Username and its password (SecretsFile \"Password\" or " + std::string(kPasswordEnv) +
                 "); the account must be allowed to use the Orchestrators API";
          break;
        case CommandAuthMode::kOAuth:
          hint =
              "Command did not accept the bearer token: check that Command trusts this identity provider and "
              "the client's Scope/Audience";
          break;
        case CommandAuthMode::kNone:
          hint =
              "Command did not accept the client certificate: check CertPath/KeyPath and that Command trusts "
              "its CA for agents";
          break;
      }
      out.push_back(fail("command auth", "Command rejected " + auth->principal() + " (HTTP 401 at " + endpoint + ")",
                         hint, error));
    } else if (advice == DoctorAdvice::kPermission) {
      out.push_back(fail("command auth", "Command refused " + auth->principal() + " (HTTP 403 at " + endpoint + ")",
                         "give the account the Agent Management permission in Command (or trust the client "
                         "certificate for agents)",
                         error));
    } else if (advice == DoctorAdvice::kNoApi) {
      out.push_back(fail("command api", "no Orchestrators API at " + endpoint + " (HTTP 404)",
                         "AgentsServerUri must be the KeyfactorAgents base URL, usually https://<host>/KeyfactorAgents",
                         error));
    } else if (advice == DoctorAdvice::kSlow) {
      out.push_back(fail("command api", what_failed(m),
                         "Command accepted the connection but did not answer in time: check Command's web server, "
                         "or raise ServerTimeoutSeconds",
                         error));
    } else {
      out.push_back(fail("command api", what_failed(m),
                         "AgentsServerUri must point at Command's KeyfactorAgents endpoint; check Command's web "
                         "server logs for this request",
                         error));
    }
    co_return out;
  }
  if (base->tls()) out.push_back(pass("command tls", "handshake with " + base->authority() + ", " + trust));
  std::string detail = "Session/Heartbeat at " + endpoint + " accepted " + auth->principal() +
                       " (authenticated probe with an unknown session: nothing registered or changed)";
  if (reply->result.is_error()) detail += "; Command's Result: " + reply->result.describe();
  out.push_back(pass("command auth", detail));
  co_return out;
}

// ---------------------------------------------------------------------------------------------------------
// WinRM targets

struct WinrmTargetSpec {
  std::string label;  // ClientMachine as written
  jobs::JobConfig job;
  bool password_known = false;
  std::string password_source;  // where a missing password should go, for the hint
};

WinrmTargetSpec spec_from(const DoctorTarget& t, const std::string& secrets_file) {
  WinrmTargetSpec spec;
  spec.label = t.client_machine;
  spec.job.store.client_machine = t.client_machine;
  auto& props = spec.job.store.properties;
  if (!t.protocol.empty()) props.winrm_protocol = jobs::StoreProperty{"WinRM Protocol", t.protocol};
  if (!t.port.empty()) props.winrm_port = jobs::StoreProperty{"WinRM Port", t.port};
  if (!t.authentication.empty())
    props.winrm_authentication = jobs::StoreProperty{"WinRM Authentication", t.authentication};
  props.spn_with_port = t.spn_with_port;
  props.winrm_allow_unencrypted = t.allow_unencrypted;
  if (!t.jea_endpoint_name.empty())
    props.jea_endpoint_name = jobs::StoreProperty{"JEAEndpointName", t.jea_endpoint_name};
  if (!t.username.empty()) spec.job.server_username = t.username;
  spec.job.server_password = t.password;
  spec.password_known = t.has_password;
  spec.password_source = "SecretsFile" + (secrets_file.empty() ? std::string() : " '" + secrets_file + "'") +
                         " under \"DoctorPasswords\": {\"" + t.client_machine + "\": \"...\"}";
  return spec;
}

std::string winrm_auth_hint(std::string_view scheme, const WinrmTargetSpec& spec) {
  return "check the user name and password (" + spec.password_source +
         "), that the account is a local Administrator (or in Remote Management Users) on the host, and that " +
         std::string(scheme) + " is enabled there: `winrm get winrm/config/service/auth`";
}

net::awaitable<DoctorCheck> check_winrm(const AgentConfig& cfg, WinrmTargetSpec spec, Timeouts timeouts) {
  const std::string name = "winrm " + spec.label;
  jobs::TargetOptions target_options;
  target_options.default_auth = cfg.winrm.default_auth;
  target_options.local_backend_available = local_backend_available();
  auto target = jobs::resolve_target(spec.job, target_options);
  if (!target.ok()) {
    co_return fail(name, target.error().message,
                   "fix this target (DoctorTargets: ClientMachine, WinRM Protocol/Port/Authentication, Username; "
                   "--target: --target-protocol/--target-auth/--target-user)");
  }
  if (target->local)
    co_return pass(name, "this machine's stores through CryptoAPI/CNG (agent mode): no WinRM to check");
  const jobs::RemoteTarget& remote = target->remote;
  const std::string scheme(jobs::auth_scheme_name(remote.auth));
  const std::string who =
      scheme + (remote.username.empty() ? " as the agent's own identity" : " as '" + remote.username + "'");
  if ((remote.auth == jobs::AuthScheme::kBasic || remote.auth == jobs::AuthScheme::kNtlm) && !spec.password_known) {
    co_return fail(name, "no password for '" + remote.username + "' (" + scheme + ")",
                   "put it into " + spec.password_source);
  }

  auto probe = co_await probe_tcp(remote.host, remote.port, timeouts.winrm_connect);
  std::vector<DoctorCheck> steps;
  if (!tcp_checks(probe, name, remote.host, remote.port, timeouts.winrm_connect, "ClientMachine", "WinRM", steps)) {
    DoctorCheck failed = steps.back();
    failed.name = name;
    if (probe.refused)
      failed.hint =
          "is WinRM listening? `winrm quickconfig` (or `winrm enumerate winrm/config/listener`) on the "
          "host; firewall TCP 5985 (http) / 5986 (https); check ClientMachine's port and WinRM Port";
    co_return failed;
  }

  HttpAuthSpec auth;
  auth.scheme = remote.auth;
  auth.user = remote.username;
  auth.password = remote.password;
  auth.spn_with_port = remote.spn_with_port;
  auth.allow_unencrypted = remote.allow_unencrypted;
  const winrm::TransportOptions& agent_transport = cfg.winrm.transport;
  if (remote.auth == jobs::AuthScheme::kCertificate &&
      (agent_transport.client_certificate_file.empty() || agent_transport.client_key_file.empty()))
    co_return fail(name, "WinRM Authentication is certificate but the agent has no client certificate",
                   "set WinRM.ClientCertPath and WinRM.ClientKeyPath");
  // The agent's own options, with doctor's capped connect timeout.
  winrm::TransportOptions transport_options = transport_options_for(agent_transport, remote.auth);
  transport_options.connect.connect_timeout = timeouts.winrm_connect;
  transport_options.connect.tls_handshake_timeout = timeouts.winrm_connect;
  auto executor = co_await net::this_coro::executor;
  winrm::Endpoint endpoint{remote.https, remote.host, remote.port, "/wsman"};
  auto transport = make_transport(executor, std::move(endpoint), auth, std::move(transport_options));
  if (!transport.ok())
    co_return fail(name, transport.error().message, "check WinRM.CaFile / WinRM.ClientCertPath / WinRM.ClientKeyPath");

  // Both execution modes are tried, so the report says which the host accepts: PowerShell remoting on the
  // target's configuration (Microsoft.PowerShell or its JEA endpoint), and WinRS (not with a JEA endpoint, which
  // WinRS cannot reach). The mode the agent would use decides pass or fail.
  const std::string configuration = remote.configuration_name.empty()
                                        ? std::string(winrm::psrp::kDefaultConfigurationName)
                                        : remote.configuration_name;
  const jobs::ExecutionMode mode = !remote.configuration_name.empty()
                                       ? jobs::ExecutionMode::kPsrp
                                       : remote.execution_mode.value_or(cfg.winrm.execution_mode);
  winrm::psrp::WsmanRunspacePoolOptions pool_options;
  pool_options.configuration_name = configuration;
  pool_options.operation_timeout = std::min(timeouts.winrm_operation, timeouts.winrm_command);
  pool_options.open_timeout = timeouts.winrm_command;
  PsrpRunnerOptions runner_options;
  runner_options.op_timeout = timeouts.winrm_command;
  runner_options.load_module = remote.configuration_name.empty();
  WsmanPsrpRunner psrp_runner(**transport, pool_options, runner_options, target->machine);
  certstore::remote::ScriptCaller psrp_caller(psrp_runner);
  auto psrp_info = co_await psrp_caller.host_info();
  if (psrp_runner.pool_open()) {
    auto closed = co_await psrp_runner.close();
    if (!closed.ok()) logger("agent")->debug("doctor: closing the runspace pool: {}", closed.error().message);
  }
  Result<certstore::remote::HostInfo> winrs_info =
      Error::failed_precondition("not tried: a JEA endpoint is reached by PowerShell remoting only");
  if (remote.configuration_name.empty()) {
    winrm::SessionOptions session_options = cfg.winrm.session;
    session_options.operation_timeout = std::min(timeouts.winrm_operation, timeouts.winrm_command);
    session_options.command_deadline = timeouts.winrm_command;
    auto session = std::make_unique<winrm::WinrsSession>(**transport, session_options);
    WinrmScriptRunner runner(*session, target->machine);
    certstore::remote::ScriptCaller caller(runner);
    winrs_info = co_await caller.host_info();
    if (session->shell_open()) {
      auto closed = co_await session->close();
      if (!closed.ok()) logger("agent")->debug("doctor: closing the shell: {}", closed.error().message);
    }
  }
  const auto outcome_text = [](const Result<certstore::remote::HostInfo>& r) {
    return r.ok() ? std::string("ok") : "failed: " + what_failed(r.error().message);
  };
  const std::string modes = "; modes: psrp (" + configuration + ") " + outcome_text(psrp_info) + ", winrs " +
                            outcome_text(winrs_info) + "; the agent uses " +
                            std::string(jobs::execution_mode_name(mode));
  const Result<certstore::remote::HostInfo>& info = mode == jobs::ExecutionMode::kPsrp ? psrp_info : winrs_info;
  const std::string url = remote.endpoint_url;
  if (info.ok()) {
    co_return pass(name, url + " (" + who + "): host " + info->hostname + ", Windows " + info->os_version + " (build " +
                             std::to_string(info->os_build) + "), PowerShell " + info->ps_version + modes);
  }
  const Error& error = info.error();
  const std::string m = what_failed(error.message) + modes;
  DoctorFacts facts;
  facts.basic_over_http = remote.auth == jobs::AuthScheme::kBasic && !remote.https && !remote.allow_unencrypted;
  switch (const DoctorAdvice advice = doctor_advice(DoctorStep::kWinrm, error, facts)) {
    case DoctorAdvice::kCredentials:
      co_return fail(name, "authentication failed for " + who + " at " + url + " (HTTP 401)",
                     winrm_auth_hint(scheme, spec), error);
    case DoctorAdvice::kTlsName:
    case DoctorAdvice::kTlsTrust:
    case DoctorAdvice::kTls:
      co_return fail(name, m, tls_hint(advice, "WinRM.CaFile", "ClientMachine"), error);
    case DoctorAdvice::kQuota:
      co_return fail(name, m,
                     "the host refused another shell: raise MaxShellsPerUser / MaxConcurrentOperationsPerUser "
                     "(`winrm get winrm/config/winrs`) or close idle sessions",
                     error);
    case DoctorAdvice::kKerberos:
      co_return fail(name, m,
                     "Kerberos: check the ticket cache or keytab (kinit), the host's SPN HTTP/<host> (spnwithport "
                     "for custom ports) and that ClientMachine is the host's DNS name, not an IP address",
                     error);
    case DoctorAdvice::kUnencrypted:
      co_return fail(name, m, "use WinRM Protocol https, or allow unencrypted WinRM on the host (not recommended)",
                     error);
    case DoctorAdvice::kSlow:
      co_return fail(name, m,
                     "the host accepted the connection but did not answer in time: check its load and the WinRM "
                     "service, or raise WinRM.OperationTimeoutSeconds",
                     error);
    case DoctorAdvice::kScript:
      co_return fail(name, m,
                     "WinRM works but the script failed: run `powershell -NoProfile` as this account on the host "
                     "and check its execution policy / language mode",
                     error);
    default:
      co_return fail(name, m,
                     "check the WinRM service on the host (Event Viewer: Microsoft-Windows-WinRM/Operational) and "
                     "the target's settings",
                     error);
  }
}

// ---------------------------------------------------------------------------------------------------------

// Every secret the run knows, for a last scrub of the output.
std::vector<std::string> known_secrets(const AgentConfig& cfg, const std::vector<WinrmTargetSpec>& specs) {
  std::vector<std::string> out;
  auto add = [&](const Secret& s) {
    if (s.reveal().size() >= 3) out.push_back(s.reveal());
  };
  add(cfg.password);
  add(cfg.oauth.client_secret);
  for (const auto& spec : specs) add(spec.job.server_password);
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return out;
}

std::string scrub(std::string text, const std::vector<std::string>& secrets) {
  for (const auto& secret : secrets) {
    for (auto pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + 3)) {
      text.replace(pos, secret.size(), "***");
    }
  }
  return text;
}

// Runs the network checks on one io_context: Command and every target concurrently.
std::vector<DoctorCheck> network_checks(const AgentConfig& cfg, const std::vector<WinrmTargetSpec>& specs,
                                        const Timeouts& timeouts) {
  net::io_context io(1);
  std::vector<DoctorCheck> command;
  std::vector<std::optional<DoctorCheck>> targets(specs.size());
  auto on_error = [](std::string what) {
    return [what](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        logger("agent")->error("doctor: internal error in {}: {}", what, ex.what());
      }
    };
  };
  net::co_spawn(
      io, [&]() -> net::awaitable<void> { command = co_await check_command(cfg, timeouts); }, on_error("command"));
  for (std::size_t i = 0; i < specs.size(); ++i) {
    net::co_spawn(
        io, [&, i]() -> net::awaitable<void> { targets[i] = co_await check_winrm(cfg, specs[i], timeouts); },
        on_error(specs[i].label));
  }
  io.run();
  std::vector<DoctorCheck> out = std::move(command);
  if (out.empty())
    out.push_back(fail("command", "the check did not complete (internal error)", "run with --log-level debug"));
  for (std::size_t i = 0; i < specs.size(); ++i) {
    out.push_back(targets[i] ? *targets[i]
                             : fail("winrm " + specs[i].label, "the check did not complete (internal error)",
                                    "run with --log-level debug"));
  }
  return out;
}

// --json: the error's detail fields that are known.
nlohmann::ordered_json detail_json(const ErrorDetail& d) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  if (d.http_status != 0) out["http_status"] = d.http_status;
  if (!d.wsman_fault.empty()) out["wsman_fault"] = d.wsman_fault;
  if (!d.command_code.empty()) out["command_code"] = d.command_code;
  if (!d.script_category.empty()) out["script_category"] = d.script_category;
  if (d.system_kind != SystemStatusKind::kNone) {
    constexpr const char* kKinds[] = {"none", "win32", "sspi", "gss", "errno", "openssl"};
    out["system_kind"] = kKinds[static_cast<int>(d.system_kind)];
    out["system_status"] = d.system_status;
  }
  return out;
}

}  // namespace

DoctorAdvice doctor_advice(DoctorStep step, const Error& error, const DoctorFacts& facts) {
  switch (step) {
    case DoctorStep::kCommandToken:
      return first_match(kTokenRows, error, facts);
    case DoctorStep::kCommandCall:
      return first_match(kCallRows, error, facts);
    case DoctorStep::kWinrm:
      return first_match(kWinrmRows, error, facts);
  }
  return DoctorAdvice::kGeneric;
}

std::string_view doctor_advice_name(DoctorAdvice advice) {
  switch (advice) {
    case DoctorAdvice::kGeneric:
      return "generic";
    case DoctorAdvice::kTlsName:
      return "tls_name";
    case DoctorAdvice::kTlsTrust:
      return "tls_trust";
    case DoctorAdvice::kTls:
      return "tls";
    case DoctorAdvice::kUnreachable:
      return "unreachable";
    case DoctorAdvice::kCredentials:
      return "credentials";
    case DoctorAdvice::kPermission:
      return "permission";
    case DoctorAdvice::kNoApi:
      return "no_api";
    case DoctorAdvice::kSlow:
      return "slow";
    case DoctorAdvice::kQuota:
      return "quota";
    case DoctorAdvice::kKerberos:
      return "kerberos";
    case DoctorAdvice::kUnencrypted:
      return "unencrypted";
    case DoctorAdvice::kScript:
      return "script";
  }
  return "generic";
}

std::string format_check(const DoctorCheck& check) {
  if (check.ok) return "OK   " + check.name + ": " + check.detail;
  return "FAIL " + check.name + ": " + check.detail + " " + std::string(kEmDash) + " fix: " + check.hint;
}

// What a check looked at, for --json: the WinRM host, Command's URL, the outbox directory or the file.
static std::string check_target(const DoctorCheck& check, const AgentConfig* cfg, const std::string& config_path) {
  if (check.name.rfind("winrm ", 0) == 0) return check.name.substr(6);
  if (cfg == nullptr) return config_path;
  if (check.name.rfind("command", 0) == 0) return cfg->agents_server_uri;
  if (check.name == "outbox") return cfg->outbox_directory;
  return config_path;
}

int run_doctor(const DoctorOptions& options, std::FILE* out) {
  init_logging(options.log_level);
  std::vector<DoctorCheck> checks;
  std::vector<std::string> checked_targets;  // --json: check_target() of each check
  std::vector<std::string> notes;            // lines that are not checks ("no WinRM target checked")
  std::vector<std::string> secrets;
  const AgentConfig* loaded = nullptr;
  auto emit = [&](const DoctorCheck& check) {
    checks.push_back(check);
    checked_targets.push_back(check_target(check, loaded, options.config_path));
    if (options.json) return;  // one document at the end
    const std::string line = scrub(format_check(check), secrets) + "\n";
    std::fwrite(line.data(), 1, line.size(), out);
    std::fflush(out);
  };
  auto note = [&](const std::string& text) {
    notes.push_back(text);
    if (options.json) return;
    std::fprintf(out, "doctor: %s\n", text.c_str());
  };
  auto summary = [&]() {
    const auto failed = std::count_if(checks.begin(), checks.end(), [](const DoctorCheck& c) { return !c.ok; });
    if (options.json) {
      // Every string scrubbed of known secrets, like the text lines.
      nlohmann::ordered_json doc;
      doc["status"] = failed == 0 ? "ok" : "fail";
      doc["checks_total"] = checks.size();
      doc["checks_failed"] = failed;
      doc["checks"] = nlohmann::ordered_json::array();
      for (std::size_t i = 0; i < checks.size(); ++i) {
        const DoctorCheck& c = checks[i];
        nlohmann::ordered_json item;
        item["name"] = scrub(c.name, secrets);
        item["target"] = scrub(checked_targets[i], secrets);
        item["status"] = c.ok ? "ok" : "fail";
        item["detail"] = scrub(c.detail, secrets);
        item["hint"] = c.ok ? std::string() : scrub(c.hint, secrets);
        if (!c.ok && c.error) {
          item["error_code"] = std::string(error_code_name(c.error->code));
          item["error_detail"] = detail_json(c.error->detail);
        }
        doc["checks"].push_back(std::move(item));
      }
      doc["notes"] = nlohmann::ordered_json::array();
      for (const auto& n : notes) doc["notes"].push_back(scrub(n, secrets));
      const std::string text = doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
      std::fwrite(text.data(), 1, text.size(), out);
    } else {
      std::fprintf(out, "doctor: %zu checks, %zu failed\n", checks.size(), static_cast<std::size_t>(failed));
    }
    std::fflush(out);
    return failed == 0 ? 0 : 1;
  };

  std::vector<ConfigProblem> problems;
  auto config = load_agent_config(options.config_path, &problems);
  if (!config.ok()) {
    for (const auto& check : config_failure_checks(config.error(), problems, options.config_path)) emit(check);
    note("Command and WinRM not checked until the configuration loads");
    return summary();
  }
  const AgentConfig& cfg = config.value();
  loaded = &cfg;

  // Targets: the configuration's, then --target with credentials from the environment.
  std::vector<WinrmTargetSpec> specs;
  for (const auto& t : cfg.doctor_targets) specs.push_back(spec_from(t, cfg.secrets_file));
  for (const auto& machine : options.targets) {
    DoctorTarget t;
    t.client_machine = machine;
    t.protocol = options.target_protocol;
    t.authentication = options.target_auth;
    t.allow_unencrypted = options.target_allow_unencrypted;
    t.jea_endpoint_name = options.target_jea_endpoint;
    t.username = options.target_user;
    if (t.username.empty()) {
      if (const char* user = std::getenv(kDoctorUserEnv)) t.username = user;
    }
    if (const char* password = std::getenv(options.target_password_env.c_str())) {
      t.password = Secret(password);
      t.has_password = true;
    }
    WinrmTargetSpec spec = spec_from(t, cfg.secrets_file);
    spec.password_source = "the environment variable " + options.target_password_env;
    specs.push_back(std::move(spec));
  }
  secrets = known_secrets(cfg, specs);

  emit(pass("config", options.config_path + " loaded: AgentsServerUri " + cfg.agents_server_uri + ", orchestrator '" +
                          cfg.orchestrator_name + "', Command auth " + describe_auth(cfg) + ", " +
                          std::to_string(specs.size()) + " WinRM target(s)"));
  emit(secrets_check(cfg));
  emit(files_check(cfg, options.timeout));
  emit(outbox_check(cfg));

  Timeouts timeouts{
      capped(cfg.server_connect_timeout, options.timeout), capped(cfg.server_request_timeout, options.timeout),
      capped(cfg.winrm.transport.connect.connect_timeout, options.timeout),
      capped(cfg.winrm.session.operation_timeout, options.timeout),
      capped(std::min<milliseconds>(cfg.winrm.session.command_deadline, kHostInfoDeadline), options.timeout)};
  for (const auto& check : network_checks(cfg, specs, timeouts)) emit(check);
  if (specs.empty()) note("no WinRM target checked (add DoctorTargets to the configuration, or --target)");
  return summary();
}

void add_doctor_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "doctor", "check the configuration, Command (reachability, TLS, credentials) and WinRM to test hosts");
  auto options = std::make_shared<DoctorOptions>();
  cmd->add_option("--config", options->config_path, "agent configuration (JSON, see config/agent.example.json)")
      ->required();
  cmd->add_option("--target", options->targets,
                  "also try WinRM to this ClientMachine (host or host:port); repeatable. User from --target-user "
                  "or $" +
                      std::string(kDoctorUserEnv) + ", password from $" + kDoctorPasswordEnv);
  cmd->add_option("--target-protocol", options->target_protocol, "http (default) or https for --target")
      ->check(CLI::IsMember({"http", "https"}));
  cmd->add_option("--target-auth", options->target_auth,
                  "basic | ntlm | kerberos | negotiate | certificate for --target (default: WinRM.DefaultAuth)")
      ->check(CLI::IsMember({"basic", "ntlm", "kerberos", "negotiate", "certificate"}));
  cmd->add_option("--target-user", options->target_user, "account for --target (default: $WINCERT_DOCTOR_USER)");
  cmd->add_option("--target-password-env", options->target_password_env,
                  "environment variable holding the --target password (never on the command line)")
      ->capture_default_str();
  cmd->add_flag("--target-allow-unencrypted", options->target_allow_unencrypted,
                "allow Basic over plain http for --target (the host must allow it too)");
  cmd->add_option("--target-jea-endpoint", options->target_jea_endpoint,
                  "JEAEndpointName for --target: try PowerShell remoting on that session configuration");
  auto timeout = std::make_shared<int>(0);
  cmd->add_option("--timeout", *timeout, "cap every connect/request timeout of the configuration (seconds)")
      ->check(CLI::Range(1, 3600));
  cmd->add_option("--log-level", options->log_level, "the libraries' log lines on stderr: off (default) .. trace")
      ->capture_default_str();
  cmd->add_flag("--json", options->json,
                "one JSON document on stdout instead of lines: {status, checks_total, checks_failed, checks: [{name, "
                "target, status (ok|fail), detail, hint}], notes}; same exit codes");
  // Runs after parsing and ends the process, so the exit code does not pass through main's mapping.
  cmd->callback([options, timeout] {
    if (*timeout > 0) options->timeout = seconds(*timeout);
    int code = 1;
    try {
      code = run_doctor(*options, stdout);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "wincert-agent doctor: internal error: %s\n", e.what());
    }
    std::fflush(nullptr);
    std::exit(code);
  });
}

}  // namespace wincert::agent
