// The agent's own client certificate towards Command (CertPath/KeyPath) and its renewal.
//
// Command asks for a new agent certificate with A0100007 (requested) or A0100008 (required) on
// /Session/Register, and the agent renews on its own before the certificate expires
// (AgentCertificate.RenewDaysBeforeExpiry). A renewal: a new key and a CSR (made on a worker), the CSR in
// the next registration, and the certificate Command returns stored with its key as the *pending pair*
// (`<CertPath>.pending`, `<KeyPath>.pending`: key first, then certificate, each written durably and
// owner-only) beside the current one. The mTLS client then presents the pending pair; once a
// registration has succeeded with it, it is promoted: the current pair is copied to `<file>.previous`,
// the new key then the new certificate are written over KeyPath/CertPath, and the pending files go. If
// Command refuses the pending pair, the agent goes back to the current one.
//
// A crash at any point leaves a state recover() understands (tests/agent/agent_certificate_test.cpp):
//   - only a pending key: the certificate never arrived; it is removed;
//   - a pending pair whose key is already KeyPath's: a promotion was interrupted; it is finished;
//   - a pending pair otherwise: stored, not yet tried; the agent tries it first.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "agent/command_http.hpp"
#include "agent/command_session.hpp"
#include "agent/config.hpp"
#include "common/result.hpp"
#include "common/secret.hpp"

namespace wincert::agent {

class AgentCertificate {
 public:
  // `subject_fallback` ("CN=<OrchestratorName>") is used when settings.subject is empty and the current
  // certificate cannot be read.
  AgentCertificate(std::string certificate_file, std::string key_file, AgentCertificateSettings settings,
                   std::string subject_fallback);
  ~AgentCertificate();
  AgentCertificate(const AgentCertificate&) = delete;
  AgentCertificate& operator=(const AgentCertificate&) = delete;

  const std::string& certificate_file() const { return certificate_file_; }
  const std::string& key_file() const { return key_file_; }
  std::string pending_certificate_file() const { return certificate_file_ + ".pending"; }
  std::string pending_key_file() const { return key_file_ + ".pending"; }
  std::string previous_certificate_file() const { return certificate_file_ + ".previous"; }
  std::string previous_key_file() const { return key_file_ + ".previous"; }

  // At start, after a crash: see the file comment. True when an untested pending pair is there to try.
  Result<bool> recover();

  // When the current certificate stops being valid (nullopt when it cannot be read).
  std::optional<std::chrono::system_clock::time_point> not_after() const;
  // Renewal is due: the certificate expires within RenewDaysBeforeExpiry (never when that is 0) or
  // cannot be read.
  bool due(std::chrono::system_clock::time_point now) const;

  // A new key and its PKCS#10 request, base64 DER (CPU-heavy: call it on a worker). The key stays in
  // memory for store_pending().
  Result<std::string> make_request();
  // Stores Command's certificate (base64 DER or PEM) with the key of the last make_request() as the
  // pending pair. Refuses a certificate that does not match that key.
  Status store_pending(const std::string& certificate);
  // The pending pair becomes the current one (see the file comment).
  Status promote();
  // Removes the pending pair (Command refused it).
  Status discard_pending();

 private:
  Status promote(bool keep_previous);

  std::string certificate_file_;
  std::string key_file_;
  AgentCertificateSettings settings_;
  std::string subject_fallback_;
  Secret new_key_pem_;  // from make_request(), until store_pending()
};

// CertificateRenewal (command_session.hpp) over an AgentCertificate and the HTTP client to Command.
class AgentCertificateRenewal final : public CertificateRenewal {
 public:
  // Both outlive this. call start() once before the first registration.
  AgentCertificateRenewal(AgentCertificate& certificate, HttpClient& http);

  // Recovers the files and, when an untested pending pair is there, presents it first.
  Status start();

  bool due() override;
  boost::asio::awaitable<Result<std::string>> request() override;
  boost::asio::awaitable<Status> install(std::string certificate) override;
  bool unconfirmed() const override { return unconfirmed_; }
  Status confirm() override;
  Status revert() override;

 private:
  AgentCertificate& certificate_;
  HttpClient& http_;
  bool unconfirmed_ = false;
};

}  // namespace wincert::agent
