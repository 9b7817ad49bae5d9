// The pypsrp transcript replay: winhost-sim --replay serves the responses a real Windows host gave to
// pypsrp; our client runs the same command (command, arguments, options, stdin as recorded) and must
// reproduce the recorded stdout, stderr and exit code byte for byte and consume the whole exchange
// sequence. The expected bytes come straight from the recorded responses' base64 streams.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <regex>

#include "client_sim_util.hpp"
#include "client_test_util.hpp"
#include "tests/support/result_matchers.hpp"
#include "winrm/winrs.hpp"

namespace wincert::winrm {
namespace {

using namespace std::chrono_literals;
namespace net = boost::asio;

std::string transcript_path(const std::string& name) {
  return std::string(WINCERT_SHARED_DIR) + "/fixtures/winrm/pypsrp/" + name;
}

struct Recorded {
  std::size_t exchanges = 0;
  std::string stdout_data;
  std::string stderr_data;
  std::optional<int> exit_code;
  std::vector<unsigned long> fault_codes;
};

// Reads the expectations from the transcript itself (independently of our parser: plain regexes).
Recorded read_recording(const std::string& name) {
  Recorded r;
  YAML::Node root = YAML::LoadFile(transcript_path(name));
  static const std::regex stream_re(R"re(<rsp:Stream Name="(stdout|stderr)"[^>]*?(?:/>|>([^<]*)</rsp:Stream>))re");
  static const std::regex exit_re(R"re(<rsp:ExitCode>(-?\d+)</rsp:ExitCode>)re");
  static const std::regex fault_re(R"re(WSManFault[^>]*Code="(\d+)")re");
  for (const auto& message : root["messages"]) {
    ++r.exchanges;
    const std::string response = message["response"].as<std::string>();
    for (std::sregex_iterator it(response.begin(), response.end(), stream_re), end; it != end; ++it) {
      const auto bytes = base64_decode((*it)[2].str());
      EXPECT_TRUE(bytes.has_value());
      ((*it)[1] == "stdout" ? r.stdout_data : r.stderr_data) += bytes.value_or("");
    }
    std::smatch m;
    if (std::regex_search(response, m, exit_re)) r.exit_code = std::stoi(m[1].str());
    if (std::regex_search(response, m, fault_re)) r.fault_codes.push_back(std::stoul(m[1].str()));
  }
  return r;
}

struct ReplayFixture : ::testing::Test {
  net::io_context io;
  std::unique_ptr<test::SimProcess> sim;
  std::unique_ptr<WsmanTransport> transport;
  Recorded recorded;

  void start(const std::string& name) {
    if (!test::sim_available()) GTEST_SKIP() << "winhost-sim is not built (" << test::sim_binary() << ")";
    recorded = read_recording(name);
    sim = std::make_unique<test::SimProcess>(std::vector<std::string>{"--replay", transcript_path(name)});
    ASSERT_TRUE(sim->running()) << "winhost-sim --replay " << name << " did not start";
    auto endpoint = parse_endpoint(sim->url());
    ASSERT_TRUE(endpoint.ok());
    auto created = WsmanTransport::create(io.get_executor(), *endpoint,
                                          std::make_unique<BasicAuth>("vagrant", Secret("vagrant"), true));
    ASSERT_TRUE(created.ok());
    transport = std::move(*created);
  }
  // The options pypsrp recorded with: 153600-byte envelopes (so no config Get), ctrl_c signal.
  SessionOptions recorded_options(std::chrono::seconds operation_timeout = 20s) const {
    SessionOptions options;
    options.max_envelope_size = 153600;
    options.operation_timeout = operation_timeout;
    options.signal_code = std::string(action::kSignalCtrlC);
    return options;
  }
  template <typename T>
  T run(net::awaitable<T> work) {
    return test::run_coro(io, std::move(work));
  }
  void expect_output(const Result<CommandOutput>& out) {
    ASSERT_TRUE(out.ok()) << out.error().message;
    EXPECT_EQ(out->stdout_data, recorded.stdout_data);
    EXPECT_EQ(out->stderr_data, recorded.stderr_data);
    ASSERT_TRUE(recorded.exit_code.has_value());
    EXPECT_EQ(out->exit_code, *recorded.exit_code);
  }
  void expect_all_exchanges_used() { EXPECT_EQ(sim->counter("requests"), recorded.exchanges) << sim->log(); }
};

CommandSpec spec_of(std::string command, std::vector<std::string> arguments, bool skip_cmd_shell = false) {
  CommandSpec spec;
  spec.command = std::move(command);
  spec.arguments = std::move(arguments);
  spec.skip_cmd_shell = skip_cmd_shell;
  return spec;
}

TEST_F(ReplayFixture, Standard) {
  start("test_winrs_standard.yml");
  WinrsSession session(*transport, recorded_options());
  auto out = run(session.run(spec_of("cmd.exe", {"/c", "echo", "hi"})));
  expect_output(out);
  EXPECT_EQ(out->stdout_data, "hi\r\n");
  EXPECT_TRUE(run(session.close()).ok());
  expect_all_exchanges_used();
}

TEST_F(ReplayFixture, StderrAndExitCode) {
  start("test_winrs_stderr_rc.yml");
  WinrsSession session(*transport, recorded_options());
  auto out = run(session.run(spec_of("cmd.exe", {"/c echo out && echo err>&2 && exit 1"})));
  expect_output(out);
  EXPECT_EQ(out->exit_code, 1);
  EXPECT_TRUE(run(session.close()).ok());
  expect_all_exchanges_used();
}

TEST_F(ReplayFixture, Unicode) {
  start("test_winrs_unicode.yml");
  WinrsSession session(*transport, recorded_options());  // codepage 65001 is the default
  auto out = run(session.run(spec_of("powershell.exe", {"Write-Host こんにちは"})));
  expect_output(out);
  EXPECT_EQ(out->stdout_data, "こんにちは\n");
  EXPECT_TRUE(run(session.close()).ok());
  expect_all_exchanges_used();
}

TEST_F(ReplayFixture, SendStdinInTwoChunks) {
  start("test_winrs_send.yml");
  WinrsSession session(*transport, recorded_options());
  CommandSpec spec = spec_of("powershell.exe", {"-"});
  spec.stdin_data = "Write-Host \"output 1\";Write-Host \"output 2\";";
  spec.stdin_chunk_limit = 22;     // the two pieces pypsrp sent
  spec.console_mode_stdin = true;  // pypsrp left the default
  auto out = run(session.run(spec));
  expect_output(out);
  EXPECT_TRUE(run(session.close()).ok());
  expect_all_exchanges_used();
}

TEST_F(ReplayFixture, OperationTimeoutFaultsArePolledThrough) {
  start("test_winrs_operation_timeout.yml");
  WinrsSession session(*transport, recorded_options(10s));
  auto out = run(session.run(spec_of("powershell.exe", {"Write-Host hi; Start-Sleep 30; Write-Host hi again"})));
  expect_output(out);
  EXPECT_EQ(out->stdout_data, "hi\nhi again\n");
  EXPECT_EQ(session.counters().receives, 4u);  // two of them answered w:TimedOut
  EXPECT_TRUE(run(session.close()).ok());
  expect_all_exchanges_used();
}

TEST_F(ReplayFixture, BadCommandIdFaultIsAClearError) {
  start("test_winrs_bad_cmd_id.yml");
  ASSERT_EQ(recorded.fault_codes, std::vector<unsigned long>{2150858843UL});
  WinrsSession session(*transport, recorded_options());
  auto out = run(session.run(spec_of("cmd.exe", {"/c", "echo", "hi"})));
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(out.error().message.starts_with("Receive on 127.0.0.1:" + std::to_string(sim->port()) +
                                              ": WSMan fault 2150858843"))
      << out.error().message;
  EXPECT_TRUE(run(session.close()).ok());  // Signal was still sent, then Delete
  expect_all_exchanges_used();
}

TEST_F(ReplayFixture, NoCmdShellNeedsFullPath) {
  start("test_winrs_no_cmd_shell.yml");
  WinrsSession session(*transport, recorded_options());
  auto failed = run(session.run(spec_of("powershell.exe", {"Write-Host", "hi"}, true)));
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(
      failed.error().message.find("Command on 127.0.0.1:" + std::to_string(sim->port()) + ": WSMan fault 2147942402"),
      std::string::npos)
      << failed.error().message;
  EXPECT_THAT(failed, ErrorWith(ErrorCode::kFailedPrecondition, wincert::WsmanFault("w:InternalError")));
  auto out = run(
      session.run(spec_of(R"(C:\Windows\system32\WindowsPowerShell\v1.0\powershell.exe)", {"Write-Host", "hi"}, true)));
  expect_output(out);
  EXPECT_EQ(session.counters().shells_created, 1u);  // a failed Command does not cost the shell
  EXPECT_TRUE(run(session.close()).ok());
  expect_all_exchanges_used();
}

TEST_F(ReplayFixture, ConfigGetReadsMaxEnvelopeSize) {
  start("test_wsman_update_envelope_size_500.yml");
  WinrsSession session(*transport);
  auto config = run(session.server_config());
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->max_envelope_size_kb, 500u);
  EXPECT_EQ(config->max_timeout_ms, 60000u);
  expect_all_exchanges_used();
}

}  // namespace
}  // namespace wincert::winrm
