// PSRP over WS-Man against real Windows traffic: winhost-sim --replay serves the responses a Windows host gave
// to pypsrp (fixtures/winrm/pypsrp-psrp), and our runspace pool client, making the same sequence of requests
// (Create, Receive until Opened, Command + Receive per pipeline, a Send of host responses, Delete), must reproduce
// the recorded output, error records and final states, and consume every recorded exchange.
//
// The expectations are read from the recorded responses themselves: their stdout streams, per CommandId, in order.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <boost/asio/detached.hpp>

#include <fstream>
#include <iterator>
#include <map>

#include "client_sim_util.hpp"
#include "client_test_util.hpp"
#include "tests/support/result_matchers.hpp"
#include "winrm/psrp/wsman_runspace_pool.hpp"

namespace wincert::winrm::psrp {
namespace {

using namespace std::chrono_literals;
namespace net = boost::asio;

std::string transcript_path(const std::string& name) {
  return std::string(WINCERT_SHARED_DIR) + "/fixtures/winrm/pypsrp-psrp/" + name + ".yml";
}

struct RecordedPipeline {
  std::string command_id;
  std::vector<std::string> output;  // display strings
  std::size_t errors = 0;
  std::size_t informational = 0;
  std::int32_t final_state = 0;
};

struct Recording {
  std::size_t exchanges = 0;
  std::vector<RecordedPipeline> pipelines;  // in the order their output first appears
};

// The text between `open` (up to its closing '>') and `close`, for each occurrence after `from`: plain string
// scanning, because std::regex recurses per character and overflows the stack on a long base64 stream.
struct Element {
  std::string attributes;  // what follows `open` up to the '>'
  std::string text;
};
std::vector<Element> elements(const std::string& xml, std::string_view open, std::string_view close) {
  std::vector<Element> out;
  for (std::size_t at = xml.find(open); at != std::string::npos; at = xml.find(open, at + 1)) {
    const std::size_t gt = xml.find('>', at);
    if (gt == std::string::npos) break;
    const std::size_t end = xml.find(close, gt);
    if (end == std::string::npos) break;
    out.push_back({xml.substr(at + open.size(), gt - at - open.size()), xml.substr(gt + 1, end - gt - 1)});
  }
  return out;
}

std::string attribute(const std::string& attributes, std::string_view name) {
  const std::string key = std::string(name) + "=\"";
  const std::size_t at = attributes.find(key);
  if (at == std::string::npos) return {};
  const std::size_t end = attributes.find('"', at + key.size());
  return end == std::string::npos ? std::string() : attributes.substr(at + key.size(), end - at - key.size());
}

// Decodes every pipeline stream of every recorded response (plain text scanning over the YAML text, then the
// message layer on the decoded bytes).
Recording read_recording(const std::string& name) {
  Recording r;
  YAML::Node root = YAML::LoadFile(transcript_path(name));
  std::map<std::string, Defragmenter> defragmenters;
  auto pipeline = [&](const std::string& id) -> RecordedPipeline& {
    for (auto& p : r.pipelines)
      if (p.command_id == id) return p;
    r.pipelines.push_back(RecordedPipeline{id, {}, 0, 0, 0});
    return r.pipelines.back();
  };
  for (const auto& message : root["messages"]) {
    ++r.exchanges;
    const std::string response = message["response"] ? message["response"].as<std::string>() : "";
    for (const auto& created : elements(response, "<rsp:CommandId", "</rsp:CommandId>")) pipeline(created.text);
    for (const auto& stream : elements(response, "<rsp:Stream ", "</rsp:Stream>")) {
      const std::string command_id = attribute(stream.attributes, "CommandId");
      if (attribute(stream.attributes, "Name") != "stdout" || command_id.empty()) continue;
      auto& p = pipeline(command_id);
      const auto bytes = base64_decode(stream.text);
      EXPECT_TRUE(bytes.has_value());
      auto messages = defragmenters[p.command_id].feed(bytes.value_or(""));
      EXPECT_THAT(messages, IsOk());
      if (!messages.ok()) continue;
      for (const auto& raw : *messages) {
        auto decoded = decode_message(raw);
        EXPECT_THAT(decoded, IsOk());
        if (!decoded.ok()) continue;
        auto body = parse_server_message(*decoded);
        EXPECT_THAT(body, IsOk()) << message_type_name(decoded->type);
        if (!body.ok()) continue;
        if (const auto* out = std::get_if<PipelineOutput>(&*body)) p.output.push_back(out->value.to_display_string());
        if (std::holds_alternative<ErrorRecordInfo>(*body)) ++p.errors;
        if (std::holds_alternative<InformationalRecord>(*body)) ++p.informational;
        if (const auto* state = std::get_if<PipelineStateInfo>(&*body)) p.final_state = state->state;
      }
    }
  }
  return r;
}

struct PsrpReplay : ::testing::Test {
  net::io_context io;
  std::unique_ptr<test::SimProcess> sim;
  std::unique_ptr<WsmanTransport> transport;
  Recording recorded;
  std::string recorded_text;

  void start(const std::string& name) {
    if (!test::sim_available()) GTEST_SKIP() << "winhost-sim is not built (" << test::sim_binary() << ")";
    recorded = read_recording(name);
    std::ifstream in(transcript_path(name));
    recorded_text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    sim = std::make_unique<test::SimProcess>(std::vector<std::string>{"--replay", transcript_path(name)});
    ASSERT_TRUE(sim->running()) << "winhost-sim --replay " << name << " did not start";
    auto endpoint = parse_endpoint(sim->url());
    ASSERT_TRUE(endpoint.ok());
    auto created = WsmanTransport::create(io.get_executor(), *endpoint,
                                          std::make_unique<BasicAuth>("vagrant", Secret("vagrant"), true));
    ASSERT_TRUE(created.ok());
    transport = std::move(*created);
  }

  struct Outcome {
    std::string shell_id;
    Status opened;
    std::vector<Result<PipelineResult>> pipelines;
    Status closed;
    WsmanPoolCounters counters;
  };

  // Opens a pool, runs `pipelines` pipelines (their commands do not matter to a replay) and closes it.
  Outcome run(std::size_t pipelines, std::chrono::milliseconds operation_timeout = 20s,
              std::size_t max_envelope_size = 153600) {
    Outcome outcome;
    net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
          WsmanRunspacePoolOptions options;
          options.operation_timeout = operation_timeout;
          options.max_envelope_size = max_envelope_size;  // 153,600 as recorded
          auto pool = co_await WsmanRunspacePool::open(*transport, options);
          if (!pool.ok()) {
            outcome.opened = std::move(pool).error();
            co_return;
          }
          for (std::size_t i = 0; i < pipelines; ++i) {
            PipelineCommand command;
            command.command = "Write-Output";
            command.parameters.push_back({"InputObject", PsValue::string("replayed")});
            std::vector<PipelineCommand> commands;
            commands.push_back(std::move(command));
            outcome.pipelines.push_back(co_await (*pool)->invoke(std::move(commands), 60s));
          }
          outcome.shell_id = (*pool)->shell_id();
          outcome.closed = co_await (*pool)->close();
          outcome.counters = (*pool)->counters();
        },
        net::detached);
    io.run();
    return outcome;
  }

  void expect_reproduced(const Outcome& outcome) {
    ASSERT_THAT(outcome.opened, IsOk());
    ASSERT_EQ(outcome.pipelines.size(), recorded.pipelines.size());
    for (std::size_t i = 0; i < recorded.pipelines.size(); ++i) {
      SCOPED_TRACE("pipeline " + std::to_string(i) + " (recorded CommandId " + recorded.pipelines[i].command_id + ")");
      ASSERT_THAT(outcome.pipelines[i], IsOk());
      const auto& got = *outcome.pipelines[i];
      std::vector<std::string> output;
      for (const auto& v : got.output) output.push_back(v.to_display_string());
      EXPECT_EQ(output, recorded.pipelines[i].output);
      EXPECT_EQ(got.errors.size(), recorded.pipelines[i].errors);
      EXPECT_EQ(got.informational.size(), recorded.pipelines[i].informational);
      EXPECT_EQ(got.state.state, recorded.pipelines[i].final_state);
    }
    EXPECT_THAT(outcome.closed, IsOk());
    EXPECT_EQ(outcome.counters.exchanges, recorded.exchanges) << "every recorded exchange, and no other";
    EXPECT_EQ(outcome.counters.pools_opened, 1u);
    // The replay answered with our ids (the recorded ShellId was rewritten to the one we asked for).
    EXPECT_FALSE(outcome.shell_id.empty());
    EXPECT_EQ(recorded_text.find(outcome.shell_id), std::string::npos) << outcome.shell_id;
  }
};

TEST_F(PsrpReplay, OpenAndCloseARunspacePool) {
  start("test_psrp_open_runspace");
  if (IsSkipped()) return;
  expect_reproduced(run(0));
}

TEST_F(PsrpReplay, OutputErrorAndInformationalStreamsOfOnePipeline) {
  start("test_psrp_stream_output_invocation");
  if (IsSkipped()) return;
  auto outcome = run(1);
  expect_reproduced(outcome);
  ASSERT_EQ(recorded.pipelines.size(), 1u);
  EXPECT_EQ(recorded.pipelines[0].output, std::vector<std::string>{"output stream"});
  EXPECT_EQ(recorded.pipelines[0].errors, 1u);
  EXPECT_EQ(recorded.pipelines[0].informational, 4u);  // debug, verbose, warning, information; progress dropped
  ASSERT_THAT(outcome.pipelines[0], IsOk());
  ASSERT_EQ(outcome.pipelines[0]->errors.size(), 1u);
  EXPECT_EQ(outcome.pipelines[0]->errors[0].message, "error stream");
}

TEST_F(PsrpReplay, TwoPipelinesOnOneWarmPoolTakeTwoExchangesEach) {
  start("test_psrp_with_history");
  if (IsSkipped()) return;
  auto outcome = run(2);
  expect_reproduced(outcome);
  // Create + 2 Receives to open, then Command + Receive per pipeline, then Delete.
  EXPECT_EQ(outcome.counters.exchanges, 3u + 2u * 2u + 1u);
}

TEST_F(PsrpReplay, APipelineWithNoOutput) {
  start("test_psrp_with_no_history");
  if (IsSkipped()) return;
  expect_reproduced(run(2));
}

TEST_F(PsrpReplay, ALongRunningPipelineIsPolledThroughOperationTimeouts) {
  start("test_psrp_long_running_cmdlet");  // two TimedOut faults (one with HTTP 500) before Done
  if (IsSkipped()) return;
  expect_reproduced(run(1, 5s));
}

TEST_F(PsrpReplay, HostCallsAreAnsweredInOneSendAndThePipelineCompletes) {
  start("test_psrp_pshost_raw_ui_mocked_methods");  // Command, Receive, Send (pr), Receive
  if (IsSkipped()) return;
  expect_reproduced(run(1));
}

TEST_F(PsrpReplay, AHostCallThatWantsNoAnswerGetsNone) {
  start("test_psrp_pshost_methods");  // Command, Receive: no Send
  if (IsSkipped()) return;
  expect_reproduced(run(1));
}

TEST_F(PsrpReplay, EveryOtherPlainTranscript) {
  for (const auto& [name, pipelines] :
       std::vector<std::pair<std::string, std::size_t>>{{"test_psrp_application_args", 1},
                                                        {"test_psrp_clear_commands", 1},
                                                        {"test_psrp_get_command_metadata", 3},
                                                        {"test_psrp_merge_commands", 1},
                                                        {"test_psrp_no_profile", 1},
                                                        {"test_psrp_stream_no_output_invocation", 1}}) {
    SCOPED_TRACE(name);
    io.restart();
    start(name);
    if (IsSkipped()) return;
    expect_reproduced(run(pipelines));
  }
}

}  // namespace
}  // namespace wincert::winrm::psrp
