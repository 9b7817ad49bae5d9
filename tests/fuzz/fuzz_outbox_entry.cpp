// libFuzzer target: an outbox entry file as the agent reads it back at start-up and before sending:
// the header decoder (every field's type and range, the size against the header) and the body check.
// The first byte picks the kind the file name claims; the rest is the file's content.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/outbox.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static const char* const kNames[] = {"0000000000000001.completion.entry", "0000000000000002.inventory.entry",
                                       "0000000000000003.csr.entry", "x.entry"};
  const std::string_view name = kNames[data[0] % 4];
  const std::string_view file(reinterpret_cast<const char*>(data + 1), size - 1);
  const auto eol = file.find('\n');
  const std::string_view header = file.substr(0, eol);
  auto entry = wincert::agent::decode_entry_header(name, header, file.size());
  if (entry.ok()) {
    // Decoded means the body is exactly where the header says.
    if (eol == std::string_view::npos || eol + 1 + entry->body_size != file.size()) __builtin_trap();
    (void)nlohmann::json::accept(file.substr(eol + 1));
    (void)entry->describe();
  }
  return 0;
}
