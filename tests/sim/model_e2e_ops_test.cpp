// The rest of the contract end to end over WinRM (model_e2e_test.cpp has add+bind+renew, CSR and SQL bind):
// host-info, inventory, Overwrite false/true, a DER add, remove with its key, IIS unbind and remove-if-unused
// (refused while bound), SQL list and thumbprint-checked unbind, and the store/site/conflict faults - each
// checked in the model file winhost-sim saved.
#include <algorithm>

#include "model_e2e_fixture.hpp"
#include "tests/support/result_matchers.hpp"

namespace wincert::sim::model::testing {
namespace {

using nlohmann::json;

std::vector<std::string> thumbprints(const json& store) {
  std::vector<std::string> out;
  for (const auto& c : store) out.push_back(c["thumbprint"]);
  return out;
}
bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST_F(ModelE2e, HostInfoInventoryOverwriteDerAddAndRemoveWithKey) {
  certstore::remote::RemoteCertStore store(caller);
  auto info = run(caller->host_info());
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->hostname, saved_model()["hostname"]);
  EXPECT_EQ(info->os_build, saved_model()["os_build"]);

  auto root = run(store.inventory("Root"));
  ASSERT_TRUE(root.ok()) << root.error().message;
  EXPECT_EQ(root->entries.size(), saved_model()["stores"]["Root"].size());
  EXPECT_FALSE(root->entries.at(0).has_private_key);

  auto chain = make_chain("overwrite.example.com", false, "Overwrite test");
  certstore::AddCertificateRequest add;
  add.store = "My";
  add.contents_base64 = Secret(b64(chain.pfx));
  add.password = Secret(chain.password);
  auto first = run(store.add(add));
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->outcome, certstore::AddOutcome::kAdded);
  auto again = run(store.add(add));  // Overwrite false: the host is left alone and says so
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->outcome, certstore::AddOutcome::kAlreadyPresent);
  add.overwrite = true;
  auto replaced = run(store.add(add));
  ASSERT_TRUE(replaced.ok()) << replaced.error().message;
  EXPECT_EQ(replaced->outcome, certstore::AddOutcome::kReplaced);
  json host = saved_model();
  auto my = thumbprints(host["stores"]["My"]);
  EXPECT_EQ(std::count(my.begin(), my.end(), chain.leaf.thumbprint), 1);
  std::string key_id;
  for (const auto& c : host["stores"]["My"]) {
    if (c["thumbprint"] == chain.leaf.thumbprint) {
      key_id = c.value("key", "");
      EXPECT_EQ(c.value("friendly_name", ""), "Overwrite test");
    }
  }
  ASSERT_FALSE(key_id.empty());
  ASSERT_TRUE(host["keys"].contains(key_id));

  // A certificate without a key (DER) into TrustedPeople.
  certstore::AddCertificateRequest der;
  der.store = "TrustedPeople";
  der.contents_base64 = Secret(b64(chain.root.der));
  auto der_added = run(store.add(der));
  ASSERT_TRUE(der_added.ok()) << der_added.error().message;
  EXPECT_FALSE(der_added->has_private_key);
  EXPECT_TRUE(contains(thumbprints(saved_model()["stores"]["TrustedPeople"]), chain.root.thumbprint));

  // Remove with DeleteKey (store property DeletePrivateKeyOnRemove) takes the key container with it; a
  // second remove finds nothing.
  auto removed = run(store.remove({"My", chain.leaf.thumbprint, true}));
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  EXPECT_TRUE(removed->found);
  EXPECT_TRUE(removed->removed);
  EXPECT_TRUE(removed->key_removed);
  host = saved_model();
  EXPECT_FALSE(contains(thumbprints(host["stores"]["My"]), chain.leaf.thumbprint));
  EXPECT_FALSE(host["keys"].contains(key_id));
  auto gone = run(store.remove({"My", chain.leaf.thumbprint}));
  ASSERT_TRUE(gone.ok()) << gone.error().message;
  EXPECT_FALSE(gone->found);
}

TEST_F(ModelE2e, IisRemoveIfUnusedRefusesWhileBoundThenUnbindAndRemove) {
  certstore::remote::RemoteIisBindings iis(caller);
  const std::string www = saved_model()["stores"]["My"][0]["thumbprint"];
  auto kept = run(iis.remove_certificate_if_unused("My", www));
  ASSERT_TRUE(kept.ok()) << kept.error().message;
  EXPECT_FALSE(kept->removed);
  EXPECT_EQ(kept->still_bound_sites, std::vector<std::string>{"Default Web Site (*:443:www.example.com)"});
  EXPECT_TRUE(contains(thumbprints(saved_model()["stores"]["My"]), www));

  const certstore::IisBindingRequest binding{"Default Web Site", "*", 443, "www.example.com", 1};
  auto unbound = run(iis.unbind(binding));
  ASSERT_TRUE(unbound.ok()) << unbound.error().message;
  EXPECT_TRUE(*unbound);
  auto removed = run(iis.remove_certificate_if_unused("My", www));
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  EXPECT_TRUE(removed->removed);
  auto again = run(iis.unbind(binding));
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_FALSE(*again);

  const json host = saved_model();
  EXPECT_FALSE(contains(thumbprints(host["stores"]["My"]), www));
  for (const auto& b : host["iis"]["sites"][0]["bindings"]) EXPECT_NE(b["protocol"], "https") << b.dump();
}

TEST_F(ModelE2e, SqlListAndUnbindOnlyTheBoundThumbprint) {
  certstore::remote::RemoteSqlBindings sql(caller);
  auto instances = run(sql.list_instances());
  ASSERT_TRUE(instances.ok()) << instances.error().message;
  ASSERT_EQ(instances->size(), 2u);
  const std::string bound = (*instances)[0].thumbprint;
  EXPECT_EQ((*instances)[0].name, "MSSQLSERVER");
  EXPECT_EQ((*instances)[0].service_account, "NT Service\\MSSQLSERVER");
  ASSERT_FALSE(bound.empty());

  certstore::SqlBindingRequest request;
  request.instances = {"MSSQLSERVER"};
  request.restart_service = true;
  auto other = run(sql.unbind(request, "0000000000000000000000000000000000000000"));
  ASSERT_TRUE(other.ok()) << other.error().message;
  ASSERT_EQ(other->size(), 1u);
  EXPECT_FALSE((*other)[0].unbound);
  EXPECT_EQ((*other)[0].previous_thumbprint, bound);
  EXPECT_EQ(saved_model()["sql"]["instances"][0]["certificate"], to_lower(bound));

  auto mine = run(sql.unbind(request, bound));
  ASSERT_TRUE(mine.ok()) << mine.error().message;
  ASSERT_EQ(mine->size(), 1u);
  EXPECT_TRUE((*mine)[0].unbound);
  EXPECT_TRUE((*mine)[0].restarted);
  const json host = saved_model();
  EXPECT_EQ(host["sql"]["instances"][0]["certificate"], "");
  EXPECT_EQ(host["sql"]["instances"][0]["restarts"], 1);
}

struct ModelE2eHostFaults : ModelE2e {
  void prepare(json& host) override {
    host["faults"] = {{"store_missing", {"WebHosting"}}, {"site_missing", {"Intranet"}}, {"binding_conflict", true}};
  }
};

TEST_F(ModelE2eHostFaults, MissingStoreMissingSiteAndBindingConflictAreClearAndChangeNothing) {
  certstore::remote::RemoteCertStore store(caller);
  certstore::remote::RemoteIisBindings iis(caller);
  const json before = saved_model();
  auto missing = run(store.inventory("WebHosting"));
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing, ::testing::Not(IsRetryable()));
  // The message names the store and the host: that is what a person reads.
  EXPECT_NE(missing.error().message.find("WebHosting"), std::string::npos) << missing.error().message;
  EXPECT_NE(missing.error().message.find("WEB01"), std::string::npos) << missing.error().message;

  const std::string www = before["stores"]["My"][0]["thumbprint"];
  auto no_site = run(iis.bind(certstore::IisBindingRequest{"Intranet", "*", 9443, "", 0}, www, "My"));
  ASSERT_FALSE(no_site.ok());
  EXPECT_NE(no_site.error().message.find("Intranet"), std::string::npos) << no_site.error().message;

  // Binding Intranet's *:8443: on Default Web Site conflicts at CommitChanges (the fault makes IIS strict).
  auto conflict = run(iis.bind(certstore::IisBindingRequest{"Default Web Site", "*", 8443, "", 0}, www, "My"));
  ASSERT_FALSE(conflict.ok());
  EXPECT_NE(conflict.error().message.find("already used by the site"), std::string::npos) << conflict.error().message;
  // The same binding again on its own site is a replacement, not a conflict.
  auto same_site =
      run(iis.bind(certstore::IisBindingRequest{"Default Web Site", "*", 443, "www.example.com", 1}, www, "My"));
  ASSERT_TRUE(same_site.ok()) << same_site.error().message;
  EXPECT_TRUE(same_site->replaced_existing);
  EXPECT_EQ(saved_model()["iis"]["sites"][0]["bindings"].size(), before["iis"]["sites"][0]["bindings"].size());
}

}  // namespace
}  // namespace wincert::sim::model::testing
