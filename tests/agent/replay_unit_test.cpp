// replay's pieces without a host: --set value typing and paths (into the Properties string), loading the
// fixture files, and the local CA that signs reenrollment CSRs.
#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fstream>

#include "agent/local_ca.hpp"
#include "agent/replay.hpp"
#include "certstore/csr.hpp"
#include "certstore/x509.hpp"
#include "common/encoding.hpp"
#include "jobs/job_config.hpp"
#include "session_test_support.hpp"

namespace wincert::agent::testing {
namespace {

using Json = nlohmann::ordered_json;

TEST(ReplayOverride, ValuesAreJsonWhenTheyParseAsJsonElseText) {
  EXPECT_EQ(override_value("5985"), Json(5985));
  EXPECT_EQ(override_value("true"), Json(true));
  EXPECT_EQ(override_value("null"), Json(nullptr));
  EXPECT_EQ(override_value(R"({"dns":["a"]})"), Json::parse(R"({"dns":["a"]})"));
  EXPECT_EQ(override_value(R"("007")"), Json("007"));  // quoted: a string that looks like a number
  EXPECT_EQ(override_value("127.0.0.1:5985"), Json("127.0.0.1:5985"));
  EXPECT_EQ(override_value("Default Web Site"), Json("Default Web Site"));
  EXPECT_EQ(override_value(""), Json(""));
  EXPECT_EQ(override_value("{not json"), Json("{not json"));
}

TEST(ReplayOverride, PropertiesKeysAreSetInsideTheJsonString) {
  Json job = Json::parse(R"({"CertificateStoreDetails": {"ClientMachine": "x", "Properties":
      "{\"spnwithport\":\"false\",\"WinRm Protocol\":\"ProtocolGoesHere\",\"ServerUsername\":null}"}})");
  ASSERT_TRUE(set_job_value(job, "certificatestoredetails.properties.WinRM Protocol", Json("http")).ok());
  ASSERT_TRUE(set_job_value(job, "CertificateStoreDetails.Properties.ServerUsername", Json("admin")).ok());
  ASSERT_TRUE(set_job_value(job, "CertificateStoreDetails.Properties.WinRM AllowUnencrypted", Json(true)).ok());
  const Json& props = job["CertificateStoreDetails"]["Properties"];
  ASSERT_TRUE(props.is_string()) << "Properties stays a JSON string, as the UO sends it";
  const Json inner = Json::parse(props.get<std::string>());
  EXPECT_EQ(inner["WinRm Protocol"], "http");  // the existing spelling is kept
  EXPECT_EQ(inner["ServerUsername"], "admin");
  EXPECT_EQ(inner["spnwithport"], "false");
  EXPECT_EQ(inner["WinRM AllowUnencrypted"], true);
  EXPECT_FALSE(inner.contains("WinRM Protocol"));

  auto parsed = jobs::parse_job_config(job.dump());
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->store.properties.server_username, "admin");
  EXPECT_TRUE(parsed->store.properties.winrm_allow_unencrypted);
}

TEST(ReplayOverride, PathsCreateMissingKeysAndReportProblemsWithoutTheValue) {
  Json job = Json::parse(R"({"JobProperties": null, "Overwrite": false, "Name": "x"})");
  ASSERT_TRUE(set_job_value(job, "JobProperties.SiteName", Json("Default Web Site")).ok());
  EXPECT_EQ(job["JobProperties"]["SiteName"], "Default Web Site");
  ASSERT_TRUE(set_job_value(job, "overwrite", Json(true)).ok());
  EXPECT_EQ(job["Overwrite"], true);
  EXPECT_FALSE(job.contains("overwrite"));

  auto through_scalar = set_job_value(job, "Overwrite.Deeper", Json("S3cret-Value"));
  ASSERT_FALSE(through_scalar.ok());
  EXPECT_NE(through_scalar.error().message.find("Overwrite"), std::string::npos) << through_scalar.error().message;
  EXPECT_EQ(through_scalar.error().message.find("S3cret-Value"), std::string::npos);

  auto not_object_text = set_job_value(job, "Name.Key", Json("v"));
  ASSERT_FALSE(not_object_text.ok());
  EXPECT_NE(not_object_text.error().message.find("Name"), std::string::npos);

  EXPECT_FALSE(set_job_value(job, "JobProperties..Port", Json(1)).ok());
  EXPECT_FALSE(set_job_value(job, "  ", Json(1)).ok());
}

TEST(ReplayOverride, FixtureFilesLoadWithTheirByteOrderMark) {
  ReplayOptions options;
  options.job_file = fixture_job("Management.json");
  options.sets = {"CertificateStoreDetails.ClientMachine=web01:5985", "JobProperties.Port=8443",
                  "CertificateStoreDetails.Properties.ServerUsername=admin"};
  auto text = load_job_text(options);
  ASSERT_TRUE(text.ok()) << text.error().message;
  auto config = jobs::parse_job_config(text.value());
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->store.client_machine, "web01:5985");
  EXPECT_EQ(config->entry.port, "8443");
  EXPECT_EQ(config->store.properties.server_username, "admin");
  EXPECT_EQ(config->job_history_id, 26009);
}

TEST(ReplayExitCode, SuccessWarningFailure) {
  EXPECT_EQ(replay_exit_code(jobs::JobStatus::kSuccess), 0);
  EXPECT_EQ(replay_exit_code(jobs::JobStatus::kWarning), 1);
  EXPECT_EQ(replay_exit_code(jobs::JobStatus::kFailure), 2);
  EXPECT_EQ(replay_exit_code(jobs::JobStatus::kUnknown), 2);
}

// ---- local CA ----------------------------------------------------------------------------------------

// A PKCS#10 request made with OpenSSL: an EC P-256 key, the subject, and a SAN extension request.
std::string make_csr(const std::string& subject_cn, const std::string& san) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509_REQ* req = X509_REQ_new();
  X509_REQ_set_version(req, 0);
  X509_NAME* name = X509_REQ_get_subject_name(req);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("Example Corp"), -1, -1,
                             0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(subject_cn.c_str()), -1,
                             -1, 0);
  X509_REQ_set_pubkey(req, key);
  STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
  sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str()));
  X509_REQ_add_extensions(req, exts);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  X509_REQ_sign(req, key, EVP_sha256());
  unsigned char* der = nullptr;
  const int len = i2d_X509_REQ(req, &der);
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  X509_REQ_free(req);
  EVP_PKEY_free(key);
  return out;
}

struct LocalCaTest : ::testing::Test {
  fs::path dir;
  void SetUp() override {
    dir = fs::temp_directory_path() / ("wincert-local-ca-" + random_uuid());
    fs::create_directories(dir);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

TEST_F(LocalCaTest, IssuesWithTheRequestedSubjectAndSansForEveryInputForm) {
  const CaFiles files = write_ca(dir);
  auto ca = LocalCa::load(files.cert_file, files.key_file);
  ASSERT_TRUE(ca.ok()) << ca.error().message;
  EXPECT_EQ(ca->subject(), files.subject);
  const std::string csr = make_csr("web01.example.com", "DNS:web01.example.com,IP:10.1.2.3");
  for (const std::string& form : {csr, base64_encode(csr), pem_encode(csr, "CERTIFICATE REQUEST")}) {
    auto issued = ca->issue(form);
    ASSERT_TRUE(issued.ok()) << issued.error().message;
    auto info = certstore::parse_certificate_der(issued.value());
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(info->subject, "CN=web01.example.com, O=Example Corp");
    EXPECT_EQ(info->issuer, files.subject);
    EXPECT_EQ(info->sans, (std::vector<certstore::SubjectAltName>{{certstore::SanType::kDns, "web01.example.com"},
                                                                  {certstore::SanType::kIp, "10.1.2.3"}}));
    EXPECT_EQ(info->key.curve, "P-256");
    EXPECT_FALSE(info->self_signed);
  }
  // Two issues never share a serial number.
  auto a = certstore::parse_certificate_der(ca->issue(csr).value());
  auto b = certstore::parse_certificate_der(ca->issue(csr).value());
  EXPECT_NE(a->serial, b->serial);
}

TEST_F(LocalCaTest, RefusesGarbageTamperedRequestsAndMismatchedKeys) {
  const CaFiles files = write_ca(dir);
  auto ca = LocalCa::load(files.cert_file, files.key_file);
  ASSERT_TRUE(ca.ok()) << ca.error().message;
  EXPECT_FALSE(ca->issue("not a csr").ok());
  std::string csr = make_csr("web01.example.com", "DNS:web01.example.com");
  csr[csr.size() - 5] ^= 0x55;  // inside the signature
  auto tampered = ca->issue(csr);
  ASSERT_FALSE(tampered.ok());

  const fs::path other = dir / "other";
  fs::create_directories(other);
  const CaFiles second = write_ca(other);
  auto mismatched = LocalCa::load(files.cert_file, second.key_file);
  ASSERT_FALSE(mismatched.ok());
  EXPECT_EQ(mismatched.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(mismatched.error().message.find("does not belong"), std::string::npos) << mismatched.error().message;
  auto missing = LocalCa::load((dir / "nope.pem").string(), files.key_file);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message.find("nope.pem"), std::string::npos);
  auto not_a_key = LocalCa::load(files.cert_file, files.cert_file);
  ASSERT_FALSE(not_a_key.ok());
  EXPECT_EQ(not_a_key.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(not_a_key.error().message.find("private key"), std::string::npos) << not_a_key.error().message;
}

}  // namespace
}  // namespace wincert::agent::testing
