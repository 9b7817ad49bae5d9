// RAII owners for the OpenSSL objects certstore uses, and the OpenSSL error queue as text.
// Used inside certstore and by code that builds on it (the simulators); no OpenSSL type crosses
// certstore's public interfaces.
#pragma once

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>

namespace wincert::certstore::ossl {

template <auto Fn>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    Fn(p);
  }
};

using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using X509ReqPtr = std::unique_ptr<X509_REQ, Deleter<X509_REQ_free>>;
using PKeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using Pkcs12Ptr = std::unique_ptr<PKCS12, Deleter<PKCS12_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES_free>>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, Deleter<GENERAL_NAME_free>>;
using NamePtr = std::unique_ptr<X509_NAME, Deleter<X509_NAME_free>>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;
using ObjectPtr = std::unique_ptr<ASN1_OBJECT, Deleter<ASN1_OBJECT_free>>;
using LibCtxPtr = std::unique_ptr<OSSL_LIB_CTX, Deleter<OSSL_LIB_CTX_free>>;
using ProviderPtr = std::unique_ptr<OSSL_PROVIDER, Deleter<OSSL_PROVIDER_unload>>;
using BignumPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
inline void free_ossl_string(char* p) { OPENSSL_free(p); }
using OsslStringPtr = std::unique_ptr<char, Deleter<free_ossl_string>>;

struct X509StackDeleter {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
using X509StackPtr = std::unique_ptr<STACK_OF(X509), X509StackDeleter>;

struct ExtensionStackDeleter {
  void operator()(STACK_OF(X509_EXTENSION) * s) const { sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free); }
};
using ExtensionStackPtr = std::unique_ptr<STACK_OF(X509_EXTENSION), ExtensionStackDeleter>;

// The library context PFX files are read in: the default and the legacy provider (old Windows PFX files use
// RC2/3DES), kept apart so the rest of the process stays on the default provider. Created once; `context` is
// null only when OpenSSL cannot create one, `legacy_provider` null when that provider is not installed.
struct PfxLibraryContext {
  LibCtxPtr context;
  ProviderPtr default_provider;
  ProviderPtr legacy_provider;
};
const PfxLibraryContext& pfx_library_context();

// Drains the thread's OpenSSL error queue into "reason; reason" (empty when the queue was empty).
std::string drain_errors();

// The drained queue: the reasons for people, and what a program decides on, taken from the packed codes.
struct DrainedErrors {
  std::string text;                    // "reason; reason", as drain_errors()
  bool unsupported_algorithm = false;  // some entry says an algorithm is not available (e.g. no legacy provider)
};
DrainedErrors drain_error_queue();

// True for the OpenSSL error codes that mean "this algorithm is not available here" (ERR_R_UNSUPPORTED,
// ERR_R_FETCH_FAILED from any library, EVP's and PKCS12's UNSUPPORTED reasons), decided by
// ERR_GET_LIB/ERR_GET_REASON, never by the reason text.
bool is_unsupported_algorithm(unsigned long code);

}  // namespace wincert::certstore::ossl
