// Handlers against fake CertStore / IisBindings / SqlBindings that record every call and keep a tiny
// model of the host (stores, IIS bindings, SQL instances), driven through run_job() with real fixtures.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "common/encoding.hpp"
#include "common/log.hpp"
#include "jobs/alias.hpp"
#include "jobs/capabilities.hpp"
#include "test_util.hpp"

namespace wincert::jobs {
namespace {

using boost::asio::awaitable;
using certstore::Task;
using testing::read_fixture;
using testing::run_awaitable;

constexpr const char* kOld = "D263D275D35E881C2AAFAC6AAC1E59AE384DB486";
constexpr const char* kNew = "1111111111111111111111111111111111111111";
constexpr const char* kOther = "2222222222222222222222222222222222222222";

// The host the fakes share.
struct FakeHost {
  std::vector<std::string> calls;
  std::map<std::string, std::vector<certstore::InventoryEntry>> stores;  // store -> certificates
  std::vector<certstore::IisBinding> bindings;
  std::vector<certstore::SqlInstance> instances;
  std::set<std::string> providers{"Microsoft Enhanced RSA and AES Cryptographic Provider",
                                  "Microsoft Software Key Storage Provider"};
  std::string next_thumbprint = kNew;
  std::optional<certstore::AddCertificateRequest> last_add;
  std::optional<certstore::CsrRequest> last_csr;
  std::string installed_der;
  bool restart_fails = false;
  std::optional<Error> fail_next_add;
  std::optional<std::size_t> inventory_breaks_after;  // read_inventory fails after this many certificates

  static certstore::InventoryEntry entry(const std::string& thumb, bool key = true) {
    certstore::InventoryEntry e;
    e.der = "DER-of-" + thumb;
    e.thumbprint = thumb;
    e.has_private_key = key;
    e.provider_name = key ? "Microsoft Software Key Storage Provider" : "";
    e.sans = {{certstore::SanType::kDns, "www.example.com"}, {certstore::SanType::kIp, "10.0.0.5"}};
    return e;
  }
  bool has_cert(const std::string& store, const std::string& thumb) const {
    auto it = stores.find(store);
    if (it == stores.end()) return false;
    return std::any_of(it->second.begin(), it->second.end(), [&](const auto& e) { return e.thumbprint == thumb; });
  }
  bool erase_cert(const std::string& store, const std::string& thumb) {
    auto& v = stores[store];
    auto before = v.size();
    v.erase(std::remove_if(v.begin(), v.end(), [&](const auto& e) { return e.thumbprint == thumb; }), v.end());
    return v.size() != before;
  }
  std::vector<std::string> sites_using(const std::string& thumb) const {
    std::vector<std::string> sites;
    for (const auto& b : bindings) {
      if (b.thumbprint == thumb) sites.push_back(b.site);
    }
    return sites;
  }
  static bool same_binding(const certstore::IisBinding& b, const certstore::IisBindingRequest& r) {
    return b.protocol == "https" && b.site == r.site && same_ip_address(b.ip, r.ip) && b.port == r.port &&
           b.host == r.host;
  }
  void bind_iis(const certstore::IisBindingRequest& r, const std::string& thumb, const std::string& store) {
    bindings.erase(std::remove_if(bindings.begin(), bindings.end(), [&](const auto& b) { return same_binding(b, r); }),
                   bindings.end());
    bindings.push_back({r.site, "https", r.ip, r.port, r.host, thumb, store, r.ssl_flags});
  }
  certstore::RemoveIfUnusedResult remove_if_unused(const std::string& store, const std::string& thumb) {
    certstore::RemoveIfUnusedResult r;
    r.still_bound_sites = sites_using(thumb);
    if (r.still_bound_sites.empty()) r.removed = erase_cert(store, thumb);
    return r;
  }
};

class BreakingReader final : public certstore::InventoryReader {
 public:
  BreakingReader(std::vector<certstore::InventoryEntry> entries, std::size_t good)
      : entries_(std::move(entries)), good_(good) {}
  Result<std::optional<certstore::InventoryEntry>> next() override {
    if (next_ == good_) return Error::unavailable("store-inventory on host 'web01': the connection was reset");
    if (next_ == entries_.size()) return std::optional<certstore::InventoryEntry>();
    return std::optional<certstore::InventoryEntry>(entries_[next_++]);
  }

 private:
  std::vector<certstore::InventoryEntry> entries_;
  std::size_t good_;
  std::size_t next_ = 0;
};

class FakeCertStore final : public certstore::CertStore {
 public:
  explicit FakeCertStore(FakeHost& host) : host_(host) {}

  Task<certstore::StoreInventory> inventory(std::string store) override {
    host_.calls.push_back("inventory " + store);
    certstore::StoreInventory inv;
    inv.store = store;
    inv.entries = host_.stores[store];
    co_return inv;
  }

  // The host's output breaks off part-way (a connection lost mid-inventory) when the test asks for it.
  Task<std::unique_ptr<certstore::InventoryReader>> read_inventory(std::string store) override {
    if (!host_.inventory_breaks_after) co_return co_await CertStore::read_inventory(std::move(store));
    host_.calls.push_back("inventory " + store);
    co_return std::unique_ptr<certstore::InventoryReader>(
        new BreakingReader(host_.stores[store], *host_.inventory_breaks_after));
  }

  Task<certstore::AddCertificateResult> add(certstore::AddCertificateRequest request) override {
    host_.calls.push_back("add " + request.store);
    host_.last_add = request;
    if (host_.fail_next_add) {
      Error e = *host_.fail_next_add;
      host_.fail_next_add.reset();
      co_return e;
    }
    if (!request.provider_name.empty() && !host_.providers.count(request.provider_name)) {
      co_return Error::failed_precondition("crypto provider '" + request.provider_name +
                                           "' is not installed on the host");
    }
    certstore::AddCertificateResult result;
    result.thumbprint = host_.next_thumbprint;
    if (host_.has_cert(request.store, result.thumbprint)) {
      if (!request.overwrite) {
        result.outcome = certstore::AddOutcome::kAlreadyPresent;
      } else {
        result.outcome = certstore::AddOutcome::kReplaced;
        host_.erase_cert(request.store, result.thumbprint);
      }
    }
    if (result.outcome != certstore::AddOutcome::kAlreadyPresent) {
      host_.stores[request.store].push_back(FakeHost::entry(result.thumbprint));
    }
    for (const auto& step : request.steps) {
      if (const auto* iis = std::get_if<certstore::IisBindingStep>(&step)) {
        host_.bind_iis(iis->binding, result.thumbprint, request.store);
        certstore::IisBindingOutcome outcome{host_.bindings.back(), std::nullopt};
        if (!iis->replaced_thumbprint.empty()) {
          auto cleanup = host_.remove_if_unused(request.store, iis->replaced_thumbprint);
          outcome.replaced =
              certstore::ReplacedCertificate{iis->replaced_thumbprint, cleanup.removed, cleanup.still_bound_sites};
        }
        result.steps.emplace_back(std::move(outcome));
      } else if (const auto* sql = std::get_if<certstore::SqlBindingStep>(&step)) {
        certstore::SqlBindingOutcome outcome;
        for (auto& instance : host_.instances) {
          if (std::find(sql->binding.instances.begin(), sql->binding.instances.end(), instance.name) !=
              sql->binding.instances.end()) {
            instance.thumbprint = result.thumbprint;
            outcome.instances.push_back({instance.name, true, "key", false});
          }
        }
        result.steps.emplace_back(std::move(outcome));
      }
    }
    co_return result;
  }

  Task<certstore::RemoveResult> remove(certstore::RemoveRequest request) override {
    host_.calls.push_back("remove " + request.store + " " + request.thumbprint +
                          (request.delete_unused_key ? " delete-key" : " keep-key"));
    certstore::RemoveResult r;
    r.found = host_.erase_cert(request.store, request.thumbprint);
    r.removed = r.found;
    r.key_removed = r.found && request.delete_unused_key;
    co_return r;
  }

  Task<certstore::CertificateRequest> create_csr(certstore::CsrRequest request) override {
    host_.calls.push_back("create_csr " + request.store);
    host_.last_csr = request;
    certstore::CertificateRequest r;
    r.info.der = "CSR-DER";
    co_return r;
  }

  Task<certstore::InstallIssuedResult> install_issued(certstore::InstallIssuedRequest request) override {
    host_.calls.push_back("install_issued " + request.store);
    host_.installed_der = request.certificate_der;
    host_.stores[request.store].push_back(FakeHost::entry(host_.next_thumbprint));
    co_return certstore::InstallIssuedResult{host_.next_thumbprint, true};
  }

 private:
  FakeHost& host_;
};

class FakeIis final : public certstore::IisBindings {
 public:
  explicit FakeIis(FakeHost& host) : host_(host) {}
  Task<std::vector<certstore::IisBinding>> list() override {
    host_.calls.push_back("iis list");
    co_return host_.bindings;
  }
  Task<certstore::IisBindResult> bind(certstore::IisBindingRequest binding, std::string thumbprint,
                                      std::string store) override {
    host_.calls.push_back("iis bind " + binding.site + " " +
                          binding_information(binding.ip, static_cast<std::uint16_t>(binding.port), binding.host) +
                          " " + thumbprint);
    host_.bind_iis(binding, thumbprint, store);
    co_return certstore::IisBindResult{host_.bindings.back(), false};
  }
  Task<bool> unbind(certstore::IisBindingRequest binding) override {
    host_.calls.push_back("iis unbind " + binding.site + " " +
                          binding_information(binding.ip, static_cast<std::uint16_t>(binding.port), binding.host));
    auto before = host_.bindings.size();
    host_.bindings.erase(std::remove_if(host_.bindings.begin(), host_.bindings.end(),
                                        [&](const auto& b) { return FakeHost::same_binding(b, binding); }),
                         host_.bindings.end());
    co_return host_.bindings.size() != before;
  }
  Task<certstore::RemoveIfUnusedResult> remove_certificate_if_unused(std::string store,
                                                                     std::string thumbprint) override {
    host_.calls.push_back("iis remove_if_unused " + store + " " + thumbprint);
    co_return host_.remove_if_unused(store, thumbprint);
  }

 private:
  FakeHost& host_;
};

class FakeSql final : public certstore::SqlBindings {
 public:
  explicit FakeSql(FakeHost& host) : host_(host) {}
  Task<std::vector<certstore::SqlInstance>> list_instances() override {
    host_.calls.push_back("sql list");
    co_return host_.instances;
  }
  Task<std::vector<certstore::SqlInstanceBinding>> bind(certstore::SqlBindingRequest request, std::string thumbprint,
                                                        std::string) override {
    host_.calls.push_back("sql bind " + join_names(request.instances) + " " + thumbprint +
                          (request.restart_service ? " restart" : ""));
    std::vector<certstore::SqlInstanceBinding> out;
    for (auto& i : host_.instances) {
      if (std::find(request.instances.begin(), request.instances.end(), i.name) != request.instances.end()) {
        i.thumbprint = thumbprint;
        out.push_back({i.name, true, "key", false});
      }
    }
    co_return out;
  }
  // Blanks every listed instance, as the extension's script does: the handler must only list the
  // instances bound to the certificate being removed.
  Task<std::vector<certstore::SqlUnbindOutcome>> unbind(certstore::SqlBindingRequest request,
                                                        std::string thumbprint) override {
    host_.calls.push_back("sql unbind " + join_names(request.instances) + " " + thumbprint);
    std::vector<certstore::SqlUnbindOutcome> out;
    for (auto& i : host_.instances) {
      if (std::find(request.instances.begin(), request.instances.end(), i.name) != request.instances.end()) {
        out.push_back({i.name, true, i.thumbprint, false});
        i.thumbprint.clear();
      }
    }
    co_return out;
  }
  Task<std::vector<certstore::SqlServiceState>> restart(std::vector<std::string> instances) override {
    host_.calls.push_back("sql restart " + join_names(instances));
    if (host_.restart_fails) co_return Error::deadline_exceeded("service MSSQLSERVER did not start within 90 s");
    co_return std::vector<certstore::SqlServiceState>{};
  }
  static std::string join_names(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
    return out;
  }

 private:
  FakeHost& host_;
};

// Every fake service of the host, as one host session.
class FakeHostSession final : public certstore::HostSession {
 public:
  explicit FakeHostSession(FakeHost& host) : certs_(host), iis_(host), sql_(host) {}
  certstore::CertStore& certs() override { return certs_; }
  certstore::IisBindings& iis() override { return iis_; }
  certstore::SqlBindings& sql() override { return sql_; }

 private:
  FakeCertStore certs_;
  FakeIis iis_;
  FakeSql sql_;
};

class FakeSessions final : public StoreSessionFactory {
 public:
  explicit FakeSessions(FakeHost& host) : host_(host) {}
  awaitable<Result<HostSessionHandle>> open(const Target& target) override {
    targets.push_back(target.local ? "local" : target.remote.endpoint_url);
    if (fail_open) co_return Error::unavailable("connection refused by " + target.remote.endpoint_url);
    co_return HostSessionHandle(std::make_shared<FakeHostSession>(host_));
  }
  std::vector<std::string> targets;
  bool fail_open = false;

 private:
  FakeHost& host_;
};

// Captures everything the "jobs" logger writes while a test runs.
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_)) {
    log_ = logger("jobs");
    previous_level_ = log_->level();
    log_->set_level(spdlog::level::trace);
    log_->sinks().push_back(sink_);
  }
  ~LogCapture() {
    auto& sinks = log_->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
    log_->set_level(previous_level_);
  }
  std::string text() {
    log_->flush();
    return stream_.str();
  }

 private:
  std::ostringstream stream_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> log_;
  spdlog::level::level_enum previous_level_ = spdlog::level::info;
};

class HandlerTest : public ::testing::Test {
 protected:
  HandlerTest() : sessions_(host_) {
    services_.sessions = &sessions_;
    services_.retry.base_delay = std::chrono::milliseconds(1);  // transient failures retry without slowing tests
    services_.callbacks.begin_inventory =
        collect_inventory([this](std::vector<InventoryItem> items) -> awaitable<Status> {
          submitted_.push_back(std::move(items));
          co_return Status{};
        });
    services_.callbacks.submit_csr =
        [this](const certstore::CertificateRequest& csr) -> awaitable<Result<std::string>> {
      csrs_.push_back(csr.base64());
      if (ca_refuses_) co_return Error::permission_denied("template WebServer denied the request");
      co_return base64_encode(std::string("ISSUED-DER"));
    };
  }

  // A fixture with overrides applied, parsed.
  JobConfig load(const std::string& fixture, const std::vector<std::string>& overrides) {
    std::string text = read_fixture(fixture);
    for (const auto& o : overrides) {
      auto edited = apply_override(text, o);
      EXPECT_TRUE(edited.ok()) << o << ": " << (edited.ok() ? "" : edited.error().message);
      if (edited.ok()) text = edited.value();
    }
    auto parsed = parse_job_config(text);
    EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.error().message);
    return parsed.ok() ? std::move(parsed).value() : JobConfig{};
  }

  // Management.json made runnable against host web01 over https.
  JobConfig management(const std::string& capability, int op, std::vector<std::string> more = {}) {
    std::vector<std::string> o = {"Capability=" + capability,
                                  "OperationType=" + std::to_string(op),
                                  "CertificateStoreDetails.ClientMachine=web01",
                                  "CertificateStoreDetails.StorePath=My",
                                  "CertificateStoreDetails.Properties.WinRm Protocol=https",
                                  "CertificateStoreDetails.Properties.WinRm Port=5986",
                                  "JobProperties.SiteName=Default Web Site",
                                  "JobProperties.IPAddress=*",
                                  "JobProperties.Port=443",
                                  "JobProperties.SniFlag=0 - No SNI",
                                  "JobProperties.Protocol=https"};
    o.insert(o.end(), more.begin(), more.end());
    return load("Management.json", o);
  }

  JobConfig reenrollment(const std::string& capability, std::vector<std::string> more = {}) {
    std::vector<std::string> o = {"Capability=" + capability,
                                  "CertificateStoreDetails.ClientMachine=web01",
                                  "CertificateStoreDetails.StorePath=My",
                                  "CertificateStoreDetails.Properties.WinRm Protocol=https",
                                  "CertificateStoreDetails.Properties.WinRm Port=5986",
                                  "JobProperties.SiteName=Default Web Site",
                                  "JobProperties.IPAddress=*",
                                  "JobProperties.Port=443",
                                  "JobProperties.SniFlag=1",
                                  "JobProperties.HostName=www.example.com",
                                  "JobProperties.Protocol=https",
                                  "JobProperties.subjectText=CN=www.example.com,O=Keyfactor\\, Inc",
                                  "JobProperties.keyType=ECC",
                                  "JobProperties.keySize=P-256",
                                  "SANs.dns=www.example.com",
                                  "SANs.ip4=10.0.0.5"};
    o.insert(o.end(), more.begin(), more.end());
    return load("Management.json", o);
  }

  JobResult run(const JobConfig& config) { return run_awaitable(run_job(registry_, config, services_)); }

  bool called(const std::string& prefix) const {
    return std::any_of(host_.calls.begin(), host_.calls.end(), [&](const auto& c) { return c.rfind(prefix, 0) == 0; });
  }

  FakeHost host_;
  FakeSessions sessions_;
  JobServices services_;
  CapabilityRegistry registry_ = make_default_registry();
  std::vector<std::vector<InventoryItem>> submitted_;
  std::vector<std::string> csrs_;
  bool ca_refuses_ = false;
};

// ---- inventory ----

TEST_F(HandlerTest, WinCertInventoryFromTheFixture) {
  host_.stores["My"] = {FakeHost::entry(kOld), FakeHost::entry(kOther, false)};
  JobConfig config = load("WinCertInventory.json", {"CertificateStoreDetails.Properties.WinRm Protocol=http"});
  JobResult result = run(config);
  ASSERT_EQ(result.status, JobStatus::kSuccess) << result.message;
  EXPECT_EQ(result.job_history_id, 26010);
  EXPECT_EQ(sessions_.targets, std::vector<std::string>{"http://vmlabsvr1:5985/wsman"});
  ASSERT_EQ(submitted_.size(), 1u);
  const auto& items = submitted_[0];
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].alias, kOld);
  EXPECT_TRUE(items[0].private_key_entry);
  EXPECT_EQ(items[0].item_status, ItemStatus::kUnknown);
  EXPECT_FALSE(items[0].use_chain_level);
  EXPECT_EQ(items[0].certificates, std::vector<std::string>{base64_encode(std::string("DER-of-") + kOld)});
  const std::vector<std::pair<std::string, std::string>> params = {
      {"ProviderName", "Microsoft Software Key Storage Provider"},
      {"SAN", "DNS Name=www.example.com; IP Address=10.0.0.5"}};
  EXPECT_EQ(items[0].parameters, params);
  EXPECT_FALSE(items[1].private_key_entry);
  EXPECT_NE(result.message.find("2 item"), std::string::npos);
}

// The host's canonical base64 (InventoryEntry::base64) goes to Command as it is; without it the DER is encoded.
TEST_F(HandlerTest, WinCertInventorySendsTheHostsBase64WhenItHasIt) {
  auto with_text = FakeHost::entry(kOld);
  with_text.base64 = base64_encode(with_text.der);
  host_.stores["My"] = {with_text, FakeHost::entry(kOther)};
  JobResult result = run(load("WinCertInventory.json", {"CertificateStoreDetails.Properties.WinRm Protocol=http"}));
  ASSERT_EQ(result.status, JobStatus::kSuccess) << result.message;
  ASSERT_EQ(submitted_.size(), 1u);
  ASSERT_EQ(submitted_[0].size(), 2u);
  EXPECT_EQ(submitted_[0][0].certificates, std::vector<std::string>{with_text.base64});
  EXPECT_EQ(submitted_[0][1].certificates, std::vector<std::string>{base64_encode(std::string("DER-of-") + kOther)});
}

// The store's output breaks off after two certificates: the job fails (and is retried, the error being
// transient), and Command is sent nothing of the partial inventory.
TEST_F(HandlerTest, AnInventoryThatBreaksOffPartWaySubmitsNothing) {
  host_.stores["My"] = {FakeHost::entry(kOld), FakeHost::entry(kOther), FakeHost::entry(kNew)};
  host_.inventory_breaks_after = 2;
  services_.retry.max_attempts = 2;
  JobResult result = run(load("WinCertInventory.json", {"CertificateStoreDetails.Properties.WinRm Protocol=http"}));
  EXPECT_EQ(result.status, JobStatus::kFailure);
  EXPECT_NE(result.message.find("the connection was reset"), std::string::npos) << result.message;
  EXPECT_TRUE(submitted_.empty());
  EXPECT_EQ(std::count(host_.calls.begin(), host_.calls.end(), "inventory My"), 2);  // retried once
}

TEST_F(HandlerTest, IisuInventoryOneItemPerHttpsBinding) {
  host_.stores["My"] = {FakeHost::entry(kOld)};
  host_.stores["WebHosting"] = {FakeHost::entry(kOther)};
  host_.bindings = {
      {"Default Web Site", "https", "*", 443, "", kOld, "My", 0},
      {"Shop", "https", "2001:db8::1", 8443, "shop.example.com", kOld, "My", 1},
      {"Api", "https", "10.0.0.5", 443, "", kOther, "WebHosting", 0},
      {"Default Web Site", "http", "*", 80, "", "", "", 0},
      {"NoCert", "https", "*", 9443, "", "", "", 0},
      {"net.tcp", "net.tcp", "808:*", 0, "", "", "", 0},
  };
  JobResult result = run(load("WinIISInventory.json", {}));
  ASSERT_EQ(result.status, JobStatus::kSuccess) << result.message;
  ASSERT_EQ(submitted_.size(), 1u);
  const auto& items = submitted_[0];
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].alias, std::string(kOld) + ":Default Web Site:*:443:");
  EXPECT_EQ(items[1].alias, std::string(kOld) + ":Shop:[2001:db8::1]:8443:shop.example.com");
  EXPECT_EQ(items[2].alias, std::string(kOther) + ":Api:10.0.0.5:443:");
  const std::vector<std::pair<std::string, std::string>> params = {
      {"SiteName", "Shop"},
      {"Port", "8443"},
      {"IPAddress", "2001:db8::1"},
      {"HostName", "shop.example.com"},
      {"SniFlag", "1"},
      {"Protocol", "https"},
      {"ProviderName", "Microsoft Software Key Storage Provider"},
      {"SAN", "DNS Name=www.example.com; IP Address=10.0.0.5"}};
  EXPECT_EQ(items[1].parameters, params);
  // Every alias it produces parses back to its binding.
  auto parsed = parse_iis_alias(items[1].alias);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->ip_address, "2001:db8::1");
}

TEST_F(HandlerTest, IisuInventoryWarnsAboutBindingsToMissingCertificates) {
  host_.bindings = {{"Default Web Site", "https", "*", 443, "", kOld, "My", 0}};
  JobResult result = run(load("WinIISInventory.json", {}));
  EXPECT_EQ(result.status, JobStatus::kWarning) << result.message;
  EXPECT_NE(result.message.find(kOld), std::string::npos);
  ASSERT_EQ(submitted_.size(), 1u);
  EXPECT_TRUE(submitted_[0].empty());
}

TEST_F(HandlerTest, WinSqlInventoryGroupsInstancesByThumbprint) {
  host_.stores["My"] = {FakeHost::entry(kOld), FakeHost::entry(kOther)};
  host_.instances = {{"MSSQLSERVER", "MSSQL16.MSSQLSERVER", kOld, "MSSQLSERVER", ""},
                     {"SQLEXPRESS", "MSSQL16.SQLEXPRESS", kOther, "MSSQL$SQLEXPRESS", ""},
                     {"REPORTING", "MSSQL16.REPORTING", kOld, "MSSQL$REPORTING", ""},
                     {"NOTLS", "MSSQL16.NOTLS", "", "MSSQL$NOTLS", ""}};
  JobResult result = run(load("WinIISInventory.json", {"Capability=CertStores.WinSql.Inventory"}));
  ASSERT_EQ(result.status, JobStatus::kSuccess) << result.message;
  ASSERT_EQ(submitted_.size(), 1u);
  const auto& items = submitted_[0];
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].alias, kOld);
  const std::vector<std::pair<std::string, std::string>> params = {
      {"InstanceName", "MSSQLSERVER,REPORTING"}, {"ProviderName", "Microsoft Software Key Storage Provider"}};
  EXPECT_EQ(items[0].parameters, params);
  EXPECT_EQ(items[1].alias, kOther);
}

// ---- management: WinCert ----

TEST_F(HandlerTest, WinCertAddPassesOverwriteProviderAndSecretsToTheStore) {
  JobConfig config =
      management("CertStores.WinCert.Management", 2,
                 {"Overwrite=true", "JobProperties.ProviderName=Microsoft Software Key Storage Provider"});
  JobResult result = run(config);
  ASSERT_EQ(result.status, JobStatus::kSuccess) << result.message;
  EXPECT_EQ(result.job_history_id, 26009);
  ASSERT_TRUE(host_.last_add.has_value());
  EXPECT_EQ(host_.last_add->store, "My");
  EXPECT_TRUE(host_.last_add->overwrite);
  EXPECT_EQ(host_.last_add->provider_name, "Microsoft Software Key Storage Provider");
  EXPECT_EQ(host_.last_add->contents_base64.reveal(), "CertificateContentGoesHere");
  EXPECT_EQ(host_.last_add->password.reveal(), "sldfklsdfsldjfk");
  EXPECT_TRUE(host_.last_add->steps.empty()) << "WinCert imports only";
  EXPECT_TRUE(host_.has_cert("My", kNew));
  EXPECT_EQ(sessions_.targets, std::vector<std::string>{"https://web01:5986/wsman"});
}

TEST_F(HandlerTest, WinCertAddWithoutOverwriteLeavesAnExistingCertificate) {
  host_.stores["My"] = {FakeHost::entry(kNew)};
  JobResult result = run(management("CertStores.WinCert.Management", 2));
  ASSERT_EQ(result.status, JobStatus::kSuccess) << result.message;
  EXPECT_FALSE(host_.last_add->overwrite);
  EXPECT_NE(result.message.find("already in the store"), std::string::npos);
}

TEST_F(HandlerTest, WinCertAddWithUnknownProviderFails) {
  JobResult result = run(management("CertStores.WinCert.Management", 2, {"JobProperties.ProviderName=Bogus KSP"}));
  ASSERT_EQ(result.status, JobStatus::kFailure);
  EXPECT_EQ(result.message.rfind("Management Add failed on store 'My' at host 'web01' (job "
                                 "5f5addc3-afc9-4789-a0fe-04c6e623c233): ",
                                 0),
            0u)
      << result.message;
  EXPECT_NE(result.message.find("Bogus KSP"), std::string::npos);
  EXPECT_EQ(result.error_code, ErrorCode::kFailedPrecondition);
  EXPECT_FALSE(host_.has_cert("My", kNew));
}

TEST_F(HandlerTest, WinCertRemoveByThumbprint) {
  host_.stores["My"] = {FakeHost::entry(kOld)};
  JobConfig config =
      load("ManagementRemove.json",
           {"Capability=CertStores.WinCert.Management", "CertificateStoreDetails.ClientMachine=web01",
            "CertificateStoreDetails.StorePath=My", "CertificateStoreDetails.Properties.WinRm Protocol=https",
            "CertificateStoreDetails.Properties.WinRm Port=5986"});
  JobResult result = run(config);
  ASSERT_EQ(result.status, JobStatus::kSuccess) << result.message;
  EXPECT_EQ(result.job_history_id, 26019);
  EXPECT_FALSE(host_.has_cert("My", kOld));

  JobResult again = run(config);  // now it is gone: not found is a Failure
  ASSERT_EQ(again.status, JobStatus::kFailure);
  EXPECT_NE(again.message.find("was not found in store 'My'"), std::string::npos) << again.message;
  EXPECT_EQ(again.error_code, ErrorCode::kNotFound);
}

// Remove keeps the private key unless the store property DeletePrivateKeyOnRemove is true (the extension
// never deletes it; an HSM-backed key may be shared with other servers).
TEST_F(HandlerTest, WinCertRemoveKeepsThePrivateKeyUnlessTheStoreOptsIn) {
  const std::vector<std::string> base = {
      "Capability=CertStores.WinCert.Management", "CertificateStoreDetails.ClientMachine=web01",
      "CertificateStoreDetails.StorePath=My", "CertificateStoreDetails.Properties.WinRm Protocol=https",
      "CertificateStoreDetails.Properties.WinRm Port=5986"};
  host_.stores["My"] = {FakeHost::entry(kOld)};
  JobResult kept = run(load("ManagementRemove.json", base));
  ASSERT_EQ(kept.status, JobStatus::kSuccess) << kept.message;
  EXPECT_TRUE(called(std::string("remove My ") + kOld + " keep-key"));
  EXPECT_NE(kept.message.find("its private key was kept (store property DeletePrivateKeyOnRemove"), std::string::npos)
      << kept.message;

  for (const char* value : {"false", "FALSE"}) {
    host_.stores["My"] = {FakeHost::entry(kOld)};
    host_.calls.clear();
    auto explicit_off = base;
    explicit_off.push_back(std::string("CertificateStoreDetails.Properties.DeletePrivateKeyOnRemove=") + value);
    ASSERT_EQ(run(load("ManagementRemove.json", explicit_off)).status, JobStatus::kSuccess);
    EXPECT_TRUE(called(std::string("remove My ") + kOld + " keep-key")) << value;
  }

  host_.stores["My"] = {FakeHost::entry(kOld)};
  host_.calls.clear();
  auto opted_in = base;
  opted_in.push_back("CertificateStoreDetails.Properties.DeletePrivateKeyOnRemove=true");
  JobResult deleted = run(load("ManagementRemove.json", opted_in));
  ASSERT_EQ(deleted.status, JobStatus::kSuccess) << deleted.message;
  EXPECT_TRUE(called(std::string("remove My ") + kOld + " delete-key"));
  EXPECT_NE(deleted.message.find(std::string("removed certificate ") + kOld + " and its private key"),
            std::string::npos)
      << deleted.message;

  auto garbage = apply_override(read_fixture("ManagementRemove.json"),
                                "CertificateStoreDetails.Properties.DeletePrivateKeyOnRemove=yes please");
  ASSERT_TRUE(garbage.ok()) << garbage.error().message;
  auto refused = parse_job_config(garbage.value());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("DeletePrivateKeyOnRemove"), std::string::npos) << refused.error().message;
}

TEST_F(HandlerTest, UnsupportedOperationTypeIsAFailureNamingIt) {
  JobResult result = run(management("CertStores.WinCert.Management", 4));
  ASSERT_EQ(result.status, JobStatus::kFailure);
  EXPECT_NE(result.message.find("OperationType 4 (Create)"), std::string::npos) << result.message;
  EXPECT_EQ(result.error_code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(called("add"));
  EXPECT_TRUE(sessions_.targets.empty());
}

// ---- management: IISU ----

TEST_F(HandlerTest, IisuAddImportsBindsAndRemovesTheReplacedCertificateWhenUnused) {
  host_.stores["My"] = {FakeHost::entry(kOld)};
  host_.bindings = {{"Default Web Site", "https", "*", 443, "", kOld, "My", 0}};
  JobConfig config = management("CertStores.IISU.Management", 2,
                                {std::string("JobCertificate.Alias=") + kOld + ":Default Web Site:*:443:"});
  JobResult result = run(config);
  ASSERT_EQ(result.status, JobStatus::kSuccess) << result.message;
  ASSERT_TRUE(host_.last_add.has_value());
  EXPECT_TRUE(host_.last_add->private_key_required);
  ASSERT_EQ(host_.last_add->steps.size(), 1u) << "import, bind and clean-up in one add";
  const auto* iis_step = certstore::find_step<certstore::IisBindingStep>(host_.last_add->steps);
  ASSERT_NE(iis_step, nullptr);
  EXPECT_EQ(iis_step->binding.site, "Default Web Site");
  EXPECT_EQ(iis_step->binding.ip, "*");
  EXPECT_EQ(iis_step->binding.port, 443);
  EXPECT_EQ(iis_step->binding.host, "");
  EXPECT_EQ(iis_step->binding.ssl_flags, 0);
  EXPECT_EQ(iis_step->replaced_thumbprint, kOld);
  EXPECT_FALSE(host_.has_cert("My", kOld));  // unbound after the rebinding: removed
  EXPECT_EQ(host_.sites_using(kNew), std::vector<std::string>{"Default Web Site"});
  EXPECT_NE(result.message.find("replaced certificate " + std::string(kOld) + " removed"), std::string::npos);
}

TEST_F(HandlerTest, IisuAddKeepsTheReplacedCertificateWhileAnotherSiteUsesIt) {
  host_.stores["My"] = {FakeHost::entry(kOld)};
  host_.bindings = {{"Default Web Site", "https", "*", 443, "", kOld, "My", 0},
                    {"Shop", "https", "*", 8443, "", kOld, "My", 0}};
  JobResult result = run(management("CertStores.IISU.Management", 2,
                                    {std::string("JobCertificate.Alias=") + kOld + ":Default Web Site:*:443:"}));
  ASSERT_EQ(result.status, JobStatus::kSuccess) << result.message;
  EXPECT_TRUE(host_.has_cert("My", kOld));
  EXPECT_NE(result.message.find("still bound to Shop"), std::string::npos) << result.message;
}

TEST_F(HandlerTest, IisuAddValidatesEntryParametersBeforeTouchingTheHost) {
  JobResult result = run(management("CertStores.IISU.Management", 2, {"JobProperties.SiteName="}));
  ASSERT_EQ(result.status, JobStatus::kFailure);
  EXPECT_NE(result.message.find("SiteName"), std::string::npos) << result.message;
  EXPECT_TRUE(host_.calls.empty());
  EXPECT_TRUE(sessions_.targets.empty());  // no connection was even opened

  // The fixture as shipped (placeholders): the first bad entry parameter is named.
  JobConfig raw = load("Management.json", {"CertificateStoreDetails.ClientMachine=web01"});
  result = run(raw);
  ASSERT_EQ(result.status, JobStatus::kFailure);
  EXPECT_NE(result.message.find("entry parameter IPAddress 'IPAddressGoesHere'"), std::string::npos) << result.message;
  // With valid entry parameters, the placeholder WinRM protocol is named next.
  result = run(
      load("Management.json", {"CertificateStoreDetails.ClientMachine=web01", "JobProperties.IPAddress=*",
                               "JobProperties.Port=443", "JobProperties.SniFlag=0", "JobProperties.Protocol=https"}));
  ASSERT_EQ(result.status, JobStatus::kFailure);
  EXPECT_NE(result.message.find("'WinRm Protocol' is 'ProtocolGoesHere'"), std::string::npos) << result.message;
  EXPECT_TRUE(sessions_.targets.empty());
}

TEST_F(HandlerTest, IisuRemoveUnbindsTheExactBindingAndRemovesTheCertificateIfUnused) {
  host_.stores["My"] = {FakeHost::entry(kOld)};
  host_.bindings = {{"Default Web Site", "https", "2001:db8::1", 443, "", kOld, "My", 0},
                    {"Default Web Site", "https", "2001:db8::1", 443, "other.example.com", kOther, "My", 1}};
  JobConfig config = load(
      "ManagementRemove.json",
      {"CertificateStoreDetails.ClientMachine=web01", "CertificateStoreDetails.StorePath=My",
       "CertificateStoreDetails.Properties.WinRm Protocol=https", "CertificateStoreDetails.Properties.WinRm Port=5986",
       std::string("JobCertificate.Alias=") + kOld + ":Default Web Site:[2001:db8::1]:443:"});
  JobResult result = run(config);
  ASSERT_EQ(result.status, JobStatus::kSuccess) << result.message;
  EXPECT_TRUE(called("iis unbind Default Web Site [2001:db8::1]:443:"));
  ASSERT_EQ(host_.bindings.size(), 1u);  // the host-name binding stays
  EXPECT_EQ(host_.bindings[0].host, "other.example.com");
  EXPECT_FALSE(host_.has_cert("My", kOld));
}

TEST_F(HandlerTest, IisuRemoveKeepsACertificateStillBoundElsewhere) {
  host_.stores["My"] = {FakeHost::entry(kOld)};
  host_.bindings = {{"Default Web Site", "https", "*", 443, "", kOld, "My", 0},
                    {"Shop", "https", "*", 8443, "", kOld, "My", 0}};
  JobConfig config = load(
      "ManagementRemove.json",
      {"CertificateStoreDetails.ClientMachine=web01", "CertificateStoreDetails.StorePath=My",
       "CertificateStoreDetails.Properties.WinRm Protocol=https", "CertificateStoreDetails.Properties.WinRm Port=5986",
       std::string("JobCertificate.Alias=") + kOld + ":Default Web Site:*:443:"});
  JobResult result = run(config);
  ASSERT_EQ(result.status, JobStatus::kSuccess) << result.message;
  EXPECT_TRUE(host_.has_cert("My", kOld));
  EXPECT_EQ(host_.sites_using(kOld), std::vector<std::string>{"Shop"});
  EXPECT_NE(result.message.find("still bound to Shop"), std::string::npos);
}

TEST_F(HandlerTest, IisuRemoveWithTheFixturesBareThumbprintAliasIsAFailureNamingTheAlias) {
  JobConfig config = load("ManagementRemove.json", {"CertificateStoreDetails.ClientMachine=web01",
                                                    "CertificateStoreDetails.Properties.WinRm Protocol=https",
                                                    "CertificateStoreDetails.Properties.WinRm Port=5986"});
  JobResult result = run(config);
  ASSERT_EQ(result.status, JobStatus::kFailure);
  EXPECT_NE(result.message.find("JobCertificate.Alias"), std::string::npos) << result.message;
  EXPECT_EQ(result.error_code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(result.job_history_id, 26019);  // the extension's bare "Invalid Management Operation" had none
}

// ---- management: WinSql ----

class WinSqlTest : public HandlerTest {
 protected:
  WinSqlTest() {
    host_.stores["My"] = {FakeHost::entry(kOld), FakeHost::entry(kOther)};
    host_.instances = {{"MSSQLSERVER", "MSSQL16.MSSQLSERVER", kOld, "MSSQLSERVER", ""},
                       {"SQLEXPRESS", "MSSQL16.SQLEXPRESS", kOther, "MSSQL$SQLEXPRESS", ""}};
  }
};

TEST_F(WinSqlTest, AddBindsEveryListedInstanceWithoutRenewalThumbprint) {
  JobResult result =
      run(management("CertStores.WinSql.Management", 2, {"JobProperties.InstanceName=MSSQLSERVER, SQLEXPRESS"}));
  ASSERT_EQ(result.status, JobStatus::kSuccess) << result.message;
  const auto* sql_step = certstore::find_step<certstore::SqlBindingStep>(host_.last_add->steps);
  ASSERT_NE(sql_step, nullptr);
  EXPECT_EQ(sql_step->binding.instances, (std::vector<std::string>{"MSSQLSERVER", "SQLEXPRESS"}));
  EXPECT_FALSE(sql_step->binding.restart_service);
  EXPECT_EQ(host_.instances[0].thumbprint, kNew);
  EXPECT_EQ(host_.instances[1].thumbprint, kNew);
  EXPECT_FALSE(called("sql restart"));  // RestartService absent = false
}

TEST_F(WinSqlTest, AddWithRenewalThumbprintBindsOnlyWhereItIsBoundNow) {
  JobResult result = run(management("CertStores.WinSql.Management", 2,
                                    {"JobProperties.InstanceName=MSSQLSERVER,SQLEXPRESS",
                                     std::string("JobProperties.RenewalThumbprint=") + to_lower(kOther)}));
  ASSERT_EQ(result.status, JobStatus::kSuccess) << result.message;
  ASSERT_NE(certstore::find_step<certstore::SqlBindingStep>(host_.last_add->steps), nullptr);
  EXPECT_EQ(certstore::find_step<certstore::SqlBindingStep>(host_.last_add->steps)->binding.instances,
            std::vector<std::string>{"SQLEXPRESS"});
  EXPECT_EQ(host_.instances[0].thumbprint, kOld);
  EXPECT_EQ(host_.instances[1].thumbprint, kNew);
}

TEST_F(WinSqlTest, AddWithRenewalThumbprintBoundNowhereImportsAndWarns) {
  JobResult result = run(management("CertStores.WinSql.Management", 2,
                                    {"JobProperties.InstanceName=MSSQLSERVER",
                                     "JobProperties.RenewalThumbprint=3333333333333333333333333333333333333333"}));
  ASSERT_EQ(result.status, JobStatus::kWarning) << result.message;
  EXPECT_EQ(certstore::find_step<certstore::SqlBindingStep>(host_.last_add->steps), nullptr);
  EXPECT_EQ(host_.instances[0].thumbprint, kOld);
}

TEST_F(WinSqlTest, RestartFailureIsAWarningNotAFailure) {
  host_.restart_fails = true;
  JobResult result =
      run(management("CertStores.WinSql.Management", 2, {"CertificateStoreDetails.Properties.RestartService=true"}));
  ASSERT_EQ(result.status, JobStatus::kWarning) << result.message;
  EXPECT_TRUE(called("sql restart MSSQLSERVER"));
  EXPECT_NE(result.message.find("restart the service manually"), std::string::npos);
  EXPECT_EQ(host_.instances[0].thumbprint, kNew);

  host_.restart_fails = false;
  result =
      run(management("CertStores.WinSql.Management", 2, {"CertificateStoreDetails.Properties.RestartService=TRUE"}));
  EXPECT_EQ(result.status, JobStatus::kSuccess) << result.message;
}

TEST_F(WinSqlTest, RemoveUnbindsOnlyInstancesBoundToTheRemovedCertificate) {
  // The extension blanked every listed instance; SQLEXPRESS (bound to another certificate) must keep it.
  JobConfig config =
      load("ManagementRemove.json",
           {"Capability=CertStores.WinSql.Management", "CertificateStoreDetails.ClientMachine=web01",
            "CertificateStoreDetails.StorePath=My", "CertificateStoreDetails.Properties.WinRm Protocol=https",
            "CertificateStoreDetails.Properties.WinRm Port=5986", "JobProperties.InstanceName=MSSQLSERVER,SQLEXPRESS",
            std::string("JobCertificate.Alias=") + kOld});
  JobResult result = run(config);
  ASSERT_EQ(result.status, JobStatus::kSuccess) << result.message;
  EXPECT_TRUE(called(std::string("sql unbind MSSQLSERVER ") + kOld));
  EXPECT_EQ(host_.instances[0].thumbprint, "");
  EXPECT_EQ(host_.instances[1].thumbprint, kOther);
  EXPECT_FALSE(host_.has_cert("My", kOld));
  EXPECT_TRUE(host_.has_cert("My", kOther));
}

TEST_F(WinSqlTest, RemoveDeletesThePrivateKeyOnlyWhenTheStoreOptsIn) {
  for (const bool opt_in : {false, true}) {
    SCOPED_TRACE(opt_in ? "DeletePrivateKeyOnRemove=true" : "property absent");
    host_.stores["My"] = {FakeHost::entry(kOld)};
    host_.calls.clear();
    std::vector<std::string> o = {"Capability=CertStores.WinSql.Management",
                                  "CertificateStoreDetails.ClientMachine=web01",
                                  "CertificateStoreDetails.StorePath=My",
                                  "CertificateStoreDetails.Properties.WinRm Protocol=https",
                                  "CertificateStoreDetails.Properties.WinRm Port=5986",
                                  "JobProperties.InstanceName=MSSQLSERVER",
                                  std::string("JobCertificate.Alias=") + kOld};
    if (opt_in) o.push_back("CertificateStoreDetails.Properties.DeletePrivateKeyOnRemove=true");
    JobResult result = run(load("ManagementRemove.json", o));
    ASSERT_EQ(result.status, JobStatus::kSuccess) << result.message;
    EXPECT_TRUE(called(std::string("remove My ") + kOld + (opt_in ? " delete-key" : " keep-key")));
    EXPECT_NE(result.message.find(opt_in ? "and its private key" : "its private key was kept"), std::string::npos)
        << result.message;
  }
}

TEST_F(WinSqlTest, RemoveRefusesWhileAnUnlistedInstanceStillUsesTheCertificate) {
  host_.instances[1].thumbprint = kOld;
  JobConfig config =
      load("ManagementRemove.json",
           {"Capability=CertStores.WinSql.Management", "CertificateStoreDetails.ClientMachine=web01",
            "CertificateStoreDetails.StorePath=My", "CertificateStoreDetails.Properties.WinRm Protocol=https",
            "CertificateStoreDetails.Properties.WinRm Port=5986", "JobProperties.InstanceName=MSSQLSERVER",
            std::string("JobCertificate.Alias=") + kOld});
  JobResult result = run(config);
  ASSERT_EQ(result.status, JobStatus::kFailure);
  EXPECT_NE(result.message.find("SQLEXPRESS"), std::string::npos) << result.message;
  EXPECT_EQ(result.error_code, ErrorCode::kFailedPrecondition);
  EXPECT_FALSE(called("sql unbind"));
  EXPECT_TRUE(host_.has_cert("My", kOld));
}

// ---- reenrollment ----

TEST_F(HandlerTest, IisuReenrollmentCreatesCsrSubmitsInstallsAndBinds) {
  JobResult result = run(reenrollment("CertStores.IISU.ReEnrollment"));
  ASSERT_EQ(result.status, JobStatus::kSuccess) << result.message;
  ASSERT_TRUE(host_.last_csr.has_value());
  EXPECT_EQ(host_.last_csr->store, "My");
  EXPECT_EQ(host_.last_csr->subject, "CN=www.example.com,O=Keyfactor\\, Inc");
  EXPECT_EQ(host_.last_csr->key_type, "ECC");
  EXPECT_EQ(host_.last_csr->key_size, "P-256");
  const std::vector<certstore::SubjectAltName> sans = {{certstore::SanType::kDns, "www.example.com"},
                                                       {certstore::SanType::kIp, "10.0.0.5"}};
  EXPECT_EQ(host_.last_csr->sans, sans);
  EXPECT_EQ(csrs_, std::vector<std::string>{base64_encode(std::string("CSR-DER"))});
  EXPECT_EQ(host_.installed_der, "ISSUED-DER");
  EXPECT_TRUE(called(std::string("iis bind Default Web Site *:443:www.example.com ") + kNew));
  ASSERT_EQ(host_.bindings.size(), 1u);
  EXPECT_EQ(host_.bindings[0].ssl_flags, 1);
}

TEST_F(HandlerTest, ReenrollmentPassesTheProviderAndRefusesEccInALegacyCsp) {
  JobResult result = run(reenrollment(
      "CertStores.WinCert.Reenrollment",
      {"JobProperties.keySize=384", "JobProperties.ProviderName=Microsoft Software Key Storage Provider"}));
  ASSERT_EQ(result.status, JobStatus::kSuccess) << result.message;
  EXPECT_EQ(host_.last_csr->provider_name, "Microsoft Software Key Storage Provider");
  EXPECT_EQ(host_.last_csr->key_size, "384");

  host_.last_csr.reset();
  result = run(reenrollment("CertStores.WinCert.Reenrollment",
                            {"JobProperties.ProviderName=Microsoft Enhanced RSA and AES Cryptographic Provider"}));
  ASSERT_EQ(result.status, JobStatus::kFailure);
  EXPECT_NE(result.message.find("ProviderName"), std::string::npos) << result.message;
  EXPECT_FALSE(host_.last_csr.has_value());
}

TEST_F(HandlerTest, WinCertReenrollmentDoesNotBind) {
  JobResult result =
      run(reenrollment("CertStores.WinCert.Reenrollment", {"JobProperties.keyType=RSA", "JobProperties.keySize=2048"}));
  ASSERT_EQ(result.status, JobStatus::kSuccess) << result.message;
  EXPECT_TRUE(called("install_issued My"));
  EXPECT_FALSE(called("iis bind"));
  EXPECT_FALSE(called("sql bind"));
}

TEST_F(HandlerTest, WinSqlReenrollmentBindsWithoutRestart) {
  host_.instances = {{"MSSQLSERVER", "MSSQL16.MSSQLSERVER", kOld, "MSSQLSERVER", ""}};
  JobResult result =
      run(reenrollment("CertStores.WinSql.Reenrollment", {"CertificateStoreDetails.Properties.RestartService=true"}));
  ASSERT_EQ(result.status, JobStatus::kSuccess) << result.message;
  EXPECT_TRUE(called(std::string("sql bind MSSQLSERVER ") + kNew));
  EXPECT_FALSE(called("sql restart"));
  EXPECT_EQ(host_.instances[0].thumbprint, kNew);
}

TEST_F(HandlerTest, ReenrollmentRejectsBadKeyTypesAndSubjectsBeforeMakingAKey) {
  JobResult result = run(reenrollment("CertStores.WinCert.Reenrollment", {"JobProperties.keyType=DSA"}));
  ASSERT_EQ(result.status, JobStatus::kFailure);
  EXPECT_NE(result.message.find("keyType"), std::string::npos) << result.message;
  EXPECT_EQ(result.error_code, ErrorCode::kInvalidArgument);
  result = run(reenrollment("CertStores.WinCert.Reenrollment", {"JobProperties.keySize=P-192"}));
  ASSERT_EQ(result.status, JobStatus::kFailure);
  result = run(reenrollment("CertStores.WinCert.Reenrollment", {"JobProperties.subjectText="}));
  ASSERT_EQ(result.status, JobStatus::kFailure);
  EXPECT_NE(result.message.find("subjectText"), std::string::npos);
  result = run(reenrollment("CertStores.WinCert.Reenrollment", {"SANs.x400=foo"}));
  ASSERT_EQ(result.status, JobStatus::kFailure);
  EXPECT_NE(result.message.find("x400"), std::string::npos);
  result = run(reenrollment("CertStores.IISU.Reenrollment", {"JobProperties.Port=http"}));
  ASSERT_EQ(result.status, JobStatus::kFailure);
  EXPECT_NE(result.message.find("Port"), std::string::npos);
  EXPECT_FALSE(called("create_csr"));
}

TEST_F(HandlerTest, ReenrollmentWhenCommandCannotSignFails) {
  ca_refuses_ = true;
  JobResult result = run(reenrollment("CertStores.WinCert.Reenrollment"));
  ASSERT_EQ(result.status, JobStatus::kFailure);
  EXPECT_NE(result.message.find("Command was unable to sign the CSR: template WebServer denied"), std::string::npos)
      << result.message;
  EXPECT_EQ(result.error_code, ErrorCode::kPermissionDenied);
  EXPECT_FALSE(called("install_issued"));
}

// ---- the run_job envelope ----

TEST_F(HandlerTest, UnknownCapabilityCancelledJobsLocalPathAndUnreachableHosts) {
  JobResult unknown = run(load("WinIISInventory.json", {"Capability=CertStores.WinAdfs.Inventory"}));
  ASSERT_EQ(unknown.status, JobStatus::kFailure);
  EXPECT_NE(unknown.message.find("CertStores.WinAdfs.Inventory"), std::string::npos);
  EXPECT_EQ(unknown.error_code, ErrorCode::kInvalidArgument);

  JobResult cancelled = run(load("WinIISInventory.json", {"JobCancelled=true"}));
  EXPECT_EQ(cancelled.status, JobStatus::kWarning);
  EXPECT_TRUE(sessions_.targets.empty());

  JobResult local = run(load("WinIISInventory.json", {"CertificateStoreDetails.ClientMachine=web01|LocalMachine"}));
  ASSERT_EQ(local.status, JobStatus::kFailure);
  EXPECT_NE(local.message.find("ClientMachine 'web01|LocalMachine' asks for the local CryptoAPI path, which needs "
                               "the Windows build of wincert-agent"),
            std::string::npos)
      << local.message;
  EXPECT_EQ(local.error_code, ErrorCode::kFailedPrecondition);

  JobResult basic = run(load("WinIISInventory.json", {"CertificateStoreDetails.Properties.WinRM Authentication=basic",
                                                      "ServerUsername=admin", "ServerPassword=Hunter2!"}));
  ASSERT_EQ(basic.status, JobStatus::kFailure);
  EXPECT_NE(basic.message.find("WinRM AllowUnencrypted"), std::string::npos);
  EXPECT_EQ(basic.error_code, ErrorCode::kInvalidArgument);

  sessions_.fail_open = true;
  JobResult down = run(load("WinIISInventory.json", {}));
  ASSERT_EQ(down.status, JobStatus::kFailure);
  EXPECT_TRUE(down.retryable());
  EXPECT_EQ(down.error_code, ErrorCode::kUnavailable);
  EXPECT_EQ(down.attempts, services_.retry.max_attempts);
  EXPECT_NE(down.message.find("at host '192.168.230.170'"), std::string::npos) << down.message;
}

TEST_F(HandlerTest, NoSecretReachesAResultOrALogLine) {
  LogCapture capture;
  std::vector<JobResult> results;
  host_.stores["My"] = {FakeHost::entry(kOld)};
  host_.instances = {{"MSSQLSERVER", "MSSQL16.MSSQLSERVER", kOld, "MSSQLSERVER", ""}};
  // Success, Failure and Warning paths, each with the fixtures' secrets in the job.
  results.push_back(run(management("CertStores.WinCert.Management", 2)));
  results.push_back(run(management("CertStores.WinCert.Management", 2, {"JobProperties.ProviderName=Nope"})));
  host_.fail_next_add = Error::invalid_argument("the PFX for certificate 1111 could not be opened: wrong password");
  results.push_back(run(management("CertStores.IISU.Management", 2)));
  results.push_back(run(management("CertStores.IISU.Management", 2, {"JobProperties.Port=x"})));
  results.push_back(run(load("Management.json", {"CertificateStoreDetails.ClientMachine=web01"})));
  results.push_back(run(load("Management.json", {"CertificateStoreDetails.ClientMachine=web01",
                                                 "CertificateStoreDetails.Properties.WinRm Protocol=http",
                                                 "CertificateStoreDetails.Properties.WinRm Port=5985",
                                                 "CertificateStoreDetails.Properties.WinRM Authentication=basic"})));
  host_.restart_fails = true;
  results.push_back(
      run(management("CertStores.WinSql.Management", 2, {"CertificateStoreDetails.Properties.RestartService=true"})));
  results.push_back(run(load("WinCertInventory.json", {})));
  results.push_back(run(reenrollment("CertStores.IISU.Reenrollment")));

  const std::string log = capture.text();
  EXPECT_FALSE(log.empty());
  for (const char* secret : {"PasswordGoesHere", "sldfklsdfsldjfk", "CertificateContentGoesHere"}) {
    EXPECT_EQ(log.find(secret), std::string::npos) << secret << " in log:\n" << log;
    for (const auto& r : results) EXPECT_EQ(r.message.find(secret), std::string::npos) << secret << " in " << r.message;
  }
  EXPECT_EQ(results[0].status, JobStatus::kSuccess);
  EXPECT_EQ(results[1].status, JobStatus::kFailure);
  EXPECT_EQ(results[6].status, JobStatus::kWarning);
}

}  // namespace
}  // namespace wincert::jobs
