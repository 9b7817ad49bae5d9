// Process-wide logging through spdlog. Components log through named loggers ("winrm", "sim", ...).
//
// Every message is sanitised where it is formatted (one place, for every logger and sink): control
// characters (C0, DEL, C1) are escaped, so text from a peer (a JobId, a host name, a message from
// Command or a host) cannot forge a log line or smuggle terminal escapes. Two formats: text (one line
// per event, the default) and JSON lines (one object per line, for log shippers).
#pragma once

#include <spdlog/spdlog.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace wincert {

enum class LogFormat { kText, kJson };

struct LogOptions {
  std::string level = "info";  // trace, debug, info, warn, error, off; unknown names fall back to info
  std::string file;            // empty = stderr
  LogFormat format = LogFormat::kText;
  std::size_t max_file_bytes = 10u * 1024 * 1024;  // file: rotate at this size ...
  std::size_t max_files = 5;                       // ... keeping this many rotated files
  bool group_readable = false;                     // file mode 0640 instead of 0600 (POSIX)
};

// Sets the level of every logger and, when file is non-empty, sends output there (rotating) instead
// of stderr. Fails (and changes nothing) when the file cannot be opened.
Status init_logging(const LogOptions& options);

// Sets the level of every logger ("trace", "debug", "info", "warn", "error", "off") and, when
// file is non-empty, sends output there instead of stderr. Unknown level names fall back to info.
void init_logging(const std::string& level, const std::string& file = {});

// Adds a sink every logger also writes to (e.g. the Windows event log for warnings); its own level
// filters what it gets.
void add_log_sink(spdlog::sink_ptr sink);

// A named logger sharing the process sinks; created on first use.
std::shared_ptr<spdlog::logger> logger(const std::string& name);

// What the JSON format adds to an event as members (the text format shows only the message, which
// should say the same in words). Empty / unset fields are left out.
struct LogFields {
  std::string_view job_id;
  std::string_view capability;
  std::string_view host;
  std::string_view store;
  std::string_view result;
  std::string_view error_category;
  std::optional<long long> duration_ms;
};

namespace log_detail {
// The fields of the event being logged on this thread (set by log_event for the formatter).
extern thread_local const LogFields* current_fields;
}  // namespace log_detail

// Logs one event with structured fields.
template <typename... Args>
void log_event(spdlog::logger& log, spdlog::level::level_enum level, const LogFields& fields,
               fmt::format_string<Args...> format, Args&&... args) {
  if (!log.should_log(level)) return;
  log_detail::current_fields = &fields;
  log.log(level, format, std::forward<Args>(args)...);
  log_detail::current_fields = nullptr;
}

// Escapes control characters for the text format: \n \r \t as such, other C0 and DEL as \xNN, C1
// (U+0080..U+009F) as \u00NN. Everything else (valid or not as UTF-8) passes unchanged.
std::string sanitize_log_text(std::string_view text);

// One JSON string's content (without quotes): ", \ and every control character escaped; bytes that
// are not valid UTF-8 become U+FFFD, so the line is always valid JSON.
std::string json_escape(std::string_view text);

}  // namespace wincert
