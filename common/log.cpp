#include "common/log.hpp"

#include <spdlog/details/os.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#ifdef _WIN32
#include "common/win32_acl.hpp"
#else
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace wincert {

namespace log_detail {
thread_local const LogFields* current_fields = nullptr;
}  // namespace log_detail

namespace {

constexpr const char* kTextPattern = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %Q";

std::mutex g_mutex;
// Every logger writes to this one sink; it forwards to stderr or the LogFile, plus any add_log_sink().
std::shared_ptr<spdlog::sinks::dist_sink_mt> g_sink;
spdlog::sink_ptr g_primary;  // stderr or the LogFile, inside g_sink
spdlog::level::level_enum g_level = spdlog::level::info;
LogFormat g_format = LogFormat::kText;

spdlog::sink_ptr sink_locked() {
  if (!g_sink) {
    g_sink = std::make_shared<spdlog::sinks::dist_sink_mt>();
    g_primary = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    g_sink->add_sink(g_primary);
  }
  return g_sink;
}

void append(spdlog::memory_buf_t& dest, std::string_view text) { dest.append(text.data(), text.data() + text.size()); }

// %Q: the message, sanitised.
class SanitizedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    append(dest, sanitize_log_text(std::string_view(msg.payload.data(), msg.payload.size())));
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<SanitizedMessage>(); }
};

// One JSON object per line: time (RFC 3339 UTC, ms), level, logger, message, then the event's fields.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto since_epoch = msg.time.time_since_epoch();
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds).count();
    const std::time_t t = static_cast<std::time_t>(seconds.count());
    const std::tm utc = spdlog::details::os::gmtime(t);  // gmtime_r / gmtime_s
    char time_text[96];                                  // generous: the compiler cannot bound the int fields
    std::snprintf(time_text, sizeof time_text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                  utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(ms));
    append(dest, "{\"time\":\"");
    append(dest, time_text);
    append(dest, "\",\"level\":\"");
    const auto level = spdlog::level::to_string_view(msg.level);
    append(dest, std::string_view(level.data(), level.size()));
    append(dest, "\",\"logger\":\"");
    append(dest, json_escape(std::string_view(msg.logger_name.data(), msg.logger_name.size())));
    append(dest, "\",\"message\":\"");
    append(dest, json_escape(std::string_view(msg.payload.data(), msg.payload.size())));
    append(dest, "\"");
    if (const LogFields* f = log_detail::current_fields) {
      auto field = [&dest](std::string_view name, std::string_view value) {
        if (value.empty()) return;
        append(dest, ",\"");
        append(dest, name);
        append(dest, "\":\"");
        append(dest, json_escape(value));
        append(dest, "\"");
      };
      field("job_id", f->job_id);
      field("capability", f->capability);
      field("host", f->host);
      field("store", f->store);
      field("result", f->result);
      field("error_category", f->error_category);
      if (f->duration_ms) {
        append(dest, ",\"duration_ms\":");
        append(dest, std::to_string(*f->duration_ms));
      }
    }
    append(dest, "}");
    append(dest, spdlog::details::os::default_eol);
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

std::unique_ptr<spdlog::formatter> make_formatter_locked() {
  if (g_format == LogFormat::kJson) return std::make_unique<JsonFormatter>();
  auto f = std::make_unique<spdlog::pattern_formatter>();
  f->add_flag<SanitizedMessage>('Q').set_pattern(kTextPattern);
  return f;
}

void configure_locked(spdlog::logger& l) {
  l.set_level(g_level);
  l.set_formatter(make_formatter_locked());
  l.flush_on(spdlog::level::trace);  // every line reaches a LogFile at once (tail -f, kill -9)
}

#ifdef _WIN32
// The log file and every rotated successor: SYSTEM, Administrators and this account only (the POSIX 0600).
spdlog::file_event_handlers owner_only() {
  spdlog::file_event_handlers handlers;
  handlers.after_open = [](const spdlog::filename_t& name, std::FILE*) { (void)win32_acl::restrict_to_owner(name); };
  return handlers;
}
#else
// The log file and every rotated successor: exactly `mode`, whatever the umask.
spdlog::file_event_handlers owner_only(mode_t mode) {
  spdlog::file_event_handlers handlers;
  handlers.before_open = [mode](const spdlog::filename_t& name) {
    const int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, mode);
    if (fd >= 0) ::close(fd);
  };
  handlers.after_open = [mode](const spdlog::filename_t&, std::FILE* file) {
    if (file != nullptr) (void)::fchmod(::fileno(file), mode);
  };
  return handlers;
}
#endif

}  // namespace

Status init_logging(const LogOptions& options) {
  spdlog::sink_ptr file_sink;
  if (!options.file.empty()) {
    try {
#ifdef _WIN32
      file_sink = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(options.file, options.max_file_bytes,
                                                                         options.max_files, false, owner_only());
#else
      file_sink = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
          options.file, options.max_file_bytes, options.max_files, false,
          owner_only(options.group_readable ? 0640 : 0600));
#endif
    } catch (const spdlog::spdlog_ex& e) {
      return Error::failed_precondition("LogFile: cannot open '" + options.file + "' for writing: " + e.what());
    }
  }
  std::lock_guard lock(g_mutex);
  g_level = spdlog::level::from_str(options.level);
  if (g_level == spdlog::level::off && options.level != "off") g_level = spdlog::level::info;
  g_format = options.format;
  sink_locked();
  if (file_sink) {
    g_sink->remove_sink(g_primary);
    g_primary = file_sink;
    g_sink->add_sink(g_primary);
  }
  spdlog::drop_all();
  auto def = std::make_shared<spdlog::logger>("wincert", sink_locked());
  configure_locked(*def);
  spdlog::set_default_logger(def);
  return Status{};
}

void init_logging(const std::string& level, const std::string& file) {
  LogOptions options;
  options.level = level;
  options.file = file;
  auto done = init_logging(options);
  if (!done.ok()) {
    options.file.clear();  // the old behaviour: spdlog threw; now: stderr and a note
    (void)init_logging(options);
    spdlog::error("{}", done.error().message);
  }
}

void add_log_sink(spdlog::sink_ptr sink) {
  std::lock_guard lock(g_mutex);
  sink_locked();
  g_sink->add_sink(std::move(sink));
}

std::shared_ptr<spdlog::logger> logger(const std::string& name) {
  std::lock_guard lock(g_mutex);
  if (auto existing = spdlog::get(name)) return existing;
  auto l = std::make_shared<spdlog::logger>(name, sink_locked());
  configure_locked(*l);
  spdlog::register_logger(l);
  return l;
}

std::string sanitize_log_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  static constexpr char kHex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else if (c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(text[i + 1]) <= 0x9f) {
      const auto c1 = static_cast<unsigned char>(text[++i]);  // U+0080..U+009F (CSI and friends)
      out += "\\u00";
      out += kHex[c1 >> 4];
      out += kHex[c1 & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

namespace {
// Length of the valid UTF-8 sequence at text[i], or 0.
std::size_t utf8_length(std::string_view text, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(text[i]);
  std::size_t n = 0;
  unsigned min = 0;
  unsigned cp = 0;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    n = 2, min = 0x80, cp = b0 & 0x1f;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    n = 3, min = 0x800, cp = b0 & 0x0f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    n = 4, min = 0x10000, cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(text[i + k]);
    if ((b & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}
}  // namespace

std::string json_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  static constexpr char kHex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20 || c == 0x7f) {
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 0xf];
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    const std::size_t n = utf8_length(text, i);
    if (n == 0) {
      out += "\\ufffd";  // not UTF-8: keep the line valid JSON
      ++i;
      continue;
    }
    if (n == 2 && c == 0xc2 && static_cast<unsigned char>(text[i + 1]) <= 0x9f) {
      const auto c1 = static_cast<unsigned char>(text[i + 1]);  // C1 control
      out += "\\u00";
      out += kHex[c1 >> 4];
      out += kHex[c1 & 0xf];
    } else {
      out.append(text.substr(i, n));
    }
    i += n;
  }
  return out;
}

}  // namespace wincert
