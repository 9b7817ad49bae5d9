// The retry policy (jobs/retry_policy) alone, then run_job honouring it with faults injected at each layer
// as that layer reports them: transport (connection refused at connect, a connection the peer closed), WinRM
// (HTTP 503, the w:QuotaLimit fault, a broken shell), the host script (a permanent StoreNotFound) and Command
// (the inventory submission). Pinned: transient then success -> 2 attempts; transient until the deadline ->
// deadline_exceeded with the attempts counted; permanent -> exactly 1 attempt; a step that may have changed
// the host is not redone unless the failure provably never reached it.
#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <deque>
#include <map>
#include <stdexcept>

#include "common/encoding.hpp"
#include "jobs/capabilities.hpp"
#include "jobs/retry_policy.hpp"
#include "test_util.hpp"

namespace wincert::jobs {
namespace {

using namespace std::chrono_literals;
using boost::asio::awaitable;
using certstore::Task;
using testing::read_fixture;
using testing::run_awaitable;

// ---- the policy alone ----

TEST(RetryPolicy, BackoffDoublesFromTheBaseUpToTheCapWithJitterInTheUpperHalf) {
  RetryPolicy policy({10, 100ms, 1000ms});
  EXPECT_EQ(policy.backoff(1, 0.0), 50ms);  // half of the base
  EXPECT_EQ(policy.backoff(1, 0.999), 99ms);
  EXPECT_EQ(policy.backoff(2, 0.0), 100ms);
  EXPECT_EQ(policy.backoff(3, 0.5), 300ms);   // 400 ms: between 200 and 400
  EXPECT_EQ(policy.backoff(5, 1.0), 1000ms);  // 1600 ms capped at 1000
  EXPECT_EQ(policy.backoff(60, 0.0), 500ms);  // no overflow however many failures
  for (int n = 1; n < 8; ++n) {
    for (double r : {0.0, 0.25, 0.5, 0.75, 0.9999}) {
      const auto d = policy.backoff(n, r);
      EXPECT_GE(d, 50ms);
      EXPECT_LE(d, 1000ms);
    }
  }
}

TEST(RetryPolicy, OnlyTransientCodesAreRetried) {
  RetryPolicy policy({4, 10ms, 100ms});
  for (ErrorCode code :
       {ErrorCode::kUnavailable, ErrorCode::kDeadlineExceeded, ErrorCode::kResourceExhausted, ErrorCode::kAborted}) {
    auto d = policy.decide(code, true, 1, 1h, 0.5);
    EXPECT_EQ(d.verdict, RetryVerdict::kRetry) << error_code_name(code);
    EXPECT_GT(d.delay, 0ms);
  }
  for (ErrorCode code :
       {ErrorCode::kInvalidArgument, ErrorCode::kNotFound, ErrorCode::kAlreadyExists, ErrorCode::kPermissionDenied,
        ErrorCode::kUnauthenticated, ErrorCode::kFailedPrecondition, ErrorCode::kCancelled, ErrorCode::kInternal}) {
    EXPECT_EQ(policy.decide(code, true, 1, 1h, 0.5).verdict, RetryVerdict::kPermanent) << error_code_name(code);
  }
}

TEST(RetryPolicy, UnsafeExhaustedAndOutOfTimeEndTheJob) {
  RetryPolicy policy({3, 100ms, 1s});
  EXPECT_EQ(policy.decide(ErrorCode::kUnavailable, false, 1, 1h, 0.5).verdict, RetryVerdict::kUnsafe);
  EXPECT_EQ(policy.decide(ErrorCode::kUnavailable, true, 2, 1h, 0.5).verdict, RetryVerdict::kRetry);
  EXPECT_EQ(policy.decide(ErrorCode::kUnavailable, true, 3, 1h, 0.5).verdict, RetryVerdict::kAttemptsExhausted);
  // The wait (50-100 ms after the first failure) must end before the deadline.
  EXPECT_EQ(policy.decide(ErrorCode::kUnavailable, true, 1, 40ms, 0.0).verdict, RetryVerdict::kNoTimeLeft);
  EXPECT_EQ(policy.decide(ErrorCode::kUnavailable, true, 1, 0ms, 0.0).verdict, RetryVerdict::kNoTimeLeft);
  EXPECT_EQ(policy.decide(ErrorCode::kUnavailable, true, 1, 200ms, 0.0).verdict, RetryVerdict::kRetry);
  // A permanent failure is permanent whatever else holds.
  EXPECT_EQ(policy.decide(ErrorCode::kNotFound, false, 9, 0ms, 0.0).verdict, RetryVerdict::kPermanent);
  // max_attempts 1 never retries; nonsense options are clamped.
  EXPECT_EQ(RetryPolicy({1, 1ms, 1ms}).decide(ErrorCode::kUnavailable, true, 1, 1h, 0.0).verdict,
            RetryVerdict::kAttemptsExhausted);
  EXPECT_EQ(RetryPolicy({0, -5ms, -9ms}).options().max_attempts, 1);
}

TEST(RetryPolicy, OnlyARefusedConnectionProvablyNeverReachedTheHost) {
  EXPECT_TRUE(failed_before_reaching_host(
      Error::unavailable("refused").with_system_status(SystemStatusKind::kErrno, ECONNREFUSED).detail));
  EXPECT_TRUE(failed_before_reaching_host(
      Error::unavailable("refused").with_system_status(SystemStatusKind::kWin32, 10061).detail));  // WSAECONNREFUSED
  EXPECT_FALSE(failed_before_reaching_host(ErrorDetail{}));
  EXPECT_FALSE(failed_before_reaching_host(Error::unavailable("503").with_http_status(503).detail));
  EXPECT_FALSE(failed_before_reaching_host(
      Error::unavailable("reset").with_system_status(SystemStatusKind::kErrno, ECONNRESET).detail));
}

TEST(RetryPolicy, AttemptsNoteOnlyWhenRetried) {
  EXPECT_EQ(attempts_note(1), "");
  EXPECT_EQ(attempts_note(3), " (3 attempts)");
  const double r = retry_jitter_random();
  EXPECT_GE(r, 0.0);
  EXPECT_LT(r, 1.0 + 1e-12);
}

// ---- run_job with faults injected at each layer ----

// What each layer reports, as data (code and detail), the way the layer builds it.
Error refused_at_connect() {
  return Error::unavailable("connection refused by web01:5986: is WinRM listening on port 5986?")
      .with_system_status(SystemStatusKind::kErrno, ECONNREFUSED);
}
Error connection_closed() {
  return Error::unavailable("web01:5986 closed the connection before answering")
      .with_system_status(SystemStatusKind::kErrno, ECONNRESET);
}
Error service_unavailable() {
  return Error::unavailable("WinRM at https://web01:5986/wsman answered HTTP 503 (Service Unavailable)")
      .with_http_status(503);
}
Error quota_limit() {
  return Error::resource_exhausted(
             "the WS-Management service cannot process the request: the user has too many "
             "shells open (w:QuotaLimit)")
      .with_http_status(500)
      .with_wsman_fault("w:QuotaLimit");
}
Error broken_shell() { return Error::aborted("the shell on web01 was closed while the command ran"); }
Error store_not_found() {
  return Error::not_found("store 'Nope' does not exist on web01").with_script_category("StoreNotFound");
}

// A host whose every call can be scripted to fail a few times first.
struct ScriptedHost {
  std::map<std::string, std::deque<Error>> failures;  // call name -> errors to return, in order
  std::map<std::string, int> calls;
  std::deque<Error> open_failures;
  int opens = 0;

  std::optional<Error> next(const std::string& call) {
    ++calls[call];
    auto& queue = failures[call];
    if (queue.empty()) return std::nullopt;
    Error e = queue.front();
    queue.pop_front();
    return e;
  }
  void fail(const std::string& call, Error e, int times = 1) {
    for (int i = 0; i < times; ++i) failures[call].push_back(e);
  }
};

class ScriptedStore final : public certstore::CertStore {
 public:
  explicit ScriptedStore(ScriptedHost& host) : host_(host) {}
  Task<certstore::StoreInventory> inventory(std::string store) override {
    if (auto e = host_.next("inventory")) co_return *e;
    certstore::StoreInventory inv;
    inv.store = store;
    co_return inv;
  }
  Task<certstore::AddCertificateResult> add(certstore::AddCertificateRequest) override {
    if (auto e = host_.next("add")) co_return *e;
    certstore::AddCertificateResult r;
    r.thumbprint = "1111111111111111111111111111111111111111";
    co_return r;
  }
  Task<certstore::RemoveResult> remove(certstore::RemoveRequest) override {
    if (auto e = host_.next("remove")) co_return *e;
    certstore::RemoveResult r;
    r.found = r.removed = true;
    co_return r;
  }
  Task<certstore::CertificateRequest> create_csr(certstore::CsrRequest) override {
    if (auto e = host_.next("create_csr")) co_return *e;
    certstore::CertificateRequest r;
    r.info.der = "CSR-DER";
    co_return r;
  }
  Task<certstore::InstallIssuedResult> install_issued(certstore::InstallIssuedRequest) override {
    if (auto e = host_.next("install_issued")) co_return *e;
    co_return certstore::InstallIssuedResult{"1111111111111111111111111111111111111111", true};
  }

 private:
  ScriptedHost& host_;
};

// A host session whose certificate store is scripted; the bindings are never reached by these jobs.
class ScriptedHostSession final : public certstore::HostSession {
 public:
  explicit ScriptedHostSession(ScriptedHost& host) : certs_(host) {}
  certstore::CertStore& certs() override { return certs_; }
  certstore::IisBindings& iis() override { throw std::logic_error("the retry tests run WinCert jobs only"); }
  certstore::SqlBindings& sql() override { throw std::logic_error("the retry tests run WinCert jobs only"); }

 private:
  ScriptedStore certs_;
};

class ScriptedSessions final : public StoreSessionFactory {
 public:
  explicit ScriptedSessions(ScriptedHost& host) : host_(host) {}
  awaitable<Result<HostSessionHandle>> open(const Target&) override {
    ++host_.opens;
    if (!host_.open_failures.empty()) {
      Error e = host_.open_failures.front();
      host_.open_failures.pop_front();
      co_return e;
    }
    co_return HostSessionHandle(std::make_shared<ScriptedHostSession>(host_));
  }

 private:
  ScriptedHost& host_;
};

class RetryTest : public ::testing::Test {
 protected:
  RetryTest() : sessions_(host_) {
    services_.sessions = &sessions_;
    services_.retry = {4, 1ms, 5ms};  // fast: the policy's timing is pinned above
    services_.callbacks.begin_inventory = collect_inventory([this](std::vector<InventoryItem>) -> awaitable<Status> {
      ++submissions_;
      if (!command_failures_.empty()) {
        Error e = command_failures_.front();
        command_failures_.pop_front();
        co_return e;
      }
      co_return Status{};
    });
    services_.callbacks.submit_csr = [this](const certstore::CertificateRequest&) -> awaitable<Result<std::string>> {
      ++csrs_;
      if (!command_failures_.empty()) {
        Error e = command_failures_.front();
        command_failures_.pop_front();
        co_return e;
      }
      co_return base64_encode(std::string("ISSUED-DER"));
    };
  }

  JobConfig load(const std::string& fixture, std::vector<std::string> overrides) {
    std::string text = read_fixture(fixture);
    overrides.insert(overrides.begin(),
                     {"CertificateStoreDetails.ClientMachine=web01", "CertificateStoreDetails.StorePath=My",
                      "CertificateStoreDetails.Properties.WinRm Protocol=https",
                      "CertificateStoreDetails.Properties.WinRm Port=5986"});
    for (const auto& o : overrides) {
      auto edited = apply_override(text, o);
      EXPECT_TRUE(edited.ok()) << o;
      if (edited.ok()) text = edited.value();
    }
    auto parsed = parse_job_config(text);
    EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.error().message);
    return parsed.ok() ? std::move(parsed).value() : JobConfig{};
  }
  JobConfig inventory() { return load("WinCertInventory.json", {}); }
  JobConfig add() { return load("Management.json", {"Capability=CertStores.WinCert.Management", "OperationType=2"}); }
  JobConfig reenrollment() {
    return load("Management.json",
                {"Capability=CertStores.WinCert.Reenrollment", "JobProperties.subjectText=CN=www.example.com",
                 "JobProperties.keyType=ECC", "JobProperties.keySize=P-256", "SANs.dns=www.example.com"});
  }

  JobResult run(const JobConfig& config) { return run_awaitable(run_job(registry_, config, services_)); }

  CapabilityRegistry registry_ = make_default_registry();
  ScriptedHost host_;
  ScriptedSessions sessions_;
  JobServices services_;
  std::deque<Error> command_failures_;
  int submissions_ = 0;
  int csrs_ = 0;
};

TEST_F(RetryTest, ATransientFailureAtEachLayerThenSuccessSucceedsOnTheSecondAttempt) {
  const std::vector<std::pair<std::string, Error>> faults = {
      {"transport: refused at connect", refused_at_connect()},
      {"transport: connection closed", connection_closed()},
      {"WinRM: HTTP 503", service_unavailable()},
      {"WinRM: w:QuotaLimit", quota_limit()},
      {"WinRM: broken shell", broken_shell()},
      {"host: a script timed out", Error::deadline_exceeded("the script on web01 did not finish within 10 min")},
  };
  for (const auto& [layer, fault] : faults) {
    SCOPED_TRACE(layer);
    host_ = {};
    host_.fail("inventory", fault);
    JobResult result = run(inventory());
    EXPECT_EQ(result.status, JobStatus::kSuccess) << result.message;
    EXPECT_EQ(result.attempts, 2);
    EXPECT_EQ(host_.calls["inventory"], 2);
    EXPECT_EQ(host_.opens, 2) << "each attempt runs on a session of its own";
    EXPECT_TRUE(result.message.ends_with(" (2 attempts)")) << result.message;
    EXPECT_FALSE(result.error_code.has_value());
  }
}

TEST_F(RetryTest, ASessionThatCannotBeOpenedIsRetriedForEveryKindOfJob) {
  for (const JobConfig& config : {inventory(), add(), reenrollment()}) {
    SCOPED_TRACE(config.capability);
    host_ = {};
    host_.open_failures = {refused_at_connect(), service_unavailable()};
    JobResult result = run(config);
    EXPECT_EQ(result.status, JobStatus::kSuccess) << result.message;
    EXPECT_EQ(result.attempts, 3);
    EXPECT_TRUE(result.message.ends_with(" (3 attempts)")) << result.message;
  }
}

TEST_F(RetryTest, TransientUntilTheAttemptsRunOutFailsWithTheLastCauseAndTheCount) {
  host_.fail("inventory", quota_limit(), 10);
  JobResult result = run(inventory());
  ASSERT_EQ(result.status, JobStatus::kFailure);
  EXPECT_EQ(result.attempts, 4);
  EXPECT_EQ(host_.calls["inventory"], 4);
  EXPECT_EQ(result.error_code, ErrorCode::kResourceExhausted);
  EXPECT_EQ(result.error_detail.wsman_fault, "w:QuotaLimit");
  EXPECT_TRUE(result.retryable());
  // What a person reads: where it failed, why, and how often it was tried.
  EXPECT_NE(result.message.find("at host 'web01'"), std::string::npos) << result.message;
  EXPECT_TRUE(result.message.ends_with("(w:QuotaLimit) (4 attempts)")) << result.message;
}

TEST_F(RetryTest, TransientUntilTheDeadlineFailsWithDeadlineExceededAndTheAttemptsMade) {
  services_.retry = {1000, 20ms, 20ms};
  services_.deadline = std::chrono::steady_clock::now() + 300ms;
  host_.fail("inventory", service_unavailable(), 1000);
  const auto start = std::chrono::steady_clock::now();
  JobResult result = run(inventory());
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(result.status, JobStatus::kFailure);
  EXPECT_EQ(result.error_code, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(result.error_detail.http_status, 503) << "the last cause's detail is kept";
  EXPECT_GE(result.attempts, 3);
  EXPECT_LE(result.attempts, 31);  // waits of 10-20 ms within 300 ms
  EXPECT_EQ(host_.calls["inventory"], result.attempts);
  EXPECT_LT(took, 1s);
  EXPECT_NE(result.message.find("within the job's deadline (JobTimeoutSeconds) (" + std::to_string(result.attempts) +
                                " attempts)"),
            std::string::npos)
      << result.message;
}

TEST_F(RetryTest, APermanentFailureAtEachLayerEndsTheJobAfterOneAttempt) {
  const std::vector<std::pair<std::string, Error>> faults = {
      {"host script: StoreNotFound", store_not_found()},
      {"WinRM: access denied", Error::permission_denied("Access is denied.").with_wsman_fault("w:AccessDenied")},
      {"transport: 401", Error::unauthenticated("web01 refused the credentials (HTTP 401)").with_http_status(401)},
  };
  for (const auto& [layer, fault] : faults) {
    SCOPED_TRACE(layer);
    host_ = {};
    host_.fail("inventory", fault, 5);
    JobResult result = run(inventory());
    ASSERT_EQ(result.status, JobStatus::kFailure);
    EXPECT_EQ(result.attempts, 1);
    EXPECT_EQ(host_.calls["inventory"], 1);
    EXPECT_EQ(result.error_code, fault.code);
    EXPECT_FALSE(result.retryable());
    EXPECT_EQ(result.message.find("attempts"), std::string::npos) << result.message;
  }
  host_ = {};
  host_.fail("inventory", store_not_found());
  JobResult missing = run(inventory());
  EXPECT_EQ(missing.error_detail.script_category, "StoreNotFound");
}

TEST_F(RetryTest, AHostChangingStepThatFailedAfterReachingTheHostIsNotRedone) {
  // 503, quota, a closed connection, a broken shell: the add may have run on the host.
  for (const Error& fault : {service_unavailable(), quota_limit(), connection_closed(), broken_shell()}) {
    SCOPED_TRACE(fault.message);
    host_ = {};
    host_.fail("add", fault);
    JobResult result = run(add());
    ASSERT_EQ(result.status, JobStatus::kFailure);
    EXPECT_EQ(result.attempts, 1);
    EXPECT_EQ(host_.calls["add"], 1);
    EXPECT_EQ(result.error_code, fault.code);
    EXPECT_TRUE(result.retryable()) << "transient, but not redone inside this job";
  }
  // Key generation for a reenrollment changes the host too.
  host_ = {};
  host_.fail("create_csr", service_unavailable());
  JobResult csr = run(reenrollment());
  EXPECT_EQ(csr.attempts, 1);
  EXPECT_EQ(host_.calls["create_csr"], 1);
  // And so does everything after it: Command failing to sign is not retried by re-running the job.
  host_ = {};
  command_failures_ = {Error::unavailable("Command answered HTTP 503").with_http_status(503)};
  JobResult signing = run(reenrollment());
  EXPECT_EQ(signing.status, JobStatus::kFailure);
  EXPECT_EQ(signing.attempts, 1);
  EXPECT_EQ(csrs_, 1);
  EXPECT_EQ(host_.calls["create_csr"], 1);
}

TEST_F(RetryTest, AHostChangingStepRefusedAtConnectNeverReachedTheHostAndIsRedone) {
  host_.fail("add", refused_at_connect());
  JobResult result = run(add());
  EXPECT_EQ(result.status, JobStatus::kSuccess) << result.message;
  EXPECT_EQ(result.attempts, 2);
  EXPECT_EQ(host_.calls["add"], 2);

  host_ = {};
  host_.fail("remove", refused_at_connect());
  JobResult removed = run(load("ManagementRemove.json", {"Capability=CertStores.WinCert.Management"}));
  EXPECT_EQ(removed.status, JobStatus::kSuccess) << removed.message;
  EXPECT_EQ(removed.attempts, 2);
}

TEST_F(RetryTest, CommandFailingTheInventorySubmissionRedoesTheIdempotentInventory) {
  command_failures_ = {Error::unavailable("Command answered HTTP 503").with_http_status(503)};
  JobResult result = run(inventory());
  EXPECT_EQ(result.status, JobStatus::kSuccess) << result.message;
  EXPECT_EQ(result.attempts, 2);
  EXPECT_EQ(submissions_, 2);

  // Command refusing it for good is not retried.
  command_failures_ = {Error::permission_denied("Command answered HTTP 403").with_http_status(403)};
  submissions_ = 0;
  JobResult refused = run(inventory());
  EXPECT_EQ(refused.status, JobStatus::kFailure);
  EXPECT_EQ(refused.attempts, 1);
  EXPECT_EQ(submissions_, 1);
  EXPECT_EQ(refused.error_detail.http_status, 403);
}

TEST_F(RetryTest, JobInputErrorsAreNeverRetriedAndCarryTheirCode) {
  JobResult bad = run(load("Management.json", {"Capability=CertStores.WinCert.Management", "OperationType=4"}));
  EXPECT_EQ(bad.status, JobStatus::kFailure);
  EXPECT_EQ(bad.error_code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.attempts, 1);
  EXPECT_EQ(host_.calls["add"], 0);

  JobResult unknown = run(load("WinCertInventory.json", {"Capability=CertStores.WinAdfs.Inventory"}));
  EXPECT_EQ(unknown.error_code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(host_.opens, 0) << "refused before connecting to the host";
}

}  // namespace
}  // namespace wincert::jobs
