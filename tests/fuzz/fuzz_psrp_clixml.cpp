// libFuzzer target: bytes through the PSRP CLIXML deserializer with its limits, then the value through the
// serializer and back: what was read once must serialize to a fixed point, and render as display text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "winrm/psrp/clixml_value.hpp"

using namespace wincert::winrm::psrp;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  ClixmlLimits limits;
  limits.max_depth = 48;
  limits.max_nodes = 50000;
  auto value = parse_clixml(input, limits);
  if (!value.ok()) return 0;
  (void)value->to_display_string();
  std::string first = serialize_clixml(*value);
  auto reread = parse_clixml(first, limits);
  if (!reread.ok()) {
    // Only a limit may refuse what we wrote ourselves (objects can move deeper when Refs are reordered).
    if (reread.error().code != wincert::ErrorCode::kResourceExhausted) __builtin_trap();
    return 0;
  }
  if (serialize_clixml(*reread) != first) __builtin_trap();
  return 0;
}
