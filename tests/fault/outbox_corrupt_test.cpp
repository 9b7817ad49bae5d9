// Fault matrix, outbox rows: every kind of damaged entry found at start-up is set aside (moved to
// outbox-corrupt) with a note that says what is wrong, the good entries around it survive, and opening
// never fails or throws. A body damaged after start is set aside when about to be sent, with a true
// message (not "Command refused it"). See tests/fault/ROWS-outbox.md.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "agent/outbox.hpp"
#include "common/log.hpp"
#include "tests/agent/daemon_test_support.hpp"

namespace wincert::agent {
namespace {

namespace fs = std::filesystem;
namespace net = boost::asio;
using testing::TempDir;

NewEntry completion(const std::string& job) {
  return NewEntry{EntryKind::kCompletion, job, 7, "KeyfactorAgents/C/" + job, "", 1, 1};
}

std::string header_with(const std::string& fields, std::size_t body_bytes) {
  return "{\"v\":1,\"kind\":\"completion\",\"job_id\":\"j\",\"audit_id\":1,\"endpoint\":\"e\",\"part\":1,\"parts\":1," +
         fields + (fields.empty() ? "" : ",") + "\"body_bytes\":" + std::to_string(body_bytes) + "}";
}

struct Case {
  const char* name;
  std::string content;
  const char* note;  // what the recovery note must say
};

// One good entry, then one damaged file per case: each is set aside with its own reason.
TEST(OutboxFaultTest, EveryKindOfDamagedEntryIsSetAsideWithItsReason) {
  const std::string body = R"({"JobId":"j"})";
  auto entry = [&](const std::string& header) { return header + "\n" + body; };
  const std::vector<Case> cases = {
      {"empty file", "", "the file is empty"},
      {"binary junk", std::string("\x00\xff\xfe\x01junk\x80\n\x01\x02", 12), "header is not valid JSON"},
      {"no newline", "{\"kind\":\"completion\"", "no header line"},
      {"huge header", std::string(70 * 1024, ' ') + "{}\n{}", "no header line within the first 64 KiB"},
      {"deep header", std::string(60000, '[') + "\n{}", "nests objects/arrays deeper than"},
      {"array header", entry("[1,2]"), "not an object"},
      {"job_id null", entry(R"({"v":1,"kind":"completion","job_id":null,"endpoint":"e","body_bytes":13})"),
       "'job_id' is not a string"},
      {"part as text", entry(R"({"kind":"completion","job_id":"j","endpoint":"e","part":"1","body_bytes":13})"),
       "'part' is not an integer"},
      {"part zero", entry(R"({"kind":"completion","job_id":"j","endpoint":"e","part":0,"body_bytes":13})"),
       "'part' is out of range"},
      {"part beyond parts",
       entry(R"({"kind":"completion","job_id":"j","endpoint":"e","part":3,"parts":2,"body_bytes":13})"), "part 3 of 2"},
      {"kind missing", entry(R"({"job_id":"j","endpoint":"e","body_bytes":13})"), "'kind' is missing"},
      {"kind number", entry(R"({"kind":3,"job_id":"j","endpoint":"e","body_bytes":13})"), "'kind' is not a string"},
      {"unknown kind", entry(R"({"kind":"telegram","job_id":"j","endpoint":"e","body_bytes":13})"), "unknown kind"},
      {"kind mismatch", entry(R"({"kind":"inventory","job_id":"j","endpoint":"e","body_bytes":13})"),
       "does not match the file name"},
      {"job_id empty", entry(R"({"kind":"completion","job_id":"","endpoint":"e","body_bytes":13})"),
       "'job_id' is empty"},
      {"job_id huge",
       entry(R"({"kind":"completion","job_id":")" + std::string(5000, 'x') + R"(","endpoint":"e","body_bytes":13})"),
       "'job_id' is longer than"},
      {"endpoint missing", entry(R"({"kind":"completion","job_id":"j","body_bytes":13})"), "'endpoint' is missing"},
      {"body_bytes missing", entry(R"({"kind":"completion","job_id":"j","endpoint":"e"})"), "'body_bytes' is missing"},
      {"body_bytes negative", entry(R"({"kind":"completion","job_id":"j","endpoint":"e","body_bytes":-13})"),
       "'body_bytes' is negative"},
      {"body_bytes float", entry(R"({"kind":"completion","job_id":"j","endpoint":"e","body_bytes":13.5})"),
       "'body_bytes' is not an integer"},
      {"body_bytes huge", entry(R"({"kind":"completion","job_id":"j","endpoint":"e","body_bytes":1e300})"),
       "'body_bytes' is not an integer"},
      {"body_bytes 2^64",
       entry(R"({"kind":"completion","job_id":"j","endpoint":"e","body_bytes":18446744073709551615})"),
       "'body_bytes' is out of range"},
      {"audit_id text", entry(R"({"kind":"completion","job_id":"j","endpoint":"e","audit_id":"7","body_bytes":13})"),
       "'audit_id' is not an integer"},
      {"version 2", entry(R"({"v":2,"kind":"completion","job_id":"j","endpoint":"e","body_bytes":13})"),
       "'v' is out of range"},
      {"truncated body", header_with("", 100) + "\n" + body, "shorter than its header says (truncated)"},
      {"missing body", header_with("", 13) + "\n", "shorter than its header says (truncated)"},
      {"trailing junk", header_with("", 13) + "\n" + body + "junk", "longer than its header says"},
  };
  TempDir dir;
  {
    auto box = Outbox::open(dir.path());
    ASSERT_TRUE(box.ok()) << box.error().message;
    ASSERT_TRUE((*box)->append(completion("good"), R"({"JobId":"good"})").ok());
  }
  for (std::size_t i = 0; i < cases.size(); ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "%016zu.completion.entry", i + 100);
    testing::write_text(dir.path() + "/outbox/" + name, cases[i].content);
  }
  // Not regular files: a directory and a FIFO (opening a FIFO would block start-up forever).
  fs::create_directory(dir.path() + "/outbox/0000000000000200.completion.entry");
  ASSERT_EQ(::mkfifo((dir.path() + "/outbox/0000000000000201.completion.entry").c_str(), 0600), 0);
  // A file name without a sequence number.
  testing::write_text(dir.path() + "/outbox/abc.completion.entry", header_with("", 13) + "\n" + body);

  auto box = Outbox::open(dir.path());
  ASSERT_TRUE(box.ok()) << box.error().message;
  ASSERT_EQ((*box)->size(), 1u);
  EXPECT_EQ((*box)->pending()[0].job_id, "good");
  const auto& notes = (*box)->recovery_notes();
  ASSERT_EQ(notes.size(), cases.size() + 3);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "%016zu.completion.entry", i + 100);
    const auto note = std::find_if(notes.begin(), notes.end(),
                                   [&](const std::string& n) { return n.find(name) != std::string::npos; });
    ASSERT_NE(note, notes.end()) << cases[i].name;
    EXPECT_NE(note->find(cases[i].note), std::string::npos) << cases[i].name << ": " << *note;
    EXPECT_NE(note->find("set aside damaged entry"), std::string::npos) << *note;
    EXPECT_EQ(note->find("refused"), std::string::npos) << *note;
    EXPECT_TRUE(fs::exists(dir.path() + "/outbox-corrupt/" + name)) << cases[i].name;
  }
  EXPECT_EQ(std::count_if(notes.begin(), notes.end(),
                          [](const std::string& n) { return n.find("not a regular file") != std::string::npos; }),
            2);
  // New entries continue after the good one; the damaged files' sequence numbers do not matter.
  auto next = (*box)->append(completion("next"), "{}");
  ASSERT_TRUE(next.ok());
  // The same damage found again (same file name in outbox-corrupt) does not overwrite the first copy.
  testing::write_text(dir.path() + "/outbox/0000000000000100.completion.entry", "");
  auto again = Outbox::open(dir.path());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(fs::exists(dir.path() + "/outbox-corrupt/0000000000000100.completion.entry.1"));
}

// Two files with one sequence number (only a person copying files makes that): one is kept, the other
// set aside, never silently dropped from the index.
TEST(OutboxFaultTest, DuplicateSequenceNumbersAreSetAside) {
  TempDir dir;
  std::string first;
  {
    auto box = Outbox::open(dir.path());
    ASSERT_TRUE(box.ok());
    auto e = (*box)->append(completion("a"), R"({"JobId":"a"})");
    ASSERT_TRUE(e.ok());
    first = e->file;
  }
  const std::string copy = dir.path() + "/outbox/0000000000000001.inventory.entry";
  std::string content = testing::read_text(first);
  content.replace(content.find("\"completion\""), 12, "\"inventory\"");
  testing::write_text(copy, content);
  auto box = Outbox::open(dir.path());
  ASSERT_TRUE(box.ok());
  EXPECT_EQ((*box)->size(), 1u);
  ASSERT_EQ((*box)->recovery_notes().size(), 1u);
  EXPECT_NE((*box)->recovery_notes()[0].find("sequence number is already used"), std::string::npos)
      << (*box)->recovery_notes()[0];
}

// A body damaged after start (same size, not JSON; or cut short): set aside in outbox-corrupt when it
// is about to be sent, with a message saying it is damaged, and the next entry is delivered.
TEST(OutboxFaultTest, ABodyDamagedAfterStartIsSetAsideWithATrueMessage) {
  TempDir dir;
  auto box = Outbox::open(dir.path());
  ASSERT_TRUE(box.ok());
  auto bad = (*box)->append(completion("flipped"), R"({"JobId":"flipped"})");
  auto cut = (*box)->append(completion("cut"), R"({"JobId":"cut"})");
  ASSERT_TRUE((*box)->append(completion("fine"), R"({"JobId":"fine"})").ok());
  ASSERT_TRUE(bad.ok() && cut.ok());
  {
    std::string content = testing::read_text(bad->file);
    content[content.size() - 3] = '\x01';
    content[content.size() - 1] = '{';
    testing::write_text(bad->file, content);
  }
  fs::resize_file(cut->file, fs::file_size(cut->file) - 4);

  net::io_context io;
  std::vector<std::string> delivered;
  OutboxSender sender(
      io.get_executor(), **box,
      [&](const OutboxEntry& e, std::string) -> net::awaitable<Delivery> {
        delivered.push_back(e.job_id);
        co_return Delivery::kDone;
      },
      Backoff(std::chrono::milliseconds(1), std::chrono::milliseconds(2)));
  sender.drain(std::chrono::steady_clock::now() + std::chrono::seconds(5));
  net::co_spawn(io, sender.run(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.run();
  EXPECT_EQ(delivered, std::vector<std::string>{"fine"});
  EXPECT_EQ(sender.set_aside(), 2u);
  EXPECT_TRUE(fs::exists(dir.path() + "/outbox-corrupt/" + fs::path(bad->file).filename().string()));
  EXPECT_TRUE(fs::exists(dir.path() + "/outbox-corrupt/" + fs::path(cut->file).filename().string()));
  EXPECT_FALSE(fs::exists(dir.path() + "/outbox-rejected"));
  EXPECT_EQ((*box)->size(), 0u);
}

// The header decoder on its own (the fuzz target's entry point): never throws, checks every field.
TEST(OutboxFaultTest, HeaderDecoderChecksNamesAndSizes) {
  const std::string h = header_with("", 2);
  EXPECT_TRUE(decode_entry_header("0000000000000001.completion.entry", h, h.size() + 3).ok());
  EXPECT_FALSE(decode_entry_header("0000000000000000.completion.entry", h, h.size() + 3).ok());
  EXPECT_FALSE(decode_entry_header("1", h, h.size() + 3).ok());
  EXPECT_FALSE(decode_entry_header("99999999999999999999999.completion.entry", h, h.size() + 3).ok());
  EXPECT_FALSE(decode_entry_header("", "", 0).ok());
  auto e = decode_entry_header("0000000000000009.completion.entry", h, h.size() + 3);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->seq, 9u);
  EXPECT_EQ(e->job_id, "j");
  EXPECT_EQ(e->body_size, 2u);
}

// "parts": 0 marks an inventory part stored before the inventory's end was known; no other kind has parts.
TEST(OutboxFaultTest, OnlyInventoryPartsMayLeaveTheirCountOpen) {
  const std::string open_count =
      R"({"v":1,"kind":"inventory","job_id":"j","audit_id":1,"endpoint":"e","part":3,"parts":0,"body_bytes":2})";
  auto part = decode_entry_header("0000000000000001.inventory.entry", open_count, open_count.size() + 3);
  ASSERT_TRUE(part.ok()) << part.error().message;
  EXPECT_EQ(part->parts, kMorePartsFollow);
  EXPECT_EQ(part->part, 3);
  const std::string completion = header_with("", 2);
  std::string zero = completion;
  zero.replace(zero.find("\"parts\":1"), 9, "\"parts\":0");
  auto refused = decode_entry_header("0000000000000001.completion.entry", zero, zero.size() + 3);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("a completion entry in parts"), std::string::npos) << refused.error().message;
  std::string negative = open_count;
  negative.replace(negative.find("\"parts\":0"), 9, "\"parts\":-1");
  EXPECT_FALSE(decode_entry_header("0000000000000001.inventory.entry", negative, negative.size() + 3).ok());
}

}  // namespace
}  // namespace wincert::agent
