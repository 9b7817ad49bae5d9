// common/log: the sanitising of peer text, the JSON-lines format with event fields, rotation by size,
// and the log file's mode.
#include "common/log.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/result_matchers.hpp"

#ifndef _WIN32
#include <sys/stat.h>
#endif

namespace wincert {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> read_lines(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class LogFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("wincert-log-test-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    file_ = dir_ / "agent.log";
  }
  void TearDown() override {
    init_logging("off");
    // The file sink stays until logging names another file, and Windows cannot delete an open file: the
    // folder may stay behind there (in the temporary directory).
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  fs::path dir_;
  fs::path file_;
};

TEST(LogSanitize, EscapesControlCharactersSoNoLineCanBeForged) {
  EXPECT_EQ(sanitize_log_text("job 1\n2026-01-01T00:00:00.000 info [agent] forged"),
            "job 1\\n2026-01-01T00:00:00.000 info [agent] forged");
  EXPECT_EQ(sanitize_log_text("a\rb\tc\x1b[31md\x7f"), "a\\rb\\tc\\x1b[31md\\x7f");
  EXPECT_EQ(sanitize_log_text("csi \xc2\x9b"
                              "31m"),
            "csi \\u009b31m");                                                           // C1 CSI, UTF-8 encoded
  EXPECT_EQ(sanitize_log_text("caf\xc3\xa9 \xe2\x82\xac"), "caf\xc3\xa9 \xe2\x82\xac");  // other UTF-8 untouched
  EXPECT_EQ(sanitize_log_text(std::string("nul\0x", 5)), "nul\\x00x");
}

TEST(LogSanitize, JsonEscapeAlwaysGivesValidJson) {
  const std::string raw = std::string("q\"b\\n\nesc\x1b c1\xc2\x85 bad\xff\xfe ok\xc3\xa9", 27);
  const std::string doc = "\"" + json_escape(raw) + "\"";
  const auto parsed = nlohmann::json::parse(doc, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << doc;
  const std::string back = parsed.get<std::string>();
  EXPECT_NE(back.find("q\"b\\n\nesc\x1b"), std::string::npos);
  EXPECT_NE(back.find("\xef\xbf\xbd"), std::string::npos);  // U+FFFD for the invalid bytes
  EXPECT_EQ(doc.find('\n'), std::string::npos);
  EXPECT_EQ(doc.find('\x1b'), std::string::npos);
}

TEST_F(LogFileTest, TextFormatEscapesPeerTextInEveryMessage) {
  LogOptions options;
  options.level = "info";
  options.file = file_.string();
  ASSERT_TRUE(init_logging(options).ok());
  logger("agent")->info("job {} start", "evil\n2026-01-01T00:00:00.000 error [agent] forged line");
  init_logging("off");
  const auto lines = read_lines(file_);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(" info [agent] job evil\\n2026-01-01"), std::string::npos) << lines[0];
}

TEST_F(LogFileTest, JsonFormatWritesOneObjectPerLineWithEventFields) {
  LogOptions options;
  options.level = "debug";
  options.file = file_.string();
  options.format = LogFormat::kJson;
  ASSERT_TRUE(init_logging(options).ok());
  auto log = logger("agent");
  log->debug("plain {}", "message\nwith a newline");
  LogFields fields;
  fields.job_id = "job-\n1";
  fields.capability = "CertStores.WinCert.Inventory";
  fields.host = "web01";
  fields.store = "My";
  fields.result = "Failure";
  fields.error_category = "transient";
  fields.duration_ms = 1234;
  log_event(*log, spdlog::level::err, fields, "job {} end", "job-1");
  log->trace("below the level: not written");
  init_logging("off");
  const auto lines = read_lines(file_);
  ASSERT_EQ(lines.size(), 2u);
  const auto first = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(first["level"], "debug");
  EXPECT_EQ(first["logger"], "agent");
  EXPECT_EQ(first["message"], "plain message\nwith a newline");
  EXPECT_FALSE(first.contains("job_id"));
  const std::string time = first["time"];
  EXPECT_EQ(time.size(), 24u) << time;  // 2026-12-06T04:30:00.123Z
  EXPECT_EQ(time[10], 'T');
  EXPECT_EQ(time[19], '.');
  EXPECT_EQ(time.back(), 'Z');
  const auto second = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(second["level"], "error");
  EXPECT_EQ(second["job_id"], "job-\n1");
  EXPECT_EQ(second["capability"], "CertStores.WinCert.Inventory");
  EXPECT_EQ(second["host"], "web01");
  EXPECT_EQ(second["store"], "My");
  EXPECT_EQ(second["result"], "Failure");
  EXPECT_EQ(second["error_category"], "transient");
  EXPECT_EQ(second["duration_ms"], 1234);
}

TEST_F(LogFileTest, RotatesBySizeKeepingMaxFiles) {
  LogOptions options;
  options.level = "info";
  options.file = file_.string();
  options.max_file_bytes = 4096;
  options.max_files = 2;
  ASSERT_TRUE(init_logging(options).ok());
  auto log = logger("agent");
  for (int i = 0; i < 400; ++i) log->info("line {} {}", i, std::string(40, 'x'));
  init_logging("off");
  EXPECT_TRUE(fs::exists(file_));
  EXPECT_TRUE(fs::exists(dir_ / "agent.1.log"));
  EXPECT_TRUE(fs::exists(dir_ / "agent.2.log"));
  EXPECT_FALSE(fs::exists(dir_ / "agent.3.log"));
  EXPECT_LE(fs::file_size(file_), 4096u);
  const auto last = read_lines(file_);
  ASSERT_FALSE(last.empty());
  EXPECT_NE(last.back().find("line 399 "), std::string::npos);
}

#ifndef _WIN32
TEST_F(LogFileTest, FileIsCreatedOwnerOnlyWhateverTheUmask) {
  const mode_t old_umask = ::umask(0);  // the most permissive umask: the mode must still be 0600
  LogOptions options;
  options.file = file_.string();
  options.max_file_bytes = 2048;
  options.max_files = 1;
  const bool ok = init_logging(options).ok();
  ::umask(old_umask);
  ASSERT_TRUE(ok);
  for (int i = 0; i < 100; ++i) logger("agent")->info("line {} {}", i, std::string(40, 'x'));  // rotates
  init_logging("off");
  struct stat st {};
  ASSERT_EQ(::stat(file_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir_ / "agent.1.log").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  options.group_readable = true;
  fs::remove(file_);
  ASSERT_TRUE(init_logging(options).ok());
  logger("agent")->info("x");
  init_logging("off");
  ASSERT_EQ(::stat(file_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}
#endif

TEST_F(LogFileTest, UnwritableFileIsAnErrorNamingIt) {
  std::ofstream(dir_ / "not-a-dir") << "x";  // a regular file where a directory should be
  LogOptions options;
  options.file = (dir_ / "not-a-dir" / "agent.log").string();
  const auto result = init_logging(options);
  EXPECT_THAT(result, HasCode(ErrorCode::kFailedPrecondition));
  EXPECT_NE(result.error().message.find("not-a-dir"), std::string::npos) << result.error().message;
}

}  // namespace
}  // namespace wincert
