#include "agent/config.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <vector>

#include "agent/command_http.hpp"
#include "agent/metrics/http_listener.hpp"
#include "agent/platform/files.hpp"
#include "common/encoding.hpp"

namespace wincert::agent {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// UO appsettings.json keys that mean nothing to this agent; accepted so a copied file loads.
const std::set<std::string> kIgnoredUoKeys = {"extensionsdirectory", "scripttimeout", "windowscontainerruntime",
                                              "checkservercertificaterevocation", "orchestratorid"};
// Keys that would put a secret into the main file.
const std::set<std::string> kSecretKeys = {"password", "clientsecret", "serverpassword", "keypassword"};

std::string read_text(const std::string& path, std::string& error, int* error_number = nullptr) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (error_number != nullptr) *error_number = errno;
    error = "cannot read '" + path + "': " + std::strerror(errno);
    return {};
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string_view strip_bom(std::string_view text) {
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  return text;
}

// Collects every problem so one start shows all of them.
class Reader {
 public:
  Reader(std::string source, std::string base_dir) : source_(std::move(source)), base_dir_(std::move(base_dir)) {}

  void problem(const std::string& key, const std::string& what, bool unreadable_file = false) {
    problems_.push_back(key + ": " + what);
    listed_.push_back({key, what, unreadable_file});
  }
  // A file the key names cannot be read.
  void file_problem(const std::string& key, const std::string& path) {
    problem(key, "cannot read '" + path + "'", true);
  }
  const std::vector<std::string>& problems() const { return problems_; }
  std::vector<ConfigProblem>& listed() { return listed_; }

  // The object's members with lowercase keys; duplicates (in any case) are a problem.
  std::map<std::string, std::pair<std::string, const json*>> members(const json& object, const std::string& prefix) {
    std::map<std::string, std::pair<std::string, const json*>> out;
    for (auto it = object.begin(); it != object.end(); ++it) {
      if (it.key().rfind("//", 0) == 0) continue;  // comment convention: "//Key": "explanation"
      const std::string lower = to_lower(it.key());
      if (out.count(lower)) {
        problem(prefix + it.key(), "given twice (keys are case-insensitive)");
        continue;
      }
      out[lower] = {prefix + it.key(), &it.value()};
    }
    return out;
  }

  std::string resolve_path(const std::string& value) const {
    if (value.empty() || fs::path(value).is_absolute() || base_dir_.empty()) return value;
    return (fs::path(base_dir_) / value).lexically_normal().string();
  }

 private:
  std::string source_;
  std::string base_dir_;
  std::vector<std::string> problems_;
  std::vector<ConfigProblem> listed_;
};

// Typed access to one object's members; every key read is marked, the rest are reported unknown.
class Section {
 public:
  Section(Reader& reader, const json& object, std::string prefix)
      : reader_(reader), prefix_(prefix), members_(reader.members(object, prefix)) {}

  const json* find(std::string_view key) {
    const std::string lower = to_lower(key);
    used_.insert(lower);
    auto it = members_.find(lower);
    if (it == members_.end() || it->second.second->is_null()) return nullptr;
    return it->second.second;
  }
  std::string name(std::string_view key) const {
    auto it = members_.find(to_lower(key));
    return it != members_.end() ? it->second.first : prefix_ + std::string(key);
  }

  void string(std::string_view key, std::string& out) {
    const json* v = find(key);
    if (!v) return;
    if (!v->is_string()) return reader_.problem(name(key), "must be a string");
    out = std::string(trim(v->get_ref<const std::string&>()));
  }
  void path(std::string_view key, std::string& out) {
    string(key, out);
    out = reader_.resolve_path(out);
  }
  void boolean(std::string_view key, bool& out) {
    const json* v = find(key);
    if (!v) return;
    if (v->is_boolean()) {
      out = v->get<bool>();
    } else if (v->is_string() && (iequals(v->get_ref<const std::string&>(), "true") ||
                                  iequals(v->get_ref<const std::string&>(), "false"))) {
      out = iequals(v->get_ref<const std::string&>(), "true");
    } else {
      reader_.problem(name(key), "must be true or false");
    }
  }
  // Integers as JSON numbers or numeric strings (like .NET configuration), within [min, max].
  bool integer(std::string_view key, long long min, long long max, long long& out) {
    const json* v = find(key);
    if (!v) return false;
    long long value = 0;
    if (v->is_number_integer()) {
      value = v->get<long long>();
    } else if (v->is_number_float() &&
               v->get<double>() == static_cast<double>(static_cast<long long>(v->get<double>()))) {
      value = static_cast<long long>(v->get<double>());
    } else if (v->is_string()) {
      const std::string text(trim(v->get_ref<const std::string&>()));
      char* end = nullptr;
      errno = 0;
      value = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || errno != 0 || *end != '\0') {
        reader_.problem(name(key), "must be a whole number (got \"" + body_excerpt(text) + "\")");
        return false;
      }
    } else {
      reader_.problem(name(key), "must be a whole number");
      return false;
    }
    if (value < min || value > max) {
      reader_.problem(name(key), "must be between " + std::to_string(min) + " and " + std::to_string(max) + " (got " +
                                     std::to_string(value) + ")");
      return false;
    }
    out = value;
    return true;
  }
  template <typename Duration>
  void seconds(std::string_view key, long long min, long long max, Duration& out) {
    long long value = 0;
    if (integer(key, min, max, value)) out = std::chrono::duration_cast<Duration>(std::chrono::seconds(value));
  }
  void integer_into(std::string_view key, long long min, long long max, int& out) {
    long long value = 0;
    if (integer(key, min, max, value)) out = static_cast<int>(value);
  }

  // Reports keys nobody read: most likely a typo.
  void report_unknown() {
    for (const auto& [lower, entry] : members_) {
      if (used_.count(lower) || kIgnoredUoKeys.count(lower)) continue;
      if (kSecretKeys.count(lower)) {
        reader_.problem(entry.first,
                        "secrets do not belong in the main configuration file: put it in SecretsFile "
                        "or its environment variable");
        continue;
      }
      reader_.problem(entry.first, "unknown key (check the spelling against config/agent.example.json)");
    }
  }

 private:
  Reader& reader_;
  std::string prefix_;
  std::map<std::string, std::pair<std::string, const json*>> members_;
  std::set<std::string> used_;
};

bool readable_file(const std::string& path) {
  return !path.empty() && files::can_read(path) && fs::is_regular_file(path);
}

struct Secrets {
  std::optional<Secret> password;
  std::optional<Secret> client_secret;
  std::map<std::string, Secret> doctor_passwords;  // lowercase ClientMachine -> WinRM password
};

// SecretsFile: {"Password": "...", "ClientSecret": "...", "DoctorPasswords": {"<ClientMachine>": "..."}}.
Secrets read_secrets_file(const std::string& path, Reader& reader) {
  Secrets out;
  std::string error;
  const std::string text = read_text(path, error);
  if (!error.empty()) {
    reader.problem("SecretsFile", error);
    return out;
  }
  json doc = json::parse(strip_bom(text), nullptr, false, true);
  if (doc.is_discarded() || !doc.is_object()) {
    // The parser's message could quote the file's content: say only where to look.
    reader.problem("SecretsFile", "'" + path + "' is not a JSON object like {\"Password\": \"...\"}");
    return out;
  }
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (it.key().rfind("//", 0) == 0) continue;
    const std::string lower = to_lower(it.key());
    if (lower == "doctorpasswords") {
      if (!it.value().is_object()) {
        reader.problem("SecretsFile",
                       "'" + it.key() + "' in '" + path + "' must be an object {\"<ClientMachine>\": \"...\"}");
        continue;
      }
      for (auto entry = it.value().begin(); entry != it.value().end(); ++entry) {
        if (!entry.value().is_string()) {
          reader.problem("SecretsFile", "'" + it.key() + "." + entry.key() + "' in '" + path + "' must be a string");
          continue;
        }
        out.doctor_passwords[to_lower(std::string(trim(entry.key())))] = Secret(entry.value().get<std::string>());
      }
      continue;
    }
    if (lower != "password" && lower != "clientsecret") {
      reader.problem("SecretsFile", "unknown key '" + it.key() + "' in '" + path +
                                        "' (expected Password, ClientSecret and/or DoctorPasswords)");
      continue;
    }
    if (!it.value().is_string()) {
      reader.problem("SecretsFile", "'" + it.key() + "' in '" + path + "' must be a string");
      continue;
    }
    Secret value(it.value().get<std::string>());
    if (lower == "password") {
      out.password = std::move(value);
    } else {
      out.client_secret = std::move(value);
    }
  }
  if (auto exposure = files::secrets_file_exposure(path)) reader.problem("SecretsFile", *exposure);
  return out;
}

}  // namespace

Result<AgentConfig> parse_agent_config(std::string_view json_text, const std::string& source,
                                       const std::string& base_dir, EnvLookup env,
                                       std::vector<ConfigProblem>* problems) {
  json doc = json::parse(strip_bom(json_text), nullptr, false, true);
  if (doc.is_discarded()) {
    // Re-parse with exceptions for the position; this file holds no secrets by design.
    std::string where;
    try {
      const json again = json::parse(strip_bom(json_text), nullptr, true, true);
      (void)again;
    } catch (const json::parse_error& e) {
      where = std::string(": ") + e.what();
    }
    return Error::invalid_argument(source + " is not valid JSON" + where);
  }
  if (!doc.is_object()) return Error::invalid_argument(source + " must hold a JSON object");

  // The UO's file keeps these under "AppSettings"; accept that layout too.
  json merged = json::object();
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (iequals(it.key(), "AppSettings") && it.value().is_object()) {
      for (auto inner = it.value().begin(); inner != it.value().end(); ++inner) merged[inner.key()] = inner.value();
    } else {
      merged[it.key()] = it.value();
    }
  }

  Reader reader(source, base_dir);
  Section top(reader, merged, "");
  AgentConfig cfg;
  cfg.source = source;
  // Copied from a Universal Orchestrator's appsettings.json: accepted, but this agent does no CRL/OCSP
  // checking of Command's certificate, and a person who asked for it must hear so.
  for (auto it = merged.begin(); it != merged.end(); ++it) {
    if (!iequals(it.key(), "CheckServerCertificateRevocation")) continue;
    const json& v = it.value();
    const bool off = (v.is_boolean() && !v.get<bool>()) || (v.is_string() && iequals(v.get<std::string>(), "false"));
    if (!off)
      cfg.warnings.push_back(
          it.key() +
          " is not supported and has no effect: Command's certificate is verified against ServerCaFile (or the "
          "system store) without revocation checks; remove the key or set it to false");
  }

  top.string("AgentsServerUri", cfg.agents_server_uri);
  top.string("OrchestratorName", cfg.orchestrator_name);
  std::string thumbprint;
  top.string("AuthCertThumbprint", thumbprint);
  top.path("CertPath", cfg.client_cert);
  top.path("KeyPath", cfg.client_key);
  top.string("Username", cfg.username);
  top.string("BearerTokenUrl", cfg.oauth.token_url);
  top.string("ClientId", cfg.oauth.client_id);
  top.string("Scope", cfg.oauth.scope);
  top.string("Audience", cfg.oauth.audience);
  top.seconds("TokenLifetime", 30, 86400, cfg.oauth.token_lifetime);
  long long inventory_mb = 0;
  if (top.integer("InventoryMaxUpdateSizeMb", 1, 1024, inventory_mb))
    cfg.inventory_max_update_bytes = static_cast<std::size_t>(inventory_mb) * 1024 * 1024;
  long long part_kb = 0;
  if (top.integer("InventoryPartSizeKb", 16, 1024 * 1024, part_kb))
    cfg.inventory_part_bytes = static_cast<std::size_t>(part_kb) * 1024;
  top.integer_into("AgentPlatform", 0, 100, cfg.agent_platform);
  if (const json* params = top.find("ClientParameters")) {
    if (!params->is_object()) {
      reader.problem(top.name("ClientParameters"), "must be an object of strings");
    } else {
      for (auto it = params->begin(); it != params->end(); ++it) {
        if (!it.value().is_string()) {
          reader.problem(top.name("ClientParameters") + "." + it.key(), "must be a string");
          continue;
        }
        cfg.client_parameters[it.key()] = it.value().get<std::string>();
      }
    }
  }
  if (const json* types = top.find("JobTypes")) {
    if (!types->is_object()) {
      reader.problem(top.name("JobTypes"), "must be an object of JobTypeId GUID -> capability name");
    } else {
      for (auto it = types->begin(); it != types->end(); ++it) {
        if (!it.value().is_string() || it.value().get_ref<const std::string&>().empty()) {
          reader.problem(top.name("JobTypes") + "." + it.key(),
                         "must be a capability name such as "
                         "\"CertStores.WinCert.Inventory\"");
          continue;
        }
        cfg.job_types[it.key()] = it.value().get<std::string>();
      }
    }
  }
  if (const json* renewal = top.find("AgentCertificate")) {
    if (!renewal->is_object()) {
      reader.problem(top.name("AgentCertificate"), "must be an object like {\"RenewDaysBeforeExpiry\": 30}");
    } else {
      Section a(reader, *renewal, top.name("AgentCertificate") + ".");
      long long days = 0;
      if (a.integer("RenewDaysBeforeExpiry", 0, 3650, days))
        cfg.agent_certificate.renew_before = std::chrono::hours(24 * days);
      a.string("KeyType", cfg.agent_certificate.key_type);
      if (!iequals(cfg.agent_certificate.key_type, "RSA") && !iequals(cfg.agent_certificate.key_type, "ECC"))
        reader.problem(a.name("KeyType"), "must be RSA or ECC");
      const bool rsa = iequals(cfg.agent_certificate.key_type, "RSA");
      if (!rsa) cfg.agent_certificate.key_size = 256;
      long long bits = 0;
      if (a.integer("KeySize", 256, 8192, bits)) {
        cfg.agent_certificate.key_size = static_cast<int>(bits);
        if (rsa ? bits < 2048 : (bits != 256 && bits != 384))
          reader.problem(a.name("KeySize"), rsa ? "must be 2048..8192 for RSA" : "must be 256 or 384 for ECC");
      }
      a.string("Subject", cfg.agent_certificate.subject);
      a.report_unknown();
    }
  }
  std::string secrets_file;
  top.path("SecretsFile", secrets_file);
  top.path("ServerCaFile", cfg.server_ca_file);
  top.boolean("ServerTlsVerify", cfg.server_tls_verify);
  top.seconds("ServerConnectTimeoutSeconds", 1, 600, cfg.server_connect_timeout);
  top.seconds("ServerTimeoutSeconds", 1, 3600, cfg.server_request_timeout);
  top.integer_into("MaxConcurrentJobs", 1, 10000, cfg.max_concurrent_jobs);
  top.integer_into("MaxJobsPerHost", 1, 1000, cfg.max_jobs_per_host);
  top.path("OutboxDirectory", cfg.outbox_directory);
  top.string("LogLevel", cfg.log_level);
  top.path("LogFile", cfg.log_file);
  long long heartbeat = 0;
  if (top.integer("HeartbeatIntervalSeconds", 0, 86400, heartbeat) && heartbeat > 0)
    cfg.heartbeat_interval = std::chrono::seconds(heartbeat);
  top.seconds("JobPollIntervalSeconds", 0, 86400, cfg.job_poll_interval);
  top.seconds("ShutdownGraceSeconds", 0, 3600, cfg.shutdown_grace);
  top.seconds("JobTimeoutSeconds", 10, 86400, cfg.job_timeout);
  top.seconds("OutboxFlushSeconds", 0, 3600, cfg.outbox_flush_timeout);
  top.seconds("RetryInitialSeconds", 1, 3600, cfg.retry_initial);
  top.seconds("RetryMaxSeconds", 1, 86400, cfg.retry_max);

  if (const json* winrm = top.find("WinRM")) {
    if (!winrm->is_object()) {
      reader.problem(top.name("WinRM"), "must be an object");
    } else {
      Section w(reader, *winrm, top.name("WinRM") + ".");
      std::string scheme;
      w.string("DefaultAuth", scheme);
      if (!scheme.empty()) {
        if (auto parsed = jobs::parse_auth_scheme(scheme)) {
          cfg.winrm.default_auth = *parsed;
        } else {
          reader.problem(w.name("DefaultAuth"),
                         "unknown scheme '" + scheme + "' (expected basic, ntlm, kerberos, negotiate or certificate)");
        }
      }
      auto& transport = cfg.winrm.transport;
      w.seconds("ConnectTimeoutSeconds", 1, 600, transport.connect.connect_timeout);
      transport.connect.tls_handshake_timeout = transport.connect.connect_timeout;  // one setting for both
      w.seconds("OperationTimeoutSeconds", 1, 3600, cfg.winrm.session.operation_timeout);
      w.seconds("ReadTimeoutSeconds", 1, 3600, transport.exchange.read_timeout);
      w.seconds("CommandTimeoutSeconds", 1, 86400, cfg.winrm.session.command_deadline);
      w.seconds("IdleTimeoutSeconds", 1, 86400, cfg.winrm.idle_timeout);
      std::string mode;
      w.string("ExecutionMode", mode);
      if (!mode.empty()) {
        if (auto parsed = jobs::parse_execution_mode(mode)) {
          cfg.winrm.execution_mode = *parsed;
        } else {
          reader.problem(w.name("ExecutionMode"), "unknown mode '" + mode + "' (expected psrp or winrs)");
        }
      }
      w.path("CaFile", transport.ca_file);
      w.boolean("TlsVerify", transport.connect.verify_peer);
      w.path("ClientCertPath", transport.client_certificate_file);
      w.path("ClientKeyPath", transport.client_key_file);
      w.report_unknown();
      if (!transport.ca_file.empty() && !readable_file(transport.ca_file))
        reader.file_problem(w.name("CaFile"), transport.ca_file);
      if (transport.client_certificate_file.empty() != transport.client_key_file.empty()) {
        reader.problem(w.name(transport.client_certificate_file.empty() ? "ClientCertPath" : "ClientKeyPath"),
                       "certificate authentication to hosts needs both ClientCertPath and ClientKeyPath");
      } else if (!transport.client_certificate_file.empty()) {
        if (!readable_file(transport.client_certificate_file))
          reader.file_problem(w.name("ClientCertPath"), transport.client_certificate_file);
        if (!readable_file(transport.client_key_file)) {
          reader.file_problem(w.name("ClientKeyPath"), transport.client_key_file);
        } else if (auto exposure = files::key_file_exposure(transport.client_key_file)) {
          reader.problem(w.name("ClientKeyPath"), *exposure);
        }
      }
    }
  }
  if (const json* ssh = top.find("Ssh")) {
    if (!ssh->is_object()) {
      reader.problem(top.name("Ssh"),
                     "must be an object like {\"KnownHostsFile\": \"/etc/wincert-agent/known_hosts\"}");
    } else {
      Section s(reader, *ssh, top.name("Ssh") + ".");
      s.path("KnownHostsFile", cfg.ssh.known_hosts_file);
      s.boolean("TrustOnFirstUse", cfg.ssh.trust_on_first_use);
      s.seconds("ConnectTimeoutSeconds", 1, 600, cfg.ssh.connect_timeout);
      s.report_unknown();
    }
  }
  cfg.ssh.operation_timeout = cfg.winrm.session.command_deadline;  // one deadline per op, whatever the transport
  if (const json* metrics = top.find("Metrics")) {
    if (!metrics->is_object()) {
      reader.problem(top.name("Metrics"), "must be an object like {\"Listen\": \"127.0.0.1:9464\"}");
    } else {
      Section m(reader, *metrics, top.name("Metrics") + ".");
      if (const json* listen = m.find("Listen"); listen && listen->is_number_integer()) {
        cfg.metrics.listen = std::to_string(listen->get<long long>());  // a bare port
      } else {
        m.string("Listen", cfg.metrics.listen);
      }
      if (!cfg.metrics.listen.empty()) {
        if (auto where = metrics::parse_listen_address(cfg.metrics.listen); !where.ok())
          reader.problem(m.name("Listen"), where.error().message);
      }
      long long hosts = 0;
      if (m.integer("MaxHostLabels", 0, 10000, hosts)) cfg.metrics.max_host_labels = static_cast<std::size_t>(hosts);
      m.report_unknown();
    }
  }
  if (const json* logging = top.find("Logging")) {
    if (!logging->is_object()) {
      reader.problem(top.name("Logging"), "must be an object like {\"Format\": \"json\"}");
    } else {
      Section l(reader, *logging, top.name("Logging") + ".");
      std::string format;
      l.string("Format", format);
      if (iequals(format, "json")) {
        cfg.logging.format = LogFormat::kJson;
      } else if (!format.empty() && !iequals(format, "text")) {
        reader.problem(l.name("Format"), "unknown format '" + format + "' (expected text or json)");
      }
      long long size_mb = 0;
      if (l.integer("MaxFileSizeMB", 1, 4096, size_mb))
        cfg.logging.max_file_bytes = static_cast<std::size_t>(size_mb) * 1024 * 1024;
      long long files = 0;
      if (l.integer("MaxFiles", 1, 1000, files)) cfg.logging.max_files = static_cast<std::size_t>(files);
      l.boolean("GroupReadable", cfg.logging.group_readable);
      l.report_unknown();
    }
  }
  if (const json* targets = top.find("DoctorTargets")) {
    if (!targets->is_array()) {
      reader.problem(top.name("DoctorTargets"), "must be an array of objects {\"ClientMachine\": ..., ...}");
    } else {
      for (std::size_t i = 0; i < targets->size(); ++i) {
        const std::string where = top.name("DoctorTargets") + "[" + std::to_string(i) + "]";
        const json& item = (*targets)[i];
        if (!item.is_object()) {
          reader.problem(where, "must be an object");
          continue;
        }
        Section t(reader, item, where + ".");
        DoctorTarget target;
        t.string("ClientMachine", target.client_machine);
        t.string("WinRM Protocol", target.protocol);
        if (const json* port = t.find("WinRM Port"); port && port->is_number_integer()) {
          target.port = std::to_string(port->get<long long>());
        } else {
          t.string("WinRM Port", target.port);
        }
        t.string("WinRM Authentication", target.authentication);
        t.string("Username", target.username);
        t.boolean("spnwithport", target.spn_with_port);
        t.boolean("WinRM AllowUnencrypted", target.allow_unencrypted);
        t.string("JEAEndpointName", target.jea_endpoint_name);
        t.report_unknown();
        if (target.client_machine.empty()) {
          reader.problem(where + ".ClientMachine", "required: the Windows host name (or host:port) to try WinRM on");
          continue;
        }
        if (!target.authentication.empty() && !jobs::parse_auth_scheme(target.authentication)) {
          reader.problem(t.name("WinRM Authentication"),
                         "unknown scheme '" + target.authentication +
                             "' (expected basic, ntlm, kerberos, negotiate or certificate)");
        }
        cfg.doctor_targets.push_back(std::move(target));
      }
    }
  }
  top.report_unknown();

  // --- cross-key validation ---
  if (cfg.agents_server_uri.empty()) {
    reader.problem("AgentsServerUri",
                   "required: the KeyfactorAgents URL, e.g. https://command.example.com/KeyfactorAgents");
  } else if (auto url = parse_url(cfg.agents_server_uri); !url.ok()) {
    reader.problem("AgentsServerUri", url.error().message);
  }
  if (cfg.orchestrator_name.empty()) {
    reader.problem("OrchestratorName",
                   "required: the name this orchestrator registers with (ClientMachine in Command)");
  } else if (cfg.orchestrator_name.size() > 255) {
    reader.problem("OrchestratorName", "longer than 255 characters");
  }
  if (!thumbprint.empty()) {
    reader.problem(top.name("AuthCertThumbprint"),
                   "selects a certificate from the Windows certificate store, which this platform does not have: "
                   "set CertPath and KeyPath to PEM files instead");
  }
  if (cfg.client_cert.empty() != cfg.client_key.empty()) {
    reader.problem(cfg.client_cert.empty() ? "CertPath" : "KeyPath",
                   "client-certificate authentication needs both CertPath (PEM certificate) and KeyPath (PEM key)");
  } else if (!cfg.client_cert.empty()) {
    if (!readable_file(cfg.client_cert)) reader.file_problem("CertPath", cfg.client_cert);
    if (!readable_file(cfg.client_key)) {
      reader.file_problem("KeyPath", cfg.client_key);
    } else if (auto exposure = files::key_file_exposure(cfg.client_key)) {
      reader.problem("KeyPath", *exposure);
    }
  }
  if (!cfg.server_ca_file.empty() && !readable_file(cfg.server_ca_file))
    reader.file_problem("ServerCaFile", cfg.server_ca_file);

  Secrets secrets;
  if (!secrets_file.empty()) secrets = read_secrets_file(secrets_file, reader);
  if (env) {
    if (auto value = env(kPasswordEnv)) secrets.password = Secret(*value);
    if (auto value = env(kClientSecretEnv)) secrets.client_secret = Secret(*value);
  }
  const std::string secret_hint = secrets_file.empty() ? "set SecretsFile" : "add it to '" + secrets_file + "'";
  cfg.secrets_file = secrets_file;
  for (DoctorTarget& target : cfg.doctor_targets) {
    auto it = secrets.doctor_passwords.find(to_lower(target.client_machine));
    if (it == secrets.doctor_passwords.end()) continue;
    target.password = it->second;
    target.has_password = true;
  }

  const bool oauth = !cfg.oauth.token_url.empty() || !cfg.oauth.client_id.empty();
  if (oauth && !cfg.username.empty()) {
    reader.problem("Username", "Basic (Username) and OAuth (BearerTokenUrl/ClientId) are both set: choose one");
  } else if (oauth) {
    cfg.auth_mode = CommandAuthMode::kOAuth;
    if (cfg.oauth.token_url.empty()) {
      reader.problem("BearerTokenUrl", "required with ClientId: the identity provider's token URL");
    } else if (auto url = parse_url(cfg.oauth.token_url); !url.ok()) {
      reader.problem("BearerTokenUrl", url.error().message);
    } else if (!url->tls()) {
      cfg.warnings.push_back("BearerTokenUrl is plain http (" + url->origin() +
                             "): the OAuth client secret and the access token travel in clear; use https");
    }
    if (cfg.oauth.client_id.empty()) reader.problem("ClientId", "required with BearerTokenUrl");
    if (!secrets.client_secret || secrets.client_secret->empty()) {
      reader.problem("ClientSecret", "the OAuth client secret is missing: " + secret_hint +
                                         " with \"ClientSecret\", or set " + std::string(kClientSecretEnv));
    } else {
      cfg.oauth.client_secret = *secrets.client_secret;
    }
  } else if (!cfg.username.empty()) {
    cfg.auth_mode = CommandAuthMode::kBasic;
    if (!secrets.password) {
      reader.problem("Password", "the password of Username is missing: " + secret_hint + " with \"Password\", or set " +
                                     std::string(kPasswordEnv));
    } else {
      cfg.password = *secrets.password;
    }
  } else if (cfg.client_cert.empty()) {
    reader.problem("Username",
                   "no authentication to Command is configured: set Username (Basic), CertPath and "
                   "KeyPath (client certificate), or BearerTokenUrl and ClientId (OAuth)");
  }

  static const std::set<std::string> kLevels = {"trace",   "debug", "info",     "warn",
                                                "warning", "error", "critical", "off"};
  cfg.log_level = to_lower(cfg.log_level);
  if (!kLevels.count(cfg.log_level)) {
    reader.problem("LogLevel", "unknown level '" + cfg.log_level + "' (expected trace, debug, info, warn, error, off)");
  } else if (cfg.log_level == "warning") {
    cfg.log_level = "warn";
  }
  if (cfg.outbox_directory.empty()) reader.problem("OutboxDirectory", "required: a directory the agent can write");
  if (cfg.retry_max < cfg.retry_initial) reader.problem("RetryMaxSeconds", "must not be less than RetryInitialSeconds");

  if (!reader.problems().empty()) {
    std::string message = source + ": ";
    for (std::size_t i = 0; i < reader.problems().size(); ++i) {
      if (i) message += "; ";
      message += reader.problems()[i];
    }
    if (problems != nullptr) *problems = std::move(reader.listed());
    return Error::invalid_argument(std::move(message));
  }
  return cfg;
}

Result<AgentConfig> load_agent_config(const std::string& path, std::vector<ConfigProblem>* problems) {
  std::string error;
  int error_number = 0;
  const std::string text = read_text(path, error, &error_number);
  if (!error.empty()) {
    std::string message = error + " (--config must name the agent's JSON configuration)";
    Error failure = error_number == EACCES || error_number == EPERM ? Error::permission_denied(std::move(message))
                                                                    : Error::not_found(std::move(message));
    return std::move(failure).with_system_status(SystemStatusKind::kErrno, static_cast<std::uint32_t>(error_number));
  }
  const std::string base_dir = fs::absolute(fs::path(path)).parent_path().string();
  return parse_agent_config(
      text, path, base_dir,
      [](std::string_view name) -> std::optional<std::string> {
        const char* value = std::getenv(std::string(name).c_str());
        if (value == nullptr) return std::nullopt;
        return std::string(value);
      },
      problems);
}

std::string describe_auth(const AgentConfig& config) {
  std::string out;
  switch (config.auth_mode) {
    case CommandAuthMode::kBasic:
      out = "basic as '" + config.username + "'";
      break;
    case CommandAuthMode::kOAuth:
      out = "OAuth client credentials as client '" + config.oauth.client_id + "'";
      break;
    case CommandAuthMode::kNone:
      break;
  }
  if (!config.client_cert.empty())
    out += (out.empty() ? "" : " + ") + std::string("client certificate ") + config.client_cert;
  return out.empty() ? "none" : out;
}

}  // namespace wincert::agent
