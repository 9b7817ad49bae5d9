// Every recorded pypsrp exchange (real Windows hosts) parses with the RelatesTo of its request, and the
// envelopes we build for the same operations have the structure of the recorded requests.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "common/encoding.hpp"
#include "protocol_test_util.hpp"
#include "tests/support/result_matchers.hpp"
#include "winrm/messages.hpp"

namespace wincert::winrm {
namespace {

using testutil::shape_of;

struct Exchange {
  std::string request;
  std::string response;
  bool http_500 = false;
};

std::vector<Exchange> load_transcript(const std::string& name) {
  std::vector<Exchange> out;
  YAML::Node root = YAML::LoadFile(testutil::fixture_path("pypsrp/" + name));
  for (const auto& m : root["messages"]) {
    Exchange e;
    e.request = m["request"].as<std::string>();
    e.response = m["response"].as<std::string>();
    e.http_500 = static_cast<bool>(m["transport_error"]) && m["transport_error"]["code"].as<int>() == 500;
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<std::string> all_transcripts() {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(testutil::fixture_path("pypsrp")))
    if (entry.path().extension() == ".yml") names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string_view op(std::string_view action) { return action.substr(action.rfind('/') + 1); }

// The CommandId a recorded request names (DesiredStream, Stream or Signal attribute).
std::string request_command_id(const std::string& request) {
  pugi::xml_document doc;
  EXPECT_TRUE(xml::parse(doc, request).ok());
  auto body = xml::child(doc.document_element(), ns::kSoap, "Body");
  for (auto name : {"DesiredStream", "Stream"})
    if (auto n = xml::descendant(body, ns::kShell, name)) return xml::attribute(n, "CommandId").value();
  if (auto n = xml::child(body, ns::kShell, "Signal")) return xml::attribute(n, "CommandId").value();
  return {};
}

// RelatesTo read straight from the recorded text, independent of the code under test.
std::string recorded_relates_to(const std::string& response) {
  pugi::xml_document doc;
  EXPECT_TRUE(xml::parse(doc, response).ok());
  return xml::text(xml::child(xml::child(doc.document_element(), ns::kSoap, "Header"), ns::kAddressing, "RelatesTo"));
}

TEST(PypsrpTranscripts, FixturesArePresent) {
  auto names = all_transcripts();
  EXPECT_GE(names.size(), 8u);
}

// Walks every transcript like a client would: ids from earlier responses must be what later requests use.
TEST(PypsrpTranscripts, EveryResponseParsesWithItsRequestsMessageId) {
  int responses = 0, faults = 0, mismatches = 0;
  for (const auto& name : all_transcripts()) {
    SCOPED_TRACE(name);
    std::string shell_id, command_id;
    for (const auto& ex : load_transcript(name)) {
      auto req = shape_of(ex.request);
      SCOPED_TRACE(req.action);
      if (recorded_relates_to(ex.response) != req.message_id) {
        // The recording holds a response to another request (test_winrs_unicode.yml's last Delete):
        // exactly what the RelatesTo check exists for.
        auto stale = parse_response(ex.response, req.message_id);
        ASSERT_FALSE(stale.ok());
        EXPECT_THAT(stale, HasCode(ErrorCode::kInvalidArgument));
        EXPECT_NE(stale.error().message.find("does not match the request MessageID"), std::string::npos);
        EXPECT_TRUE(parse_response(ex.response, "").ok());
        ++mismatches;
        continue;
      }
      auto parsed = parse_response(ex.response, req.message_id);
      ASSERT_TRUE(parsed.ok()) << parsed.error().message;
      ++responses;
      EXPECT_TRUE(iequals(parsed->relates_to, req.message_id));
      EXPECT_EQ(parsed->fault.has_value(), ex.http_500) << "a fault exactly when HTTP 500 was recorded";
      if (parsed->fault) {
        ++faults;
        EXPECT_EQ(parsed->action, action::kFault);
        EXPECT_NE(parsed->fault->wsman_code, 0u);
        EXPECT_FALSE(parsed->fault->summary().empty());
        auto as_receive = parse_receive(*parsed, command_id);
        // Typed parsers turn the fault into its coded error, with the fault in the detail.
        const Error fault_error = parsed->fault->to_error();
        EXPECT_FALSE(fault_error.detail.wsman_fault.empty());
        EXPECT_THAT(as_receive, ErrorWith(fault_error.code, wincert::WsmanFault(fault_error.detail.wsman_fault)));
        continue;
      }
      // Later requests must address the shell and command the earlier responses created.
      if (!shell_id.empty() && req.action != action::kGet) {
        ASSERT_EQ(req.selectors.size(), 1u);
        EXPECT_EQ(req.selectors[0].second, shell_id);
      }
      auto o = op(req.action);
      if (o == "Create") {
        EXPECT_EQ(parsed->action, action::kCreateResponse);
        auto shell = parse_create_shell(*parsed);
        ASSERT_TRUE(shell.ok()) << shell.error().message;
        EXPECT_EQ(shell->shell_id.size(), 36u) << shell->shell_id;
        ASSERT_EQ(shell->selectors.size(), 1u);
        EXPECT_EQ(shell->selectors[0].name, "ShellId");
        shell_id = shell->shell_id;
      } else if (o == "Command") {
        EXPECT_EQ(parsed->action, action::kCommandResponse);
        auto id = parse_command_id(*parsed);
        ASSERT_TRUE(id.ok()) << id.error().message;
        EXPECT_EQ(id->size(), 36u);
        command_id = *id;
      } else if (o == "Receive") {
        EXPECT_EQ(parsed->action, action::kReceiveResponse);
        auto receive = parse_receive(*parsed, request_command_id(ex.request));
        ASSERT_TRUE(receive.ok()) << receive.error().message;
        EXPECT_FALSE(receive->stdout_data.empty());
        EXPECT_FALSE(receive->state.empty());
      } else if (o == "Send") {
        EXPECT_EQ(parsed->action, action::kSendResponse);
        EXPECT_EQ(request_command_id(ex.request), command_id);
      } else if (o == "Signal") {
        EXPECT_EQ(parsed->action, action::kSignalResponse);
      } else if (o == "Delete") {
        EXPECT_EQ(parsed->action, action::kDeleteResponse);
      } else if (o == "Get") {
        EXPECT_EQ(parsed->action, action::kGetResponse);
      } else {
        ADD_FAILURE() << "unexpected operation " << o;
      }
    }
  }
  EXPECT_GE(responses, 40);
  EXPECT_EQ(faults, 4);  // two timeouts, one bad command id, one failed command (no cmd shell)
  EXPECT_EQ(mismatches, 1);
}

TEST(PypsrpTranscripts, RelatesToMismatchIsRejectedForEveryResponse) {
  for (const auto& name : all_transcripts()) {
    for (const auto& ex : load_transcript(name)) {
      auto r = parse_response(ex.response, "uuid:00000000-0000-0000-0000-000000000000");
      ASSERT_FALSE(r.ok()) << name;
      EXPECT_THAT(r, HasCode(ErrorCode::kInvalidArgument));
      EXPECT_NE(r.error().message.find("does not match"), std::string::npos) << r.error().message;
    }
  }
}

TEST(PypsrpTranscripts, OperationTimeoutFaults) {
  auto ex = load_transcript("test_winrs_operation_timeout.yml");
  int timeouts = 0;
  for (const auto& e : ex) {
    auto r = parse_response(e.response, shape_of(e.request).message_id);
    ASSERT_TRUE(r.ok());
    if (!r->fault) continue;
    ++timeouts;
    const auto& f = *r->fault;
    EXPECT_EQ(f.code, "s:Receiver");
    EXPECT_EQ(f.subcode, "w:TimedOut");
    EXPECT_EQ(f.wsman_code, 2150858793UL);
    EXPECT_EQ(f.machine, "192.168.56.11");
    EXPECT_TRUE(f.is_operation_timeout());
    EXPECT_FALSE(f.is_shell_gone());
    EXPECT_FALSE(f.is_quota());
    EXPECT_EQ(f.reason,
              "The WS-Management service cannot complete the operation within the time specified in "
              "OperationTimeout.");
    EXPECT_EQ(f.summary().rfind("WSMan fault 2150858793 (w:TimedOut): The WS-Management service", 0), 0u)
        << f.summary();
    EXPECT_TRUE(f.to_error().retryable());
  }
  EXPECT_EQ(timeouts, 2);
  // The first Receive returned "hi\n" while Running, the last " again\n" ... with Done and exit 0.
  auto first = parse_receive(*parse_response(ex[2].response, ""), "D644AE56-61E5-4C1A-A135-E599B76B3035");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->stdout_data, "hi\n");
  EXPECT_EQ(first->state, action::kStateRunning);
  EXPECT_FALSE(first->done);
  EXPECT_FALSE(first->exit_code.has_value());
  EXPECT_FALSE(first->stdout_end);
  auto last = parse_receive(*parse_response(ex[5].response, ""), "D644AE56-61E5-4C1A-A135-E599B76B3035");
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->stdout_data, "hi again\n");
  EXPECT_TRUE(last->done);
  EXPECT_TRUE(last->stdout_end);
  EXPECT_TRUE(last->stderr_end);
  EXPECT_EQ(last->exit_code, 0);
}

TEST(PypsrpTranscripts, BadCommandIdIsShellGone) {
  auto ex = load_transcript("test_winrs_bad_cmd_id.yml");
  ASSERT_EQ(ex.size(), 5u);
  auto r = parse_response(ex[2].response, shape_of(ex[2].request).message_id);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->fault);
  EXPECT_EQ(r->fault->code, "s:Sender");
  EXPECT_EQ(r->fault->subcode, "w:InvalidSelectors");
  EXPECT_EQ(r->fault->wsman_code, 2150858843UL);
  EXPECT_TRUE(r->fault->is_shell_gone());
  EXPECT_FALSE(r->fault->is_operation_timeout());
  EXPECT_EQ(r->fault->message.rfind("The Windows Remote Shell received a request to perform an operation on a "
                                    "command identifier that does not exist.",
                                    0),
            0u);
  EXPECT_EQ(r->fault->summary().rfind("WSMan fault 2150858843 (w:InvalidSelectors): The Windows Remote Shell", 0), 0u);
}

TEST(PypsrpTranscripts, UnicodeOutputIsKeptAsUtf8Bytes) {
  auto ex = load_transcript("test_winrs_unicode.yml");
  auto r = parse_response(ex[2].response, shape_of(ex[2].request).message_id);
  ASSERT_TRUE(r.ok());
  auto out = parse_receive(*r, request_command_id(ex[2].request));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->stdout_data, "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf\n");  // こんにちは
  EXPECT_EQ(out->exit_code, 0);
  // The shell was opened with codepage 65001.
  auto create = shape_of(ex[0].request);
  EXPECT_NE(std::find(create.options.begin(), create.options.end(),
                      std::pair<std::string, std::string>{"WINRS_CODEPAGE", "65001"}),
            create.options.end());
}

TEST(PypsrpTranscripts, StderrAndExitCodeOne) {
  auto ex = load_transcript("test_winrs_stderr_rc.yml");
  auto r = parse_response(ex[2].response, shape_of(ex[2].request).message_id);
  ASSERT_TRUE(r.ok());
  auto out = parse_receive(*r, request_command_id(ex[2].request));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->stdout_data, "out \r\n");
  EXPECT_EQ(out->stderr_data, "err \r\n");
  EXPECT_TRUE(out->done);
  EXPECT_EQ(out->exit_code, 1);
}

TEST(PypsrpTranscripts, SendTranscriptOutput) {
  auto ex = load_transcript("test_winrs_send.yml");
  auto r = parse_response(ex[4].response, shape_of(ex[4].request).message_id);
  ASSERT_TRUE(r.ok());
  auto out = parse_receive(*r, request_command_id(ex[4].request));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->stdout_data, "output 1\noutput 2\n");
  EXPECT_EQ(out->exit_code, 0);
}

TEST(PypsrpTranscripts, ConfigGetMaxEnvelopeSize500) {
  auto ex = load_transcript("test_wsman_update_envelope_size_500.yml");
  ASSERT_EQ(ex.size(), 1u);
  auto r = parse_response(ex[0].response, shape_of(ex[0].request).message_id);
  ASSERT_TRUE(r.ok());
  auto cfg = parse_config(*r);
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->max_envelope_size_kb, 500u);
  EXPECT_EQ(cfg->max_timeout_ms, 60000u);
  // A shell response is not a config.
  auto create = load_transcript("test_winrs_standard.yml")[0];
  auto not_cfg = parse_config(*parse_response(create.response, ""));
  ASSERT_FALSE(not_cfg.ok());
  EXPECT_THAT(not_cfg, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(not_cfg.error().message.find("cfg:Config"), std::string::npos);
}

TEST(PypsrpTranscripts, NoCmdShellFailureIsAFault) {
  auto ex = load_transcript("test_winrs_no_cmd_shell.yml");
  auto r = parse_response(ex[1].response, shape_of(ex[1].request).message_id);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->fault);
  auto id = parse_command_id(*r);
  ASSERT_FALSE(id.ok());
  const Error fault_error = r->fault->to_error();
  EXPECT_THAT(id, ErrorWith(fault_error.code, wincert::WsmanFault(fault_error.detail.wsman_fault)));
  EXPECT_NE(id.error().message.find(std::to_string(r->fault->wsman_code)), std::string::npos) << id.error().message;
}

// ---- our envelopes against the recorded requests -------------------------------------------------------

RequestContext context_like(const testutil::RequestShape& recorded, const std::string& request) {
  pugi::xml_document doc;
  EXPECT_TRUE(xml::parse(doc, request).ok());
  auto header = xml::child(doc.document_element(), ns::kSoap, "Header");
  RequestContext ctx;
  ctx.to = xml::text(xml::child(header, ns::kAddressing, "To"));
  ctx.session_id = xml::text(xml::child(header, ns::kWsmanMs, "SessionId"));
  ctx.resource_uri = recorded.resource_uri;
  return ctx;
}

std::vector<Selector> selectors_of(const testutil::RequestShape& s) {
  std::vector<Selector> out;
  for (const auto& [n, v] : s.selectors) out.push_back({n, v});
  return out;
}

std::string option_value(const testutil::RequestShape& s, std::string_view name, std::string fallback) {
  for (const auto& [n, v] : s.options)
    if (n == name) return v;
  return fallback;
}

TEST(PypsrpTranscripts, OurEnvelopesMatchTheRecordedRequests) {
  int compared = 0;
  for (const auto& name : all_transcripts()) {
    SCOPED_TRACE(name);
    for (const auto& ex : load_transcript(name)) {
      auto recorded = shape_of(ex.request);
      SCOPED_TRACE(recorded.action);
      auto ctx = context_like(recorded, ex.request);
      auto shell = selectors_of(recorded);
      pugi::xml_document doc;
      ASSERT_TRUE(xml::parse(doc, ex.request).ok());
      auto body = xml::child(doc.document_element(), ns::kSoap, "Body");
      Envelope ours;
      auto o = op(recorded.action);
      if (o == "Create") {
        ShellOptions opts;
        opts.codepage = std::stoi(option_value(recorded, "WINRS_CODEPAGE", "65001"));
        ours = build_create_shell(ctx, opts);
      } else if (o == "Command") {
        auto line = xml::child(body, ns::kShell, "CommandLine");
        std::vector<std::string> args;
        for (auto a : xml::children(line, ns::kShell, "Arguments")) args.push_back(xml::text(a));
        bool skip = iequals(option_value(recorded, "WINRS_SKIP_CMD_SHELL", "FALSE"), "TRUE");
        bool console = iequals(option_value(recorded, "WINRS_CONSOLEMODE_STDIN", "TRUE"), "TRUE");
        ours = build_command(ctx, shell, xml::text(xml::child(line, ns::kShell, "Command")), args, skip, console);
      } else if (o == "Send") {
        auto stream = xml::descendant(body, ns::kShell, "Stream");
        auto data = base64_decode(xml::text(stream));
        ASSERT_TRUE(data);
        ours = build_send(ctx, shell, xml::attribute(stream, "CommandId").value(), *data,
                          iequals(xml::attribute(stream, "End").value(), "true"));
      } else if (o == "Receive") {
        ours = build_receive(ctx, shell, request_command_id(ex.request));
      } else if (o == "Signal") {
        auto signal = xml::child(body, ns::kShell, "Signal");
        ours =
            build_signal(ctx, shell, request_command_id(ex.request), xml::text(xml::child(signal, ns::kShell, "Code")));
      } else if (o == "Delete") {
        ours = build_delete_shell(ctx, shell);
      } else if (o == "Get") {
        ours = build_config_get(ctx);
      } else {
        FAIL() << "unexpected operation " << o;
      }
      auto mine = shape_of(ours.xml);
      ++compared;
      EXPECT_EQ(mine.action, recorded.action);
      EXPECT_EQ(mine.resource_uri, recorded.resource_uri);
      EXPECT_EQ(mine.message_id, ours.message_id);
      EXPECT_EQ(mine.operation_timeout, "PT20.000S");
      EXPECT_EQ(mine.selectors, recorded.selectors);
      // Every header element pypsrp sends, we send (OptionSet may be ours alone: we always state options).
      for (const auto& h : recorded.header_elements)
        EXPECT_TRUE(std::find(mine.header_elements.begin(), mine.header_elements.end(), h) !=
                    mine.header_elements.end())
            << "missing header element " << h;
      for (const auto& [n, v] : recorded.options) {
        auto it = std::find_if(mine.options.begin(), mine.options.end(), [&](const auto& p) { return p.first == n; });
        ASSERT_NE(it, mine.options.end()) << "missing option " << n;
        EXPECT_TRUE(iequals(it->second, v)) << n << ": " << it->second << " vs " << v;
      }
      // The body is the same element for element, attribute for attribute, text for text. pypsrp writes
      // Send's End as "True"/"False"; we write End="true" on the last chunk only, which means the same.
      for (auto& line : recorded.body) {
        if (auto at = line.find("@End=False"); at != std::string::npos) line.erase(at, 10);
        if (auto at = line.find("@End=True"); at != std::string::npos) line.replace(at, 9, "@End=true");
      }
      EXPECT_EQ(mine.body, recorded.body);
    }
  }
  EXPECT_GE(compared, 40);
}

}  // namespace
}  // namespace wincert::winrm
