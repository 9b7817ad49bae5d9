// Typed PSRP client messages and server message parsers, on synthetic input (the recorded traffic is covered
// by transcript_test.cpp).
#include "winrm/psrp/messages.hpp"

#include <gtest/gtest.h>

#include "tests/support/result_matchers.hpp"

namespace wincert::winrm::psrp {
namespace {

const Guid kPool = Guid::parse("76056A84-51DC-4F24-9262-CA2A55464B2B").value();
const Guid kPipeline = Guid::parse("8372DF51-5986-4AC3-96B4-8C519AE0976F").value();

PsValue body_of(const Message& m) {
  auto parsed = parse_clixml(m.data);
  EXPECT_THAT(parsed, IsOk()) << m.data;
  return parsed.ok() ? parsed.value() : PsValue();
}

TEST(PsrpMessages, SessionCapabilityIsWhatPypsrpSends) {
  Message m = session_capability_message(kPool);
  EXPECT_EQ(m.type, MessageType::kSessionCapability);
  EXPECT_EQ(m.destination, Destination::kServer);
  EXPECT_EQ(m.runspace_pool_id, kPool);
  EXPECT_TRUE(m.pipeline_id.is_nil());
  EXPECT_EQ(m.data,
            "<Obj RefId=\"0\"><MS><Version N=\"protocolversion\">2.3</Version><Version N=\"PSVersion\">2.0</Version>"
            "<Version N=\"SerializationVersion\">1.1.0.1</Version></MS></Obj>");
  auto parsed = parse_session_capability(body_of(m));
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->protocol_version, "2.3");
  EXPECT_EQ(parsed->ps_version, "2.0");
  EXPECT_EQ(parsed->serialization_version, "1.1.0.1");
}

TEST(PsrpMessages, InitRunspacePoolCarriesLimitsAndANullHost) {
  RunspacePoolSettings settings;
  settings.min_runspaces = 1;
  settings.max_runspaces = 4;
  PsValue body = body_of(init_runspace_pool_message(kPool, settings));
  EXPECT_EQ(body.int_property("MinRunspaces"), 1);
  EXPECT_EQ(body.int_property("MaxRunspaces"), 4);
  EXPECT_EQ(body.property("PSThreadOptions")->to_display_string(), "Default");
  EXPECT_EQ(body.property("ApartmentState")->as_int64(), 2);
  const PsValue* host = body.property("HostInfo");
  ASSERT_NE(host, nullptr);
  for (auto flag : {"_isHostNull", "_isHostUINull", "_isHostRawUINull", "_useRunspaceHost"})
    EXPECT_EQ(host->bool_property(flag), true) << flag;
  ASSERT_NE(body.property("ApplicationArguments"), nullptr);
  EXPECT_TRUE(body.property("ApplicationArguments")->is_nil());
}

// The minimal form the runspace pools send: what PowerShell's RemotingDecoder reads and no more (enums as their
// integer values, no PowerShell 3+ merge fields, untyped lists). Real pwsh runs it: the psrp_transport
// RunspacePool tests, whose pools send this form.
TEST(PsrpMessages, MinimalCreatePipelineCarriesWhatTheServerReads) {
  PipelineCommand command;
  command.command = "Invoke-WincertHostInfo";
  command.parameters = {{"ArgsJson", PsValue::string("{}")}};
  PipelineSettings minimal;
  minimal.minimal = true;
  Message full = create_pipeline_message(kPool, kPipeline, {command});
  Message small = create_pipeline_message(kPool, kPipeline, {command}, minimal);
  EXPECT_LT(small.data.size() + 1000, full.data.size()) << small.data.size() << " vs " << full.data.size();
  EXPECT_EQ(small.data.find("<TN"), std::string::npos) << small.data;
  PsValue body = body_of(small);
  EXPECT_EQ(body.int_property("ApartmentState"), 2);
  EXPECT_EQ(body.int_property("RemoteStreamOptions"), 15);
  EXPECT_EQ(body.property("HostInfo")->bool_property("_isHostNull"), true);
  const auto& cmds = body.property("PowerShell")->property("Cmds")->object()->items;
  ASSERT_EQ(cmds.size(), 1u);
  for (auto merge : {"MergeMyResult", "MergeToResult", "MergePreviousResults"})
    EXPECT_EQ(cmds[0].int_property(merge), 0) << merge;
  for (auto merge : {"MergeError", "MergeWarning", "MergeVerbose", "MergeDebug", "MergeInformation"})
    EXPECT_EQ(cmds[0].property(merge), nullptr) << merge;
  const auto& args = cmds[0].property("Args")->object()->items;
  ASSERT_EQ(args.size(), 1u);
  EXPECT_EQ(args[0].string_property("N"), "ArgsJson");
  EXPECT_EQ(args[0].string_property("V"), "{}");
}

TEST(PsrpMessages, CreatePipelineWithNamedParameters) {
  PipelineCommand command;
  command.command = "Invoke-WincertOperation";
  command.parameters = {{"Name", PsValue::string("inventory")},
                        {"ArgsJson", PsValue::string("{\"a\":\"_x\\n<&>\"}")},
                        {"Force", PsValue::boolean(true)},
                        {"", PsValue::int32(3)}};
  Message m = create_pipeline_message(kPool, kPipeline, {command});
  EXPECT_EQ(m.type, MessageType::kCreatePipeline);
  EXPECT_EQ(m.pipeline_id, kPipeline);
  PsValue body = body_of(m);
  EXPECT_EQ(body.bool_property("NoInput"), true);
  EXPECT_EQ(body.bool_property("AddToHistory"), false);
  EXPECT_EQ(body.bool_property("IsNested"), false);
  EXPECT_EQ(body.property("RemoteStreamOptions")->as_int64(), 15);
  EXPECT_EQ(body.property("HostInfo")->bool_property("_isHostNull"), true);
  const PsValue* ps = body.property("PowerShell");
  ASSERT_NE(ps, nullptr);
  EXPECT_TRUE(ps->property("ExtraCmds")->is_nil());
  EXPECT_TRUE(ps->property("History")->is_nil());
  const auto& cmds = ps->property("Cmds")->object()->items;
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].string_property("Cmd"), "Invoke-WincertOperation");
  EXPECT_EQ(cmds[0].bool_property("IsScript"), false);
  EXPECT_TRUE(cmds[0].property("UseLocalScope")->is_nil());
  for (auto merge : {"MergeMyResult", "MergeToResult", "MergePreviousResults", "MergeError", "MergeWarning",
                     "MergeVerbose", "MergeDebug", "MergeInformation"})
    EXPECT_EQ(cmds[0].property(merge)->to_display_string(), "None") << merge;
  const auto& args = cmds[0].property("Args")->object()->items;
  ASSERT_EQ(args.size(), 4u);
  EXPECT_EQ(args[1].string_property("N"), "ArgsJson");
  EXPECT_EQ(args[1].string_property("V"), "{\"a\":\"_x\\n<&>\"}");
  EXPECT_EQ(args[2].bool_property("V"), true);
  EXPECT_TRUE(args[3].property("N")->is_nil());
  EXPECT_EQ(args[3].int_property("V"), 3);
}

TEST(PsrpMessages, PipelineInputAndItsEnd) {
  Message input = pipeline_input_message(kPool, kPipeline, PsValue::string("1"));
  EXPECT_EQ(input.type, MessageType::kPipelineInput);
  EXPECT_EQ(input.data, "<S>1</S>");
  Message end = end_of_pipeline_input_message(kPool, kPipeline);
  EXPECT_EQ(end.type, MessageType::kEndOfPipelineInput);
  EXPECT_TRUE(end.data.empty());
  EXPECT_EQ(encode_message(end).size(), kMessageHeaderSize);
}

TEST(PsrpMessages, SetMaxAndMinRunspacesAsRecorded) {
  EXPECT_EQ(set_max_runspaces_message(kPool, 5, 1).data,
            "<Obj RefId=\"0\"><MS><I32 N=\"MaxRunspaces\">5</I32><I64 N=\"CI\">1</I64></MS></Obj>");
  EXPECT_EQ(set_min_runspaces_message(kPool, 2, 3).data,
            "<Obj RefId=\"0\"><MS><I32 N=\"MinRunspaces\">2</I32><I64 N=\"CI\">3</I64></MS></Obj>");
  EXPECT_EQ(set_max_runspaces_message(kPool, 5, 1).type, MessageType::kSetMaxRunspaces);
}

Message server_message(MessageType type, std::string data, const Guid& pipeline = {}) {
  Message m;
  m.destination = Destination::kClient;
  m.type = type;
  m.runspace_pool_id = kPool;
  m.pipeline_id = pipeline;
  m.data = std::move(data);
  return m;
}

const char* kErrorRecord =
    "<Obj N=\"ExceptionAsErrorRecord\" RefId=\"1\"><TN RefId=\"0\"><T>System.Management.Automation.ErrorRecord</T>"
    "<T>System.Object</T></TN><ToString>boom</ToString><MS><Obj N=\"Exception\" RefId=\"2\"><TN RefId=\"1\">"
    "<T>System.Management.Automation.RuntimeException</T><T>System.Object</T></TN><Props><S N=\"Message\">boom</S>"
    "</Props></Obj><S N=\"TargetObject\">C:\\x</S><S N=\"FullyQualifiedErrorId\">Boom,Invoke-X</S>"
    "<I32 N=\"ErrorCategory_Category\">13</I32><S N=\"ErrorCategory_Message\">ObjectNotFound: (C:\\x:String) [], "
    "RuntimeException</S><S N=\"ErrorCategory_Reason\">RuntimeException</S><S N=\"ErrorCategory_TargetName\">C:\\x"
    "</S><S N=\"ErrorDetails_ScriptStackTrace\">at line 1</S></MS></Obj>";

TEST(PsrpMessages, FailedPipelineStateCarriesTheErrorRecord) {
  auto parsed = parse_server_message(server_message(
      MessageType::kPipelineState,
      std::string("<Obj RefId=\"0\"><MS><I32 N=\"PipelineState\">5</I32>") + kErrorRecord + "</MS></Obj>", kPipeline));
  ASSERT_THAT(parsed, IsOk());
  const auto& state = std::get<PipelineStateInfo>(*parsed);
  EXPECT_EQ(state.state, 5);
  EXPECT_TRUE(state.terminal());
  ASSERT_TRUE(state.error.has_value());
  EXPECT_EQ(state.error->message, "boom");
  EXPECT_EQ(state.error->fully_qualified_error_id, "Boom,Invoke-X");
  EXPECT_EQ(state.error->category, 13);
  EXPECT_EQ(state.error->category_message, "ObjectNotFound: (C:\\x:String) [], RuntimeException");
  EXPECT_EQ(state.error->category_reason, "RuntimeException");
  EXPECT_EQ(state.error->target_name, "C:\\x");
  EXPECT_EQ(state.error->target, "C:\\x");
  EXPECT_EQ(state.error->exception_type, "System.Management.Automation.RuntimeException");
  EXPECT_EQ(state.error->script_stack_trace, "at line 1");
}

TEST(PsrpMessages, BrokenPoolStateCarriesTheErrorRecord) {
  auto parsed = parse_server_message(server_message(
      MessageType::kRunspacePoolState,
      std::string("<Obj RefId=\"0\"><MS><I32 N=\"RunspaceState\">5</I32>") + kErrorRecord + "</MS></Obj>"));
  ASSERT_THAT(parsed, IsOk());
  const auto& state = std::get<RunspacePoolStateInfo>(*parsed);
  EXPECT_EQ(state.state, 5);
  ASSERT_TRUE(state.error.has_value());
  EXPECT_EQ(state.error->fully_qualified_error_id, "Boom,Invoke-X");
}

TEST(PsrpMessages, InformationRecordRendersItsMessageData) {
  auto parsed = parse_server_message(server_message(
      MessageType::kInformationRecord,
      "<Obj RefId=\"0\"><MS><Obj N=\"MessageData\" RefId=\"1\"><TN RefId=\"0\">"
      "<T>System.Management.Automation.HostInformationMessage</T><T>System.Object</T></TN><ToString>from "
      "Write-Host</ToString><Props><S N=\"Message\">from Write-Host</S></Props></Obj><S N=\"Source\">Write-Host</S>"
      "</MS></Obj>",
      kPipeline));
  ASSERT_THAT(parsed, IsOk());
  const auto& record = std::get<InformationalRecord>(*parsed);
  EXPECT_EQ(record.kind, InformationalKind::kInformation);
  EXPECT_EQ(record.message, "from Write-Host");
}

TEST(PsrpMessages, MissingRequiredPropertiesAreCodedErrors) {
  EXPECT_THAT(parse_server_message(server_message(MessageType::kPipelineState, "<Obj RefId=\"0\"><MS /></Obj>")),
              HasCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(parse_server_message(server_message(MessageType::kRunspacePoolState, "<S>2</S>")),
              HasCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(parse_server_message(server_message(MessageType::kSessionCapability, "<Obj RefId=\"0\" />")),
              HasCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(parse_server_message(server_message(MessageType::kPipelineHostCall,
                                                  "<Obj RefId=\"0\"><MS><I64 N=\"ci\">1</I64></MS></Obj>")),
              HasCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(parse_server_message(server_message(static_cast<MessageType>(0x00041055), "<S>x</S>")),
              HasCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(parse_server_message(server_message(MessageType::kPipelineOutput, "<S>x")),
              HasCode(ErrorCode::kInvalidArgument));
}

TEST(PsrpMessages, AHostCallIsAnsweredWithAnException) {
  // The recorded Read-Host call (test_psrp_pshost_ui_mocked_methods #6).
  auto parsed = parse_server_message(server_message(
      MessageType::kPipelineHostCall,
      "<Obj RefId=\"0\"><MS><I64 N=\"ci\">1</I64><Obj N=\"mi\" RefId=\"1\"><TN RefId=\"0\">"
      "<T>System.Management.Automation.Remoting.RemoteHostMethodId</T><T>System.Enum</T><T>System.ValueType</T>"
      "<T>System.Object</T></TN><ToString>ReadLine</ToString><I32>11</I32></Obj><Obj N=\"mp\" RefId=\"2\">"
      "<TN RefId=\"1\"><T>System.Collections.ArrayList</T><T>System.Object</T></TN><LST /></Obj></MS></Obj>",
      kPipeline));
  ASSERT_THAT(parsed, IsOk());
  const auto& call = std::get<HostCall>(*parsed);
  EXPECT_TRUE(call.pipeline);
  EXPECT_EQ(call.call_id, 1);
  EXPECT_EQ(call.method_id, 11);
  EXPECT_EQ(call.method_name, "ReadLine");
  EXPECT_TRUE(call.parameters.empty());
  EXPECT_TRUE(call.expects_response());

  Message reply = host_call_failure_message(kPool, kPipeline, call);
  EXPECT_EQ(reply.type, MessageType::kPipelineHostResponse);
  EXPECT_EQ(reply.pipeline_id, kPipeline);
  PsValue body = body_of(reply);
  EXPECT_EQ(body.int_property("ci"), 1);
  EXPECT_EQ(body.property("mi")->as_int64(), 11);
  EXPECT_EQ(body.property("mi")->to_display_string(), "ReadLine");
  EXPECT_TRUE(body.property("mi")->has_type_name("System.Management.Automation.Remoting.RemoteHostMethodId"));
  EXPECT_EQ(body.property("mr"), nullptr);
  const PsValue* me = body.property("me");
  ASSERT_NE(me, nullptr);
  EXPECT_TRUE(me->has_type_name("System.Management.Automation.ErrorRecord"));
  auto record = parse_error_record(*me);
  ASSERT_THAT(record, IsOk());
  EXPECT_EQ(record->fully_qualified_error_id, "RemoteHostExecutionException");
  EXPECT_NE(record->message.find("ReadLine"), std::string::npos);
  EXPECT_EQ(record->exception_type, "System.Management.Automation.Host.HostException");
  EXPECT_EQ(me->property("Exception")->string_property("Message"), record->message);

  HostCall pool_call = call;
  pool_call.pipeline = false;
  Message pool_reply = host_call_failure_message(kPool, Guid{}, pool_call, "no host here");
  EXPECT_EQ(pool_reply.type, MessageType::kRunspacePoolHostResponse);
  EXPECT_EQ(parse_error_record(*body_of(pool_reply).property("me"))->message, "no host here");
}

TEST(PsrpMessages, AvailabilityReplies) {
  auto b = parse_server_message(server_message(
      MessageType::kRunspaceAvailability,
      "<Obj RefId=\"0\"><MS><B N=\"SetMinMaxRunspacesResponse\">false</B><I64 N=\"ci\">4</I64></MS></Obj>"));
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(std::get<RunspaceAvailability>(*b).call_id, 4);
  EXPECT_FALSE(std::get<RunspaceAvailability>(*b).succeeded());
  auto n = parse_server_message(server_message(
      MessageType::kRunspaceAvailability,
      "<Obj RefId=\"0\"><MS><I32 N=\"SetMinMaxRunspacesResponse\">5</I32><I64 N=\"ci\">2</I64></MS></Obj>"));
  ASSERT_THAT(n, IsOk());
  EXPECT_EQ(std::get<RunspaceAvailability>(*n).response.as_int64(), 5);
  EXPECT_TRUE(std::get<RunspaceAvailability>(*n).succeeded());
}

}  // namespace
}  // namespace wincert::winrm::psrp
