#include "certstore/remote/remote_backend.hpp"
#include "certstore/openssl_util.hpp"
#include "certstore/remote/contract.hpp"
#include "certstore/remote/inventory_scan.hpp"
#include "common/encoding.hpp"
#include "test_support.hpp"
#include "tests/support/result_matchers.hpp"

#include <gtest/gtest.h>
#include <openssl/pem.h>

#include <functional>

namespace wincert::certstore::remote {
namespace {

using nlohmann::json;
using ::testing::AllOf;
using testing::load_contract;
using ::testing::Not;
using testing::run_sync;

constexpr const char* kLeaf = "426E9669376072D8D1461082A6E31AB4023E1857";
constexpr const char* kOld = "3A95FCE68019E31A67985E09377E5AD7976F8FD9";
constexpr const char* kIntermediate = "C5AABCF0EA2FC72F80AD8112EDAEFD6D82B8222F";

class RemoteBackend : public ::testing::Test {
 protected:
  void TearDown() override {
    EXPECT_TRUE(runner.contract_violations.empty()) << ::testing::PrintToString(runner.contract_violations);
  }
  json golden_output(const std::string& op) { return load_contract(op)["output"]; }
  json golden_error(const std::string& op) { return load_contract(op)["error"]["output"]; }
  std::vector<std::string> called_ops() const {
    std::vector<std::string> ops;
    for (const auto& call : runner.calls) ops.push_back(call.op);
    return ops;
  }
  AddCertificateRequest golden_add_request() {
    const auto args = load_contract("cert-add")["args"];
    AddCertificateRequest request;
    request.store = "My";
    request.contents_base64 = Secret(args["ContentsBase64"].get<std::string>());
    request.password = Secret(args["PfxPassword"].get<std::string>());
    request.add_chain_to_ca_store = true;
    request.steps = {
        IisBindingStep{IisBindingRequest{"Default Web Site", "2001:db8::10", 443, "www.example.com", 1}, kOld},
        SqlBindingStep{SqlBindingRequest{{"MSSQLSERVER"}, false}}};
    return request;
  }
  // Drops the request's post-import steps of kind T.
  template <typename T>
  static void drop_steps(AddCertificateRequest& request) {
    std::erase_if(request.steps, [](const PostImportStep& step) { return std::holds_alternative<T>(step); });
  }

  testing::FakeRunner runner;
  std::shared_ptr<ScriptCaller> caller = std::make_shared<ScriptCaller>(runner);
  RemoteCertStore store{caller};
  RemoteIisBindings iis{caller};
  RemoteSqlBindings sql{caller};
};

// ---- inventory ----

// The host's base64 is kept when it is exactly the canonical encoding of the DER (Command gets it without a
// re-encoding), and left out when it is not (blanks, as certutil writes them): the job then encodes the DER.
TEST_F(RemoteBackend, InventoryKeepsTheHostsBase64OnlyWhenCanonical) {
  auto doc = golden_output("store-inventory");
  const std::string canonical = doc["Certificates"][0]["Base64"];
  std::string wrapped = canonical;
  wrapped.insert(64, "\r\n");
  doc["Certificates"][1]["Base64"] = wrapped;
  runner.answer("store-inventory", doc);
  auto inventory = run_sync(store.inventory("My"));
  ASSERT_TRUE(inventory.ok()) << inventory.error().message;
  ASSERT_EQ(inventory->entries.size(), 2u);
  EXPECT_EQ(inventory->entries[0].base64, canonical);
  EXPECT_EQ(base64_encode(inventory->entries[0].der), canonical);
  EXPECT_EQ(inventory->entries[1].base64, "");
  EXPECT_EQ(base64_encode(inventory->entries[1].der), canonical);
}

TEST_F(RemoteBackend, InventoryParsesGoldenOutput) {
  runner.answer_with_golden("store-inventory");
  auto inventory = run_sync(store.inventory("My"));
  ASSERT_TRUE(inventory.ok()) << inventory.error().message;
  EXPECT_EQ(runner.calls.at(0).args, load_contract("store-inventory")["args"]);
  ASSERT_EQ(inventory->entries.size(), 2u);
  EXPECT_TRUE(inventory->problems.empty());
  const auto& leaf = inventory->entries[0];
  EXPECT_EQ(leaf.thumbprint, kLeaf);
  EXPECT_TRUE(leaf.has_private_key);
  EXPECT_EQ(leaf.provider_name, "Microsoft Software Key Storage Provider");
  EXPECT_EQ(leaf.friendly_name, "www.example.com");
  EXPECT_EQ(thumbprint_of(leaf.der), kLeaf);
  // Inventory decodes only the thumbprint and the SANs; the DER it carries is the whole certificate.
  const std::vector<SubjectAltName> leaf_sans = {
      {SanType::kDns, "www.example.com"},
      {SanType::kDns, "example.com"},
      {SanType::kIp, "192.0.2.10"},
      {SanType::kIp, "2001:db8::10"},
      {SanType::kEmail, "webmaster@example.com"},
      {SanType::kUri, "https://www.example.com/"},
      {SanType::kUpn, "web01@corp.example.com"},
  };
  EXPECT_EQ(leaf.sans, leaf_sans);
  auto leaf_info = parse_certificate_der(leaf.der);
  ASSERT_TRUE(leaf_info.ok()) << leaf_info.error().message;
  EXPECT_EQ(leaf_info->subject, "CN=www.example.com, O=\"Keyfactor, Inc\", C=US");
  EXPECT_EQ(leaf_info->key.display(), "RSA 2048");
  const auto& ec = inventory->entries[1];
  EXPECT_EQ(ec.thumbprint, kOld);
  EXPECT_FALSE(ec.has_private_key);
  EXPECT_EQ(ec.provider_name, "");
  EXPECT_EQ(ec.friendly_name, "Zertifikat f\u00FCr Pr\u00FCfung \u2013 \u8A3C\u660E\u66F8");
  auto ec_info = parse_certificate_der(ec.der);
  ASSERT_TRUE(ec_info.ok()) << ec_info.error().message;
  EXPECT_EQ(ec.sans, ec_info->sans);
  EXPECT_EQ(ec_info->key.display(), "EC P-256");
}

TEST_F(RemoteBackend, InventoryReadsScriptsAsciiEscapedUnicode) {
  // The scripts escape non-ASCII as \uXXXX (console code pages); the text must come out as UTF-8.
  const std::string escaped = golden_output("store-inventory").dump(-1, ' ', true);
  ASSERT_EQ(escaped.find("\xC3"), std::string::npos);
  ASSERT_NE(escaped.find("\\u00fc"), std::string::npos);
  runner.answer_raw("store-inventory", ScriptOutput{escaped + "\r\n", 0, ""});
  auto inventory = run_sync(store.inventory("My"));
  ASSERT_TRUE(inventory.ok()) << inventory.error().message;
  EXPECT_EQ(inventory->entries.at(1).friendly_name, "Zertifikat f\u00FCr Pr\u00FCfung \u2013 \u8A3C\u660E\u66F8");
}

TEST_F(RemoteBackend, InventoryKeepsGoodEntriesAndReportsBadOnes) {
  auto doc = golden_output("store-inventory");
  doc["Certificates"].push_back({{"Base64", "bm90IGEgY2VydGlmaWNhdGU="}, {"HasPrivateKey", false}});
  doc["Certificates"].push_back({{"Base64", "%%%"}});
  doc["Certificates"].push_back(42);
  runner.answer("store-inventory", doc);
  auto inventory = run_sync(store.inventory("My"));
  ASSERT_TRUE(inventory.ok());
  EXPECT_EQ(inventory->entries.size(), 2u);
  ASSERT_EQ(inventory->problems.size(), 3u);
  EXPECT_EQ(inventory->problems[0], "entry 3: the certificate is not valid DER X.509");
  EXPECT_EQ(inventory->problems[1], "entry 4: the certificate is not valid base64");
}

TEST_F(RemoteBackend, InventoryAcceptsPowerShellSingleObjectAndEtsArrayShapes) {
  auto doc = golden_output("store-inventory");
  const json first = doc["Certificates"][0];
  doc["Certificates"] = first;  // ConvertTo-Json unrolled a one-element array
  runner.answer("store-inventory", doc);
  auto single = run_sync(store.inventory("My"));
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(single->entries.size(), 1u);
  doc["Certificates"] = {{"value", json::array({first})}, {"Count", 1}};
  runner.answer("store-inventory", doc);
  auto wrapped = run_sync(store.inventory("My"));
  ASSERT_TRUE(wrapped.ok());
  EXPECT_EQ(wrapped->entries.size(), 1u);
}

TEST_F(RemoteBackend, MissingStoreIsAPermanentErrorNamingOpStoreHostAndReason) {
  runner.answer("store-inventory", golden_error("store-inventory"), 1);
  auto inventory = run_sync(store.inventory("Nope"));
  ASSERT_FALSE(inventory.ok());
  EXPECT_THAT(inventory, ErrorWith(ErrorCode::kNotFound, ScriptCategory("StoreNotFound")));
  EXPECT_THAT(inventory, Not(IsRetryable()));
  EXPECT_EQ(inventory.error().message,
            "store-inventory failed on store 'Nope' on host 'web01.corp.example.com': the certificate store "
            "LocalMachine\\Nope does not exist [StoreNotFound]");
}

TEST_F(RemoteBackend, TransportFailuresKeepTheirKindAndGainContext) {
  runner.fail_transport("store-inventory",
                        Error::unavailable("connection refused (port 5986)").with_wsman_fault("w:QuotaLimit"));
  auto inventory = run_sync(store.inventory("My"));
  ASSERT_FALSE(inventory.ok());
  EXPECT_THAT(inventory, ErrorWith(ErrorCode::kUnavailable, WsmanFault("w:QuotaLimit")));
  EXPECT_THAT(inventory, IsRetryable());
  EXPECT_EQ(inventory.error().message,
            "store-inventory failed on store 'My' on host 'web01.corp.example.com': connection refused (port 5986)");
}

// Each golden error example reaches the caller with the code of its category, and the category itself stays
// in the detail; PowerShell's own categories (an error outside New-OpError) map through the same table.
TEST_F(RemoteBackend, ScriptCategoriesBecomeCodesAndStayInTheDetail) {
  const std::map<std::string, ErrorCode> golden_codes = {
      {"cert-add", ErrorCode::kNotFound},
      {"cert-remove", ErrorCode::kNotFound},
      {"csr-accept", ErrorCode::kFailedPrecondition},
      {"csr-create", ErrorCode::kNotFound},
      {"iis-bind", ErrorCode::kNotFound},
      {"iis-list-bindings", ErrorCode::kFailedPrecondition},
      {"sql-bind", ErrorCode::kNotFound},
      {"sql-restart", ErrorCode::kDeadlineExceeded},
      {"store-inventory", ErrorCode::kNotFound},
  };
  std::size_t checked = 0;
  for (const auto& fields : op_fields()) {
    const std::string op(fields.op);
    if (!load_contract(op).contains("error")) continue;
    SCOPED_TRACE(op);
    ASSERT_TRUE(golden_codes.contains(op)) << "a new golden error example: pin its code here";
    const auto body = golden_error(op);
    const std::string category_name = body["error"]["category"];
    runner.answer(op, body, 1);
    auto result = run_sync(caller->call(op, json::object()));
    EXPECT_THAT(result, ErrorWith(golden_codes.at(op), ScriptCategory(category_name)));
    ++checked;
  }
  EXPECT_EQ(checked, golden_codes.size());

  const std::vector<std::pair<std::string, ErrorCode>> powershell = {
      {"PermissionDenied", ErrorCode::kPermissionDenied}, {"ObjectNotFound", ErrorCode::kNotFound},
      {"ResourceExists", ErrorCode::kAlreadyExists},      {"ResourceUnavailable", ErrorCode::kUnavailable},
      {"NotSpecified", ErrorCode::kFailedPrecondition},
  };
  for (const auto& [name, code] : powershell) {
    SCOPED_TRACE(name);
    runner.answer("store-inventory", json{{"error", {{"message", "Get-Item failed"}, {"category", name}}}}, 1);
    auto result = run_sync(store.inventory("My"));
    EXPECT_THAT(result, ErrorWith(code, ScriptCategory(name)));
    EXPECT_EQ(result.error().retryable(), is_transient(code));
  }
}

TEST_F(RemoteBackend, NonJsonOutputAndSilentFailuresAreErrors) {
  runner.answer_raw("store-inventory", ScriptOutput{"Access is denied.\r\n", 0, ""});
  auto garbage = run_sync(store.inventory("My"));
  ASSERT_FALSE(garbage.ok());
  EXPECT_THAT(garbage, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_TRUE(garbage.error().detail.script_category.empty());

  runner.answer_raw("store-inventory", ScriptOutput{"", 1, "Get-Item : Access is denied\r\nAt line:1"});
  auto stderr_only = run_sync(store.inventory("My"));
  ASSERT_FALSE(stderr_only.ok());
  // No category: a host-side failure for a person; its stderr is what that person reads, on one line.
  EXPECT_THAT(stderr_only, HasCode(ErrorCode::kFailedPrecondition));
  EXPECT_NE(stderr_only.error().message.find("Get-Item : Access is denied At line:1"), std::string::npos);

  runner.answer_raw("sql-restart", ScriptOutput{golden_error("sql-restart").dump(), 1, ""});
  auto timeout = run_sync(sql.restart({"MSSQLSERVER"}));
  ASSERT_FALSE(timeout.ok());
  EXPECT_TRUE(timeout.error().retryable()) << "a host-side timeout may pass";

  // Stray tool output before the JSON line is tolerated.
  runner.answer_raw("host-info", ScriptOutput{"CertUtil: -csplist command completed successfully.\r\n" +
                                                  golden_output("host-info").dump() + "\r\n",
                                              0, ""});
  auto info = run_sync(caller->host_info());
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->os_build, 20348);
}

// ---- read_inventory: the same inventory, one certificate at a time ----

// What the whole parse makes of an output (the reference the streamed reader must match).
StoreInventory read_whole(const std::string& text) {
  auto doc = parse_script_document(text);
  EXPECT_TRUE(doc.ok() && doc->has_value());
  auto inventory = parse_store_inventory(**doc, "My");
  EXPECT_TRUE(inventory.ok());
  return *inventory;
}

void expect_same_inventory(const StoreInventory& actual, const StoreInventory& expected) {
  ASSERT_EQ(actual.entries.size(), expected.entries.size());
  for (std::size_t i = 0; i < expected.entries.size(); ++i) {
    SCOPED_TRACE(i);
    const auto& a = actual.entries[i];
    const auto& e = expected.entries[i];
    EXPECT_EQ(a.der, e.der);
    EXPECT_EQ(a.thumbprint, e.thumbprint);
    EXPECT_EQ(a.has_private_key, e.has_private_key);
    EXPECT_EQ(a.provider_name, e.provider_name);
    EXPECT_EQ(a.friendly_name, e.friendly_name);
    EXPECT_EQ(a.sans, e.sans);
  }
  EXPECT_EQ(actual.problems, expected.problems);
}

class RemoteReadInventory : public RemoteBackend {
 protected:
  // read_inventory() drained; the Error of read_inventory() or of the first next() that fails.
  Result<StoreInventory> read_all(const std::string& store_name = "My") {
    auto reader = run_sync(store.read_inventory(store_name));
    if (!reader) return reader.error();
    StoreInventory inventory;
    inventory.store = store_name;
    while (true) {
      auto entry = (*reader)->next();
      if (!entry) return entry.error();
      if (!*entry) break;
      inventory.entries.push_back(std::move(**entry));
    }
    inventory.problems = (*reader)->problems();
    return inventory;
  }
  // The output through read_inventory() and inventory(): both the same as the whole parse.
  void expect_as_whole(const std::string& text, bool streamed) {
    std::string copy = text;
    EXPECT_EQ(InventoryScan::open(copy).has_value(), streamed) << "which path the text takes";
    runner.answer_raw("store-inventory", ScriptOutput{text, 0, ""});
    auto read = read_all();
    ASSERT_TRUE(read.ok()) << read.error().message;
    const auto expected = read_whole(text);
    expect_same_inventory(*read, expected);
    auto whole = run_sync(store.inventory("My"));
    ASSERT_TRUE(whole.ok()) << whole.error().message;
    EXPECT_EQ(whole->store, "My");
    expect_same_inventory(*whole, expected);
  }
  std::string golden_text() { return golden_output("store-inventory").dump(); }
};

TEST_F(RemoteReadInventory, GoldenOutputIsReadOneCertificateAtATime) {
  runner.answer_with_golden("store-inventory");
  auto reader = run_sync(store.read_inventory("My"));
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  EXPECT_EQ(runner.calls.at(0).args, load_contract("store-inventory")["args"]);
  auto first = (*reader)->next();
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((*first)->thumbprint, kLeaf);
  EXPECT_TRUE((*first)->has_private_key);
  EXPECT_EQ((*first)->provider_name, "Microsoft Software Key Storage Provider");
  EXPECT_EQ((*first)->friendly_name, "www.example.com");
  EXPECT_EQ(thumbprint_of((*first)->der), kLeaf);
  EXPECT_EQ((*first)->sans.size(), 7u);
  auto second = (*reader)->next();
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_EQ((*second)->thumbprint, kOld);
  EXPECT_EQ((*second)->friendly_name, "Zertifikat f\u00FCr Pr\u00FCfung \u2013 \u8A3C\u660E\u66F8");
  auto end = (*reader)->next();
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(end->has_value());
  EXPECT_TRUE((*reader)->problems().empty());

  expect_as_whole(golden_text(), true);
  expect_as_whole(golden_output("store-inventory").dump(2), true);
  expect_as_whole(golden_output("store-inventory").dump(-1, ' ', true) + "\r\n", true);  // \uXXXX escapes
}

TEST_F(RemoteReadInventory, BadEntriesBecomeProblemsInOrder) {
  auto doc = golden_output("store-inventory");
  doc["Certificates"].push_back({{"Base64", "bm90IGEgY2VydGlmaWNhdGU="}, {"HasPrivateKey", false}});
  doc["Certificates"].push_back({{"Base64", "%%%"}});
  doc["Certificates"].push_back(42);
  doc["Certificates"].push_back(json::object());
  doc["Certificates"].push_back({{"Base64", doc["Certificates"][0]["Base64"]}, {"HasPrivateKey", "yes"}});
  doc["Certificates"].push_back(doc["Certificates"][1]);
  runner.answer("store-inventory", doc);
  auto read = read_all();
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read->entries.size(), 3u);
  EXPECT_EQ(read->problems,
            (std::vector<std::string>{"entry 3: the certificate is not valid DER X.509",
                                      "entry 4: the certificate is not valid base64", "entry 5: not an object",
                                      "entry 6: the field 'Base64' is missing",
                                      "entry 7 (" + std::string(kLeaf) + "): malformed properties"}));
  expect_as_whole(doc.dump(), true);
}

TEST_F(RemoteReadInventory, EmptyNullAndMissingCertificatesAreEmptyInventories) {
  for (const json& certificates : {json::array(), json(nullptr)}) {
    json doc = {{"StoreName", "My"}, {"Certificates", certificates}};
    expect_as_whole(doc.dump(), true);
  }
  expect_as_whole(R"({"StoreName":"My"})", true);
  runner.answer_raw("store-inventory", ScriptOutput{R"({"Certificates":[]})", 0, ""});
  auto read = read_all();
  ASSERT_TRUE(read.ok());
  EXPECT_TRUE(read->entries.empty());
  EXPECT_TRUE(read->problems.empty());
}

TEST_F(RemoteReadInventory, PowerShellsOtherShapesAreReadWhole) {
  auto doc = golden_output("store-inventory");
  const json first = doc["Certificates"][0];
  doc["Certificates"] = first;  // ConvertTo-Json unrolled a one-element array
  expect_as_whole(doc.dump(), false);
  doc["Certificates"] = {{"value", json::array({first})}, {"Count", 1}};  // the ETS wrapper
  expect_as_whole(doc.dump(), false);
  runner.answer("store-inventory", doc);
  auto wrapped = read_all();
  ASSERT_TRUE(wrapped.ok());
  EXPECT_EQ(wrapped->entries.size(), 1u);
}

TEST_F(RemoteReadInventory, StrayLinesBeforeTheDocumentAreReadWhole) {
  expect_as_whole("CertUtil: -csplist command completed successfully.\r\n" + golden_text() + "\r\n", false);
}

TEST_F(RemoteReadInventory, RepeatedCertificatesKeyIsReadWholeAndTheWholeParseDecides) {
  const auto doc = golden_output("store-inventory");
  const std::string text = R"({"StoreName":"My","Certificates":[)" + doc["Certificates"][0].dump() +
                           R"(],"Certificates":)" + doc["Certificates"].dump() + "}";
  expect_as_whole(text, false);
  EXPECT_EQ(read_whole(text).entries.size(), 2u) << "nlohmann keeps the last";
}

TEST_F(RemoteReadInventory, HostErrorsAreTheSameAsInventorys) {
  runner.answer("store-inventory", golden_error("store-inventory"), 1);
  auto reader = run_sync(store.read_inventory("Nope"));
  ASSERT_FALSE(reader.ok());
  EXPECT_THAT(reader, ErrorWith(ErrorCode::kNotFound, ScriptCategory("StoreNotFound")));
  EXPECT_THAT(reader, Not(IsRetryable()));
  EXPECT_EQ(reader.error().message,
            "store-inventory failed on store 'Nope' on host 'web01.corp.example.com': the certificate store "
            "LocalMachine\\Nope does not exist [StoreNotFound]");

  // An error object with exit code 0 (after the certificates, where the scan cannot see it first).
  json doc = golden_output("store-inventory");
  doc["error"] = {{"message", "Get-Item failed"}, {"category", "PermissionDenied"}};
  runner.answer("store-inventory", doc, 0);
  EXPECT_THAT(run_sync(store.read_inventory("My")),
              ErrorWith(ErrorCode::kPermissionDenied, ScriptCategory("PermissionDenied")));

  runner.fail_transport("store-inventory",
                        Error::unavailable("connection refused (port 5986)").with_wsman_fault("w:QuotaLimit"));
  auto transport = run_sync(store.read_inventory("My"));
  EXPECT_THAT(transport, ErrorWith(ErrorCode::kUnavailable, WsmanFault("w:QuotaLimit")));
  EXPECT_EQ(transport.error().message,
            "store-inventory failed on store 'My' on host 'web01.corp.example.com': connection refused (port 5986)");

  runner.answer_raw("store-inventory", ScriptOutput{"Access is denied.\r\n", 0, ""});
  auto garbage = run_sync(store.read_inventory("My"));
  EXPECT_THAT(garbage, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_TRUE(garbage.error().detail.script_category.empty());
  EXPECT_EQ(garbage.error().message, run_sync(store.inventory("My")).error().message);

  runner.answer_raw("store-inventory", ScriptOutput{"", 1, "Get-Item : Access is denied\r\nAt line:1"});
  auto stderr_only = run_sync(store.read_inventory("My"));
  EXPECT_THAT(stderr_only, HasCode(ErrorCode::kFailedPrecondition));
  EXPECT_NE(stderr_only.error().message.find("Get-Item : Access is denied At line:1"), std::string::npos);

  // A complete document with a failing exit code is the host's failure, never an inventory.
  runner.answer_raw("store-inventory", ScriptOutput{golden_text(), 1, "the store was locked"});
  auto failed = run_sync(store.read_inventory("My"));
  EXPECT_THAT(failed, HasCode(ErrorCode::kFailedPrecondition));
  EXPECT_NE(failed.error().message.find("the store was locked"), std::string::npos);
}

TEST_F(RemoteReadInventory, TruncatedOutputIsAnErrorFromNextAfterTheGoodEntries) {
  const std::string text = golden_text();
  const auto cut = text.find("MIIBkzCC");  // inside the second certificate's Base64
  ASSERT_NE(cut, std::string::npos);
  runner.answer_raw("store-inventory", ScriptOutput{text.substr(0, cut + 100), 0, ""});
  auto reader = run_sync(store.read_inventory("My"));
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  auto first = (*reader)->next();
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((*first)->thumbprint, kLeaf);
  auto second = (*reader)->next();
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_EQ(second.error().message,
            "store-inventory failed on store 'My' on host 'web01.corp.example.com': the script's output ends inside "
            "entry 2 (truncated at byte " +
                std::to_string(cut + 100) + ")");
  // inventory() fails as a whole with the same Error.
  auto whole = run_sync(store.inventory("My"));
  ASSERT_FALSE(whole.ok());
  EXPECT_EQ(whole.error().message, second.error().message);
}

TEST_F(RemoteReadInventory, ABadTokenInsideAnEntryIsAnErrorNamingIt) {
  const auto doc = golden_output("store-inventory");
  const std::string text = R"({"Certificates":[)" + doc["Certificates"][0].dump() + R"(,{"Base64":"QUJD","X":tru}]})";
  runner.answer_raw("store-inventory", ScriptOutput{text, 0, ""});
  auto read = read_all();
  ASSERT_FALSE(read.ok());
  EXPECT_THAT(read, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_EQ(read.error().message.rfind("store-inventory failed on store 'My' on host 'web01.corp.example.com': "
                                       "entry 2 of the script's output is not valid JSON",
                                       0),
            0u)
      << read.error().message;
}

TEST_F(RemoteReadInventory, NestingBeyondTheLimitIsRefusedAsTheWholeParseRefusesIt) {
  const std::string deep = std::string(70, '[') + std::string(70, ']');
  const std::string text = R"({"Certificates":[{"Base64":"QUJD"},)" + deep + "]}";
  runner.answer_raw("store-inventory", ScriptOutput{text, 0, ""});
  auto reader = run_sync(store.read_inventory("My"));
  ASSERT_FALSE(reader.ok());
  EXPECT_THAT(reader, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(reader.error().message.find("deeper than 64 levels"), std::string::npos) << reader.error().message;
  EXPECT_EQ(reader.error().message, run_sync(store.inventory("My")).error().message);
}

TEST_F(RemoteReadInventory, EscapesAndBracketsInsideStringsStayInTheirEntry) {
  auto doc = golden_output("store-inventory");
  doc["Certificates"][0]["FriendlyName"] = "web \"prod\" ] }, [{ \\ \t \u00FC \U0001F512";
  doc["Certificates"][1]["ProviderName"] = "]\"}";
  expect_as_whole(doc.dump(), true);
  expect_as_whole(doc.dump(-1, ' ', true), true);
  runner.answer("store-inventory", doc);
  auto read = read_all();
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->entries.at(0).friendly_name, "web \"prod\" ] }, [{ \\ \t \u00FC \U0001F512");
  EXPECT_EQ(read->entries.at(1).provider_name, "]\"}");
}

TEST_F(RemoteReadInventory, TenThousandEntriesReadAsInventoryReadsThem) {
  const auto golden = golden_output("store-inventory");
  json doc = {{"StoreName", "My"}, {"Certificates", json::array()}};
  for (int i = 0; i < 10000; ++i) {
    json entry = golden["Certificates"][i % 2];
    entry["FriendlyName"] = "cert \"" + std::to_string(i) + "\" [" + std::string(i % 7, '\\') + "]";
    if (i % 997 == 0) entry["Base64"] = "%%%";
    if (i % 1009 == 0) entry = json::array({i});
    doc["Certificates"].push_back(std::move(entry));
  }
  const std::string text = doc.dump();
  expect_as_whole(text, true);
  runner.answer_raw("store-inventory", ScriptOutput{text, 0, ""});
  auto read = read_all();
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->entries.size() + read->problems.size(), 10000u);
  EXPECT_EQ(read->problems.size(), 20u);  // 11 bad base64 (i % 997), 10 arrays (i % 1009), 0 is both
  EXPECT_EQ(read->problems.at(0), "entry 1: not an object");
}

// ---- IIS ----

TEST_F(RemoteBackend, IisListParsesIpv6WildcardAndUnboundBindings) {
  runner.answer_with_golden("iis-list-bindings");
  auto bindings = run_sync(iis.list());
  ASSERT_TRUE(bindings.ok()) << bindings.error().message;
  ASSERT_EQ(bindings->size(), 3u);
  const auto& first = (*bindings)[0];
  EXPECT_EQ(first.site, "Default Web Site");
  EXPECT_EQ(first.protocol, "https");
  EXPECT_EQ(first.ip, "2001:db8::10");
  EXPECT_EQ(first.port, 443);
  EXPECT_EQ(first.host, "www.example.com");
  EXPECT_EQ(first.thumbprint, kLeaf);
  EXPECT_EQ(first.store, "My");
  EXPECT_EQ(first.ssl_flags, 1);
  EXPECT_EQ((*bindings)[1].ip, "*");
  EXPECT_EQ((*bindings)[1].store, "WebHosting");
  EXPECT_EQ((*bindings)[2].thumbprint, "");
  EXPECT_EQ((*bindings)[2].ssl_flags, 65);
}

TEST_F(RemoteBackend, IisBindSendsBracketedIpv6AndChecksTheResult) {
  runner.answer_with_golden("host-info");
  runner.answer_with_golden("iis-bind");
  auto bound = run_sync(iis.bind({"Default Web Site", "2001:db8::10", 443, "www.example.com", 1}, kLeaf, "My"));
  ASSERT_TRUE(bound.ok()) << bound.error().message;
  EXPECT_EQ(called_ops(), (std::vector<std::string>{"host-info", "iis-bind"}));
  EXPECT_EQ(runner.calls[1].args, load_contract("iis-bind")["args"]);
  EXPECT_TRUE(bound->replaced_existing);
  EXPECT_EQ(bound->binding.ip, "2001:db8::10");
  EXPECT_EQ(bound->binding.thumbprint, kLeaf);

  // The host reporting another certificate on the binding is a failure, not a success.
  auto wrong = golden_output("iis-bind");
  wrong["Binding"]["CertificateHash"] = kOld;
  runner.answer("iis-bind", wrong);
  auto mismatch = run_sync(iis.bind({"Default Web Site", "2001:db8::10", 443, "www.example.com", 1}, kLeaf, "My"));
  ASSERT_FALSE(mismatch.ok());
  EXPECT_THAT(mismatch, HasCode(ErrorCode::kFailedPrecondition));
  EXPECT_NE(mismatch.error().message.find("is bound to " + std::string(kOld) + " instead of " + kLeaf),
            std::string::npos);
  EXPECT_EQ(called_ops().size(), 3u) << "host-info is asked once per host";
}

TEST_F(RemoteBackend, SslFlagsAreValidatedAgainstTheHostsBuildBeforeBinding) {
  struct Case {
    int build;
    int flags;
    bool valid;
  };
  for (const Case& c : {Case{9600, 3, true}, Case{9600, 4, false}, Case{14393, 5, true}, Case{14393, 8, false},
                        Case{17763, 9, true}, Case{17763, 32, false}, Case{20348, 64, true}, Case{20348, 2, false}}) {
    SCOPED_TRACE("build " + std::to_string(c.build) + " flags " + std::to_string(c.flags));
    testing::FakeRunner fresh;
    auto host = golden_output("host-info");
    host["OsBuild"] = c.build;
    fresh.answer("host-info", host);
    auto answer = golden_output("iis-bind");
    answer["Binding"]["SslFlags"] = c.flags;
    fresh.answer("iis-bind", answer);
    RemoteIisBindings bindings(std::make_shared<ScriptCaller>(fresh));
    auto bound =
        run_sync(bindings.bind({"Default Web Site", "[2001:db8::10]", 443, "www.example.com", c.flags}, kLeaf, "My"));
    EXPECT_EQ(bound.ok(), c.valid) << (bound.ok() ? std::string() : bound.error().message);
    if (!c.valid) {
      EXPECT_EQ(fresh.calls.size(), 1u) << "an invalid value must not reach the host";
      EXPECT_THAT(bound, HasCode(ErrorCode::kInvalidArgument));
      const std::string reason = (c.flags & 2) != 0 ? "without 1 (SNI)" : "Windows build " + std::to_string(c.build);
      EXPECT_NE(bound.error().message.find(reason), std::string::npos) << bound.error().message;
    } else {
      EXPECT_EQ(fresh.calls.at(1).args["SslFlags"], c.flags);
    }
    EXPECT_TRUE(fresh.contract_violations.empty());
  }
}

TEST_F(RemoteBackend, IisUnbindAndMissingSite) {
  runner.answer_with_golden("iis-unbind");
  auto removed = run_sync(iis.unbind({"Default Web Site", "*", 443, "www.example.com", 0}));
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(*removed);
  EXPECT_EQ(runner.calls[0].args, load_contract("iis-unbind")["args"]);

  runner.answer_with_golden("host-info");
  runner.answer("iis-bind", golden_error("iis-bind"), 1);
  auto missing = run_sync(iis.bind({"Nope", "*", 443, "", 0}, kLeaf, "My"));
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing, ErrorWith(ErrorCode::kNotFound, ScriptCategory("SiteNotFound")));
  EXPECT_EQ(missing.error().message,
            "iis-bind failed on store 'My' on host 'web01.corp.example.com': the IIS site 'Nope' does not exist "
            "[SiteNotFound]");
}

TEST_F(RemoteBackend, CertificateStillBoundElsewhereIsKept) {
  runner.answer_with_golden("iis-remove-cert-if-unused");
  auto result = run_sync(iis.remove_certificate_if_unused("WebHosting", kOld));
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(runner.calls[0].args, load_contract("iis-remove-cert-if-unused")["args"]);
  EXPECT_FALSE(result->removed);
  EXPECT_EQ(result->still_bound_sites, (std::vector<std::string>{"Intranet (*:8443:)"}));

  auto contradictory = golden_output("iis-remove-cert-if-unused");
  contradictory["Removed"] = true;
  runner.answer("iis-remove-cert-if-unused", contradictory);
  auto bad = run_sync(iis.remove_certificate_if_unused("WebHosting", kOld));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad, HasCode(ErrorCode::kFailedPrecondition));
}

// ---- add / remove ----

TEST_F(RemoteBackend, AddSendsTheGoldenRequestAndParsesEveryPart) {
  runner.answer_with_golden("host-info");
  runner.answer_with_golden("cert-add");
  auto added = run_sync(store.add(golden_add_request()));
  ASSERT_TRUE(added.ok()) << added.error().message;
  EXPECT_EQ(called_ops(), (std::vector<std::string>{"host-info", "cert-add"}));
  EXPECT_EQ(runner.calls[1].args, load_contract("cert-add")["args"]) << "one call carries import + bind + clean-up";
  EXPECT_EQ(added->thumbprint, kLeaf);
  EXPECT_EQ(added->outcome, AddOutcome::kAdded);
  EXPECT_TRUE(added->has_private_key);
  EXPECT_EQ(added->chain_added, (std::vector<std::string>{kIntermediate}));
  ASSERT_EQ(added->steps.size(), 2u) << "one outcome per step";
  const auto* iis_outcome = added->step<IisBindingOutcome>();
  ASSERT_NE(iis_outcome, nullptr);
  EXPECT_TRUE(std::holds_alternative<IisBindingOutcome>(added->steps[0])) << "outcomes in the request's order";
  EXPECT_EQ(iis_outcome->binding.ip, "2001:db8::10");
  const auto* sql_outcome = added->step<SqlBindingOutcome>();
  ASSERT_NE(sql_outcome, nullptr);
  ASSERT_EQ(sql_outcome->instances.size(), 1u);
  EXPECT_TRUE(sql_outcome->instances[0].verified);
  ASSERT_TRUE(iis_outcome->replaced.has_value());
  EXPECT_FALSE(iis_outcome->replaced->removed);
  EXPECT_EQ(iis_outcome->replaced->still_bound_sites, (std::vector<std::string>{"Intranet ([2001:db8::10]:8443:)"}));
}

// The cert-add script takes one binding of each kind: a second step of a kind is refused before the host
// is touched, not silently dropped.
TEST_F(RemoteBackend, AddRefusesTwoStepsOfTheSameKind) {
  auto request = golden_add_request();
  request.steps.push_back(request.steps.front());
  auto added = run_sync(store.add(request));
  ASSERT_FALSE(added.ok());
  EXPECT_THAT(added, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_TRUE(runner.calls.empty());
}

TEST_F(RemoteBackend, OverwriteFalseLeavesAnExistingCertificate) {
  auto answer = golden_output("cert-add");
  answer["Status"] = "AlreadyPresent";
  answer["Binding"] = nullptr;
  answer["SqlBindings"] = json::array();
  answer["Replaced"] = nullptr;
  runner.answer("cert-add", answer);
  auto request = golden_add_request();
  request.steps.clear();
  request.overwrite = false;
  auto added = run_sync(store.add(request));
  ASSERT_TRUE(added.ok()) << added.error().message;
  EXPECT_EQ(runner.calls.at(0).args["Overwrite"], false);
  EXPECT_EQ(runner.calls.at(0).args["IisBinding"], nullptr);
  EXPECT_EQ(added->outcome, AddOutcome::kAlreadyPresent);

  // A host that replaced it anyway broke the contract: that is reported, not accepted.
  answer["Status"] = "Replaced";
  runner.answer("cert-add", answer);
  auto disobeyed = run_sync(store.add(request));
  ASSERT_FALSE(disobeyed.ok());
  EXPECT_THAT(disobeyed, HasCode(ErrorCode::kFailedPrecondition));
}

TEST_F(RemoteBackend, OverwriteTrueReplaces) {
  auto answer = golden_output("cert-add");
  answer["Status"] = "Replaced";
  answer["Binding"] = nullptr;
  answer["SqlBindings"] = json::array();
  answer["Replaced"] = nullptr;
  runner.answer("cert-add", answer);
  auto request = golden_add_request();
  request.steps.clear();
  request.overwrite = true;
  auto added = run_sync(store.add(request));
  ASSERT_TRUE(added.ok()) << added.error().message;
  EXPECT_EQ(runner.calls.at(0).args["Overwrite"], true);
  EXPECT_EQ(added->outcome, AddOutcome::kReplaced);
}

TEST_F(RemoteBackend, BadPfxFailsBeforeTheHostIsTouched) {
  auto request = golden_add_request();
  request.password = Secret("not-the-password");
  request.label = "'web-prod'";
  auto added = run_sync(store.add(request));
  ASSERT_FALSE(added.ok());
  EXPECT_THAT(added, HasCode(ErrorCode::kInvalidArgument)) << "a wrong PFX password is the job's data, not a login";
  EXPECT_EQ(added.error().message,
            "the PFX for certificate 'web-prod' could not be opened: wrong password or corrupt file");
  EXPECT_TRUE(runner.calls.empty());

  // A bare certificate cannot be bound in IIS.
  request = golden_add_request();
  request.contents_base64 =
      Secret(load_contract("store-inventory")["output"]["Certificates"][0]["Base64"].get<std::string>());
  request.password = Secret("");
  auto no_key = run_sync(store.add(request));
  ASSERT_FALSE(no_key.ok());
  EXPECT_THAT(no_key, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_TRUE(runner.calls.empty());
}

TEST_F(RemoteBackend, HostErrorsNeverCarryThePassword) {
  auto request = golden_add_request();
  drop_steps<IisBindingStep>(request);
  const std::string password = request.password.reveal();
  runner.answer(
      "cert-add",
      json{
          {"error", {{"message", "certutil -p " + password + " failed: bad provider"}, {"category", "CommandFailed"}}}},
      1);
  auto added = run_sync(store.add(request));
  ASSERT_FALSE(added.ok());
  EXPECT_EQ(added.error().message.find(password), std::string::npos);
  EXPECT_NE(added.error().message.find("certutil -p *** failed"), std::string::npos);
  EXPECT_THAT(added, ErrorWith(ErrorCode::kFailedPrecondition, ScriptCategory("CommandFailed")));
}

TEST_F(RemoteBackend, RemoveNormalisesTheThumbprintAndParses) {
  runner.answer_with_golden("cert-remove");
  auto removed = run_sync(store.remove({"My", "3a 95 fc e6 80 19 e3 1a 67 98 5e 09 37 7e 5a d7 97 6f 8f d9"}));
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  EXPECT_EQ(runner.calls[0].args, load_contract("cert-remove")["args"]);
  EXPECT_FALSE(runner.calls[0].args["DeleteKey"].get<bool>()) << "the key stays unless the store opts in";
  EXPECT_TRUE(removed->found && removed->removed);
  EXPECT_FALSE(removed->key_removed) << "the golden removal keeps the key (DeleteKey false)";
  auto invalid = run_sync(store.remove({"My", "not-a-thumbprint"}));
  ASSERT_FALSE(invalid.ok());
  EXPECT_EQ(runner.calls.size(), 1u);
}

TEST_F(RemoteBackend, RemoveAsksTheHostToDeleteTheKeyOnlyWhenRequested) {
  runner.answer_with_golden("cert-remove");
  RemoveRequest request{"My", kOld, true};
  ASSERT_TRUE(run_sync(store.remove(request)).ok());
  request.delete_unused_key = false;
  ASSERT_TRUE(run_sync(store.remove(request)).ok());
  ASSERT_EQ(runner.calls.size(), 2u);
  EXPECT_EQ(runner.calls[0].args["DeleteKey"], true);
  EXPECT_EQ(runner.calls[1].args["DeleteKey"], false);
  EXPECT_EQ(runner.calls[1].args["Thumbprint"], kOld);
}

// ---- CSR / reenrollment ----

TEST_F(RemoteBackend, CsrCreateMapsEccAndQuotesEscapedCommas) {
  runner.answer_with_golden("csr-create");
  CsrRequest request;
  request.subject = "CN=web01.example.com,O=Keyfactor\\, Inc,C=US";
  request.key_type = "ECC";
  request.key_size = "P-256";
  request.sans = {{SanType::kDns, "web01.example.com"}, {SanType::kDns, "web01"}, {SanType::kIp, "2001:db8::21"}};
  auto csr = run_sync(store.create_csr(request));
  ASSERT_TRUE(csr.ok()) << csr.error().message;
  EXPECT_EQ(runner.calls[0].args, load_contract("csr-create")["args"]);
  EXPECT_EQ(csr->info.key, (KeyParameters{KeyAlgorithm::kEc, 256, "P-256"}));
  EXPECT_EQ(csr->provider_name, "Microsoft Software Key Storage Provider");
  EXPECT_TRUE(csr->pem().starts_with("-----BEGIN CERTIFICATE REQUEST-----\n"));
  EXPECT_TRUE(parse_csr(csr->pem()).ok());
}

std::string rsa_csr_base64(int bits) {
  ossl::PKeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)));
  ossl::X509ReqPtr req(X509_REQ_new());
  X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req.get()), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("sql01.example.com"), -1, -1, 0);
  X509_REQ_set_pubkey(req.get(), key.get());
  X509_REQ_sign(req.get(), key.get(), EVP_sha256());
  unsigned char* der = nullptr;
  const int length = i2d_X509_REQ(req.get(), &der);
  std::string out =
      base64_encode(std::string_view(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length)));
  OPENSSL_free(der);
  return out;
}

TEST_F(RemoteBackend, CsrCreateRsaAndKeyMismatchDetection) {
  const std::string csr_2048 = rsa_csr_base64(2048);
  runner.answer("csr-create", json{{"Csr", csr_2048}, {"ProviderName", "Microsoft Strong Cryptographic Provider"}});
  CsrRequest request;
  request.subject = "CN=sql01.example.com";
  request.key_type = "RSA";
  request.key_size = "2048";
  auto csr = run_sync(store.create_csr(request));
  ASSERT_TRUE(csr.ok()) << csr.error().message;
  const auto& args = runner.calls[0].args;
  EXPECT_EQ(args["KeyAlgorithm"], "RSA");
  EXPECT_EQ(args["KeyLength"], 2048);
  EXPECT_EQ(args["ProviderName"], "Microsoft Strong Cryptographic Provider");
  EXPECT_EQ(args["Sans"], json::array());
  EXPECT_EQ(csr->info.key.bits, 2048);

  request.key_size = "4096";  // the device answers with a 2048-bit key: caught
  auto mismatch = run_sync(store.create_csr(request));
  ASSERT_FALSE(mismatch.ok());
  EXPECT_THAT(mismatch, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(mismatch.error().message.find("key is RSA 2048, expected RSA 4096"), std::string::npos);

  request.key_type = "ECC";
  request.key_size = "P-384";
  request.provider_name = "Microsoft Enhanced RSA and AES Cryptographic Provider";
  const auto calls_before = runner.calls.size();
  auto legacy = run_sync(store.create_csr(request));
  ASSERT_FALSE(legacy.ok());
  EXPECT_THAT(legacy, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_EQ(runner.calls.size(), calls_before) << "rejected before reaching the host";
}

TEST_F(RemoteBackend, InstallIssuedChecksThumbprintAndKeyLink) {
  runner.answer_with_golden("csr-accept");
  const auto args = load_contract("csr-accept")["args"];
  InstallIssuedRequest request{"WebHosting", *base64_decode(args["CertificateBase64"].get<std::string>())};
  auto installed = run_sync(store.install_issued(request));
  ASSERT_TRUE(installed.ok()) << installed.error().message;
  EXPECT_EQ(runner.calls[0].args, args);
  EXPECT_EQ(installed->thumbprint, kLeaf);
  EXPECT_TRUE(installed->has_private_key);

  auto unlinked = golden_output("csr-accept");
  unlinked["HasPrivateKey"] = false;
  runner.answer("csr-accept", unlinked);
  auto bad = run_sync(store.install_issued(request));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad, HasCode(ErrorCode::kFailedPrecondition));
}

// ---- SQL Server ----

TEST_F(RemoteBackend, SqlListNormalisesRegistryThumbprints) {
  runner.answer_with_golden("sql-list-instances");
  auto instances = run_sync(sql.list_instances());
  ASSERT_TRUE(instances.ok()) << instances.error().message;
  ASSERT_EQ(instances->size(), 2u);
  EXPECT_EQ((*instances)[0].thumbprint, kLeaf);
  EXPECT_EQ((*instances)[0].instance_id, "MSSQL16.MSSQLSERVER");
  EXPECT_EQ((*instances)[0].service_account, "NT Service\\MSSQLSERVER");
  EXPECT_EQ((*instances)[1].thumbprint, "");
  EXPECT_EQ((*instances)[1].service_name, "MSSQL$SQLEXPRESS");
}

TEST_F(RemoteBackend, SqlBindVerifiesEveryInstance) {
  runner.answer_with_golden("sql-bind");
  auto bound = run_sync(sql.bind({{"MSSQLSERVER", "SQLEXPRESS"}, true}, kLeaf, "My"));
  ASSERT_TRUE(bound.ok()) << bound.error().message;
  EXPECT_EQ(runner.calls[0].args, load_contract("sql-bind")["args"]);
  EXPECT_EQ(bound->size(), 2u);
  auto unverified = golden_output("sql-bind");
  unverified["Instances"][1]["Verified"] = false;
  runner.answer("sql-bind", unverified);
  auto bad = run_sync(sql.bind({{"MSSQLSERVER", "SQLEXPRESS"}, true}, kLeaf, "My"));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad, HasCode(ErrorCode::kFailedPrecondition));
  EXPECT_NE(bad.error().message.find("instance 'SQLEXPRESS'"), std::string::npos);
}

TEST_F(RemoteBackend, SqlUnbindOnlyTouchesInstancesBoundToThatCertificate) {
  runner.answer_with_golden("sql-unbind");
  auto outcomes = run_sync(sql.unbind({{"MSSQLSERVER", "SQLEXPRESS"}, false}, kLeaf));
  ASSERT_TRUE(outcomes.ok()) << outcomes.error().message;
  EXPECT_EQ(runner.calls[0].args, load_contract("sql-unbind")["args"]);
  ASSERT_EQ(outcomes->size(), 2u);
  EXPECT_TRUE((*outcomes)[0].unbound);
  EXPECT_FALSE((*outcomes)[1].unbound);
  EXPECT_EQ((*outcomes)[1].previous_thumbprint, kOld);

  auto wrong = golden_output("sql-unbind");
  wrong["Instances"][1]["Unbound"] = true;  // a host clearing another certificate's binding
  runner.answer("sql-unbind", wrong);
  auto bad = run_sync(sql.unbind({{"MSSQLSERVER", "SQLEXPRESS"}, false}, kLeaf));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad, HasCode(ErrorCode::kFailedPrecondition));
  EXPECT_NE(bad.error().message.find("instance 'SQLEXPRESS' was bound to " + std::string(kOld)), std::string::npos);
}

TEST_F(RemoteBackend, SqlRestartSendsABoundedWait) {
  runner.answer_with_golden("sql-restart");
  auto states = run_sync(sql.restart({"MSSQLSERVER"}));
  ASSERT_TRUE(states.ok()) << states.error().message;
  EXPECT_EQ(runner.calls[0].args, load_contract("sql-restart")["args"]);
  EXPECT_EQ(states->at(0).status, "Running");
}

TEST_F(RemoteBackend, HostInfoGoldenIsParsed) {
  runner.answer_with_golden("host-info");
  auto info = run_sync(caller->host_info());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->hostname, "web01.corp.example.com");
  EXPECT_EQ(info->os_version, "10.0.20348");
  EXPECT_EQ(info->ps_version, "5.1.20348.2849");
  EXPECT_FALSE(parse_host_info(json{{"OsBuild", "abc"}}).ok());
  EXPECT_FALSE(parse_host_info(json::array()).ok());
}

}  // namespace
}  // namespace wincert::certstore::remote

namespace wincert::certstore::remote {
namespace {

// Untrusted script output never crashes the backend: every value of every golden output, replaced by
// each JSON type in turn, yields a result or an Error.
void mutate_each_value(const json& doc, const std::function<void(const json&)>& visit, json& root, json& node) {
  if (node.is_object()) {
    for (auto& [key, value] : node.items()) {
      const json original = value;
      for (const json& replacement : {json(nullptr), json(7), json(-1), json("x"), json(true), json::array(),
                                      json::object(), json::array({json::object()})}) {
        value = replacement;
        visit(root);
      }
      value = original;
      mutate_each_value(doc, visit, root, value);
    }
  } else if (node.is_array()) {
    for (auto& item : node) mutate_each_value(doc, visit, root, item);
  }
}

TEST(RemoteBackendRobustness, MutatedGoldenOutputsNeverCrash) {
  const std::vector<
      std::pair<std::string, std::function<void(RemoteCertStore&, RemoteIisBindings&, RemoteSqlBindings&)>>>
      ops = {
          {"store-inventory", [](auto& s, auto&, auto&) { (void)run_sync(s.inventory("My")); }},
          {"cert-remove",
           [](auto& s, auto&, auto&) {
             (void)run_sync(s.remove({"My", kOld}));
           }},
          {"iis-list-bindings", [](auto&, auto& i, auto&) { (void)run_sync(i.list()); }},
          {"iis-bind",
           [](auto&, auto& i, auto&) {
             (void)run_sync(i.bind({"Default Web Site", "2001:db8::10", 443, "www.example.com", 1}, kLeaf, "My"));
           }},
          {"iis-unbind",
           [](auto&, auto& i, auto&) {
             (void)run_sync(i.unbind({"Default Web Site", "*", 443, "", 0}));
           }},
          {"iis-remove-cert-if-unused",
           [](auto&, auto& i, auto&) { (void)run_sync(i.remove_certificate_if_unused("My", kOld)); }},
          {"sql-list-instances", [](auto&, auto&, auto& q) { (void)run_sync(q.list_instances()); }},
          {"sql-bind",
           [](auto&, auto&, auto& q) {
             (void)run_sync(q.bind({{"MSSQLSERVER"}, false}, kLeaf, "My"));
           }},
          {"sql-unbind",
           [](auto&, auto&, auto& q) {
             (void)run_sync(q.unbind({{"MSSQLSERVER"}, false}, kLeaf));
           }},
          {"sql-restart", [](auto&, auto&, auto& q) { (void)run_sync(q.restart({"MSSQLSERVER"})); }},
          {"csr-accept",
           [](auto& s, auto&, auto&) {
             const auto der =
                 *base64_decode(load_contract("csr-accept")["args"]["CertificateBase64"].get<std::string>());
             (void)run_sync(s.install_issued({"My", der}));
           }},
          {"host-info",
           [](auto&, auto& i, auto&) {
             (void)run_sync(i.bind({"Default Web Site", "*", 443, "", 1}, kLeaf, "My"));
           }},
      };
  std::size_t runs = 0;
  for (const auto& [op, invoke] : ops) {
    SCOPED_TRACE(op);
    json root = load_contract(op)["output"];
    auto visit = [&, op_name = op, call = invoke](const json& doc) {
      testing::FakeRunner runner;
      runner.answer_with_golden("host-info");
      runner.answer_with_golden("iis-bind");
      runner.answer(op_name, doc);
      auto caller = std::make_shared<ScriptCaller>(runner);
      RemoteCertStore store(caller);
      RemoteIisBindings iis(caller);
      RemoteSqlBindings sql(caller);
      call(store, iis, sql);
      ++runs;
    };
    mutate_each_value(root, visit, root, root);
  }
  EXPECT_GT(runs, 200u);
}

}  // namespace
}  // namespace wincert::certstore::remote
