// On-device key generation: create_csr() makes a machine key and a PKCS#10 request signed by it, a test CA
// (OpenSSL, in-process) issues the certificate, install_issued() links it to the key; then the installed
// certificate's key signs something its public key verifies.
#include "certstore/local/local_cert_store.hpp"
#include "certstore/local/operations.hpp"
#include "certstore/local/system_store.hpp"
#include "common/encoding.hpp"
#include "local_test_support.hpp"
#include "tests/support/result_matchers.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace wincert::certstore::local {
namespace {

using namespace testing;

const std::vector<SubjectAltName> kSans{
    {SanType::kDns, "web01.example.com"}, {SanType::kIp, "192.0.2.10"}, {SanType::kUpn, "svc-web@corp.example.com"}};

std::string der_from_pem(const std::string& pem) {
  std::string body;
  for (std::size_t start = pem.find('\n') + 1; start < pem.size();) {
    const std::size_t end = pem.find('\n', start);
    const std::string line = pem.substr(start, end - start);
    if (!line.starts_with("-----")) body += line;
    start = end == std::string::npos ? pem.size() : end + 1;
  }
  return base64_decode(body).value_or("");
}

std::size_t pending_requests() {
  auto store = open_machine_store(kPendingRequestStore, StoreAccess::kRead);
  if (!store) return 0;
  std::size_t count = 0;
  for_each_certificate(store->get(), [&](PCCERT_CONTEXT) {
    ++count;
    return true;
  });
  return count;
}

class Reenrollment : public ::testing::Test {
 protected:
  // The whole round trip for one key type; returns the installed thumbprint ("" after a failure).
  void round_trip(const std::string& key_type, const std::string& key_size, const std::string& provider,
                  const std::string& expected_key) {
    const auto started = std::chrono::steady_clock::now();
    CsrRequest request;
    request.subject = "CN=web01.example.com,O=Keyfactor\\, Inc,C=US";
    request.key_type = key_type;
    request.key_size = key_size;
    request.provider_name = provider;
    request.sans = kSans;
    auto csr = run(backend.create_csr(request));
    ASSERT_TRUE(csr.ok()) << csr.error().message;
    EXPECT_TRUE(csr->info.signature_valid);
    EXPECT_EQ(csr->info.subject, "CN=web01.example.com, O=\"Keyfactor, Inc\", C=US");
    EXPECT_EQ(csr->info.sans, kSans);
    EXPECT_EQ(csr->info.key.display(), expected_key);
    EXPECT_EQ(csr->provider_name, provider.empty() ? "Microsoft Software Key Storage Provider" : provider);
    EXPECT_EQ(der_from_pem(csr->pem()), csr->info.der);

    const std::string issued = ca.issue(csr->info.der);
    ASSERT_FALSE(issued.empty());
    const std::string thumbprint = thumbprint_of(issued);
    auto installed = run(backend.install_issued({"My", issued}));
    ASSERT_TRUE(installed.ok()) << installed.error().message;
    EXPECT_EQ(installed->thumbprint, thumbprint);
    EXPECT_TRUE(installed->has_private_key);

    // The key is linked: it signs, and the issued certificate's public key verifies the signature.
    auto store = open_machine_store("My", StoreAccess::kRead);
    ASSERT_TRUE(store.ok());
    auto cert = find_by_thumbprint(store->get(), thumbprint);
    ASSERT_TRUE(cert.ok() && *cert);
    auto link = key_link_of(cert->get());
    ASSERT_TRUE(link.has_value());
    EXPECT_TRUE(link->machine());
    EXPECT_EQ(link->provider, csr->provider_name);
    EXPECT_TRUE(windows_acquires_key("My", thumbprint) || running_under_wine());
    {
      auto key = MachineKey::open(*link);
      ASSERT_TRUE(key.ok()) << key.error().message;
      const std::string message = "reenrolled " + key_type + " " + key_size;
      auto signature = key->sign_digest(sha256(message), DigestAlgorithm::kSha256);
      ASSERT_TRUE(signature.ok()) << signature.error().message;
      EXPECT_TRUE(signature_verifies(issued, message, *signature));
    }  // closed before removal: Wine's CSP writes a container back when its last handle closes

    // A retry of the same job is harmless.
    auto again = run(backend.install_issued({"My", issued}));
    ASSERT_TRUE(again.ok()) << again.error().message;

    auto removed = run(backend.remove({"My", thumbprint, true}));
    ASSERT_TRUE(removed.ok()) << removed.error().message;
    EXPECT_TRUE(removed->key_removed);
    EXPECT_FALSE(key_exists(*link));
    std::printf(
        "[ timing   ] %s %s in '%s': %lld ms\n", key_type.c_str(), key_size.c_str(), csr->provider_name.c_str(),
        static_cast<long long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count()));
  }

  // Wine's KSP creates no ECC keys and persists none: the failure must name the provider and leave nothing.
  void expect_wine_ksp_refusal(const std::string& key_type, const std::string& key_size) {
    const std::size_t pending_before = pending_requests();
    CsrRequest request;
    request.subject = "CN=ecc.example.com";
    request.key_type = key_type;
    request.key_size = key_size;
    auto csr = run(backend.create_csr(request));
    ASSERT_FALSE(csr.ok());
    EXPECT_FALSE(csr.error().retryable());
    EXPECT_NE(csr.error().message.find("'Microsoft Software Key Storage Provider'"), std::string::npos)
        << csr.error().message;
    EXPECT_NE(csr.error().message.find("NTE_NOT_SUPPORTED"), std::string::npos) << csr.error().message;
    std::printf("[ wine     ] %s\n", csr.error().message.c_str());
    EXPECT_EQ(pending_requests(), pending_before);
  }

  LocalCertStore backend;
  TestCa ca;
};

TEST_F(Reenrollment, Rsa2048) { round_trip("RSA", "2048", rsa_provider_for_this_platform(), "RSA 2048"); }
TEST_F(Reenrollment, Rsa3072) { round_trip("RSA", "3072", rsa_provider_for_this_platform(), "RSA 3072"); }
TEST_F(Reenrollment, Rsa4096) { round_trip("RSA", "4096", rsa_provider_for_this_platform(), "RSA 4096"); }

// The Base/Strong CSPs cannot hash with SHA-2; their keys sign through the AES CSP (shared containers).
TEST_F(Reenrollment, RsaInTheStrongCspSignsThroughTheAesCsp) { round_trip("RSA", "2048", kStrongCsp, "RSA 2048"); }

TEST_F(Reenrollment, DefaultProviderIsTheKeyStorageProvider) {
  if (running_under_wine()) {
    expect_wine_ksp_refusal("RSA", "2048");
    GTEST_SKIP() << "Wine 8's key storage provider keeps no persisted keys (NCryptOpenKey is a stub); "
                    "the refusal above is what Wine gets";
  }
  round_trip("RSA", "2048", "", "RSA 2048");
}

TEST_F(Reenrollment, EccKeys) {
  for (const auto& [size, expected] :
       {std::pair{"P-256", "EC P-256"}, std::pair{"P-384", "EC P-384"}, std::pair{"P-521", "EC P-521"}}) {
    SCOPED_TRACE(size);
    if (running_under_wine()) {
      expect_wine_ksp_refusal("ECC", size);
      continue;
    }
    round_trip("ECC", size, "", expected);
  }
  if (running_under_wine()) {
    GTEST_SKIP() << "Wine 8's key storage provider creates no ECC keys (NCryptCreatePersistedKey: RSA only, not "
                    "persisted) and its CSPs are RSA-only; the refusals above are what Wine gets";
  }
}

TEST_F(Reenrollment, EccInALegacyCspIsRefusedUpFront) {
  CsrRequest request;
  request.subject = "CN=ecc.example.com";
  request.key_type = "ECC";
  request.key_size = "P-256";
  request.provider_name = kAesCsp;
  auto csr = run(backend.create_csr(request));
  ASSERT_FALSE(csr.ok());
  EXPECT_EQ(csr.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(csr.error().message.find("legacy CSP"), std::string::npos) << csr.error().message;
}

TEST_F(Reenrollment, BadInputsCreateNoKey) {
  const std::size_t pending_before = pending_requests();
  CsrRequest request;
  request.provider_name = rsa_provider_for_this_platform();
  request.subject = "NOTANATTRIBUTE=1";
  auto bad_subject = run(backend.create_csr(request));
  ASSERT_FALSE(bad_subject.ok());
  EXPECT_EQ(bad_subject.error().code, ErrorCode::kInvalidArgument);

  request.subject = "CN=x";
  request.key_size = "1000";
  auto bad_size = run(backend.create_csr(request));
  ASSERT_FALSE(bad_size.ok());
  EXPECT_EQ(bad_size.error().code, ErrorCode::kInvalidArgument);

  request.key_size = "2048";
  request.store = "NoSuchStore-wincert";
  auto bad_store = run(backend.create_csr(request));
  ASSERT_FALSE(bad_store.ok());
  EXPECT_THAT(bad_store, HasCode(ErrorCode::kNotFound));
  EXPECT_EQ(pending_requests(), pending_before);
}

TEST_F(Reenrollment, ACertificateWithoutAPendingRequestIsRefused) {
  auto key = make_rsa_key(2048);
  auto cert = make_certificate(key.get(), "stranger.example.com", false, ca.certificate(), ca.key());
  auto installed = run(backend.install_issued({"My", der_of(cert.get())}));
  ASSERT_FALSE(installed.ok());
  EXPECT_NE(installed.error().message.find("no pending request"), std::string::npos) << installed.error().message;
  EXPECT_FALSE(store_has("My", thumbprint_of(der_of(cert.get()))));

  auto garbage = run(backend.install_issued({"My", "not a certificate"}));
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace wincert::certstore::local
