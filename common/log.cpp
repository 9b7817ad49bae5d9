#include "common/log.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <mutex>

namespace wincert {
namespace {
std::mutex g_mutex;
// Every logger writes to this one sink; it forwards to stderr or the LogFile, plus any add_log_sink().
std::shared_ptr<spdlog::sinks::dist_sink_mt> g_sink;
spdlog::sink_ptr g_primary;  // stderr or the LogFile, inside g_sink
spdlog::level::level_enum g_level = spdlog::level::info;

spdlog::sink_ptr sink_locked() {
  if (!g_sink) {
    g_sink = std::make_shared<spdlog::sinks::dist_sink_mt>();
    g_primary = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    g_sink->add_sink(g_primary);
  }
  return g_sink;
}
}  // namespace

void init_logging(const std::string& level, const std::string& file) {
  std::lock_guard lock(g_mutex);
  g_level = spdlog::level::from_str(level);
  if (g_level == spdlog::level::off && level != "off") g_level = spdlog::level::info;
  sink_locked();
  if (!file.empty()) {
    g_sink->remove_sink(g_primary);
    g_primary = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file);
    g_sink->add_sink(g_primary);
  }
  spdlog::drop_all();
  auto def = std::make_shared<spdlog::logger>("wincert", sink_locked());
  def->set_level(g_level);
  def->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
  def->flush_on(spdlog::level::trace);  // every line reaches a LogFile at once (tail -f, kill -9)
  spdlog::set_default_logger(def);
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
  l->set_level(g_level);
  l->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
  l->flush_on(spdlog::level::trace);  // the file sink buffers otherwise: lines would appear only at exit
  spdlog::register_logger(l);
  return l;
}

}  // namespace wincert
