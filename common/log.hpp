// Process-wide logging through spdlog. Components log through named loggers ("winrm", "sim", ...).
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace wincert {

// Sets the level of every logger ("trace", "debug", "info", "warn", "error", "off") and, when
// file is non-empty, sends output there instead of stderr. Unknown level names fall back to info.
void init_logging(const std::string& level, const std::string& file = {});

// Adds a sink every logger also writes to (e.g. the Windows event log for warnings); its own level
// filters what it gets.
void add_log_sink(spdlog::sink_ptr sink);

// A named logger sharing the process sinks; created on first use.
std::shared_ptr<spdlog::logger> logger(const std::string& name);

}  // namespace wincert
