// WinrsSession against a scripted WinRS server: the recovery paths a real host triggers rarely
// (HTTP 400 for a disconnected shell, quota faults, failing Receives, a refused config Get).
#include <gtest/gtest.h>

#include <mutex>

#include "client_test_util.hpp"
#include "tests/support/result_matchers.hpp"
#include "winrm/winrs.hpp"

namespace wincert::winrm {
namespace {

using namespace std::chrono_literals;
using test::ScriptedServer;
using test::SeenRequest;
using tcp = boost::asio::ip::tcp;
namespace net = boost::asio;

std::string short_action(const std::string& body) {
  std::smatch m;
  static const std::regex re("Action[^>]*>[^<]*/([A-Za-z]+)</");
  return std::regex_search(body, m, re) ? m[1].str() : std::string();
}

// A fake host: answers each action with a well-formed response unless `override_reply` takes over.
struct FakeHost {
  struct Reply {
    int status = 200;
    std::string body;
  };
  std::function<std::optional<Reply>(const std::string& action, int nth, const SeenRequest&)> override_reply;
  std::mutex mutex;
  std::vector<std::string> actions;
  int shells = 0;

  Reply answer(const SeenRequest& req) {
    const std::string action = short_action(req.body);
    int nth = 0;
    {
      std::lock_guard lock(mutex);
      for (const auto& a : actions) nth += a == action ? 1 : 0;
      actions.push_back(action);
    }
    if (override_reply) {
      if (auto r = override_reply(action, nth, req)) return *r;
    }
    const std::string id = req.message_id();
    const std::string base = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/";
    if (action == "Get") return {500, test::fault_reply(id, 5, "w:AccessDenied", "Access is denied.")};
    if (action == "Create") {
      const std::string shell_id = "SHELL-" + std::to_string(++shells);
      return {
          200,
          test::soap_reply(
              id, "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse",
              "<x:ResourceCreated xmlns:x=\"http://schemas.xmlsoap.org/ws/2004/09/transfer\"><a:Address>x</a:Address>"
              "<a:ReferenceParameters><w:SelectorSet><w:Selector Name=\"ShellId\">" +
                  shell_id +
                  "</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>"
                  "<rsp:Shell><rsp:ShellId>" +
                  shell_id + "</rsp:ShellId></rsp:Shell>")};
    }
    if (action == "Command") {
      return {200, test::soap_reply(id, base + "CommandResponse",
                                    "<rsp:CommandResponse><rsp:CommandId>CMD-1</rsp:CommandId></rsp:CommandResponse>")};
    }
    if (action == "Receive") {
      return {200, test::soap_reply(
                       id, base + "ReceiveResponse",
                       "<rsp:ReceiveResponse><rsp:Stream Name=\"stdout\" CommandId=\"CMD-1\">b2sNCg==</rsp:Stream>"
                       "<rsp:Stream Name=\"stdout\" CommandId=\"CMD-1\" End=\"true\"/>"
                       "<rsp:CommandState CommandId=\"CMD-1\" State=\"" +
                           base +
                           "CommandState/Done\"><rsp:ExitCode>0</rsp:ExitCode></rsp:CommandState>"
                           "</rsp:ReceiveResponse>")};
    }
    if (action == "Signal") return {200, test::soap_reply(id, base + "SignalResponse", "<rsp:SignalResponse/>")};
    if (action == "Delete") {
      return {200, test::soap_reply(id, "http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse", "")};
    }
    return {500, test::fault_reply(id, 2150858817UL, "w:SchemaValidationError", "unexpected")};
  }

  ScriptedServer::PlainHandler handler() {
    return [this](tcp::socket& socket, int) {
      net::streambuf buffer;
      while (auto req = test::read_request(socket, buffer)) {
        Reply reply = answer(*req);
        if (!test::write_all(socket,
                             test::http_response(reply.status, reply.body,
                                                 reply.body.empty() ? "" : "application/soap+xml;charset=UTF-8"))) {
          return;
        }
      }
    };
  }
  std::vector<std::string> seen() {
    std::lock_guard lock(mutex);
    return actions;
  }
};

struct SessionFixture : ::testing::Test {
  net::io_context io;
  FakeHost host;
  std::unique_ptr<ScriptedServer> server;
  std::unique_ptr<WsmanTransport> transport;

  void start() {
    server = std::make_unique<ScriptedServer>(host.handler());
    auto endpoint = parse_endpoint(server->url());
    auto created = WsmanTransport::create(io.get_executor(), *endpoint, nullptr);
    ASSERT_TRUE(created.ok());
    transport = std::move(*created);
  }
  template <typename T>
  T run(net::awaitable<T> work) {
    return test::run_coro(io, std::move(work));
  }
};

CommandSpec echo_ok() {
  CommandSpec spec;
  spec.command = "cmd.exe";
  spec.arguments = {"/c", "echo ok"};
  return spec;
}

using Actions = std::vector<std::string>;

TEST_F(SessionFixture, ConfigGetFailureFallsBackTo150KB) {
  start();
  WinrsSession session(*transport);
  auto out = run(session.run(echo_ok()));
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->stdout_data, "ok\r\n");
  EXPECT_EQ(session.envelope_size(), 150u * 1024);
  EXPECT_EQ(host.seen(), (Actions{"Get", "Create", "Command", "Receive", "Signal"}));
}

TEST_F(SessionFixture, Http400OnCommandReopensTheShellOnce) {
  host.override_reply = [](const std::string& action, int nth, const SeenRequest&) -> std::optional<FakeHost::Reply> {
    if (action == "Command" && nth == 1) return FakeHost::Reply{400, ""};  // the 2nd command: shell went idle
    return std::nullopt;
  };
  start();
  SessionOptions options;
  options.max_envelope_size = 153600;
  WinrsSession session(*transport, options);
  ASSERT_TRUE(run(session.run(echo_ok())).ok());
  auto out = run(session.run(echo_ok()));
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(session.counters().shells_created, 2u);
  EXPECT_EQ(session.shell_id(), "SHELL-2");
  EXPECT_EQ(host.seen(),
            (Actions{"Create", "Command", "Receive", "Signal", "Command", "Create", "Command", "Receive", "Signal"}));
}

TEST_F(SessionFixture, ShellGoneTwiceIsAnErrorNotALoop) {
  host.override_reply = [](const std::string& action, int, const SeenRequest& req) -> std::optional<FakeHost::Reply> {
    if (action == "Command") {
      return FakeHost::Reply{500, test::fault_reply(req.message_id(), 2150858843UL, "w:InvalidSelectors", "gone")};
    }
    return std::nullopt;
  };
  start();
  SessionOptions options;
  options.max_envelope_size = 153600;
  WinrsSession session(*transport, options);
  auto out = run(session.run(echo_ok()));
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(out.error().message.starts_with("Command on 127.0.0.1:" + std::to_string(server->port()) +
                                              ": WSMan fault 2150858843 (w:InvalidSelectors): gone"))
      << out.error().message;
  // A lost shell: redo the step on a new one (transient), with the fault subcode and HTTP status as detail.
  EXPECT_THAT(
      out, ErrorWith(ErrorCode::kAborted, testing::AllOf(wincert::WsmanFault("w:InvalidSelectors"), HttpStatus(500))));
  EXPECT_THAT(out, IsRetryable());
  EXPECT_EQ(host.seen(), (Actions{"Create", "Command", "Create", "Command"}));
}

TEST_F(SessionFixture, QuotaFaultTwiceIsResourceExhausted) {
  host.override_reply = [](const std::string& action, int, const SeenRequest& req) -> std::optional<FakeHost::Reply> {
    if (action == "Command") {
      return FakeHost::Reply{500, test::fault_reply(req.message_id(), 2150859174UL, "w:QuotaLimit", "quota")};
    }
    return std::nullopt;
  };
  start();
  SessionOptions options;
  options.max_envelope_size = 153600;
  WinrsSession session(*transport, options);
  auto out = run(session.run(echo_ok()));
  EXPECT_THAT(out, ErrorWith(ErrorCode::kResourceExhausted, wincert::WsmanFault("w:QuotaLimit")));
  EXPECT_THAT(out, IsRetryable());
  EXPECT_EQ(host.seen(), (Actions{"Create", "Command", "Delete", "Create", "Command"}));
}

TEST_F(SessionFixture, AccessDeniedFaultIsPermissionDenied) {
  host.override_reply = [](const std::string& action, int, const SeenRequest& req) -> std::optional<FakeHost::Reply> {
    if (action == "Create") {
      return FakeHost::Reply{500, test::fault_reply(req.message_id(), 5UL, "w:AccessDenied", "Access is denied.")};
    }
    return std::nullopt;
  };
  start();
  SessionOptions options;
  options.max_envelope_size = 153600;
  WinrsSession session(*transport, options);
  auto out = run(session.run(echo_ok()));
  EXPECT_THAT(out, ErrorWith(ErrorCode::kPermissionDenied, wincert::WsmanFault("w:AccessDenied")));
  EXPECT_FALSE(out.error().retryable());
  EXPECT_EQ(host.seen(), (Actions{"Create"}));
}

TEST_F(SessionFixture, QuotaFaultDeletesTheOldShellAndReopens) {
  host.override_reply = [](const std::string& action, int nth,
                           const SeenRequest& req) -> std::optional<FakeHost::Reply> {
    if (action == "Command" && nth == 0) {
      return FakeHost::Reply{500, test::fault_reply(req.message_id(), 2150859174UL, "w:QuotaLimit", "quota")};
    }
    return std::nullopt;
  };
  start();
  SessionOptions options;
  options.max_envelope_size = 153600;
  WinrsSession session(*transport, options);
  auto out = run(session.run(echo_ok()));
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(host.seen(), (Actions{"Create", "Command", "Delete", "Create", "Command", "Receive", "Signal"}));
}

TEST_F(SessionFixture, SignalIsSentAfterAFailedReceive) {
  host.override_reply = [](const std::string& action, int, const SeenRequest& req) -> std::optional<FakeHost::Reply> {
    if (action == "Receive") {
      return FakeHost::Reply{500, test::fault_reply(req.message_id(), 2150858817UL, "w:SchemaValidationError",
                                                    "The SOAP XML in the message does not match the schema.")};
    }
    return std::nullopt;
  };
  start();
  SessionOptions options;
  options.max_envelope_size = 153600;
  WinrsSession session(*transport, options);
  auto out = run(session.run(echo_ok()));
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message.find("Receive on 127.0.0.1"), std::string::npos) << out.error().message;
  EXPECT_THAT(out, ErrorWith(ErrorCode::kInvalidArgument, wincert::WsmanFault("w:SchemaValidationError")));
  EXPECT_EQ(host.seen(), (Actions{"Create", "Command", "Receive", "Signal"}));
}

TEST_F(SessionFixture, GarbageStreamIsAnErrorAndStillSignals) {
  host.override_reply = [](const std::string& action, int, const SeenRequest& req) -> std::optional<FakeHost::Reply> {
    if (action == "Receive") {
      return FakeHost::Reply{
          200,
          test::soap_reply(req.message_id(), "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse",
                           "<rsp:ReceiveResponse><rsp:Stream Name=\"stdout\" CommandId=\"CMD-1\">"
                           "!!not base64!!</rsp:Stream></rsp:ReceiveResponse>")};
    }
    return std::nullopt;
  };
  start();
  SessionOptions options;
  options.max_envelope_size = 153600;
  WinrsSession session(*transport, options);
  auto out = run(session.run(echo_ok()));
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_EQ(host.seen().back(), "Signal");
}

TEST_F(SessionFixture, ReadTimeoutIsRaisedAboveOperationTimeout) {
  start();
  SessionOptions options;
  options.operation_timeout = 90s;
  WinrsSession session(*transport, options);
  EXPECT_GT(transport->options().exchange.read_timeout, 90s);
}

}  // namespace
}  // namespace wincert::winrm
