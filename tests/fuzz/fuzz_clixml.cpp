// libFuzzer target: stderr bytes through the CLIXML decoder and the escape decoder.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "winrm/clixml.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto streams = wincert::winrm::decode_clixml(input);
  (void)streams.error_text();
  (void)streams.readable_errors();
  (void)wincert::winrm::decode_clixml_string(input);
  return 0;
}
