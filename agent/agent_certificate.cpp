#include "agent/agent_certificate.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "agent/platform/files.hpp"
#include "agent/task_group.hpp"
#include "common/encoding.hpp"
#include "common/log.hpp"
#include "common/worker_pool.hpp"

namespace wincert::agent {

namespace fs = std::filesystem;

namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct ReqFree {
  void operator()(X509_REQ* r) const { X509_REQ_free(r); }
};
struct NameFree {
  void operator()(X509_NAME* n) const { X509_NAME_free(n); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using ReqPtr = std::unique_ptr<X509_REQ, ReqFree>;
using NamePtr = std::unique_ptr<X509_NAME, NameFree>;

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return std::move(text).str();
}

X509Ptr certificate_from_pem(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return X509Ptr(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
}

PkeyPtr key_from_pem(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return PkeyPtr(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
}

// A certificate as Command returns it: base64 DER (the C agent's form) or PEM.
X509Ptr certificate_from_command(const std::string& text) {
  if (text.find("-----BEGIN") != std::string::npos) return certificate_from_pem(text);
  auto der = base64_decode(text);
  if (!der) return nullptr;
  const auto* p = reinterpret_cast<const unsigned char*>(der->data());
  return X509Ptr(d2i_X509(nullptr, &p, static_cast<long>(der->size())));
}

std::string certificate_pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return {};
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

Secret key_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) return {};
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  Secret out(std::string(data, static_cast<std::size_t>(n)));
  OPENSSL_cleanse(data, static_cast<std::size_t>(n));
  return out;
}

bool matches(X509* cert, EVP_PKEY* key) {
  return cert != nullptr && key != nullptr && X509_check_private_key(cert, key) == 1;
}

// "CN=a,O=b" -> an X509_NAME (values may not contain commas; that is enough for an agent's name).
NamePtr parse_subject(const std::string& text) {
  NamePtr name(X509_NAME_new());
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, ',')) {
    const std::string_view item = trim(part);
    const auto eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) return nullptr;
    const std::string field(trim(item.substr(0, eq)));
    const std::string value(trim(item.substr(eq + 1)));
    if (X509_NAME_add_entry_by_txt(name.get(), field.c_str(), MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0) != 1)
      return nullptr;
  }
  return X509_NAME_entry_count(name.get()) > 0 ? std::move(name) : nullptr;
}

Status write_owner_only(const std::string& path, std::string_view content) {
  return files::write_private_file(path, content);
}

Error file_error(const std::string& what, const Status& cause) { return cause.error().context(what + ": "); }

}  // namespace

AgentCertificate::AgentCertificate(std::string certificate_file, std::string key_file,
                                   AgentCertificateSettings settings, std::string subject_fallback)
    : certificate_file_(std::move(certificate_file)),
      key_file_(std::move(key_file)),
      settings_(std::move(settings)),
      subject_fallback_(std::move(subject_fallback)) {}

AgentCertificate::~AgentCertificate() = default;

std::optional<std::chrono::system_clock::time_point> AgentCertificate::not_after() const {
  auto pem = read_file(certificate_file_);
  if (!pem) return std::nullopt;
  X509Ptr cert = certificate_from_pem(*pem);
  if (!cert) return std::nullopt;
  int days = 0;
  int seconds = 0;
  if (ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(cert.get())) != 1) return std::nullopt;
  return std::chrono::system_clock::now() + std::chrono::hours(24) * days + std::chrono::seconds(seconds);
}

bool AgentCertificate::due(std::chrono::system_clock::time_point now) const {
  if (settings_.renew_before.count() <= 0) return false;
  const auto end = not_after();
  return !end || *end - now <= settings_.renew_before;
}

Result<std::string> AgentCertificate::make_request() {
  const bool rsa = iequals(settings_.key_type, "RSA");
  PkeyPtr key(rsa ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(settings_.key_size))
                  : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", settings_.key_size == 384 ? "P-384" : "P-256"));
  if (!key) return Error::internal("cannot generate the agent's new " + settings_.key_type + " key");

  NamePtr subject;
  if (!settings_.subject.empty()) {
    subject = parse_subject(settings_.subject);
    if (!subject)
      return Error::invalid_argument("AgentCertificate.Subject '" + settings_.subject +
                                     "' is not a subject like CN=name,O=org");
  } else if (auto pem = read_file(certificate_file_)) {
    if (X509Ptr current = certificate_from_pem(*pem))
      subject.reset(X509_NAME_dup(X509_get_subject_name(current.get())));
  }
  if (!subject) subject = parse_subject(subject_fallback_);
  if (!subject)
    return Error::invalid_argument("no subject for the agent certificate request: set AgentCertificate.Subject");

  ReqPtr req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), 0) != 1 || X509_REQ_set_subject_name(req.get(), subject.get()) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.get()) != 1 || X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0)
    return Error::internal("cannot build the agent certificate request");
  const int len = i2d_X509_REQ(req.get(), nullptr);
  if (len <= 0) return Error::internal("cannot encode the agent certificate request");
  std::string der(static_cast<std::size_t>(len), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  i2d_X509_REQ(req.get(), &out);
  new_key_pem_ = key_pem(key.get());
  if (new_key_pem_.empty()) return Error::internal("cannot encode the agent's new key");
  return base64_encode(der);
}

Status AgentCertificate::store_pending(const std::string& certificate) {
  if (new_key_pem_.empty())
    return Error::failed_precondition("Command returned an agent certificate, but no request of ours is outstanding");
  X509Ptr cert = certificate_from_command(certificate);
  if (!cert) return Error::invalid_argument("the agent certificate Command returned is not a certificate");
  PkeyPtr key = key_from_pem(new_key_pem_.reveal());
  if (!matches(cert.get(), key.get()))
    return Error::invalid_argument("the agent certificate Command returned is not for the key of our request");
  const std::string pem = certificate_pem(cert.get());
  // Key first: a pending certificate is only ever there with its key.
  if (Status s = write_owner_only(pending_key_file(), new_key_pem_.reveal()); !s.ok())
    return file_error("cannot store the new agent key", s);
  if (Status s = write_owner_only(pending_certificate_file(), pem); !s.ok())
    return file_error("cannot store the new agent certificate", s);
  new_key_pem_ = Secret();
  return {};
}

Status AgentCertificate::promote() { return promote(true); }

Status AgentCertificate::promote(bool keep_previous) {
  auto cert_pem = read_file(pending_certificate_file());
  auto new_key = read_file(pending_key_file());
  if (!cert_pem || !new_key) return Error::failed_precondition("no pending agent certificate to promote");
  Secret key_text(std::move(*new_key));
  if (keep_previous) {
    // The old pair stays readable as <file>.previous (as Keyfactor's C agent keeps <file>~).
    if (auto old_cert = read_file(certificate_file_)) {
      if (Status s = write_owner_only(previous_certificate_file(), *old_cert); !s.ok())
        return file_error("cannot keep the previous agent certificate", s);
    }
    if (auto old_key = read_file(key_file_)) {
      Secret old(std::move(*old_key));
      if (Status s = write_owner_only(previous_key_file(), old.reveal()); !s.ok())
        return file_error("cannot keep the previous agent key", s);
    }
  }
  if (Status s = write_owner_only(key_file_, key_text.reveal()); !s.ok())
    return file_error("cannot write the new agent key to KeyPath", s);
  if (Status s = write_owner_only(certificate_file_, *cert_pem); !s.ok())
    return file_error("cannot write the new agent certificate to CertPath", s);
  (void)files::remove_file(pending_certificate_file());
  (void)files::remove_file(pending_key_file());
  return {};
}

Status AgentCertificate::discard_pending() {
  Status cert = files::remove_file(pending_certificate_file());
  Status key = files::remove_file(pending_key_file());
  return cert.ok() ? key : cert;
}

Result<bool> AgentCertificate::recover() {
  std::error_code ec;
  const bool has_cert = fs::exists(pending_certificate_file(), ec);
  const bool has_key = fs::exists(pending_key_file(), ec);
  auto log = logger("agent");
  if (!has_cert) {
    if (has_key) {
      log->warn("removing '{}': a new agent key whose certificate never arrived", pending_key_file());
      WINCERT_TRY(files::remove_file(pending_key_file()));
    }
    return false;
  }
  if (!has_key) {
    log->warn("removing '{}': a new agent certificate without its key", pending_certificate_file());
    WINCERT_TRY(files::remove_file(pending_certificate_file()));
    return false;
  }
  auto cert_pem = read_file(pending_certificate_file());
  auto key_text = read_file(pending_key_file());
  Secret pending_key(key_text.value_or(""));
  X509Ptr cert = certificate_from_pem(cert_pem.value_or(""));
  PkeyPtr key = key_from_pem(pending_key.reveal());
  if (!matches(cert.get(), key.get())) {
    log->warn("removing the pending agent certificate '{}': it does not match its key", pending_certificate_file());
    WINCERT_TRY(discard_pending());
    return false;
  }
  Secret current_key(read_file(key_file_).value_or(""));
  if (current_key.reveal() == pending_key.reveal()) {
    log->info("finishing the promotion of the new agent certificate that a stop interrupted");
    WINCERT_TRY(promote(false));  // the previous pair was kept before KeyPath was written
    return false;
  }
  return true;
}

// ---- AgentCertificateRenewal ----

AgentCertificateRenewal::AgentCertificateRenewal(AgentCertificate& certificate, HttpClient& http)
    : certificate_(certificate), http_(http) {}

Status AgentCertificateRenewal::start() {
  WINCERT_ASSIGN_OR_RETURN(bool untested, certificate_.recover());
  if (!untested) return {};
  Status use = http_.use_client_certificate(certificate_.pending_certificate_file(), certificate_.pending_key_file());
  if (!use.ok()) {
    logger("agent")->warn("the pending agent certificate does not load ({}); removing it", use.error().message);
    return certificate_.discard_pending();
  }
  logger("agent")->info("trying the renewed agent certificate '{}' stored before the last stop",
                        certificate_.pending_certificate_file());
  unconfirmed_ = true;
  return {};
}

bool AgentCertificateRenewal::due() { return !unconfirmed_ && certificate_.due(std::chrono::system_clock::now()); }

boost::asio::awaitable<Result<std::string>> AgentCertificateRenewal::request() {
  AgentCertificate& certificate = certificate_;
  co_return co_await run_on_worker([&certificate] { return certificate.make_request(); });
}

boost::asio::awaitable<Status> AgentCertificateRenewal::install(std::string certificate) {
  AgentCertificate& files = certificate_;
  Status stored = co_await run_on_worker([&files, &certificate] { return files.store_pending(certificate); });
  if (!stored.ok()) co_return stored;
  test_kill_point("after-certificate-stored");
  Status use = http_.use_client_certificate(certificate_.pending_certificate_file(), certificate_.pending_key_file());
  if (!use.ok()) {
    (void)certificate_.discard_pending();
    co_return use;
  }
  unconfirmed_ = true;
  co_return Status{};
}

Status AgentCertificateRenewal::confirm() {
  if (!unconfirmed_) return {};
  unconfirmed_ = false;
  WINCERT_TRY(certificate_.promote());
  // Same content, now at CertPath/KeyPath: the client reads the files it will find after a restart.
  return http_.use_client_certificate(certificate_.certificate_file(), certificate_.key_file());
}

Status AgentCertificateRenewal::revert() {
  if (!unconfirmed_) return {};
  unconfirmed_ = false;
  Status use = http_.use_client_certificate(certificate_.certificate_file(), certificate_.key_file());
  Status dropped = certificate_.discard_pending();
  return use.ok() ? dropped : use;
}

}  // namespace wincert::agent
