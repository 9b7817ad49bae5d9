// PKCS#10 certificate requests: parsing and checks of a CSR a device produced (on-device key
// generation), and the mapping from Command's reenrollment inputs to certreq's INF vocabulary.
#pragma once

#include "certstore/x509.hpp"
#include "common/result.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wincert::certstore {

struct CsrInfo {
  std::string der;
  std::string subject;  // Windows-like, most specific first
  std::vector<SubjectAltName> sans;
  KeyParameters key;
  bool signature_valid = false;  // the request's self-signature verifies with its own key
};

// PEM ("-----BEGIN NEW CERTIFICATE REQUEST-----" or "CERTIFICATE REQUEST"), base64 DER or raw DER.
Result<CsrInfo> parse_csr(std::string_view text_or_der);

// One certificate request as the backend that made the key returns it: the facts parsed from it once (info.der
// is the request itself) and the provider holding its key. It travels as this type from the backend through the
// reenrollment handler to the agent; PEM and base64 are encodings made only at the edges (Command's enrollment
// request, replay's output).
struct CertificateRequest {
  CsrInfo info;
  std::string provider_name;  // the provider the key was generated in

  const std::string& der() const { return info.der; }
  std::string base64() const;  // the DER in base64: what Command's enrollment request carries
  std::string pem() const;     // "-----BEGIN CERTIFICATE REQUEST-----", 64-character lines
};

// A request made elsewhere (PEM, base64 or DER), parsed once into the type. Errors as parse_csr.
Result<CertificateRequest> parse_certificate_request(std::string_view text_or_der, std::string provider_name = {});

struct CsrExpectation {
  std::optional<std::string> subject;  // compared after normalising both to Windows form
  std::vector<SubjectAltName> sans;    // every one must be present (order free)
  std::optional<KeyParameters> key;    // algorithm plus bits (RSA) or curve (EC)
};
// Checks a device-made CSR against what the job asked for; the Error says which fact differs.
Status check_csr(const CsrInfo& csr, const CsrExpectation& expected);

// --- certreq INF vocabulary (the csr-create script writes what these produce) ---

struct CertreqKeySpec {
  std::string key_algorithm;  // certreq KeyAlgorithm: "RSA", "ECDSA_P256", "ECDSA_P384", "ECDSA_P521"
  int key_length = 0;         // RSA bits or the curve's size (256/384/521)
  bool operator==(const CertreqKeySpec&) const = default;
};
// Command's keyType/keySize ("RSA"/"2048", "ECC"/"P-256", "ECC"/"256", "ECDSA"/"secp384r1" ...).
Result<CertreqKeySpec> certreq_key_spec(std::string_view key_type, std::string_view key_size);
// The provider certreq should use: the job's, else the extension's default for RSA, else the software KSP
// for ECC (legacy CSPs cannot hold ECC keys: that combination is an Error instead of a certreq failure).
Result<std::string> certreq_provider(std::string_view requested, const CertreqKeySpec& spec);
// The Subject value as it goes between the quotes of the INF's Subject="..." line: RDNs split on
// unescaped commas, values that held "\," (or were quoted) wrapped in doubled quotes: O=""Keyfactor, Inc"".
Result<std::string> certreq_subject(std::string_view subject);
// One "dns=a.com" / "ipaddress=..." / "email=..." / "upn=..." / "url=..." entry per SAN, for the
// [Extensions] 2.5.29.17 _continue_ lines.
Result<std::vector<std::string>> certreq_san_entries(const std::vector<SubjectAltName>& sans);
// Command's SAN dictionary keys ("dns", "ip", "ip4", "ip6", "ipaddress", "email", "rfc822", "uri", "url",
// "upn") to a SanType; nullopt for an unknown key.
std::optional<SanType> san_type_from_key(std::string_view key);

}  // namespace wincert::certstore
