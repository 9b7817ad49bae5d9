// winhost-sim's PowerShell remoting resource (sim/winhost/psrp_service), in process: the real pypsrp requests
// recorded against Windows replayed to it, and our own PSRP client messages (winrm/psrp builders + Fragmenter)
// in WS-Man envelopes built here; every response read as a client reads it (winrm/messages.hpp parse_response /
// parse_receive, the Defragmenter, decode_message, parse_server_message).
#include "sim/winhost/psrp_service.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <boost/asio/io_context.hpp>

#include <fstream>
#include <regex>
#include <sstream>
#include <variant>

#include "common/encoding.hpp"
#include "sim/winhost/psrp_server_messages.hpp"
#include "sim/winhost/windows_model.hpp"
#include "sim/winhost/winrs_service.hpp"
#include "winrm/messages.hpp"
#include "winrm/namespaces.hpp"
#include "winrm/psrp/fragment.hpp"
#include "winrm/psrp/messages.hpp"

namespace wincert::sim {
namespace {

namespace psrp = winrm::psrp;
namespace act = winrm::action;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr std::string_view kFullUri = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell";
constexpr std::string_view kJeaUri = "http://schemas.microsoft.com/powershell/WincertAgent";
constexpr std::string_view kLoadScript =
    "param([string]$Text, [string]$Version)\n"
    "New-Module -Name WincertOps -ScriptBlock ([scriptblock]::Create($Text)) | Import-Module -Global -Force\n"
    "$global:WincertOpsVersion = $Version\n";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Envelope {
  std::string action;
  std::string resource_uri = std::string(kFullUri);
  std::string shell_id;
  std::string options;  // <w:Option> elements
  std::string body;
  std::string operation_timeout = "PT5S";
  long long max_envelope = 153600;
  std::string message_id = "uuid:" + random_uuid();

  std::string text() const {
    std::string h =
        "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" "
        "xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" "
        "xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\" "
        "xmlns:rsp=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell\"><s:Header><a:Action>" +
        action + "</a:Action><a:MessageID>" + message_id + "</a:MessageID><a:To>http://winhost01:5985/wsman</a:To>" +
        "<w:ResourceURI>" + resource_uri + "</w:ResourceURI><w:MaxEnvelopeSize>" + std::to_string(max_envelope) +
        "</w:MaxEnvelopeSize><w:OperationTimeout>" + operation_timeout + "</w:OperationTimeout>";
    if (!shell_id.empty())
      h += "<w:SelectorSet><w:Selector Name=\"ShellId\">" + shell_id + "</w:Selector></w:SelectorSet>";
    if (!options.empty()) h += "<w:OptionSet>" + options + "</w:OptionSet>";
    return h + "</s:Header><s:Body>" + body + "</s:Body></s:Envelope>";
  }
};

struct PipelineRun {
  std::vector<psrp::PsValue> output;
  psrp::PipelineStateInfo state;
  bool command_done = false;  // a CommandState Done came with the final state
  int receives = 0;
};

class PsrpServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { make_service(0); }
  void TearDown() override {
    if (service_) service_->shutdown();
  }

  void make_service(long long ps_start_ms) {
    if (service_) service_->shutdown();
    auto loaded = WindowsModel::load(WINCERT_MODEL_EXAMPLE);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    model_ = std::make_unique<WindowsModel>(std::move(loaded.value()));
    model_->data()["__test"] = true;  // never saved: the copy below drops the path
    *model_ = model_->copy_unsaved();
    PsrpOptions options;
    options.ps_start_ms = ps_start_ms;
    service_ = std::make_unique<PsrpService>(ioc_, *model_, stats_, options);
  }

  HttpReply call(const std::string& body, std::chrono::milliseconds limit = 10s) {
    std::optional<HttpReply> reply;
    RequestContext ctx{"tester", "127.0.0.1", "winhost01:5985", false};
    service_->handle(ctx, body, [&](HttpReply r) { reply = std::move(r); });
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!reply && std::chrono::steady_clock::now() < deadline) ioc_.run_one_for(20ms);
    EXPECT_TRUE(reply.has_value()) << "no reply within the limit";
    return reply.value_or(HttpReply{0, "", false});
  }

  winrm::SoapResponse soap(const HttpReply& reply, const Envelope& request) {
    auto parsed = winrm::parse_response(reply.body, request.message_id);
    EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.error().message) << "\n" << reply.body.substr(0, 500);
    return parsed.ok() ? std::move(parsed.value()) : winrm::SoapResponse{};
  }

  unsigned long fault_code(const HttpReply& reply, const Envelope& request) {
    auto r = soap(reply, request);
    EXPECT_EQ(reply.status, 500u);
    return r.fault ? r.fault->wsman_code : 0;
  }

  // Messages from one Receive (pool level when command_id is empty).
  std::vector<psrp::Message> receive(const std::string& command_id, winrm::ReceiveResult* result = nullptr,
                                     long long max_envelope = 153600, std::string timeout = "PT5S") {
    Envelope e;
    e.action = std::string(act::kReceive);
    e.resource_uri = uri_;
    e.shell_id = shell_id_;
    e.max_envelope = max_envelope;
    e.operation_timeout = timeout;
    e.body = "<rsp:Receive><rsp:DesiredStream" + (command_id.empty() ? "" : " CommandId=\"" + command_id + "\"") +
             ">stdout</rsp:DesiredStream></rsp:Receive>";
    auto reply = call(e.text());
    EXPECT_EQ(reply.status, 200u) << reply.body.substr(0, 800);
    auto r = soap(reply, e);
    auto received = winrm::parse_receive(r, command_id);
    EXPECT_TRUE(received.ok());
    if (!received.ok()) return {};
    EXPECT_LE(static_cast<long long>(reply.body.size()), max_envelope);
    if (result) *result = *received;
    auto complete = defrag_.feed(received->stdout_data);
    EXPECT_TRUE(complete.ok()) << (complete.ok() ? "" : complete.error().message);
    std::vector<psrp::Message> out;
    if (!complete.ok()) return {};
    for (auto& raw : complete.value()) {
      auto m = psrp::decode_message(raw);
      EXPECT_TRUE(m.ok());
      if (m.ok()) out.push_back(std::move(m.value()));
    }
    return out;
  }

  Envelope create_envelope(std::string_view uri, int min, int max, bool with_version = true) {
    pool_ = psrp::Guid::random_v4();
    fragmenter_ = psrp::Fragmenter(32 * 1024);
    std::string creation;
    psrp::RunspacePoolSettings settings;
    settings.min_runspaces = min;
    settings.max_runspaces = max;
    for (const auto& m : {psrp::session_capability_message(pool_), psrp::init_runspace_pool_message(pool_, settings)}) {
      auto fragments = fragmenter_.fragment(psrp::encode_message(m));
      EXPECT_TRUE(fragments.ok());
      if (!fragments.ok()) continue;
      const std::vector<std::string>& list = fragments.value();
      for (const auto& f : list) creation += f;
    }
    Envelope e;
    e.action = std::string(act::kCreate);
    e.resource_uri = std::string(uri);
    if (with_version) e.options = "<w:Option MustComply=\"true\" Name=\"protocolversion\">2.3</w:Option>";
    e.body = "<rsp:Shell ShellId=\"" + pool_.to_upper_string() +
             "\"><rsp:InputStreams>stdin pr</rsp:InputStreams><rsp:OutputStreams>stdout</rsp:OutputStreams>"
             "<creationXml xmlns=\"http://schemas.microsoft.com/powershell\">" +
             base64_encode(creation) + "</creationXml></rsp:Shell>";
    return e;
  }

  // Create + Receive until RUNSPACEPOOL_STATE; returns the pool-level messages.
  std::vector<psrp::Message> open(std::string_view uri = kFullUri, int min = 1, int max = 2) {
    defrag_ = psrp::Defragmenter();
    auto e = create_envelope(uri, min, max);
    auto reply = call(e.text());
    EXPECT_EQ(reply.status, 200u) << reply.body;
    auto created = winrm::parse_create_shell(soap(reply, e));
    EXPECT_TRUE(created.ok());
    shell_id_ = created.ok() ? created->shell_id : "";
    uri_ = std::string(uri);
    std::vector<psrp::Message> all;
    for (int i = 0; i < 5; ++i) {
      for (auto& m : receive("")) all.push_back(std::move(m));
      if (!all.empty() && all.back().type == psrp::MessageType::kRunspacePoolState) break;
    }
    return all;
  }

  // Command (first fragment in Arguments, the rest by Send) and returns the CommandId.
  std::string start(const std::vector<psrp::PipelineCommand>& commands, std::size_t fragment_size = 32 * 1024) {
    const auto pid = psrp::Guid::random_v4();
    fragmenter_.set_max_fragment_size(fragment_size);
    auto fragmented = fragmenter_.fragment(psrp::encode_message(psrp::create_pipeline_message(pool_, pid, commands)));
    EXPECT_TRUE(fragmented.ok());
    if (!fragmented.ok()) return {};
    const std::vector<std::string> fragments = fragmented.value();
    Envelope e;
    e.action = std::string(act::kCommand);
    e.resource_uri = uri_;
    e.shell_id = shell_id_;
    e.body = "<rsp:CommandLine CommandId=\"" + pid.to_upper_string() + "\"><rsp:Command/><rsp:Arguments>" +
             base64_encode(fragments.front()) + "</rsp:Arguments></rsp:CommandLine>";
    auto reply = call(e.text());
    EXPECT_EQ(reply.status, 200u) << reply.body;
    auto id = winrm::parse_command_id(soap(reply, e));
    EXPECT_TRUE(id.ok());
    std::string command_id = id.ok() ? id.value() : "";
    for (std::size_t i = 1; i < fragments.size(); ++i) {
      Envelope s;
      s.action = std::string(act::kSend);
      s.resource_uri = uri_;
      s.shell_id = shell_id_;
      s.body = "<rsp:Send><rsp:Stream Name=\"stdin\" CommandId=\"" + command_id + "\">" + base64_encode(fragments[i]) +
               "</rsp:Stream></rsp:Send>";
      EXPECT_EQ(call(s.text()).status, 200u);
    }
    return command_id;
  }

  PipelineRun finish(const std::string& command_id, long long max_envelope = 153600) {
    PipelineRun run;
    for (int i = 0; i < 200 && !run.state.terminal(); ++i) {
      winrm::ReceiveResult result;
      auto messages = receive(command_id, &result, max_envelope);
      ++run.receives;
      for (const auto& m : messages) {
        auto body = psrp::parse_server_message(m);
        EXPECT_TRUE(body.ok()) << (body.ok() ? "" : body.error().message);
        if (!body.ok()) continue;
        if (auto* out = std::get_if<psrp::PipelineOutput>(&*body)) run.output.push_back(out->value);
        if (auto* st = std::get_if<psrp::PipelineStateInfo>(&*body)) run.state = *st;
      }
      if (run.state.terminal()) run.command_done = result.done && result.exit_code == 0;
    }
    return run;
  }

  PipelineRun invoke(const std::vector<psrp::PipelineCommand>& commands) { return finish(start(commands)); }

  static psrp::PipelineCommand op_call(std::string function, const nlohmann::json& args) {
    psrp::PipelineCommand c;
    c.command = std::move(function);
    c.parameters.push_back({"ArgsJson", psrp::PsValue::string(args.dump())});
    return c;
  }
  static psrp::PipelineCommand load_call(std::string version = "v1") {
    psrp::PipelineCommand c;
    c.command = std::string(kLoadScript);
    c.is_script = true;
    c.parameters.push_back({"Text", psrp::PsValue::string("# the module text")});
    c.parameters.push_back({"Version", psrp::PsValue::string(std::move(version))});
    return c;
  }
  static psrp::PipelineCommand script(std::string text) {
    psrp::PipelineCommand c;
    c.command = std::move(text);
    c.is_script = true;
    return c;
  }

  boost::asio::io_context ioc_;
  Stats stats_;
  std::unique_ptr<WindowsModel> model_;
  std::unique_ptr<PsrpService> service_;
  psrp::Guid pool_;
  psrp::Fragmenter fragmenter_;
  psrp::Defragmenter defrag_;
  std::string shell_id_;
  std::string uri_ = std::string(kFullUri);
};

bool command_not_found(const PipelineRun& run) {
  return run.state.state == 5 && run.state.error &&
         run.state.error->fully_qualified_error_id.starts_with("CommandNotFoundException");
}

// The real pypsrp client's requests, as recorded against Windows, sent in order: the responses must read the way
// that client reads Windows' (open: SESSION_CAPABILITY + APPLICATION_PRIVATE_DATA, then RUNSPACEPOOL_STATE 2; the
// pipeline: a terminal PIPELINE_STATE with CommandState Done; Delete: an empty DeleteResponse).
TEST_F(PsrpServiceTest, RecordedPypsrpRequestsGetWindowsShapedResponses) {
  for (const char* name : {"test_psrp_open_runspace.yml", "test_psrp_stream_output_invocation.yml"}) {
    SCOPED_TRACE(name);
    defrag_ = psrp::Defragmenter();
    auto doc = YAML::LoadFile(std::string(WINCERT_FIXTURES_DIR) + "/winrm/pypsrp-psrp/" + name);
    std::vector<psrp::MessageType> pool_types;
    std::optional<psrp::PipelineStateInfo> pipeline_state;
    bool saw_done = false, deleted = false;
    std::string command_id;
    for (const auto& exchange : doc["messages"]) {
      const std::string request = exchange["request"].as<std::string>();
      std::smatch mid, action;
      ASSERT_TRUE(std::regex_search(request, mid, std::regex("<wsa:MessageID>([^<]+)</wsa:MessageID>")));
      ASSERT_TRUE(std::regex_search(request, action, std::regex("<wsa:Action[^>]*>([^<]+)</wsa:Action>")));
      auto reply = call(request);
      ASSERT_EQ(reply.status, 200u) << reply.body.substr(0, 1000);
      auto r = winrm::parse_response(reply.body, mid[1].str());
      ASSERT_TRUE(r.ok()) << r.error().message;
      const std::string a = action[1].str();
      if (a == act::kCreate) {
        auto created = winrm::parse_create_shell(*r);
        ASSERT_TRUE(created.ok());
        shell_id_ = created->shell_id;
        EXPECT_THAT(request, HasSubstr("ShellId=\"" + shell_id_ + "\""));
        EXPECT_THAT(r->body_xml, HasSubstr("ResourceCreated"));
      } else if (a == act::kCommand) {
        command_id = winrm::parse_command_id(*r).value();
        EXPECT_THAT(request, HasSubstr(command_id));
      } else if (a == act::kReceive) {
        auto received = winrm::parse_receive(*r, "");
        ASSERT_TRUE(received.ok());
        saw_done = saw_done || received->done;
        auto complete = defrag_.feed(received->stdout_data);
        ASSERT_TRUE(complete.ok()) << complete.error().message;
        for (auto& raw : *complete) {
          auto m = psrp::decode_message(raw);
          ASSERT_TRUE(m.ok());
          auto body = psrp::parse_server_message(*m);
          ASSERT_TRUE(body.ok()) << body.error().message;
          if (!m->is_pipeline_message()) pool_types.push_back(m->type);
          if (auto* st = std::get_if<psrp::PipelineStateInfo>(&*body)) pipeline_state = *st;
          if (auto* st = std::get_if<psrp::RunspacePoolStateInfo>(&*body)) {
            EXPECT_EQ(st->state, 2);
          }
          if (auto* cap = std::get_if<psrp::ServerCapability>(&*body)) {
            EXPECT_EQ(cap->protocol_version, "2.3");
          }
        }
      } else if (a == act::kDelete) {
        EXPECT_EQ(r->action, act::kDeleteResponse);
        deleted = true;
      }
    }
    EXPECT_THAT(pool_types, ::testing::ElementsAre(psrp::MessageType::kSessionCapability,
                                                   psrp::MessageType::kApplicationPrivateData,
                                                   psrp::MessageType::kRunspacePoolState));
    if (!command_id.empty()) {
      ASSERT_TRUE(pipeline_state.has_value());
      EXPECT_TRUE(pipeline_state->terminal());
      EXPECT_TRUE(saw_done);
    }
    EXPECT_TRUE(deleted);
    EXPECT_EQ(service_->pool_count(), 0u);
  }
}

TEST_F(PsrpServiceTest, OpensAPoolAsWindowsDoes) {
  auto messages = open(kFullUri, 1, 2);
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[0].type, psrp::MessageType::kSessionCapability);
  EXPECT_TRUE(messages[0].runspace_pool_id.is_nil());  // all-zero RPID, as recorded
  EXPECT_EQ(messages[1].type, psrp::MessageType::kApplicationPrivateData);
  EXPECT_EQ(messages[1].runspace_pool_id, pool_);
  auto state = psrp::parse_server_message(messages[2]);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(std::get<psrp::RunspacePoolStateInfo>(*state).state, 2);
  EXPECT_EQ(stats_.psrp_pools_opened, 1u);
  EXPECT_EQ(stats_.psrp_runspaces_started, 1u);
}

// The agent's sequence on a full endpoint: the function is unknown until the load script ran in that runspace.
TEST_F(PsrpServiceTest, RunsAnOpAfterLoadingTheModuleInTheRunspace) {
  open();
  const nlohmann::json args = {{"StoreName", "My"}};
  auto first = invoke({op_call("Invoke-WincertStoreInventory", args)});
  EXPECT_TRUE(command_not_found(first));
  EXPECT_TRUE(first.command_done);
  EXPECT_EQ(first.state.error->target, "Invoke-WincertStoreInventory");

  auto load = invoke({load_call()});
  EXPECT_EQ(load.state.state, 4);
  EXPECT_TRUE(load.output.empty());

  auto second = invoke({op_call("Invoke-WincertStoreInventory", args)});
  ASSERT_EQ(second.state.state, 4) << (second.state.error ? second.state.error->message : "");
  ASSERT_EQ(second.output.size(), 1u);
  ASSERT_TRUE(second.output[0].is_string());
  auto expected = model_->run_operation("store-inventory", args);
  ASSERT_TRUE(expected.ok);
  EXPECT_EQ(nlohmann::json::parse(second.output[0].text()), expected.result);
  EXPECT_EQ(stats_.psrp_pipelines, 3u);
}

// A failing op: PIPELINE_STATE 5 whose exception carries Data['WincertCategory'], read back as the agent does.
TEST_F(PsrpServiceTest, AFailingOpCarriesItsCategoryInExceptionData) {
  open();
  invoke({load_call()});
  auto run = invoke({op_call("Invoke-WincertStoreInventory", {{"StoreName", "Nope"}})});
  ASSERT_EQ(run.state.state, 5);
  ASSERT_TRUE(run.state.error.has_value());
  auto expected = model_->run_operation("store-inventory", {{"StoreName", "Nope"}});
  ASSERT_FALSE(expected.ok);
  EXPECT_EQ(run.state.error->exception_data_value("WincertCategory"), expected.error.category);
  EXPECT_EQ(run.state.error->message, expected.error.message);
  EXPECT_EQ(run.state.error->exception_type, "System.InvalidOperationException");
  EXPECT_EQ(run.state.error->category_message, "OperationStopped: (:) [], InvalidOperationException");
  EXPECT_TRUE(run.output.empty());
}

// Pipelines beyond the free runspaces get a new one (up to MaxRunspaces), which has no module yet; a stop
// signal ends a waiting pipeline as Stopped.
TEST_F(PsrpServiceTest, ModuleStateIsPerRunspaceAndCrtlCStopsAPipeline) {
  open(kFullUri, 1, 2);
  ASSERT_EQ(invoke({load_call()}).state.state, 4);                         // runspace 0 has the module
  const std::string sleeper = start({script("Start-Sleep -Seconds 30")});  // occupies runspace 0
  auto on_new_runspace = invoke({op_call("Invoke-WincertEcho", {{"a", 1}})});
  EXPECT_TRUE(command_not_found(on_new_runspace));  // runspace 1 was just started
  EXPECT_EQ(stats_.psrp_runspaces_started, 2u);
  ASSERT_EQ(invoke({load_call()}).state.state, 4);  // into runspace 1
  auto echoed = invoke({op_call("Invoke-WincertEcho", {{"a", 1}})});
  EXPECT_EQ(echoed.state.state, 4);

  Envelope signal;
  signal.action = std::string(act::kSignal);
  signal.shell_id = shell_id_;
  signal.body = "<rsp:Signal CommandId=\"" + sleeper + "\"><rsp:Code>powershell/signal/crtl_c</rsp:Code></rsp:Signal>";
  EXPECT_EQ(call(signal.text()).status, 200u);
  auto stopped = finish(sleeper);
  EXPECT_EQ(stopped.state.state, 3);
  EXPECT_TRUE(stopped.command_done);
  EXPECT_EQ(stats_.psrp_runspaces_started, 2u);  // never more than MaxRunspaces
}

// More pipelines than MaxRunspaces wait for a free runspace.
TEST_F(PsrpServiceTest, PipelinesBeyondMaxRunspacesWait) {
  open(kFullUri, 1, 1);
  const std::string sleeper = start({script("Start-Sleep -Milliseconds 300")});
  const std::string waiting = start({script("Write-Output after")});
  const auto started = std::chrono::steady_clock::now();
  auto run = finish(waiting);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 250ms);
  EXPECT_EQ(run.state.state, 4);
  ASSERT_EQ(run.output.size(), 1u);
  EXPECT_EQ(run.output[0].text(), "after");
  EXPECT_EQ(finish(sleeper).state.state, 4);
  EXPECT_EQ(stats_.psrp_runspaces_started, 1u);
}

TEST_F(PsrpServiceTest, JeaEndpointRefusesScriptsAndOffersOnlyTheModuleFunctions) {
  open(kJeaUri, 1, 1);
  auto scripted = invoke({script("Get-Date")});
  ASSERT_EQ(scripted.state.state, 5);
  EXPECT_EQ(scripted.state.error->fully_qualified_error_id, "ScriptsNotAllowed");
  EXPECT_EQ(scripted.state.error->message,
            "The syntax is not supported by this runspace. This can occur if the runspace is in no-language mode.");
  auto load = invoke({load_call()});
  EXPECT_EQ(load.state.error->fully_qualified_error_id, "ScriptsNotAllowed");
  psrp::PipelineCommand get_date;
  get_date.command = "Get-Date";
  EXPECT_TRUE(command_not_found(invoke({get_date})));
  auto inventory = invoke({op_call("Invoke-WincertStoreInventory", {{"StoreName", "My"}})});
  EXPECT_EQ(inventory.state.state, 4);
  EXPECT_EQ(inventory.output.size(), 1u);
}

// A large CREATE_PIPELINE (Arguments + Send) and output re-fragmented to a small MaxEnvelopeSize.
TEST_F(PsrpServiceTest, FragmentsBothWays) {
  open();
  invoke({load_call()});
  nlohmann::json args = {{"padding", std::string(20000, 'x')}};
  const std::string id = start({op_call("Invoke-WincertEcho", args)}, 4096);
  auto run = finish(id, 6000);
  ASSERT_EQ(run.state.state, 4);
  ASSERT_EQ(run.output.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(run.output[0].text()), model_->run_operation("echo", args).result);
  EXPECT_GT(run.receives, 3);
}

TEST_F(PsrpServiceTest, FaultsLikeWindows) {
  // An unknown configuration name, and a Create without protocolversion.
  auto unknown = create_envelope("http://schemas.microsoft.com/powershell/NoSuchEndpoint", 1, 1);
  auto reply = call(unknown.text());
  EXPECT_EQ(fault_code(reply, unknown), 2150858752UL);
  EXPECT_THAT(reply.body, HasSubstr("Cannot find the NoSuchEndpoint session configuration"));
  auto no_version = create_envelope(kFullUri, 1, 1, false);
  EXPECT_EQ(fault_code(call(no_version.text()), no_version), winrm::fault_code::kSchemaValidation);

  open();
  // Unknown ShellId, unknown CommandId.
  Envelope bad_shell;
  bad_shell.action = std::string(act::kReceive);
  bad_shell.shell_id = psrp::Guid::random_v4().to_upper_string();
  bad_shell.body = "<rsp:Receive><rsp:DesiredStream>stdout</rsp:DesiredStream></rsp:Receive>";
  EXPECT_EQ(fault_code(call(bad_shell.text()), bad_shell), winrm::fault_code::kShellNotFound);
  Envelope bad_command = bad_shell;
  bad_command.message_id = "uuid:" + random_uuid();
  bad_command.shell_id = shell_id_;
  bad_command.body = "<rsp:Receive><rsp:DesiredStream CommandId=\"" + psrp::Guid::random_v4().to_upper_string() +
                     "\">stdout</rsp:DesiredStream></rsp:Receive>";
  EXPECT_EQ(fault_code(call(bad_command.text()), bad_command), winrm::fault_code::kShellNotFound);

  // Nothing to send within OperationTimeout: w:TimedOut.
  Envelope idle;
  idle.action = std::string(act::kReceive);
  idle.shell_id = shell_id_;
  idle.operation_timeout = "PT0.3S";
  idle.body = "<rsp:Receive><rsp:DesiredStream>stdout</rsp:DesiredStream></rsp:Receive>";
  const auto started = std::chrono::steady_clock::now();
  auto timed_out = call(idle.text());
  EXPECT_GE(std::chrono::steady_clock::now() - started, 250ms);
  EXPECT_EQ(fault_code(timed_out, idle), winrm::fault_code::kOperationTimeout);
  EXPECT_EQ(stats_.timeouts, 1u);

  // Delete: an empty DeleteResponse, then the shell is gone.
  Envelope del;
  del.action = std::string(act::kDelete);
  del.shell_id = shell_id_;
  auto deleted = call(del.text());
  EXPECT_EQ(deleted.status, 200u);
  EXPECT_EQ(soap(deleted, del).action, act::kDeleteResponse);
  idle.message_id = "uuid:" + random_uuid();
  EXPECT_EQ(fault_code(call(idle.text()), idle), winrm::fault_code::kShellNotFound);
}

// --ps-start-ms: each runspace a pool opens costs that long before RUNSPACEPOOL_STATE Opened.
TEST_F(PsrpServiceTest, RunspaceStartCostIsCharged) {
  make_service(100);
  const auto started = std::chrono::steady_clock::now();
  auto messages = open(kFullUri, 2, 2);
  const auto elapsed = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(messages.empty());
  EXPECT_EQ(messages.back().type, psrp::MessageType::kRunspacePoolState);
  EXPECT_GE(elapsed, 200ms);
  EXPECT_EQ(stats_.psrp_runspaces_started, 2u);
}

// winhost-sim's wiring: the WinRS service routes the PowerShell resource URIs to the PSRP service, and
// MaxShellsPerUser counts WinRS shells and runspace pools together.
TEST_F(PsrpServiceTest, RoutedByTheWinrsServiceWithOneShellQuota) {
  WinrsOptions winrs_options;
  winrs_options.max_shells_per_user = 1;
  auto winrs = std::make_unique<WinrsService>(ioc_, *model_, stats_, winrs_options);
  PsrpOptions options;
  options.ps_start_ms = 0;
  options.max_shells_per_user = 1;
  service_->shutdown();
  service_ = std::make_unique<PsrpService>(ioc_, *model_, stats_, options, &winrs->shells_per_owner());
  winrs->set_powershell_handler(service_.get());
  auto through_winrs = [&](const std::string& body) {
    std::optional<HttpReply> reply;
    RequestContext ctx{"tester", "127.0.0.1", "winhost01:5985", false};
    winrs->handle(ctx, body, [&](HttpReply r) { reply = std::move(r); });
    for (int i = 0; i < 100 && !reply; ++i) ioc_.run_one_for(20ms);
    return reply.value_or(HttpReply{0, "", false});
  };
  auto create = create_envelope(kFullUri, 1, 1);
  auto created = through_winrs(create.text());
  ASSERT_EQ(created.status, 200u) << created.body;
  EXPECT_EQ(service_->pool_count(), 1u);
  Envelope cmd_shell;
  cmd_shell.action = std::string(act::kCreate);
  cmd_shell.resource_uri = std::string(winrm::ns::kResourceCmd);
  cmd_shell.body =
      "<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr"
      "</rsp:OutputStreams></rsp:Shell>";
  EXPECT_EQ(fault_code(through_winrs(cmd_shell.text()), cmd_shell), winrm::fault_code::kMaxShellsPerUser);
  winrs->shutdown();
  service_.reset();  // it refers to the WinRS service's quota map
}

// Two pipelines arriving while every runspace is busy start two runspaces at once (each charged), never more
// than MaxRunspaces.
TEST_F(PsrpServiceTest, BusyPoolGrowsOneRunspacePerWaitingPipeline) {
  make_service(50);
  open(kFullUri, 1, 3);
  const std::string sleeper = start({script("Start-Sleep -Seconds 30")});
  const std::string a = start({script("Write-Output a")});
  const std::string b = start({script("Write-Output b")});
  const std::string c = start({script("Write-Output c")});
  EXPECT_EQ(finish(a).state.state, 4);
  EXPECT_EQ(finish(b).state.state, 4);
  EXPECT_EQ(finish(c).state.state, 4);
  EXPECT_EQ(stats_.psrp_runspaces_started, 3u);
}

// Other script text on a full endpoint: the interpreter's output lines as strings, Write-Warning as a
// WARNING_RECORD, Write-Error as a (non-terminating) ERROR_RECORD.
TEST_F(PsrpServiceTest, ScriptTextRunsInTheInterpreter) {
  open();
  const std::string id = start({script("Write-Output 'one'\nWrite-Warning 'careful'\nWrite-Error 'bad'\n'two'")});
  std::vector<std::string> outputs, warnings, errors;
  psrp::PipelineStateInfo state;
  for (int i = 0; i < 10 && !state.terminal(); ++i) {
    for (const auto& m : receive(id)) {
      auto body = psrp::parse_server_message(m);
      ASSERT_TRUE(body.ok()) << body.error().message;
      if (auto* o = std::get_if<psrp::PipelineOutput>(&*body)) outputs.push_back(o->value.text());
      if (auto* w = std::get_if<psrp::InformationalRecord>(&*body)) warnings.push_back(w->message);
      if (auto* e = std::get_if<psrp::ErrorRecordInfo>(&*body)) errors.push_back(e->message);
      if (auto* st = std::get_if<psrp::PipelineStateInfo>(&*body)) state = *st;
    }
  }
  EXPECT_EQ(state.state, 4);
  EXPECT_THAT(outputs, ::testing::ElementsAre("one", "two"));
  EXPECT_THAT(warnings, ::testing::ElementsAre("careful"));
  EXPECT_THAT(errors, ::testing::ElementsAre("bad"));
}

// The failure records against what a real PowerShell 7.6.10 (`pwsh -s`) sent for the same cases
// (tests/sim/data/pwsh76_*.xml, captured for this simulator): the same properties in the same order, and the
// same fields for a client (message, FullyQualifiedErrorId, category, exception type, Data).
std::vector<std::string> names(const std::vector<psrp::PsProperty>& properties) {
  std::vector<std::string> out;
  for (const auto& p : properties) out.push_back(p.name);
  return out;
}

void expect_same_record(const std::string& real_file, const std::string& ours_text) {
  SCOPED_TRACE(real_file);
  auto real = psrp::parse_clixml(read_file(std::string(WINCERT_SOURCE_DIR) + "/tests/sim/data/" + real_file));
  auto ours = psrp::parse_clixml(ours_text);
  ASSERT_TRUE(real.ok() && ours.ok());
  const psrp::PsValue* real_record = real->property("ExceptionAsErrorRecord");
  const psrp::PsValue* our_record = ours->property("ExceptionAsErrorRecord");
  ASSERT_TRUE(real_record && our_record);
  EXPECT_EQ(names(our_record->object()->extended), names(real_record->object()->extended));
  EXPECT_EQ(our_record->object()->type_names, real_record->object()->type_names);
  const psrp::PsValue* real_exception = real_record->property("Exception");
  const psrp::PsValue* our_exception = our_record->property("Exception");
  EXPECT_EQ(names(our_exception->object()->adapted), names(real_exception->object()->adapted));
  EXPECT_EQ(our_exception->object()->type_names, real_exception->object()->type_names);
  auto r = psrp::parse_pipeline_state(*real);
  auto o = psrp::parse_pipeline_state(*ours);
  ASSERT_TRUE(r.ok() && o.ok() && r->error && o->error);
  EXPECT_EQ(o->state, r->state);
  EXPECT_EQ(o->error->message, r->error->message);
  EXPECT_EQ(o->error->fully_qualified_error_id, r->error->fully_qualified_error_id);
  EXPECT_EQ(o->error->category, r->error->category);
  EXPECT_EQ(o->error->category_message, r->error->category_message);
  EXPECT_EQ(o->error->category_reason, r->error->category_reason);
  EXPECT_EQ(o->error->target, r->error->target);
  EXPECT_EQ(o->error->exception_type, r->error->exception_type);
  EXPECT_EQ(o->error->exception_data, r->error->exception_data);
}

TEST(PsrpRecords, MatchWhatRealPowerShellSends) {
  namespace m = psrp_server;
  expect_same_record("pwsh76_op_failure_pipeline_state.xml",
                     m::pipeline_state_body(5, m::op_failure_record("Invoke-WincertStoreInventory",
                                                                    "the certificate store LocalMachine\\Nope does "
                                                                    "not exist",
                                                                    "StoreNotFound")));
  expect_same_record("pwsh76_command_not_found_pipeline_state.xml",
                     m::pipeline_state_body(5, m::command_not_found_record("Invoke-WincertStoreInventory")));
  expect_same_record("pwsh76_scripts_not_allowed_pipeline_state.xml",
                     m::pipeline_state_body(5, m::scripts_not_allowed_record("Get-Date")));
}

TEST(PsrpFunctions, MatchTheJeaRoleAndTheAgentsNaming) {
  const std::string psrc = read_file(std::string(WINCERT_SOURCE_DIR) + "/config/jea/WincertAgent.psrc");
  std::vector<std::string> visible;
  std::regex name("'(Invoke-Wincert[A-Za-z]+)'");
  for (auto it = std::sregex_iterator(psrc.begin(), psrc.end(), name); it != std::sregex_iterator(); ++it)
    visible.push_back((*it)[1].str());
  EXPECT_EQ(visible, wincert_functions());
  EXPECT_EQ(op_for_function("Invoke-WincertStoreInventory"), "store-inventory");
  EXPECT_EQ(op_for_function("Invoke-WincertIisRemoveCertIfUnused"), "iis-remove-cert-if-unused");
  EXPECT_EQ(op_for_function("Get-Date"), std::nullopt);
  WindowsModel model;
  for (const auto& f : wincert_functions()) EXPECT_TRUE(model.has_operation(*op_for_function(f))) << f;
}

}  // namespace
}  // namespace wincert::sim

namespace wincert::sim {
namespace {

// --ps-start-ms on the WinRS path: each powershell.exe a command starts begins with a sleep of that length (the
// WinRS service plays it on a timer like any other step); cmd.exe's own commands are not charged.
TEST(PsStartCost, ChargedForEachPowershellExeAWinrsCommandStarts) {
  WindowsModel model;
  ProcessContext ctx;
  ctx.model = &model;
  ctx.ps_start_ms = 250;
  auto ps = run_command_line(ctx, "powershell", {"-NoProfile", "-Command", "Write-Output hi"}, false, nullptr);
  ASSERT_TRUE(ps.has_value());
  ASSERT_FALSE(ps->steps.empty());
  EXPECT_EQ(ps->steps.front().kind, OutputStep::Kind::kSleep);
  EXPECT_EQ(ps->steps.front().sleep_ms, 250);
  auto twice = run_command_line(ctx, "powershell -Command \"Write-Output a\" && powershell -Command \"Write-Output b\"",
                                {}, false, nullptr);
  ASSERT_TRUE(twice.has_value());
  long long slept = 0;
  for (const auto& s : twice->steps)
    if (s.kind == OutputStep::Kind::kSleep) slept += s.sleep_ms;
  EXPECT_EQ(slept, 500);
  auto echo = run_command_line(ctx, "echo hi", {}, false, nullptr);
  ASSERT_TRUE(echo.has_value());
  for (const auto& s : echo->steps) EXPECT_NE(s.kind, OutputStep::Kind::kSleep);
  ctx.ps_start_ms = 0;
  auto free = run_command_line(ctx, "powershell", {"-Command", "Write-Output hi"}, false, nullptr);
  ASSERT_TRUE(free.has_value());
  for (const auto& s : free->steps) EXPECT_NE(s.kind, OutputStep::Kind::kSleep);
}

}  // namespace
}  // namespace wincert::sim
