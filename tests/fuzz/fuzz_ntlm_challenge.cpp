// libFuzzer target: hostile bytes through every NTLM message parser, and as the CHALLENGE the client
// answers (AV pair copying, MIC, key exchange).
#include <cstddef>
#include <cstdint>
#include <span>

#include "winrm/auth/ntlm.hpp"
#include "winrm/auth/ntlm_messages.hpp"

namespace ntlm = wincert::winrm::ntlm;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> input(data, size);
  (void)ntlm::parse_negotiate(input);
  (void)ntlm::parse_authenticate(input);
  (void)ntlm::parse_target_info(input);
  (void)ntlm::parse_ntlmv2_response(input);
  auto challenge = ntlm::parse_challenge(input);
  if (challenge.ok()) {
    // Re-encoding a parsed list must parse again.
    if (!ntlm::parse_target_info(challenge->target_info.encode()).ok()) __builtin_trap();
  }

  ntlm::ClientOptions options;
  options.target_spn = "HTTP/fuzz.example";
  options.channel_binding_application_data = "tls-server-end-point:0123456789abcdef0123456789abcdef";
  options.random = [](std::span<std::uint8_t> out) -> wincert::Status {
    for (auto& b : out) b = 0x42;
    return {};
  };
  options.clock = [] { return std::uint64_t{0x01d61e0000000000}; };
  ntlm::Client client(ntlm::Credentials{"user", "DOMAIN", wincert::Secret("password")}, options);
  if (!client.negotiate().ok()) return 0;
  auto authenticate = client.authenticate(input);
  if (authenticate.ok()) {
    // Whatever we produce must be a well-formed AUTHENTICATE.
    auto parsed = ntlm::parse_authenticate(*authenticate);
    if (!parsed.ok() || !ntlm::parse_ntlmv2_response(parsed->nt_challenge_response).ok()) __builtin_trap();
  }
  return 0;
}
