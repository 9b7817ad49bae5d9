// The durable outbox: entries survive a "crash" (the object destroyed without acknowledging), come
// back in order, torn temp files and truncated entries are ignored; the sender's order, retries and
// drain; backoff bounds with jitter.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "agent/outbox.hpp"
#include "agent/platform/files.hpp"
#include "tests/agent/daemon_test_support.hpp"

namespace wincert::agent {
namespace {

namespace net = boost::asio;
namespace fs = std::filesystem;
using testing::TempDir;

NewEntry completion(const std::string& job) {
  return NewEntry{EntryKind::kCompletion, job, 7, "KeyfactorAgents/C/" + job, "", 1, 1};
}

TEST(OutboxTest, EntriesSurviveACrashAndComeBackInOrder) {
  TempDir dir;
  {
    auto box = Outbox::open(dir.path());
    ASSERT_TRUE(box.ok()) << box.error().message;
    NewEntry inv{EntryKind::kInventory, "job-a", 5, "KeyfactorAgents/I/job-a", "", 1, 2};
    ASSERT_TRUE((*box)->append(inv, R"({"JobId":"job-a","Inventory":[1]})").ok());
    inv.part = 2;
    ASSERT_TRUE((*box)->append(inv, R"({"JobId":"job-a","Inventory":[2]})").ok());
    ASSERT_TRUE((*box)->append(completion("job-a"), R"({"JobId":"job-a","Status":2})").ok());
    auto acked = (*box)->append(completion("job-b"), R"({"JobId":"job-b"})");
    ASSERT_TRUE(acked.ok());
    ASSERT_TRUE((*box)->remove(*acked).ok());
    // Destroyed here without acknowledging the rest: the "crash".
  }
  auto box = Outbox::open(dir.path());
  ASSERT_TRUE(box.ok());
  const auto pending = (*box)->pending();
  ASSERT_EQ(pending.size(), 3u);
  EXPECT_EQ(pending[0].describe(), "inventory of job job-a (part 1 of 2)");
  EXPECT_EQ(pending[1].describe(), "inventory of job job-a (part 2 of 2)");
  EXPECT_EQ(pending[2].describe(), "completion of job job-a");
  EXPECT_EQ(pending[2].audit_id, 7);
  EXPECT_EQ(pending[2].endpoint, "KeyfactorAgents/C/job-a");
  EXPECT_EQ((*box)->read_body(pending[1]).value(), R"({"JobId":"job-a","Inventory":[2]})");
  EXPECT_TRUE((*box)->recovery_notes().empty());
  // New entries sort after the recovered ones.
  auto later = (*box)->append(completion("job-c"), "{}");
  ASSERT_TRUE(later.ok());
  EXPECT_GT(later->seq, pending[2].seq);
  EXPECT_EQ((*box)->next_deliverable()->seq, pending[0].seq);
}

NewEntry inventory_part(const std::string& job, int part, int parts) {
  return NewEntry{EntryKind::kInventory, job, 5, "KeyfactorAgents/I/" + job, "", part, parts};
}

// An inventory stored part by part while its job runs goes to Command only once its last part is stored.
TEST(OutboxTest, AnUnfinishedInventoryIsNotDeliverableUntilItsLastPart) {
  TempDir dir;
  auto box = Outbox::open(dir.path());
  ASSERT_TRUE(box.ok()) << box.error().message;
  auto first = (*box)->append(inventory_part("job-a", 1, kMorePartsFollow), R"({"JobId":"job-a","Inventory":[1]})");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->describe(), "inventory of job job-a (part 1, more to follow)");
  ASSERT_TRUE((*box)->append(inventory_part("job-a", 2, kMorePartsFollow), "{}").ok());
  auto other = (*box)->append(completion("job-b"), "{}");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ((*box)->next_deliverable()->seq, other->seq);  // job-b's completion overtakes the running inventory
  EXPECT_EQ((*box)->deliverable_count(), 1u);
  EXPECT_FALSE((*box)->next_deliverable_excluding({other->seq}).has_value());

  ASSERT_TRUE((*box)->append(inventory_part("job-a", 3, 3), "{}").ok());
  EXPECT_EQ((*box)->next_deliverable()->seq, first->seq);
  EXPECT_EQ((*box)->deliverable_count(), 4u);
  // Still one at a time per job, in order.
  EXPECT_EQ((*box)->next_deliverable_excluding({first->seq})->seq, other->seq);
}

TEST(OutboxTest, AnInventoryThatFailedPartWayIsDroppedWithoutTouchingOtherJobs) {
  TempDir dir;
  auto box = Outbox::open(dir.path());
  ASSERT_TRUE(box.ok());
  auto a1 = (*box)->append(inventory_part("job-a", 1, kMorePartsFollow), "{}");
  ASSERT_TRUE(a1.ok());
  ASSERT_TRUE((*box)->append(inventory_part("job-a", 2, kMorePartsFollow), "{}").ok());
  ASSERT_TRUE((*box)->append(inventory_part("job-b", 1, kMorePartsFollow), "{}").ok());
  EXPECT_EQ((*box)->drop_unfinished_inventory("job-a"), 2u);
  EXPECT_FALSE(fs::exists(a1->file));
  ASSERT_EQ((*box)->size(), 1u);
  EXPECT_EQ((*box)->pending()[0].job_id, "job-b");
  EXPECT_EQ((*box)->drop_unfinished_inventory("job-a"), 0u);
  // A finished inventory is not "unfinished": its parts stay.
  ASSERT_TRUE((*box)->append(inventory_part("job-b", 2, 2), "{}").ok());
  EXPECT_EQ((*box)->drop_unfinished_inventory("job-b"), 0u);
  EXPECT_EQ((*box)->size(), 2u);
}

// kill -9 while an inventory streams into the outbox: the parts of the job that never finished are dropped
// at the next start (Command still lists the job); finished inventories and completions are kept.
TEST(OutboxTest, PartsOfAnInventoryInterruptedByAStopAreDroppedOnOpen) {
  TempDir dir;
  std::string orphan_file;
  {
    auto box = Outbox::open(dir.path());
    ASSERT_TRUE(box.ok());
    auto orphan = (*box)->append(inventory_part("job-a", 1, kMorePartsFollow), "{}");
    ASSERT_TRUE(orphan.ok());
    orphan_file = orphan->file;
    ASSERT_TRUE((*box)->append(inventory_part("job-a", 2, kMorePartsFollow), "{}").ok());
    ASSERT_TRUE((*box)->append(inventory_part("job-b", 1, kMorePartsFollow), "{}").ok());
    ASSERT_TRUE((*box)->append(inventory_part("job-b", 2, 2), "{}").ok());
    ASSERT_TRUE((*box)->append(inventory_part("job-c", 1, kMorePartsFollow), "{}").ok());
    ASSERT_TRUE((*box)->append(completion("job-c"), "{}").ok());
  }
  auto box = Outbox::open(dir.path());
  ASSERT_TRUE(box.ok());
  std::vector<std::string> left;
  for (const auto& e : (*box)->pending()) left.push_back(e.job_id + " " + std::to_string(e.part));
  // job-c's completion stays (it says how the job ended); the part of its never-finished inventory does not.
  EXPECT_EQ(left, (std::vector<std::string>{"job-b 1", "job-b 2", "job-c 1"}));
  EXPECT_EQ((*box)->pending().back().kind, EntryKind::kCompletion);
  EXPECT_FALSE(fs::exists(orphan_file));
  ASSERT_EQ((*box)->recovery_notes().size(), 2u);
  EXPECT_EQ((*box)->recovery_notes()[0],
            "dropped 2 part(s) of the unfinished inventory of job job-a (the agent stopped while the job ran; "
            "Command still lists the job)");
  EXPECT_EQ((*box)->recovery_notes()[1].rfind("dropped 1 part(s) of the unfinished inventory of job job-c", 0), 0u);
}

TEST(OutboxTest, TornTempFilesAndTruncatedEntriesAreIgnored) {
  TempDir dir;
  std::string victim;
  {
    auto box = Outbox::open(dir.path());
    ASSERT_TRUE(box.ok());
    ASSERT_TRUE((*box)->append(completion("good"), R"({"JobId":"good"})").ok());
    auto e = (*box)->append(completion("cut"), R"({"JobId":"cut","Message":"long enough to cut"})");
    ASSERT_TRUE(e.ok());
    victim = e->file;
  }
  // A crash mid-write leaves a temp file; a disk problem leaves a short file.
  testing::write_text(dir.path() + "/outbox/.tmp-0000000000000009.completion.entry", "{\"kind\":\"compl");
  fs::resize_file(victim, fs::file_size(victim) - 5);
  testing::write_text(dir.path() + "/outbox/0000000000000010.completion.entry", "not json\n{}");
  auto box = Outbox::open(dir.path());
  ASSERT_TRUE(box.ok());
  const auto pending = (*box)->pending();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].job_id, "good");
  EXPECT_EQ((*box)->recovery_notes().size(), 3u);
  EXPECT_FALSE(fs::exists(dir.path() + "/outbox/.tmp-0000000000000009.completion.entry"));
  EXPECT_TRUE(fs::exists(dir.path() + "/outbox-corrupt/" + fs::path(victim).filename().string()));
}

TEST(OutboxTest, CsrEntriesAreNotForTheSenderAndRejectedEntriesAreKept) {
  TempDir dir;
  auto box = Outbox::open(dir.path());
  ASSERT_TRUE(box.ok());
  NewEntry csr{EntryKind::kCsr, "job-r", 9, "KeyfactorAgents/E/job-r", "KeyfactorAgents/C/job-r", 1, 1};
  ASSERT_TRUE((*box)->append(csr, "{}").ok());
  EXPECT_FALSE((*box)->next_deliverable().has_value());
  auto c = (*box)->append(completion("job-r"), "{}");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*box)->next_deliverable()->job_id, "job-r");
  EXPECT_EQ((*box)->deliverable_count(), 1u);
  ASSERT_TRUE((*box)->reject(*c).ok());
  EXPECT_TRUE(fs::exists(dir.path() + "/outbox-rejected/" + fs::path(c->file).filename().string()));
  EXPECT_EQ((*box)->size(), 1u);
  EXPECT_EQ((*box)->pending()[0].completion_endpoint, "KeyfactorAgents/C/job-r");
}

TEST(OutboxTest, UnwritableDirectoryIsReportedWithThePath) {
  auto box = Outbox::open("/proc/no-such-dir/wincert");
  ASSERT_FALSE(box.ok());
  EXPECT_EQ(box.error().code, ErrorCode::kFailedPrecondition) << box.error().message;
  EXPECT_FALSE(box.error().retryable());
  EXPECT_NE(box.error().message.find("/proc/no-such-dir/wincert"), std::string::npos);  // names the directory
}

TEST(BackoffTest, DelaysGrowExponentiallyWithinJitterBoundsUpToTheCap) {
  Backoff backoff(std::chrono::milliseconds(100), std::chrono::milliseconds(5000), 0.5, 42);
  for (int round = 0; round < 3; ++round) {
    for (int attempt = 0; attempt < 12; ++attempt) {
      const auto [low, high] = backoff.bounds(attempt);
      const auto cap = std::min<long long>(5000, 100LL << attempt);
      EXPECT_EQ(high.count(), cap);
      EXPECT_EQ(low.count(), cap / 2);
      const auto d = backoff.next();
      EXPECT_GE(d, low) << attempt;
      EXPECT_LE(d, high) << attempt;
    }
    backoff.reset();
  }
  // Jitter actually spreads the delays.
  std::set<long long> seen;
  for (int i = 0; i < 50; ++i) {
    backoff.reset();
    for (int k = 0; k < 5; ++k) (void)backoff.next();
    seen.insert(backoff.next().count());  // attempt 5: [1600, 3200]
  }
  EXPECT_GT(seen.size(), 10u);
  EXPECT_GE(*seen.begin(), 1600);
  EXPECT_LE(*seen.rbegin(), 3200);
  // Huge attempt counts do not overflow.
  EXPECT_EQ(backoff.bounds(1000).second.count(), 5000);
}

// The sender: in order, retry with backoff, reject and go on, drain at shutdown.
TEST(OutboxSenderTest, DeliversInOrderRetriesTransientFailuresAndDrains) {
  TempDir dir;
  auto box = std::move(Outbox::open(dir.path()).value());
  for (const char* job : {"j1", "j2", "j3", "j4"}) ASSERT_TRUE(box->append(completion(job), "{}").ok());

  net::io_context io;
  std::vector<std::string> attempts;
  int j2_failures = 2;
  OutboxSender sender(
      io.get_executor(), *box,
      [&](const OutboxEntry& entry, std::string) -> net::awaitable<Delivery> {
        attempts.push_back(entry.job_id);
        if (entry.job_id == "j2" && j2_failures-- > 0) co_return Delivery::kRetry;
        if (entry.job_id == "j3") co_return Delivery::kReject;
        co_return Delivery::kDone;
      },
      Backoff(std::chrono::milliseconds(10), std::chrono::milliseconds(40), 0.5, 1));
  net::co_spawn(io, sender.run(), [](std::exception_ptr) {});
  // Later: a new entry arrives, then shutdown with a drain deadline.
  net::steady_timer later(io);
  later.expires_after(std::chrono::milliseconds(200));
  later.async_wait([&](boost::system::error_code) {
    ASSERT_TRUE(box->append(completion("j5"), "{}").ok());
    sender.notify();
    sender.drain(std::chrono::steady_clock::now() + std::chrono::seconds(2));
  });
  io.run_for(std::chrono::seconds(10));
  EXPECT_TRUE(sender.finished());
  EXPECT_EQ(attempts, (std::vector<std::string>{"j1", "j2", "j2", "j2", "j3", "j4", "j5"}));
  EXPECT_EQ(sender.delivered(), 4u);
  EXPECT_EQ(box->size(), 0u);
  EXPECT_TRUE(fs::exists(dir.path() + "/outbox-rejected"));
}

TEST(OutboxSenderTest, DrainGivesUpAtTheDeadlineAndKeepsTheEntries) {
  TempDir dir;
  auto box = std::move(Outbox::open(dir.path()).value());
  ASSERT_TRUE(box->append(completion("j1"), "{}").ok());
  net::io_context io;
  int tries = 0;
  OutboxSender sender(
      io.get_executor(), *box,
      [&](const OutboxEntry&, std::string) -> net::awaitable<Delivery> {
        ++tries;
        co_return Delivery::kRetry;
      },
      Backoff(std::chrono::milliseconds(50), std::chrono::seconds(60), 0.5, 1));
  net::co_spawn(io, sender.run(), [](std::exception_ptr) {});
  net::steady_timer later(io);
  later.expires_after(std::chrono::milliseconds(300));
  later.async_wait([&](boost::system::error_code) {
    sender.drain(std::chrono::steady_clock::now() + std::chrono::milliseconds(300));
  });
  const auto start = std::chrono::steady_clock::now();
  io.run_for(std::chrono::seconds(10));
  EXPECT_TRUE(sender.finished());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_GE(tries, 3);  // the drain starts with one more try right away
  EXPECT_EQ(box->size(), 1u);
}

// Group commit: many stores at once take far fewer commits (and fsyncs) than entries, and no store
// resumes before its entry is on the disk and deliverable.
TEST(OutboxGroupCommitTest, ManyStoresShareCommitsAndNoneResumesBeforeItsSync) {
  TempDir dir;
  auto box = std::move(Outbox::open(dir.path()).value());
  net::io_context io;
  constexpr int kStores = 40;
  int resumed = 0;
  int resumed_before_durable = 0;
  std::set<std::uint64_t> seqs;
  const std::uint64_t syncs_before = files::sync_count();
  for (int i = 0; i < kStores; ++i) {
    net::co_spawn(
        io,
        [&, i]() -> net::awaitable<void> {
          NewEntry e = completion("job-" + std::to_string(i));
          std::string body = R"({"JobId":"job-)" + std::to_string(i) + "\"}";
          auto stored = co_await box->store(std::move(e), std::move(body));
          EXPECT_TRUE(stored.ok());
          if (!stored.ok()) co_return;
          ++resumed;
          // Acknowledged means: the file is in place under its final name and the outbox lists it.
          if (!fs::exists(stored->file) || !box->has_completion(stored->job_id)) ++resumed_before_durable;
          seqs.insert(stored->seq);
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
  }
  io.run_for(std::chrono::seconds(20));
  EXPECT_EQ(resumed, kStores);
  EXPECT_EQ(resumed_before_durable, 0);
  EXPECT_EQ(seqs.size(), static_cast<std::size_t>(kStores));
  EXPECT_EQ(box->size(), static_cast<std::size_t>(kStores));
  EXPECT_EQ(box->committed_entries(), static_cast<std::uint64_t>(kStores));
  EXPECT_LT(box->commits(), static_cast<std::uint64_t>(kStores) / 4) << "the stores were not batched";
  const std::uint64_t syncs = files::sync_count() - syncs_before;
#ifdef _WIN32
  // Windows has no directory sync: each file is flushed and its rename written through
  // (agent/platform/files_windows.cpp), two per entry whatever the batching.
  EXPECT_EQ(syncs, 2 * static_cast<std::uint64_t>(kStores));
#else
  // One fsync per file and one directory sync per commit, instead of two per entry.
  EXPECT_EQ(syncs, static_cast<std::uint64_t>(kStores) + box->commits());
#endif
  // Durable for real: a fresh open (the "crash") finds every entry.
  box.reset();
  auto reopened = Outbox::open(dir.path());
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->size(), static_cast<std::size_t>(kStores));
}

TEST(OutboxGroupCommitTest, AFailedWriteIsReportedToItsStoreAndNothingIsListed) {
  TempDir dir;
  auto box = std::move(Outbox::open(dir.path()).value());
  fs::remove_all(dir.path() + "/outbox");  // the directory vanished under the agent
  net::io_context io;
  std::optional<Result<OutboxEntry>> outcome;
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        NewEntry e = completion("job-x");
        std::string body = "{}";
        outcome = co_await box->store(std::move(e), std::move(body));
      },
      net::detached);
  io.run_for(std::chrono::seconds(10));
  ASSERT_TRUE(outcome.has_value());
  EXPECT_FALSE(outcome->ok());
  EXPECT_NE(outcome->error().message.find("completion of job job-x"), std::string::npos) << outcome->error().message;
  EXPECT_EQ(box->size(), 0u);
}

// Several lanes deliver at once, but never two entries of one job, and a job's parts go before its completion.
TEST(OutboxSenderTest, LanesDeliverConcurrentlyAndKeepEachJobsOrder) {
  TempDir dir;
  auto box = std::move(Outbox::open(dir.path()).value());
  constexpr int kJobs = 8;
  for (int j = 0; j < kJobs; ++j) {
    const std::string job = "job-" + std::to_string(j);
    for (int part = 1; part <= 2; ++part)
      ASSERT_TRUE(box->append(NewEntry{EntryKind::kInventory, job, 1, "I/" + job, "", part, 2}, "{}").ok());
    ASSERT_TRUE(box->append(completion(job), "{}").ok());
  }
  net::io_context io;
  std::map<std::string, std::vector<std::string>> per_job;  // the order each job's entries were delivered in
  std::map<std::string, int> in_flight_per_job;
  int in_flight = 0;
  int max_in_flight = 0;
  int max_per_job = 0;
  bool first_failed = false;
  OutboxSender sender(
      io.get_executor(), *box,
      [&](const OutboxEntry& entry, std::string) -> net::awaitable<Delivery> {
        max_in_flight = std::max(max_in_flight, ++in_flight);
        max_per_job = std::max(max_per_job, ++in_flight_per_job[entry.job_id]);
        net::steady_timer t(io);
        t.expires_after(std::chrono::milliseconds(5));
        co_await t.async_wait(net::use_awaitable);
        --in_flight;
        --in_flight_per_job[entry.job_id];
        if (entry.job_id == "job-0" && !first_failed) {  // a retry keeps the job's later entries waiting
          first_failed = true;
          co_return Delivery::kRetry;
        }
        per_job[entry.job_id].push_back(entry.describe());
        co_return Delivery::kDone;
      },
      Backoff(std::chrono::milliseconds(10), std::chrono::milliseconds(20), 0.5, 1), 4);
  net::co_spawn(io, sender.run(), [](std::exception_ptr) {});
  net::steady_timer later(io);
  later.expires_after(std::chrono::milliseconds(300));
  later.async_wait(
      [&](boost::system::error_code) { sender.drain(std::chrono::steady_clock::now() + std::chrono::seconds(5)); });
  io.run_for(std::chrono::seconds(10));
  EXPECT_TRUE(sender.finished());
  EXPECT_EQ(box->size(), 0u);
  EXPECT_EQ(sender.delivered(), static_cast<std::uint64_t>(kJobs * 3));
  EXPECT_EQ(max_in_flight, 4);
  EXPECT_EQ(sender.max_in_flight(), 4);
  EXPECT_EQ(max_per_job, 1);
  for (int j = 0; j < kJobs; ++j) {
    const std::string job = "job-" + std::to_string(j);
    EXPECT_EQ(per_job[job],
              (std::vector<std::string>{"inventory of job " + job + " (part 1 of 2)",
                                        "inventory of job " + job + " (part 2 of 2)", "completion of job " + job}));
  }
}

TEST(DurableFileTest, WritesAtomically) {
  TempDir dir;
  ASSERT_TRUE(write_file_durably(dir.file("agent-id"), "abc\n").ok());
  ASSERT_TRUE(write_file_durably(dir.file("agent-id"), "def\n").ok());
  EXPECT_EQ(testing::read_text(dir.file("agent-id")), "def\n");
  EXPECT_FALSE(write_file_durably("/proc/nope/agent-id", "x").ok());
}

}  // namespace
}  // namespace wincert::agent
