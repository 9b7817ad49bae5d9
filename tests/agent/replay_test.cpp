// `wincert-agent replay` as a process, on the fixture job files of ../shared/fixtures/jobs with their
// placeholders replaced through --set/--set-env, against a winhost-sim child playing the example
// Windows host over NTLM (message encryption on http) or Basic. Each test asserts on the printed JSON,
// the exit code, and the host the sim saved afterwards.
#include <gtest/gtest.h>

#include <algorithm>

#include "certstore/csr.hpp"
#include "certstore/x509.hpp"
#include "common/encoding.hpp"
#include "session_test_support.hpp"

namespace wincert::agent::testing {
namespace {

using sim::model::testing::b64;
using sim::model::testing::make_chain;

constexpr const char* kWww = "5E27ABA2275BBE0A26206111B5F35522F4536F92";       // My, bound to *:443:www.example.com
constexpr const char* kSqlCert = "26D694DA6A3764D29474697065A5CEC7288EDE10";   // My, bound to MSSQLSERVER
constexpr const char* kIntranet = "A5A184E7D61C369C6A083C7E3AAC598828994987";  // WebHosting, Intranet *:8443:

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

struct ReplayTest : ::testing::Test {
  std::unique_ptr<Host> host;
  void SetUp() override {
    if (!winrm::test::sim_available()) GTEST_SKIP() << "winhost-sim is not built";
    host = std::make_unique<Host>();
    ASSERT_TRUE(host->running()) << "winhost-sim did not start";
  }
  ReplayRun run(const std::string& job, const std::vector<std::string>& more, std::vector<std::string> env = {}) {
    auto all_env = ntlm_env();
    all_env.insert(all_env.end(), env.begin(), env.end());
    return replay(fixture_job(job), concat(ntlm_target_args(*host), more), all_env);
  }
  // Nothing secret leaks into what replay prints or logs.
  static void expect_no_secrets(const ReplayRun& r, const std::vector<std::string>& secrets) {
    for (const auto& s : secrets) {
      EXPECT_EQ(r.out.find(s), std::string::npos) << "secret on stdout";
      EXPECT_EQ(r.err.find(s), std::string::npos) << "secret on stderr";
    }
  }
};

std::vector<std::string> aliases(const ReplayRun& r) {
  std::vector<std::string> out;
  for (const auto& item : r.doc["Inventory"]) out.push_back(item.value("Alias", std::string()));
  return out;
}

// ---- inventory ----------------------------------------------------------------------------------------

TEST_F(ReplayTest, WinCertInventoryListsTheStoreWithKeysAndProviders) {
  auto r = run("WinCertInventory.json", {"--log-level", "trace"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.result(), 2);
  EXPECT_EQ(r.doc["JobResult"]["JobHistoryId"], 26010);
  ASSERT_TRUE(r.doc["Inventory"].is_array()) << r.out;
  EXPECT_EQ(aliases(r), (std::vector<std::string>{kWww, kSqlCert}));
  EXPECT_TRUE(r.doc["Inventory"][0]["PrivateKeyEntry"].get<bool>());
  EXPECT_EQ(r.doc["Inventory"][1]["Parameters"]["ProviderName"],
            "Microsoft Enhanced RSA and AES Cryptographic Provider");
  EXPECT_FALSE(r.doc.contains("Csr"));
  expect_no_secrets(r, {kPassword});
}

TEST_F(ReplayTest, IisuInventoryListsBoundCertificatesWithIisAliases) {
  auto r = run("WinIISInventory.json", {});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto found = aliases(r);
  EXPECT_TRUE(contains(found, std::string(kWww) + ":Default Web Site:*:443:www.example.com")) << r.out;
  for (const auto& item : r.doc["Inventory"]) EXPECT_EQ(item["Parameters"]["Protocol"], "https");
}

TEST_F(ReplayTest, WinSqlInventoryFromAFixtureWithTheCapabilityOverridden) {
  auto r = run("WinCertInventory.json", {"--set", "Capability=CertStores.WinSql.Inventory"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_EQ(r.doc["Inventory"].size(), 1u) << r.out;
  EXPECT_EQ(r.doc["Inventory"][0]["Alias"], kSqlCert);
  EXPECT_EQ(r.doc["Inventory"][0]["Parameters"]["InstanceName"], "MSSQLSERVER");
}

TEST(ReplayWarning, IisuInventoryWithABindingToAMissingCertificateIsAWarning) {
  if (!winrm::test::sim_available()) GTEST_SKIP() << "winhost-sim is not built";
  // The host's https binding still points at www.example.com's certificate, which is gone from My.
  Host host(SimAuth::kNtlm, [](json& model) {
    auto& my = model["stores"]["My"];
    my.erase(my.begin());
  });
  ASSERT_TRUE(host.running());
  auto r = replay(fixture_job("WinIISInventory.json"), ntlm_target_args(host), ntlm_env());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.result(), 3);
  EXPECT_NE(r.message().find(kWww), std::string::npos) << r.message();
}

// ---- management ---------------------------------------------------------------------------------------

TEST_F(ReplayTest, IisuAddImportsThePfxAndBindsIt) {
  const auto chain = make_chain("new.example.com");
  auto r = run("Management.json", {"--set",       "CertificateStoreDetails.StorePath=My",
                                   "--set",       "JobProperties.SiteName=Default Web Site",
                                   "--set",       "JobProperties.IPAddress=*",
                                   "--set",       "JobProperties.Port=443",
                                   "--set",       "JobProperties.HostName=new.example.com",
                                   "--set",       "JobProperties.SniFlag=1",
                                   "--set",       "JobProperties.Protocol=https",
                                   "--set-env",   "JobCertificate.Contents=WINCERT_TEST_PFX",
                                   "--set-env",   "JobCertificate.PrivateKeyPassword=WINCERT_TEST_PFX_PASSWORD",
                                   "--log-level", "debug"},
               {"WINCERT_TEST_PFX=" + b64(chain.pfx), "WINCERT_TEST_PFX_PASSWORD=" + chain.password});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.result(), 2);
  EXPECT_EQ(r.doc["JobResult"]["JobHistoryId"], 26009);
  EXPECT_NE(r.message().find(chain.leaf.thumbprint), std::string::npos) << r.message();
  const json model = host->model();
  EXPECT_TRUE(contains(thumbprints(model, "My"), chain.leaf.thumbprint));
  const json binding = find_binding(model, "Default Web Site", "*:443:new.example.com");
  ASSERT_FALSE(binding.is_null()) << model["iis"].dump();
  EXPECT_EQ(binding["certificate_hash"], chain.leaf.thumbprint);
  EXPECT_EQ(binding["ssl_flags"], 1);
  expect_no_secrets(r, {kPassword, chain.password, b64(chain.pfx).substr(0, 40)});
}

TEST_F(ReplayTest, WinCertAddHonoursOverwrite) {
  const auto chain = make_chain("overwrite.example.com");
  auto add = [&](bool overwrite) {
    return run("Management.json",
               {"--set", "Capability=CertStores.WinCert.Management", "--set", "CertificateStoreDetails.StorePath=My",
                "--set", std::string("Overwrite=") + (overwrite ? "true" : "false"), "--set-env",
                "JobCertificate.Contents=WINCERT_TEST_PFX", "--set-env",
                "JobCertificate.PrivateKeyPassword=WINCERT_TEST_PFX_PASSWORD"},
               {"WINCERT_TEST_PFX=" + b64(chain.pfx), "WINCERT_TEST_PFX_PASSWORD=" + chain.password});
  };
  auto first = add(false);
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_EQ(first.result(), 2);

  auto again = add(false);  // already there and Overwrite is off: left alone (the extension reports Success)
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_NE(again.message().find("Overwrite is off"), std::string::npos) << again.message();

  auto replaced = add(true);
  EXPECT_EQ(replaced.exit_code, 0) << replaced.out << replaced.err;
  const auto my = thumbprints(host->model(), "My");
  EXPECT_EQ(std::count(my.begin(), my.end(), chain.leaf.thumbprint), 1);
}

TEST_F(ReplayTest, IisuRemoveUnbindsAndRemovesTheCertificate) {
  auto r = run("ManagementRemove.json",
               {"--set", "CertificateStoreDetails.StorePath=My", "--set",
                std::string("JobCertificate.Alias=") + kWww + ":Default Web Site:*:443:www.example.com"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.doc["JobResult"]["JobHistoryId"], 26019);
  const json model = host->model();
  EXPECT_TRUE(find_binding(model, "Default Web Site", "*:443:www.example.com").is_null()) << model["iis"].dump();
  EXPECT_FALSE(contains(thumbprints(model, "My"), kWww));
}

TEST_F(ReplayTest, WinCertRemoveTakesTheCertificateOutOfTheStore) {
  auto r = run("ManagementRemove.json", {"--set", "Capability=CertStores.WinCert.Management", "--set",
                                         "CertificateStoreDetails.StorePath=WebHosting", "--set",
                                         std::string("JobCertificate.Alias=") + kIntranet});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_FALSE(contains(thumbprints(host->model(), "WebHosting"), kIntranet));
}

// ---- reenrollment -------------------------------------------------------------------------------------

TEST_F(ReplayTest, ReenrollmentRsaIsSignedByTheLocalCaAndLinkedToTheDeviceKey) {
  const CaFiles ca = write_ca(host->dir());
  auto r =
      run("WinCertInventory.json",
          {"--set", "Capability=CertStores.WinCert.Reenrollment", "--set",
           R"(JobProperties={"subjectText":"CN=renew.example.com,O=Example Corp","keyType":"RSA","keySize":"2048"})",
           "--set", R"(SANs={"dns":["renew.example.com","alt.example.com"],"ip":["10.0.0.5"]})", "--ca-cert",
           ca.cert_file, "--ca-key", ca.key_file});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_TRUE(r.doc.contains("Csr") && r.doc.contains("IssuedCertificate")) << r.out;
  auto csr = certstore::parse_csr(r.doc["Csr"].get<std::string>());
  ASSERT_TRUE(csr.ok()) << csr.error().message;
  EXPECT_EQ(csr->key.algorithm, certstore::KeyAlgorithm::kRsa);
  EXPECT_EQ(csr->key.bits, 2048);

  auto issued = certstore::parse_certificate_text(r.doc["IssuedCertificate"].get<std::string>());
  ASSERT_TRUE(issued.ok()) << issued.error().message;
  EXPECT_EQ(issued->subject, "CN=renew.example.com, O=Example Corp");
  EXPECT_EQ(issued->issuer, ca.subject);
  const std::vector<certstore::SubjectAltName> sans = {{certstore::SanType::kDns, "renew.example.com"},
                                                       {certstore::SanType::kDns, "alt.example.com"},
                                                       {certstore::SanType::kIp, "10.0.0.5"}};
  for (const auto& san : sans) {
    EXPECT_NE(std::find(issued->sans.begin(), issued->sans.end(), san), issued->sans.end()) << san.value;
  }

  // The host holds it in My, linked to the key the CSR was made with.
  const json model = host->model();
  bool found = false;
  for (const auto& cert : model["stores"]["My"]) {
    if (cert.value("thumbprint", std::string()) != issued->thumbprint) continue;
    found = true;
    ASSERT_TRUE(cert.contains("key")) << cert.dump();
    const std::string key = cert["key"];
    EXPECT_EQ(model["keys"][key]["pending"], false);
  }
  EXPECT_TRUE(found) << "issued certificate not in My";
  EXPECT_NE(r.message().find(issued->thumbprint), std::string::npos) << r.message();
}

TEST_F(ReplayTest, IisuReenrollmentEccBindsTheIssuedCertificate) {
  const CaFiles ca = write_ca(host->dir());
  auto r = run("WinIISInventory.json",
               {"--set", "Capability=CertStores.IISU.Reenrollment", "--set",
                "CertificateStoreDetails.StorePath=WebHosting", "--set",
                R"(JobProperties={"subjectText":"CN=api.example.com","keyType":"ECC","keySize":"P-256",)"
                R"("SiteName":"Intranet","IPAddress":"*","Port":"9443","Protocol":"https","SniFlag":"0"})",
                "--set", R"(SANs={"dns":["api.example.com"]})", "--ca-cert", ca.cert_file, "--ca-key", ca.key_file});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto issued = certstore::parse_certificate_text(r.doc["IssuedCertificate"].get<std::string>());
  ASSERT_TRUE(issued.ok()) << issued.error().message;
  EXPECT_EQ(issued->key.algorithm, certstore::KeyAlgorithm::kEc);
  EXPECT_EQ(issued->key.curve, "P-256");
  EXPECT_EQ(issued->sans, (std::vector<certstore::SubjectAltName>{{certstore::SanType::kDns, "api.example.com"}}));
  const json model = host->model();
  EXPECT_TRUE(contains(thumbprints(model, "WebHosting"), issued->thumbprint));
  const json binding = find_binding(model, "Intranet", "*:9443:");
  ASSERT_FALSE(binding.is_null()) << model["iis"].dump();
  EXPECT_EQ(binding["certificate_hash"], issued->thumbprint);
}

TEST_F(ReplayTest, ReenrollmentWithoutACaFailsNamingTheOptions) {
  auto r = run("WinCertInventory.json",
               {"--set", "Capability=CertStores.WinCert.Reenrollment", "--set",
                R"(JobProperties={"subjectText":"CN=nobody.example.com","keyType":"RSA","keySize":"2048"})"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(r.result(), 4);
  EXPECT_NE(r.message().find("--ca-cert"), std::string::npos) << r.message();
  EXPECT_TRUE(r.doc.contains("Csr")) << "the device's CSR is still shown";
  EXPECT_FALSE(r.doc.contains("IssuedCertificate"));
}

// ---- connection and input problems --------------------------------------------------------------------

TEST_F(ReplayTest, RefusedConnectionIsAFailureNamingHostAndPort) {
  const unsigned short port = closed_port();
  const std::string where = "127.0.0.1:" + std::to_string(port);
  auto r = run("WinCertInventory.json", {"--set", "CertificateStoreDetails.ClientMachine=" + where});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(r.result(), 4);
  EXPECT_NE(r.message().find(where), std::string::npos) << r.message();
  EXPECT_NE(r.message().find("refused"), std::string::npos) << r.message();
}

TEST_F(ReplayTest, LocalMachineJobFailsClearlyOnThisBuild) {
  auto r = run("WinCertInventory.json", {"--set", "CertificateStoreDetails.ClientMachine=WEB01|LocalMachine"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(r.result(), 4);
  EXPECT_NE(r.message().find("WEB01|LocalMachine"), std::string::npos) << r.message();
  EXPECT_NE(r.message().find("Windows build"), std::string::npos) << r.message();
  EXPECT_EQ(host->counter("connections"), 0u);
}

TEST_F(ReplayTest, StorePropertiesAsShippedFailNamingTheProperty) {
  // WinCertInventory.json as shipped says "WinRm Protocol": "ssh" (PowerShell over SSH).
  auto r = replay(fixture_job("WinCertInventory.json"),
                  {"--set", "CertificateStoreDetails.ClientMachine=" + host->client_machine()}, ntlm_env());
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(r.result(), 4);
  // PowerShell over SSH needs a known-hosts file to check the host key against: refused before connecting.
  EXPECT_NE(r.message().find("PowerShell over SSH"), std::string::npos) << r.message();
  EXPECT_NE(r.message().find("KnownHostsFile"), std::string::npos) << r.message();
  EXPECT_EQ(host->counter("connections"), 0u);

  // Management.json as shipped: the entry parameters are placeholders; refused before connecting.
  auto m = replay(fixture_job("Management.json"),
                  {"--set", "CertificateStoreDetails.ClientMachine=" + host->client_machine()}, ntlm_env());
  EXPECT_EQ(m.exit_code, 2) << m.out << m.err;
  EXPECT_NE(m.message().find("IPAddressGoesHere"), std::string::npos) << m.message();
  EXPECT_EQ(host->counter("connections"), 0u);
}

TEST(ReplayInput, BadJsonIsUnusableInputNamingTheProblem) {
  const fs::path dir = fs::temp_directory_path() / ("wincert-replay-bad-" + random_uuid());
  fs::create_directories(dir);
  std::ofstream(dir / "bad.json") << "\xEF\xBB\xBF{\"CertificateStoreDetails\": {\"ClientMachine\": \"web01\",, }";
  auto r = replay((dir / "bad.json").string(), {});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_NE(r.err.find("bad.json"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not valid JSON"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("byte"), std::string::npos) << r.err;

  auto missing = replay((dir / "nope.json").string(), {});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("cannot read the job file"), std::string::npos) << missing.err;

  auto bad_set = replay(fixture_job("WinCertInventory.json"), {"--set", "NoEqualsSign"});
  EXPECT_EQ(bad_set.exit_code, 2);
  EXPECT_NE(bad_set.err.find("PATH=VALUE"), std::string::npos) << bad_set.err;

  auto unset_env = replay(fixture_job("WinCertInventory.json"), {"--set-env", "ServerPassword=WINCERT_NO_SUCH_VAR"});
  EXPECT_EQ(unset_env.exit_code, 2);
  EXPECT_NE(unset_env.err.find("WINCERT_NO_SUCH_VAR"), std::string::npos) << unset_env.err;

  auto half_ca = replay(fixture_job("WinCertInventory.json"), {"--ca-cert", (dir / "bad.json").string()});
  EXPECT_EQ(half_ca.exit_code, 2);
  EXPECT_NE(half_ca.err.find("--ca-key"), std::string::npos) << half_ca.err;
  std::error_code ec;
  fs::remove_all(dir, ec);
}

// ---- Basic over http ----------------------------------------------------------------------------------

struct ReplayBasicTest : ::testing::Test {
  std::unique_ptr<Host> host;
  void SetUp() override {
    if (!winrm::test::sim_available()) GTEST_SKIP() << "winhost-sim is not built";
    host = std::make_unique<Host>(SimAuth::kBasicUnencrypted);
    ASSERT_TRUE(host->running());
  }
  std::vector<std::string> basic_args() const {
    return {"--set",     "CertificateStoreDetails.ClientMachine=" + host->client_machine(),
            "--set",     "CertificateStoreDetails.Properties.WinRm Protocol=http",
            "--set",     "CertificateStoreDetails.Properties.WinRM Authentication=basic",
            "--set",     std::string("ServerUsername=") + kBasicUser,
            "--set-env", "ServerPassword=WINCERT_TEST_PASSWORD"};
  }
};

TEST_F(ReplayBasicTest, RefusedBeforeConnectingWithoutAllowUnencrypted) {
  auto r = replay(fixture_job("WinCertInventory.json"), basic_args(), ntlm_env());
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(r.result(), 4);
  EXPECT_NE(r.message().find("AllowUnencrypted"), std::string::npos) << r.message();
  EXPECT_EQ(host->counter("connections"), 0u) << "nothing may be sent in clear";
}

TEST_F(ReplayBasicTest, AllowedWhenTheStoreSaysSoThroughAPropertiesOverride) {
  auto r = replay(fixture_job("WinCertInventory.json"),
                  concat(basic_args(), {"--set", "CertificateStoreDetails.Properties.WinRM AllowUnencrypted=true"}),
                  ntlm_env());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.doc["Inventory"].size(), 2u);
}

}  // namespace
}  // namespace wincert::agent::testing
