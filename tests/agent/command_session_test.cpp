// CommandSession (agent/command_session.cpp) against a scripted Command: registration saves the AgentId
// and sends it next time, an invalid session (heartbeat or a job endpoint's A0100012) registers again, a
// refusal stops, heartbeats follow the interval, an AgentId that cannot be written is reported and retried.
#include "agent/command_session.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <filesystem>

#include "common/encoding.hpp"
#include "tests/agent/daemon_test_support.hpp"
#include "tests/agent/scripted_command.hpp"

namespace wincert::agent {
namespace {

namespace net = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::run_until;
using testing::ScriptedCommand;
using testing::session_reply;
using testing::TempDir;

constexpr const char* kAgentId = "0f0e0d0c-0b0a-0908-0706-050403020100";

SessionOptions options_in(const TempDir& dir) {
  SessionOptions options;
  options.orchestrator_name = "orch-test";
  options.capabilities = {"CertStores.WinCert.Inventory", "CertStores.WinCert.Management"};
  options.agent_id_file = dir.file("agent-id");
  options.job_poll_interval = 0s;
  options.retry_initial = 10ms;
  options.retry_max = 50ms;
  return options;
}

// Starts the session's loops on `io`; returns a flag set when the registration loop returned.
std::shared_ptr<bool> start(net::io_context& io, CommandSession& session, bool heartbeats = false) {
  auto ended = std::make_shared<bool>(false);
  net::co_spawn(
      io,
      [&session, ended]() -> net::awaitable<void> {
        co_await session.run_registration();
        *ended = true;
      },
      net::detached);
  if (heartbeats) net::co_spawn(io, session.run_heartbeats(), net::detached);
  return ended;
}

void stop_and_drain(net::io_context& io, CommandSession& session) {
  session.stop();
  session.finish_by(std::chrono::steady_clock::now());
  io.run_for(50ms);
}

TEST(CommandSessionTest, RegistersSavesTheAgentIdAndSendsItNextTime) {
  TempDir dir;
  net::io_context io;
  ScriptedCommand command;
  command.default_jobs = {testing::job_entry("job-1"), testing::job_entry("job-2")};
  CommandSession session(io.get_executor(), command, options_in(dir));
  std::vector<JobEntry> listed;
  session.on_job_list([&](const std::vector<JobEntry>& jobs) {
    listed = jobs;
    return jobs.size();
  });
  start(io, session);
  ASSERT_TRUE(run_until(io, [&] { return session.registered(); }));

  EXPECT_EQ(session.stats().registrations, 1u);
  EXPECT_EQ(session.agent_id(), kAgentId);
  EXPECT_FALSE(session.agent_id_unsaved());
  EXPECT_EQ(testing::read_text(dir.file("agent-id")), std::string(kAgentId) + "\n");
  ASSERT_EQ(command.register_agent_ids.size(), 1u);
  EXPECT_EQ(command.register_agent_ids[0], "");  // nothing saved before the first start
  EXPECT_EQ(command.register_capabilities[0], options_in(dir).capabilities);
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[1].job_id, "job-2");
  stop_and_drain(io, session);

  // The next start reads the AgentId and sends it.
  net::io_context io2;
  ScriptedCommand command2;
  CommandSession again(io2.get_executor(), command2, options_in(dir));
  EXPECT_EQ(again.agent_id(), kAgentId);
  start(io2, again);
  ASSERT_TRUE(run_until(io2, [&] { return again.registered(); }));
  ASSERT_EQ(command2.register_agent_ids.size(), 1u);
  EXPECT_EQ(command2.register_agent_ids[0], kAgentId);
  stop_and_drain(io2, again);
}

TEST(CommandSessionTest, AJunkAgentIdFileIsIgnored) {
  TempDir dir;
  testing::write_text(dir.file("agent-id"), "not an id; rm -rf /\n");
  EXPECT_EQ(read_agent_id(dir.file("agent-id")), "");
  testing::write_text(dir.file("agent-id"), std::string(kAgentId) + "  \n");
  EXPECT_EQ(read_agent_id(dir.file("agent-id")), kAgentId);
  EXPECT_EQ(read_agent_id(dir.file("missing")), "");
}

TEST(CommandSessionTest, TransientRegistrationFailuresAreRetried) {
  TempDir dir;
  net::io_context io;
  ScriptedCommand command;
  command.register_script.push_back(Error::unavailable("Command down (connection refused)"));
  command.register_script.push_back(Error::unavailable("Command down (HTTP 503)").with_http_status(503));
  CommandSession session(io.get_executor(), command, options_in(dir));
  start(io, session);
  ASSERT_TRUE(run_until(io, [&] { return session.registered(); }));
  EXPECT_EQ(command.registrations, 3);
  EXPECT_EQ(session.stats().registrations, 1u);  // counts granted registrations
  stop_and_drain(io, session);
}

TEST(CommandSessionTest, AnInvalidSessionRegistersAgain) {
  TempDir dir;
  net::io_context io;
  ScriptedCommand command;
  CommandSession session(io.get_executor(), command, options_in(dir));
  start(io, session);
  ASSERT_TRUE(run_until(io, [&] { return session.registered(); }));
  const auto first = testing::run_awaitable(session.current_token());
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, "tok-1");

  // A job endpoint answered A0100012 for a token already replaced: nothing happens.
  session.invalidate("tok-0");
  EXPECT_TRUE(session.registered());
  // For the current one: the token is dropped at once, a new registration follows.
  session.invalidate("tok-1");
  EXPECT_FALSE(session.registered());
  ASSERT_TRUE(run_until(io, [&] { return session.registered(); }));
  EXPECT_EQ(command.registrations, 2);
  std::optional<std::string> second;
  net::co_spawn(
      io, [&]() -> net::awaitable<void> { second = co_await session.current_token(); }, net::detached);
  ASSERT_TRUE(run_until(io, [&] { return second.has_value(); }));
  EXPECT_EQ(*second, "tok-2");
  stop_and_drain(io, session);
}

TEST(CommandSessionTest, AHeartbeatSayingTheSessionIsInvalidRegistersAgain) {
  TempDir dir;
  net::io_context io;
  ScriptedCommand command;
  command.default_heartbeat = 1s;
  command.on_heartbeat = [](const std::string&) -> Result<HeartbeatReply> {
    HeartbeatReply reply;
    reply.result = testing::api_ok();
    reply.session_valid = false;
    return reply;
  };
  CommandSession session(io.get_executor(), command, options_in(dir));
  start(io, session, /*heartbeats=*/true);
  ASSERT_TRUE(run_until(
      io, [&] { return command.registrations >= 2; }, 5s));
  ASSERT_FALSE(command.heartbeat_tokens.empty());
  EXPECT_EQ(command.heartbeat_tokens[0], "tok-1");
  stop_and_drain(io, session);
}

TEST(CommandSessionTest, ARefusalStopsTheSession) {
  TempDir dir;
  net::io_context io;
  ScriptedCommand command;
  RegisterReply rejected;
  rejected.state = RegisterState::kRejected;
  rejected.result = testing::api_error("A0100011");
  command.register_script.push_back(rejected);
  CommandSession session(io.get_executor(), command, options_in(dir));
  int refusals = 0;
  session.on_refused([&] { ++refusals; });
  auto ended = start(io, session);
  ASSERT_TRUE(run_until(io, [&] { return *ended; }));
  EXPECT_EQ(refusals, 1);
  EXPECT_TRUE(session.refused());
  EXPECT_FALSE(session.registered());
  EXPECT_EQ(command.registrations, 1);  // not asked again
  // Whoever waits for a token hears that none comes.
  EXPECT_FALSE(testing::run_awaitable(session.current_token()).has_value());
}

TEST(CommandSessionTest, CredentialsCommandRefusesStopTheSession) {
  TempDir dir;
  net::io_context io;
  ScriptedCommand command;
  command.register_script.push_back(Error::unauthenticated("Command answered HTTP 401").with_http_status(401));
  CommandSession session(io.get_executor(), command, options_in(dir));
  int refusals = 0;
  session.on_refused([&] { ++refusals; });
  auto ended = start(io, session);
  ASSERT_TRUE(run_until(io, [&] { return *ended; }));
  EXPECT_EQ(refusals, 1);
  EXPECT_EQ(command.registrations, 1);
}

TEST(CommandSessionTest, PendingApprovalIsWaitedFor) {
  TempDir dir;
  net::io_context io;
  ScriptedCommand command;
  RegisterReply pending;
  pending.state = RegisterState::kPendingApproval;
  pending.result = testing::api_error("A0100010");
  command.register_script.push_back(pending);
  command.register_script.push_back(pending);
  CommandSession session(io.get_executor(), command, options_in(dir));
  start(io, session);
  ASSERT_TRUE(run_until(io, [&] { return session.registered(); }));
  EXPECT_EQ(command.registrations, 3);
  EXPECT_FALSE(session.refused());
  stop_and_drain(io, session);
}

TEST(CommandSessionTest, HeartbeatsFollowTheConfiguredInterval) {
  TempDir dir;
  net::io_context io;
  ScriptedCommand command;
  command.default_heartbeat = 300s;  // Command's; the configuration overrides it
  auto options = options_in(dir);
  options.heartbeat_interval = 1s;
  CommandSession session(io.get_executor(), command, options);
  start(io, session, /*heartbeats=*/true);
  ASSERT_TRUE(run_until(io, [&] { return session.registered(); }));
  EXPECT_EQ(session.heartbeat_interval(), 1s);
  const auto t0 = std::chrono::steady_clock::now();
  run_until(
      io, [] { return false; }, 2500ms);
  // One a second: two in 2.5 s (the timing restarts at the registration).
  EXPECT_GE(session.stats().heartbeats, 2u);
  EXPECT_LE(session.stats().heartbeats, 3u);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 2500ms);
  for (const auto& token : command.heartbeat_tokens) EXPECT_EQ(token, "tok-1");
  stop_and_drain(io, session);
}

TEST(CommandSessionTest, CommandsHeartbeatIntervalIsUsedWithoutAConfiguredOne) {
  TempDir dir;
  net::io_context io;
  ScriptedCommand command;
  command.default_heartbeat = 1s;
  CommandSession session(io.get_executor(), command, options_in(dir));
  start(io, session, /*heartbeats=*/true);
  ASSERT_TRUE(run_until(io, [&] { return session.registered(); }));
  EXPECT_EQ(session.heartbeat_interval(), 1s);
  ASSERT_TRUE(run_until(
      io, [&] { return session.stats().heartbeats >= 1; }, 3s));
  stop_and_drain(io, session);
}

TEST(CommandSessionTest, AnAgentIdThatCannotBeSavedIsReportedAndRetried) {
  TempDir dir;
  // The AgentId file's directory is a regular file: every write fails (also as root).
  const std::string blocked = dir.file("state");
  testing::write_text(blocked, "in the way");
  auto options = options_in(dir);
  options.agent_id_file = blocked + "/agent-id";
  net::io_context io;
  ScriptedCommand command;
  CommandSession session(io.get_executor(), command, options);
  start(io, session);
  net::co_spawn(io, session.run_agent_id_saver(), net::detached);
  ASSERT_TRUE(run_until(io, [&] { return session.registered(); }));
  // Registered all the same, the id kept in memory and reported unsaved.
  EXPECT_EQ(session.agent_id(), kAgentId);
  EXPECT_TRUE(session.agent_id_unsaved());
  ASSERT_TRUE(run_until(io, [&] { return session.stats().agent_id_save_failures >= 3; }));  // retried

  // The directory becomes usable: the next retry saves it.
  fs::remove(blocked);
  fs::create_directory(blocked);
  ASSERT_TRUE(run_until(io, [&] { return !session.agent_id_unsaved(); }));
  EXPECT_EQ(testing::read_text(options.agent_id_file), std::string(kAgentId) + "\n");
  stop_and_drain(io, session);
}

TEST(CommandSessionTest, AnUnsavedAgentIdIsGivenUpAtTheShutdownDeadline) {
  TempDir dir;
  const std::string blocked = dir.file("state");
  testing::write_text(blocked, "in the way");
  auto options = options_in(dir);
  options.agent_id_file = blocked + "/agent-id";
  net::io_context io;
  ScriptedCommand command;
  CommandSession session(io.get_executor(), command, options);
  start(io, session);
  bool saver_ended = false;
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        co_await session.run_agent_id_saver();
        saver_ended = true;
      },
      net::detached);
  ASSERT_TRUE(run_until(io, [&] { return session.registered(); }));
  session.stop();
  session.finish_by(std::chrono::steady_clock::now() + 200ms);
  ASSERT_TRUE(run_until(
      io, [&] { return saver_ended; }, 3s));
  EXPECT_TRUE(session.agent_id_unsaved());
}

TEST(CommandSessionTest, ARefreshOfTheJobListRegistersAgainKeepingTheToken) {
  TempDir dir;
  net::io_context io;
  ScriptedCommand command;
  CommandSession session(io.get_executor(), command, options_in(dir));
  int lists = 0;
  session.on_job_list([&](const std::vector<JobEntry>& jobs) {
    ++lists;
    return jobs.size();
  });
  start(io, session);
  ASSERT_TRUE(run_until(io, [&] { return lists == 1; }));
  session.refresh_job_list();
  EXPECT_TRUE(session.registered());  // the old token stays usable meanwhile
  ASSERT_TRUE(run_until(io, [&] { return lists == 2; }));
  EXPECT_EQ(command.registrations, 2);
  stop_and_drain(io, session);
}

// ---- agent certificate renewal ----

namespace renewal {

// Records what the session asks of the renewal; a certificate "installed" is pending until confirmed.
class FakeRenewal final : public CertificateRenewal {
 public:
  bool due_now = false;
  bool request_fails = false;
  int requests = 0;
  std::vector<std::string> installed;
  int confirmed = 0;
  int reverted = 0;
  bool pending = false;

  bool due() override { return due_now; }
  net::awaitable<Result<std::string>> request() override {
    ++requests;
    if (request_fails) co_return Error::invalid_argument("AgentCertificate.Subject is not a subject");
    co_return "CSR-" + std::to_string(requests);
  }
  net::awaitable<Status> install(std::string certificate) override {
    installed.push_back(certificate);
    pending = true;
    due_now = false;
    co_return Status{};
  }
  bool unconfirmed() const override { return pending; }
  Status confirm() override {
    ++confirmed;
    pending = false;
    return {};
  }
  Status revert() override {
    ++reverted;
    pending = false;
    return {};
  }
};

RegisterReply renewal_reply(ApiStatus status, std::string_view code, bool with_session) {
  RegisterReply reply = with_session ? session_reply("tok-r") : RegisterReply{};
  reply.state = with_session
                    ? RegisterState::kSession
                    : (iequals(code, kRenewalRequired) ? RegisterState::kRejected : RegisterState::kPendingApproval);
  reply.result = testing::api_error(std::string(code));
  reply.result.status = status;
  return reply;
}

}  // namespace renewal

TEST(CommandSessionRenewalTest, RequiredRenewalSendsACsrInstallsTheCertificateAndConfirmsItByRegistering) {
  TempDir dir;
  net::io_context io;
  ScriptedCommand command;
  renewal::FakeRenewal fake;
  command.register_script.push_back(renewal::renewal_reply(ApiStatus::kError, kRenewalRequired, false));
  RegisterReply issued = session_reply("tok-new");
  issued.session.certificate = "NEW-CERT-DER";
  command.register_script.push_back(issued);
  auto options = options_in(dir);
  options.renewal = &fake;
  CommandSession session(io.get_executor(), command, options);
  int refusals = 0;
  session.on_refused([&] { ++refusals; });
  start(io, session);
  ASSERT_TRUE(run_until(io, [&] { return fake.confirmed == 1; }));
  EXPECT_EQ(refusals, 0) << "A0100008 with a renewal at hand is not a refusal";
  ASSERT_GE(command.register_csrs.size(), 3u);
  EXPECT_EQ(command.register_csrs[0], "") << "the first registration had no reason to renew";
  EXPECT_EQ(command.register_csrs[1], "CSR-1") << "Command's A0100008 answered with a request";
  EXPECT_EQ(command.register_csrs[2], "") << "the confirming registration presents the new pair, no request";
  EXPECT_EQ(fake.installed, std::vector<std::string>{"NEW-CERT-DER"});
  EXPECT_EQ(fake.reverted, 0);
  EXPECT_TRUE(session.registered());
  EXPECT_EQ(session.stats().certificates_renewed, 1u);
  stop_and_drain(io, session);
}

TEST(CommandSessionRenewalTest, RequestedRenewalKeepsTheSessionAndAsksAgainWithACsr) {
  TempDir dir;
  net::io_context io;
  ScriptedCommand command;
  renewal::FakeRenewal fake;
  command.register_script.push_back(renewal::renewal_reply(ApiStatus::kWarning, "a0100007", true));
  RegisterReply issued = session_reply("tok-2");
  issued.session.certificate = "NEW-CERT-DER";
  command.register_script.push_back(issued);
  auto options = options_in(dir);
  options.renewal = &fake;
  CommandSession session(io.get_executor(), command, options);
  start(io, session);
  ASSERT_TRUE(run_until(io, [&] { return fake.confirmed == 1; }));
  EXPECT_EQ(command.register_csrs.at(1), "CSR-1") << "the code is compared ignoring case, as the C agent does";
  EXPECT_TRUE(session.registered());
  stop_and_drain(io, session);
}

TEST(CommandSessionRenewalTest, ACertificateCloseToExpiryIsRenewedAtRegistration) {
  TempDir dir;
  net::io_context io;
  ScriptedCommand command;
  renewal::FakeRenewal fake;
  fake.due_now = true;
  RegisterReply issued = session_reply("tok-1");
  issued.session.certificate = "NEW-CERT-DER";
  command.register_script.push_back(issued);
  auto options = options_in(dir);
  options.renewal = &fake;
  CommandSession session(io.get_executor(), command, options);
  start(io, session);
  ASSERT_TRUE(run_until(io, [&] { return fake.confirmed == 1; }));
  EXPECT_EQ(command.register_csrs.at(0), "CSR-1");
  EXPECT_EQ(fake.requests, 1);
  stop_and_drain(io, session);
}

TEST(CommandSessionRenewalTest, ARenewedCertificateCommandRefusesIsRevertedAndThePreviousPairUsed) {
  TempDir dir;
  net::io_context io;
  ScriptedCommand command;
  renewal::FakeRenewal fake;
  fake.pending = true;  // a pending pair found at start, presented first
  command.register_script.push_back(Error::unauthenticated("Command answered HTTP 401").with_http_status(401));
  auto options = options_in(dir);
  options.renewal = &fake;
  CommandSession session(io.get_executor(), command, options);
  int refusals = 0;
  session.on_refused([&] { ++refusals; });
  start(io, session);
  ASSERT_TRUE(run_until(io, [&] { return session.registered(); }));
  EXPECT_EQ(fake.reverted, 1);
  EXPECT_EQ(fake.confirmed, 0);
  EXPECT_EQ(refusals, 0) << "the old pair still works";
  EXPECT_EQ(command.registrations, 2);
  stop_and_drain(io, session);
}

TEST(CommandSessionRenewalTest, ARequestThatCannotBeMadeBacksOffInsteadOfRegisteringInALoop) {
  TempDir dir;
  net::io_context io;
  ScriptedCommand command;
  renewal::FakeRenewal fake;
  fake.request_fails = true;
  for (int i = 0; i < 200; ++i)
    command.register_script.push_back(renewal::renewal_reply(ApiStatus::kError, kRenewalRequired, false));
  auto options = options_in(dir);
  options.renewal = &fake;
  CommandSession session(io.get_executor(), command, options);
  start(io, session);
  io.run_for(150ms);
  EXPECT_GE(fake.requests, 1);
  // Backoff of 10-50 ms: a handful of attempts in 150 ms, not the whole script at once.
  EXPECT_LT(command.registrations, 20);
  EXPECT_FALSE(session.refused());
  stop_and_drain(io, session);
}

TEST(CommandSessionRenewalTest, WithoutACertificateToRenewARequiredRenewalStopsTheAgent) {
  TempDir dir;
  net::io_context io;
  ScriptedCommand command;
  command.register_script.push_back(renewal::renewal_reply(ApiStatus::kError, kRenewalRequired, false));
  CommandSession session(io.get_executor(), command, options_in(dir));
  int refusals = 0;
  session.on_refused([&] { ++refusals; });
  auto ended = start(io, session);
  ASSERT_TRUE(run_until(io, [&] { return *ended; }));
  EXPECT_EQ(refusals, 1);
  EXPECT_EQ(command.register_csrs, std::vector<std::string>{""});
}

}  // namespace
}  // namespace wincert::agent
