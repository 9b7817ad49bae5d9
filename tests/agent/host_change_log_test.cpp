// HostChangeLog (agent/host_change_log.cpp): records survive a restart, a cleared record is gone, damaged
// records are removed with a note; and JobRunner's start-up report of a job killed mid-change (issue 12).
#include "agent/host_change_log.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <filesystem>

#include "agent/job_runner.hpp"
#include "tests/agent/daemon_test_support.hpp"
#include "tests/agent/scripted_command.hpp"

namespace wincert::agent {
namespace {

namespace net = boost::asio;
namespace fs = std::filesystem;
using testing::TempDir;

HostChangeRecord record_of(const std::string& job_id) {
  HostChangeRecord r;
  r.job_id = job_id;
  r.audit_id = 42;
  r.completion_endpoint = "Jobs/" + job_id + "/Complete";
  r.what = "CertStores.WinCert.Management on store 'My' at host 'h1'";
  return r;
}

TEST(HostChangeLogTest, RecordsSurviveARestartUntilCleared) {
  TempDir dir;
  {
    auto log = HostChangeLog::open(dir.path());
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE((*log)->record(record_of("job-1")).ok());
    ASSERT_TRUE((*log)->record(record_of("job-2")).ok());
    ASSERT_TRUE((*log)->record(record_of("job-2")).ok());  // a redone step: recorded once
    (*log)->clear("job-2");
    EXPECT_TRUE((*log)->contains("job-1"));
    EXPECT_FALSE((*log)->contains("job-2"));
  }
  auto log = HostChangeLog::open(dir.path());
  ASSERT_TRUE(log.ok());
  const auto records = (*log)->records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].job_id, "job-1");
  EXPECT_EQ(records[0].audit_id, 42);
  EXPECT_EQ(records[0].completion_endpoint, "Jobs/job-1/Complete");
  EXPECT_EQ(records[0].what, record_of("job-1").what);
  EXPECT_TRUE((*log)->recovery_notes().empty());
  // New records do not reuse a file name of the old ones.
  ASSERT_TRUE((*log)->record(record_of("job-3")).ok());
  (*log)->clear("job-1");
  auto again = HostChangeLog::open(dir.path());
  ASSERT_TRUE(again.ok());
  ASSERT_EQ((*again)->records().size(), 1u);
  EXPECT_EQ((*again)->records()[0].job_id, "job-3");
}

TEST(HostChangeLogTest, ADamagedRecordIsRemovedWithANote) {
  TempDir dir;
  fs::create_directories(dir.file("host-changes"));
  testing::write_text(dir.file("host-changes/0000000000000001.json"), "{not json");
  testing::write_text(dir.file("host-changes/0000000000000002.json"), R"({"AuditId": 3})");  // no JobId
  testing::write_text(dir.file("host-changes/0000000000000003.json"), std::string(20000, ' '));
  auto log = HostChangeLog::open(dir.path());
  ASSERT_TRUE(log.ok());
  EXPECT_TRUE((*log)->records().empty());
  EXPECT_EQ((*log)->recovery_notes().size(), 3u);
  EXPECT_TRUE(fs::is_empty(dir.file("host-changes")));
}

TEST(HostChangeLogTest, AJobKilledMidChangeIsReportedAsFailedNotRunAgain) {
  TempDir dir;
  {
    auto log = HostChangeLog::open(dir.path());
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE((*log)->record(record_of("job-1")).ok());
    ASSERT_TRUE((*log)->record(record_of("job-2")).ok());
  }
  net::io_context io;
  testing::ScriptedCommand command;
  testing::FixedSession session;
  testing::SlowSessions stores(std::chrono::milliseconds(10));
  auto registry = jobs::make_default_registry();
  auto outbox = Outbox::open(dir.path());
  ASSERT_TRUE(outbox.ok());
  auto log = HostChangeLog::open(dir.path());
  ASSERT_TRUE(log.ok());
  ResultSink sink(io.get_executor(), **outbox, command, session, SinkOptions{});
  // job-2's result was stored before the kill: it is delivered as it is, not reported again.
  sink.store_completion(testing::job_entry("job-2"), 42, jobs::JobStatus::kSuccess, "");
  TaskGroup tasks(io.get_executor());
  RunnerDeps deps{&command, &session, &sink, &registry, &stores, &tasks, nullptr, log->get()};
  JobRunner runner(io.get_executor(), RunnerOptions{}, deps);
  runner.report_interrupted_host_changes();

  std::vector<OutboxEntry> completions;
  for (const auto& e : (*outbox)->pending())
    if (e.kind == EntryKind::kCompletion) completions.push_back(e);
  ASSERT_EQ(completions.size(), 2u);
  EXPECT_EQ(completions[1].job_id, "job-1");
  EXPECT_EQ(completions[1].audit_id, 42);
  EXPECT_EQ(completions[1].endpoint, "Jobs/job-1/Complete");
  const auto body = nlohmann::json::parse((*outbox)->read_body(completions[1]).value());
  EXPECT_EQ(body["Status"], static_cast<int>(jobs::JobStatus::kFailure));
  EXPECT_NE(body["Message"].get<std::string>().find("changing the host"), std::string::npos) << body.dump();
  EXPECT_TRUE((*log)->records().empty());

  // Due again: its result waits, so it does not run (no configuration fetched).
  runner.dispatch(testing::job_entry("job-1"));
  io.run_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(command.config_requests.empty());
}

}  // namespace
}  // namespace wincert::agent
