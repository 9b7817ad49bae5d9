#include "certstore/openssl_util.hpp"

namespace wincert::certstore::ossl {

std::string drain_errors() {
  std::string text;
  unsigned long code = 0;
  while ((code = ERR_get_error()) != 0) {
    const char* reason = ERR_reason_error_string(code);
    if (!text.empty()) text += "; ";
    text += reason != nullptr ? reason : "unknown OpenSSL error";
  }
  return text;
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
