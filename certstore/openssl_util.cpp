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

}  // namespace wincert::certstore::ossl
