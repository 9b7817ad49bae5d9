// X.509 certificate facts, parsed with OpenSSL 3 from DER: what inventory, alias building and job
// decisions need, in the forms Windows shows (uppercase SHA-1 thumbprint, "CN=a, O=b" names).
#pragma once

#include "common/encoding.hpp"
#include "common/result.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wincert::certstore {

enum class SanType { kDns, kIp, kEmail, kUri, kUpn, kOther };

struct SubjectAltName {
  SanType type = SanType::kOther;
  std::string value;  // IPv6 in RFC 5952 text ("2001:db8::1"); UPN as UTF-8
  bool operator==(const SubjectAltName&) const = default;
};

// "DNS Name=a.com" style as Windows' X509Extension.Format prints; "dns"/"ip"/"email"/"uri"/"upn"
// as Command's SAN dictionary keys.
std::string_view san_type_windows_label(SanType type);
std::string_view san_type_key(SanType type);

enum class KeyAlgorithm { kRsa, kEc, kDsa, kEd25519, kEd448, kOther };

struct KeyParameters {
  KeyAlgorithm algorithm = KeyAlgorithm::kOther;
  int bits = 0;                 // RSA modulus / EC field size
  std::string curve;            // EC only: "P-256", "P-384", "P-521" or the OpenSSL short name
  std::string display() const;  // "RSA 2048", "EC P-256"
  bool operator==(const KeyParameters&) const = default;
};

struct CertificateInfo {
  std::string thumbprint;  // SHA-1 of the DER, uppercase hex (what Windows calls Thumbprint)
  std::string subject;     // "CN=www.example.com, O=Example, C=US" (most specific first, as Windows)
  std::string issuer;
  std::string serial;      // uppercase hex, big-endian, as Windows shows SerialNumber
  std::string not_before;  // ISO 8601 UTC "2024-01-02T03:04:05Z"
  std::string not_after;
  std::vector<SubjectAltName> sans;
  KeyParameters key;
  bool self_signed = false;  // subject == issuer and the key identifiers agree (signature not checked)
};

// What an inventory needs from a certificate: its thumbprint and its subject alternative names (Command's
// "SAN" parameter). Decoded without a full X.509 parse: no public key, names or dates are decoded, which
// makes it some 30x cheaper than parse_certificate_der (OpenSSL 3 decodes every public key through its
// provider framework).
struct InventoryFacts {
  std::string thumbprint;  // SHA-1 of the DER, uppercase hex
  std::vector<SubjectAltName> sans;
};

// Parses one DER certificate. Untrusted input: garbage becomes an Error (kInvalidInput), never a crash.
Result<CertificateInfo> parse_certificate_der(std::string_view der);
// The inventory facts of one DER certificate. Untrusted input: checks the DER framing of the Certificate (one
// SEQUENCE of tbsCertificate, signatureAlgorithm and signatureValue with nothing after it; tbsCertificate's
// fields in their order and types) and fails with the same messages as parse_certificate_der; the contents of
// the fields (key, names, dates) are not checked. A subjectAltName that does not decode gives no SANs, as
// with parse_certificate_der.
Result<InventoryFacts> inventory_facts_der(std::string_view der);
// Accepts base64 of the DER (what scripts and Command send) or a PEM block.
Result<CertificateInfo> parse_certificate_text(std::string_view base64_or_pem);
// The SHA-1 thumbprint of DER bytes, uppercase hex (no parsing).
std::string thumbprint_of(std::string_view der);
// Normalises a user-typed thumbprint: strips spaces/colons and the invisible U+200E that the Windows
// certificate dialog puts in front when copied, uppercases; empty when it is not 40 hex digits.
std::string normalize_thumbprint(std::string_view text);

}  // namespace wincert::certstore
