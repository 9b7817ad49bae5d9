// End-to-end through the real WinRM path (model_e2e_fixture.hpp): a renewal with IIS binding and clean-up in
// one call, an IPv6 binding, on-device ECC key generation and acceptance, SQL binding, and faults.
#include <algorithm>

#include "model_e2e_fixture.hpp"
#include "tests/support/result_matchers.hpp"

namespace wincert::sim::model::testing {
namespace {

using nlohmann::json;

TEST_F(ModelE2e, AddBindRenewCsrAndSqlThroughWinrm) {
  certstore::remote::RemoteCertStore store(caller);
  certstore::remote::RemoteIisBindings iis(caller);
  certstore::remote::RemoteSqlBindings sql(caller);
  const json example = saved_model();
  const std::string www = example["stores"]["My"][0]["thumbprint"];

  auto inventory = run(store.inventory("My"));
  ASSERT_TRUE(inventory.ok()) << inventory.error().message;
  ASSERT_EQ(inventory->entries.size(), 2u);
  EXPECT_EQ(inventory->entries[0].thumbprint, www);
  EXPECT_TRUE(inventory->entries[0].has_private_key);
  EXPECT_EQ(inventory->entries[1].provider_name, "Microsoft Enhanced RSA and AES Cryptographic Provider");

  // Renewal of www: new PFX, bound to the same IIS binding, the old certificate cleaned up - one call.
  auto chain = make_chain("www.example.com");
  certstore::AddCertificateRequest add;
  add.store = "My";
  add.contents_base64 = Secret(b64(chain.pfx));
  add.password = Secret(chain.password);
  add.add_chain_to_ca_store = true;
  add.private_key_required = true;
  add.steps.push_back(
      certstore::IisBindingStep{certstore::IisBindingRequest{"Default Web Site", "*", 443, "www.example.com", 1}, www});
  auto added = run(store.add(add));
  ASSERT_TRUE(added.ok()) << added.error().message;
  EXPECT_EQ(added->thumbprint, chain.leaf.thumbprint);
  EXPECT_EQ(added->outcome, certstore::AddOutcome::kAdded);
  EXPECT_TRUE(added->has_private_key);
  const auto* iis_outcome = added->step<certstore::IisBindingOutcome>();
  ASSERT_NE(iis_outcome, nullptr);
  EXPECT_EQ(iis_outcome->binding.thumbprint, chain.leaf.thumbprint);
  ASSERT_TRUE(iis_outcome->replaced.has_value());
  EXPECT_TRUE(iis_outcome->replaced->removed);  // its only binding now points at the new certificate
  EXPECT_EQ(added->chain_added, std::vector<std::string>{chain.issuing.thumbprint});

  // A second binding with IPv6 and SSL flags 65, through iis-bind.
  auto bound = run(
      iis.bind(certstore::IisBindingRequest{"Intranet", "2001:db8::10", 8443, "", 65}, chain.leaf.thumbprint, "My"));
  ASSERT_TRUE(bound.ok()) << bound.error().message;
  auto listed = run(iis.list());
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  int with_new = 0;
  for (const auto& b : *listed) with_new += b.thumbprint == chain.leaf.thumbprint ? 1 : 0;
  EXPECT_EQ(with_new, 2);

  // On-device key generation: ECC P-256 with an escaped comma, issued by a CA, accepted into WebHosting.
  certstore::CsrRequest csr;
  csr.store = "WebHosting";
  csr.subject = "CN=api.example.com,O=Keyfactor\\, Inc,C=US";
  csr.key_type = "ECC";
  csr.key_size = "P-256";
  csr.sans = {{certstore::SanType::kDns, "api.example.com"}, {certstore::SanType::kIp, "2001:db8::21"}};
  auto created = run(store.create_csr(csr));
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_TRUE(created->info.signature_valid);
  EXPECT_EQ(created->info.subject, "CN=api.example.com, O=\"Keyfactor, Inc\", C=US");
  auto issued = issue_from_csr(created->info.der, chain.issuing);
  auto installed = run(store.install_issued(certstore::InstallIssuedRequest{"WebHosting", issued}));
  ASSERT_TRUE(installed.ok()) << installed.error().message;
  EXPECT_TRUE(installed->has_private_key);

  // SQL Server: bind the renewed certificate to SQLEXPRESS and restart it.
  auto sql_bound = run(sql.bind(certstore::SqlBindingRequest{{"SQLEXPRESS"}, true}, chain.leaf.thumbprint, "My"));
  ASSERT_TRUE(sql_bound.ok()) << sql_bound.error().message;
  ASSERT_EQ(sql_bound->size(), 1u);
  EXPECT_TRUE((*sql_bound)[0].verified);
  EXPECT_TRUE((*sql_bound)[0].restarted);

  // Errors come back with the script's category and message.
  auto missing = run(store.inventory("Nope"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("LocalMachine\\Nope does not exist"), std::string::npos)
      << missing.error().message;

  // What the host holds now, from the file winhost-sim saved.
  const json host = saved_model();
  std::vector<std::string> my;
  for (const auto& c : host["stores"]["My"]) my.push_back(c["thumbprint"]);
  EXPECT_EQ(std::count(my.begin(), my.end(), www), 0);
  EXPECT_EQ(std::count(my.begin(), my.end(), chain.leaf.thumbprint), 1);
  ASSERT_EQ(host["stores"]["WebHosting"].size(), 2u);
  EXPECT_EQ(host["stores"]["WebHosting"][1]["thumbprint"], installed->thumbprint);
  const std::string csr_key = host["stores"]["WebHosting"][1]["key"];
  EXPECT_EQ(host["keys"][csr_key]["pending"], false);
  EXPECT_EQ(host["keys"][csr_key]["provider"], created->provider_name);
  bool ipv6 = false;
  for (const auto& b : host["iis"]["sites"][1]["bindings"]) {
    ipv6 = ipv6 || (b["binding_information"] == "[2001:db8::10]:8443:" && b["ssl_flags"] == 65);
  }
  EXPECT_TRUE(ipv6) << host["iis"].dump();
  EXPECT_EQ(host["sql"]["instances"][1]["certificate"], to_lower(chain.leaf.thumbprint));
  EXPECT_EQ(host["sql"]["instances"][1]["restarts"], 1);
  bool found_ca = false;
  for (const auto& c : host["stores"]["CA"]) found_ca = found_ca || c["thumbprint"] == chain.issuing.thumbprint;
  EXPECT_TRUE(found_ca);
  // The PFX password never reached the sim's log.
  EXPECT_EQ(sim->log().find(chain.password), std::string::npos);
}

// Faults written into the model file before the host starts reach the agent as the scripts' errors.
struct ModelE2eFaults : ModelE2e {
  void prepare(json& host) override {
    host["faults"] = {{"sql_restart_fails", {"MSSQLSERVER"}},
                      {"access_denied_stores", {"WebHosting"}},
                      {"provider_missing", {"Microsoft Platform Crypto Provider"}}};
  }
};

TEST_F(ModelE2eFaults, RestartTimeoutIsTransientAccessDeniedAndMissingProviderArePermanent) {
  certstore::remote::RemoteCertStore store(caller);
  certstore::remote::RemoteSqlBindings sql(caller);
  auto restarted = run(sql.restart({"MSSQLSERVER"}));
  ASSERT_FALSE(restarted.ok());
  EXPECT_THAT(restarted, IsRetryable());
  EXPECT_NE(restarted.error().message.find("did not restart within"), std::string::npos) << restarted.error().message;

  auto chain = make_chain("denied.example.com");
  certstore::AddCertificateRequest add;
  add.store = "WebHosting";
  add.contents_base64 = Secret(b64(chain.pfx));
  add.password = Secret(chain.password);
  auto denied = run(store.add(add));
  ASSERT_FALSE(denied.ok());
  EXPECT_THAT(denied, ::testing::Not(IsRetryable()));
  EXPECT_NE(denied.error().message.find("Access is denied"), std::string::npos) << denied.error().message;
  EXPECT_EQ(denied.error().message.find(chain.password), std::string::npos);

  add.store = "My";
  add.provider_name = "Microsoft Platform Crypto Provider";
  auto no_provider = run(store.add(add));
  ASSERT_FALSE(no_provider.ok());
  EXPECT_NE(no_provider.error().message.find("is not installed on this host"), std::string::npos)
      << no_provider.error().message;
  // Nothing was imported anywhere.
  EXPECT_EQ(saved_model()["stores"]["My"].size(), 2u);
}

}  // namespace
}  // namespace wincert::sim::model::testing
