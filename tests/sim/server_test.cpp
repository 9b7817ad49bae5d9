// winhost-sim over real HTTP on loopback, driven by raw requests: the recorded pypsrp requests
// (fixtures/winrm/pypsrp) against the live simulated host and in replay mode, plus the protocol edges.
#include <gtest/gtest.h>

#include <yaml-cpp/yaml.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <sys/socket.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <future>
#include <iterator>
#include <sstream>
#include <thread>

#include "common/encoding.hpp"
#include "sim/winhost/replay.hpp"
#include "sim/winhost/server.hpp"
#include "sim/winhost/windows_model.hpp"
#include "sim/winhost/winrs_service.hpp"
#include "winrm/namespaces.hpp"
#include "winrm/powershell_bootstrap.hpp"
#include "winrm/xml.hpp"

namespace wincert::sim {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace x = winrm::xml;
namespace ns = winrm::ns;
using tcp = net::ip::tcp;

const std::string kFixtures = std::string(WINCERT_SHARED_DIR) + "/fixtures/winrm/pypsrp/";

struct Recorded {
  std::string request, response;
  unsigned status = 200;
};

std::vector<Recorded> load_transcript(const std::string& name) {
  std::vector<Recorded> out;
  YAML::Node root = YAML::LoadFile(kFixtures + name);
  for (const auto& m : root["messages"]) {
    Recorded r{m["request"].as<std::string>(), m["response"].as<std::string>(), 200};
    if (m["transport_error"]) r.status = m["transport_error"]["code"].as<unsigned>();
    out.push_back(std::move(r));
  }
  return out;
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  for (auto p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
}

// ---- the simulator, in-process on its own io_context thread

struct HarnessOptions {
  WinrsOptions winrs;
  bool allow_unencrypted = true;
  std::string replay;
  std::size_t max_envelope_bytes = 500 * 1024;
  std::string status_file;
};

class SimHarness {
 public:
  explicit SimHarness(HarnessOptions o = {}) {
    if (!o.replay.empty()) {
      auto r = ReplayHandler::load(o.replay, stats_);
      if (!r) throw std::runtime_error(r.error().message);
      handler_ = std::move(r.value());
    } else {
      handler_ = std::make_unique<WinrsService>(ioc_, model_, stats_, o.winrs);
    }
    auto users = std::make_shared<UserDatabase>();
    users->add("", "vagrant", "Passw0rd!");
    users->add("DOMAIN", "alice", "secret");
    BasicAuthOptions ao;
    ao.allow_unencrypted = o.allow_unencrypted;
    ao.accept_any = !o.replay.empty();
    ServerOptions so;
    so.port = 0;
    so.max_envelope_bytes = o.max_envelope_bytes;
    so.status_file = o.status_file;
    server_ = std::make_unique<Server>(ioc_, so, make_basic_authenticator(users, ao), *handler_, stats_);
    auto p = server_->start();
    if (!p) throw std::runtime_error(p.error().message);
    port = *p;
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~SimHarness() {
    net::post(ioc_, [this] {
      server_->stop();
      handler_->shutdown();
      ioc_.stop();
    });
    thread_.join();
  }
  Stats stats() {
    std::promise<Stats> p;
    net::post(ioc_, [&] { p.set_value(stats_); });
    return p.get_future().get();
  }
  unsigned short port = 0;

 private:
  Stats stats_;  // outlives the io_context (sessions count themselves out when it is destroyed)
  net::io_context ioc_{1};
  WindowsModel model_;
  std::unique_ptr<WsmanHandler> handler_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

// ---- a raw HTTP/1.1 client (keep-alive), generous socket timeouts

struct Reply {
  unsigned status = 0;
  std::string body;
  std::vector<std::string> www_authenticate;
  bool keep_alive = true;
};

std::string basic(const std::string& user, const std::string& password) {
  return "Basic " + base64_encode(user + ":" + password);
}

class RawClient {
 public:
  explicit RawClient(unsigned short port) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    timeval tv{120, 0};
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  Reply post(const std::string& body, const std::string& authorization = basic("vagrant", "Passw0rd!"),
             const std::string& target = "/wsman") {
    beast::http::request<beast::http::string_body> req{beast::http::verb::post, target, 11};
    req.set(beast::http::field::host, "127.0.0.1");
    req.set(beast::http::field::content_type, "application/soap+xml;charset=UTF-8");
    if (!authorization.empty()) req.set(beast::http::field::authorization, authorization);
    req.body() = body;
    req.prepare_payload();
    beast::http::write(socket_, req);
    beast::http::response<beast::http::string_body> res;
    beast::http::read(socket_, buffer_, res);
    Reply r;
    r.status = res.result_int();
    r.body = res.body();
    r.keep_alive = res.keep_alive();
    for (const auto& field : res)
      if (field.name() == beast::http::field::www_authenticate) r.www_authenticate.emplace_back(field.value());
    return r;
  }

 private:
  net::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

// ---- reading responses

struct Parsed {
  pugi::xml_document doc;
  pugi::xml_node root;
  std::string text(std::string_view nsuri, std::string_view local) const {
    return x::text(x::descendant(root, nsuri, local));
  }
  std::string action() const { return text(ns::kAddressing, "Action"); }
  std::string relates_to() const { return text(ns::kAddressing, "RelatesTo"); }
  std::string message_id() const { return text(ns::kAddressing, "MessageID"); }
  std::string fault_code() const {
    auto f = x::descendant(root, ns::kWsmanFault, "WSManFault");
    return f ? x::attribute(f, "Code").value() : "";
  }
  std::string subcode() const {
    auto sc = x::descendant(root, ns::kSoap, "Subcode");
    return sc ? x::text(x::child(sc, ns::kSoap, "Value")) : "";
  }
  std::string reason() const { return x::descendant(root, ns::kSoap, "Text").text().get(); }
  std::string selector_shell_id() const { return x::text(x::descendant(root, ns::kWsman, "Selector")); }
};

std::unique_ptr<Parsed> parse(const std::string& text) {
  auto p = std::make_unique<Parsed>();
  auto st = x::parse(p->doc, text);
  EXPECT_TRUE(st.ok()) << (st ? "" : st.error().message) << "\n" << text;
  p->root = p->doc.document_element();
  return p;
}

struct StreamOutput {
  std::string stdout_text, stderr_text;
  bool done = false;
  int exit_code = -1;
  bool stdout_end = false, stderr_end = false;
};

void accumulate(const Parsed& p, StreamOutput& out) {
  auto rr = x::descendant(p.root, ns::kShell, "ReceiveResponse");
  for (auto s : x::children(rr, ns::kShell, "Stream")) {
    auto bytes = base64_decode(x::text(s));
    EXPECT_TRUE(bytes.has_value());
    std::string name = x::attribute(s, "Name").value();
    bool end = std::string(x::attribute(s, "End").value()) == "true";
    if (name == "stdout") {
      out.stdout_text += bytes.value_or("");
      out.stdout_end |= end;
    }
    if (name == "stderr") {
      out.stderr_text += bytes.value_or("");
      out.stderr_end |= end;
    }
  }
  auto state = x::child(rr, ns::kShell, "CommandState");
  if (state && std::string(x::attribute(state, "State").value()).ends_with("/Done")) {
    out.done = true;
    out.exit_code = std::stoi(x::text(x::child(state, ns::kShell, "ExitCode")));
  }
}

// ---- building requests in pypsrp's layout

std::string envelope(std::string_view action, const std::string& message_id, const std::string& shell_id,
                     const std::string& options_xml, const std::string& body, const std::string& timeout = "PT20S",
                     std::string_view resource = ns::kResourceCmd) {
  std::string s =
      R"(<s:Envelope xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsman="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:wsmv="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"><s:Header><wsa:Action s:mustUnderstand="true">)";
  s += action;
  s +=
      R"(</wsa:Action><wsman:MaxEnvelopeSize s:mustUnderstand="true">153600</wsman:MaxEnvelopeSize><wsa:MessageID>)" +
      message_id + "</wsa:MessageID><wsman:OperationTimeout>" + timeout +
      R"(</wsman:OperationTimeout><wsa:ReplyTo><wsa:Address s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:Address></wsa:ReplyTo><wsman:ResourceURI s:mustUnderstand="true">)";
  s += resource;
  s += "</wsman:ResourceURI><wsa:To>http://testhost:5985/wsman</wsa:To>";
  if (!options_xml.empty()) s += R"(<wsman:OptionSet s:mustUnderstand="true">)" + options_xml + "</wsman:OptionSet>";
  if (!shell_id.empty())
    s += R"(<wsman:SelectorSet><wsman:Selector Name="ShellId">)" + shell_id + "</wsman:Selector></wsman:SelectorSet>";
  s += "</s:Header><s:Body>" + body + "</s:Body></s:Envelope>";
  return s;
}

std::string new_message_id() { return "uuid:" + random_uuid(); }
std::string option(const std::string& name, const std::string& value) {
  return "<wsman:Option Name=\"" + name + "\">" + value + "</wsman:Option>";
}

// A small WinRS client on top of RawClient, for the tests that are not replays of a recording.
class Shell {
 public:
  Shell(RawClient& c, const std::string& options = option("WINRS_CODEPAGE", "65001"),
        const std::string& shell_body = "")
      : c_(c) {
    auto r = c_.post(envelope(
        winrm::action::kCreate, new_message_id(), "", options,
        "<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams>" +
            shell_body + "</rsp:Shell>"));
    EXPECT_EQ(r.status, 200u) << r.body;
    create_body = r.body;
    id = parse(r.body)->selector_shell_id();
  }
  std::string command(const std::string& cmd, const std::vector<std::string>& args = {}, bool skip_cmd = false) {
    std::string body = "<rsp:CommandLine><rsp:Command>" + x::escape(cmd) + "</rsp:Command>";
    for (auto& a : args) body += "<rsp:Arguments>" + x::escape(a) + "</rsp:Arguments>";
    body += "</rsp:CommandLine>";
    auto r = c_.post(envelope(
        winrm::action::kCommand, new_message_id(), id,
        option("WINRS_CONSOLEMODE_STDIN", "FALSE") + option("WINRS_SKIP_CMD_SHELL", skip_cmd ? "TRUE" : "FALSE"),
        body));
    EXPECT_EQ(r.status, 200u) << r.body;
    return parse(r.body)->text(ns::kShell, "CommandId");
  }
  Reply send(const std::string& cmd_id, const std::string& data, bool end) {
    return c_.post(envelope(winrm::action::kSend, new_message_id(), id, "",
                            "<rsp:Send><rsp:Stream Name=\"stdin\" CommandId=\"" + cmd_id + "\"" +
                                (end ? " End=\"true\"" : "") + ">" + base64_encode(data) + "</rsp:Stream></rsp:Send>"));
  }
  Reply receive_once(const std::string& cmd_id, const std::string& timeout = "PT20S") {
    return c_.post(envelope(
        winrm::action::kReceive, new_message_id(), id, option("WSMAN_CMDSHELL_OPTION_KEEPALIVE", "TRUE"),
        "<rsp:Receive><rsp:DesiredStream CommandId=\"" + cmd_id + "\">stdout stderr</rsp:DesiredStream></rsp:Receive>",
        timeout));
  }
  // Receives until Done; counts TimedOut faults on the way.
  StreamOutput receive_all(const std::string& cmd_id, int* timeouts = nullptr, const std::string& timeout = "PT20S") {
    StreamOutput out;
    for (int i = 0; i < 200 && !out.done; ++i) {
      auto r = receive_once(cmd_id, timeout);
      auto p = parse(r.body);
      if (r.status == 500 && p->fault_code() == "2150858793") {
        if (timeouts) ++*timeouts;
        continue;
      }
      EXPECT_EQ(r.status, 200u) << r.body;
      if (r.status != 200) break;
      accumulate(*p, out);
    }
    return out;
  }
  Reply signal(const std::string& cmd_id, const std::string& code = std::string(winrm::action::kSignalTerminate)) {
    return c_.post(envelope(winrm::action::kSignal, new_message_id(), id, "",
                            "<rsp:Signal CommandId=\"" + cmd_id + "\"><rsp:Code>" + code + "</rsp:Code></rsp:Signal>"));
  }
  Reply remove() { return c_.post(envelope(winrm::action::kDelete, new_message_id(), id, "", "")); }
  StreamOutput run(const std::string& cmd, const std::vector<std::string>& args = {}) {
    auto cid = command(cmd, args);
    auto out = receive_all(cid);
    EXPECT_EQ(signal(cid).status, 200u);
    return out;
  }

  std::string id;
  std::string create_body;

 private:
  RawClient& c_;
};

// =====================================================================================================
// Recorded real traffic against the live simulated host: same statuses, actions, faults and output.

// "test_winrs_standard.yml" -> "winrsXstandard" (gtest names allow no '_' games with parameters).
std::string transcript_test_name(const ::testing::TestParamInfo<std::string>& param_info) {
  std::string n = param_info.param.substr(5, param_info.param.size() - 9);
  for (auto& c : n)
    if (c == '_') c = 'X';
  return n;
}

class LiveTranscript : public ::testing::TestWithParam<std::string> {};

TEST_P(LiveTranscript, AnswersLikeTheRecordedWindowsHost) {
  SimHarness sim;
  RawClient client(sim.port);
  auto messages = load_transcript(GetParam());
  std::map<std::string, std::string> live_ids;  // recorded ShellId/CommandId -> the sim's
  for (std::size_t i = 0; i < messages.size(); ++i) {
    SCOPED_TRACE("message " + std::to_string(i + 1) + " of " + GetParam());
    std::string request = messages[i].request;
    for (auto& [recorded, live] : live_ids) replace_all(request, recorded, live);
    std::string mid = new_message_id();
    replace_all(request, parse(messages[i].request)->message_id(), mid);
    auto reply = client.post(request);
    auto got = parse(reply.body);
    auto want = parse(messages[i].response);
    EXPECT_EQ(reply.status, messages[i].status) << reply.body;
    EXPECT_EQ(got->action(), want->action());
    EXPECT_EQ(got->relates_to(), mid);
    EXPECT_TRUE(got->message_id().starts_with("uuid:"));
    EXPECT_NE(got->message_id(), want->message_id());
    EXPECT_EQ(got->fault_code(), want->fault_code());
    EXPECT_EQ(got->subcode(), want->subcode());
    if (!want->fault_code().empty() && want->fault_code() != "2150858843") {
      EXPECT_EQ(got->reason(), want->reason());
    }
    if (want->fault_code() == "2150858843") {
      EXPECT_EQ(got->text(ns::kWsmanFault, "Message"), want->text(ns::kWsmanFault, "Message"));
    }
    if (auto shell = want->text(ns::kShell, "ShellId"); !shell.empty()) {
      live_ids[shell] = got->text(ns::kShell, "ShellId");
      EXPECT_EQ(got->selector_shell_id(), got->text(ns::kShell, "ShellId"));
      for (auto field : {"ResourceUri", "IdleTimeOut", "InputStreams", "OutputStreams"})
        EXPECT_EQ(got->text(ns::kShell, field), want->text(ns::kShell, field)) << field;
    }
    if (auto cmd = want->text(ns::kShell, "CommandId"); !cmd.empty())
      live_ids[cmd] = got->text(ns::kShell, "CommandId");
    if (x::descendant(want->root, ns::kShell, "ReceiveResponse")) {
      StreamOutput w, g;
      accumulate(*want, w);
      accumulate(*got, g);
      EXPECT_EQ(g.stdout_text, w.stdout_text);
      EXPECT_EQ(g.stderr_text, w.stderr_text);
      EXPECT_EQ(g.done, w.done);
      EXPECT_EQ(g.exit_code, w.exit_code);
      EXPECT_EQ(g.stdout_end, w.stdout_end);
      EXPECT_EQ(g.stderr_end, w.stderr_end);
    }
  }
  auto stats = sim.stats();
  EXPECT_EQ(stats.shells_open, 0u);
  EXPECT_EQ(stats.connections, 1u);
}

INSTANTIATE_TEST_SUITE_P(Pypsrp, LiveTranscript,
                         ::testing::Values("test_winrs_standard.yml", "test_winrs_stderr_rc.yml", "test_winrs_send.yml",
                                           "test_winrs_unicode.yml", "test_winrs_no_cmd_shell.yml",
                                           "test_winrs_bad_cmd_id.yml"),
                         transcript_test_name);

TEST(LiveHost, ConfigGetAnswersTheEnvelopeLimit) {
  HarnessOptions o;
  o.winrs.max_envelope_kb = 8192;
  SimHarness sim(o);
  RawClient client(sim.port);
  auto recorded = load_transcript("test_wsman_update_envelope_size_500.yml").at(0);
  auto reply = client.post(recorded.request);
  ASSERT_EQ(reply.status, 200u) << reply.body;
  auto got = parse(reply.body);
  auto want = parse(recorded.response);
  EXPECT_EQ(got->action(), want->action());
  EXPECT_EQ(got->relates_to(), want->relates_to());
  EXPECT_EQ(got->text(ns::kConfig, "MaxEnvelopeSizekb"), "8192");
  EXPECT_EQ(got->text(ns::kConfig, "MaxTimeoutms"), want->text(ns::kConfig, "MaxTimeoutms"));
  EXPECT_EQ(want->text(ns::kConfig, "MaxEnvelopeSizekb"), "500");
}

TEST(LiveHost, OperationTimeoutHoldsReceiveThenFaultsLikeWindows) {
  SimHarness sim;
  RawClient client(sim.port);
  auto messages = load_transcript("test_winrs_operation_timeout.yml");
  const std::string recorded_fault = messages.at(3).response;
  Shell shell(client);
  // The recorded command with a 3 s sleep instead of 30, polled with a 1 s OperationTimeout.
  auto cid = shell.command("powershell.exe", {"Write-Host hi; Start-Sleep 3; Write-Host hi again"});
  auto first = shell.receive_once(cid, "PT10S");
  ASSERT_EQ(first.status, 200u);
  StreamOutput out;
  accumulate(*parse(first.body), out);
  EXPECT_EQ(out.stdout_text, "hi\n");
  EXPECT_FALSE(out.done);
  auto start = std::chrono::steady_clock::now();
  auto timed_out = shell.receive_once(cid, "PT1S");
  auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(timed_out.status, 500u);
  EXPECT_GE(waited, std::chrono::milliseconds(900));  // it was held, not answered at once
  auto got = parse(timed_out.body);
  auto want = parse(recorded_fault);
  EXPECT_EQ(got->fault_code(), "2150858793");
  EXPECT_EQ(got->subcode(), want->subcode());
  EXPECT_EQ(got->reason(), want->reason());
  EXPECT_EQ(got->text(ns::kWsmanFault, "Message"), want->text(ns::kWsmanFault, "Message"));
  EXPECT_EQ(got->action(), std::string(winrm::action::kFault));
  int timeouts = 1;
  auto rest = shell.receive_all(cid, &timeouts, "PT1S");
  EXPECT_EQ(rest.stdout_text, "hi again\n");
  EXPECT_TRUE(rest.done);
  EXPECT_EQ(rest.exit_code, 0);
  EXPECT_GE(timeouts, 1);
  EXPECT_GE(sim.stats().timeouts, 1u);
}

TEST(LiveHost, UnknownShellAndCommandAreInvalidSelectors) {
  SimHarness sim;
  RawClient client(sim.port);
  auto r = client.post(envelope(winrm::action::kCommand, new_message_id(), "11111111-2222-3333-4444-555555555555", "",
                                "<rsp:CommandLine><rsp:Command>echo</rsp:Command></rsp:CommandLine>"));
  EXPECT_EQ(r.status, 500u);
  auto p = parse(r.body);
  EXPECT_EQ(p->fault_code(), "2150858843");
  EXPECT_EQ(p->subcode(), "w:InvalidSelectors");
  EXPECT_NE(p->text(ns::kWsmanFault, "Message").find("11111111-2222-3333-4444-555555555555"), std::string::npos);
  Shell shell(client);
  auto recv = shell.receive_once("99999999-0000-0000-0000-000000000000");
  EXPECT_EQ(recv.status, 500u);
  EXPECT_EQ(parse(recv.body)->fault_code(), "2150858843");
  EXPECT_EQ(shell.remove().status, 200u);
  auto again = shell.remove();
  EXPECT_EQ(again.status, 500u);
  EXPECT_EQ(parse(again.body)->fault_code(), "2150858843");
}

TEST(LiveHost, MaxShellsPerUserQuota) {
  HarnessOptions o;
  o.winrs.max_shells_per_user = 2;
  SimHarness sim(o);
  RawClient client(sim.port);
  Shell a(client), b(client);
  auto r = client.post(envelope(winrm::action::kCreate, new_message_id(), "", "",
                                "<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout "
                                "stderr</rsp:OutputStreams></rsp:Shell>"));
  EXPECT_EQ(r.status, 500u);
  EXPECT_EQ(parse(r.body)->fault_code(), "2150859173");
  // Another user has their own quota.
  auto other = client.post(envelope(winrm::action::kCreate, new_message_id(), "", "",
                                    "<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams></rsp:Shell>"),
                           basic("DOMAIN\\alice", "secret"));
  EXPECT_EQ(other.status, 200u) << other.body;
  EXPECT_NE(other.body.find("<rsp:Owner>DOMAIN\\alice</rsp:Owner>"), std::string::npos);
  EXPECT_EQ(a.remove().status, 200u);
  Shell c(client);  // room again
  EXPECT_FALSE(c.id.empty());
}

TEST(LiveHost, BasicAuthAndPlainHttpRefusal) {
  {
    SimHarness sim;  // --allow-unencrypted
    RawClient client(sim.port);
    for (const std::string& auth :
         {std::string(), basic("vagrant", "wrong"), basic("nobody", "Passw0rd!"),
          std::string("Negotiate TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw==")}) {
      auto r = client.post(envelope(winrm::action::kCreate, new_message_id(), "", "", "<rsp:Shell/>"), auth);
      EXPECT_EQ(r.status, 401u) << auth;
      EXPECT_EQ(r.www_authenticate, (std::vector<std::string>{"Negotiate", "Basic realm=\"WSMAN\""}));
      EXPECT_TRUE(r.body.empty());
    }
    auto ok = client.post(envelope(winrm::action::kCreate, new_message_id(), "", "", "<rsp:Shell/>"),
                          basic("alice@domain.local", "secret"));
    EXPECT_EQ(ok.status, 200u);
    EXPECT_EQ(sim.stats().auth_failures, 4u);
  }
  HarnessOptions o;
  o.allow_unencrypted = false;
  SimHarness strict(o);
  RawClient client(strict.port);
  auto r = client.post(envelope(winrm::action::kCreate, new_message_id(), "", "", "<rsp:Shell/>"));
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.www_authenticate.size(), 2u);
  auto other_path = client.post("", basic("vagrant", "Passw0rd!"), "/other");
  EXPECT_EQ(other_path.status, 404u);
}

TEST(LiveHost, MalformedAndUnknownRequestsAreFaultsNotCrashes) {
  SimHarness sim;
  RawClient client(sim.port);
  for (const std::string& body :
       {std::string("not xml at all"), std::string("<a><b></a>"),
        std::string("<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e \"boom\">]><x>&e;</x>"),
        std::string("<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body/></s:Envelope>"),
        std::string()}) {
    auto r = client.post(body);
    EXPECT_EQ(r.status, 500u) << body;
    auto p = parse(r.body);
    EXPECT_EQ(p->subcode(), "w:SchemaValidationError");
    EXPECT_EQ(p->fault_code(), "2150858817");
  }
  auto unknown = client.post(envelope("http://example.com/NoSuchAction", "uuid:ABC", "", "", ""));
  EXPECT_EQ(unknown.status, 500u);
  auto p = parse(unknown.body);
  EXPECT_EQ(p->subcode(), "a:ActionNotSupported");
  EXPECT_EQ(p->relates_to(), "uuid:ABC");
  auto bad_resource = client.post(envelope(winrm::action::kCreate, "uuid:DEF", "", "", "<rsp:Shell/>", "PT20S",
                                           "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service"));
  EXPECT_EQ(bad_resource.status, 500u);
  auto bad_timeout = client.post(envelope(winrm::action::kCreate, "uuid:GHI", "", "", "<rsp:Shell/>", "soon"));
  EXPECT_EQ(bad_timeout.status, 500u);
  // Still serving on the same connection.
  Shell shell(client);
  EXPECT_EQ(shell.run("cmd.exe", {"/c", "echo", "alive"}).stdout_text, "alive\r\n");
}

TEST(LiveHost, TruncatedAndCorruptedRequestsNeverCrashTheHost) {
  SimHarness sim;
  RawClient client(sim.port);
  std::uint32_t seed = 12345;
  auto next = [&] { return seed = seed * 1664525u + 1013904223u; };
  for (const auto& m : load_transcript("test_winrs_send.yml")) {
    for (std::size_t cut = 0; cut < m.request.size(); cut += 97) {
      auto r = client.post(m.request.substr(0, cut));
      EXPECT_EQ(r.status, 500u);
    }
    for (int i = 0; i < 40; ++i) {
      std::string mutated = m.request;
      for (int k = 0; k < 3; ++k) mutated[next() % mutated.size()] = static_cast<char>(next() & 0xFF);
      auto r = client.post(mutated);
      EXPECT_TRUE(r.status == 200 || r.status == 500) << r.status;
    }
  }
  Shell shell(client);
  EXPECT_EQ(shell.run("echo", {"still", "here"}).stdout_text, "still here\r\n");
}

TEST(LiveHost, DirectCreationBeyond32767CharactersIsTheRealFault) {
  SimHarness sim;
  RawClient client(sim.port);
  Shell shell(client);
  std::string body = "<rsp:CommandLine><rsp:Command>" + std::string(winrm::kPowerShellExe) +
                     "</rsp:Command><rsp:Arguments>" + std::string(33000, 'A') + "</rsp:Arguments></rsp:CommandLine>";
  auto r = client.post(
      envelope(winrm::action::kCommand, new_message_id(), shell.id, option("WINRS_SKIP_CMD_SHELL", "TRUE"), body));
  EXPECT_EQ(r.status, 500u);
  EXPECT_EQ(parse(r.body)->fault_code(), "2147942606");
}

TEST(LiveHost, RequestsLargerThanMaxEnvelopeSizeGet413) {
  HarnessOptions o;
  o.max_envelope_bytes = 16 * 1024;
  SimHarness sim(o);
  {
    RawClient client(sim.port);
    auto r = client.post(
        envelope(winrm::action::kCreate, new_message_id(), "", "",
                 "<rsp:Shell><rsp:InputStreams>" + std::string(20000, 'a') + "</rsp:InputStreams></rsp:Shell>"));
    EXPECT_EQ(r.status, 413u);
    EXPECT_FALSE(r.keep_alive);
  }
  RawClient client(sim.port);
  Shell shell(client);
  EXPECT_FALSE(shell.id.empty());
}

TEST(LiveHost, ShellEnvironmentCodepageAndIdleTimeout) {
  SimHarness sim;
  RawClient client(sim.port);
  Shell shell(
      client, option("WINRS_NOPROFILE", "TRUE") + option("WINRS_CODEPAGE", "65001"),
      "<rsp:WorkingDirectory>C:\\temp</rsp:WorkingDirectory><rsp:Environment><rsp:Variable Name=\"WINCERT_A\">one "
      "&amp; two</rsp:Variable></rsp:Environment><rsp:IdleTimeOut>PT90S</rsp:IdleTimeOut>");
  EXPECT_NE(shell.create_body.find("<rsp:IdleTimeOut>PT90.000S</rsp:IdleTimeOut>"), std::string::npos);
  auto out = shell.run("set", {"WINCERT"});
  EXPECT_EQ(out.stdout_text, "WINCERT_A=one & two\r\n");
  EXPECT_EQ(shell.run("cd").stdout_text, "C:\\temp\r\n");
  EXPECT_EQ(shell.run("echo", {"\xE3\x81\x93\xE3\x82\x93"}).stdout_text, "\xE3\x81\x93\xE3\x82\x93\r\n");

  Shell short_lived(client, "", "<rsp:IdleTimeOut>PT1S</rsp:IdleTimeOut>");
  std::this_thread::sleep_for(std::chrono::milliseconds(4500));  // sweeps run every second
  auto r = short_lived.remove();
  EXPECT_EQ(r.status, 500u);  // already reaped for idleness
  EXPECT_EQ(parse(r.body)->fault_code(), "2150858843");
}

TEST(LiveHost, StdinBootstrapOperationOverSendChunks) {
  SimHarness sim;
  RawClient client(sim.port);
  Shell shell(client);
  nlohmann::json args = {{"blob", std::string(60000, 'z')}, {"name", "caf\xC3\xA9"}};
  auto inv = winrm::build_ps_invocation({"# wincert-op: echo\n", args.dump()});
  ASSERT_EQ(inv.mode, winrm::BootstrapMode::kStdin);
  auto cid = shell.command(inv.executable, inv.arguments, /*skip_cmd=*/true);
  // Nothing happens before End: a short Receive times out.
  auto early = shell.receive_once(cid, "PT1S");
  EXPECT_EQ(early.status, 500u);
  const std::size_t chunk = 30000;
  for (std::size_t off = 0; off < inv.stdin_data.size(); off += chunk) {
    bool last = off + chunk >= inv.stdin_data.size();
    auto r = shell.send(cid, inv.stdin_data.substr(off, chunk), last);
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_NE(r.body.find("SendResponse"), std::string::npos);
  }
  auto out = shell.receive_all(cid);
  EXPECT_EQ(out.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(out.stdout_text), args);
  EXPECT_TRUE(out.stdout_text.ends_with("}\r\n"));

  auto info = winrm::build_ps_invocation({"# wincert-op: host-info\n", "{}"});
  auto host = shell.run(info.executable, info.arguments);
  EXPECT_EQ(nlohmann::json::parse(host.stdout_text)["OsBuild"], 20348);
}

TEST(LiveHost, LargeOutputIsSplitToTheClientsMaxEnvelopeSize) {
  SimHarness sim;
  RawClient client(sim.port);
  Shell shell(client);
  std::string big(400000, 'q');
  auto cid = shell.command("more");
  for (std::size_t off = 0; off < big.size(); off += 100000)
    ASSERT_EQ(shell.send(cid, big.substr(off, 100000), off + 100000 >= big.size()).status, 200u);
  int responses = 0;
  StreamOutput out;
  while (!out.done && responses < 100) {
    auto r = shell.receive_once(cid);
    ASSERT_EQ(r.status, 200u);
    EXPECT_LE(r.body.size(), 153600u);
    accumulate(*parse(r.body), out);
    ++responses;
  }
  EXPECT_EQ(out.stdout_text, big + "\r\n");
  EXPECT_GE(responses, 3);
}

TEST(LiveHost, SignalStopsALongRunningCommand) {
  SimHarness sim;
  RawClient client(sim.port);
  Shell shell(client);
  auto cid = shell.command("timeout", {"/t", "600"});
  auto r = shell.signal(cid, std::string(winrm::action::kSignalCtrlC));
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(parse(r.body)->action(), std::string(winrm::action::kSignalResponse));
  auto gone = shell.receive_once(cid);
  EXPECT_EQ(gone.status, 500u);
  EXPECT_EQ(shell.remove().status, 200u);
}

TEST(LiveHost, StatusFileCountsRequests) {
  HarnessOptions o;
  o.status_file = ::testing::TempDir() + "/winhost_sim_status.json";
  std::remove(o.status_file.c_str());
  SimHarness sim(o);
  RawClient client(sim.port);
  {
    Shell shell(client);
    shell.run("cmd.exe", {"/c", "exit", "4"});
    shell.remove();
  }
  std::ifstream in(o.status_file);
  ASSERT_TRUE(in.good());
  auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["shells_created"], 1);
  EXPECT_EQ(j["commands"], 1);
  EXPECT_EQ(j["requests_by_action"]["Create"], 1);
  EXPECT_EQ(j["requests_by_action"]["Receive"], 1);
  EXPECT_EQ(j["requests_by_action"]["Delete"], 1);
  EXPECT_EQ(j["requests"], 5);
}

// =====================================================================================================
// Replay mode: the recorded responses, in order, with RelatesTo rewritten.

class ReplayTranscript : public ::testing::TestWithParam<std::string> {};

TEST_P(ReplayTranscript, ServesTheRecordedResponses) {
  HarnessOptions o;
  o.replay = kFixtures + GetParam();
  o.allow_unencrypted = false;  // replay accepts any Basic credentials, also over HTTP
  SimHarness sim(o);
  RawClient client(sim.port);
  auto messages = load_transcript(GetParam());
  for (std::size_t i = 0; i < messages.size(); ++i) {
    SCOPED_TRACE("message " + std::to_string(i + 1));
    std::string request = messages[i].request;
    std::string mid = new_message_id();
    replace_all(request, parse(messages[i].request)->message_id(), mid);
    auto reply = client.post(request, basic("anyone", "anything"));
    EXPECT_EQ(reply.status, messages[i].status);
    EXPECT_EQ(reply.body, rewrite_relates_to(messages[i].response, mid));
    EXPECT_EQ(parse(reply.body)->relates_to(), mid);
  }
  auto extra = client.post(messages.back().request, basic("anyone", "anything"));
  EXPECT_EQ(extra.status, 500u);
  EXPECT_NE(parse(extra.body)->reason().find("no more recorded messages"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Pypsrp, ReplayTranscript,
                         ::testing::Values("test_winrs_standard.yml", "test_winrs_stderr_rc.yml", "test_winrs_send.yml",
                                           "test_winrs_unicode.yml", "test_winrs_no_cmd_shell.yml",
                                           "test_winrs_bad_cmd_id.yml", "test_winrs_operation_timeout.yml",
                                           "test_wsman_update_envelope_size_500.yml"),
                         transcript_test_name);

TEST(Replay, ActionMismatchIsAClearFault) {
  HarnessOptions o;
  o.replay = kFixtures + "test_winrs_standard.yml";
  SimHarness sim(o);
  RawClient client(sim.port);
  auto messages = load_transcript("test_winrs_standard.yml");
  auto reply = client.post(messages[2].request);  // a Receive where a Create was recorded
  EXPECT_EQ(reply.status, 500u);
  auto p = parse(reply.body);
  std::string reason = p->reason();
  EXPECT_NE(reason.find("expected Action http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"), std::string::npos)
      << reason;
  EXPECT_NE(reason.find("has Action http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive"),
            std::string::npos);
  EXPECT_EQ(p->relates_to(), parse(messages[2].request)->message_id());
  auto unauthenticated = client.post(messages[0].request, "");
  EXPECT_EQ(unauthenticated.status, 401u);
}

TEST(Replay, BadTranscriptsAreErrors) {
  Stats stats;
  EXPECT_FALSE(ReplayHandler::load(kFixtures + "does_not_exist.yml", stats));
  std::string path = ::testing::TempDir() + "/winhost_bad_transcript.yml";
  std::ofstream(path) << "messages:\n- request: <not-an-envelope/>\n  response: x\n";
  auto r = ReplayHandler::load(path, stats);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("message 1"), std::string::npos);
}

TEST(Soap, DurationsAndMachineNames) {
  EXPECT_EQ(parse_duration_ms("PT20S"), 20000);
  EXPECT_EQ(parse_duration_ms("PT60.000S"), 60000);
  EXPECT_EQ(parse_duration_ms("P0DT0H1M0.5S"), 60500);
  EXPECT_FALSE(parse_duration_ms("20"));
  EXPECT_FALSE(parse_duration_ms("PTxS"));
  EXPECT_EQ(format_duration_seconds(7200000), "PT7200.000S");
  EXPECT_EQ(machine_from_to("https://server2008r2.domain.local:5986/wsman", "x"), "server2008r2.domain.local");
  EXPECT_EQ(machine_from_to("http://[::1]:5985/wsman", "x"), "::1");
  EXPECT_EQ(machine_from_to("", "fallback"), "fallback");
  EXPECT_EQ(parse_listen("127.0.0.1:0").value(), std::make_pair(std::string("127.0.0.1"), (unsigned short)0));
  EXPECT_FALSE(parse_listen("localhost"));
  EXPECT_FALSE(parse_listen("1.2.3.4:99999"));
}

TEST(Tls, ServerEndPointHashMatchesOpenssl) {
  const std::string dir = ::testing::TempDir();
  const std::string cert = dir + "/winhost_ep_cert.pem", key = dir + "/winhost_ep_key.pem",
                    digest = dir + "/winhost_ep.sha256";
  const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 1 -subj /CN=localhost -keyout " +
                          key + " -out " + cert + " >/dev/null 2>&1 && openssl x509 -in " + cert +
                          " -outform DER | openssl dgst -sha256 -binary > " + digest;
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream in(digest, std::ios::binary);
  std::string expected((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto got = tls_server_end_point_hash(cert);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->size(), 32u);
  EXPECT_EQ(*got, expected);
  EXPECT_FALSE(tls_server_end_point_hash(dir + "/winhost_no_such_cert.pem"));
  EXPECT_FALSE(tls_server_end_point_hash(digest));  // not PEM
}

TEST(Users, FileFormatsAndLogins) {
  std::string path = ::testing::TempDir() + "/winhost_users";
  std::ofstream(path) << "# comment\nvagrant:Passw0rd!\nDOMAIN:alice:se:cret\n\n";
  auto db = UserDatabase::load(path);
  ASSERT_TRUE(db) << db.error().message;
  EXPECT_EQ(db->verify("vagrant", "Passw0rd!"), "vagrant");
  EXPECT_EQ(db->verify("VAGRANT", "Passw0rd!"), "vagrant");
  EXPECT_FALSE(db->verify("vagrant", "passw0rd!"));
  EXPECT_EQ(db->verify("domain\\alice", "se:cret"), "DOMAIN\\alice");
  EXPECT_EQ(db->verify("alice@DOMAIN.local", "se:cret"), "DOMAIN\\alice");
  EXPECT_FALSE(db->verify("OTHER\\alice", "se:cret"));
  std::ofstream(path) << "justaname\n";
  EXPECT_FALSE(UserDatabase::load(path));
}

}  // namespace
}  // namespace wincert::sim
