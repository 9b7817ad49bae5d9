// store-inventory, cert-add, cert-remove against the simulated host; the default host; faults; load/save.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "certstore/x509.hpp"
#include "common/encoding.hpp"
#include "model_test_support.hpp"
#include "sim/winhost/model/crypto.hpp"
#include "sim/winhost/programs.hpp"

namespace wincert::sim::model::testing {
namespace {

using nlohmann::json;

TEST_F(ModelTest, DefaultHostIsWindowsServer2022WithIisSqlAndStores) {
  EXPECT_EQ(ok("host-info", json::object())["OsBuild"], 20348);
  EXPECT_TRUE(store("My").empty());
  EXPECT_TRUE(store("WebHosting").empty());
  ASSERT_EQ(store("Root").size(), 2u);
  auto root = ok("store-inventory", {{"StoreName", "Root"}});
  ASSERT_EQ(root["Certificates"].size(), 2u);
  for (const auto& c : root["Certificates"]) {
    auto info = certstore::parse_certificate_text(c["Base64"].get<std::string>());
    ASSERT_TRUE(info) << info.error().message;
    EXPECT_TRUE(info->self_signed) << info->subject;
    EXPECT_FALSE(c["HasPrivateKey"].get<bool>());
  }
  auto sites = data()["iis"]["sites"];
  ASSERT_EQ(sites.size(), 1u);
  EXPECT_EQ(sites[0]["name"], "Default Web Site");
  EXPECT_EQ(sites[0]["bindings"][0]["protocol"], "http");
  EXPECT_EQ(sites[0]["bindings"][0]["binding_information"], "*:80:");
  EXPECT_TRUE(ok("iis-list-bindings", json::object())["Bindings"].empty());  // only https bindings are listed
  auto sql = ok("sql-list-instances", json::object());
  ASSERT_EQ(sql["Instances"].size(), 1u);
  EXPECT_EQ(sql["Instances"][0]["InstanceName"], "MSSQLSERVER");
  EXPECT_EQ(sql["Instances"][0]["ServiceName"], "MSSQLSERVER");
  EXPECT_EQ(sql["Instances"][0]["ServiceAccount"], "NT Service\\MSSQLSERVER");
  bool ksp = false, csp = false;
  for (const auto& p : data()["providers"]) {
    ksp = ksp || p["name"] == "Microsoft Software Key Storage Provider";
    csp = csp || p["name"] == "Microsoft Enhanced RSA and AES Cryptographic Provider";
  }
  EXPECT_TRUE(ksp && csp);
}

TEST_F(ModelTest, InstallKeepsWhatTheModelAlreadyHas) {
  data()["stores"] = {{"Custom", json::array()}};
  install(*model_);
  EXPECT_TRUE(data()["stores"].contains("Custom"));
  EXPECT_FALSE(data()["stores"].contains("My"));
  fails("store-inventory", {{"StoreName", "My"}}, "StoreNotFound");
}

TEST_F(ModelTest, StoreInventoryMatchesContractShapeAndErrors) {
  auto chain = make_chain("inv.example.com", false, "Zertifikat für Prüfung – 証明書");
  add(chain, "My");
  auto out = ok("store-inventory", {{"StoreName", "My"}});
  expect_same_shape(out, contract("store-inventory")["output"]);
  ASSERT_EQ(out["Certificates"].size(), 1u);
  const auto& c = out["Certificates"][0];
  EXPECT_EQ(base64_decode(c["Base64"].get<std::string>()).value(), chain.leaf.der);
  EXPECT_TRUE(c["HasPrivateKey"].get<bool>());
  EXPECT_EQ(c["ProviderName"], "Microsoft Software Key Storage Provider");
  EXPECT_EQ(c["FriendlyName"], "Zertifikat für Prüfung – 証明書");
  // Store names are case-insensitive, as Cert:\LocalMachine is.
  EXPECT_EQ(ok("store-inventory", {{"StoreName", "my"}})["Certificates"].size(), 1u);

  auto expected = contract("store-inventory")["error"]["output"]["error"];
  auto message = fails("store-inventory", {{"StoreName", "Nope"}}, expected["category"]);
  EXPECT_EQ(message, expected["message"]);
  EXPECT_EQ(fails("store-inventory", json::object(), "InvalidArgument"), "StoreName is empty");
}

TEST_F(ModelTest, CertAddGoldenContractExample) {
  auto golden = contract("cert-add");
  auto out = ok("cert-add", golden["args"]);
  expect_same_shape(out, golden["output"]);
  EXPECT_EQ(out["Thumbprint"], golden["output"]["Thumbprint"]);
  EXPECT_EQ(out["Status"], "Added");
  EXPECT_EQ(out["HasPrivateKey"], true);
  EXPECT_EQ(out["ProviderName"], "Microsoft Software Key Storage Provider");
  EXPECT_EQ(out["ChainAdded"], golden["output"]["ChainAdded"]);  // the issuing CA, not the self-signed root
  EXPECT_EQ(out["Binding"], golden["output"]["Binding"]);
  ASSERT_EQ(out["SqlBindings"].size(), 1u);
  EXPECT_EQ(out["SqlBindings"][0]["InstanceName"], "MSSQLSERVER");
  EXPECT_EQ(out["SqlBindings"][0]["Verified"], true);
  EXPECT_EQ(out["SqlBindings"][0]["Restarted"], false);
  EXPECT_TRUE(
      istarts_with(out["SqlBindings"][0]["KeyFile"].get<std::string>(), "C:\\ProgramData\\Microsoft\\Crypto\\Keys\\"));
  EXPECT_EQ(out["Replaced"], (json{{"Thumbprint", "3A95FCE68019E31A67985E09377E5AD7976F8FD9"},
                                   {"Removed", false},
                                   {"BoundSites", json::array()}}));

  // The host afterwards: certificate + key container in My, intermediate in CA, IIS binding, SQL value, ACL.
  ASSERT_EQ(store("My").size(), 1u);
  const auto& cert = store("My")[0];
  EXPECT_EQ(cert["thumbprint"], "426E9669376072D8D1461082A6E31AB4023E1857");
  EXPECT_EQ(cert["friendly_name"], "www.example.com");
  const std::string container = cert["key"];
  const auto& key = data()["keys"][container];
  EXPECT_EQ(key["provider"], "Microsoft Software Key Storage Provider");
  EXPECT_EQ(key["pending"], false);
  EXPECT_EQ(private_key_public_key(key["private_key_pem"].get<std::string>()),
            certificate_public_key(base64_decode(cert["der"].get<std::string>()).value()));
  ASSERT_EQ(store("CA").size(), 1u);
  EXPECT_EQ(store("CA")[0]["thumbprint"], "C5AABCF0EA2FC72F80AD8112EDAEFD6D82B8222F");
  EXPECT_EQ(store("Root").size(), 2u);  // the PFX's root is not trusted on our behalf
  const auto& bindings = data()["iis"]["sites"][0]["bindings"];
  ASSERT_EQ(bindings.size(), 2u);
  EXPECT_EQ(bindings[1]["binding_information"], "[2001:db8::10]:443:www.example.com");
  EXPECT_EQ(bindings[1]["certificate_hash"], "426E9669376072D8D1461082A6E31AB4023E1857");
  EXPECT_EQ(bindings[1]["ssl_flags"], 1);
  const auto& sql = data()["sql"]["instances"][0];
  EXPECT_EQ(sql["certificate"], "426e9669376072d8d1461082a6e31ab4023e1857");
  EXPECT_EQ(key["acl"], json::array({"NT Service\\MSSQLSERVER"}));
}

TEST_F(ModelTest, CertAddOverwriteFalseKeepsTheCertificateTrueReplacesIt) {
  auto chain = make_chain("ow.example.com");
  EXPECT_EQ(add(chain, "My")["Status"], "Added");
  const std::string first_key = store("My")[0]["key"];
  auto again = add(chain, "My", /*overwrite=*/false);
  EXPECT_EQ(again["Status"], "AlreadyPresent");
  EXPECT_EQ(again["HasPrivateKey"], true);
  EXPECT_EQ(store("My").size(), 1u);
  EXPECT_EQ(store("My")[0]["key"], first_key);
  EXPECT_EQ(data()["keys"].size(), 1u);
  auto replaced = add(chain, "My", /*overwrite=*/true);
  EXPECT_EQ(replaced["Status"], "Replaced");
  EXPECT_EQ(store("My").size(), 1u);
  EXPECT_NE(store("My")[0]["key"], first_key);  // a fresh key container, like a new PFX import
}

TEST_F(ModelTest, CertAddWrongPasswordIsPfxInvalidAndNeverEchoesThePassword) {
  auto chain = make_chain("pw.example.com");
  json args = {{"StoreName", "My"},
               {"ContentsBase64", b64(chain.pfx)},
               {"PfxPassword", "not-the-password"},
               {"Thumbprint", chain.leaf.thumbprint},
               {"Overwrite", false},
               {"ProviderName", ""}};
  auto message = fails("cert-add", args, "PfxInvalid");
  EXPECT_NE(message.find("The specified network password is not correct"), std::string::npos) << message;
  EXPECT_EQ(message.find("not-the-password"), std::string::npos);
  EXPECT_TRUE(store("My").empty());
  // With a provider the import goes through certutil, which reports its own failure.
  args["ProviderName"] = "Microsoft Software Key Storage Provider";
  message = fails("cert-add", args, "CommandFailed");
  EXPECT_NE(message.find("ERROR_INVALID_PASSWORD"), std::string::npos) << message;
  EXPECT_EQ(message.find("not-the-password"), std::string::npos);
  EXPECT_TRUE(data()["keys"].empty());
  // Garbage is not a PFX either.
  args["ProviderName"] = "";
  args["ContentsBase64"] = b64("this is not a certificate");
  fails("cert-add", args, "PfxInvalid");
  args["ContentsBase64"] = "%%%";
  fails("cert-add", args, "NotSpecified");
}

TEST_F(ModelTest, CertAddProviderNameIsValidatedAndRecorded) {
  auto chain = make_chain("csp.example.com");
  auto golden = contract("cert-add")["error"]["output"]["error"];
  json args = {{"StoreName", "My"},
               {"ContentsBase64", b64(chain.pfx)},
               {"PfxPassword", chain.password},
               {"Thumbprint", chain.leaf.thumbprint},
               {"ProviderName", "Contoso HSM KSP"}};
  EXPECT_EQ(fails("cert-add", args, golden["category"]), golden["message"]);
  EXPECT_TRUE(store("My").empty());

  args["ProviderName"] = "Microsoft Enhanced RSA and AES Cryptographic Provider";
  auto out = ok("cert-add", args);
  EXPECT_EQ(out["ProviderName"], "Microsoft Enhanced RSA and AES Cryptographic Provider");
  const auto& key = data()["keys"][store("My")[0]["key"].get<std::string>()];
  EXPECT_EQ(key["type"], "CSP");

  // A CSP cannot hold an ECC key: certutil fails.
  auto ec = make_chain("ec.example.com", /*ec_leaf=*/true);
  args["ContentsBase64"] = b64(ec.pfx);
  args["PfxPassword"] = ec.password;
  args["Thumbprint"] = ec.leaf.thumbprint;
  auto message = fails("cert-add", args, "CommandFailed");
  EXPECT_NE(message.find("NTE_BAD_ALGID"), std::string::npos) << message;
  args["ProviderName"] = "Microsoft Software Key Storage Provider";
  EXPECT_EQ(ok("cert-add", args)["ProviderName"], "Microsoft Software Key Storage Provider");
}

TEST_F(ModelTest, FaultProviderMissing) {
  data()["faults"]["provider_missing"] = {"Microsoft Software Key Storage Provider"};
  auto chain = make_chain("pm.example.com");
  json args = {{"StoreName", "My"},
               {"ContentsBase64", b64(chain.pfx)},
               {"PfxPassword", chain.password},
               {"Thumbprint", chain.leaf.thumbprint},
               {"ProviderName", "Microsoft Software Key Storage Provider"}};
  fails("cert-add", args, "ProviderNotFound");
  fails("csr-create",
        {{"Subject", "CN=x"},
         {"ProviderName", "Microsoft Software Key Storage Provider"},
         {"KeyAlgorithm", "RSA"},
         {"KeyLength", 2048}},
        "ProviderNotFound");
}

TEST_F(ModelTest, CertAddDerWithoutKeyAndThumbprintChecks) {
  auto chain = make_chain("der.example.com");
  json args = {{"StoreName", "TrustedPeople"},
               {"ContentsBase64", b64(chain.leaf.der)},
               {"PfxPassword", ""},
               {"Thumbprint", to_lower(chain.leaf.thumbprint)},
               {"ProviderName", ""}};
  auto out = ok("cert-add", args);
  EXPECT_EQ(out["Thumbprint"], chain.leaf.thumbprint);
  EXPECT_EQ(out["HasPrivateKey"], false);
  EXPECT_EQ(out["ProviderName"], "");
  EXPECT_FALSE(store("TrustedPeople")[0].contains("key"));
  // A PFX that does not hold the named certificate.
  args["ContentsBase64"] = b64(chain.pfx);
  args["PfxPassword"] = chain.password;
  args["Thumbprint"] = std::string(40, 'A');
  EXPECT_NE(fails("cert-add", args, "PfxInvalid").find("does not contain the certificate"), std::string::npos);
  args["Thumbprint"] = "";
  fails("cert-add", args, "InvalidArgument");
}

TEST_F(ModelTest, FaultStoreMissingAndAccessDenied) {
  auto chain = make_chain("fault.example.com");
  data()["faults"]["store_missing"] = {"WebHosting"};
  fails("store-inventory", {{"StoreName", "WebHosting"}}, "StoreNotFound");
  json args = {{"StoreName", "WebHosting"},
               {"ContentsBase64", b64(chain.pfx)},
               {"PfxPassword", chain.password},
               {"Thumbprint", chain.leaf.thumbprint}};
  fails("cert-add", args, "StoreNotFound");

  data()["faults"] = {{"access_denied_stores", {"My"}}};
  args["StoreName"] = "My";
  auto message = fails("cert-add", args, "NotSpecified");
  EXPECT_NE(message.find("Access is denied"), std::string::npos);
  EXPECT_TRUE(store("My").empty());
  EXPECT_TRUE(ok("store-inventory", {{"StoreName", "My"}})["Certificates"].empty());  // reading still works
  fails("cert-remove", {{"StoreName", "My"}, {"Thumbprint", chain.leaf.thumbprint}}, "NotSpecified");
}

TEST_F(ModelTest, CertRemoveKeepsTheKeyUnlessDeleteKeyIsTrue) {
  // The extension's X509Store.Remove keeps the key; an HSM key may be shared with other servers.
  auto chain = make_chain("keep.example.com");
  for (const json& args : {json{{"StoreName", "My"}, {"Thumbprint", chain.leaf.thumbprint}},
                           json{{"StoreName", "My"}, {"Thumbprint", chain.leaf.thumbprint}, {"DeleteKey", false}}}) {
    SCOPED_TRACE(args.dump());
    add(chain, "My");
    const std::string container = store("My")[0]["key"];
    auto out = ok("cert-remove", args);
    expect_same_shape(out, contract("cert-remove")["output"]);
    EXPECT_EQ(out,
              (json{{"Thumbprint", chain.leaf.thumbprint}, {"Found", true}, {"Removed", true}, {"KeyRemoved", false}}));
    EXPECT_TRUE(store("My").empty());
    EXPECT_TRUE(data()["keys"].contains(container)) << "the key container must stay";
  }
}

TEST_F(ModelTest, CertRemoveContractAndKeyRemoval) {
  auto chain = make_chain("rm.example.com");
  add(chain, "My");
  const std::string container = store("My")[0]["key"];
  auto out =
      ok("cert-remove", {{"StoreName", "My"}, {"Thumbprint", to_lower(chain.leaf.thumbprint)}, {"DeleteKey", true}});
  expect_same_shape(out, contract("cert-remove")["output"]);
  EXPECT_EQ(out,
            (json{{"Thumbprint", chain.leaf.thumbprint}, {"Found", true}, {"Removed", true}, {"KeyRemoved", true}}));
  EXPECT_TRUE(store("My").empty());
  EXPECT_FALSE(data()["keys"].contains(container));

  out = ok("cert-remove", {{"StoreName", "My"}, {"Thumbprint", chain.leaf.thumbprint}});
  EXPECT_EQ(out["Found"], false);
  EXPECT_EQ(out["Removed"], false);
  auto golden = contract("cert-remove")["error"]["output"]["error"];
  EXPECT_EQ(fails("cert-remove", {{"StoreName", "Nope"}, {"Thumbprint", chain.leaf.thumbprint}}, golden["category"]),
            golden["message"]);
}

TEST_F(ModelTest, CertRemoveKeepsAKeyAnotherCertificateUses) {
  auto chain = make_chain("shared.example.com");
  add(chain, "My");
  const std::string container = store("My")[0]["key"];
  // A renewed certificate on the same key, in another store.
  auto renewed = make_cert("shared.example.com", chain.leaf.key, &chain.issuing, false);
  store("WebHosting").push_back(json{{"der", b64(renewed.der)}, {"key", container}});
  auto out = ok("cert-remove", {{"StoreName", "My"}, {"Thumbprint", chain.leaf.thumbprint}, {"DeleteKey", true}});
  EXPECT_EQ(out["Removed"], true);
  EXPECT_EQ(out["KeyRemoved"], false);
  EXPECT_TRUE(data()["keys"].contains(container));
  auto inv = ok("store-inventory", {{"StoreName", "WebHosting"}});
  EXPECT_EQ(inv["Certificates"][0]["HasPrivateKey"], true);
  EXPECT_EQ(inv["Certificates"][0]["ProviderName"], "Microsoft Software Key Storage Provider");
}

TEST_F(ModelTest, CertRemoveOfABoundCertificateRemovesItAsTheScriptDoes) {
  // cert-remove does not look at IIS (the agent unbinds first; iis-remove-cert-if-unused is the careful one).
  auto chain = make_chain("bound.example.com");
  add(chain, "My");
  ok("iis-bind", {{"SiteName", "Default Web Site"},
                  {"BindingInformation", "*:443:"},
                  {"SslFlags", 0},
                  {"Thumbprint", chain.leaf.thumbprint},
                  {"StoreName", "My"}});
  EXPECT_EQ(ok("cert-remove", {{"StoreName", "My"}, {"Thumbprint", chain.leaf.thumbprint}})["Removed"], true);
  EXPECT_EQ(ok("iis-list-bindings", json::object())["Bindings"][0]["CertificateHash"], chain.leaf.thumbprint);
}

TEST_F(ModelTest, CertAddReplacedCertificateIsRemovedOnlyWhenUnbound) {
  auto old_chain = make_chain("old.example.com");
  auto new_chain = make_chain("new.example.com");
  add(old_chain, "WebHosting");
  data()["iis"]["sites"].push_back(json{{"name", "Intranet"}, {"id", 2}, {"bindings", json::array()}});
  ok("iis-bind", {{"SiteName", "Intranet"},
                  {"BindingInformation", "*:8443:"},
                  {"SslFlags", 0},
                  {"Thumbprint", old_chain.leaf.thumbprint},
                  {"StoreName", "WebHosting"}});
  json args = {{"StoreName", "WebHosting"},
               {"ContentsBase64", b64(new_chain.pfx)},
               {"PfxPassword", new_chain.password},
               {"Thumbprint", new_chain.leaf.thumbprint},
               {"IisBinding", {{"SiteName", "Default Web Site"}, {"BindingInformation", "*:443:"}, {"SslFlags", 0}}},
               {"ReplacedThumbprint", to_lower(old_chain.leaf.thumbprint)}};
  auto out = ok("cert-add", args);
  EXPECT_EQ(
      out["Replaced"],
      (json{{"Thumbprint", old_chain.leaf.thumbprint}, {"Removed", false}, {"BoundSites", {"Intranet (*:8443:)"}}}));
  EXPECT_EQ(store("WebHosting").size(), 2u);

  // Once Intranet moves to the new certificate, the old one goes.
  ok("iis-bind", {{"SiteName", "Intranet"},
                  {"BindingInformation", "*:8443:"},
                  {"SslFlags", 0},
                  {"Thumbprint", new_chain.leaf.thumbprint},
                  {"StoreName", "WebHosting"}});
  args["Overwrite"] = false;
  out = ok("cert-add", args);
  EXPECT_EQ(out["Status"], "AlreadyPresent");
  EXPECT_EQ(out["Replaced"]["Removed"], true);
  EXPECT_TRUE(out["Replaced"]["BoundSites"].empty());
  ASSERT_EQ(store("WebHosting").size(), 1u);
  EXPECT_EQ(store("WebHosting")[0]["thumbprint"], new_chain.leaf.thumbprint);
}

TEST_F(ModelTest, CertAddReplacedCertificateStaysWhileSqlUsesIt) {
  auto old_chain = make_chain("sqlold.example.com");
  auto new_chain = make_chain("sqlnew.example.com");
  add(old_chain, "My");
  ok("sql-bind", {{"InstanceNames", {"MSSQLSERVER"}}, {"Thumbprint", old_chain.leaf.thumbprint}, {"StoreName", "My"}});
  json args = {{"StoreName", "My"},
               {"ContentsBase64", b64(new_chain.pfx)},
               {"PfxPassword", new_chain.password},
               {"Thumbprint", new_chain.leaf.thumbprint},
               {"ReplacedThumbprint", old_chain.leaf.thumbprint}};
  auto out = ok("cert-add", args);
  EXPECT_EQ(out["Replaced"]["Removed"], false);
  EXPECT_EQ(out["Replaced"]["BoundSites"], json::array({"SQL Server instance MSSQLSERVER"}));
}

TEST_F(ModelTest, SaveAndLoadRoundTripAndOperationsPersist) {
  auto dir = std::filesystem::temp_directory_path() / ("winhost-model-" + random_uuid());
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "model.json").string();
  auto chain = make_chain("persist.example.com");
  add(chain, "My");
  ASSERT_TRUE(model_->save_to(path).ok());
  auto loaded = WindowsModel::load(path);
  ASSERT_TRUE(loaded) << loaded.error().message;
  install(loaded.value());
  EXPECT_EQ(loaded->data(), data());

  // A model loaded from a file saves every change back to it.
  auto out = loaded->run_operation("cert-remove",
                                   {{"StoreName", "My"}, {"Thumbprint", chain.leaf.thumbprint}, {"DeleteKey", true}});
  ASSERT_TRUE(out.ok) << out.error.message;
  std::ifstream in(path);
  auto saved = json::parse(in);
  EXPECT_TRUE(saved["stores"]["My"].empty());
  EXPECT_TRUE(saved["keys"].empty());
  std::filesystem::remove_all(dir);
}

TEST_F(ModelTest, ExampleModelFileLoadsAndAnswers) {
  auto loaded = WindowsModel::load(WINCERT_MODEL_EXAMPLE);
  ASSERT_TRUE(loaded) << loaded.error().message;
  install(loaded.value());
  auto& m = loaded.value();
  auto bindings = m.run_operation("iis-list-bindings", json::object());
  ASSERT_TRUE(bindings.ok) << bindings.error.message;
  expect_same_shape(bindings.result, contract("iis-list-bindings")["output"]);
  EXPECT_GE(bindings.result["Bindings"].size(), 2u);
  auto sql = m.run_operation("sql-list-instances", json::object());
  ASSERT_TRUE(sql.ok);
  expect_same_shape(sql.result, contract("sql-list-instances")["output"]);
  EXPECT_GE(sql.result["Instances"].size(), 2u);
  auto my = m.run_operation("store-inventory", {{"StoreName", "My"}});
  ASSERT_TRUE(my.ok);
  ASSERT_GE(my.result["Certificates"].size(), 1u);
  bool with_key = false;
  for (const auto& c : my.result["Certificates"]) {
    ASSERT_TRUE(certstore::parse_certificate_text(c["Base64"].get<std::string>()));
    with_key = with_key || (c["HasPrivateKey"].get<bool>() && !c["ProviderName"].get<std::string>().empty());
  }
  EXPECT_TRUE(with_key);
  // Every bound certificate exists in its store with a usable key.
  for (const auto& b : bindings.result["Bindings"]) {
    if (b["CertificateHash"].get<std::string>().empty()) continue;
    auto inv = m.run_operation("store-inventory", {{"StoreName", b["CertificateStoreName"]}});
    ASSERT_TRUE(inv.ok) << b.dump();
    bool found = false;
    for (const auto& c : inv.result["Certificates"]) {
      found = found ||
              certstore::thumbprint_of(base64_decode(c["Base64"].get<std::string>()).value()) == b["CertificateHash"];
    }
    EXPECT_TRUE(found) << b.dump();
  }
}

TEST_F(ModelTest, CertificateWhoseKeyContainerIsGoneStillClaimsAKey) {
  // Windows answers HasPrivateKey from the certificate's key-provider property; the provider needs the key.
  auto chain = make_chain("orphan.example.com");
  add(chain, "My");
  data()["keys"] = json::object();
  auto c = ok("store-inventory", {{"StoreName", "My"}})["Certificates"][0];
  EXPECT_EQ(c["HasPrivateKey"], true);
  EXPECT_EQ(c["ProviderName"], "");
  auto out =
      ok("sql-bind", {{"InstanceNames", {"MSSQLSERVER"}}, {"Thumbprint", chain.leaf.thumbprint}, {"StoreName", "My"}});
  EXPECT_EQ(out["Instances"][0]["KeyFile"], "");
  EXPECT_EQ(ok("cert-remove",
               {{"StoreName", "My"}, {"Thumbprint", chain.leaf.thumbprint}, {"DeleteKey", true}})["KeyRemoved"],
            false);
}

TEST_F(ModelTest, OperationsRunThroughTheSimulatedPowerShell) {
  // The path winhost-sim takes for a WinRS command: the script's first line names the op.
  ProcessContext ctx;
  ctx.model = model_.get();
  auto chain = make_chain("ps.example.com");
  json args = {{"StoreName", "My"},
               {"ContentsBase64", b64(chain.pfx)},
               {"PfxPassword", chain.password},
               {"Thumbprint", chain.leaf.thumbprint}};
  auto r = run_powershell_script(ctx, "# wincert-op: cert-add\nparam([string]$ArgsJson)\n", args.dump(), true);
  std::string out;
  for (const auto& step : r.steps) {
    if (step.kind == OutputStep::Kind::kStdout) out += step.data;
  }
  EXPECT_EQ(r.exit_code, 0) << out;
  EXPECT_EQ(json::parse(out)["Status"], "Added");
  r = run_powershell_script(ctx, "# wincert-op: store-inventory\n", R"({"StoreName":"Nope"})", true);
  out.clear();
  std::string err;
  for (const auto& step : r.steps) {
    if (step.kind == OutputStep::Kind::kStdout) out += step.data;
    if (step.kind == OutputStep::Kind::kStderr) err += step.data;
  }
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(json::parse(out)["error"]["category"], "StoreNotFound");
  EXPECT_NE(err.find("CLIXML"), std::string::npos);
}

TEST_F(ModelTest, MalformedArgumentsNeverCrashTheHost) {
  for (const char* op : {"store-inventory", "cert-add", "cert-remove", "csr-create", "csr-accept", "iis-bind",
                         "iis-unbind", "iis-remove-cert-if-unused", "sql-bind", "sql-unbind", "sql-restart"}) {
    for (const json& args : {json::array({1, 2}), json("text"), json{{"StoreName", json::array()}},
                             json{{"InstanceNames", json{{"a", 1}}}, {"SslFlags", "x"}, {"KeyLength", "y"}}}) {
      // Either a result or an error document with a category: never an exception out of the model.
      auto outcome = run(op, args);
      if (!outcome.ok) {
        EXPECT_FALSE(outcome.error.category.empty()) << op;
      }
    }
  }
}

}  // namespace
}  // namespace wincert::sim::model::testing
