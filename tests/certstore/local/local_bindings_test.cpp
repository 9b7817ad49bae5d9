// make_local_cert_store(): an add that carries an IIS or SQL binding imports through CryptoAPI, then binds
// through the IisBindings / SqlBindings it was given (recording fakes here: Wine has no IIS, and the SQL
// path has its own tests), then removes the replaced certificate if nothing uses it.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "certstore/local/local_bindings.hpp"
#include "certstore/x509.hpp"
#include "common/encoding.hpp"
#include "local_test_support.hpp"

namespace wincert::certstore::local {
namespace {

using namespace testing;

struct RecordingIis final : IisBindings {
  std::vector<std::string> calls;
  bool fail_bind = false;
  Task<std::vector<IisBinding>> list() override { co_return std::vector<IisBinding>{}; }
  Task<IisBindResult> bind(IisBindingRequest binding, std::string thumbprint, std::string store) override {
    calls.push_back("bind " + binding.site + " " + std::to_string(binding.port) + " " + thumbprint + " " + store);
    if (fail_bind) co_return Error::not_found("site 'Default Web Site' does not exist on this host");
    IisBindResult result;
    result.binding = IisBinding{binding.site, "https", binding.ip, binding.port, binding.host, thumbprint, store, 0};
    co_return result;
  }
  Task<bool> unbind(IisBindingRequest) override { co_return false; }
  Task<RemoveIfUnusedResult> remove_certificate_if_unused(std::string store, std::string thumbprint) override {
    calls.push_back("remove-if-unused " + store + " " + thumbprint);
    co_return RemoveIfUnusedResult{true, {}};
  }
};

struct RecordingSql final : SqlBindings {
  std::vector<std::string> calls;
  Task<std::vector<SqlInstance>> list_instances() override { co_return std::vector<SqlInstance>{}; }
  Task<std::vector<SqlInstanceBinding>> bind(SqlBindingRequest request, std::string thumbprint,
                                             std::string store) override {
    calls.push_back("bind " + request.instances.front() + " " + thumbprint + " " + store);
    co_return std::vector<SqlInstanceBinding>{{request.instances.front(), true, "C:\\key", false}};
  }
  Task<std::vector<SqlUnbindOutcome>> unbind(SqlBindingRequest, std::string) override {
    co_return std::vector<SqlUnbindOutcome>{};
  }
  Task<std::vector<SqlServiceState>> restart(std::vector<std::string>) override {
    co_return std::vector<SqlServiceState>{};
  }
};

class LocalBindingStore : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const auto& thumbprint : added_) remove_if_present("My", thumbprint);
  }
  AddCertificateRequest new_pfx(const std::string& name) {
    auto key = make_rsa_key(2048);
    auto cert = make_certificate(key.get(), name, false, nullptr, nullptr);
    added_.push_back(thumbprint_of(der_of(cert.get())));
    AddCertificateRequest request;
    request.store = "My";
    request.contents_base64 = Secret(base64_encode(make_pfx(key.get(), cert.get(), {}, "pw", "")));
    request.password = Secret(std::string("pw"));
    request.label = "'test'";
    request.provider_name = rsa_provider_for_this_platform();
    request.private_key_required = true;
    return request;
  }
  std::shared_ptr<RecordingIis> iis_ = std::make_shared<RecordingIis>();
  std::shared_ptr<RecordingSql> sql_ = std::make_shared<RecordingSql>();
  std::shared_ptr<CertStore> store_ = make_local_cert_store(iis_, sql_);
  std::vector<std::string> added_;
};

TEST_F(LocalBindingStore, IisAddImportsBindsThenRemovesTheReplacedCertificate) {
  auto request = new_pfx("iis.wincert.test");
  IisBindingRequest binding;
  binding.port = 8443;
  request.steps.push_back(IisBindingStep{binding, "00112233445566778899AABBCCDDEEFF00112233"});
  auto added = run(store_->add(request));
  ASSERT_TRUE(added.ok()) << added.error().message;
  const std::string thumbprint = added_.back();
  EXPECT_EQ(added->thumbprint, thumbprint);
  EXPECT_TRUE(store_has("My", thumbprint));
  const auto* iis_outcome = added->step<IisBindingOutcome>();
  ASSERT_NE(iis_outcome, nullptr);
  EXPECT_EQ(iis_outcome->binding.thumbprint, thumbprint);
  ASSERT_TRUE(iis_outcome->replaced.has_value());
  EXPECT_TRUE(iis_outcome->replaced->removed);
  EXPECT_EQ(iis_->calls, (std::vector<std::string>{"bind Default Web Site 8443 " + thumbprint + " My",
                                                   "remove-if-unused My 00112233445566778899AABBCCDDEEFF00112233"}));
  EXPECT_TRUE(sql_->calls.empty());
}

TEST_F(LocalBindingStore, SqlAddImportsThenBindsTheInstances) {
  auto request = new_pfx("sql.wincert.test");
  request.steps.push_back(SqlBindingStep{SqlBindingRequest{{"MSSQLSERVER"}, false}});
  auto added = run(store_->add(request));
  ASSERT_TRUE(added.ok()) << added.error().message;
  const auto* sql_outcome = added->step<SqlBindingOutcome>();
  ASSERT_NE(sql_outcome, nullptr);
  ASSERT_EQ(sql_outcome->instances.size(), 1u);
  EXPECT_TRUE(sql_outcome->instances[0].verified);
  EXPECT_EQ(sql_->calls, (std::vector<std::string>{"bind MSSQLSERVER " + added_.back() + " My"}));
  EXPECT_TRUE(iis_->calls.empty());
}

TEST_F(LocalBindingStore, AFailedBindingSaysTheCertificateStaysImported) {
  iis_->fail_bind = true;
  auto request = new_pfx("unbound.wincert.test");
  request.steps.push_back(IisBindingStep{});
  auto added = run(store_->add(request));
  ASSERT_FALSE(added.ok());
  EXPECT_NE(added.error().message.find("stays in LocalMachine\\My"), std::string::npos) << added.error().message;
  EXPECT_NE(added.error().message.find("does not exist"), std::string::npos) << added.error().message;
  EXPECT_TRUE(store_has("My", added_.back()));
}

TEST_F(LocalBindingStore, PlainAddsAndInventoryGoStraightToCryptoApi) {
  auto added = run(store_->add(new_pfx("plain.wincert.test")));
  ASSERT_TRUE(added.ok()) << added.error().message;
  auto inventory = run(store_->inventory("My"));
  ASSERT_TRUE(inventory.ok()) << inventory.error().message;
  bool found = false;
  for (const auto& entry : inventory->entries) found = found || entry.thumbprint == added_.back();
  EXPECT_TRUE(found);
  EXPECT_TRUE(iis_->calls.empty());
  EXPECT_TRUE(sql_->calls.empty());
}

}  // namespace
}  // namespace wincert::certstore::local
