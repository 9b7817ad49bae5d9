// A certificate authority on disk (PEM certificate + PEM private key) that signs the CSRs of
// reenrollment jobs when there is no Command to submit them to (`wincert-agent replay --ca-cert
// --ca-key`). The issued certificate carries the request's subject, public key and subjectAltName
// extension; the CA adds the usual end-entity extensions (not a CA, digital signature [+ key
// encipherment for RSA], server and client authentication, key identifiers).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "certstore/csr.hpp"
#include "common/result.hpp"

namespace wincert::agent {

class LocalCa {
 public:
  // Loads the CA. The key must be unencrypted PEM and belong to the certificate.
  static Result<LocalCa> load(const std::string& certificate_file, const std::string& key_file);

  // Signs a PKCS#10 request (PEM, base64 DER or DER) whose self-signature verifies; returns the
  // certificate as DER.
  Result<std::string> issue(std::string_view csr, std::chrono::hours validity = std::chrono::hours(24 * 365)) const;
  // The same for a request already parsed (a backend's CertificateRequest::info): not parsed again.
  Result<std::string> issue(const certstore::CsrInfo& csr,
                            std::chrono::hours validity = std::chrono::hours(24 * 365)) const;

  const std::string& subject() const;  // the CA's subject, Windows-like ("CN=Replay CA, O=...")

 private:
  struct Impl;
  explicit LocalCa(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// DER wrapped as PEM with the given label ("CERTIFICATE", "CERTIFICATE REQUEST"), 64-column lines.
std::string pem_encode(std::string_view der, std::string_view label);

}  // namespace wincert::agent
