// The hash and cipher primitives NTLM needs (MD4, MD5, HMAC-MD5, RC4). MD4 and RC4 live in OpenSSL 3's
// legacy provider; it is loaded into a dedicated library context (together with the default provider)
// so the rest of the process keeps using the default provider only.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string_view>

#include "common/encoding.hpp"
#include "common/result.hpp"

namespace wincert::winrm::ntlm_crypto {

using ByteView = std::span<const std::uint8_t>;
using Digest16 = std::array<std::uint8_t, 16>;

inline ByteView view(std::string_view s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

// Fails when the legacy provider cannot be loaded (e.g. the OpenSSL installation lacks legacy.so).
// Every other function below returns an Error in that case too; this lets callers fail early.
Status legacy_provider_available();

Result<Digest16> md4(ByteView data);
Result<Digest16> md5(ByteView data);
// HMAC-MD5 over the concatenation of the parts (avoids building temporary buffers).
Result<Digest16> hmac_md5(ByteView key, std::initializer_list<ByteView> parts);
inline Result<Digest16> hmac_md5(ByteView key, ByteView data) { return hmac_md5(key, {data}); }
// RC4K(key, data): a fresh RC4 keystream over one buffer (NTLM key exchange).
Result<Bytes> rc4k(ByteView key, ByteView data);

// An RC4 keystream that continues across calls (NTLM sealing keeps one per direction).
class Rc4Stream {
 public:
  static Result<Rc4Stream> create(ByteView key);
  Rc4Stream(Rc4Stream&&) noexcept = default;
  Rc4Stream& operator=(Rc4Stream&&) noexcept = default;
  ~Rc4Stream() = default;

  // Transforms `data` in place; in and out may be the same buffer.
  Status apply(std::uint8_t* data, std::size_t size);

 private:
  struct CtxFree {
    void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
  };
  explicit Rc4Stream(std::unique_ptr<EVP_CIPHER_CTX, CtxFree> ctx) : ctx_(std::move(ctx)) {}
  std::unique_ptr<EVP_CIPHER_CTX, CtxFree> ctx_;
};

// Fills `out` with cryptographically random bytes (RAND_bytes).
Status random_bytes(std::span<std::uint8_t> out);

}  // namespace wincert::winrm::ntlm_crypto
