// Helpers shared by x509.cpp, pkcs12.cpp and csr.cpp (not part of the public API).
#pragma once

#include "certstore/x509.hpp"

#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace wincert::certstore::detail {

std::string windows_name(const X509_NAME* name);
std::vector<SubjectAltName> sans_from(const GENERAL_NAMES* names);
KeyParameters key_parameters(const EVP_PKEY* key);
// `encoded`: the bytes the certificate was read from, hashed for the thumbprint as Windows does; when empty,
// OpenSSL's DER re-encoding is hashed.
Result<CertificateInfo> describe(X509* cert, std::string_view encoded = {});

}  // namespace wincert::certstore::detail
