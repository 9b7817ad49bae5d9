// The OpenSSL work the simulated Windows host does: private keys as PEM (the model keeps them in its
// JSON file: it is a simulator), public keys to tie certificates to key containers, PFX key extraction,
// and certreq's side of on-device key generation (a real PKCS#10 signed by a real key).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "common/secret.hpp"

namespace wincert::sim::model {

// Windows' view of how bytes look: X509Certificate2.GetCertContentType.
enum class ContentType { kCert, kPfx, kUnknown };
ContentType content_type(std::string_view bytes);

// The DER SubjectPublicKeyInfo of a DER certificate / of a PEM private key ("" on garbage).
std::string certificate_public_key(std::string_view cert_der);
std::string private_key_public_key(std::string_view private_key_pem);
// "RSA" or "EC" (certreq's algorithm family) of a PEM private key; "" on garbage.
std::string private_key_family(std::string_view private_key_pem);

// The private key a PFX holds, as PKCS#8 PEM; nullopt when it holds none. The caller has already opened
// the PFX with the certstore helper (password checked); an Error here is a file OpenSSL cannot reparse.
Result<std::optional<std::string>> pfx_private_key_pem(std::string_view pfx_der, const Secret& password);

// True when the bytes are a PKCS#12 file and the password does not open it: its MAC does not verify (the
// empty and the absent password count alike, as on Windows), or, without a MAC, it cannot be decrypted.
// False for bytes that are no PKCS#12 at all. Tells Windows' "wrong password" from its other PFX errors.
bool pfx_password_is_wrong(std::string_view pfx_der, const Secret& password);

struct GeneratedKey {
  std::string private_key_pem;  // PKCS#8
  std::string public_key_der;   // SubjectPublicKeyInfo
};
// key_algorithm: "RSA" (bits = key_length) or "ECDSA_P256" / "ECDSA_P384" / "ECDSA_P521".
Result<GeneratedKey> generate_key(std::string_view key_algorithm, int key_length);

// One relative distinguished name attribute from certreq's Subject= text, in the order written.
struct NameAttribute {
  std::string type;   // "CN", "O", ... or a dotted OID
  std::string value;  // UTF-8, quotes removed
};
// Parses the Subject value the INF carries between its quotes (CertStrToName X.500 rules: ',' or ';'
// between RDNs, values quoted with "..." when they hold separators, "" inside the INF quotes is one ").
Result<std::vector<NameAttribute>> parse_certreq_subject(std::string_view inf_subject);

// One "_continue_" SAN entry: "dns=a.com", "ipaddress=2001:db8::1", "email=a@b", "upn=u@d", "url=https://x".
struct SanEntry {
  std::string type;  // lowercased key
  std::string value;
};
Result<SanEntry> parse_certreq_san(std::string_view entry);

// A PKCS#10 request signed with SHA-256 by the key; the DER subject is in reverse order of the text
// (certreq writes most specific first; the DER holds C first). SANs go into an extensionRequest.
Result<std::string> make_csr(std::string_view private_key_pem, const std::vector<NameAttribute>& subject,
                             const std::vector<SanEntry>& sans);

}  // namespace wincert::sim::model
