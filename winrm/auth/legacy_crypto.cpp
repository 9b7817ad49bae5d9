#include "winrm/auth/legacy_crypto.hpp"

#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rand.h>

#include <climits>
#include <string>

namespace wincert::winrm::ntlm_crypto {
namespace {

struct LibCtxFree {
  void operator()(OSSL_LIB_CTX* p) const { OSSL_LIB_CTX_free(p); }
};
struct ProviderUnload {
  void operator()(OSSL_PROVIDER* p) const { OSSL_PROVIDER_unload(p); }
};
struct MdFree {
  void operator()(EVP_MD* p) const { EVP_MD_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct CipherFree {
  void operator()(EVP_CIPHER* p) const { EVP_CIPHER_free(p); }
};
struct MacFree {
  void operator()(EVP_MAC* p) const { EVP_MAC_free(p); }
};
struct MacCtxFree {
  void operator()(EVP_MAC_CTX* p) const { EVP_MAC_CTX_free(p); }
};

// The process-wide NTLM library context: loaded once, read-only afterwards (fetched algorithm objects
// and the HMAC template are safe to share between threads). Members are declared in the order they
// must be released in reverse.
struct LegacyContext {
  std::unique_ptr<OSSL_LIB_CTX, LibCtxFree> libctx;
  std::unique_ptr<OSSL_PROVIDER, ProviderUnload> default_provider;
  std::unique_ptr<OSSL_PROVIDER, ProviderUnload> legacy_provider;
  std::unique_ptr<EVP_MD, MdFree> md4;
  std::unique_ptr<EVP_MD, MdFree> md5;
  std::unique_ptr<EVP_CIPHER, CipherFree> rc4;
  std::unique_ptr<EVP_MAC, MacFree> hmac;
  std::unique_ptr<EVP_MAC_CTX, MacCtxFree> hmac_md5_template;  // digest set, no key
  std::string error;                                           // non-empty when loading failed

  LegacyContext() { load(); }

  void load() {
    libctx.reset(OSSL_LIB_CTX_new());
    if (!libctx) return fail("cannot create an OpenSSL library context");
    default_provider.reset(OSSL_PROVIDER_load(libctx.get(), "default"));
    if (!default_provider) return fail("cannot load the OpenSSL default provider");
    legacy_provider.reset(OSSL_PROVIDER_load(libctx.get(), "legacy"));
    if (!legacy_provider)
      return fail(
          "cannot load the OpenSSL legacy provider (needed for NTLM's MD4 and RC4); check that "
          "legacy.so is installed in OpenSSL's modules directory");
    md4.reset(EVP_MD_fetch(libctx.get(), "MD4", nullptr));
    md5.reset(EVP_MD_fetch(libctx.get(), "MD5", nullptr));
    rc4.reset(EVP_CIPHER_fetch(libctx.get(), "RC4", nullptr));
    hmac.reset(EVP_MAC_fetch(libctx.get(), "HMAC", nullptr));
    if (!md4 || !md5 || !rc4 || !hmac) return fail("OpenSSL lacks MD4, MD5, RC4 or HMAC in the legacy provider");
    hmac_md5_template.reset(EVP_MAC_CTX_new(hmac.get()));
    if (!hmac_md5_template) return fail("cannot create an HMAC context");
    char digest_name[] = "MD5";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
                           OSSL_PARAM_construct_end()};
    if (EVP_MAC_CTX_set_params(hmac_md5_template.get(), params) != 1) return fail("cannot set up HMAC-MD5");
  }

  void fail(std::string message) { error = "NTLM crypto: " + std::move(message); }
};

const LegacyContext& context() {
  static const LegacyContext ctx;
  return ctx;
}

Result<Digest16> digest16(const EVP_MD* md, ByteView data) {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  Digest16 out{};
  unsigned int len = 0;
  if (!ctx || EVP_DigestInit_ex2(ctx.get(), md, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), out.data(), &len) != 1 || len != out.size())
    return Error::internal("NTLM crypto: digest computation failed in OpenSSL");
  return out;
}

}  // namespace

Status legacy_provider_available() {
  const auto& ctx = context();
  if (!ctx.error.empty()) return Error::failed_precondition(ctx.error);
  return {};
}

Result<Digest16> md4(ByteView data) {
  WINCERT_TRY(legacy_provider_available());
  return digest16(context().md4.get(), data);
}

Result<Digest16> md5(ByteView data) {
  WINCERT_TRY(legacy_provider_available());
  return digest16(context().md5.get(), data);
}

Result<Digest16> hmac_md5(ByteView key, std::initializer_list<ByteView> parts) {
  WINCERT_TRY(legacy_provider_available());
  std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx(EVP_MAC_CTX_dup(context().hmac_md5_template.get()));
  // HMAC-MD5 with an empty key is legal; OpenSSL wants a non-null pointer for it.
  static const std::uint8_t kEmpty = 0;
  const std::uint8_t* key_ptr = key.empty() ? &kEmpty : key.data();
  if (!ctx || EVP_MAC_init(ctx.get(), key_ptr, key.size(), nullptr) != 1)
    return Error::internal("NTLM crypto: HMAC-MD5 initialisation failed in OpenSSL");
  for (const auto& part : parts) {
    if (!part.empty() && EVP_MAC_update(ctx.get(), part.data(), part.size()) != 1)
      return Error::internal("NTLM crypto: HMAC-MD5 update failed in OpenSSL");
  }
  Digest16 out{};
  std::size_t len = 0;
  if (EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) != 1 || len != out.size())
    return Error::internal("NTLM crypto: HMAC-MD5 final failed in OpenSSL");
  return out;
}

Result<Rc4Stream> Rc4Stream::create(ByteView key) {
  WINCERT_TRY(legacy_provider_available());
  if (key.empty() || key.size() > 256) return Error::invalid_argument("NTLM crypto: RC4 key must be 1..256 bytes");
  std::unique_ptr<EVP_CIPHER_CTX, CtxFree> ctx(EVP_CIPHER_CTX_new());
  if (!ctx || EVP_EncryptInit_ex2(ctx.get(), context().rc4.get(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_set_key_length(ctx.get(), static_cast<int>(key.size())) != 1 ||
      EVP_EncryptInit_ex2(ctx.get(), nullptr, key.data(), nullptr, nullptr) != 1)
    return Error::internal("NTLM crypto: RC4 initialisation failed in OpenSSL");
  return Rc4Stream(std::move(ctx));
}

Status Rc4Stream::apply(std::uint8_t* data, std::size_t size) {
  if (!ctx_) return Error::internal("NTLM crypto: RC4 stream used after move");
  while (size > 0) {
    const int chunk = static_cast<int>(std::min<std::size_t>(size, INT_MAX / 2));
    int out_len = 0;
    if (EVP_EncryptUpdate(ctx_.get(), data, &out_len, data, chunk) != 1 || out_len != chunk)
      return Error::internal("NTLM crypto: RC4 failed in OpenSSL");
    data += chunk;
    size -= static_cast<std::size_t>(chunk);
  }
  return {};
}

Result<Bytes> rc4k(ByteView key, ByteView data) {
  auto stream = Rc4Stream::create(key);
  if (!stream) return stream.error();
  Bytes out(data.begin(), data.end());
  WINCERT_TRY(stream->apply(out.data(), out.size()));
  return out;
}

Status random_bytes(std::span<std::uint8_t> out) {
  if (out.empty()) return {};
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1)
    return Error::unavailable("NTLM: the OpenSSL random generator failed");
  return {};
}

}  // namespace wincert::winrm::ntlm_crypto
