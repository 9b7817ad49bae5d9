// PKCS#10 requests for keys that never leave the machine. OpenSSL builds the request (subject, SANs,
// public key) and its to-be-signed bytes; only the digest goes to the key's provider for the signature.
// Why not CertStrToName + CryptSignAndEncodeCertificate: Command's subject syntax (backslash escapes, as
// certreq_subject() reads it) is not CertStrToName's, the SAN/UPN encodings would be a second copy of
// what x509.cpp already parses, and one builder then serves CNG and CSP keys alike (and Wine, whose
// CryptSignAndEncodeCertificate knows no CNG handles).
#pragma once

#include "certstore/local/machine_key.hpp"
#include "certstore/x509.hpp"
#include "common/result.hpp"

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace wincert::certstore::local {

// Command's subject ("CN=web01,O=Keyfactor\, Inc,C=US") as the DER of an X.509 Name. The text lists the
// most specific RDN first, as Windows shows names; the encoding puts it last (C=US first).
Result<std::string> encode_subject(std::string_view subject);

// Signs a message digest with the request's key (MachineKey::sign_digest in production).
using DigestSigner = std::function<Result<std::string>(std::string_view digest)>;

// The DER of a PKCS#10 request for public_key_der (SubjectPublicKeyInfo) with subject and SANs, signed
// with SHA-2 (digest) through sign. ecdsa picks ecdsa-with-SHAx instead of shaXWithRSAEncryption.
Result<std::string> build_signed_request(std::string_view subject, const std::vector<SubjectAltName>& sans,
                                         std::string_view public_key_der, DigestAlgorithm digest, bool ecdsa,
                                         const DigestSigner& sign);

}  // namespace wincert::certstore::local
