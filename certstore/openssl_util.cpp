#include "certstore/openssl_util.hpp"

namespace wincert::certstore::ossl {

std::string drain_errors() { return drain_error_queue().text; }

DrainedErrors drain_error_queue() {
  DrainedErrors drained;
  unsigned long code = 0;
  while ((code = ERR_get_error()) != 0) {
    const char* reason = ERR_reason_error_string(code);
    if (!drained.text.empty()) drained.text += "; ";
    drained.text += reason != nullptr ? reason : "unknown OpenSSL error";
    if (is_unsupported_algorithm(code)) drained.unsupported_algorithm = true;
  }
  return drained;
}

bool is_unsupported_algorithm(unsigned long code) {
  const int reason = ERR_GET_REASON(code);
  // The common reasons carry their own flag and mean the same in every library.
  if (reason == ERR_R_UNSUPPORTED || reason == ERR_R_FETCH_FAILED) return true;
  switch (ERR_GET_LIB(code)) {
    case ERR_LIB_EVP:
      switch (reason) {
        case EVP_R_UNSUPPORTED_ALGORITHM:
        case EVP_R_UNSUPPORTED_CIPHER:
        case EVP_R_UNSUPPORTED_KEYLENGTH:
        case EVP_R_UNSUPPORTED_KEY_DERIVATION_FUNCTION:
        case EVP_R_UNSUPPORTED_KEY_SIZE:
        case EVP_R_UNSUPPORTED_PRF:
        case EVP_R_UNSUPPORTED_PRIVATE_KEY_ALGORITHM:
        case EVP_R_UNSUPPORTED_SALT_TYPE:
          return true;
        default:
          return false;
      }
    case ERR_LIB_PKCS12:
      return reason == PKCS12_R_UNSUPPORTED_PKCS12_MODE;
    default:
      return false;
  }
}

const PfxLibraryContext& pfx_library_context() {
  static const PfxLibraryContext instance = [] {
    PfxLibraryContext ctx;
    ctx.context.reset(OSSL_LIB_CTX_new());
    if (ctx.context) {
      ctx.default_provider.reset(OSSL_PROVIDER_load(ctx.context.get(), "default"));
      // May be missing (e.g. a stripped OpenSSL build); modern PFX files still work without it.
      ctx.legacy_provider.reset(OSSL_PROVIDER_load(ctx.context.get(), "legacy"));
    }
    ERR_clear_error();
    return ctx;
  }();
  return instance;
}

}  // namespace wincert::certstore::ossl
