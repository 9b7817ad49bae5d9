#include "certstore/local/pfx_key.hpp"

#include "common/encoding.hpp"

#include <climits>

namespace wincert::certstore::local {

Result<ossl::PKeyPtr> pfx_private_key(const Secret& contents_base64, const Secret& password, std::string_view label) {
  const std::string prefix = "the private key of certificate " + std::string(label) + " cannot be read: ";
  auto decoded = base64_decode(contents_base64.reveal());
  if (!decoded || decoded->empty() || decoded->size() > static_cast<std::size_t>(INT_MAX / 2)) {
    return Error::invalid_argument(prefix + "the contents are not a base64 PFX");
  }
  const Secret decoded_bytes(std::move(*decoded));  // the PFX's bytes are wiped when done
  const std::string* bytes = &decoded_bytes.reveal();
  // The library context certstore reads PFX files in (default + legacy provider: RC2/3DES files open).
  OSSL_LIB_CTX* context = ossl::pfx_library_context().context.get();
  if (context == nullptr) return Error::internal(prefix + "OpenSSL could not create a library context");
  ERR_clear_error();
  PKCS12* raw = PKCS12_init_ex(NID_pkcs7_data, context, nullptr);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes->data());
  if (d2i_PKCS12(&raw, &p, static_cast<long>(bytes->size())) == nullptr) {
    PKCS12_free(raw);
    ossl::drain_errors();
    return Error::invalid_argument(prefix + "it is not a PKCS#12 (PFX) file");
  }
  ossl::Pkcs12Ptr p12(raw);
  const std::string& pass = password.reveal();
  // Windows treats "no password" and "empty password" alike; PKCS#12 encodes them differently.
  const char* pass_to_use = pass.c_str();
  if (pass.empty() && PKCS12_mac_present(p12.get()) == 1 && PKCS12_verify_mac(p12.get(), "", 0) != 1 &&
      PKCS12_verify_mac(p12.get(), nullptr, 0) == 1) {
    pass_to_use = nullptr;
  }
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  STACK_OF(X509)* others = nullptr;
  const int ok = PKCS12_parse(p12.get(), pass_to_use, &key, &cert, &others);
  ossl::PKeyPtr owned_key(key);
  ossl::X509Ptr owned_cert(cert);
  ossl::X509StackPtr owned_others(others);
  if (ok != 1) {
    ossl::drain_errors();
    return Error::invalid_argument(prefix + "wrong password or corrupt file");
  }
  ERR_clear_error();
  if (!owned_key) return Error::invalid_argument(prefix + "the PFX holds no private key");
  return owned_key;
}

}  // namespace wincert::certstore::local
