// Store types as modules (jobs/store_types/): the registry is generated from the one list of store
// types, and each store type's handlers receive exactly the host services the type declares.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

#include "jobs/capabilities.hpp"
#include "jobs/store_types/store_type.hpp"
#include "test_util.hpp"

namespace wincert::jobs {
namespace {

using boost::asio::awaitable;
using certstore::Task;

Error unreachable() { return Error::unavailable("the test host answers nothing"); }

struct NoCertStore final : certstore::CertStore {
  Task<certstore::StoreInventory> inventory(std::string) override { co_return unreachable(); }
  Task<certstore::AddCertificateResult> add(certstore::AddCertificateRequest) override { co_return unreachable(); }
  Task<certstore::RemoveResult> remove(certstore::RemoveRequest) override { co_return unreachable(); }
  Task<certstore::CertificateRequest> create_csr(certstore::CsrRequest) override { co_return unreachable(); }
  Task<certstore::InstallIssuedResult> install_issued(certstore::InstallIssuedRequest) override {
    co_return unreachable();
  }
};

struct NoIis final : certstore::IisBindings {
  Task<std::vector<certstore::IisBinding>> list() override { co_return unreachable(); }
  Task<certstore::IisBindResult> bind(certstore::IisBindingRequest, std::string, std::string) override {
    co_return unreachable();
  }
  Task<bool> unbind(certstore::IisBindingRequest) override { co_return unreachable(); }
  Task<certstore::RemoveIfUnusedResult> remove_certificate_if_unused(std::string, std::string) override {
    co_return unreachable();
  }
};

struct NoSql final : certstore::SqlBindings {
  Task<std::vector<certstore::SqlInstance>> list_instances() override { co_return unreachable(); }
  Task<std::vector<certstore::SqlInstanceBinding>> bind(certstore::SqlBindingRequest, std::string,
                                                        std::string) override {
    co_return unreachable();
  }
  Task<std::vector<certstore::SqlUnbindOutcome>> unbind(certstore::SqlBindingRequest, std::string) override {
    co_return unreachable();
  }
  Task<std::vector<certstore::SqlServiceState>> restart(std::vector<std::string>) override { co_return unreachable(); }
};

// A host session that records which services a handler took from it.
class RecordingHostSession final : public certstore::HostSession {
 public:
  certstore::CertStore& certs() override {
    taken.insert("certs");
    return certs_;
  }
  certstore::IisBindings& iis() override {
    taken.insert("iis");
    return iis_;
  }
  certstore::SqlBindings& sql() override {
    taken.insert("sql");
    return sql_;
  }
  std::set<std::string> taken;
  NoCertStore certs_;
  NoIis iis_;
  NoSql sql_;
};

TEST(StoreTypeModules, TheRegistryIsGeneratedFromTheListOfStoreTypes) {
  const CapabilityRegistry registry = make_default_registry();
  std::set<std::string> expected;
  for (const StoreTypeModule& module : store_type_modules()) {
    SCOPED_TRACE(std::string(module.name));
    EXPECT_EQ(find_store_type(module.name), &module);
    EXPECT_EQ(store_type_name(module.properties), module.name);
    const StoreTypeHandlers handlers = module.make_handlers();
    for (JobKind kind : kJobKinds) {
      const std::string name = "CertStores." + std::string(module.name) + "." + std::string(job_kind_name(kind));
      ASSERT_NE(handlers.for_kind(kind), nullptr) << name << ": every store type handles every job kind";
      expected.insert(name);
      auto found = registry.find(name);
      ASSERT_TRUE(found.ok()) << name;
      EXPECT_EQ(typeid(*found.value()), typeid(*handlers.for_kind(kind))) << name;
    }
  }
  EXPECT_EQ(expected.size(), 9u);  // WinCert, IISU, WinSql x Inventory, Management, ReEnrollment
  const auto names = registry.capability_names();
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()), expected);
  EXPECT_EQ(names.size(), expected.size());
}

// The names are the extension manifest's, letter for letter (Command matches capabilities exactly).
TEST(StoreTypeModules, NamesAreSpelledAsTheManifestSpellsThem) {
  auto manifest = nlohmann::json::parse(testing::read_fixture("integration-manifest.json"));
  std::set<std::string> manifest_names;
  for (const auto& store_type : manifest["about"]["orchestrator"]["store_types"]) {
    manifest_names.insert(store_type["Capability"].get<std::string>());
  }
  for (const StoreTypeModule& module : store_type_modules()) {
    EXPECT_TRUE(manifest_names.count(std::string(module.name))) << module.name;
  }
  for (const auto& name : make_default_registry().capability_names()) {
    auto key = parse_capability(name);
    ASSERT_TRUE(key.ok()) << name;
    EXPECT_EQ(key->name(), name);
  }
}

// Each store type's handlers take from the host session exactly the services the type declares.
TEST(StoreTypeModules, EachHandlerReceivesTheServicesItsStoreTypeDeclares) {
  const std::map<std::string, std::set<std::string>> declared = {
      {"WinCert", {"certs"}}, {"IISU", {"certs", "iis"}}, {"WinSql", {"certs", "sql"}}};
  JobConfig config;
  config.store.store_path = "My";
  config.operation_type = OperationType::kAdd;
  Target target;
  JobCallbacks callbacks;
  for (const StoreTypeModule& module : store_type_modules()) {
    const StoreTypeHandlers handlers = module.make_handlers();
    for (JobKind kind : kJobKinds) {
      SCOPED_TRACE(std::string(module.name) + " " + std::string(job_kind_name(kind)));
      RecordingHostSession host;
      JobContext ctx{config, target, callbacks, JobLabel{"test", "My", "host", "job"}};
      (void)testing::run_awaitable(handlers.for_kind(kind)->run(ctx, host));
      EXPECT_EQ(host.taken, declared.at(std::string(module.name)));
    }
  }
}

// The typed session a handler gets refers to the host's own service objects.
struct CertsAndIis {
  certstore::CertStore& certs;
  certstore::IisBindings& iis;
  static CertsAndIis from(certstore::HostSession& host) { return {host.certs(), host.iis()}; }
};

class ProbeHandler final : public TypedHandler<CertsAndIis> {
 public:
  std::string job_kind(const JobConfig&) const override { return "Probe"; }
  Idempotence idempotence() const override { return Idempotence::kIdempotent; }
  awaitable<JobResult> run_with(JobContext&, const CertsAndIis& services) override {
    certs = &services.certs;
    iis = &services.iis;
    co_return JobResult::success(1);
  }
  const certstore::CertStore* certs = nullptr;
  const certstore::IisBindings* iis = nullptr;
};

TEST(StoreTypeModules, ATypedHandlerGetsTheHostsServicesByReference) {
  RecordingHostSession host;
  ProbeHandler handler;
  JobConfig config;
  Target target;
  JobCallbacks callbacks;
  JobContext ctx{config, target, callbacks, JobLabel{}};
  auto result = testing::run_awaitable(handler.run(ctx, host));
  EXPECT_EQ(result.status, JobStatus::kSuccess);
  EXPECT_EQ(handler.certs, &host.certs_);
  EXPECT_EQ(handler.iis, &host.iis_);
  EXPECT_EQ(host.taken, (std::set<std::string>{"certs", "iis"}));
}

TEST(StoreTypeModules, AHostSessionHandleIsNeverEmpty) {
  EXPECT_THROW(HostSessionHandle(nullptr), std::invalid_argument);
  auto session = std::make_shared<RecordingHostSession>();
  HostSessionHandle handle(session);
  EXPECT_EQ(&*handle, session.get());
}

}  // namespace
}  // namespace wincert::jobs
