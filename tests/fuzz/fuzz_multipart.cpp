// libFuzzer target: hostile multipart/encrypted bodies through the framing parser, with a transparent
// sealer (reaches the length checks) and with a real NTLM session (reaches signature verification).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "winrm/auth/ntlm_messages.hpp"
#include "winrm/auth/ntlm_session.hpp"
#include "winrm/encryption.hpp"

namespace {

class PassThroughSealer final : public wincert::winrm::MessageSealer {
 public:
  wincert::Result<wincert::winrm::SealedMessage> wrap(std::string_view plain) override {
    return wincert::winrm::SealedMessage{"0123456789abcdef", std::string(plain), plain.size()};
  }
  wincert::Result<std::string> unwrap(std::string_view header, std::string_view payload) override {
    if (header.size() != 16) return wincert::Error::invalid_argument("bad header");
    return std::string(payload);
  }
  std::string_view protocol_name() const override { return wincert::winrm::kSpnegoEncryptedProtocol; }
};

constexpr std::string_view kContentType =
    "multipart/encrypted;protocol=\"application/HTTP-SPNEGO-session-encrypted\";boundary=\"Encrypted Boundary\"";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  PassThroughSealer pass_through;
  auto plain = wincert::winrm::parse_encrypted_body(body, kContentType, pass_through);
  if (plain.ok() && plain->size() > body.size()) __builtin_trap();  // output never exceeds input

  // The first line as the Content-Type value, the rest as the body.
  if (const auto newline = body.find('\n'); newline != std::string_view::npos) {
    (void)wincert::winrm::parse_encrypted_body(body.substr(newline + 1), body.substr(0, newline), pass_through);
  }

  wincert::winrm::ntlm::Digest16 key{};
  key.fill(0x33);
  auto session = wincert::winrm::ntlm::Session::create(key, wincert::winrm::ntlm::kWinrmClientFlags,
                                                       wincert::winrm::ntlm::Role::kInitiator);
  if (!session.ok()) return 0;
  wincert::winrm::ntlm::NtlmSealer sealer(std::move(*session));
  (void)wincert::winrm::parse_encrypted_body(body, kContentType, sealer);

  // Round trip: whatever we build, we parse back.
  PassThroughSealer again;
  auto built = wincert::winrm::build_encrypted_body(body, again);
  if (!built.ok()) __builtin_trap();
  auto back = wincert::winrm::parse_encrypted_body(built->body, built->content_type, again);
  if (!back.ok() || *back != body) __builtin_trap();

  // Without a seed corpus of real bodies, also corrupt well-formed framing: the input picks the
  // positions and values, so the deep paths (lengths, delimiters, headers) get exercised.
  std::string corrupted = built->body;
  for (std::size_t i = 0; i + 1 < size && i < 16; i += 2) {
    corrupted[(static_cast<std::size_t>(data[i]) * 131 + i * 17) % corrupted.size()] = static_cast<char>(data[i + 1]);
    (void)wincert::winrm::parse_encrypted_body(corrupted, built->content_type, again);
  }
  (void)wincert::winrm::parse_encrypted_body(std::string_view(built->body).substr(0, size % built->body.size()),
                                             built->content_type, again);
  return 0;
}
