// End-to-end: WinrsSession / run_ps / the wincert-agent CLI against winhost-sim on loopback.
#include <gtest/gtest.h>

#include "client_sim_util.hpp"
#include "client_test_util.hpp"
#include "tests/support/result_matchers.hpp"
#include "winrm/powershell.hpp"
#include "winrm/transport.hpp"
#include "winrm/winrs.hpp"

namespace wincert::winrm {
namespace {

using namespace std::chrono_literals;
namespace net = boost::asio;

constexpr const char* kUser = "alice";
constexpr const char* kPassword = "Sim-Passw0rd!";

struct SimFixture : ::testing::Test {
  net::io_context io;
  std::unique_ptr<test::SimProcess> sim;
  std::filesystem::path users_file;

  void start_sim(std::vector<std::string> extra = {}) {
    if (!test::sim_available()) GTEST_SKIP() << "winhost-sim is not built (" << test::sim_binary() << ")";
    users_file = std::filesystem::temp_directory_path() / ("wincert-client-users-" + random_uuid());
    std::ofstream(users_file) << kUser << ":" << kPassword << "\n";
    std::vector<std::string> args = {"--users", users_file.string(), "--allow-unencrypted"};
    for (auto& a : extra) args.push_back(std::move(a));
    sim = std::make_unique<test::SimProcess>(args);
    ASSERT_TRUE(sim->running()) << "winhost-sim did not start";
  }
  void SetUp() override { start_sim(); }
  void TearDown() override {
    sim.reset();
    std::error_code ec;
    if (!users_file.empty()) std::filesystem::remove(users_file, ec);
  }

  std::unique_ptr<WsmanTransport> connect(std::string password = kPassword, TransportOptions options = {}) {
    auto endpoint = parse_endpoint(sim->url());
    EXPECT_TRUE(endpoint.ok());
    auto transport = WsmanTransport::create(
        io.get_executor(), *endpoint, std::make_unique<BasicAuth>(kUser, Secret(std::move(password)), true), options);
    EXPECT_TRUE(transport.ok());
    return std::move(*transport);
  }
  template <typename T>
  T run(net::awaitable<T> work) {
    return test::run_coro(io, std::move(work));
  }
};

CommandSpec cmd(std::string line) {
  CommandSpec spec;
  spec.command = "cmd.exe";
  spec.arguments = {"/c", std::move(line)};
  return spec;
}

TEST_F(SimFixture, ExecEcho) {
  auto transport = connect();
  WinrsSession session(*transport);
  auto out = run(session.run(cmd("echo hello world")));
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->stdout_data, "hello world\r\n");
  EXPECT_EQ(out->stderr_data, "");
  EXPECT_EQ(out->exit_code, 0);
  EXPECT_TRUE(run(session.close()).ok());
  EXPECT_EQ(sim->action_count("Signal"), 1u);
  EXPECT_EQ(sim->action_count("Delete"), 1u);
}

TEST_F(SimFixture, ExecStderrAndExitCode) {
  auto transport = connect();
  WinrsSession session(*transport);
  auto out = run(session.run(cmd("echo out&& echo err>&2&& exit 3")));
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->stdout_data, "out\r\n");
  EXPECT_EQ(out->stderr_data, "err\r\n");
  EXPECT_EQ(out->exit_code, 3);
}

TEST_F(SimFixture, ReadsEnvelopeSizeFromHostOnce) {
  auto transport = connect();
  WinrsSession session(*transport);
  ASSERT_TRUE(run(session.run(cmd("echo 1"))).ok());
  ASSERT_TRUE(run(session.run(cmd("echo 2"))).ok());
  EXPECT_EQ(session.envelope_size(), 500u * 1024);  // the sim's default MaxEnvelopeSizekb
  EXPECT_EQ(sim->action_count("Get"), 1u);
}

TEST_F(SimFixture, PowerShellEchoOperationInline) {
  auto transport = connect();
  WinrsSession session(*transport);
  PsPayload payload{"# wincert-op: echo\n$args | ConvertTo-Json\n", R"({"name":"value","n":42})"};
  auto out = run(run_ps(session, payload));
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->mode, BootstrapMode::kInline);
  EXPECT_EQ(out->exit_code, 0);
  auto json = nlohmann::json::parse(out->stdout_data, nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << out->stdout_data;
  EXPECT_EQ(json["name"], "value");
  EXPECT_EQ(json["n"], 42);
  EXPECT_EQ(out->error_text, "");
  EXPECT_EQ(sim->action_count("Send"), 0u);
}

TEST_F(SimFixture, PowerShellErrorIsDecodedFromClixml) {
  auto transport = connect();
  WinrsSession session(*transport);
  auto out = run(run_ps(session, PsPayload{"# wincert-op: no-such-operation\n", "{}"}));
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_NE(out->exit_code, 0);
  EXPECT_FALSE(out->error_text.empty());
  EXPECT_EQ(out->error_text.find("<Objs"), std::string::npos) << out->error_text;  // decoded, not raw CLIXML
  EXPECT_NE(out->stderr_raw.find("#< CLIXML"), std::string::npos);
}

TEST_F(SimFixture, PowerShellStreamsAreSeparated) {
  auto transport = connect();
  WinrsSession session(*transport);
  const std::string script = "Write-Output 'result'\nWrite-Warning 'careful now'\nWrite-Error 'it broke'\nexit 5\n";
  auto out = run(run_ps(session, PsPayload{script, "{}"}));
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->exit_code, 5);
  EXPECT_EQ(out->stdout_data, "result\r\n");
  EXPECT_NE(out->error_text.find("it broke"), std::string::npos) << out->error_text;
  EXPECT_EQ(out->error_text.find("careful now"), std::string::npos) << out->error_text;
  ASSERT_EQ(out->warnings.size(), 1u) << out->stderr_raw;
  EXPECT_NE(out->warnings[0].find("careful now"), std::string::npos);
}

TEST_F(SimFixture, LargeScriptGoesThroughStdin) {
  auto transport = connect();
  WinrsSession session(*transport);
  std::string script = "# wincert-op: echo\n";
  while (script.size() < 200 * 1024) script += "# padding line so the script is large, like a real one would be\n";
  auto out = run(run_ps(session, PsPayload{script, R"({"big":true})"}));
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->mode, BootstrapMode::kStdin);
  EXPECT_EQ(out->exit_code, 0) << out->error_text;
  auto json = nlohmann::json::parse(out->stdout_data, nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << out->stdout_data;
  EXPECT_EQ(json["big"], true);
  EXPECT_GE(sim->action_count("Send"), 1u);
}

TEST_F(SimFixture, StdinLargerThanOneEnvelopeIsChunked) {
  auto transport = connect();
  SessionOptions options;
  options.max_envelope_size = 16 * 1024;  // force many Send chunks
  WinrsSession session(*transport, options);
  std::string script = "# wincert-op: echo\n";
  while (script.size() < 100 * 1024) script += "# more padding to push the script over the inline limit......\n";
  auto out = run(run_ps(session, PsPayload{script, R"({"chunked":"yes"})"}));
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->exit_code, 0) << out->error_text;
  EXPECT_EQ(nlohmann::json::parse(out->stdout_data, nullptr, false)["chunked"], "yes");
  EXPECT_GE(sim->action_count("Send"), 10u);
}

TEST_F(SimFixture, UnicodeRoundTrip) {
  auto transport = connect();
  WinrsSession session(*transport);
  const std::string text = "こんにちは – Grüße – 😀 – Ünïcødé";
  nlohmann::json args = {{"text", text}};
  auto out = run(run_ps(session, PsPayload{"# wincert-op: echo\n", args.dump()}));
  ASSERT_TRUE(out.ok()) << out.error().message;
  auto json = nlohmann::json::parse(out->stdout_data, nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << out->stdout_data;
  EXPECT_EQ(json["text"], text);
  auto echoed = run(session.run(cmd("echo " + text)));
  ASSERT_TRUE(echoed.ok()) << echoed.error().message;
  EXPECT_EQ(echoed->stdout_data, text + "\r\n");
}

TEST_F(SimFixture, CommandOutlivingSeveralOperationTimeoutsCompletes) {
  auto transport = connect();
  SessionOptions options;
  options.operation_timeout = 1s;
  WinrsSession session(*transport, options);
  auto out = run(session.run(cmd("timeout /t 4 /nobreak")));
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->exit_code, 0);
  EXPECT_GE(sim->counter("timeouts"), 2u);  // Receive long-polls that expired and were re-sent
  EXPECT_GE(session.counters().receives, 3u);
}

TEST_F(SimFixture, DeadlineEndsACommandAndStillSignals) {
  auto transport = connect();
  SessionOptions options;
  options.operation_timeout = 1s;
  options.command_deadline = 2s;
  WinrsSession session(*transport, options);
  auto out = run(session.run(cmd("timeout /t 60 /nobreak")));
  EXPECT_THAT(out, HasCode(ErrorCode::kDeadlineExceeded));
  EXPECT_NE(out.error().message.find("did not finish within 2 s"), std::string::npos) << out.error().message;
  EXPECT_EQ(sim->action_count("Signal"), 1u);
  // The shell is still usable afterwards.
  auto next = run(session.run(cmd("echo after")));
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_EQ(next->stdout_data, "after\r\n");
}

TEST_F(SimFixture, FiftyCommandsUseOneConnectionAndOneShell) {
  auto transport = connect();
  WinrsSession session(*transport);
  for (int i = 0; i < 50; ++i) {
    auto out = run(run_ps(session, PsPayload{"# wincert-op: echo\n", "{\"i\":" + std::to_string(i) + "}"}));
    ASSERT_TRUE(out.ok()) << i << ": " << out.error().message;
    ASSERT_EQ(nlohmann::json::parse(out->stdout_data, nullptr, false)["i"], i);
  }
  EXPECT_EQ(sim->counter("connections"), 1u);
  EXPECT_EQ(sim->counter("shells_created"), 1u);
  EXPECT_EQ(transport->counters().connections_opened, 1u);
  EXPECT_EQ(sim->action_count("Signal"), 50u);
}

TEST_F(SimFixture, WarmInlineRunIsThreeExchanges) {
  auto transport = connect();
  WinrsSession session(*transport);
  PsPayload payload{"# wincert-op: echo\n", R"({"warm":1})"};
  ASSERT_TRUE(run(run_ps(session, payload)).ok());  // cold: Get + Create + 3
  const auto before = transport->counters().http_requests;
  auto out = run(run_ps(session, payload));
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(transport->counters().http_requests - before, 3u);  // Command, Receive, Signal
}

TEST_F(SimFixture, ShellGoneIsReopenedTransparently) {
  auto transport = connect();
  WinrsSession session(*transport);
  ASSERT_TRUE(run(session.run(cmd("echo one"))).ok());
  // Delete the shell behind the session's back, as an idle timeout on the host would.
  RequestContext ctx;
  ctx.to = transport->endpoint().url();
  auto deleted = run(transport->request(build_delete_shell(ctx, {{"ShellId", session.shell_id()}}), "Delete shell"));
  ASSERT_TRUE(deleted.ok()) << deleted.error().message;
  ASSERT_FALSE(deleted->soap.fault.has_value());
  auto out = run(session.run(cmd("echo two")));
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->stdout_data, "two\r\n");
  EXPECT_EQ(session.counters().shells_created, 2u);
}

TEST_F(SimFixture, WrongPasswordIsAuthenticationFailure) {
  auto transport = connect("not-the-password");
  WinrsSession session(*transport);
  auto out = run(session.run(cmd("echo hi")));
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message.find("authentication failed for alice at 127.0.0.1:" + std::to_string(sim->port())),
            std::string::npos)
      << out.error().message;
  EXPECT_EQ(out.error().message.find("not-the-password"), std::string::npos);
  EXPECT_THAT(out, ErrorWith(ErrorCode::kUnauthenticated, HttpStatus(401)));
}

TEST_F(SimFixture, CommandFaultNamesOperationAndEndpoint) {
  auto transport = connect();
  WinrsSession session(*transport);
  CommandSpec spec;
  spec.command = "no-such-program.exe";
  spec.skip_cmd_shell = true;
  auto out = run(session.run(spec));
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(out.error().message.starts_with("Command on 127.0.0.1:" + std::to_string(sim->port()) + ": WSMan fault"))
      << out.error().message;
  EXPECT_THAT(out, ErrorWith(ErrorCode::kFailedPrecondition,
                             ::testing::Field(&ErrorDetail::wsman_fault, ::testing::Not(::testing::IsEmpty()))));
}

struct SimTlsFixture : SimFixture {
  test::TestCertificate cert = test::TestCertificate::make("localhost", "DNS:localhost,IP:127.0.0.1");
  void SetUp() override { start_sim({"--tls-cert", cert.cert_pem.string(), "--tls-key", cert.key_pem.string()}); }
  void TearDown() override {
    SimFixture::TearDown();
    cert.remove();
  }
};

TEST_F(SimTlsFixture, BasicOverHttpsWithCaFile) {
  auto endpoint = parse_endpoint(sim->url(true));
  ASSERT_TRUE(endpoint.ok());
  TransportOptions options;
  options.ca_file = cert.cert_pem.string();
  auto transport = WsmanTransport::create(io.get_executor(), *endpoint,
                                          std::make_unique<BasicAuth>(kUser, Secret(kPassword), false), options);
  ASSERT_TRUE(transport.ok());
  WinrsSession session(**transport);
  auto out = run(session.run(cmd("echo secure")));
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->stdout_data, "secure\r\n");
}

// ---- the CLI ------------------------------------------------------------------------------------

std::string agent_binary() {
#ifdef WINCERT_AGENT_BIN
  return WINCERT_AGENT_BIN;
#else
  return {};
#endif
}

struct CliFixture : SimFixture {
  test::ProcessResult agent(std::vector<std::string> args, std::vector<std::string> env = {}) {
    args.insert(args.begin(), agent_binary());
    env.push_back(std::string("SIM_PASSWORD=") + kPassword);
    return test::run_process(args, env);
  }
  std::vector<std::string> auth() const {
    return {"--endpoint",   sim->url(),           "--auth", "basic", "--user", kUser, "--password-env",
            "SIM_PASSWORD", "--allow-unencrypted"};
  }
};

TEST_F(CliFixture, ExecPrintsStdoutStderrAndExitsWithRemoteCode) {
  auto args = std::vector<std::string>{"winrm", "exec"};
  for (auto& a : auth()) args.push_back(a);
  for (const char* a : {"--", "cmd.exe", "/c", "echo out&& echo err>&2&& exit 7"}) args.emplace_back(a);
  auto r = agent(args);
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_EQ(r.out, "out\r\n");
  EXPECT_EQ(r.err, "err\r\n");
}

TEST_F(CliFixture, PsCommandWithArgsAndRepeatSummary) {
  auto args = std::vector<std::string>{"winrm", "ps"};
  for (auto& a : auth()) args.push_back(a);
  for (const char* a : {"--command", "# wincert-op: echo\n", "--args-json", R"({"k":"v"})", "--repeat", "5"}) {
    args.emplace_back(a);
  }
  auto r = agent(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(R"("k":"v")"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("runs=5 "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("connections=1"), std::string::npos) << r.err;
  // Get + Create + 5 x (Command, Receive, Signal) + Delete
  EXPECT_NE(r.err.find("http_requests=18"), std::string::npos) << r.err;
}

TEST_F(CliFixture, PsScriptFileAndDecodedErrors) {
  const auto script = sim->dir() / "fail.ps1";
  std::ofstream(script) << "# wincert-op: no-such-operation\n";
  auto args = std::vector<std::string>{"winrm", "ps"};
  for (auto& a : auth()) args.push_back(a);
  args.push_back("--script");
  args.push_back(script.string());
  auto r = agent(args);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find("CLIXML"), std::string::npos) << r.err;
}

TEST_F(CliFixture, FailuresAreOneLineAnd255) {
  auto args =
      std::vector<std::string>{"winrm", "exec",           "--endpoint",   sim->url(), "--auth",  "basic", "--user",
                               kUser,   "--password-env", "SIM_PASSWORD", "--",       "cmd.exe", "/c",    "echo hi"};
  auto r = agent(args);  // no --allow-unencrypted: refused before anything is sent
  EXPECT_EQ(r.exit_code, 255);
  EXPECT_EQ(r.err,
            "wincert-agent: Basic over HTTP sends the password in clear; use https or --allow-unencrypted (the host "
            "must have AllowUnencrypted=true)\n");
  EXPECT_EQ(sim->counter("connections"), 0u);

  auto bad = agent({"winrm", "exec", "--endpoint", sim->url(), "--auth", "basic", "--user", kUser, "--password-env",
                    "WRONG_PASSWORD", "--allow-unencrypted", "--", "cmd.exe", "/c", "echo hi"},
                   {"WRONG_PASSWORD=nope-nope"});
  EXPECT_EQ(bad.exit_code, 255);
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
  EXPECT_TRUE(bad.err.starts_with("wincert-agent: authentication failed for alice at 127.0.0.1:")) << bad.err;
  EXPECT_EQ(bad.err.find("nope-nope"), std::string::npos);

  auto fault = agent({"winrm", "exec", "--endpoint", sim->url(), "--auth", "basic", "--user", kUser, "--password-env",
                      "SIM_PASSWORD", "--allow-unencrypted", "--skip-cmd-shell", "--", "no-such-program.exe"});
  EXPECT_EQ(fault.exit_code, 255);
  EXPECT_TRUE(
      fault.err.starts_with("wincert-agent: Command on 127.0.0.1:" + std::to_string(sim->port()) + ": WSMan fault "))
      << fault.err;
  EXPECT_EQ(std::count(fault.err.begin(), fault.err.end(), '\n'), 1) << fault.err;
}

TEST(Cli, VersionAndUsage) {
  if (agent_binary().empty()) GTEST_SKIP() << "wincert-agent path unknown";
  auto v = test::run_process({agent_binary(), "version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_TRUE(v.out.starts_with("wincert-agent ")) << v.out;
  auto missing = test::run_process({agent_binary(), "winrm", "ps", "--endpoint", "http://127.0.0.1:1/wsman"});
  EXPECT_NE(missing.exit_code, 0);
  auto no_env = test::run_process({agent_binary(), "winrm", "exec", "--endpoint", "http://127.0.0.1:1/wsman", "--user",
                                   "u", "--password-env", "WINCERT_SURELY_UNSET_VARIABLE", "--", "cmd"});
  EXPECT_EQ(no_env.exit_code, 255);
  EXPECT_EQ(no_env.err,
            "wincert-agent: environment variable WINCERT_SURELY_UNSET_VARIABLE (from --password-env) is not set\n");
}

}  // namespace
}  // namespace wincert::winrm
