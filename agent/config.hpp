// The long-running agent's configuration: one JSON file whose keys follow the Universal Orchestrator's
// appsettings.json (AgentsServerUri, OrchestratorName, CertPath, BearerTokenUrl, ClientId, Scope,
// Audience, TokenLifetime, InventoryMaxUpdateSizeMb) plus the agent's own settings (concurrency,
// outbox, logging, WinRM defaults, intervals). Keys match case-insensitively, like .NET configuration;
// the keys may also sit inside an "AppSettings" object as in the UO's file. A key starting with "//" is
// a comment. Secrets (the Basic password, the OAuth client secret) never live in this file: they come
// from SecretsFile (a small JSON file) or from environment variables, which win over the file.
//
// Validation happens once at start; every problem names the key and says what is expected.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/ssh_sessions.hpp"
#include "agent/winrm_settings.hpp"
#include "common/log.hpp"
#include "common/result.hpp"
#include "common/secret.hpp"
#include "jobs/target.hpp"

namespace wincert::agent {

// Environment variables that carry secrets (they win over SecretsFile).
inline constexpr std::string_view kPasswordEnv = "WINCERT_COMMAND_PASSWORD";
inline constexpr std::string_view kClientSecretEnv = "WINCERT_CLIENT_SECRET";

// How the agent proves who it is to Command. A client certificate (mTLS) can be combined with either
// header scheme (or used alone).
enum class CommandAuthMode { kNone, kBasic, kOAuth };

struct OAuthSettings {
  std::string token_url;                     // BearerTokenUrl
  std::string client_id;                     // ClientId
  Secret client_secret;                      // SecretsFile "ClientSecret" or WINCERT_CLIENT_SECRET
  std::string scope;                         // Scope (optional)
  std::string audience;                      // Audience (optional)
  std::chrono::seconds token_lifetime{300};  // TokenLifetime: used when the IdP omits expires_in
};

// One DoctorTargets entry: a Windows host `wincert-agent doctor` opens a WinRM session to, described the
// way a store is (ClientMachine plus the WinRM store properties and credentials). Not used by `run`.
struct DoctorTarget {
  std::string client_machine;      // ClientMachine: "host", "host:port", "[v6]:port"
  std::string protocol;            // "WinRM Protocol": http | https; empty = http
  std::string port;                // "WinRM Port"; empty = 5985 (http) / 5986 (https)
  std::string authentication;      // "WinRM Authentication"; empty = WinRM.DefaultAuth
  std::string username;            // Username; empty = the agent's own Kerberos identity
  Secret password;                 // SecretsFile "DoctorPasswords": {"<ClientMachine>": "..."}
  bool has_password = false;       // an entry for this ClientMachine exists in DoctorPasswords
  bool spn_with_port = false;      // "spnwithport"
  bool allow_unencrypted = false;  // "WinRM AllowUnencrypted": Basic over plain http
  std::string jea_endpoint_name;   // "JEAEndpointName": try PowerShell remoting on this configuration
};

// The "Metrics" section: the opt-in /metrics, /healthz, /readyz listener (agent/metrics/).
struct MetricsSettings {
  std::string listen;                // Listen: "127.0.0.1:9464", "[::1]:9464" or a port; empty = off
  std::size_t max_host_labels = 20;  // MaxHostLabels: hosts named in per-host series; later ones "_other"
};

// The "AgentCertificate" section: renewal of the mTLS client certificate (CertPath/KeyPath) with a CSR in
// the registration, when Command asks for it (A0100007/A0100008) or before it expires.
struct AgentCertificateSettings {
  std::chrono::hours renew_before{30 *
                                  24};  // RenewDaysBeforeExpiry: renew when it expires within this; 0 = only on request
  std::string key_type = "RSA";         // KeyType: RSA or ECC
  int key_size = 2048;                  // KeySize: RSA bits (2048..8192) or ECC curve bits (256, 384)
  std::string subject;  // Subject of the CSR; empty = the current certificate's, else CN=OrchestratorName
};

// The "Logging" section (LogLevel and LogFile stay top-level keys, as before).
struct LoggingSettings {
  LogFormat format = LogFormat::kText;             // Format: "text" (default) or "json" (one JSON object per line)
  std::size_t max_file_bytes = 10u * 1024 * 1024;  // MaxFileSizeMB: LogFile rotates at this size
  std::size_t max_files = 5;                       // MaxFiles: rotated files kept besides the current one
  bool group_readable = false;                     // GroupReadable: LogFile mode 0640 instead of 0600
};

struct AgentConfig {
  // --- Command (UO appsettings.json names) ---
  std::string agents_server_uri;  // AgentsServerUri, e.g. https://command.example.com/KeyfactorAgents
  std::string orchestrator_name;  // OrchestratorName, the ClientMachine shown in Command
  CommandAuthMode auth_mode = CommandAuthMode::kNone;
  std::string username;     // Basic: "DOMAIN\\user" (Username)
  Secret password;          // Basic: SecretsFile "Password" or WINCERT_COMMAND_PASSWORD
  std::string client_cert;  // CertPath: PEM client certificate (chain) for mTLS
  std::string client_key;   // KeyPath: its unencrypted PEM private key
  OAuthSettings oauth;
  std::size_t inventory_max_update_bytes = 10u * 1024 * 1024;  // InventoryMaxUpdateSizeMb
  // InventoryPartSizeKb (ours): an inventory is stored and sent in parts of this size as it is read, so a
  // running job holds one part of it; capped by InventoryMaxUpdateSizeMb.
  std::size_t inventory_part_bytes = 256u * 1024;
  int agent_platform = 1;  // AgentPlatform sent at registration (1 = .NET / Universal Orchestrator)
  std::map<std::string, std::string> client_parameters;  // ClientParameters for registration handlers
  // JobTypes: JobTypeId GUID -> capability, for jobs whose job list and configuration name no Capability
  // (agent/job_types.hpp).
  std::map<std::string, std::string> job_types;
  AgentCertificateSettings agent_certificate;

  // --- TLS and timeouts towards Command ---
  std::string server_ca_file;  // ServerCaFile; empty = system store
  bool server_tls_verify = true;
  std::chrono::seconds server_connect_timeout{30};
  std::chrono::seconds server_request_timeout{60};

  // --- the agent ---
  int max_concurrent_jobs = 32;                             // MaxConcurrentJobs (global)
  int max_jobs_per_host = 2;                                // MaxJobsPerHost
  std::string outbox_directory = "/var/lib/wincert-agent";  // OutboxDirectory (also holds the AgentId)
  std::string log_level = "info";
  std::string log_file;  // empty = stderr (journald under systemd)
  LoggingSettings logging;
  MetricsSettings metrics;
  WinrmSettings winrm;  // the "WinRM" section (agent/winrm_settings.hpp): defaults for every store session
  SshSettings ssh;      // the "Ssh" section (agent/ssh_sessions.hpp): stores whose 'WinRM Protocol' is ssh
  std::optional<std::chrono::seconds> heartbeat_interval;  // HeartbeatIntervalSeconds; default: Command's
  std::chrono::seconds job_poll_interval{600};  // JobPollIntervalSeconds: re-register for the job list; 0 = off
  std::chrono::seconds shutdown_grace{30};      // ShutdownGraceSeconds: running jobs may finish
  std::chrono::seconds job_timeout{3600};       // JobTimeoutSeconds: one job's overall deadline
  std::chrono::milliseconds outbox_flush_timeout{15000};  // OutboxFlushSeconds: last delivery attempts at exit
  std::chrono::milliseconds retry_initial{1000};          // RetryInitialSeconds: first backoff step
  std::chrono::milliseconds retry_max{300000};            // RetryMaxSeconds: backoff cap

  std::vector<DoctorTarget> doctor_targets;  // DoctorTargets: hosts `doctor` tries WinRM against

  std::string source;        // the file this came from, for messages
  std::string secrets_file;  // SecretsFile as resolved (empty = none), for messages
  // Settings that load but deserve a person's attention (an http BearerTokenUrl, a copied
  // CheckServerCertificateRevocation); logged as warnings when the agent starts.
  std::vector<std::string> warnings;
};

// Parses and validates a configuration. `base_dir` resolves relative paths (the config file's
// directory); `env` looks up an environment variable (std::getenv by default in load_agent_config).
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

// One problem of a configuration that does not load, for callers that sort them (doctor): the key it is
// about and what is wrong, as the error's message lists them ("KEY: what; KEY: what").
struct ConfigProblem {
  std::string key;               // "MaxConcurentJobs", "DoctorTargets[0].WinRM Prot", "SecretsFile"
  std::string what;              // "unknown key", "cannot read '/etc/x.pem'"
  bool unreadable_file = false;  // a file the key names cannot be read
};

// Errors: the text is not JSON or not an object: invalid_argument with no problems listed; keys with
// problems: invalid_argument, every problem in the message and (when `problems` is given) listed there.
Result<AgentConfig> parse_agent_config(std::string_view json_text, const std::string& source,
                                       const std::string& base_dir, EnvLookup env,
                                       std::vector<ConfigProblem>* problems = nullptr);

// Reads the file, its SecretsFile and the environment. A file that cannot be read is not_found (or
// permission_denied) with its errno; otherwise as parse_agent_config.
Result<AgentConfig> load_agent_config(const std::string& path, std::vector<ConfigProblem>* problems = nullptr);

// "basic (DOMAIN\\user)", "oauth (client id x)", "client certificate /path": for logs, never a secret.
std::string describe_auth(const AgentConfig& config);

}  // namespace wincert::agent
