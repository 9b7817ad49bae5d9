// iis-* and sql-* operations against the simulated host: contract examples, SSL flags, IPv6 bindings,
// exact IP:Port:Host replacement, unbind rules, and the IIS/SQL faults.
#include "common/encoding.hpp"
#include "model_test_support.hpp"

namespace wincert::sim::model::testing {
namespace {

using nlohmann::json;

class BindingsTest : public ModelTest {
 protected:
  void SetUp() override {
    ModelTest::SetUp();
    // The contract's certificate (426E96...) with its key in My, and a second one in WebHosting.
    auto golden = contract("cert-add")["args"];
    golden["IisBinding"] = nullptr;
    golden["SqlBinding"] = nullptr;
    golden["ReplacedThumbprint"] = "";
    ok("cert-add", golden);
    other = make_chain("intranet.example.com");
    add(other, "WebHosting");
    data()["iis"]["sites"].push_back(json{{"name", "Intranet"}, {"id", 2}, {"bindings", json::array()}});
    data()["sql"]["instances"].push_back(json{{"name", "SQLEXPRESS"},
                                              {"id", "MSSQL15.SQLEXPRESS"},
                                              {"certificate", ""},
                                              {"service_account", "CORP\\svc-sql$"},
                                              {"service_status", "Running"}});
  }
  json bind(const std::string& site, const std::string& info, int flags, const std::string& thumb,
            const std::string& store_name) {
    return ok("iis-bind", {{"SiteName", site},
                           {"BindingInformation", info},
                           {"SslFlags", flags},
                           {"Thumbprint", thumb},
                           {"StoreName", store_name}});
  }
  json& site_bindings(int index) { return data()["iis"]["sites"][index]["bindings"]; }

  const std::string kThumb = "426E9669376072D8D1461082A6E31AB4023E1857";
  Chain other;
};

TEST_F(BindingsTest, IisBindGoldenContractExampleWithIpv6AndReplacement) {
  auto golden = contract("iis-bind");
  auto out = ok("iis-bind", golden["args"]);
  expect_same_shape(out, golden["output"]);
  EXPECT_EQ(out["Binding"], golden["output"]["Binding"]);
  EXPECT_EQ(out["ReplacedExisting"], false);  // the first time there was nothing to replace
  out = ok("iis-bind", golden["args"]);
  EXPECT_EQ(out["ReplacedExisting"], true);
  ASSERT_EQ(site_bindings(0).size(), 2u);  // http *:80: and the one https binding
  EXPECT_EQ(site_bindings(0)[1]["binding_information"], "[2001:db8::10]:443:www.example.com");

  auto list = ok("iis-list-bindings", json::object());
  expect_same_shape(list, contract("iis-list-bindings")["output"]);
  ASSERT_EQ(list["Bindings"].size(), 1u);
  EXPECT_EQ(list["Bindings"][0], golden["output"]["Binding"]);
}

TEST_F(BindingsTest, IisBindReplacesOnlyTheExactBindingOnThatSite) {
  bind("Default Web Site", "*:443:www.example.com", 1, kThumb, "My");
  bind("Default Web Site", "*:443:shop.example.com", 1, kThumb, "My");
  bind("Intranet", "*:443:www.example.com", 1, other.leaf.thumbprint, "WebHosting");          // other site: allowed
  bind("Default Web Site", "*:443:WWW.EXAMPLE.COM", 1, other.leaf.thumbprint, "WebHosting");  // same, case aside
  auto list = ok("iis-list-bindings", json::object())["Bindings"];
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0]["BindingInformation"], "*:443:shop.example.com");
  EXPECT_EQ(list[0]["CertificateHash"], kThumb);
  EXPECT_EQ(list[1]["BindingInformation"], "*:443:WWW.EXAMPLE.COM");
  EXPECT_EQ(list[1]["CertificateHash"], other.leaf.thumbprint);
  EXPECT_EQ(list[1]["CertificateStoreName"], "WebHosting");
  EXPECT_EQ(list[2]["SiteName"], "Intranet");
  EXPECT_EQ(site_bindings(0)[0]["protocol"], "http");  // the http binding is untouched
}

TEST_F(BindingsTest, IisBindStoresEverySslFlagBitTheOsBuildKnows) {
  auto out = bind("Default Web Site", "192.0.2.10:443:shop.example.com", 65, kThumb, "My");
  EXPECT_EQ(out["Binding"]["SslFlags"], 65);
  EXPECT_EQ(site_bindings(0)[1]["ssl_flags"], 65);
  EXPECT_EQ(ok("iis-list-bindings", json::object())["Bindings"][0]["SslFlags"], 65);
  // Windows Server 2019 has no bit 64 in its IIS schema.
  data()["os_build"] = 17763;
  auto message = fails("iis-bind",
                       {{"SiteName", "Default Web Site"},
                        {"BindingInformation", "*:443:"},
                        {"SslFlags", 65},
                        {"Thumbprint", kThumb},
                        {"StoreName", "My"}},
                       "NotSpecified");
  EXPECT_NE(message.find("sslFlags"), std::string::npos);
  EXPECT_EQ(bind("Default Web Site", "*:443:", 9, kThumb, "My")["Binding"]["SslFlags"], 9);
}

TEST_F(BindingsTest, IisBindErrors) {
  auto golden = contract("iis-bind");
  json args = golden["args"];
  args["SiteName"] = "Nope";
  EXPECT_EQ(fails("iis-bind", args, golden["error"]["output"]["error"]["category"]),
            golden["error"]["output"]["error"]["message"]);
  args = golden["args"];
  args["Thumbprint"] = std::string(40, 'B');
  fails("iis-bind", args, "CertificateNotFound");
  // A certificate without a private key cannot serve https.
  auto bare = make_chain("bare.example.com");
  ok("cert-add", {{"StoreName", "My"}, {"ContentsBase64", b64(bare.leaf.der)}, {"Thumbprint", bare.leaf.thumbprint}});
  args["Thumbprint"] = bare.leaf.thumbprint;
  EXPECT_NE(fails("iis-bind", args, "InvalidArgument").find("no private key"), std::string::npos);
  args = golden["args"];
  args["StoreName"] = "Nope";
  fails("iis-bind", args, "StoreNotFound");
}

TEST_F(BindingsTest, FaultSiteMissingIisNotInstalledAndBindingConflict) {
  auto golden = contract("iis-bind");
  data()["faults"]["site_missing"] = {"Default Web Site"};
  fails("iis-bind", golden["args"], "SiteNotFound");
  EXPECT_EQ(ok("iis-unbind", {{"SiteName", "Default Web Site"}, {"BindingInformation", "*:80:"}})["SiteFound"], false);
  data()["faults"] = json::object();

  data()["faults"]["iis_not_installed"] = true;
  auto list_error = contract("iis-list-bindings")["error"]["output"]["error"];
  EXPECT_EQ(fails("iis-list-bindings", json::object(), list_error["category"]), list_error["message"]);
  fails("iis-bind", golden["args"], "IisNotInstalled");
  fails("iis-unbind", {{"SiteName", "Default Web Site"}, {"BindingInformation", "*:443:"}}, "IisNotInstalled");
  // Without IIS nothing can be bound, so the clean-up removes the certificate.
  EXPECT_EQ(
      ok("iis-remove-cert-if-unused", {{"StoreName", "WebHosting"}, {"Thumbprint", other.leaf.thumbprint}})["Removed"],
      true);
  data()["faults"] = json::object();

  bind("Intranet", "*:443:www.example.com", 1, kThumb, "My");
  data()["faults"]["binding_conflict"] = true;
  auto message = fails("iis-bind",
                       {{"SiteName", "Default Web Site"},
                        {"BindingInformation", "*:443:www.example.com"},
                        {"SslFlags", 1},
                        {"Thumbprint", kThumb},
                        {"StoreName", "My"}},
                       "NotSpecified");
  EXPECT_NE(message.find("'Intranet'"), std::string::npos) << message;
  EXPECT_EQ(site_bindings(0).size(), 1u);                                // nothing committed
  bind("Default Web Site", "*:443:other.example.com", 1, kThumb, "My");  // no conflict: fine
}

TEST_F(BindingsTest, IisUnbindContractAndMissingBindings) {
  bind("Default Web Site", "*:443:www.example.com", 1, kThumb, "My");
  auto golden = contract("iis-unbind");
  auto out = ok("iis-unbind", golden["args"]);
  expect_same_shape(out, golden["output"]);
  EXPECT_EQ(out, golden["output"]);
  EXPECT_EQ(site_bindings(0).size(), 1u);
  EXPECT_EQ(ok("iis-unbind", golden["args"]), (json{{"SiteFound", true}, {"Removed", false}}));
  EXPECT_EQ(ok("iis-unbind", {{"SiteName", "Nope"}, {"BindingInformation", "*:443:"}}),
            (json{{"SiteFound", false}, {"Removed", false}}));
  // Only https bindings are touched.
  EXPECT_EQ(ok("iis-unbind", {{"SiteName", "Default Web Site"}, {"BindingInformation", "*:80:"}})["Removed"], false);
}

TEST_F(BindingsTest, IisRemoveCertIfUnusedKeepsABoundCertificate) {
  bind("Intranet", "*:8443:", 0, other.leaf.thumbprint, "WebHosting");
  auto golden = contract("iis-remove-cert-if-unused");
  auto out =
      ok("iis-remove-cert-if-unused", {{"StoreName", "WebHosting"}, {"Thumbprint", to_lower(other.leaf.thumbprint)}});
  expect_same_shape(out, golden["output"]);
  EXPECT_EQ(out,
            (json{{"Thumbprint", other.leaf.thumbprint}, {"Removed", false}, {"BoundSites", {"Intranet (*:8443:)"}}}));
  EXPECT_EQ(store("WebHosting").size(), 1u);
  ok("iis-unbind", {{"SiteName", "Intranet"}, {"BindingInformation", "*:8443:"}});
  out = ok("iis-remove-cert-if-unused", {{"StoreName", "WebHosting"}, {"Thumbprint", other.leaf.thumbprint}});
  EXPECT_EQ(out["Removed"], true);
  EXPECT_TRUE(store("WebHosting").empty());
}

TEST_F(BindingsTest, SqlListInstancesContract) {
  auto out = ok("sql-list-instances", json::object());
  expect_same_shape(out, contract("sql-list-instances")["output"]);
  ASSERT_EQ(out["Instances"].size(), 2u);
  EXPECT_EQ(out["Instances"][1], (json{{"InstanceName", "SQLEXPRESS"},
                                       {"InstanceId", "MSSQL15.SQLEXPRESS"},
                                       {"Certificate", ""},
                                       {"ServiceName", "MSSQL$SQLEXPRESS"},
                                       {"ServiceAccount", "CORP\\svc-sql$"}}));
  data()["faults"]["sql_not_installed"] = true;
  EXPECT_TRUE(ok("sql-list-instances", json::object())["Instances"].empty());
}

TEST_F(BindingsTest, SqlBindGoldenContractExampleWritesVerifiesGrantsAndRestarts) {
  auto golden = contract("sql-bind");
  auto out = ok("sql-bind", golden["args"]);
  expect_same_shape(out, golden["output"]);
  ASSERT_EQ(out["Instances"].size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(out["Instances"][i]["InstanceName"], golden["output"]["Instances"][i]["InstanceName"]);
    EXPECT_EQ(out["Instances"][i]["Verified"], true);
    EXPECT_EQ(out["Instances"][i]["Restarted"], true);
    EXPECT_TRUE(
        istarts_with(out["Instances"][i]["KeyFile"].get<std::string>(), "C:\\ProgramData\\Microsoft\\Crypto\\Keys\\"));
    EXPECT_EQ(data()["sql"]["instances"][i]["certificate"], "426e9669376072d8d1461082a6e31ab4023e1857");
    EXPECT_EQ(data()["sql"]["instances"][i]["restarts"], 1);
    EXPECT_EQ(data()["sql"]["instances"][i]["service_status"], "Running");
  }
  const auto& key = data()["keys"][store("My")[0]["key"].get<std::string>()];
  EXPECT_EQ(key["acl"], json::array({"NT Service\\MSSQLSERVER", "CORP\\svc-sql$"}));
  auto listed = ok("sql-list-instances", json::object());
  EXPECT_EQ(listed["Instances"][0]["Certificate"], "426e9669376072d8d1461082a6e31ab4023e1857");

  auto error = golden["error"]["output"]["error"];
  json args = golden["args"];
  args["InstanceNames"] = {"NOPE"};
  EXPECT_EQ(fails("sql-bind", args, error["category"]), error["message"]);
  args = golden["args"];
  args["Thumbprint"] = std::string(40, 'C');
  fails("sql-bind", args, "CertificateNotFound");
}

TEST_F(BindingsTest, SqlBindForLocalSystemGrantsNothingAndCapiKeysLiveInMachineKeys) {
  data()["sql"]["instances"][0]["service_account"] = "LocalSystem";
  auto chain = make_chain("capi.example.com");
  add(chain, "My", false, "Microsoft Enhanced RSA and AES Cryptographic Provider");
  auto out =
      ok("sql-bind", {{"InstanceNames", "MSSQLSERVER"}, {"Thumbprint", chain.leaf.thumbprint}, {"StoreName", "My"}});
  EXPECT_TRUE(istarts_with(out["Instances"][0]["KeyFile"].get<std::string>(),
                           "C:\\ProgramData\\Microsoft\\Crypto\\RSA\\MachineKeys\\"));
  EXPECT_EQ(out["Instances"][0]["Restarted"], false);
  for (const auto& cert : store("My")) {
    if (cert["thumbprint"] == chain.leaf.thumbprint) {
      EXPECT_TRUE(data()["keys"][cert["key"].get<std::string>()]["acl"].empty());
    }
  }
}

TEST_F(BindingsTest, SqlUnbindOnlyWhereTheThumbprintMatches) {
  auto golden = contract("sql-unbind");
  data()["sql"]["instances"][0]["certificate"] = "426e9669376072d8d1461082a6e31ab4023e1857";
  data()["sql"]["instances"][1]["certificate"] = "3a95fce68019e31a67985e09377e5ad7976f8fd9";
  auto out = ok("sql-unbind", golden["args"]);
  expect_same_shape(out, golden["output"]);
  EXPECT_EQ(out, golden["output"]);
  EXPECT_EQ(data()["sql"]["instances"][0]["certificate"], "");
  EXPECT_EQ(data()["sql"]["instances"][1]["certificate"], "3a95fce68019e31a67985e09377e5ad7976f8fd9");
  fails("sql-unbind", {{"InstanceNames", {"NOPE"}}, {"Thumbprint", kThumb}}, "InstanceNotFound");
}

TEST_F(BindingsTest, SqlRestartAndTheRestartFault) {
  auto golden = contract("sql-restart");
  auto out = ok("sql-restart", golden["args"]);
  expect_same_shape(out, golden["output"]);
  EXPECT_EQ(out, golden["output"]);
  EXPECT_EQ(data()["sql"]["instances"][0]["restarts"], 1);

  data()["faults"]["sql_restart_fails"] = true;
  auto error = golden["error"]["output"]["error"];
  EXPECT_EQ(fails("sql-restart", golden["args"], error["category"]), error["message"]);
  EXPECT_EQ(data()["sql"]["instances"][0]["service_status"], "Stopped");
  // Only the named instance fails when the fault lists instances.
  data()["faults"]["sql_restart_fails"] = {"SQLEXPRESS"};
  ok("sql-restart", golden["args"]);
  auto message = fails("sql-restart", {{"InstanceNames", {"SQLEXPRESS"}}, {"TimeoutSeconds", 5}}, "Timeout");
  EXPECT_EQ(message, "the service MSSQL$SQLEXPRESS did not restart within 5 seconds");

  // sql-bind writes the value before the restart fails: no rollback, as on Windows.
  data()["faults"]["sql_restart_fails"] = true;
  fails("sql-bind", contract("sql-bind")["args"], "Timeout");
  EXPECT_EQ(data()["sql"]["instances"][0]["certificate"], "426e9669376072d8d1461082a6e31ab4023e1857");
}

TEST_F(BindingsTest, CertAddBindsSqlAndRestartFailureFailsTheCall) {
  auto chain = make_chain("sqladd.example.com");
  data()["faults"]["sql_restart_fails"] = {"MSSQLSERVER"};
  json args = {{"StoreName", "My"},
               {"ContentsBase64", b64(chain.pfx)},
               {"PfxPassword", chain.password},
               {"Thumbprint", chain.leaf.thumbprint},
               {"SqlBinding", {{"InstanceNames", {"SQLEXPRESS", "MSSQLSERVER"}}, {"RestartService", true}}}};
  fails("cert-add", args, "Timeout");
  EXPECT_EQ(data()["sql"]["instances"][1]["certificate"], to_lower(chain.leaf.thumbprint));
  data()["faults"] = json::object();
  args["Overwrite"] = true;
  auto out = ok("cert-add", args);
  EXPECT_EQ(out["Status"], "Replaced");
  ASSERT_EQ(out["SqlBindings"].size(), 2u);
  EXPECT_EQ(out["SqlBindings"][1]["Restarted"], true);
  EXPECT_EQ(out["Binding"], nullptr);
  EXPECT_EQ(out["Replaced"], nullptr);
}

}  // namespace
}  // namespace wincert::sim::model::testing
