// Helpers for the local backend's tests (run under Wine by ctest, or on Windows): running coroutines,
// test keys/certificates/PFX files made in-process with OpenSSL, a small test CA, and checks on the
// LocalMachine stores.
#pragma once

#include "certstore/cert_store.hpp"
#include "certstore/local/machine_key.hpp"
#include "certstore/openssl_util.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <optional>
#include <string>
#include <vector>

namespace wincert::certstore::local::testing {

// Wine's ntdll exports wine_get_version; Windows' does not.
bool running_under_wine();

inline constexpr const char* kAesCsp = "Microsoft Enhanced RSA and AES Cryptographic Provider";
inline constexpr const char* kStrongCsp = "Microsoft Strong Cryptographic Provider";
// Where tests put RSA keys: the default KSP on Windows; under Wine, whose KSP keeps no persisted keys, the
// AES CSP (Wine's rsaenh persists machine key containers in its registry).
std::string rsa_provider_for_this_platform();

template <typename T>
Result<T> run(boost::asio::awaitable<Result<T>> task) {
  boost::asio::io_context io;
  std::optional<Result<T>> out;
  boost::asio::co_spawn(
      io, [&]() -> boost::asio::awaitable<void> { out.emplace(co_await std::move(task)); }, boost::asio::detached);
  io.run();
  if (!out) return Error::internal("the coroutine did not finish");
  return std::move(*out);
}

std::string read_file(const std::string& path);
std::string vectors_dir();  // Debian's python3-cryptography-vectors pkcs12/ directory

ossl::PKeyPtr make_rsa_key(int bits);
ossl::PKeyPtr make_ec_key(const char* curve);  // "P-256", "P-384", "P-521"

// A certificate for subject_key with CN=common_name, issued by issuer (self-signed when issuer is null).
ossl::X509Ptr make_certificate(EVP_PKEY* subject_key, const std::string& common_name, bool is_ca, X509* issuer_cert,
                               EVP_PKEY* issuer_key);
std::string der_of(X509* cert);

// A PFX of key + leaf (+ chain). legacy: RC2/3DES encryption, as old Windows exports are.
std::string make_pfx(EVP_PKEY* key, X509* leaf, const std::vector<X509*>& chain, const std::string& password,
                     const std::string& friendly_name, bool legacy = false);

class TestCa {
 public:
  TestCa();
  // Signs a PKCS#10 request (DER) for 30 days, copying its subject, public key and SANs.
  std::string issue(const std::string& csr_der) const;
  X509* certificate() const { return cert_.get(); }
  EVP_PKEY* key() const { return key_.get(); }

 private:
  ossl::PKeyPtr key_;
  ossl::X509Ptr cert_;
};

// Verifies signature (as X.509 encodes it) over sha-256(message) with the certificate's public key.
bool signature_verifies(const std::string& cert_der, const std::string& message, const std::string& signature);
std::string sha256(const std::string& message);

// LocalMachine\<store> holds the certificate (CryptoAPI directly, not the backend under test).
bool store_has(const std::string& store, const std::string& thumbprint);
// Removes a certificate a previous, interrupted run may have left (and its key when unused).
void remove_if_present(const std::string& store, const std::string& thumbprint);
// The certificate's key can be opened (the backend's own lookup) / through CryptAcquireCertificatePrivateKey.
bool linked_key_opens(const std::string& store, const std::string& thumbprint);
bool windows_acquires_key(const std::string& store, const std::string& thumbprint);
// The persisted key still exists.
bool key_exists(const KeyLink& link);
std::optional<KeyLink> key_link_in_store(const std::string& store, const std::string& thumbprint);

}  // namespace wincert::certstore::local::testing
