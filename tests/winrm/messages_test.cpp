// Envelope builders, response/fault parsing on the WinRb fixtures, and hostile input.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "common/encoding.hpp"
#include "protocol_test_util.hpp"
#include "tests/support/result_matchers.hpp"
#include "winrm/messages.hpp"

namespace wincert::winrm {
namespace {

using testutil::read_fixture;
using testutil::shape_of;

RequestContext test_context() {
  RequestContext ctx;
  ctx.to = "http://win01.example.test:5985/wsman";
  ctx.session_id = "uuid:11111111-2222-3333-4444-555555555555";
  return ctx;
}

const std::vector<Selector> kShell{{"ShellId", "4283CBDC-3706-415B-88BD-B385F3E51A53"}};
constexpr std::string_view kCmd = "D644AE56-61E5-4C1A-A135-E599B76B3035";

// A response envelope in the given SOAP prefix, relating to `relates_to`.
std::string response_envelope(std::string_view prefix, std::string_view relates_to, std::string_view body) {
  std::string p(prefix);
  return "<" + p + ":Envelope xmlns:" + p +
         "=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" "
         "xmlns:rsp=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell\"><" +
         p +
         ":Header><a:Action>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse</a:Action>"
         "<a:RelatesTo>" +
         std::string(relates_to) + "</a:RelatesTo></" + p + ":Header><" + p + ":Body>" + std::string(body) + "</" + p +
         ":Body></" + p + ":Envelope>";
}

// ---- builders ----------------------------------------------------------------------------------------------

TEST(Builders, CommonHeader) {
  auto ctx = test_context();
  ctx.operation_timeout = std::chrono::milliseconds(20000);
  auto env = build_receive(ctx, kShell, kCmd);
  EXPECT_EQ(env.message_id.rfind("uuid:", 0), 0u);
  EXPECT_EQ(env.message_id.size(), 5u + 36u);
  pugi::xml_document doc;
  ASSERT_TRUE(xml::parse(doc, env.xml).ok());
  auto root = doc.document_element();
  EXPECT_EQ(std::string(root.name()), "s:Envelope");
  auto header = xml::child(root, ns::kSoap, "Header");
  EXPECT_EQ(xml::text(xml::child(header, ns::kAddressing, "To")), ctx.to);
  auto address = xml::child(xml::child(header, ns::kAddressing, "ReplyTo"), ns::kAddressing, "Address");
  EXPECT_EQ(xml::text(address), ns::kAnonymous);
  EXPECT_EQ(std::string(xml::attribute(address, "mustUnderstand").value()), "true");
  EXPECT_EQ(xml::text(xml::child(header, ns::kAddressing, "MessageID")), env.message_id);
  EXPECT_EQ(xml::text(xml::child(header, ns::kWsman, "MaxEnvelopeSize")), "153600");
  EXPECT_EQ(xml::text(xml::child(header, ns::kWsman, "OperationTimeout")), "PT20.000S");
  auto locale = xml::child(header, ns::kWsman, "Locale");
  EXPECT_EQ(std::string(locale.attribute("xml:lang").value()), "en-US");
  EXPECT_EQ(std::string(xml::attribute(locale, "mustUnderstand").value()), "false");
  EXPECT_TRUE(xml::child(header, ns::kWsmanMs, "DataLocale"));
  EXPECT_EQ(xml::text(xml::child(header, ns::kWsmanMs, "SessionId")), ctx.session_id);
  auto s = shape_of(env.xml);
  EXPECT_EQ(s.options, (std::vector<std::pair<std::string, std::string>>{{"WSMAN_CMDSHELL_OPTION_KEEPALIVE", "TRUE"}}));
  EXPECT_EQ(s.body,
            (std::vector<std::string>{
                "0:" + std::string(ns::kShell) + "|Receive=",
                "1:" + std::string(ns::kShell) + "|DesiredStream@CommandId=" + std::string(kCmd) + "=stdout stderr",
            }));
  // Prefixes as in winrm.md §1.4.
  for (auto prefix : {"xmlns:s", "xmlns:a", "xmlns:w", "xmlns:p", "xmlns:rsp"})
    EXPECT_TRUE(root.attribute(prefix)) << prefix;
  EXPECT_EQ(env.xml.find("<?xml"), std::string::npos);
}

TEST(Builders, MessageIdsAreFresh) {
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) ids.insert(build_delete_shell(test_context(), kShell).message_id);
  EXPECT_EQ(ids.size(), 100u);
}

TEST(Builders, NoSessionIdWhenEmptyAndDurations) {
  RequestContext ctx;
  ctx.to = "https://h:5986/wsman";
  ctx.operation_timeout = std::chrono::milliseconds(1500);
  auto s = shape_of(build_config_get(ctx).xml);
  EXPECT_EQ(std::count(s.header_elements.begin(), s.header_elements.end(), "SessionId"), 0);
  EXPECT_EQ(s.operation_timeout, "PT1.500S");
  EXPECT_EQ(s.resource_uri, ns::kResourceConfig);
  EXPECT_EQ(s.action, action::kGet);
  EXPECT_TRUE(s.body.empty());
  EXPECT_TRUE(s.selectors.empty());
}

TEST(Builders, CreateShellWithEverything) {
  ShellOptions opts;
  opts.working_directory = R"(C:\Temp & "Logs")";
  opts.environment = {{"WINCERT_A", "1 < 2"}, {"PATHEXT", ".PS1"}};
  opts.idle_timeout = std::chrono::seconds(7200);
  opts.no_profile = false;
  opts.codepage = 437;
  auto s = shape_of(build_create_shell(test_context(), opts).xml);
  EXPECT_EQ(s.action, action::kCreate);
  EXPECT_TRUE(s.selectors.empty());
  EXPECT_EQ(s.options, (std::vector<std::pair<std::string, std::string>>{{"WINRS_NOPROFILE", "FALSE"},
                                                                         {"WINRS_CODEPAGE", "437"}}));
  const std::string rsp(ns::kShell);
  EXPECT_EQ(s.body, (std::vector<std::string>{
                        "0:" + rsp + "|Shell=",
                        "1:" + rsp + "|InputStreams=stdin",
                        "1:" + rsp + "|OutputStreams=stdout stderr",
                        "1:" + rsp + R"(|WorkingDirectory=C:\Temp & "Logs")",
                        "1:" + rsp + "|Environment=",
                        "2:" + rsp + "|Variable@Name=PATHEXT=.PS1",
                        "2:" + rsp + "|Variable@Name=WINCERT_A=1 < 2",
                        "1:" + rsp + "|IdleTimeOut=PT7200S",
                    }));
  auto defaults = shape_of(build_create_shell(test_context(), {}).xml);
  EXPECT_EQ(defaults.options, (std::vector<std::pair<std::string, std::string>>{{"WINRS_NOPROFILE", "TRUE"},
                                                                                {"WINRS_CODEPAGE", "65001"}}));
  EXPECT_EQ(defaults.body.size(), 3u);
}

TEST(Builders, CommandArgumentsAreEscapedOnePerElement) {
  std::vector<std::string> args{"-NoProfile", "a&b<c>\"d'", "]]>", "x"};
  auto env = build_command(test_context(), kShell, "powershell.exe", args, true, false);
  auto s = shape_of(env.xml);
  EXPECT_EQ(s.options, (std::vector<std::pair<std::string, std::string>>{{"WINRS_CONSOLEMODE_STDIN", "FALSE"},
                                                                         {"WINRS_SKIP_CMD_SHELL", "TRUE"}}));
  EXPECT_EQ(s.selectors, (std::vector<std::pair<std::string, std::string>>{{"ShellId", kShell[0].value}}));
  const std::string rsp(ns::kShell);
  EXPECT_EQ(s.body, (std::vector<std::string>{
                        "0:" + rsp + "|CommandLine=",
                        "1:" + rsp + "|Command=powershell.exe",
                        "1:" + rsp + "|Arguments=-NoProfile",
                        "1:" + rsp + "|Arguments=a&b<c>\"d'",
                        "1:" + rsp + "|Arguments=]]>",
                        "1:" + rsp + "|Arguments=x",
                    }));
  EXPECT_EQ(env.xml.find("a&b"), std::string::npos) << "must be escaped on the wire";
}

TEST(Builders, SendSignalDelete) {
  auto send = shape_of(build_send(test_context(), kShell, kCmd, std::string("\0\xff payload", 10), true).xml);
  const std::string rsp(ns::kShell);
  EXPECT_EQ(send.action, action::kSend);
  EXPECT_EQ(send.body, (std::vector<std::string>{
                           "0:" + rsp + "|Send=",
                           "1:" + rsp + "|Stream@CommandId=" + std::string(kCmd) +
                               "@End=true@Name=stdin=" + base64_encode(std::string("\0\xff payload", 10)),
                       }));
  auto more = shape_of(build_send(test_context(), kShell, kCmd, "abc", false).xml);
  EXPECT_EQ(more.body[1], "1:" + rsp + "|Stream@CommandId=" + std::string(kCmd) + "@Name=stdin=YWJj");

  auto signal = shape_of(build_signal(test_context(), kShell, kCmd, action::kSignalTerminate).xml);
  EXPECT_EQ(signal.action, action::kSignal);
  EXPECT_EQ(signal.body, (std::vector<std::string>{
                             "0:" + rsp + "|Signal@CommandId=" + std::string(kCmd) + "=",
                             "1:" + rsp + "|Code=" + std::string(action::kSignalTerminate),
                         }));
  auto del = shape_of(build_delete_shell(test_context(), kShell).xml);
  EXPECT_EQ(del.action, action::kDelete);
  EXPECT_TRUE(del.body.empty());
  EXPECT_TRUE(del.options.empty());
  EXPECT_EQ(del.selectors.size(), 1u);
}

TEST(Builders, SendChunkCapacityKeepsEnvelopesUnderTheLimit) {
  RequestContext ctx = test_context();
  ctx.to = "https://" + std::string(200, 'w') + ".example.test:5986/wsman";
  for (std::size_t limit : {153600u, 512000u, 8192u}) {
    std::size_t cap = send_chunk_capacity(limit);
    ASSERT_GT(cap, 0u) << limit;
    std::string data(cap, 'x');
    auto env = build_send(ctx, kShell, kCmd, data, true);
    EXPECT_LE(env.xml.size(), limit);
    EXPECT_GT(env.xml.size(), limit - 1024) << "capacity should not waste much of the envelope";
  }
  // pypsrp's figure for the default 150 KiB server limit is about 114 KiB of raw bytes.
  EXPECT_GT(send_chunk_capacity(153600), 110000u);
  EXPECT_EQ(send_chunk_capacity(500), 0u);
  EXPECT_EQ(send_chunk_capacity(0), 0u);
}

// ---- WinRb fixtures ----------------------------------------------------------------------------------------

TEST(WinRbFixtures, OpenShellV1KeepsUuidPrefix) {
  auto r = parse_response(read_fixture("winrb/open_shell_v1.xml"), "uuid:EEF803CE-B9A6-48C1-BF00-90C6F077EC2A");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->action, action::kCreateResponse);
  EXPECT_FALSE(r->fault);
  auto shell = parse_create_shell(*r);
  ASSERT_TRUE(shell.ok()) << shell.error().message;
  EXPECT_EQ(shell->shell_id, "uuid:739990FF-1492-4CDD-80BB-6E07ADB06D85");
  ASSERT_EQ(shell->selectors.size(), 1u);
  EXPECT_EQ(shell->selectors[0].name, "ShellId");
  EXPECT_EQ(shell->selectors[0].value, shell->shell_id);
}

TEST(WinRbFixtures, OpenShellV2AndRelatesToCaseInsensitive) {
  auto xml = read_fixture("winrb/open_shell_v2.xml");
  for (auto id : {"uuid:EA2A7785-D8E6-4E28-8AD8-FC27156537B3", "uuid:ea2a7785-d8e6-4e28-8ad8-fc27156537b3",
                  "EA2A7785-D8E6-4E28-8AD8-FC27156537B3", "UUID:ea2a7785-D8E6-4E28-8AD8-FC27156537B3"}) {
    auto r = parse_response(xml, id);
    ASSERT_TRUE(r.ok()) << id << ": " << r.error().message;
    auto shell = parse_create_shell(*r);
    ASSERT_TRUE(shell.ok());
    EXPECT_EQ(shell->shell_id, "62DE33F0-8674-43D9-B6A5-3298012CC4CD");
  }
  auto wrong = parse_response(xml, "uuid:EA2A7785-D8E6-4E28-8AD8-FC27156537B4");
  ASSERT_FALSE(wrong.ok());
  EXPECT_THAT(wrong, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(wrong.error().message.find("EA2A7785-D8E6-4E28-8AD8-FC27156537B4"), std::string::npos);
}

TEST(WinRbFixtures, SoapFaultV1NestedProviderFault) {
  auto r = parse_response(read_fixture("winrb/soap_fault_v1.xml"), "uuid:B90EC4BB-4484-4ADA-920B-019517747915");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->fault);
  const auto& f = *r->fault;
  EXPECT_EQ(f.code, "s:Sender");
  EXPECT_EQ(f.subcode, "n:CannotProcessFilter");
  EXPECT_EQ(f.reason,
            "The data source could not process the filter. The filter might be missing or it might be invalid. "
            "Change the filter and try the request again.");
  EXPECT_EQ(f.wsman_code, 2150858778UL);
  EXPECT_EQ(f.machine, "");
  EXPECT_EQ(f.message, "The specified class does not exist in the given namespace.");
  EXPECT_EQ(f.provider, "WMIv1 plugin for Windows Remote Management");
  EXPECT_EQ(f.provider_path, R"(%systemroot%\system32\WsmWmiPl.dll)");
  EXPECT_EQ(
      f.summary(),
      "WSMan fault 2150858778 (n:CannotProcessFilter): The specified class does not exist in the given namespace.");
  EXPECT_FALSE(f.is_operation_timeout());
  EXPECT_FALSE(f.is_shell_gone());
  EXPECT_THAT(f.to_error(), ErrorWith(ErrorCode::kFailedPrecondition, wincert::WsmanFault("n:CannotProcessFilter")));
  EXPECT_FALSE(f.to_error().retryable());
  auto typed = parse_create_shell(*r);
  EXPECT_THAT(typed, ErrorWith(ErrorCode::kFailedPrecondition, wincert::WsmanFault("n:CannotProcessFilter")));
  EXPECT_EQ(typed.error().message, "Create shell: " + f.summary());
}

TEST(WinRbFixtures, SoapFaultV2LeavesOutExtendedError) {
  auto r = parse_response(read_fixture("winrb/soap_fault_v2.xml"), "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->fault);
  EXPECT_EQ(r->fault->message, "The specified class does not exist in the given namespace.");
  EXPECT_EQ(r->fault->machine, "localhost");
  EXPECT_EQ(r->fault->provider, "WMI Provider");
  EXPECT_EQ(r->fault->wsman_code, 2150858778UL);
}

TEST(WinRbFixtures, WmiErrorQuota) {
  auto xml = read_fixture("winrb/wmi_error_v2.xml");
  auto r = parse_response(xml, "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->fault);
  const auto& f = *r->fault;
  EXPECT_EQ(f.subcode, "w:QuotaLimit");
  EXPECT_EQ(f.wsman_code, 0u);
  EXPECT_EQ(f.wmi_error_code, 2150859173UL);
  EXPECT_TRUE(f.is_quota());
  // A quota: transient (shells close, the quota frees up), with the fault subcode as detail.
  EXPECT_THAT(f.to_error(), ErrorWith(ErrorCode::kResourceExhausted, wincert::WsmanFault("w:QuotaLimit")));
  EXPECT_THAT(f.to_error(), IsRetryable());
  EXPECT_EQ(f.message.rfind("The WS-Management service cannot process the request. This user is allowed a maximum "
                            "number of 30 concurrent shells",
                            0),
            0u);
  EXPECT_EQ(f.summary().rfind("WSMan fault 2150859173 (w:QuotaLimit): ", 0), 0u) << f.summary();
  // This fault has no RelatesTo: when it answers a request of ours its text is not trusted (issue 12: an
  // injected fault must not pass as the host's answer) and stays out of the error; as Windows sends it for a
  // real quota, the error is transient (retried within the job's policy), as the quota itself would be.
  auto with_id = parse_response(xml, "uuid:B8829021-0000-0000-0000-000000000000");
  EXPECT_THAT(with_id, HasCode(ErrorCode::kUnavailable));
  EXPECT_THAT(with_id, IsRetryable());
  EXPECT_TRUE(with_id.error().detail.wsman_fault.empty());
  EXPECT_EQ(with_id.error().message.find("concurrent shells"), std::string::npos) << with_id.error().message;
}

// A fault answering another request (or none) is refused; one echoing our MessageID is the host's answer.
TEST(Faults, OnlyAFaultNamingOurRequestIsAccepted) {
  const std::string fault_body =
      "<s:Fault><s:Code><s:Value>s:Receiver</s:Value></s:Code><s:Reason><s:Text xml:lang=\"en-US\">INJECTED "
      "TEXT</s:Text></s:Reason></s:Fault>";
  auto ours = parse_response(response_envelope("s", "uuid:AAAA0000-0000-0000-0000-000000000001", fault_body),
                             "uuid:AAAA0000-0000-0000-0000-000000000001");
  ASSERT_TRUE(ours.ok()) << ours.error().message;
  EXPECT_TRUE(ours->fault);
  auto other = parse_response(response_envelope("s", "uuid:BBBB0000-0000-0000-0000-000000000002", fault_body),
                              "uuid:AAAA0000-0000-0000-0000-000000000001");
  EXPECT_THAT(other, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_EQ(other.error().message.find("INJECTED"), std::string::npos);
}

// Each kind of fault's code and detail: what the agent acts on (retry, redo on a new shell, give up).
TEST(Faults, CodesAndDetail) {
  auto fault = [](std::string subcode, unsigned long wsman_code) {
    WsmanFault f;
    f.code = "s:Receiver";
    f.subcode = std::move(subcode);
    f.wsman_code = wsman_code;
    f.reason = "reason";
    return f.to_error();
  };
  EXPECT_THAT(fault("w:TimedOut", 2150858793UL),
              ErrorWith(ErrorCode::kDeadlineExceeded, wincert::WsmanFault("w:TimedOut")));
  EXPECT_THAT(fault("w:QuotaLimit", 0), ErrorWith(ErrorCode::kResourceExhausted, wincert::WsmanFault("w:QuotaLimit")));
  EXPECT_THAT(fault("", 2150859174UL), ErrorWith(ErrorCode::kResourceExhausted, wincert::WsmanFault("2150859174")));
  EXPECT_THAT(fault("w:InvalidSelectors", 2150858843UL),
              ErrorWith(ErrorCode::kAborted, wincert::WsmanFault("w:InvalidSelectors")));
  EXPECT_THAT(fault("w:AccessDenied", 5),
              ErrorWith(ErrorCode::kPermissionDenied, wincert::WsmanFault("w:AccessDenied")));
  EXPECT_THAT(fault("", 5), ErrorWith(ErrorCode::kPermissionDenied, wincert::WsmanFault("5")));
  EXPECT_THAT(fault("w:EncodingLimit", 2150858817UL),
              ErrorWith(ErrorCode::kInvalidArgument, wincert::WsmanFault("w:EncodingLimit")));
  EXPECT_THAT(fault("w:InternalError", 2150858778UL),
              ErrorWith(ErrorCode::kFailedPrecondition, wincert::WsmanFault("w:InternalError")));
  // No subcode and no WSManFault: the SOAP code is all there is.
  EXPECT_THAT(fault("", 0), ErrorWith(ErrorCode::kFailedPrecondition, wincert::WsmanFault("s:Receiver")));
  for (const char* transient : {"w:TimedOut", "w:QuotaLimit", "w:InvalidSelectors"}) {
    EXPECT_THAT(fault(transient, 0), IsRetryable()) << transient;
  }
}

// ---- prefixes, padding, OMI --------------------------------------------------------------------------------

TEST(Responses, AnySoapPrefixWorks) {
  const std::string body = "<rsp:ReceiveResponse><rsp:Stream Name=\"stdout\" CommandId=\"" + std::string(kCmd) +
                           "\">aGk=</rsp:Stream><rsp:CommandState CommandId=\"" + std::string(kCmd) +
                           "\" "
                           "State=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/"
                           "Done\"><rsp:ExitCode>3</rsp:ExitCode>"
                           "</rsp:CommandState></rsp:ReceiveResponse>";
  for (auto prefix : {"s", "env", "SOAP-ENV"}) {
    auto r = parse_response(response_envelope(prefix, "uuid:ABC", body), "uuid:abc");
    ASSERT_TRUE(r.ok()) << prefix << ": " << r.error().message;
    auto out = parse_receive(*r, kCmd);
    ASSERT_TRUE(out.ok()) << prefix << ": " << out.error().message;
    EXPECT_EQ(out->stdout_data, "hi");
    EXPECT_EQ(out->exit_code, 3);
  }
}

TEST(Responses, WhitespacePaddedValuesAndOmiDoneWithoutExitCode) {
  const std::string create_body =
      "<x:ResourceCreated xmlns:x=\"http://schemas.xmlsoap.org/ws/2004/09/transfer\" "
      "xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\"><a:ReferenceParameters><w:SelectorSet>\n"
      "  <w:Selector Name=\"ShellId\">\n    0F1E2D3C-0000-1111-2222-333344445555\n  </w:Selector>\n"
      "</w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>";
  auto created = parse_response(response_envelope("SOAP-ENV", "\n uuid:1 \n", create_body), "uuid:1");
  ASSERT_TRUE(created.ok()) << created.error().message;
  auto shell = parse_create_shell(*created);
  ASSERT_TRUE(shell.ok());
  EXPECT_EQ(shell->shell_id, "0F1E2D3C-0000-1111-2222-333344445555");

  const std::string command_body =
      "<rsp:CommandResponse><rsp:CommandId>\n  ABCD  \n</rsp:CommandId></rsp:CommandResponse>";
  auto cmd = parse_command_id(*parse_response(response_envelope("s", "uuid:1", command_body), "uuid:1"));
  ASSERT_TRUE(cmd.ok());
  EXPECT_EQ(*cmd, "ABCD");

  // OMI: Done without CommandId and without ExitCode; padded base64 and state.
  const std::string receive_body =
      "<rsp:ReceiveResponse><rsp:Stream Name=\"stdout\" CommandId=\"ABCD\">\n  aGk=\n</rsp:Stream>"
      "<rsp:Stream Name=\"stdout\" CommandId=\"ABCD\" End=\"true\"></rsp:Stream>"
      "<rsp:CommandState State=\"\n http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done \n\"/>"
      "</rsp:ReceiveResponse>";
  auto out = parse_receive(*parse_response(response_envelope("s", "uuid:1", receive_body), "uuid:1"), "abcd");
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->stdout_data, "hi");
  EXPECT_TRUE(out->stdout_end);
  EXPECT_TRUE(out->done);
  EXPECT_FALSE(out->exit_code.has_value());
}

TEST(Responses, ReceiveDetails) {
  auto receive = [](const std::string& body) {
    return parse_receive(*parse_response(response_envelope("s", "uuid:1", body), ""), kCmd);
  };
  // Chunks of another command are not ours; chunks split a multibyte character.
  auto out = receive(
      "<rsp:ReceiveResponse>"
      "<rsp:Stream Name=\"stdout\" CommandId=\"" +
      std::string(kCmd) +
      "\">4w==</rsp:Stream>"
      "<rsp:Stream Name=\"stdout\" CommandId=\"OTHER\">eHh4</rsp:Stream>"
      "<rsp:Stream Name=\"stderr\" CommandId=\"" +
      std::string(kCmd) +
      "\">ZQ==</rsp:Stream>"
      "<rsp:Stream Name=\"stdout\" CommandId=\"" +
      std::string(kCmd) +
      "\">gZM=</rsp:Stream>"
      "<rsp:Stream Name=\"pr\" CommandId=\"" +
      std::string(kCmd) +
      "\">eHh4</rsp:Stream>"
      "<rsp:CommandState CommandId=\"" +
      std::string(kCmd) +
      "\" State=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done\">"
      "<rsp:ExitCode>4294967295</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>");
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->stdout_data, "\xe3\x81\x93");
  EXPECT_EQ(out->stderr_data, "e");
  EXPECT_EQ(out->exit_code, -1);  // DWORD 0xFFFFFFFF

  auto bad64 =
      receive("<rsp:ReceiveResponse><rsp:Stream Name=\"stdout\">not base64!</rsp:Stream></rsp:ReceiveResponse>");
  EXPECT_THAT(bad64, HasCode(ErrorCode::kInvalidArgument));

  auto bad_code = receive("<rsp:ReceiveResponse><rsp:CommandState State=\"" + std::string(action::kStateDone) +
                          "\"><rsp:ExitCode>zero</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>");
  EXPECT_THAT(bad_code, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(bad_code.error().message.find("'zero'"), std::string::npos);  // names the bad value

  auto not_receive = receive("<rsp:CommandResponse/>");
  EXPECT_THAT(not_receive, HasCode(ErrorCode::kInvalidArgument));

  auto no_id = parse_command_id(*parse_response(response_envelope("s", "uuid:1", "<rsp:CommandResponse/>"), ""));
  EXPECT_THAT(no_id, HasCode(ErrorCode::kInvalidArgument));

  auto no_shell = parse_create_shell(*parse_response(response_envelope("s", "uuid:1", "<rsp:Nothing/>"), ""));
  EXPECT_THAT(no_shell, HasCode(ErrorCode::kInvalidArgument));
}

TEST(Responses, FaultSummaryFormats) {
  WsmanFault f;
  f.code = "s:Receiver";
  f.reason = "Something\n   broke ";
  EXPECT_EQ(f.summary(), "WSMan fault (s:Receiver): Something broke");
  f.subcode = "w:InternalError";
  f.wsman_code = 5;
  f.message = "Access is denied.";
  f.machine = "win01";
  EXPECT_EQ(f.summary(), "WSMan fault 5 (w:InternalError): Access is denied. [machine win01]");
  EXPECT_EQ(f.summary().find('\n'), std::string::npos);
}

// ---- hostile input -----------------------------------------------------------------------------------------

TEST(HostileInput, MalformedAndTruncated) {
  auto good = read_fixture("winrb/open_shell_v2.xml");
  for (std::size_t cut : {std::size_t{0}, std::size_t{1}, std::size_t{30}, good.size() / 2, good.size() - 15}) {
    auto r = parse_response(good.substr(0, cut), "");
    ASSERT_FALSE(r.ok()) << cut;
    EXPECT_THAT(r, HasCode(ErrorCode::kInvalidArgument)) << cut;
    EXPECT_FALSE(r.error().message.empty());
  }
  auto unclosed = parse_response("<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body>", "");
  EXPECT_THAT(unclosed, HasCode(ErrorCode::kInvalidArgument));

  auto no_body =
      parse_response("<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Header/></s:Envelope>", "");
  EXPECT_THAT(no_body, HasCode(ErrorCode::kInvalidArgument));

  auto not_soap = parse_response("<html><body>Service Unavailable</body></html>", "");
  EXPECT_THAT(not_soap, HasCode(ErrorCode::kInvalidArgument));

  auto soap11 =
      parse_response("<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body/></s:Envelope>", "");
  EXPECT_THAT(soap11, HasCode(ErrorCode::kInvalidArgument));

  std::string without_relates_to = response_envelope("s", "uuid:1", "<rsp:X/>");
  auto begin = without_relates_to.find("<a:RelatesTo>");
  auto end = without_relates_to.find("</a:RelatesTo>") + std::string_view("</a:RelatesTo>").size();
  without_relates_to.erase(begin, end - begin);
  auto no_relates = parse_response(without_relates_to, "uuid:1");
  EXPECT_THAT(no_relates, HasCode(ErrorCode::kInvalidArgument));
}

TEST(HostileInput, DoctypeEntitiesAreRefused) {
  const std::string laughs =
      "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;\">"
      "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>"
      "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body>&lol3;</s:Body></s:Envelope>";
  const std::string xxe =
      "<?xml version=\"1.0\"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>"
      "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body>&xxe;</s:Body></s:Envelope>";
  for (const auto& doc : {laughs, xxe}) {
    auto r = parse_response(doc, "");
    EXPECT_THAT(r, HasCode(ErrorCode::kInvalidArgument));
    EXPECT_NE(r.error().message.find("DOCTYPE"), std::string::npos) << r.error().message;
  }
}

TEST(HostileInput, FiftyMegabyteBodyIsRejectedBySize) {
  std::string big = response_envelope("s", "uuid:1", "<rsp:ReceiveResponse><rsp:Stream Name=\"stdout\">");
  big.insert(big.find("</s:Body>"), std::string(50u * 1024 * 1024, 'A'));
  auto r = parse_response(big, "uuid:1");
  EXPECT_THAT(r, HasCode(ErrorCode::kInvalidArgument));  // over a limit: malformed, retrying will not help
  EXPECT_NE(r.error().message.find("exceeds the limit"), std::string::npos) << r.error().message;
}

TEST(HostileInput, DeepNestingIsAnError) {
  std::string body;
  for (int i = 0; i < 5000; ++i) body += "<rsp:a>";
  for (int i = 0; i < 5000; ++i) body += "</rsp:a>";
  auto r = parse_response(response_envelope("s", "uuid:1", body), "uuid:1");
  EXPECT_THAT(r, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(r.error().message.find("nested"), std::string::npos);
}

// Random bytes and mutated real responses: always a clean result, never a crash.
TEST(HostileInput, GarbageAndMutationsNeverCrash) {
  std::mt19937 rng(12345);
  std::vector<std::string> seeds{read_fixture("winrb/open_shell_v1.xml"), read_fixture("winrb/soap_fault_v1.xml"),
                                 read_fixture("winrb/wmi_error_v2.xml")};
  int parsed_ok = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string input;
    if (i % 3 == 0) {
      std::uniform_int_distribution<int> len(0, 512), byte(0, 255);
      input.resize(static_cast<std::size_t>(len(rng)));
      for (auto& c : input) c = static_cast<char>(byte(rng));
    } else {
      input = seeds[static_cast<std::size_t>(i) % seeds.size()];
      std::uniform_int_distribution<std::size_t> pos(0, input.size() - 1);
      std::uniform_int_distribution<int> byte(0, 255), edits(1, 8);
      for (int e = edits(rng); e > 0; --e) input[pos(rng)] = static_cast<char>(byte(rng));
    }
    auto r = parse_response(input, i % 2 ? "" : "uuid:EEF803CE-B9A6-48C1-BF00-90C6F077EC2A");
    if (!r.ok()) {
      EXPECT_FALSE(r.error().message.empty());
      continue;
    }
    ++parsed_ok;
    (void)parse_create_shell(*r);
    (void)parse_command_id(*r);
    (void)parse_receive(*r, "");
    (void)parse_config(*r);
    if (r->fault) (void)r->fault->summary();
  }
  EXPECT_GT(parsed_ok, 0);
}

}  // namespace
}  // namespace wincert::winrm
