// libFuzzer target: endpoint URLs as Command names them, resolved against AgentsServerUri. Whatever the
// input, a resolved endpoint is on the base's origin (credentials never leave it).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/command_http.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace wincert::agent;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  static const Url bases[] = {*parse_url("https://kf.example.com/KeyfactorAgents"), *parse_url("http://127.0.0.1:4000"),
                              *parse_url("https://[::1]:8443/Keyfactor/Agents/")};
  for (const Url& base : bases) {
    auto resolved = resolve_endpoint(base, text);
    if (resolved.ok()) {
      if (!same_origin(*resolved, base)) __builtin_trap();
      if (resolved->target.empty() || resolved->target.front() != '/') __builtin_trap();
      (void)resolved->text();
    }
  }
  if (auto url = parse_url(text); url.ok()) (void)url->text();
  return 0;
}
