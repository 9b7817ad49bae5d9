#include "winrm/auth/ntlm_session.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <cstring>

#include "winrm/auth/ntlm_messages.hpp"

namespace wincert::winrm::ntlm {
namespace {

constexpr std::string_view kClientSignMagic = "session key to client-to-server signing key magic constant";
constexpr std::string_view kServerSignMagic = "session key to server-to-client signing key magic constant";
constexpr std::string_view kClientSealMagic = "session key to client-to-server sealing key magic constant";
constexpr std::string_view kServerSealMagic = "session key to server-to-client sealing key magic constant";

// MD5(key || magic || NUL)
Result<Digest16> derive(ByteView key, std::string_view magic) {
  Bytes input(key.begin(), key.end());
  input.insert(input.end(), magic.begin(), magic.end());
  input.push_back(0);
  auto out = ntlm_crypto::md5(input);
  OPENSSL_cleanse(input.data(), input.size());
  return out;
}

std::array<std::uint8_t, 4> le32_bytes(std::uint32_t v) {
  return {static_cast<std::uint8_t>(v), static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v >> 16),
          static_cast<std::uint8_t>(v >> 24)};
}

}  // namespace

Result<Digest16> sign_key(const Digest16& exported_session_key, bool client_to_server) {
  return derive(exported_session_key, client_to_server ? kClientSignMagic : kServerSignMagic);
}

Result<Digest16> seal_key(const Digest16& exported_session_key, std::uint32_t flags, bool client_to_server) {
  // 128-bit, 56-bit or 40-bit key material before hashing (MS-NLMP 3.4.5.3).
  std::size_t key_bytes = 5;
  if (flags & flag::k128) {
    key_bytes = 16;
  } else if (flags & flag::k56) {
    key_bytes = 7;
  }
  return derive(ByteView(exported_session_key).first(key_bytes),
                client_to_server ? kClientSealMagic : kServerSealMagic);
}

Result<Session> Session::create(const Digest16& exported_session_key, std::uint32_t flags, Role role) {
  if (!(flags & flag::kExtendedSessionSecurity))
    return Error::failed_precondition(
        "NTLM: the server did not agree to extended session security, which message encryption needs");
  Session s;
  s.flags_ = flags;
  const bool initiator = role == Role::kInitiator;
  for (auto [dir, client_to_server] : {std::pair{&s.out_, initiator}, std::pair{&s.in_, !initiator}}) {
    auto sk = sign_key(exported_session_key, client_to_server);
    if (!sk) return sk.error();
    auto ek = seal_key(exported_session_key, flags, client_to_server);
    if (!ek) return ek.error();
    dir->sign_key = *sk;
    dir->seal_key = *ek;
  }
  WINCERT_TRY(s.reset());
  return s;
}

Session::~Session() {
  for (auto* dir : {&out_, &in_}) {
    OPENSSL_cleanse(dir->sign_key.data(), dir->sign_key.size());
    OPENSSL_cleanse(dir->seal_key.data(), dir->seal_key.size());
  }
}

Status Session::reset() {
  for (auto* dir : {&out_, &in_}) {
    auto rc4 = ntlm_crypto::Rc4Stream::create(dir->seal_key);
    if (!rc4) return rc4.error();
    dir->rc4.emplace(std::move(*rc4));
    dir->sequence = 0;
  }
  return {};
}

// Signature for `message` (plaintext) with the direction's sign key and current sequence number;
// the checksum is RC4-encrypted with the direction's stream when keys were exchanged. Advances seq.
Result<Digest16> Session::make_signature(Direction& dir, ByteView message) {
  if (!dir.rc4) return Error::internal("NTLM: session security used before it was set up");
  const auto seq = le32_bytes(dir.sequence);
  auto mac = ntlm_crypto::hmac_md5(dir.sign_key, {seq, message});
  if (!mac) return mac.error();
  Digest16 signature{};
  signature[0] = 1;  // NTLMSSP_MESSAGE_SIGNATURE version
  std::copy_n(mac->begin(), 8, signature.begin() + 4);
  if (flags_ & flag::kKeyExchange) WINCERT_TRY(dir.rc4->apply(signature.data() + 4, 8));
  std::copy(seq.begin(), seq.end(), signature.begin() + 12);
  ++dir.sequence;
  return signature;
}

Result<WrappedMessage> Session::wrap(ByteView message) {
  if (!out_.rc4) return Error::internal("NTLM: session security used before it was set up");
  WrappedMessage out;
  out.sealed.assign(message.begin(), message.end());
  WINCERT_TRY(out_.rc4->apply(out.sealed.data(), out.sealed.size()));
  auto signature = make_signature(out_, message);
  if (!signature) return signature.error();
  out.signature = *signature;
  return out;
}

Result<Bytes> Session::unwrap(ByteView signature, ByteView sealed) {
  if (!in_.rc4) return Error::internal("NTLM: session security used before it was set up");
  if (signature.size() != kSignatureSize)
    return Error::invalid_argument("NTLM: message signature is " + std::to_string(signature.size()) +
                                   " bytes, expected 16");
  Bytes plain(sealed.begin(), sealed.end());
  WINCERT_TRY(in_.rc4->apply(plain.data(), plain.size()));
  WINCERT_TRY(verify(plain, signature));
  return plain;
}

Result<Digest16> Session::sign(ByteView message) { return make_signature(out_, message); }

Status Session::verify(ByteView message, ByteView signature) {
  if (signature.size() != kSignatureSize)
    return Error::invalid_argument("NTLM: message signature is " + std::to_string(signature.size()) +
                                   " bytes, expected 16");
  const std::uint32_t expected_seq = in_.sequence;
  auto expected = make_signature(in_, message);
  if (!expected) return expected.error();
  if (CRYPTO_memcmp(expected->data(), signature.data(), kSignatureSize) != 0) {
    const std::uint32_t got_seq = static_cast<std::uint32_t>(signature[12]) | (signature[13] << 8) |
                                  (signature[14] << 16) | (static_cast<std::uint32_t>(signature[15]) << 24);
    if (signature[0] != 1) return Error::invalid_argument("NTLM: message signature has an unknown version");
    if (got_seq != expected_seq)
      return Error::invalid_argument("NTLM: message sequence number " + std::to_string(got_seq) +
                                     " does not match the "
                                     "expected " +
                                     std::to_string(expected_seq) + " (messages lost or replayed)");
    return Error::invalid_argument(
        "NTLM: message signature does not verify (data tampered with, or the security "
        "context is out of step with the server)");
  }
  return {};
}

Result<SealedMessage> NtlmSealer::wrap(std::string_view plain) {
  auto wrapped = session_.wrap(ntlm_crypto::view(plain));
  if (!wrapped) return wrapped.error();
  SealedMessage out;
  out.header.assign(reinterpret_cast<const char*>(wrapped->signature.data()), wrapped->signature.size());
  out.payload.assign(reinterpret_cast<const char*>(wrapped->sealed.data()), wrapped->sealed.size());
  out.original_length = plain.size();
  return out;
}

Result<std::string> NtlmSealer::unwrap(std::string_view header, std::string_view payload) {
  auto plain = session_.unwrap(ntlm_crypto::view(header), ntlm_crypto::view(payload));
  if (!plain) return plain.error();
  return std::string(plain->begin(), plain->end());
}

}  // namespace wincert::winrm::ntlm
