// Inventory, add (PFX and DER) and remove against this machine's real LocalMachine stores, through the
// CertStore interface. Under Wine the stores are the test prefix's registry; on Windows they are real, so
// every test removes what it adds.
#include "certstore/local/local_cert_store.hpp"
#include "certstore/local/machine_key.hpp"
#include "certstore/local/operations.hpp"
#include "certstore/local/system_store.hpp"
#include "certstore/pkcs12.hpp"
#include "common/encoding.hpp"
#include "local_test_support.hpp"
#include "tests/support/result_matchers.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

namespace wincert::certstore::local {
namespace {

using namespace testing;

const InventoryEntry* find_entry(const StoreInventory& inventory, const std::string& thumbprint) {
  const auto it = std::find_if(inventory.entries.begin(), inventory.entries.end(),
                               [&](const InventoryEntry& e) { return e.thumbprint == thumbprint; });
  return it == inventory.entries.end() ? nullptr : &*it;
}

AddCertificateRequest pfx_request(const std::string& pfx_der, const std::string& password,
                                  const std::string& provider) {
  AddCertificateRequest request;
  request.store = "My";
  request.contents_base64 = Secret(base64_encode(pfx_der));
  request.password = Secret(password);
  request.label = "'test'";
  request.provider_name = provider;
  return request;
}

// Signs with the key the stored certificate links to and checks the signature with its public key.
void expect_linked_key_signs(const std::string& store, const std::string& thumbprint, const std::string& cert_der) {
  auto opened = open_machine_store(store, StoreAccess::kRead);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto cert = find_by_thumbprint(opened->get(), thumbprint);
  ASSERT_TRUE(cert.ok() && *cert);
  // Windows' own lookup works on Windows; Wine's drops the machine-keyset flag of the link (see README).
  EXPECT_TRUE(windows_acquires_key(store, thumbprint) || running_under_wine());
  auto link = key_link_of(cert->get());
  ASSERT_TRUE(link.has_value());
  auto key = MachineKey::open(*link);
  ASSERT_TRUE(key.ok()) << key.error().message;
  const std::string message = "signed by the key linked to " + thumbprint;
  auto signature = key->sign_digest(sha256(message), DigestAlgorithm::kSha256);
  ASSERT_TRUE(signature.ok()) << signature.error().message;
  EXPECT_TRUE(signature_verifies(cert_der, message, *signature));
}

class LocalStore : public ::testing::Test {
 protected:
  LocalCertStore backend;
};

TEST_F(LocalStore, InventoryOfRootListsTheSystemCertificates) {
  auto inventory = run(backend.inventory("Root"));
  ASSERT_TRUE(inventory.ok()) << inventory.error().message;
  EXPECT_EQ(inventory->store, "Root");
  // Wine fills Root from the host's CA bundle; Windows has its own roots.
  EXPECT_GT(inventory->entries.size(), 10u);
  EXPECT_TRUE(inventory->problems.empty()) << inventory->problems.front();
  for (const auto& entry : inventory->entries) {
    SCOPED_TRACE(entry.thumbprint);
    EXPECT_EQ(entry.thumbprint, thumbprint_of(entry.der));
    // The DER the inventory carries is a whole certificate (inventory itself decodes only thumbprint and SANs).
    auto info = parse_certificate_der(entry.der);
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(entry.thumbprint, info->thumbprint);
    EXPECT_FALSE(info->subject.empty());
    EXPECT_FALSE(entry.has_private_key);
    EXPECT_TRUE(entry.provider_name.empty());
  }
}

TEST_F(LocalStore, InventoryOfMyWorks) {
  auto inventory = run(backend.inventory("My"));
  ASSERT_TRUE(inventory.ok()) << inventory.error().message;
  for (const auto& entry : inventory->entries) EXPECT_EQ(entry.thumbprint, thumbprint_of(entry.der));
}

TEST_F(LocalStore, AMissingStoreIsAPermanentErrorNamingIt) {
  auto inventory = run(backend.inventory("NoSuchStore-wincert"));
  ASSERT_FALSE(inventory.ok());
  EXPECT_FALSE(inventory.error().retryable());
  // CertOpenStore's ERROR_FILE_NOT_FOUND, coded through the one Win32 table and kept in the detail.
  EXPECT_THAT(inventory, ErrorWith(ErrorCode::kNotFound, SystemStatus(SystemStatusKind::kWin32, ERROR_FILE_NOT_FOUND)));
  EXPECT_EQ(inventory.error().message, "the certificate store LocalMachine\\NoSuchStore-wincert does not exist");
}

// Debian's python3-cryptography-vectors: certificates without keys are added and removed everywhere. Their
// keys are EC P-256: Windows puts them in the key storage provider; under Wine, whose KSP persists no
// keys and whose CSPs hold only RSA, the add must fail cleanly and name the provider.
TEST_F(LocalStore, EveryPkcs12VectorIsAddedAndRemovedOrRefusedCleanly) {
  std::size_t added = 0, refused = 0;
  for (const auto& file : std::filesystem::directory_iterator(vectors_dir())) {
    const std::string name = file.path().filename().string();
    SCOPED_TRACE(name);
    const std::string password = name.starts_with("cert-") || name.starts_with("no-cert-key")
                                     ? "cryptography"
                                     : (name.ends_with("-no-pwd.p12") || name == "no-password.p12" ? "" : "password");
    const std::string der = read_file(file.path().string());
    auto pfx = open_pfx(der, Secret(password), "'" + name + "'");
    if (!pfx) {
      // Only the key-without-certificate file; the backend refuses it the same way.
      auto result = run(backend.add(pfx_request(der, password, "")));
      ASSERT_FALSE(result.ok());
      EXPECT_NE(result.error().message.find("holds no certificate"), std::string::npos);
      continue;
    }
    const std::string thumbprint = pfx->leaf->info.thumbprint;
    remove_if_present("My", thumbprint);

    auto result = run(backend.add(pfx_request(der, password, "")));
    if (pfx->has_private_key && running_under_wine()) {
      ASSERT_FALSE(result.ok());
      EXPECT_FALSE(result.error().retryable());
      EXPECT_NE(result.error().message.find("'Microsoft Software Key Storage Provider'"), std::string::npos)
          << result.error().message;
      if (password == "cryptography") {
        EXPECT_EQ(result.error().message.find(password), std::string::npos);
      }
      // A legacy CSP is refused before anything is written: it cannot hold EC keys.
      auto csp = run(backend.add(pfx_request(der, password, kAesCsp)));
      ASSERT_FALSE(csp.ok());
      EXPECT_NE(csp.error().message.find("can hold only RSA keys"), std::string::npos) << csp.error().message;
      EXPECT_FALSE(store_has("My", thumbprint));
      if (refused == 0)
        std::printf("[ wine     ] %s\n[ wine     ] %s\n", result.error().message.c_str(), csp.error().message.c_str());
      ++refused;
      continue;
    }
    ASSERT_TRUE(result.ok()) << result.error().message;
    EXPECT_EQ(result->thumbprint, thumbprint);
    EXPECT_EQ(result->outcome, AddOutcome::kAdded);
    EXPECT_EQ(result->has_private_key, pfx->has_private_key);
    if (pfx->has_private_key) {
      EXPECT_EQ(result->provider_name, "Microsoft Software Key Storage Provider");
      expect_linked_key_signs("My", thumbprint, pfx->leaf->der);
    }

    auto inventory = run(backend.inventory("My"));
    ASSERT_TRUE(inventory.ok()) << inventory.error().message;
    const InventoryEntry* entry = find_entry(*inventory, thumbprint);
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->has_private_key, pfx->has_private_key);
    EXPECT_EQ(entry->der, pfx->leaf->der);
    EXPECT_EQ(entry->friendly_name, pfx->leaf->friendly_name);  // name-unicode files: UTF-8 both ways

    const auto link = key_link_in_store("My", thumbprint);
    auto removed = run(backend.remove({"My", thumbprint, true}));
    ASSERT_TRUE(removed.ok()) << removed.error().message;
    EXPECT_TRUE(removed->found);
    EXPECT_TRUE(removed->removed);
    EXPECT_EQ(removed->key_removed, pfx->has_private_key);
    EXPECT_FALSE(store_has("My", thumbprint));
    if (link) {
      EXPECT_FALSE(key_exists(*link));
    }
    ++added;
  }
  EXPECT_GT(added, 5u);
  if (running_under_wine()) {
    EXPECT_GT(refused, 5u);
  }
}

// RSA PFX files made here go into a key provider under Wine as well (a CSP there).
TEST_F(LocalStore, RsaPfxIsImportedLinkedToItsKeyAndRemovedWithIt) {
  for (const bool legacy : {false, true}) {
    SCOPED_TRACE(legacy ? "RC2/3DES PFX" : "AES PFX");
    auto key = make_rsa_key(2048);
    auto cert = make_certificate(key.get(), legacy ? "legacy.example.com" : "rsa.example.com", false, nullptr, nullptr);
    const std::string cert_der = der_of(cert.get());
    const std::string thumbprint = thumbprint_of(cert_der);
    const std::string pfx = make_pfx(key.get(), cert.get(), {}, "p@ss \"word\"", "web tls", legacy);
    ASSERT_FALSE(pfx.empty());

    auto result = run(backend.add(pfx_request(pfx, "p@ss \"word\"", rsa_provider_for_this_platform())));
    ASSERT_TRUE(result.ok()) << result.error().message;
    EXPECT_EQ(result->outcome, AddOutcome::kAdded);
    EXPECT_TRUE(result->has_private_key);
    EXPECT_EQ(result->provider_name, rsa_provider_for_this_platform());
    expect_linked_key_signs("My", thumbprint, cert_der);

    auto inventory = run(backend.inventory("My"));
    ASSERT_TRUE(inventory.ok());
    const InventoryEntry* entry = find_entry(*inventory, thumbprint);
    ASSERT_NE(entry, nullptr);
    EXPECT_TRUE(entry->has_private_key);
    EXPECT_EQ(entry->provider_name, rsa_provider_for_this_platform());
    EXPECT_EQ(entry->friendly_name, "web tls");

    const auto link = key_link_in_store("My", thumbprint);
    ASSERT_TRUE(link.has_value());
    EXPECT_TRUE(link->machine());
    auto removed = run(backend.remove({"My", thumbprint, true}));
    ASSERT_TRUE(removed.ok()) << removed.error().message;
    EXPECT_TRUE(removed->key_removed);
    EXPECT_FALSE(key_exists(*link));
  }
}

TEST_F(LocalStore, OverwriteIsHonouredAndTheReplacedKeyIsCleanedUp) {
  auto key = make_rsa_key(2048);
  auto cert = make_certificate(key.get(), "overwrite.example.com", false, nullptr, nullptr);
  const std::string thumbprint = thumbprint_of(der_of(cert.get()));
  const std::string pfx = make_pfx(key.get(), cert.get(), {}, "pw", "");
  const std::string provider = rsa_provider_for_this_platform();

  auto first = run(backend.add(pfx_request(pfx, "pw", provider)));
  ASSERT_TRUE(first.ok()) << first.error().message;
  const auto first_link = key_link_in_store("My", thumbprint);
  ASSERT_TRUE(first_link.has_value());

  auto again = run(backend.add(pfx_request(pfx, "pw", provider)));
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->outcome, AddOutcome::kAlreadyPresent);
  EXPECT_TRUE(again->has_private_key);
  EXPECT_EQ(key_link_in_store("My", thumbprint)->container, first_link->container);

  auto request = pfx_request(pfx, "pw", provider);
  request.overwrite = true;
  auto replaced = run(backend.add(request));
  ASSERT_TRUE(replaced.ok()) << replaced.error().message;
  EXPECT_EQ(replaced->outcome, AddOutcome::kReplaced);
  EXPECT_TRUE(replaced->has_private_key);
  const auto second_link = key_link_in_store("My", thumbprint);
  ASSERT_TRUE(second_link.has_value());
  EXPECT_NE(second_link->container, first_link->container);
  EXPECT_FALSE(key_exists(*first_link)) << "the replaced certificate's key is orphaned";
  EXPECT_TRUE(key_exists(*second_link));

  auto removed = run(backend.remove({"My", thumbprint, true}));
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(removed->key_removed);
}

TEST_F(LocalStore, AKeySharedWithAnotherCertificateStaysUntilTheLastOneGoes) {
  auto key = make_rsa_key(2048);
  auto first = make_certificate(key.get(), "shared-1.example.com", false, nullptr, nullptr);
  auto second = make_certificate(key.get(), "shared-2.example.com", false, nullptr, nullptr);  // a renewal, same key
  const std::string first_thumbprint = thumbprint_of(der_of(first.get()));
  const std::string second_thumbprint = thumbprint_of(der_of(second.get()));
  auto added = run(
      backend.add(pfx_request(make_pfx(key.get(), first.get(), {}, "pw", ""), "pw", rsa_provider_for_this_platform())));
  ASSERT_TRUE(added.ok()) << added.error().message;
  const auto link = key_link_in_store("My", first_thumbprint);
  ASSERT_TRUE(link.has_value());

  // The renewal goes into another store, linked to the same key (as Windows renewals with key reuse are).
  {
    auto store = open_machine_store("CA", StoreAccess::kWrite);
    ASSERT_TRUE(store.ok()) << store.error().message;
    auto renewal = certificate_from_der(der_of(second.get()));
    ASSERT_TRUE(renewal.ok());
    ASSERT_TRUE(set_key_link(renewal->get(), *link).ok());
    ASSERT_TRUE(add_to_store(store->get(), renewal->get(), CERT_STORE_ADD_REPLACE_EXISTING).ok());
    ASSERT_TRUE(commit_changes(store->get(), "CA").ok());
  }
  ASSERT_TRUE(linked_key_opens("CA", second_thumbprint));

  auto removed_first = run(backend.remove({"My", first_thumbprint, true}));
  ASSERT_TRUE(removed_first.ok()) << removed_first.error().message;
  EXPECT_TRUE(removed_first->removed);
  EXPECT_FALSE(removed_first->key_removed);
  EXPECT_TRUE(key_exists(*link));

  auto removed_second = run(backend.remove({"CA", second_thumbprint, true}));
  ASSERT_TRUE(removed_second.ok()) << removed_second.error().message;
  EXPECT_TRUE(removed_second->key_removed);
  EXPECT_FALSE(key_exists(*link));
}

// Remove keeps the private key unless the store opted in (DeletePrivateKeyOnRemove): an HSM-backed key
// may be shared with other servers.
TEST_F(LocalStore, RemoveKeepsThePrivateKeyByDefault) {
  auto key = make_rsa_key(2048);
  auto cert = make_certificate(key.get(), "keep-key.example.com", false, nullptr, nullptr);
  const std::string thumbprint = thumbprint_of(der_of(cert.get()));
  auto added = run(
      backend.add(pfx_request(make_pfx(key.get(), cert.get(), {}, "pw", ""), "pw", rsa_provider_for_this_platform())));
  ASSERT_TRUE(added.ok()) << added.error().message;
  const auto link = key_link_in_store("My", thumbprint);
  ASSERT_TRUE(link.has_value());

  auto removed = run(backend.remove({"My", thumbprint}));
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  EXPECT_TRUE(removed->removed);
  EXPECT_FALSE(removed->key_removed);
  EXPECT_FALSE(store_has("My", thumbprint));
  EXPECT_TRUE(key_exists(*link)) << "the key must stay when DeletePrivateKeyOnRemove is off";
  discard_machine_key(*link);  // the test's own clean-up
}

TEST_F(LocalStore, ChainIntermediatesGoToTheCaStoreButNotTheRoot) {
  auto root_key = make_ec_key("P-256");
  auto root = make_certificate(root_key.get(), "wincert chain root", true, nullptr, nullptr);
  auto intermediate_key = make_ec_key("P-256");
  auto intermediate =
      make_certificate(intermediate_key.get(), "wincert chain intermediate", true, root.get(), root_key.get());
  auto leaf_key = make_rsa_key(2048);
  auto leaf = make_certificate(leaf_key.get(), "chain.example.com", false, intermediate.get(), intermediate_key.get());
  const std::string leaf_thumbprint = thumbprint_of(der_of(leaf.get()));
  const std::string intermediate_thumbprint = thumbprint_of(der_of(intermediate.get()));
  const std::string root_thumbprint = thumbprint_of(der_of(root.get()));

  auto request = pfx_request(make_pfx(leaf_key.get(), leaf.get(), {intermediate.get(), root.get()}, "pw", ""), "pw",
                             rsa_provider_for_this_platform());
  request.add_chain_to_ca_store = true;
  auto result = run(backend.add(request));
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->chain_added, std::vector<std::string>{intermediate_thumbprint});
  EXPECT_TRUE(store_has("CA", intermediate_thumbprint));
  EXPECT_FALSE(store_has("CA", root_thumbprint));
  EXPECT_FALSE(store_has("Root", root_thumbprint));

  ASSERT_TRUE(run(backend.remove({"My", leaf_thumbprint, true})).ok());
  ASSERT_TRUE(run(backend.remove({"CA", intermediate_thumbprint, true})).ok());
}

TEST_F(LocalStore, WrongPasswordOrMissingKeyChangesNothing) {
  auto key = make_rsa_key(2048);
  auto cert = make_certificate(key.get(), "refused.example.com", false, nullptr, nullptr);
  const std::string thumbprint = thumbprint_of(der_of(cert.get()));
  const std::string pfx = make_pfx(key.get(), cert.get(), {}, "right", "");

  auto wrong = run(backend.add(pfx_request(pfx, "wrong", rsa_provider_for_this_platform())));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(wrong.error().message.find("wrong password"), std::string::npos);
  EXPECT_EQ(wrong.error().message.find("right"), std::string::npos);

  AddCertificateRequest bare;  // IIS/SQL stores need the key: a bare certificate is refused up front
  bare.contents_base64 = Secret(base64_encode(der_of(cert.get())));
  bare.private_key_required = true;
  auto refused = run(backend.add(bare));
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(refused.error().message.find("holds no private key"), std::string::npos);

  auto unknown_provider = run(backend.add(pfx_request(pfx, "right", "No Such Provider v9")));
  ASSERT_FALSE(unknown_provider.ok());
  // The provider cannot import the key (NTE_NOT_SUPPORTED under Wine's CNG): the host cannot do it, not retried.
  EXPECT_THAT(unknown_provider, HasCode(ErrorCode::kFailedPrecondition));
  EXPECT_NE(unknown_provider.error().message.find("'No Such Provider v9'"), std::string::npos)
      << unknown_provider.error().message;

  auto missing_store = pfx_request(pfx, "right", rsa_provider_for_this_platform());
  missing_store.store = "NoSuchStore-wincert";
  auto no_store = run(backend.add(missing_store));
  ASSERT_FALSE(no_store.ok());
  EXPECT_THAT(no_store, HasCode(ErrorCode::kNotFound));
  EXPECT_EQ(no_store.error().message, "the certificate store LocalMachine\\NoSuchStore-wincert does not exist");
  EXPECT_FALSE(store_has("My", thumbprint));
}

TEST_F(LocalStore, RemovingWhatIsNotThereOrIsNotAThumbprint) {
  auto missing = run(backend.remove({"My", "00112233445566778899AABBCCDDEEFF00112233"}));
  ASSERT_TRUE(missing.ok()) << missing.error().message;
  EXPECT_FALSE(missing->found);
  EXPECT_FALSE(missing->removed);

  auto invalid = run(backend.remove({"My", "not-a-thumbprint"}));
  ASSERT_FALSE(invalid.ok());
  EXPECT_EQ(invalid.error().code, ErrorCode::kInvalidArgument);

  auto no_store = run(backend.remove({"NoSuchStore-wincert", "00112233445566778899AABBCCDDEEFF00112233"}));
  ASSERT_FALSE(no_store.ok());
  EXPECT_THAT(no_store, HasCode(ErrorCode::kNotFound));
}

TEST_F(LocalStore, AddNowOnlyImportsAndRefusesABindingBeforeTheMachineIsTouched) {
  auto key = make_rsa_key(2048);
  auto cert = make_certificate(key.get(), "bound.example.com", false, nullptr, nullptr);
  auto request = pfx_request(make_pfx(key.get(), cert.get(), {}, "pw", ""), "pw", rsa_provider_for_this_platform());
  request.steps.push_back(IisBindingStep{});
  auto iis = add_now(request);
  ASSERT_FALSE(iis.ok());
  EXPECT_EQ(iis.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(iis.error().message.find("make_local_cert_store"), std::string::npos) << iis.error().message;
  EXPECT_FALSE(store_has("My", thumbprint_of(der_of(cert.get()))));
}

}  // namespace
}  // namespace wincert::certstore::local
