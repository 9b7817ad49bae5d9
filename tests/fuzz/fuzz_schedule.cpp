// libFuzzer target: schedule strings from Command's job list, parsed and asked for their next run.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/schedule.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace wincert::agent;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto schedule = parse_schedule(text);
  if (!schedule.ok()) return 0;
  const auto now = TimePoint{} + std::chrono::hours(24 * 365 * 55);
  auto next = next_run(*schedule, now, std::nullopt);
  if (next) (void)next_run(*schedule, *next, next);
  return 0;
}
