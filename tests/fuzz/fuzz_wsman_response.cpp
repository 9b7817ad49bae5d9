// libFuzzer target: any bytes through parse_response and every typed parser. Errors are fine; crashes,
// leaks, UB and hangs are not.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "winrm/messages.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace wincert::winrm;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // With and without a RelatesTo check: the check runs on attacker-controlled text too.
  for (std::string_view expected :
       {std::string_view{}, std::string_view{"uuid:D77606D4-77E9-4150-AD9B-26AF3B6C5281"}}) {
    auto response = parse_response(input, expected);
    if (!response.ok()) continue;
    if (response->fault) {
      (void)response->fault->summary();
      (void)response->fault->to_error();
    }
    (void)parse_create_shell(*response);
    (void)parse_command_id(*response);
    (void)parse_receive(*response, "");
    (void)parse_receive(*response, "D644AE56-61E5-4C1A-A135-E599B76B3035");
    (void)parse_config(*response);
  }
  return 0;
}
