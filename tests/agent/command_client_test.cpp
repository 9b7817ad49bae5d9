// The Orchestrators API client against a small in-test HTTP server playing Command's answers:
// register outcomes, heartbeats, job configuration shapes, 503s, drops, timeouts, Basic and OAuth
// (token caching, expiry, refresh after a 401), SessionToken splicing and inventory chunking.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <climits>

#include "agent/command_auth.hpp"
#include "agent/command_client.hpp"
#include "common/encoding.hpp"
#include "jobs/capabilities.hpp"
#include "tests/agent/daemon_test_support.hpp"
#include "tests/support/result_matchers.hpp"

namespace wincert::agent {
namespace {

namespace net = boost::asio;
using nlohmann::json;
using testing::FakeRequest;
using testing::FakeResponse;
using testing::FakeServer;

json ok_result() { return json{{"Status", 1}, {"Error", nullptr}}; }
json error_result(const std::string& code, const std::string& message, int status = 3) {
  return json{{"Status", status}, {"Error", {{"Code", 0}, {"CodeString", code}, {"Message", message}}}};
}

json session_reply(const std::string& token) {
  return json{{"Session",
               {{"Token", token},
                {"AgentId", "11111111-2222-3333-4444-555555555555"},
                {"HeartbeatInterval", 5},
                {"ClientMachine", "uo-01"},
                {"Certificate", nullptr},
                {"Jobs", json::array({{{"JobTypeId", "aaaaaaaa-0000-0000-0000-000000000001"},
                                       {"JobId", "job-1"},
                                       {"ConfigurationEndpoint", "KeyfactorAgents/Jobs/job-1/Config"},
                                       {"CompletionEndpoint", "KeyfactorAgents/Jobs/job-1/Complete"},
                                       {"Cron", nullptr},
                                       {"Schedule", "I_30"},
                                       {"Priority", 5}},
                                      {{"JobId", "job-2"},
                                       {"ConfigurationEndpoint", "/KeyfactorAgents/Jobs/job-2/Config"},
                                       {"CompletionEndpoint", "/KeyfactorAgents/Jobs/job-2/Complete"},
                                       {"Schedule", nullptr},
                                       {"Priority", 3}}})}}},
              {"Result", ok_result()}};
}

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<FakeServer>([this](const FakeRequest& r) { return handle(r); });
    HttpClientOptions options;
    options.connect_timeout = std::chrono::seconds(5);
    options.request_timeout = std::chrono::seconds(5);
    http_ = std::move(HttpClient::create(io_.get_executor(), options).value());
    auth_ = make_basic_auth("KEYFACTOR\\svc", Secret("hunter2-SECRET"));
    client_ = make_client(*auth_);
  }

  std::unique_ptr<CommandClient> make_client(CommandAuth& auth) {
    ClientIdentity identity;
    identity.base = parse_url(server_->url("/KeyfactorAgents")).value();
    identity.orchestrator_name = "uo-01";
    identity.agent_version = pack_agent_version("1.2.3");
    return std::make_unique<CommandClient>(*http_, auth, identity);
  }

  template <typename T>
  T run(net::awaitable<T> task) {
    std::optional<T> value;
    std::exception_ptr error;
    // Through a void coroutine: co_spawn's value form needs a default-constructible T.
    net::co_spawn(
        io_, [&, t = std::move(task)]() mutable -> net::awaitable<void> { value.emplace(co_await std::move(t)); },
        [&](std::exception_ptr e) { error = e; });
    io_.restart();
    io_.run();
    if (error) std::rethrow_exception(error);
    return std::move(*value);
  }

  // Default: Command answering per path.
  virtual FakeResponse handle(const FakeRequest& r) {
    if (next_) {
      auto response = next_(r);
      if (response) return *response;
    }
    if (r.target == "/KeyfactorAgents/Session/Register") return FakeResponse::json(session_reply("tok-1"));
    if (r.target == "/KeyfactorAgents/Session/Heartbeat")
      return FakeResponse::json({{"HeartbeatInterval", 5}, {"SessionValid", true}, {"Result", ok_result()}});
    return FakeResponse::json({{"Result", ok_result()}});
  }

  std::function<std::optional<FakeResponse>(const FakeRequest&)> next_;
  net::io_context io_;
  std::unique_ptr<FakeServer> server_;
  std::unique_ptr<HttpClient> http_;
  std::unique_ptr<CommandAuth> auth_;
  std::unique_ptr<CommandClient> client_;
};

TEST_F(ClientTest, RegisterSendsTheReferenceFieldsAndParsesTheSession) {
  const auto caps = jobs::make_default_registry().capability_names();
  auto reply = run(client_->register_session("", caps));
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ(reply->state, RegisterState::kSession);
  EXPECT_EQ(reply->session.token, "tok-1");
  EXPECT_EQ(reply->session.agent_id, "11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(reply->session.heartbeat_interval, std::chrono::minutes(5));
  ASSERT_EQ(reply->session.jobs.size(), 2u);
  EXPECT_EQ(reply->session.jobs[0].schedule, "I_30");
  EXPECT_EQ(reply->session.jobs[0].configuration_endpoint, "KeyfactorAgents/Jobs/job-1/Config");
  EXPECT_EQ(reply->session.jobs[1].schedule, "");
  EXPECT_EQ(reply->session.jobs[1].priority, 3);

  const auto requests = server_->requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].header("content-type"), "application/json");
  EXPECT_EQ(requests[0].header("authorization"), "Basic " + base64_encode("KEYFACTOR\\svc:hunter2-SECRET"));
  const json body = requests[0].json();
  EXPECT_EQ(body["AgentPlatform"], 1);
  EXPECT_EQ(body["AgentVersion"], (1ull << 48) | (2ull << 32) | (3ull << 16));
  EXPECT_EQ(body["TenantId"], "00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(body["ClientMachine"], "uo-01");
  EXPECT_EQ(body["AgentId"], "");
  EXPECT_TRUE(body["CSR"].is_null());
  EXPECT_EQ(body["Capabilities"].size(), caps.size());
  EXPECT_EQ(body["Capabilities"][0], caps[0]);
  EXPECT_TRUE(body["ClientParameters"].is_object());
}

TEST_F(ClientTest, ARenewalSendsItsCsrAndTheIssuedCertificateIsReturned) {
  next_ = [](const FakeRequest&) -> std::optional<FakeResponse> {
    json reply = session_reply("tok-c");
    reply["Session"]["Certificate"] = "MIIBnewcert";
    return FakeResponse::json(reply);
  };
  auto reply = run(client_->register_session("known-id", {}, "MIIBcsr"));
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ(reply->session.certificate, "MIIBnewcert");
  const json body = server_->requests().at(0).json();
  EXPECT_EQ(body["CSR"], "MIIBcsr") << "base64 DER without armour, as the C agent sends it (reference 11.2)";
  EXPECT_EQ(body["AgentId"], "known-id");
}

TEST_F(ClientTest, RegisterOutcomesForApprovalAndRenewalCodes) {
  struct Case {
    json response;
    RegisterState state;
  };
  const std::vector<Case> cases = {
      {{{"Session", nullptr}, {"Result", error_result("A0100007", "Agent auth certificate renewal requested")}},
       RegisterState::kPendingApproval},
      {{{"Session", nullptr}, {"Result", error_result("A0100008", "Agent auth certificate renewal required")}},
       RegisterState::kRejected},
      // sim/command's codes for "awaiting approval" (Warning) and "disapproved" (Error, no session).
      {{{"Session", nullptr}, {"Result", error_result("A0100010", "awaiting approval", 2)}},
       RegisterState::kPendingApproval},
      {{{"Session", nullptr}, {"Result", error_result("A0100011", "disapproved")}}, RegisterState::kRejected},
      // Success without a token: nothing to refuse, ask again later.
      {{{"Result", ok_result()}}, RegisterState::kPendingApproval},
      // Command v12: Warning with A0100007 still grants a session.
      {{{"Session", session_reply("tok-w")["Session"]}, {"Result", error_result("A0100007", "renew soon", 2)}},
       RegisterState::kSession},
  };
  for (const auto& c : cases) {
    next_ = [&](const FakeRequest&) -> std::optional<FakeResponse> { return FakeResponse::json(c.response); };
    auto reply = run(client_->register_session("known-id", {}));
    ASSERT_TRUE(reply.ok()) << reply.error().message;
    EXPECT_EQ(reply->state, c.state) << c.response.dump();
  }
  EXPECT_EQ(server_->requests().back().json()["AgentId"], "known-id");
  // Any other refusal without a session is worth retrying.
  next_ = [&](const FakeRequest&) -> std::optional<FakeResponse> {
    return FakeResponse::json({{"Result", error_result("A0000001", "database busy")}});
  };
  auto reply = run(client_->register_session("", {}));
  EXPECT_THAT(reply, ErrorWith(ErrorCode::kUnavailable, CommandCode("A0000001")));
  EXPECT_NE(reply.error().message.find("database busy"), std::string::npos);  // Command's words, for people
}

// The register outcome is decided by the code and the Status, never by Command's message: an Error with
// no code says "disapproved" or "not approved" in vain, it is one more refusal worth retrying.
TEST_F(ClientTest, RegisterOutcomeIgnoresTheMessage) {
  for (const char* message :
       {"The orchestrator was disapproved", "The orchestrator has not been approved", "Session rejected"}) {
    next_ = [&](const FakeRequest&) -> std::optional<FakeResponse> {
      return FakeResponse::json({{"Result", error_result("", message)}});
    };
    auto reply = run(client_->register_session("", {}));
    EXPECT_THAT(reply, HasCode(ErrorCode::kUnavailable)) << message;
  }
  // A renewal code decides even when the message says otherwise.
  next_ = [&](const FakeRequest&) -> std::optional<FakeResponse> {
    return FakeResponse::json({{"Session", nullptr}, {"Result", error_result("a0100008", "approved")}});
  };
  auto reply = run(client_->register_session("", {}));
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(reply->state, RegisterState::kRejected);
}

TEST_F(ClientTest, HeartbeatReportsAnInvalidSession) {
  auto reply = run(client_->heartbeat("tok-1"));
  ASSERT_TRUE(reply.ok());
  EXPECT_TRUE(reply->session_valid);
  EXPECT_EQ(*reply->heartbeat_interval, std::chrono::minutes(5));
  const json body = server_->requests().back().json();
  EXPECT_EQ(body["SessionToken"], "tok-1");
  EXPECT_EQ(body["ClientMachine"], "uo-01");
  next_ = [](const FakeRequest&) -> std::optional<FakeResponse> {
    return FakeResponse::json({{"HeartbeatInterval", 0.05}, {"SessionValid", false}, {"Result", ok_result()}});
  };
  reply = run(client_->heartbeat("tok-1"));
  ASSERT_TRUE(reply.ok());
  EXPECT_FALSE(reply->session_valid);
  EXPECT_EQ(*reply->heartbeat_interval, std::chrono::seconds(3));  // fractional minutes accepted
}

TEST_F(ClientTest, HttpErrorsAreClassifiedAndNeverEchoTheSecret) {
  next_ = [](const FakeRequest&) -> std::optional<FakeResponse> { return FakeResponse{503, "busy"}; };
  auto reply = run(client_->heartbeat("t"));
  EXPECT_THAT(reply, ErrorWith(ErrorCode::kUnavailable, HttpStatus(503)));
  EXPECT_THAT(reply, IsRetryable());
  EXPECT_FALSE(is_auth_failure(reply.error()));

  next_ = [](const FakeRequest&) -> std::optional<FakeResponse> { return FakeResponse{429, "slow down"}; };
  reply = run(client_->heartbeat("t"));
  EXPECT_THAT(reply, ErrorWith(ErrorCode::kResourceExhausted, HttpStatus(429)));
  EXPECT_THAT(reply, IsRetryable());

  next_ = [](const FakeRequest&) -> std::optional<FakeResponse> { return FakeResponse{401, ""}; };
  reply = run(client_->heartbeat("t"));
  EXPECT_THAT(reply, ErrorWith(ErrorCode::kUnauthenticated, HttpStatus(401)));
  EXPECT_TRUE(is_auth_failure(reply.error()));
  // The message names the account a person must check, never its secret.
  EXPECT_NE(reply.error().message.find("KEYFACTOR\\svc"), std::string::npos);
  EXPECT_EQ(reply.error().message.find("hunter2"), std::string::npos);

  next_ = [](const FakeRequest&) -> std::optional<FakeResponse> { return FakeResponse{403, ""}; };
  reply = run(client_->heartbeat("t"));
  EXPECT_THAT(reply, ErrorWith(ErrorCode::kPermissionDenied, HttpStatus(403)));
  EXPECT_TRUE(is_auth_failure(reply.error()));

  next_ = [](const FakeRequest&) -> std::optional<FakeResponse> { return FakeResponse{404, "nope"}; };
  reply = run(client_->heartbeat("t"));
  EXPECT_THAT(reply, ErrorWith(ErrorCode::kNotFound, HttpStatus(404)));
  EXPECT_FALSE(is_auth_failure(reply.error()));
  EXPECT_NE(reply.error().message.find("AgentsServerUri"), std::string::npos);  // what to check

  next_ = [](const FakeRequest&) -> std::optional<FakeResponse> { return FakeResponse{400, "bad"}; };
  reply = run(client_->heartbeat("t"));
  EXPECT_THAT(reply, ErrorWith(ErrorCode::kFailedPrecondition, HttpStatus(400)));
  EXPECT_FALSE(is_auth_failure(reply.error()));

  next_ = [](const FakeRequest&) -> std::optional<FakeResponse> { return FakeResponse{200, "<html>"}; };
  reply = run(client_->heartbeat("t"));
  EXPECT_THAT(reply, HasCode(ErrorCode::kInvalidArgument));
}

// is_auth_failure reads the code and the HTTP status only: a message that looks like a 401 is not one,
// and a TLS certificate that fails verification (unauthenticated, no HTTP status) is not one either.
TEST(AuthFailureTest, DecidedByCodeAndHttpStatus) {
  EXPECT_TRUE(is_auth_failure(Error::unauthenticated("x").with_http_status(401)));
  EXPECT_TRUE(is_auth_failure(Error::permission_denied("x").with_http_status(403)));
  EXPECT_TRUE(is_auth_failure(Error::unauthenticated("token endpoint refused").with_http_status(400)));
  EXPECT_FALSE(is_auth_failure(Error::unavailable("Heartbeat: Command rejected u (HTTP 401 at x)")));
  EXPECT_FALSE(is_auth_failure(Error::failed_precondition("(HTTP 403 at x)").with_http_status(400)));
  EXPECT_FALSE(is_auth_failure(Error::unauthenticated("the TLS certificate of x is not trusted")
                                   .with_system_status(SystemStatusKind::kOpenSsl, 20)));
  EXPECT_FALSE(is_auth_failure(Error::unavailable("busy").with_http_status(503)));
}

// session_invalid: Result.Status 3 with the invalid-session code, nothing else (the message is not read).
TEST(SessionInvalidTest, DecidedByStatusAndCode) {
  auto result_of = [](int status, const std::string& code, const std::string& message) {
    return parse_api_result(
        {{"Result", {{"Status", status}, {"Error", {{"Code", 0}, {"CodeString", code}, {"Message", message}}}}}});
  };
  EXPECT_TRUE(result_of(3, "A0100012", "The session token is not valid").session_invalid());
  EXPECT_TRUE(result_of(3, "a0100012", "").session_invalid());
  EXPECT_FALSE(result_of(2, "A0100012", "a warning is not an error").session_invalid());
  EXPECT_FALSE(result_of(3, "A0200002", "Session is invalid").session_invalid());
  EXPECT_FALSE(result_of(3, "", "Session is invalid").session_invalid());
  EXPECT_FALSE(result_of(1, "", "").session_invalid());
}

TEST_F(ClientTest, DroppedConnectionsAndTimeoutsAreTransient) {
  // A connection closed without an answer on a fresh connection: transient, nothing retried.
  next_ = [](const FakeRequest&) -> std::optional<FakeResponse> {
    FakeResponse r;
    r.drop = true;
    return r;
  };
  auto reply = run(client_->heartbeat("t"));
  ASSERT_FALSE(reply.ok());
  EXPECT_TRUE(reply.error().retryable()) << reply.error().message;
  EXPECT_EQ(server_->count("/KeyfactorAgents/Session/Heartbeat"), 1u);

  // A kept-alive connection the server drops: reopened once, transparently.
  next_ = nullptr;
  ASSERT_TRUE(run(client_->heartbeat("t")).ok());
  const int connections_before = server_->connections();
  std::atomic<int> calls{0};
  next_ = [&](const FakeRequest&) -> std::optional<FakeResponse> {
    if (calls++ == 0) {
      FakeResponse r;
      r.drop = true;
      return r;
    }
    return std::nullopt;
  };
  reply = run(client_->heartbeat("t"));
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(server_->connections(), connections_before + 1);

  // No answer within the request timeout.
  HttpClientOptions quick;
  quick.request_timeout = std::chrono::milliseconds(200);
  auto quick_http = std::move(HttpClient::create(io_.get_executor(), quick).value());
  ClientIdentity identity = client_->identity();
  CommandClient slow_client(*quick_http, *auth_, identity);
  next_ = [](const FakeRequest&) -> std::optional<FakeResponse> {
    FakeResponse r = FakeResponse::json({{"Result", ok_result()}});
    r.delay = std::chrono::milliseconds(1500);
    return r;
  };
  reply = run(slow_client.heartbeat("t"));
  EXPECT_THAT(reply, HasCode(ErrorCode::kDeadlineExceeded));
  EXPECT_THAT(reply, IsRetryable());

  // Nobody listening.
  server_.reset();
  reply = run(client_->heartbeat("t"));
  ASSERT_FALSE(reply.ok());
  EXPECT_TRUE(reply.error().retryable()) << reply.error().message;
}

TEST_F(ClientTest, JobConfigurationUnwrapsTheJobAndFillsInWhatTheListKnows) {
  JobEntry job;
  job.job_id = "job-1";
  job.configuration_endpoint = "KeyfactorAgents/Jobs/job-1/Config";
  job.capability = "CertStores.WinCert.Inventory";
  next_ = [](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (r.target != "/KeyfactorAgents/Jobs/job-1/Config") return FakeResponse{404, ""};
    json config = testing::inventory_job_config("job-1", "web01", 0);
    config.erase("Capability");
    config.erase("JobHistoryId");
    return FakeResponse::json({{"AuditId", 4242},
                               {"JobCancelled", false},
                               {"InventoryEndpoint", "KeyfactorAgents/Jobs/job-1/Inventory"},
                               {"Result", ok_result()},
                               {"Job", config}});
  };
  auto reply = run(client_->job_configuration(job, "tok-1"));
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_FALSE(reply->cancelled);
  EXPECT_EQ(reply->audit_id, 4242);
  EXPECT_EQ(reply->inventory_endpoint, "KeyfactorAgents/Jobs/job-1/Inventory");
  EXPECT_EQ(reply->config["Capability"], "CertStores.WinCert.Inventory");
  EXPECT_EQ(reply->config["JobHistoryId"], 4242);
  EXPECT_EQ(reply->config["CertificateStoreDetails"]["ClientMachine"], "web01");
  const json body = server_->requests().back().json();
  EXPECT_EQ(body["SessionToken"], "tok-1");
  EXPECT_EQ(body["JobId"], "job-1");

  // The UO shape without a wrapper, cancelled.
  next_ = [](const FakeRequest&) -> std::optional<FakeResponse> {
    json config = testing::inventory_job_config("job-1", "web01", 77);
    config["JobCancelled"] = true;
    return FakeResponse::json(config);
  };
  reply = run(client_->job_configuration(job, "tok-1"));
  ASSERT_TRUE(reply.ok());
  EXPECT_TRUE(reply->cancelled);
  EXPECT_EQ(reply->audit_id, 77);

  // ServerError is Command's way of saying no in that shape.
  next_ = [](const FakeRequest&) -> std::optional<FakeResponse> {
    json config = testing::inventory_job_config("job-1", "web01", 77);
    config["ServerError"] = {{"Message", "Session is invalid"}};
    return FakeResponse::json(config);
  };
  reply = run(client_->job_configuration(job, "tok-1"));
  ASSERT_TRUE(reply.ok());
  EXPECT_TRUE(reply->result.is_error());
  EXPECT_FALSE(reply->result.session_invalid());  // a refusal without the invalid-session code

  // The invalid-session code (what sim/command answers for an expired or invalidated token).
  next_ = [](const FakeRequest&) -> std::optional<FakeResponse> {
    return FakeResponse::json({{"Result", error_result("A0100012", "The session token is not valid")}});
  };
  reply = run(client_->job_configuration(job, "tok-1"));
  ASSERT_TRUE(reply.ok());
  EXPECT_TRUE(reply->result.session_invalid());
}

TEST_F(ClientTest, PostJobDataPutsTheSessionTokenFirst) {
  auto reply = run(client_->post_job_data("/KeyfactorAgents/Jobs/job-1/Complete", "tok-9",
                                          completion_body("job-1", 2, 4242, "done"), "completion of job job-1"));
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  const auto request = server_->requests().back();
  EXPECT_EQ(request.target, "/KeyfactorAgents/Jobs/job-1/Complete");
  EXPECT_EQ(request.body.rfind("{\"SessionToken\":\"tok-9\",", 0), 0u) << request.body;
  const json body = request.json();
  EXPECT_EQ(body["JobId"], "job-1");
  EXPECT_EQ(body["Status"], 2);
  EXPECT_EQ(body["AuditId"], 4242);
  EXPECT_EQ(body["Message"], "done");
  EXPECT_EQ(run(client_->post_job_data("x", "t", "{}", "x")).ok(), true);
  EXPECT_EQ(server_->requests().back().body, "{\"SessionToken\":\"t\"}");
}

// Issue 14: heartbeats are never starved. With every shared connection busy on slow results and more queued,
// a heartbeat takes the origin's reserved slot and is answered first.
TEST_F(ClientTest, AHeartbeatIsNotQueuedBehindBusyConnections) {
  HttpClientOptions options;
  options.max_connections_per_origin = 2;
  options.request_timeout = std::chrono::seconds(20);
  auto http = std::move(HttpClient::create(io_.get_executor(), options).value());
  CommandClient client(*http, *auth_, client_->identity());
  next_ = [](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (r.target.find("/Jobs/") == std::string::npos) return std::nullopt;
    FakeResponse slow = FakeResponse::json({{"Result", ok_result()}});
    slow.delay = std::chrono::milliseconds(1500);
    return slow;
  };
  std::vector<std::string> finished;
  auto post = [&](std::string job) -> net::awaitable<void> {
    auto reply = co_await client.post_job_data("/KeyfactorAgents/Jobs/" + job + "/Complete", "t",
                                               completion_body(job, 2, 1, "done"), "completion of " + job);
    EXPECT_TRUE(reply.ok()) << reply.error().message;
    finished.push_back(job);
  };
  auto beat = [&]() -> net::awaitable<void> {
    // Queued after the four results: two hold the shared connections, two wait for them.
    net::steady_timer wait(io_, std::chrono::milliseconds(200));
    co_await wait.async_wait(net::use_awaitable);
    auto reply = co_await client.heartbeat("t");
    EXPECT_TRUE(reply.ok()) << reply.error().message;
    finished.push_back("heartbeat");
  };
  for (const char* job : {"j1", "j2", "j3", "j4"}) net::co_spawn(io_, post(job), net::detached);
  net::co_spawn(io_, beat(), net::detached);
  io_.restart();
  io_.run();
  ASSERT_EQ(finished.size(), 5u);
  EXPECT_EQ(finished.front(), "heartbeat");  // before any result, not after the first two
  EXPECT_EQ(server_->count("/KeyfactorAgents/Session/Heartbeat"), 1u);
}

// Every body InventoryBodyBuilder makes of `items`, in order (what the agent stores part by part).
std::vector<std::string> inventory_bodies(std::string_view job_id, const std::vector<jobs::InventoryItem>& items,
                                          std::size_t max_bytes) {
  InventoryBodyBuilder builder(job_id, max_bytes);
  std::vector<std::string> out;
  for (const auto& item : items) {
    if (auto full = builder.add(item)) out.push_back(std::move(*full));
  }
  out.push_back(builder.finish());
  return out;
}

TEST(InventoryChunkingTest, SplitsBySizeKeepingOrderAndValidJson) {
  std::vector<jobs::InventoryItem> items;
  for (int i = 0; i < 50; ++i) {
    jobs::InventoryItem item;
    item.alias = "alias-" + std::to_string(i);
    item.certificates = {std::string(900, 'A')};
    items.push_back(item);
  }
  const std::size_t limit = 4096;
  const auto bodies = inventory_bodies("job-1", items, limit);
  ASSERT_GT(bodies.size(), 10u);
  int next = 0;
  for (const auto& body : bodies) {
    EXPECT_LE(body.size(), limit);
    const json doc = json::parse(body);
    EXPECT_EQ(doc["JobId"], "job-1");
    for (const auto& item : doc["Inventory"]) EXPECT_EQ(item["Alias"], "alias-" + std::to_string(next++));
  }
  EXPECT_EQ(next, 50);
  // One body when it fits; an empty store is still reported; an oversized item goes alone.
  EXPECT_EQ(inventory_bodies("j", items, 10u * 1024 * 1024).size(), 1u);
  const auto empty = inventory_bodies("j", {}, limit);
  ASSERT_EQ(empty.size(), 1u);
  EXPECT_EQ(json::parse(empty[0])["Inventory"].size(), 0u);
  EXPECT_EQ(inventory_bodies("j", items, 100).size(), 50u);
}

// OAuth client credentials: the token endpoint lives on the same fake server at /token.
class OAuthTest : public ClientTest {
 protected:
  void SetUp() override {
    ClientTest::SetUp();
    OAuthSettings settings;
    settings.token_url = server_->url("/realms/kf/protocol/openid-connect/token");
    settings.client_id = "wincert agent";
    settings.client_secret = Secret("cs&SECRET");
    settings.scope = "kf-api";
    settings.token_lifetime = std::chrono::seconds(300);
    oauth_ = std::make_unique<OAuthClientCredentials>(*http_, settings, [this] { return fake_now_; });
    oauth_client_ = make_client(*oauth_);
  }
  FakeResponse handle(const FakeRequest& r) override {
    if (next_) {
      if (auto response = next_(r)) return *response;
    }
    if (r.target.rfind("/realms/", 0) == 0) {
      ++tokens_issued_;
      token_bodies_.push_back(r.body);
      return FakeResponse::json({{"access_token", "tok-" + std::to_string(tokens_issued_.load())},
                                 {"token_type", "Bearer"},
                                 {"expires_in", 60}});
    }
    // Command accepts only the newest token.
    if (r.header("authorization") != "Bearer tok-" + std::to_string(tokens_issued_.load()))
      return FakeResponse{401, ""};
    return ClientTest::handle(r);
  }

  std::chrono::steady_clock::time_point fake_now_ = std::chrono::steady_clock::now();
  std::atomic<int> tokens_issued_{0};
  std::vector<std::string> token_bodies_;
  std::unique_ptr<OAuthClientCredentials> oauth_;
  std::unique_ptr<CommandClient> oauth_client_;
};

TEST_F(OAuthTest, TokenIsCachedRefreshedBeforeExpiryAndRefetchedOnceAfter401) {
  ASSERT_TRUE(run(oauth_client_->heartbeat("s")).ok());
  ASSERT_TRUE(run(oauth_client_->heartbeat("s")).ok());
  EXPECT_EQ(oauth_->tokens_fetched(), 1u);  // cached
  ASSERT_EQ(token_bodies_.size(), 1u);
  EXPECT_EQ(token_bodies_[0],
            "grant_type=client_credentials&client_id=wincert+agent&client_secret=cs%26SECRET&scope=kf-api");

  // 60 s lifetime, refreshed 6 s early.
  fake_now_ += std::chrono::seconds(53);
  ASSERT_TRUE(run(oauth_client_->heartbeat("s")).ok());
  EXPECT_EQ(oauth_->tokens_fetched(), 1u);
  fake_now_ += std::chrono::seconds(2);
  ASSERT_TRUE(run(oauth_client_->heartbeat("s")).ok());
  EXPECT_EQ(oauth_->tokens_fetched(), 2u);

  // Command revokes the token early: one 401, a new token, the request succeeds.
  ++tokens_issued_;  // the server now expects a token the agent does not have
  auto reply = run(oauth_client_->heartbeat("s"));
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ(oauth_->tokens_fetched(), 3u);
  EXPECT_EQ(server_->requests().back().header("authorization"), "Bearer tok-4");

  // A 401 with a brand-new token is final; the error names the client, not the secret.
  next_ = [](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (r.target.rfind("/realms/", 0) == 0) return std::nullopt;
    return FakeResponse{401, ""};
  };
  reply = run(oauth_client_->heartbeat("s"));
  EXPECT_THAT(reply, ErrorWith(ErrorCode::kUnauthenticated, HttpStatus(401)));
  EXPECT_TRUE(is_auth_failure(reply.error()));
  EXPECT_NE(reply.error().message.find("OAuth client 'wincert agent'"), std::string::npos);
  EXPECT_EQ(reply.error().message.find("SECRET"), std::string::npos);
}

TEST_F(OAuthTest, TokenEndpointErrorsAreClassified) {
  next_ = [](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (r.target.rfind("/realms/", 0) != 0) return std::nullopt;
    return FakeResponse::json({{"error", "invalid_client"}, {"error_description", "bad secret"}}, 401);
  };
  auto reply = run(oauth_client_->heartbeat("s"));
  EXPECT_THAT(reply, ErrorWith(ErrorCode::kUnauthenticated, HttpStatus(401)));
  EXPECT_TRUE(is_auth_failure(reply.error()));
  // The identity provider's own words, for the person fixing the client.
  EXPECT_NE(reply.error().message.find("invalid_client"), std::string::npos) << reply.error().message;
  EXPECT_EQ(reply.error().message.find("SECRET"), std::string::npos);
  next_ = [](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (r.target.rfind("/realms/", 0) != 0) return std::nullopt;
    return FakeResponse{503, ""};
  };
  reply = run(oauth_client_->heartbeat("s"));
  EXPECT_THAT(reply, ErrorWith(ErrorCode::kUnavailable, HttpStatus(503)));
  EXPECT_FALSE(is_auth_failure(reply.error()));
  next_ = [](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (r.target.rfind("/realms/", 0) != 0) return std::nullopt;
    return FakeResponse::json({{"token_type", "Bearer"}});
  };
  reply = run(oauth_client_->heartbeat("s"));
  EXPECT_THAT(reply, HasCode(ErrorCode::kInvalidArgument));
}

// Numbers from Command and the token endpoint are range-checked before any conversion (a double out of
// long long's range cast to it is undefined behaviour; UBSan flagged it).
TEST(CommandNumbersTest, OutOfRangeNumbersAreNeverCast) {
  using ojson = nlohmann::ordered_json;
  const ojson values = ojson::parse(R"({"big": 1e300, "neg": -1e300, "nan_text": "NaN", "frac": 2.5,
      "edge": 9223372036854775807, "u": 18446744073709551615, "text": "42", "ok": 7.0})");
  EXPECT_FALSE(integer_in_range(find_member(values, "big"), LLONG_MIN, LLONG_MAX));
  EXPECT_FALSE(integer_in_range(find_member(values, "neg"), LLONG_MIN, LLONG_MAX));
  EXPECT_FALSE(integer_in_range(find_member(values, "nan_text"), LLONG_MIN, LLONG_MAX));
  EXPECT_FALSE(integer_in_range(find_member(values, "frac"), LLONG_MIN, LLONG_MAX));
  EXPECT_FALSE(integer_in_range(find_member(values, "u"), LLONG_MIN, LLONG_MAX));
  EXPECT_EQ(integer_in_range(find_member(values, "edge"), LLONG_MIN, LLONG_MAX), LLONG_MAX);
  EXPECT_EQ(integer_in_range(find_member(values, "text"), 0, 100), 42);
  EXPECT_EQ(integer_in_range(find_member(values, "ok"), 0, 100), 7);
  EXPECT_FALSE(integer_in_range(find_member(values, "text"), 0, 10));

  auto hb = interpret_heartbeat_reply(ojson::parse(R"({"HeartbeatInterval": 1e308, "SessionValid": {}})"));
  EXPECT_FALSE(hb.heartbeat_interval.has_value());
  auto reg = interpret_register_reply(ojson::parse(
      R"({"Session": {"Token": "t", "HeartbeatInterval": -1e308, "Jobs": [{"JobId": "j", "Priority": 1e300}]}})"));
  ASSERT_TRUE(reg.ok());
  ASSERT_EQ(reg->session.jobs.size(), 1u);
  EXPECT_EQ(reg->session.jobs[0].priority, 5);  // the default, not a cast of 1e300
  JobEntry job;
  job.job_id = "j";
  auto cfg = interpret_job_configuration(ojson::parse(R"({"AuditId": 1e300, "JobHistoryId": 12})"), job);
  EXPECT_EQ(cfg.audit_id, 12);

  const nlohmann::json expiries = nlohmann::json::parse(
      R"({"huge": 1e300, "neg": -5, "text": "3600", "bad": "36x", "zero": 0, "ok": 300, "u": 18446744073709551615})");
  EXPECT_FALSE(expires_in_seconds(expiries["huge"]));
  EXPECT_FALSE(expires_in_seconds(expiries["neg"]));
  EXPECT_EQ(expires_in_seconds(expiries["text"]), 3600);
  EXPECT_FALSE(expires_in_seconds(expiries["bad"]));
  EXPECT_FALSE(expires_in_seconds(expiries["zero"]));
  EXPECT_EQ(expires_in_seconds(expiries["ok"]), 300);
  EXPECT_FALSE(expires_in_seconds(expiries["u"]));
}

}  // namespace
}  // namespace wincert::agent
