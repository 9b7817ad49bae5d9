// The agent certificate files (agent/agent_certificate.cpp): a renewal's request and pending pair, its
// promotion with the previous pair kept, and recovery from a crash at every point between writing the new
// pair and switching to it. A local CA signs the requests the way Command would.
#include "agent/agent_certificate.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <filesystem>
#include <memory>

#include "agent/platform/files.hpp"
#include "common/encoding.hpp"
#include "tests/agent/daemon_test_support.hpp"

namespace wincert::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::read_text;
using testing::TempDir;
using testing::write_text;

struct Deleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
};
template <typename T>
using Owned = std::unique_ptr<T, Deleter>;

std::string to_pem(X509* cert) {
  Owned<BIO> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}
std::string key_to_pem(EVP_PKEY* key) {
  Owned<BIO> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

// Signs certificates as Command's CA would: from a CSR (base64 DER), valid for `days`.
class TestCa {
 public:
  TestCa() : key_(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")) {}

  Owned<X509> issue(EVP_PKEY* subject_key, const std::string& cn, long seconds) {
    Owned<X509> cert(X509_new());
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), ++serial_);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), seconds);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                               0);
    X509_set_issuer_name(cert.get(), name);
    X509_set_pubkey(cert.get(), subject_key);
    X509_sign(cert.get(), key_.get(), EVP_sha256());
    return cert;
  }
  // Command's answer to a CSR: base64 DER of the certificate, and the request's subject for the test.
  std::string sign_request(const std::string& csr_base64, std::string* subject = nullptr) {
    auto der = base64_decode(csr_base64);
    EXPECT_TRUE(der.has_value());
    const auto* p = reinterpret_cast<const unsigned char*>(der->data());
    Owned<X509_REQ> req(d2i_X509_REQ(nullptr, &p, static_cast<long>(der->size())));
    EXPECT_TRUE(req);
    Owned<EVP_PKEY> pub(X509_REQ_get_pubkey(req.get()));
    EXPECT_EQ(X509_REQ_verify(req.get(), pub.get()), 1) << "the request is signed with its key";
    char buf[256] = {};
    X509_NAME_oneline(X509_REQ_get_subject_name(req.get()), buf, sizeof buf);
    if (subject) *subject = buf;
    Owned<X509> cert = issue(pub.get(), "renewed", 86400L * 365);
    const int len = i2d_X509(cert.get(), nullptr);
    std::string out(static_cast<std::size_t>(len), '\0');
    auto* w = reinterpret_cast<unsigned char*>(out.data());
    i2d_X509(cert.get(), &w);
    return base64_encode(out);
  }

 private:
  Owned<EVP_PKEY> key_;
  long serial_ = 0;
};

class AgentCertificateTest : public ::testing::Test {
 protected:
  AgentCertificateTest() {
    Owned<EVP_PKEY> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    original_key_ = key_to_pem(key.get());
    original_cert_ = to_pem(ca_.issue(key.get(), "orch-test", 86400L * 10).get());
    write_text(cert_file(), original_cert_);
    write_text(key_file(), original_key_);
  }
  std::string cert_file() const { return dir_.file("agent.pem"); }
  std::string key_file() const { return dir_.file("agent.key"); }
  AgentCertificate make(int renew_days = 30) {
    AgentCertificateSettings settings;
    settings.renew_before = std::chrono::hours(24 * renew_days);
    settings.key_type = "ECC";
    settings.key_size = 256;
    return AgentCertificate(cert_file(), key_file(), settings, "CN=orch-test");
  }
  // A renewal up to the pending pair.
  void store_pending(AgentCertificate& certificate) {
    auto csr = certificate.make_request();
    ASSERT_TRUE(csr.ok()) << csr.error().message;
    ASSERT_TRUE(certificate.store_pending(ca_.sign_request(*csr)).ok());
  }

  TempDir dir_;
  TestCa ca_;
  std::string original_cert_;
  std::string original_key_;
};

TEST_F(AgentCertificateTest, RenewalIsDueWithinTheMarginOnly) {
  auto ten_days_left = make(30);
  EXPECT_TRUE(ten_days_left.due(std::chrono::system_clock::now()));
  auto margin_five = make(5);
  EXPECT_FALSE(margin_five.due(std::chrono::system_clock::now()));
  EXPECT_TRUE(margin_five.due(std::chrono::system_clock::now() + std::chrono::hours(24 * 6)));
  EXPECT_FALSE(make(0).due(std::chrono::system_clock::now() + std::chrono::hours(24 * 365))) << "0 = on request only";
  write_text(cert_file(), "not a certificate");
  EXPECT_TRUE(margin_five.due(std::chrono::system_clock::now())) << "an unreadable certificate is renewed";
}

TEST_F(AgentCertificateTest, TheRequestKeepsTheCurrentSubjectAndTheNewPairIsStoredBesideTheOld) {
  auto certificate = make();
  auto csr = certificate.make_request();
  ASSERT_TRUE(csr.ok()) << csr.error().message;
  std::string subject;
  const std::string issued = ca_.sign_request(*csr, &subject);
  EXPECT_EQ(subject, "/CN=orch-test");
  ASSERT_TRUE(certificate.store_pending(issued).ok());
  EXPECT_EQ(read_text(cert_file()), original_cert_) << "the current pair is untouched until promoted";
  EXPECT_EQ(read_text(key_file()), original_key_);
  EXPECT_TRUE(fs::exists(certificate.pending_certificate_file()));
  EXPECT_TRUE(fs::exists(certificate.pending_key_file()));
  EXPECT_FALSE(files::key_file_exposure(certificate.pending_key_file())) << "the new key is owner-only";

  ASSERT_TRUE(certificate.promote().ok());
  EXPECT_NE(read_text(cert_file()), original_cert_);
  EXPECT_NE(read_text(key_file()), original_key_);
  EXPECT_EQ(read_text(certificate.previous_certificate_file()), original_cert_);
  EXPECT_EQ(read_text(certificate.previous_key_file()), original_key_);
  EXPECT_FALSE(fs::exists(certificate.pending_certificate_file()));
  EXPECT_FALSE(fs::exists(certificate.pending_key_file()));
  EXPECT_FALSE(certificate.due(std::chrono::system_clock::now())) << "the new one is valid for a year";
}

TEST_F(AgentCertificateTest, ACertificateForAnotherKeyOrNoRequestIsRefused) {
  auto certificate = make();
  const std::string unrelated = ca_.sign_request(*make().make_request());
  auto refused = certificate.store_pending(unrelated);
  EXPECT_EQ(refused.error().code, ErrorCode::kFailedPrecondition) << "no request outstanding";
  ASSERT_TRUE(certificate.make_request().ok());
  auto mismatch = certificate.store_pending(unrelated);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(certificate.store_pending("bm90IGEgY2VydGlmaWNhdGU=").ok());
  EXPECT_FALSE(fs::exists(certificate.pending_certificate_file()));
}

TEST_F(AgentCertificateTest, RecoveryAfterACrashAtEachPoint) {
  {
    SCOPED_TRACE("nothing pending");
    auto certificate = make();
    EXPECT_EQ(certificate.recover().value(), false);
  }
  {
    SCOPED_TRACE("killed after the new key, before its certificate");
    auto certificate = make();
    write_text(certificate.pending_key_file(), "half a renewal");
    EXPECT_EQ(certificate.recover().value(), false);
    EXPECT_FALSE(fs::exists(certificate.pending_key_file()));
    EXPECT_EQ(read_text(cert_file()), original_cert_);
  }
  {
    SCOPED_TRACE("killed after storing the pair, before switching to it");
    auto certificate = make();
    store_pending(certificate);
    auto again = make();
    EXPECT_EQ(again.recover().value(), true) << "an untested pending pair is tried first";
    EXPECT_EQ(read_text(cert_file()), original_cert_);
    ASSERT_TRUE(again.discard_pending().ok());
  }
  {
    SCOPED_TRACE("killed in the promotion, after the key and before the certificate");
    auto certificate = make();
    store_pending(certificate);
    const std::string new_cert = read_text(certificate.pending_certificate_file());
    write_text(certificate.previous_certificate_file(), original_cert_);
    write_text(certificate.previous_key_file(), original_key_);
    write_text(key_file(), read_text(certificate.pending_key_file()));  // KeyPath written, CertPath not yet
    auto again = make();
    EXPECT_EQ(again.recover().value(), false);
    EXPECT_EQ(read_text(cert_file()), new_cert) << "the promotion is finished";
    EXPECT_EQ(read_text(certificate.previous_key_file()), original_key_) << "the old key is still kept";
    EXPECT_FALSE(fs::exists(certificate.pending_certificate_file()));
    EXPECT_FALSE(fs::exists(certificate.pending_key_file()));
  }
  {
    SCOPED_TRACE("a pending pair whose halves do not match");
    auto certificate = make();
    write_text(certificate.pending_certificate_file(), original_cert_);
    Owned<EVP_PKEY> other(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    write_text(certificate.pending_key_file(), key_to_pem(other.get()));
    EXPECT_EQ(certificate.recover().value(), false);
    EXPECT_FALSE(fs::exists(certificate.pending_certificate_file()));
  }
}

}  // namespace
}  // namespace wincert::agent
