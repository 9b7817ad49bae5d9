// ResultSink (agent/result_sink.cpp) on a real outbox in a temp directory against a scripted Command:
// delivery order per job (inventory parts, then the completion), a store failure holds the result in
// memory and stores it later, delivery is retried after Command's 503 and after an invalid session,
// nothing is acknowledged twice, the CSR round trip, interrupted CSRs reported, chained jobs.
#include "agent/result_sink.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "tests/agent/daemon_test_support.hpp"
#include "tests/agent/scripted_command.hpp"
#include "tests/support/result_matchers.hpp"

namespace wincert::agent {
namespace {

namespace net = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::FixedSession;
using testing::run_until;
using testing::ScriptedCommand;
using testing::TempDir;

SinkOptions quick_options() {
  SinkOptions options;
  options.retry_initial = 10ms;
  options.retry_max = 40ms;
  return options;
}

jobs::InventoryItem item(std::string alias) {
  jobs::InventoryItem i;
  i.alias = std::move(alias);
  i.certificates = {std::string(400, 'A')};
  return i;
}

struct SinkFixture {
  TempDir dir;
  net::io_context io;
  ScriptedCommand command;
  FixedSession session;
  std::unique_ptr<Outbox> outbox;
  std::unique_ptr<ResultSink> sink;
  bool sender_ended = false;
  bool held_ended = false;

  explicit SinkFixture(SinkOptions options = quick_options()) {
    auto opened = Outbox::open(dir.path());
    EXPECT_TRUE(opened.ok());
    outbox = std::move(opened.value());
    sink = std::make_unique<ResultSink>(io.get_executor(), *outbox, command, session, options);
  }
  void start() {
    net::co_spawn(
        io,
        [this]() -> net::awaitable<void> {
          co_await sink->run_sender();
          sender_ended = true;
        },
        net::detached);
    net::co_spawn(
        io,
        [this]() -> net::awaitable<void> {
          co_await sink->run_held();
          held_ended = true;
        },
        net::detached);
  }
  void finish() {
    sink->flush_by(std::chrono::steady_clock::now() + 500ms);
    EXPECT_TRUE(run_until(
        io, [&] { return sender_ended && held_ended; }, 3s));
  }
  // The outbox directory cannot be written (a regular file in its place; works as root too) or again can.
  void break_outbox() {
    fs::rename(outbox->directory(), outbox->directory() + ".away");
    testing::write_text(outbox->directory(), "in the way");
  }
  void repair_outbox() {
    fs::remove(outbox->directory());
    fs::rename(outbox->directory() + ".away", outbox->directory());
  }
  // Runs a task on the sink's io_context (an inventory upload writes its parts there) until it is done.
  template <typename T>
  T await(net::awaitable<T> task) {
    std::optional<T> value;
    net::co_spawn(
        io, [&, t = std::move(task)]() mutable -> net::awaitable<void> { value.emplace(co_await std::move(t)); },
        net::detached);
    EXPECT_TRUE(run_until(
        io, [&] { return value.has_value(); }, 5s));
    return std::move(value).value();
  }
  // "<what> of <job>" in the order Command received them, accepted or not.
  std::vector<std::string> received() const {
    std::vector<std::string> out;
    for (const auto& post : command.posts) out.push_back(post.what);
    return out;
  }
};

JobEntry job(const std::string& id) { return testing::job_entry(id); }

TEST(ResultSinkTest, InventoryPartsAreDeliveredBeforeTheCompletionOfTheirJob) {
  SinkOptions options = quick_options();
  options.inventory_max_update_bytes = 1000;  // two items per part at most
  SinkFixture f(options);
  // Stored before the sender runs: the order is the outbox's, not the timing's.
  const std::vector<jobs::InventoryItem> items = {item("a"), item("b"), item("c"), item("d"), item("e")};
  const auto upload = f.sink->begin_inventory("job-1", 11, "Jobs/job-1/Inventory");
  for (const auto& i : items) ASSERT_THAT(f.await(upload->add(i)), IsOk());
  ASSERT_THAT(f.await(upload->finish()), IsOk());
  f.sink->store_completion(job("job-1"), 11, jobs::JobStatus::kSuccess, "");
  f.sink->store_completion(job("job-2"), 12, jobs::JobStatus::kFailure, "host unreachable");
  EXPECT_TRUE(f.sink->has_completion("job-1"));
  EXPECT_FALSE(f.sink->has_completion("job-3"));
  const std::size_t parts = f.outbox->size() - 2;
  ASSERT_GE(parts, 2u);

  f.start();
  ASSERT_TRUE(run_until(f.io, [&] { return f.outbox->size() == 0; }));
  ASSERT_EQ(f.command.posts.size(), parts + 2);
  for (std::size_t i = 0; i < parts; ++i) {
    EXPECT_EQ(f.command.posts[i].endpoint, "Jobs/job-1/Inventory");
    EXPECT_EQ(f.command.posts[i].body["JobId"], "job-1");
    EXPECT_EQ(f.command.posts[i].token, "tok-1");
  }
  EXPECT_EQ(f.command.posts[parts].endpoint, "KeyfactorAgents/Jobs/job-1/Complete");
  EXPECT_EQ(f.command.posts[parts].body["Status"], static_cast<int>(jobs::JobStatus::kSuccess));
  EXPECT_EQ(f.command.posts[parts + 1].body["JobId"], "job-2");
  EXPECT_EQ(f.command.posts[parts + 1].body["Message"], "host unreachable");
  EXPECT_EQ(f.sink->stats().results_delivered, parts + 2);
  f.finish();
}

// A running job's inventory goes into the outbox part by part as it is read (one part held in memory), and
// Command gets none of it before the last part is stored; then every part, in order, before the completion.
TEST(ResultSinkTest, AnInventoryIsStoredInBoundedPartsWhileItIsReadAndSentOnceFinished) {
  SinkOptions options = quick_options();
  options.inventory_part_bytes = 1200;  // two items per part at most
  SinkFixture f(options);
  f.start();
  auto upload = f.sink->begin_inventory("job-1", 11, "Jobs/job-1/Inventory");
  for (const char* alias : {"a", "b", "c", "d", "e"}) ASSERT_THAT(f.await(upload->add(item(alias))), IsOk());
  EXPECT_EQ(upload->items(), 5u);
  // The second part's write (in flight while the job reads on) lands; the sender gets time to (not) send.
  ASSERT_TRUE(run_until(f.io, [&] { return f.outbox->size() == 2; }));
  run_until(
      f.io, [] { return false; }, 50ms);
  // Two full parts are durable; the fifth item is the part in memory.
  const auto stored = f.outbox->pending();
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0].parts, kMorePartsFollow);
  EXPECT_LE(stored[0].body_size, 1200u);
  EXPECT_TRUE(f.command.posts.empty());  // not a byte of an unfinished inventory

  ASSERT_THAT(f.await(upload->finish()), IsOk());
  f.sink->store_completion(job("job-1"), 11, jobs::JobStatus::kSuccess, "");
  ASSERT_TRUE(run_until(f.io, [&] { return f.outbox->size() == 0; }));
  ASSERT_EQ(f.command.posts.size(), 4u);
  std::vector<std::string> aliases;
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(f.command.posts[i].endpoint, "Jobs/job-1/Inventory");
    EXPECT_EQ(f.command.posts[i].body["JobId"], "job-1");
    for (const auto& it : f.command.posts[i].body["Inventory"]) aliases.push_back(it["Alias"].get<std::string>());
  }
  EXPECT_EQ(aliases, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(f.command.posts[3].endpoint, "KeyfactorAgents/Jobs/job-1/Complete");
  f.finish();
}

// A job whose inventory fails part-way (or is cancelled) sends nothing of it: the stored parts are dropped.
TEST(ResultSinkTest, AnInventoryThatFailsPartWaySendsNothingOfIt) {
  SinkOptions options = quick_options();
  options.inventory_part_bytes = 1200;
  SinkFixture f(options);
  f.start();
  auto failed = f.sink->begin_inventory("job-1", 11, "Jobs/job-1/Inventory");
  for (const char* alias : {"a", "b", "c"}) ASSERT_THAT(f.await(failed->add(item(alias))), IsOk());
  ASSERT_TRUE(run_until(f.io, [&] { return f.outbox->size() == 1; }));
  failed->abandon();
  EXPECT_EQ(f.outbox->size(), 0u);
  EXPECT_THAT(f.await(failed->finish()), HasCode(ErrorCode::kInternal));  // ended already

  const auto commits = f.outbox->committed_entries();
  {
    auto cancelled = f.sink->begin_inventory("job-2", 12, "Jobs/job-2/Inventory");
    for (const char* alias : {"a", "b", "c"}) ASSERT_THAT(f.await(cancelled->add(item(alias))), IsOk());
  }  // destroyed unfinished (the job's coroutine was cancelled) while its first part is still being written
  ASSERT_TRUE(run_until(f.io, [&] { return f.outbox->committed_entries() > commits; }));  // the write landed
  run_until(
      f.io, [] { return false; }, 20ms);
  EXPECT_EQ(f.outbox->size(), 0u);  // and was dropped
  f.sink->store_completion(job("job-1"), 11, jobs::JobStatus::kFailure, "the host went away");
  ASSERT_TRUE(run_until(f.io, [&] { return f.outbox->size() == 0 && !f.command.posts.empty(); }));
  ASSERT_EQ(f.command.posts.size(), 1u);
  EXPECT_EQ(f.command.posts[0].endpoint, "KeyfactorAgents/Jobs/job-1/Complete");
  f.finish();
}

// Parts left by a run that never finished its inventory (a write that landed after the job gave up) cannot
// hold the job's completion back.
TEST(ResultSinkTest, AJobsCompletionDropsPartsOfAnInventoryItNeverFinished) {
  SinkFixture f;
  ASSERT_TRUE(
      f.outbox
          ->append(NewEntry{EntryKind::kInventory, "job-1", 11, "Jobs/job-1/Inventory", "", 1, kMorePartsFollow},
                   R"({"JobId":"job-1","Inventory":[]})")
          .ok());
  f.start();
  ASSERT_TRUE(f.await(f.sink->commit_completion(job("job-1"), 11, jobs::JobStatus::kFailure, "the host went away")));
  ASSERT_TRUE(run_until(f.io, [&] { return f.outbox->size() == 0; }));
  ASSERT_EQ(f.command.posts.size(), 1u);
  EXPECT_EQ(f.command.posts[0].endpoint, "KeyfactorAgents/Jobs/job-1/Complete");
  f.finish();
}

TEST(ResultSinkTest, AnInventoryWithoutAnEndpointFailsSayingSo) {
  SinkFixture f;
  auto upload = f.sink->begin_inventory("job-1", 11, "");
  auto added = f.await(upload->add(item("a")));
  EXPECT_THAT(added, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(added.error().message.find("no InventoryEndpoint for job job-1"), std::string::npos);
}

// The disk refuses the parts: they are held in memory, and a held part of an unfinished inventory is not
// sent directly either; dropped when the inventory fails, sent in order once it is finished.
TEST(ResultSinkTest, HeldPartsOfAnUnfinishedInventoryWaitForItsLastPart) {
  SinkOptions options = quick_options();
  options.inventory_part_bytes = 1200;
  SinkFixture f(options);
  f.start();
  f.break_outbox();
  auto failed = f.sink->begin_inventory("job-1", 11, "Jobs/job-1/Inventory");
  for (const char* alias : {"a", "b", "c"}) ASSERT_THAT(f.await(failed->add(item(alias))), IsOk());
  ASSERT_TRUE(run_until(f.io, [&] { return f.sink->held() == 1; }));
  run_until(
      f.io, [] { return false; }, 100ms);  // the held-results loop tries it meanwhile
  EXPECT_TRUE(f.command.posts.empty());
  failed->abandon();
  ASSERT_TRUE(run_until(f.io, [&] { return f.sink->held() == 0; }));
  EXPECT_TRUE(f.command.posts.empty());

  auto upload = f.sink->begin_inventory("job-2", 12, "Jobs/job-2/Inventory");
  for (const char* alias : {"a", "b", "c"}) ASSERT_THAT(f.await(upload->add(item(alias))), IsOk());
  ASSERT_THAT(f.await(upload->finish()), IsOk());
  ASSERT_TRUE(run_until(f.io, [&] { return f.sink->held() == 0; }));
  ASSERT_EQ(f.command.posts.size(), 2u);  // sent directly, in order
  EXPECT_EQ(f.command.posts[0].body["Inventory"].size(), 2u);
  EXPECT_EQ(f.command.posts[1].body["Inventory"].size(), 1u);
  f.repair_outbox();
  f.finish();
}

TEST(ResultSinkTest, DeliveryIsRetriedAfterCommandAnswers503) {
  SinkFixture f;
  int failures_left = 2;
  f.command.on_post = [&](const ScriptedCommand::Post&) -> Result<PostReply> {
    if (failures_left-- > 0) return Error::unavailable("Command answered HTTP 503").with_http_status(503);
    return testing::post_ok();
  };
  f.sink->store_completion(job("job-1"), 1, jobs::JobStatus::kSuccess, "");
  f.start();
  ASSERT_TRUE(run_until(f.io, [&] { return f.outbox->size() == 0; }));
  EXPECT_EQ(f.command.posts.size(), 3u);  // two refusals, one acknowledgement
  EXPECT_EQ(f.sink->stats().results_delivered, 1u);
  f.finish();
}

TEST(ResultSinkTest, AnInvalidSessionRenewsTheTokenAndTheEntryIsSentAgain) {
  SinkFixture f;
  f.command.on_post = [&](const ScriptedCommand::Post& post) -> Result<PostReply> {
    if (post.token == "tok-1") return PostReply{testing::api_error(testing::kInvalidSessionCode), {}};
    return testing::post_ok();
  };
  f.sink->store_completion(job("job-1"), 1, jobs::JobStatus::kSuccess, "");
  f.start();
  ASSERT_TRUE(run_until(f.io, [&] { return f.outbox->size() == 0; }));
  EXPECT_EQ(f.session.invalidations, 1);
  ASSERT_EQ(f.command.posts.size(), 2u);
  EXPECT_EQ(f.command.posts[1].token, "tok-2");
  f.finish();
}

TEST(ResultSinkTest, ARefusedEntryIsSetAsideAndTheNextOneDelivered) {
  SinkFixture f;
  f.command.on_post = [&](const ScriptedCommand::Post& post) -> Result<PostReply> {
    if (post.body["JobId"] == "job-1") return PostReply{testing::api_error("A0100099"), {}};
    return testing::post_ok();
  };
  f.sink->store_completion(job("job-1"), 1, jobs::JobStatus::kSuccess, "");
  f.sink->store_completion(job("job-2"), 2, jobs::JobStatus::kSuccess, "");
  f.start();
  ASSERT_TRUE(run_until(f.io, [&] { return f.outbox->size() == 0; }));
  EXPECT_EQ(f.command.posts.size(), 2u);  // the refused one is not retried
  EXPECT_EQ(f.sink->stats().results_delivered, 1u);
  EXPECT_FALSE(fs::is_empty(f.outbox->rejected_directory()));
  f.finish();
}

TEST(ResultSinkTest, NothingIsAcknowledgedTwice) {
  SinkFixture f;
  f.command.on_post = [&, n = 0](const ScriptedCommand::Post&) mutable -> Result<PostReply> {
    if (++n % 3 == 0) return Error::deadline_exceeded("Command did not answer in time");
    return testing::post_ok();
  };
  for (int i = 1; i <= 6; ++i)
    f.sink->store_completion(job("job-" + std::to_string(i)), i, jobs::JobStatus::kSuccess, "");
  f.start();
  ASSERT_TRUE(run_until(f.io, [&] { return f.outbox->size() == 0; }));
  f.finish();
  // Every job's completion acknowledged exactly once (a timed-out post is sent again; an accepted one never).
  std::map<std::string, int> accepted;
  int n = 0;
  for (const auto& post : f.command.posts)
    if (++n % 3 != 0) ++accepted[post.body["JobId"].get<std::string>()];
  ASSERT_EQ(accepted.size(), 6u);
  for (const auto& [id, count] : accepted) EXPECT_EQ(count, 1) << id;
  EXPECT_EQ(f.sink->stats().results_delivered, 6u);

  // A restart on the same directory has nothing left to send.
  auto reopened = Outbox::open(f.dir.path());
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->size(), 0u);
}

TEST(ResultSinkTest, AResultTheOutboxCannotStoreIsHeldThenStored) {
  SinkFixture f;
  f.command.on_post = [&](const ScriptedCommand::Post&) -> Result<PostReply> {
    return Error::unavailable("Command down (connection refused)");
  };
  std::vector<std::string> safe;  // what the job runner hears (it then drops the host-change records)
  f.sink->on_held_completion_safe([&](const std::string& id) { safe.push_back(id); });
  f.start();
  f.break_outbox();
  f.sink->store_completion(job("job-1"), 1, jobs::JobStatus::kSuccess, "");
  f.sink->store_completion(job("job-2"), 2, jobs::JobStatus::kSuccess, "");
  EXPECT_EQ(f.sink->held(), 2u);
  EXPECT_EQ(f.sink->stats().results_held, 2u);
  EXPECT_TRUE(f.sink->has_completion("job-1"));  // not run again meanwhile
  run_until(
      f.io, [] { return false; }, 200ms);  // retries: neither the outbox nor Command takes it
  EXPECT_EQ(f.sink->held(), 2u);

  // The outbox can be written again: both are stored, in order, then delivered once Command is back.
  f.repair_outbox();
  ASSERT_TRUE(run_until(f.io, [&] { return f.sink->held() == 0; }));
  const auto pending = f.outbox->pending();
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].job_id, "job-1");
  EXPECT_EQ(pending[1].job_id, "job-2");
  EXPECT_EQ(safe, (std::vector<std::string>{"job-1", "job-2"}));
  f.command.on_post = nullptr;
  const std::size_t refused = f.command.posts.size();
  ASSERT_TRUE(run_until(f.io, [&] { return f.outbox->size() == 0; }));
  EXPECT_EQ(f.command.posts.size(), refused + 2);
  f.finish();
}

TEST(ResultSinkTest, AHeldCompletionIsSentDirectlyWhenCommandIsReachable) {
  SinkFixture f;
  std::vector<std::string> safe;
  f.sink->on_held_completion_safe([&](const std::string& id) { safe.push_back(id); });
  f.start();
  f.break_outbox();
  f.sink->store_completion(job("job-1"), 1, jobs::JobStatus::kSuccess, "");
  ASSERT_TRUE(run_until(f.io, [&] { return f.sink->held() == 0; }));
  ASSERT_EQ(f.command.posts.size(), 1u);
  EXPECT_EQ(f.command.posts[0].body["JobId"], "job-1");
  EXPECT_EQ(f.sink->stats().results_delivered, 1u);
  EXPECT_EQ(safe, (std::vector<std::string>{"job-1"}));
  f.repair_outbox();
  f.finish();
}

TEST(ResultSinkTest, HeldResultsAreGivenUpAtTheFlushDeadline) {
  SinkFixture f;
  f.command.on_post = [&](const ScriptedCommand::Post&) -> Result<PostReply> {
    return Error::unavailable("Command down (connection refused)");
  };
  f.start();
  f.break_outbox();
  f.sink->store_completion(job("job-1"), 1, jobs::JobStatus::kSuccess, "");
  f.sink->flush_by(std::chrono::steady_clock::now() + 200ms);
  ASSERT_TRUE(run_until(
      f.io, [&] { return f.sender_ended && f.held_ended; }, 5s));
  EXPECT_EQ(f.sink->held(), 1u);  // reported as lost, not silently dropped
  f.repair_outbox();
}

TEST(ResultSinkTest, TheCsrRoundTripReturnsTheCertificateAndLeavesNothingBehind) {
  SinkFixture f;
  f.command.on_post = [&](const ScriptedCommand::Post& post) -> Result<PostReply> {
    EXPECT_EQ(post.body["CSRText"], "MIIBCSRBASE64==");  // as given (CertificateRequest::base64(), no armour)
    EXPECT_EQ(f.outbox->size(), 1u);                     // recorded while Command signs it
    return testing::post_ok({{"Certificate", "MIICERT=="}});
  };
  auto certificate = testing::run_awaitable(
      f.sink->submit_csr("job-9", 9, "Jobs/job-9/Enroll", "Jobs/job-9/Complete", "MIIBCSRBASE64=="));
  ASSERT_THAT(certificate, IsOk());
  EXPECT_EQ(*certificate, "MIICERT==");
  EXPECT_EQ(f.outbox->size(), 0u);
}

TEST(ResultSinkTest, ACsrCommandRefusesFailsWithItsCode) {
  SinkFixture f;
  f.command.on_post = [](const ScriptedCommand::Post&) -> Result<PostReply> {
    return PostReply{testing::api_error("A0100042"), {}};
  };
  auto certificate = testing::run_awaitable(f.sink->submit_csr("job-9", 9, "Jobs/job-9/Enroll", "c", "MIIB"));
  EXPECT_THAT(certificate, HasCode(ErrorCode::kFailedPrecondition));
  EXPECT_EQ(certificate.error().detail.command_code, "A0100042");
  EXPECT_EQ(f.command.posts.size(), 1u);
  EXPECT_EQ(f.outbox->size(), 0u);
  EXPECT_THAT(testing::run_awaitable(f.sink->submit_csr("job-9", 9, "", "c", "MIIB")),
              HasCode(ErrorCode::kInvalidArgument));  // no EnrollEndpoint
}

TEST(ResultSinkTest, ACsrInterruptedByARestartIsReportedAsFailed) {
  TempDir dir;
  {
    auto outbox = Outbox::open(dir.path());
    ASSERT_TRUE(outbox.ok());
    NewEntry csr;
    csr.kind = EntryKind::kCsr;
    csr.job_id = "job-5";
    csr.audit_id = 55;
    csr.endpoint = "Jobs/job-5/Enroll";
    csr.completion_endpoint = "Jobs/job-5/Complete";
    ASSERT_TRUE((*outbox)->append(csr, csr_body("job-5", "MIIB")).ok());
  }
  auto outbox = Outbox::open(dir.path());
  ASSERT_TRUE(outbox.ok());
  net::io_context io;
  ScriptedCommand command;
  FixedSession session;
  ResultSink sink(io.get_executor(), **outbox, command, session, quick_options());
  sink.recover_interrupted_csrs();
  const auto pending = (*outbox)->pending();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].kind, EntryKind::kCompletion);
  EXPECT_EQ(pending[0].endpoint, "Jobs/job-5/Complete");
  EXPECT_EQ(pending[0].audit_id, 55);
  const auto body = nlohmann::json::parse((*outbox)->read_body(pending[0]).value());
  EXPECT_EQ(body["Status"], static_cast<int>(jobs::JobStatus::kFailure));
}

TEST(ResultSinkTest, ACompletionReplyNamingAChainedJobIsPassedOn) {
  SinkFixture f;
  std::vector<std::string> chained;
  f.sink->on_chained_job([&](const std::string& id) { chained.push_back(id); });
  f.command.on_post = [](const ScriptedCommand::Post&) -> Result<PostReply> {
    return testing::post_ok({{"InventoryJob", "inv-7"}});
  };
  f.sink->store_completion(job("job-1"), 1, jobs::JobStatus::kSuccess, "");
  f.start();
  ASSERT_TRUE(run_until(f.io, [&] { return !chained.empty(); }));
  EXPECT_EQ(chained, std::vector<std::string>{"inv-7"});
  f.finish();
}

TEST(ResultSinkTest, NoCompletionEndpointMeansNothingToStore) {
  SinkFixture f;
  JobEntry entry = job("job-1");
  entry.completion_endpoint.clear();
  f.sink->store_completion(entry, 1, jobs::JobStatus::kSuccess, "");
  EXPECT_EQ(f.outbox->size(), 0u);
  EXPECT_EQ(f.sink->held(), 0u);
}

}  // namespace
}  // namespace wincert::agent
