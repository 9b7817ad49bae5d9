// TLS channel binding (RFC 5929 tls-server-end-point) for NTLM and Kerberos on HTTPS.
#pragma once

#include <openssl/x509.h>

#include <string>
#include <string_view>

#include "common/result.hpp"
#include "winrm/auth/legacy_crypto.hpp"

namespace wincert::winrm {

inline constexpr std::string_view kTlsServerEndPointPrefix = "tls-server-end-point:";

// The certificate hash per RFC 5929 section 4.1: the hash of the certificate's signature algorithm,
// except MD5 and SHA-1 (and algorithms without a single hash, such as Ed25519) which use SHA-256.
Result<std::string> tls_server_end_point_hash(X509* certificate);
Result<std::string> tls_server_end_point_hash_der(std::string_view certificate_der);

// "tls-server-end-point:" || hash: the application data of the channel bindings.
Result<std::string> tls_server_end_point_application_data(X509* certificate);
Result<std::string> tls_server_end_point_application_data_der(std::string_view certificate_der);

// The gss_channel_bindings_struct serialised the way NTLM hashes it: initiator and acceptor address
// types and lengths all zero, then LE32(len) || application data.
std::string gss_channel_bindings_bytes(std::string_view application_data);
// MD5 of the above: the MsvAvChannelBindings value.
Result<ntlm_crypto::Digest16> ntlm_channel_bindings_hash(std::string_view application_data);

}  // namespace wincert::winrm
