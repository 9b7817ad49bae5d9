// Configuration: defaults, the UO's appsettings layout, secrets from a file or the environment, and
// one test per bad key showing the key is named.
#include <gtest/gtest.h>

#include <cerrno>

#include <filesystem>
#include <map>
#include <string>

#include "agent/config.hpp"
#include "agent/platform/files.hpp"
#include "tests/agent/daemon_test_support.hpp"

namespace wincert::agent {
namespace {

// chmod 600; on Windows a protected DACL for SYSTEM, Administrators and this account (the bits only set the
// read-only attribute there).
void restrict_to_owner(const std::string& path) {
#ifdef _WIN32
  files::restrict_to_owner(path);
#else
  std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
#endif
}

using testing::TempDir;
using testing::write_text;

class ConfigTest : public ::testing::Test {
 protected:
  Result<AgentConfig> parse(const std::string& text) {
    return parse_agent_config(text, "agent.json", dir_.path(),
                              [this](std::string_view name) -> std::optional<std::string> {
                                auto it = env_.find(std::string(name));
                                if (it == env_.end()) return std::nullopt;
                                return it->second;
                              });
  }
  // A minimal valid Basic configuration with `extra` members spliced in.
  std::string basic(const std::string& extra = "") {
    return R"({"AgentsServerUri": "https://command.example.com/KeyfactorAgents", "OrchestratorName": "uo-01",
               "Username": "KEYFACTOR\\svc", "OutboxDirectory": "state")" +
           (extra.empty() ? std::string() : ", " + extra) + "}";
  }
  void expect_problem(const std::string& text, const std::string& key) {
    auto cfg = parse(text);
    ASSERT_FALSE(cfg.ok()) << "accepted: " << text;
    EXPECT_EQ(cfg.error().code, ErrorCode::kInvalidArgument) << cfg.error().message;
    EXPECT_NE(cfg.error().message.find(key), std::string::npos) << key << " not named in: " << cfg.error().message;
  }

  TempDir dir_;
  std::map<std::string, std::string> env_{{"WINCERT_COMMAND_PASSWORD", "pw"}};
};

TEST_F(ConfigTest, MinimalBasicConfigHasDocumentedDefaults) {
  auto cfg = parse(basic());
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->auth_mode, CommandAuthMode::kBasic);
  EXPECT_EQ(cfg->password.reveal(), "pw");
  EXPECT_EQ(cfg->inventory_max_update_bytes, 10u * 1024 * 1024);
  EXPECT_EQ(cfg->inventory_part_bytes, 256u * 1024);
  EXPECT_EQ(cfg->max_concurrent_jobs, 32);
  EXPECT_EQ(cfg->max_jobs_per_host, 2);
  // relative to the config file (compared as paths: Windows joins with '\\')
  EXPECT_EQ(std::filesystem::path(cfg->outbox_directory), std::filesystem::path(dir_.path() + "/state"));
  EXPECT_TRUE(cfg->server_tls_verify);
  EXPECT_EQ(cfg->log_level, "info");
  EXPECT_EQ(cfg->winrm.default_auth, jobs::AuthScheme::kNegotiate);
  EXPECT_FALSE(cfg->heartbeat_interval.has_value());
  EXPECT_EQ(cfg->shutdown_grace, std::chrono::seconds(30));
  EXPECT_EQ(describe_auth(*cfg), "basic as 'KEYFACTOR\\svc'");
}

TEST_F(ConfigTest, AcceptsTheUniversalOrchestratorLayoutCommentsAndCaseInsensitiveKeys) {
  env_["WINCERT_CLIENT_SECRET"] = "s3cret";
  auto cfg = parse(
      R"({"//": "copied from appsettings.json", "AppSettings": {"agentsserveruri": "https://kf/KeyfactorAgents", "OrchestratorName": "uo",
      "ExtensionsDirectory": "extensions", "ScriptTimeout": 60, "CheckServerCertificateRevocation": true,
      "BearerTokenUrl": "https://idp/realms/kf/protocol/openid-connect/token", "ClientId": "agent",
      "TokenLifetime": "600", "Scope": "kf", "Audience": "command", "InventoryMaxUpdateSizeMb": 2,
      "InventoryPartSizeKb": 64},
    "//OutboxDirectory": "where results wait", "OutboxDirectory": "/var/lib/x",
    "WinRM": {"DefaultAuth": "Kerberos", "TlsVerify": "false"}})");
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->auth_mode, CommandAuthMode::kOAuth);
  EXPECT_EQ(cfg->oauth.client_secret.reveal(), "s3cret");
  EXPECT_EQ(cfg->oauth.token_lifetime, std::chrono::seconds(600));
  EXPECT_EQ(cfg->oauth.scope, "kf");
  EXPECT_EQ(cfg->inventory_max_update_bytes, 2u * 1024 * 1024);
  EXPECT_EQ(cfg->inventory_part_bytes, 64u * 1024);
  EXPECT_EQ(cfg->winrm.default_auth, jobs::AuthScheme::kKerberos);
  EXPECT_FALSE(cfg->winrm.transport.connect.verify_peer);
}

// The "WinRM" section fills the transport's and session's own option types once; nothing maps them again.
TEST_F(ConfigTest, WinrmSectionFillsTheTransportAndSessionOptionsDirectly) {
  auto defaults = parse(basic());
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  const WinrmSettings& d = defaults->winrm;
  EXPECT_EQ(d.transport.connect.connect_timeout, std::chrono::seconds(30));
  EXPECT_EQ(d.transport.connect.tls_handshake_timeout, std::chrono::seconds(30));
  EXPECT_EQ(d.transport.exchange.read_timeout, std::chrono::seconds(60));
  EXPECT_EQ(d.session.operation_timeout, std::chrono::seconds(20));
  EXPECT_EQ(d.session.command_deadline, std::chrono::seconds(600));
  EXPECT_EQ(d.idle_timeout, std::chrono::seconds(120));
  EXPECT_EQ(d.execution_mode, jobs::ExecutionMode::kPsrp);  // PowerShell remoting unless configured
  EXPECT_TRUE(d.transport.connect.verify_peer);
  EXPECT_TRUE(d.transport.ca_file.empty());

  auto cfg =
      parse(basic(R"("WinRM": {"ConnectTimeoutSeconds": 7, "ReadTimeoutSeconds": 90, "OperationTimeoutSeconds": 15,
      "CommandTimeoutSeconds": 1200, "IdleTimeoutSeconds": 300, "ExecutionMode": "WinRS"})"));
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  const WinrmSettings& w = cfg->winrm;
  EXPECT_EQ(w.transport.connect.connect_timeout, std::chrono::seconds(7));
  EXPECT_EQ(w.transport.connect.tls_handshake_timeout, std::chrono::seconds(7));  // one setting for both
  EXPECT_EQ(w.transport.exchange.read_timeout, std::chrono::seconds(90));
  EXPECT_EQ(w.session.operation_timeout, std::chrono::seconds(15));
  EXPECT_EQ(w.session.command_deadline, std::chrono::seconds(1200));
  EXPECT_EQ(w.idle_timeout, std::chrono::seconds(300));
  EXPECT_EQ(w.execution_mode, jobs::ExecutionMode::kWinrs);
}

TEST_F(ConfigTest, SecretsFileSuppliesThePasswordAndTheEnvironmentWins) {
  env_.clear();
  write_text(dir_.file("secrets.json"), R"({"Password": "from-file"})");
  restrict_to_owner(dir_.file("secrets.json"));
  auto cfg = parse(basic(R"("SecretsFile": "secrets.json")"));
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->password.reveal(), "from-file");
  env_["WINCERT_COMMAND_PASSWORD"] = "from-env";
  cfg = parse(basic(R"("SecretsFile": "secrets.json")"));
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ(cfg->password.reveal(), "from-env");
}

#ifdef _WIN32
// Windows: a new file inherits an ACL that lets others read it (Wine: Everyone, from the file's mode bits;
// Windows: Users, from %ProgramData%); the owner-only DACL that `service install` sets makes it acceptable.
TEST_F(ConfigTest, SecretsFileReadableByOthersIsRefusedUntilRestrictedByItsAcl) {
  write_text(dir_.file("secrets.json"), R"({"Password": "p"})");
  expect_problem(basic(R"("SecretsFile": "secrets.json")"), "secrets.json' is readable by ");
  expect_problem(basic(R"("SecretsFile": "secrets.json")"), "wincert-agent service install");
  files::restrict_to_owner(dir_.file("secrets.json"));
  auto cfg = parse(basic(R"("SecretsFile": "secrets.json")"));
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
}

TEST_F(ConfigTest, PrivateKeyFileReadableByOthersIsRefusedUntilRestrictedByItsAcl) {
  write_text(dir_.file("c.pem"), "x");
  write_text(dir_.file("k.pem"), "x");
  const std::string with_key = R"({"AgentsServerUri": "https://kf/KeyfactorAgents", "OrchestratorName": "uo",
                                   "CertPath": "c.pem", "KeyPath": "k.pem"})";
  expect_problem(with_key, "KeyPath: the private key '");
  files::restrict_to_owner(dir_.file("k.pem"));
  auto cfg = parse(with_key);
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
}
#endif

TEST_F(ConfigTest, SecretsFileReadableByOthersIsRefused) {
#ifdef _WIN32
  GTEST_SKIP() << "mode bits: POSIX only (the ACL variant is above)";
#endif
  write_text(dir_.file("secrets.json"), R"({"Password": "p"})");
  std::filesystem::permissions(dir_.file("secrets.json"),
                               std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                   std::filesystem::perms::group_read | std::filesystem::perms::others_read);
  expect_problem(basic(R"("SecretsFile": "secrets.json")"), "chmod 600");
}

TEST_F(ConfigTest, ClientCertificateNeedsBothReadableFiles) {
  write_text(dir_.file("c.pem"), "x");
  write_text(dir_.file("k.pem"), "x");
  restrict_to_owner(dir_.file("k.pem"));  // a private key: owner-only (see PrivateKeyFilesReadableByOthers...)
  auto cfg = parse(R"({"AgentsServerUri": "https://kf/KeyfactorAgents", "OrchestratorName": "uo",
                       "CertPath": "c.pem", "KeyPath": "k.pem"})");
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->auth_mode, CommandAuthMode::kNone);
  EXPECT_EQ(std::filesystem::path(cfg->client_cert), std::filesystem::path(dir_.file("c.pem")));
  expect_problem(R"({"AgentsServerUri": "https://kf/KeyfactorAgents", "OrchestratorName": "uo", "CertPath": "c.pem"})",
                 "KeyPath");
  expect_problem(R"({"AgentsServerUri": "https://kf/KeyfactorAgents", "OrchestratorName": "uo",
                     "CertPath": "missing.pem", "KeyPath": "k.pem"})",
                 "CertPath: cannot read");
}

// The problems come listed with their keys (doctor sorts them into checks from that, not from the text);
// a file that is not JSON lists none; a configuration that cannot be read is not_found with its errno.
TEST_F(ConfigTest, ProblemsAreListedWithTheirKeysAndUnreadableFilesAreMarked) {
  std::vector<ConfigProblem> problems;
  auto cfg = parse_agent_config(
      basic(R"("MaxConcurentJobs": 4, "ServerCaFile": "missing-ca.pem")"), "agent.json", dir_.path(),
      [this](std::string_view name) -> std::optional<std::string> {
        auto it = env_.find(std::string(name));
        if (it == env_.end()) return std::nullopt;
        return it->second;
      },
      &problems);
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.error().code, ErrorCode::kInvalidArgument);
  ASSERT_EQ(problems.size(), 2u) << cfg.error().message;
  EXPECT_EQ(problems[0].key, "MaxConcurentJobs");
  EXPECT_FALSE(problems[0].unreadable_file);
  EXPECT_EQ(problems[1].key, "ServerCaFile");
  EXPECT_TRUE(problems[1].unreadable_file);
  // The message lists the same problems for people.
  EXPECT_NE(cfg.error().message.find(problems[1].key + ": " + problems[1].what), std::string::npos);

  problems.clear();
  cfg = parse_agent_config("{not json", "agent.json", dir_.path(), nullptr, &problems);
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(problems.empty());

  auto missing = load_agent_config(dir_.file("no-such-agent.json"), &problems);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().detail.system_kind, SystemStatusKind::kErrno);
  EXPECT_EQ(missing.error().detail.system_status, static_cast<std::uint32_t>(ENOENT));
}

// Like the secrets file: a private key other users can read is refused, naming the file and the fix.
TEST_F(ConfigTest, PrivateKeyFilesReadableByOthersAreRefused) {
#ifdef _WIN32
  GTEST_SKIP() << "Windows protects key files with ACLs, not mode bits";
#endif
  write_text(dir_.file("c.pem"), "x");
  write_text(dir_.file("k.pem"), "x");
  std::filesystem::permissions(dir_.file("k.pem"), std::filesystem::perms::owner_read |
                                                       std::filesystem::perms::owner_write |
                                                       std::filesystem::perms::others_read);
  const std::string with_key = R"({"AgentsServerUri": "https://kf/KeyfactorAgents", "OrchestratorName": "uo",
                                   "CertPath": "c.pem", "KeyPath": "k.pem"})";
  expect_problem(with_key, "KeyPath: the private key '");
  expect_problem(with_key, "k.pem' is readable by group or others: chmod 600");
  std::filesystem::permissions(dir_.file("k.pem"),
                               std::filesystem::perms::owner_read | std::filesystem::perms::group_read);
  expect_problem(basic(R"("WinRM": {"ClientCertPath": "c.pem", "ClientKeyPath": "k.pem"})"),
                 "WinRM.ClientKeyPath: the private key");
}

// Each bad key is named in the error.
TEST_F(ConfigTest, EachBadKeyIsNamed) {
  expect_problem(R"({"OrchestratorName": "uo", "Username": "u"})", "AgentsServerUri");
  expect_problem(basic().replace(basic().find("https://command"), 5, "ftp"), "AgentsServerUri");
  expect_problem(R"({"AgentsServerUri": "https://kf/KeyfactorAgents", "Username": "u"})", "OrchestratorName");
  expect_problem(basic(R"("AuthCertThumbprint": "AB12")"), "AuthCertThumbprint");
  expect_problem(basic(R"("TokenLifetime": 5)"), "TokenLifetime");
  expect_problem(basic(R"("InventoryMaxUpdateSizeMb": 0)"), "InventoryMaxUpdateSizeMb");
  expect_problem(basic(R"("InventoryMaxUpdateSizeMb": "ten")"), "InventoryMaxUpdateSizeMb");
  expect_problem(basic(R"("InventoryPartSizeKb": 8)"), "InventoryPartSizeKb");
  expect_problem(basic(R"("MaxConcurrentJobs": 0)"), "MaxConcurrentJobs");
  expect_problem(basic(R"("MaxJobsPerHost": -1)"), "MaxJobsPerHost");
  expect_problem(basic(R"("LogLevel": "loud")"), "LogLevel");
  expect_problem(basic(R"("ServerTlsVerify": "maybe")"), "ServerTlsVerify");
  expect_problem(basic(R"("ServerCaFile": "nope.pem")"), "ServerCaFile");
  expect_problem(basic(R"("HeartbeatIntervalSeconds": 1.5)"), "HeartbeatIntervalSeconds");
  expect_problem(basic(R"("ShutdownGraceSeconds": 99999)"), "ShutdownGraceSeconds");
  expect_problem(basic(R"("WinRM": {"DefaultAuth": "digest"})"), "WinRM.DefaultAuth");
  expect_problem(basic(R"("WinRM": {"Tiemout": 3})"), "WinRM.Tiemout");
  expect_problem(basic(R"("WinRM": {"ExecutionMode": "wmi"})"), "WinRM.ExecutionMode");
  expect_problem(basic(R"("WinRM": {"ClientCertPath": "x.pem"})"), "WinRM.ClientKeyPath");
  expect_problem(basic(R"("OutboxDirectory2": "x")"), "OutboxDirectory2: unknown key");
  expect_problem(basic(R"("ClientParameters": {"a": 1})"), "ClientParameters.a");
  expect_problem(basic(R"("RetryInitialSeconds": 10, "RetryMaxSeconds": 5)"), "RetryMaxSeconds");
  expect_problem(basic(R"("username": "again")"), "given twice");
  expect_problem("[1, 2]", "must hold a JSON object");
  expect_problem("{\"AgentsServerUri\": ", "not valid JSON");
}

TEST_F(ConfigTest, AuthenticationProblemsNameTheMissingPiece) {
  env_.clear();
  expect_problem(basic(), "Password");
  expect_problem(basic(), "WINCERT_COMMAND_PASSWORD");
  expect_problem(R"({"AgentsServerUri": "https://kf/KeyfactorAgents", "OrchestratorName": "uo"})",
                 "no authentication to Command is configured");
  expect_problem(R"({"AgentsServerUri": "https://kf/KeyfactorAgents", "OrchestratorName": "uo", "ClientId": "a"})",
                 "BearerTokenUrl");
  expect_problem(R"({"AgentsServerUri": "https://kf/KeyfactorAgents", "OrchestratorName": "uo",
                     "BearerTokenUrl": "https://idp/token", "ClientId": "a"})",
                 "ClientSecret");
  env_["WINCERT_CLIENT_SECRET"] = "s";
  expect_problem(basic(R"("BearerTokenUrl": "https://idp/token", "ClientId": "a")"), "choose one");
}

// Secrets never belong in the main file, and an error never echoes one.
TEST_F(ConfigTest, SecretsInTheMainFileAreRefusedWithoutEchoingThem) {
  auto cfg = parse(basic(R"("Password": "hunter2-SECRET", "ClientSecret": "cs-SECRET")"));
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.error().message.find("Password: secrets do not belong"), std::string::npos) << cfg.error().message;
  EXPECT_NE(cfg.error().message.find("ClientSecret: secrets do not belong"), std::string::npos);
  EXPECT_EQ(cfg.error().message.find("SECRET"), std::string::npos) << cfg.error().message;

  write_text(dir_.file("secrets.json"), R"({"Password": "p-SECRET", "Pasword": "typo-SECRET")");
  restrict_to_owner(dir_.file("secrets.json"));
  cfg = parse(basic(R"("SecretsFile": "secrets.json")"));
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.error().message.find("SecretsFile"), std::string::npos);
  EXPECT_EQ(cfg.error().message.find("SECRET"), std::string::npos) << cfg.error().message;
}

TEST_F(ConfigTest, MetricsAndLoggingSections) {
  auto defaults = parse(basic());
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  EXPECT_TRUE(defaults->metrics.listen.empty());  // off unless asked for
  EXPECT_EQ(defaults->metrics.max_host_labels, 20u);
  EXPECT_EQ(defaults->logging.format, LogFormat::kText);
  EXPECT_EQ(defaults->logging.max_file_bytes, 10u * 1024 * 1024);
  EXPECT_EQ(defaults->logging.max_files, 5u);
  EXPECT_FALSE(defaults->logging.group_readable);

  auto cfg = parse(basic(R"("metrics": {"Listen": "127.0.0.1:0", "MaxHostLabels": 3},
                            "Logging": {"format": "JSON", "MaxFileSizeMB": 2, "MaxFiles": 9, "GroupReadable": true})"));
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->metrics.listen, "127.0.0.1:0");
  EXPECT_EQ(cfg->metrics.max_host_labels, 3u);
  EXPECT_EQ(cfg->logging.format, LogFormat::kJson);
  EXPECT_EQ(cfg->logging.max_file_bytes, 2u * 1024 * 1024);
  EXPECT_EQ(cfg->logging.max_files, 9u);
  EXPECT_TRUE(cfg->logging.group_readable);
  auto port_only = parse(basic(R"("Metrics": {"Listen": 9464})"));
  ASSERT_TRUE(port_only.ok()) << port_only.error().message;
  EXPECT_EQ(port_only->metrics.listen, "9464");

  expect_problem(basic(R"("Logging": {"Format": "xml"})"), "Logging.Format");
  expect_problem(basic(R"("Logging": {"MaxFiles": 0})"), "Logging.MaxFiles");
  expect_problem(basic(R"("Metrics": {"Listne": "9464"})"), "Metrics.Listne");
  expect_problem(basic(R"("Metrics": "9464")"), "Metrics");
  expect_problem(basic(R"("Metrics": {"Listen": "metrics.example.com:9464"})"), "Metrics.Listen");
}

TEST_F(ConfigTest, ExampleConfigurationInTheRepositoryIsValid) {
  const std::string example = std::string(WINCERT_SOURCE_DIR) + "/config/agent.example.json";
  auto doc = nlohmann::json::parse(testing::read_text(example), nullptr, false);
  ASSERT_TRUE(doc.is_object()) << example;
  // Paths of files that exist only on a real installation.
  for (const char* key : {"SecretsFile", "ServerCaFile", "CertPath", "KeyPath"}) doc.erase(key);
  for (const char* key : {"CaFile", "ClientCertPath", "ClientKeyPath"}) doc["WinRM"].erase(key);
  auto cfg =
      parse_agent_config(doc.dump(), example, dir_.path(), [](std::string_view name) -> std::optional<std::string> {
        if (name == kPasswordEnv) return "pw";
        return std::nullopt;
      });
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->auth_mode, CommandAuthMode::kBasic);
}

TEST_F(ConfigTest, AnHttpTokenUrlAndACopiedRevocationSettingAreWarnedAbout) {
  env_["WINCERT_CLIENT_SECRET"] = "s3cret";
  const std::string oauth = R"({"AgentsServerUri": "https://kf/KeyfactorAgents", "OrchestratorName": "uo",
      "ClientId": "agent", "OutboxDirectory": "state", )";
  auto plain = parse(oauth + R"("BearerTokenUrl": "http://idp:8080/token", "CheckServerCertificateRevocation": true})");
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  ASSERT_EQ(plain->warnings.size(), 2u);
  EXPECT_NE(plain->warnings[0].find("CheckServerCertificateRevocation"), std::string::npos) << plain->warnings[0];
  EXPECT_NE(plain->warnings[1].find("client secret"), std::string::npos) << plain->warnings[1];
  EXPECT_EQ(plain->warnings[1].find("s3cret"), std::string::npos);
  // https and revocation explicitly off: nothing to say.
  auto quiet = parse(oauth + R"("BearerTokenUrl": "https://idp/token", "CheckServerCertificateRevocation": false})");
  ASSERT_TRUE(quiet.ok()) << quiet.error().message;
  EXPECT_TRUE(quiet->warnings.empty());
}

}  // namespace
}  // namespace wincert::agent
