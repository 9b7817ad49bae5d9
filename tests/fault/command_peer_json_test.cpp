// Fault matrix, peer JSON and endpoint pinning (issue 12, defects 1, 2 and 8): every source of peer
// JSON given garbage, huge, deep (the audit's 70,000 levels) and wrong-typed documents - Command's
// replies on every endpoint through the real client against a hostile HTTP server, a job file for
// `replay`, a script's output on a managed host - ends in a clear error naming the source, never in a
// crash; and a job endpoint on another origin never receives the credentials. Each case here crashed
// (stack overflow) or leaked before the fix. README.md lists them.
#include <gtest/gtest.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <fstream>
#include <string>

#include "agent/command_auth.hpp"
#include "agent/command_client.hpp"
#include "agent/replay.hpp"
#include "certstore/remote/remote_backend.hpp"
#include "common/peer_json.hpp"
#include "jobs/job_config.hpp"
#include "tests/agent/daemon_test_support.hpp"

namespace wincert::agent {
namespace {

using nlohmann::json;
using testing::FakeRequest;
using testing::FakeResponse;
using testing::FakeServer;

constexpr const char* kPassword = "cmd-pass-SECRET-7f3a";

// The audit's Register reply: about 70,000 levels of objects and arrays (around 140 KB), valid JSON.
// nlohmann parses it iteratively; before the fix, dump() (the Register error path, the configuration
// copy) recursed through it and overflowed the stack.
std::string deep_json(std::size_t levels = 70000) {
  std::string out;
  out.reserve(levels * 3 + 8);
  for (std::size_t i = 0; i < levels; ++i) out += (i % 2) ? "[" : "{\"a\":";
  out += "1";
  for (std::size_t i = levels; i-- > 0;) out += (i % 2) ? "]" : "}";
  return out;
}
std::string deep_balanced(std::size_t levels = 70000) { return std::string(levels, '[') + std::string(levels, ']'); }

enum class Fault { kGarbage, kHuge, kDeep, kDeepBalanced, kWrongType, kArray };
const char* name_of(Fault f) {
  switch (f) {
    case Fault::kGarbage:
      return "garbage";
    case Fault::kHuge:
      return "huge";
    case Fault::kDeep:
      return "deep";
    case Fault::kDeepBalanced:
      return "deep-balanced";
    case Fault::kWrongType:
      return "wrong-typed";
    case Fault::kArray:
      return "array";
  }
  return "?";
}
std::string body_of(Fault f) {
  switch (f) {
    case Fault::kGarbage:
      return std::string("\x01\xff{[\"garbage") + std::string(1000, '\x7f');
    case Fault::kHuge:
      return "{\"Result\":{\"Status\":1},\"Pad\":\"" + std::string(17u * 1024 * 1024, 'x') + "\"}";
    case Fault::kDeep:
      return deep_json();
    case Fault::kDeepBalanced:
      return deep_balanced();
    case Fault::kWrongType:
      return R"({"Result":{"Status":"x","Error":[1,2]},"Session":{"Token":{"t":[1]},"HeartbeatInterval":1e308,
                 "Jobs":{"a":1}},"SessionValid":"maybe","AuditId":1e300,"JobCancelled":[],"Job":"x",
                 "HeartbeatInterval":-1e308,"Priority":9.9e99})";
    case Fault::kArray:
      return "[1,2,3]";
  }
  return {};
}

// A client against a server that answers every request with `body`.
struct HostileCommand {
  explicit HostileCommand(std::string body)
      : server([b = std::move(body)](const FakeRequest&) {
          FakeResponse r;
          r.body = b;
          return r;
        }) {}
  FakeServer server;
};

struct Client {
  explicit Client(const std::string& base_url, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    HttpClientOptions options;
    options.connect_timeout = timeout;
    options.request_timeout = timeout;
    http = std::move(HttpClient::create(io.get_executor(), options).value());
    auth = make_basic_auth("KEYFACTOR\\svc", Secret(kPassword));
    ClientIdentity identity;
    identity.base = *parse_url(base_url);
    identity.orchestrator_name = "uo-fault";
    client = std::make_unique<CommandClient>(*http, *auth, identity);
  }
  // Runs one call on this client's io_context (its connections belong to it).
  template <typename T>
  T run(boost::asio::awaitable<T> task) {
    std::optional<T> value;
    std::exception_ptr error;
    boost::asio::co_spawn(
        io,
        [&, t = std::move(task)]() mutable -> boost::asio::awaitable<void> { value.emplace(co_await std::move(t)); },
        [&](std::exception_ptr e) { error = e; });
    io.restart();
    io.run();
    if (error) std::rethrow_exception(error);
    return std::move(*value);
  }

  boost::asio::io_context io;
  std::unique_ptr<HttpClient> http;
  std::unique_ptr<CommandAuth> auth;
  std::unique_ptr<CommandClient> client;
};

JobEntry job_entry(const std::string& base) {
  JobEntry job;
  job.job_id = "11111111-2222-3333-4444-555555555555";
  job.configuration_endpoint = "KeyfactorAgents/Jobs/1/Config";
  job.completion_endpoint = base + "/Jobs/1/Complete";
  job.capability = "CertStores.WinCert.Inventory";
  return job;
}

// Every Command endpoint x every fault: an error or a reply, never a crash; errors name the call.
TEST(CommandPeerJsonFaults, EveryEndpointSurvivesEveryMalformedBody) {
  for (Fault fault :
       {Fault::kGarbage, Fault::kHuge, Fault::kDeep, Fault::kDeepBalanced, Fault::kWrongType, Fault::kArray}) {
    SCOPED_TRACE(name_of(fault));
    HostileCommand command(body_of(fault));
    const std::string base = command.server.url("/KeyfactorAgents");
    Client c(base);
    auto reg = c.run(c.client->register_session("", {"CertStores.WinCert.Inventory"}));
    auto hb = c.run(c.client->heartbeat("tok"));
    auto cfg = c.run(c.client->job_configuration(job_entry(base), "tok"));
    auto completion = c.run(c.client->post_job_data("KeyfactorAgents/Jobs/1/Complete", "tok",
                                                    completion_body("j", 2, 1, "ok"), "completion of job j"));
    auto inventory = c.run(c.client->post_job_data("KeyfactorAgents/Jobs/1/Inventory", "tok",
                                                   "{\"JobId\":\"j\",\"Inventory\":[]}", "inventory of job j"));
    auto csr =
        c.run(c.client->post_job_data("KeyfactorAgents/Jobs/1/Enroll", "tok", csr_body("j", "MIIB"), "CSR of job j"));
    if (fault == Fault::kWrongType) {
      // Wrong types are read as absent, numbers out of range are not cast (UBSan would say so).
      if (reg.ok()) {
        EXPECT_NE(reg->state, RegisterState::kSession) << "token '" << reg->session.token << "'";  // not a string
      } else {
        EXPECT_EQ(reg.error().code, ErrorCode::kInvalidArgument) << reg.error().message;
      }
      ASSERT_TRUE(hb.ok());
      EXPECT_FALSE(hb->heartbeat_interval.has_value());
      ASSERT_TRUE(cfg.ok());
      EXPECT_EQ(cfg->audit_id, 0);
      // What the agent does with it next: a clear failure of the job, not a crash.
      auto parsed = jobs::parse_job_config_document(std::move(cfg->config), cfg->last_inventory.get());
      EXPECT_FALSE(parsed.ok());
      continue;
    }
    const std::pair<const char*, Error> errors[] = {
        {"Register", reg.ok() ? Error{} : reg.error()},
        {"Heartbeat", hb.ok() ? Error{} : hb.error()},
        {"configuration of job", cfg.ok() ? Error{} : cfg.error()},
        {"completion of job j", completion.ok() ? Error{} : completion.error()},
        {"inventory of job j", inventory.ok() ? Error{} : inventory.error()},
        {"CSR of job j", csr.ok() ? Error{} : csr.error()}};
    EXPECT_FALSE(reg.ok() || hb.ok() || completion.ok() || inventory.ok() || csr.ok());
    for (const auto& [what, error] : errors) {
      if (fault == Fault::kHuge && std::string(what).starts_with("configuration")) {
        // 17 MiB is allowed for a job configuration (64 MiB cap): parsed once (the job then fails on its
        // missing store, see command_faults.py job_configuration).
        ASSERT_TRUE(cfg.ok()) << cfg.error().message;
        continue;
      }
      EXPECT_EQ(error.code, ErrorCode::kInvalidArgument) << what << ": " << error.message;
      EXPECT_NE(error.message.find(what), std::string::npos) << error.message;
      EXPECT_EQ(error.message.find(kPassword), std::string::npos);
      if (fault == Fault::kDeep || fault == Fault::kDeepBalanced) {
        EXPECT_NE(error.message.find("deeper than 64 levels"), std::string::npos) << error.message;
      }
      if (fault == Fault::kHuge) {
        EXPECT_NE(error.message.find("MiB accepted"), std::string::npos) << error.message;
      }
    }
  }
}

// Defect 2: an endpoint on another origin (here: another port of the same host) is refused before any
// request; the other port never sees the Authorization header or the session token.
TEST(CommandEndpointPinningFaults, AnotherOriginNeverReceivesCredentials) {
  std::atomic<int> hostile_requests{0};
  FakeServer hostile([&](const FakeRequest&) {
    ++hostile_requests;
    return FakeResponse::json({{"Result", {{"Status", 1}}}});
  });
  FakeServer command([](const FakeRequest&) { return FakeResponse::json({{"Result", {{"Status", 1}}}}); });
  const std::string base = command.url("/KeyfactorAgents");
  Client c(base);
  JobEntry job = job_entry(base);
  job.configuration_endpoint = hostile.url("/KeyfactorAgents/Jobs/1/Config");
  auto cfg = c.run(c.client->job_configuration(job, "session-token-SECRET"));
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.error().code, ErrorCode::kInvalidArgument) << cfg.error().message;
  EXPECT_NE(cfg.error().message.find("configuration of job " + job.job_id), std::string::npos) << cfg.error().message;
  EXPECT_NE(cfg.error().message.find("not on AgentsServerUri's origin"), std::string::npos) << cfg.error().message;
  for (const char* what : {"completion of job x", "inventory of job x", "CSR of job x"}) {
    auto posted =
        c.run(c.client->post_job_data(hostile.url("/x"), "session-token-SECRET", completion_body("x", 2, 1, ""), what));
    ASSERT_FALSE(posted.ok());
    EXPECT_EQ(posted.error().code, ErrorCode::kInvalidArgument) << posted.error().message;
    EXPECT_NE(posted.error().message.find(what), std::string::npos);
  }
  // A downgrade of an https AgentsServerUri to http is refused the same way (no connection needed).
  Client tls("https://127.0.0.1:1/KeyfactorAgents");
  JobEntry downgrade = job_entry("https://127.0.0.1:1/KeyfactorAgents");
  downgrade.configuration_endpoint = "http://127.0.0.1:1/KeyfactorAgents/Jobs/1/Config";
  auto refused = tls.run(tls.client->job_configuration(downgrade, "tok"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument) << refused.error().message;
  EXPECT_NE(refused.error().message.find("downgrade"), std::string::npos) << refused.error().message;
  EXPECT_EQ(hostile_requests.load(), 0);
  EXPECT_EQ(hostile.connections(), 0);
  EXPECT_EQ(command.count("/"), 0u);
}

// The per-origin connection pools are bounded.
TEST(CommandEndpointPinningFaults, ConnectionPoolsStayBounded) {
  Client c("http://127.0.0.1:1");
  HttpClientOptions options;
  options.max_origins = 3;
  options.connect_timeout = std::chrono::seconds(5);
  auto http = std::move(HttpClient::create(c.io.get_executor(), options).value());
  std::vector<std::unique_ptr<FakeServer>> servers;
  for (int i = 0; i < 10; ++i) {
    servers.push_back(std::make_unique<FakeServer>([](const FakeRequest&) { return FakeResponse::json({}); }));
    HttpRequest request;
    request.url = *parse_url(servers.back()->url("/x"));
    auto response = c.run(http->send(request, "probe"));
    ASSERT_TRUE(response.ok()) << response.error().message;
    EXPECT_LE(http->origins_pooled(), 3u);
  }
}

// A job file for `replay`, nested 70,000 levels: refused with the file named, no crash.
TEST(ReplayPeerJsonFaults, ADeepJobFileIsRefusedNotACrash) {
  testing::TempDir dir;
  for (const std::string& text :
       {deep_json(), deep_balanced(),
        "{\"CertificateStoreDetails\":{\"Properties\":\"" + std::string(70000, '[') + "\"}}"}) {
    testing::write_text(dir.file("deep.json"), text);
    ReplayOptions options;
    options.job_file = dir.file("deep.json");
    auto outcome = replay_job(options);
    ASSERT_FALSE(outcome.ok());
    EXPECT_NE(outcome.error().message.find("deep.json"), std::string::npos) << outcome.error().message;
    EXPECT_NE(outcome.error().message.find("deeper than 64 levels"), std::string::npos) << outcome.error().message;
  }
}

// The JSON a script prints on a managed host, nested 70,000 levels (a hostile or broken host).
class DeepRunner final : public certstore::ScriptRunner {
 public:
  explicit DeepRunner(std::string out) : out_(std::move(out)) {}
  boost::asio::awaitable<Result<certstore::ScriptOutput>> run(std::string_view, std::string_view,
                                                              const nlohmann::json&) override {
    co_return certstore::ScriptOutput{out_, 0, ""};
  }
  std::string host() const override { return "web01.fault.test"; }

 private:
  std::string out_;
};

TEST(ScriptOutputPeerJsonFaults, ADeepDocumentFromAHostFailsTheOperationNotTheAgent) {
  for (const std::string& out : {deep_balanced(), "{\"a\":" + deep_balanced(), "WARNING: x\r\n" + deep_balanced()}) {
    DeepRunner runner(out);
    auto caller = std::make_shared<certstore::remote::ScriptCaller>(runner);
    certstore::remote::RemoteCertStore store(caller);
    auto inventory = testing::run_awaitable(store.inventory("My"));
    ASSERT_FALSE(inventory.ok());
    EXPECT_EQ(inventory.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(inventory.error().message.find("web01.fault.test"), std::string::npos) << inventory.error().message;
    EXPECT_NE(inventory.error().message.find("deeper than 64 levels"), std::string::npos) << inventory.error().message;
  }
}

// Defect 8: parsing a job configuration costs a small multiple of its size; a configuration is moved,
// not copied or re-serialised (the bench in bench/results/peer_json_memory.md measures the process).
TEST(JobConfigurationMemory, AJobConfigurationIsParsedOnceAndMoved) {
  json config = testing::inventory_job_config("j", "web01", 1);
  const std::string text = config.dump();
  auto doc = parse_peer_ordered_json(text, peer_json_limits::kJobConfiguration, "the job configuration");
  ASSERT_TRUE(doc.ok());
  const auto* before = &(*doc)["CertificateStoreDetails"];
  nlohmann::ordered_json moved = std::move(doc.value());
  EXPECT_EQ(&moved["CertificateStoreDetails"], before);  // the same nodes: nothing was copied
  EXPECT_TRUE(jobs::parse_job_config_document(std::move(moved)).ok());
}

}  // namespace
}  // namespace wincert::agent
