#include "jobs/target.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace wincert::jobs {
namespace {

using testing::read_fixture;

JobConfig config_with(std::string client_machine, std::string properties_json, std::string username = "svc") {
  std::string text = R"({"Capability":"CertStores.WinCert.Inventory","ServerUsername":")" + username +
                     R"(","ServerPassword":"pw","CertificateStoreDetails":{"ClientMachine":")" + client_machine +
                     R"(","StorePath":"My","Properties":)" + properties_json + "}}";
  auto parsed = parse_job_config(text);
  EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.error().message);
  return parsed.ok() ? std::move(parsed).value() : JobConfig{};
}

Result<Target> resolve(const JobConfig& config, AuthScheme default_auth = AuthScheme::kNegotiate,
                       bool local_available = false) {
  return resolve_target(config, TargetOptions{default_auth, local_available});
}

TEST(Target, WinIisInventoryFixtureIsRemoteHttpWithTheAgentsIdentity) {
  auto parsed = parse_job_config(read_fixture("WinIISInventory.json"));
  ASSERT_TRUE(parsed.ok());
  auto target = resolve(parsed.value());
  ASSERT_TRUE(target.ok()) << target.error().message;
  EXPECT_FALSE(target->local);
  EXPECT_EQ(target->machine, "192.168.230.170");
  EXPECT_EQ(target->remote.endpoint_url, "http://192.168.230.170:5985/wsman");
  EXPECT_FALSE(target->remote.https);
  EXPECT_EQ(target->remote.auth, AuthScheme::kNegotiate);
  EXPECT_TRUE(target->remote.uses_agent_identity());
  EXPECT_FALSE(target->remote.spn_with_port);
}

TEST(Target, PlaceholderPortParsesButFailsOnResolutionNamingWinRmPort) {
  auto text =
      apply_override(read_fixture("Management.json"), "CertificateStoreDetails.Properties.WinRm Protocol=https");
  ASSERT_TRUE(text.ok());
  auto parsed = parse_job_config(text.value());
  ASSERT_TRUE(parsed.ok());
  auto target = resolve(parsed.value());
  ASSERT_FALSE(target.ok());
  EXPECT_NE(target.error().message.find("'WinRm Port'"), std::string::npos) << target.error().message;
  EXPECT_NE(target.error().message.find("WinRmPortGoesHere"), std::string::npos);
}

TEST(Target, PlaceholderProtocolFailsNamingWinRmProtocol) {
  auto parsed = parse_job_config(read_fixture("Management.json"));
  ASSERT_TRUE(parsed.ok());
  auto target = resolve(parsed.value());
  ASSERT_FALSE(target.ok());
  EXPECT_NE(target.error().message.find("'WinRm Protocol'"), std::string::npos) << target.error().message;
}

// The WinCert fixture as shipped says "WinRm Protocol": "ssh" (PowerShell over SSH, the extension 2.6+), with
// "WinRm Port" 5985 and ServerUsername/ServerPassword at the job's top level.
TEST(Target, SshProtocolFromTheWinCertFixtureIsPowerShellOverSsh) {
  auto parsed = parse_job_config(read_fixture("WinCertInventory.json"));
  ASSERT_TRUE(parsed.ok());
  auto target = resolve(parsed.value());
  ASSERT_TRUE(target.ok()) << target.error().message;
  EXPECT_EQ(target->remote.transport, RemoteTransport::kSsh);
  EXPECT_EQ(target->remote.host, "vmlabsvr1");
  EXPECT_EQ(target->remote.port, 5985);  // the store's 'WinRm Port'
  EXPECT_EQ(target->remote.endpoint_url, "ssh://vmlabsvr1:5985");
  EXPECT_EQ(target->remote.username, "UserNameGoesHere");
  EXPECT_EQ(target->remote.password.reveal(), "PasswordGoesHere");

  // Port 22 without one; ClientMachine's port wins; ServerUsername and ServerPassword are required.
  auto no_port =
      apply_override(read_fixture("WinCertInventory.json"), "CertificateStoreDetails.Properties.WinRm Port=");
  ASSERT_TRUE(no_port.ok());
  auto default_port = resolve(parse_job_config(no_port.value()).value());
  ASSERT_TRUE(default_port.ok()) << default_port.error().message;
  EXPECT_EQ(default_port->remote.port, 22);
  auto with_port =
      apply_override(read_fixture("WinCertInventory.json"), "CertificateStoreDetails.ClientMachine=h1:2222");
  ASSERT_TRUE(with_port.ok());
  EXPECT_EQ(resolve(parse_job_config(with_port.value()).value())->remote.port, 2222);
  auto no_user = apply_override(read_fixture("WinCertInventory.json"), "ServerUsername=");
  ASSERT_TRUE(no_user.ok());
  auto refused = resolve(parse_job_config(no_user.value()).value());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("ServerUsername"), std::string::npos) << refused.error().message;
}

// JEAEndpointName (the extension 4.0's) names the session configuration; ExecutionMode (ours) picks PowerShell
// remoting or WinRS for the store; the two conflict when a JEA endpoint is asked for over WinRS.
TEST(Target, JeaEndpointNameAndExecutionModeComeFromTheStore) {
  auto plain = resolve(config_with("web01", R"({"WinRM Protocol":"https"})"));
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_EQ(plain->remote.configuration_name, "");
  EXPECT_FALSE(plain->remote.execution_mode.has_value());  // the agent's WinRM.ExecutionMode decides

  auto jea = resolve(config_with("web01", R"({"WinRM Protocol":"https","JEAEndpointName":" WincertAgent "})"));
  ASSERT_TRUE(jea.ok()) << jea.error().message;
  EXPECT_EQ(jea->remote.configuration_name, "WincertAgent");

  auto winrs = resolve(config_with("web01", R"({"WinRM Protocol":"https","ExecutionMode":"WinRS"})"));
  ASSERT_TRUE(winrs.ok()) << winrs.error().message;
  EXPECT_EQ(winrs->remote.execution_mode, ExecutionMode::kWinrs);

  auto unknown = resolve(config_with("web01", R"({"WinRM Protocol":"https","ExecutionMode":"wmi"})"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(unknown.error().message.find("psrp"), std::string::npos) << unknown.error().message;

  auto conflict = resolve(
      config_with("web01", R"({"WinRM Protocol":"https","ExecutionMode":"winrs","JEAEndpointName":"WincertAgent"})"));
  ASSERT_FALSE(conflict.ok());
  EXPECT_NE(conflict.error().message.find("JEA endpoint 'WincertAgent'"), std::string::npos)
      << conflict.error().message;

  auto bad_name = resolve(config_with("web01", R"({"WinRM Protocol":"https","JEAEndpointName":"a/../b"})"));
  ASSERT_FALSE(bad_name.ok());
  EXPECT_NE(bad_name.error().message.find("session configuration name"), std::string::npos) << bad_name.error().message;
}

TEST(Target, AnUnknownProtocolNamesTheThreeChoices) {
  auto text =
      apply_override(read_fixture("WinCertInventory.json"), "CertificateStoreDetails.Properties.WinRm Protocol=telnet");
  ASSERT_TRUE(text.ok());
  auto target = resolve(parse_job_config(text.value()).value());
  ASSERT_FALSE(target.ok());
  EXPECT_NE(target.error().message.find("https, http or ssh"), std::string::npos) << target.error().message;
}

TEST(Target, LocalMachineNeedsTheWindowsBuild) {
  for (const char* cm :
       {"web01|LocalMachine", "web01|localmachine", "localhost", "LOCALHOST", "LocalMachine", "localhost|anything"}) {
    auto target = resolve(config_with(cm, R"("{}")"));
    ASSERT_FALSE(target.ok()) << cm;
    EXPECT_EQ(target.error().message.rfind(std::string("ClientMachine '") + cm +
                                               "' asks for the local CryptoAPI path, which needs the Windows build "
                                               "of wincert-agent",
                                           0),
              0u)
        << target.error().message;
    auto local = resolve(config_with(cm, R"("{}")"), AuthScheme::kNegotiate, /*local_available=*/true);
    ASSERT_TRUE(local.ok()) << cm;
    EXPECT_TRUE(local->local);
  }
}

TEST(Target, RemoteHostsAndPorts) {
  auto t = resolve(config_with("web01.corp.example", R"("{\"WinRM Protocol\":\"https\"}")"));
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->remote.endpoint_url, "https://web01.corp.example:5986/wsman");  // https default port

  t = resolve(config_with("web01", R"("{\"WinRM Protocol\":\"HTTPS\",\"WinRM Port\":\"443\"}")"));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->remote.endpoint_url, "https://web01:443/wsman");

  t = resolve(config_with("web01", R"("{}")"));  // nothing set: the extension's code defaults
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->remote.endpoint_url, "http://web01:5985/wsman");

  // host:port in ClientMachine wins over the WinRM Port property.
  t = resolve(config_with("127.0.0.1:45123", R"("{\"WinRM Port\":\"5985\"}")"));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->remote.endpoint_url, "http://127.0.0.1:45123/wsman");
  EXPECT_EQ(t->remote.port, 45123);

  t = resolve(config_with("[::1]", R"("{}")"));
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->remote.host, "::1");
  EXPECT_EQ(t->remote.endpoint_url, "http://[::1]:5985/wsman");

  t = resolve(config_with("[::1]:5999|Ignored", R"("{}")"));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->remote.endpoint_url, "http://[::1]:5999/wsman");

  t = resolve(config_with("2001:db8::10", R"("{\"WinRM Protocol\":\"https\"}")"));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->remote.host, "2001:db8::10");
  EXPECT_EQ(t->remote.endpoint_url, "https://[2001:db8::10]:5986/wsman");

  t = resolve(config_with("web01", R"("{\"spnwithport\":\"true\"}")"));
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->remote.spn_with_port);
}

TEST(Target, BadClientMachineAndPortsAreNamed) {
  auto t = resolve(config_with("web01:99999", R"("{}")"));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("ClientMachine"), std::string::npos);
  EXPECT_FALSE(resolve(config_with("[::1", R"("{}")")).ok());
  EXPECT_FALSE(resolve(config_with("", R"("{}")")).ok());
  t = resolve(config_with("web01", R"("{\"WinRM Port\":\"0\"}")"));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("'WinRM Port'"), std::string::npos);
}

TEST(Target, AuthSchemeFromStoreOrAgentDefault) {
  auto t = resolve(config_with("web01", R"("{\"WinRM Protocol\":\"https\"}")"), AuthScheme::kNtlm);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->remote.auth, AuthScheme::kNtlm);
  EXPECT_EQ(t->remote.username, "svc");
  EXPECT_EQ(t->remote.password.reveal(), "pw");

  t = resolve(config_with("web01", R"("{\"WinRM Protocol\":\"https\",\"WinRM Authentication\":\"Kerberos\"}")"));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->remote.auth, AuthScheme::kKerberos);

  t = resolve(config_with("web01", R"("{\"WinRM Authentication\":\"digest\"}")"));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("'WinRM Authentication'"), std::string::npos);
}

TEST(Target, EmptyUsernameMeansAgentIdentityOnlyWithKerberosOrNegotiate) {
  auto t = resolve(config_with("web01", R"("{\"WinRM Authentication\":\"kerberos\"}")", ""));
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->remote.uses_agent_identity());
  t = resolve(config_with("web01", R"("{\"WinRM Protocol\":\"https\",\"WinRM Authentication\":\"ntlm\"}")", ""));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("ServerUsername is empty"), std::string::npos);
}

TEST(Target, BasicOverHttpIsRefusedUnlessAllowUnencrypted) {
  auto t = resolve(config_with("web01", R"("{\"WinRM Protocol\":\"http\",\"WinRM Authentication\":\"basic\"}")"));
  ASSERT_FALSE(t.ok());
  const std::string& message = t.error().message;
  EXPECT_NE(message.find("'WinRM AllowUnencrypted'"), std::string::npos) << message;
  EXPECT_NE(message.find("https"), std::string::npos);
  EXPECT_EQ(message.find("pw"), std::string::npos);

  t = resolve(config_with("web01", R"("{\"WinRM Authentication\":\"basic\",\"WinRM AllowUnencrypted\":\"true\"}")"));
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_TRUE(t->remote.allow_unencrypted);

  t = resolve(config_with("web01", R"("{\"WinRM Protocol\":\"https\",\"WinRM Authentication\":\"basic\"}")"));
  ASSERT_TRUE(t.ok());
  // The agent's default can be Basic too; the same rule applies.
  EXPECT_FALSE(resolve(config_with("web01", R"("{}")"), AuthScheme::kBasic).ok());
  EXPECT_FALSE(resolve(config_with("web01", R"("{\"WinRM Authentication\":\"certificate\"}")")).ok());
}

TEST(Target, AuthSchemeNames) {
  for (AuthScheme s : {AuthScheme::kBasic, AuthScheme::kNtlm, AuthScheme::kKerberos, AuthScheme::kNegotiate,
                       AuthScheme::kCertificate}) {
    EXPECT_EQ(parse_auth_scheme(auth_scheme_name(s)), s);
  }
  EXPECT_EQ(parse_auth_scheme(" NEGOTIATE "), AuthScheme::kNegotiate);
  EXPECT_FALSE(parse_auth_scheme("spnego").has_value());
}

}  // namespace
}  // namespace wincert::jobs
