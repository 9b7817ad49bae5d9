// libFuzzer target: bytes through the PSRP defragmenter (as a WS-Man Stream or OutOfProc Data packet delivers
// them), each message it completes through the header decoder and the typed server parsers; and any input fragmented
// then reassembled must come back unchanged.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "winrm/psrp/fragment.hpp"
#include "winrm/psrp/messages.hpp"

using namespace wincert::winrm::psrp;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (input.empty()) return 0;
  // The first byte picks the fragment size of the round trip below; the rest is the transport's bytes.
  const std::size_t blob_size = 1 + static_cast<unsigned char>(input[0]) * 16;
  input.remove_prefix(1);

  DefragmenterLimits limits;
  limits.max_message_bytes = 1 << 20;
  limits.max_incomplete_objects = 8;
  Defragmenter defragmenter(limits);
  ClixmlLimits clixml;
  clixml.max_depth = 32;
  clixml.max_nodes = 20000;
  // Twice into the same defragmenter: the second pass meets the objects the first left incomplete.
  for (int pass = 0; pass < 2; ++pass) {
    auto messages = defragmenter.feed(input);
    if (!messages.ok()) continue;
    for (const auto& raw : *messages) {
      auto message = decode_message(raw);
      if (!message.ok()) continue;
      (void)message_type_name(message->type);
      (void)parse_server_message(*message, clixml).ok();
    }
  }

  // Fragmenting is lossless for any message and size.
  auto fragments = fragment_message(input, 7, kFragmentHeaderSize + blob_size);
  if (!fragments.ok()) __builtin_trap();
  std::string joined;
  for (const auto& f : *fragments) joined += f;
  Defragmenter again;
  auto back = again.feed(joined);
  if (!back.ok() || back->size() != 1 || back->front() != input) __builtin_trap();
  return 0;
}
