#include "winrm/auth/channel_binding.hpp"

#include <openssl/evp.h>
#include <openssl/objects.h>

#include <memory>

namespace wincert::winrm {
namespace {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};

// Which digest RFC 5929 binds for this certificate.
const EVP_MD* end_point_digest(X509* certificate) {
  int md_nid = NID_undef;
  if (X509_get_signature_info(certificate, &md_nid, nullptr, nullptr, nullptr) != 1) return EVP_sha256();
  if (md_nid == NID_undef || md_nid == NID_md5 || md_nid == NID_sha1 || md_nid == NID_md5_sha1) return EVP_sha256();
  const EVP_MD* md = EVP_get_digestbynid(md_nid);
  return md ? md : EVP_sha256();
}

}  // namespace

Result<std::string> tls_server_end_point_hash(X509* certificate) {
  if (!certificate) return Error::invalid_argument("channel binding: no server certificate");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (X509_digest(certificate, end_point_digest(certificate), digest, &length) != 1)
    return Error::internal("channel binding: cannot hash the server certificate");
  return std::string(reinterpret_cast<const char*>(digest), length);
}

Result<std::string> tls_server_end_point_hash_der(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  if (der.size() > 1024 * 1024) return Error::invalid_argument("channel binding: server certificate larger than 1 MiB");
  std::unique_ptr<X509, X509Free> certificate(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!certificate) return Error::invalid_argument("channel binding: the server certificate is not valid DER X.509");
  return tls_server_end_point_hash(certificate.get());
}

Result<std::string> tls_server_end_point_application_data(X509* certificate) {
  auto hash = tls_server_end_point_hash(certificate);
  if (!hash) return hash.error();
  return std::string(kTlsServerEndPointPrefix) + *hash;
}

Result<std::string> tls_server_end_point_application_data_der(std::string_view der) {
  auto hash = tls_server_end_point_hash_der(der);
  if (!hash) return hash.error();
  return std::string(kTlsServerEndPointPrefix) + *hash;
}

std::string gss_channel_bindings_bytes(std::string_view application_data) {
  std::string out(16, '\0');  // initiator addrtype+length, acceptor addrtype+length: all zero
  const auto n = static_cast<std::uint32_t>(application_data.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  out.append(application_data);
  return out;
}

Result<ntlm_crypto::Digest16> ntlm_channel_bindings_hash(std::string_view application_data) {
  return ntlm_crypto::md5(ntlm_crypto::view(gss_channel_bindings_bytes(application_data)));
}

}  // namespace wincert::winrm
