// The local SQL Server bindings against this machine's real registry, certificate store, file ACLs and
// Service Control Manager (under Wine: the test prefix's). SQL Server's registry layout is created for two
// instances (the default one and "WINCERTB") below a test key, not the real SQL Server key; the
// certificate goes into LocalMachine\My through the local backend; a tiny test service stands in for the
// named instance's SQL Server service. Everything is removed again.
#include "certstore/local/key_file_acl.hpp"
#include "certstore/local/local_bindings.hpp"
#include "certstore/local/operations.hpp"
#include "certstore/local/registry.hpp"
#include "certstore/local/service_control.hpp"
#include "certstore/local/system_store.hpp"
#include "common/encoding.hpp"
#include "local_test_support.hpp"
#include "test_paths.hpp"
#include "tests/support/result_matchers.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

namespace wincert::certstore::local {
namespace {

using namespace testing;

constexpr const char* kNamedInstance = "WINCERTB";
constexpr const char* kNamedService = "MSSQL$WINCERTB";
constexpr const char* kDefaultId = "MSSQL16.MSSQLSERVER";
constexpr const char* kNamedId = "MSSQL15.WINCERTB";
constexpr const char* kOtherThumbprint = "3A95FCE68019E31A67985E09377E5AD7976F8FD9";
// The test service's Log On account: a built-in account every Windows (and Wine) knows.
constexpr const char* kServiceAccount = "NT AUTHORITY\\NETWORK SERVICE";

// The named instance's "SQL Server service": sql_test_service.exe registered with the SCM; deleted again.
class TestService {
 public:
  TestService() {
    ServiceHandle manager(OpenSCManagerW(nullptr, nullptr, SC_MANAGER_ALL_ACCESS));
    if (!manager) {
      problem_ = last_error("OpenSCManager");
      return;
    }
    remove(manager.get());  // a leftover of an interrupted run
    const std::wstring name = widen(kNamedService);
    const std::wstring binary = widen("\"" + windows_path(WINCERT_SQL_TEST_SERVICE) + "\"");
    const std::wstring account = widen(kServiceAccount);
    ServiceHandle service(CreateServiceW(manager.get(), name.c_str(), name.c_str(), SERVICE_ALL_ACCESS,
                                         SERVICE_WIN32_OWN_PROCESS, SERVICE_DEMAND_START, SERVICE_ERROR_NORMAL,
                                         binary.c_str(), nullptr, nullptr, nullptr, account.c_str(), L""));
    if (!service) problem_ = last_error("CreateService");
  }
  ~TestService() {
    ServiceHandle manager(OpenSCManagerW(nullptr, nullptr, SC_MANAGER_ALL_ACCESS));
    if (manager) remove(manager.get());
  }
  TestService(const TestService&) = delete;
  TestService& operator=(const TestService&) = delete;
  const std::string& problem() const { return problem_; }

 private:
  static void remove(SC_HANDLE manager) {
    const std::wstring name = widen(kNamedService);
    ServiceHandle service(OpenServiceW(manager, name.c_str(), SERVICE_ALL_ACCESS));
    if (!service) return;
    SERVICE_STATUS status{};
    if (ControlService(service.get(), SERVICE_CONTROL_STOP, &status)) {
      for (int i = 0; i < 100 && QueryServiceStatus(service.get(), &status) && status.dwCurrentState != SERVICE_STOPPED;
           ++i) {
        Sleep(100);
      }
    }
    DeleteService(service.get());
  }
  std::string problem_;
};

class LocalSql : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string suffix = std::to_string(GetCurrentProcessId());
    test_key_ = "SOFTWARE\\WincertTests\\Sql-" + suffix;
    options_.sql_server_key = test_key_ + "\\Microsoft SQL Server";
    options_.restart_timeouts = {std::chrono::seconds(20), std::chrono::seconds(20)};
    char temp[MAX_PATH] = {};
    GetTempPathA(MAX_PATH, temp);
    options_.crypto_directory = std::string(temp) + "wincert-sql-crypto-" + suffix;

    auto names = create_registry_key(HKEY_LOCAL_MACHINE, options_.sql_server_key + "\\Instance Names\\SQL");
    ASSERT_TRUE(names.ok()) << names.error().message;
    ASSERT_TRUE(write_string_value(names->get(), "MSSQLSERVER", kDefaultId, "test").ok());
    ASSERT_TRUE(write_string_value(names->get(), kNamedInstance, kNamedId, "test").ok());
    set_bound(kDefaultId, "");
    set_bound(kNamedId, "");
  }

  void TearDown() override {
    EXPECT_TRUE(delete_registry_tree(HKEY_LOCAL_MACHINE, test_key_).ok());
    std::error_code ignored;
    std::filesystem::remove_all(std::filesystem::u8path(options_.crypto_directory), ignored);
    for (const auto& thumbprint : added_) remove_if_present("My", thumbprint);
  }

  std::string netlib(const std::string& id) const {
    return options_.sql_server_key + "\\" + id + "\\MSSQLServer\\SuperSocketNetLib";
  }
  void set_bound(const std::string& id, const std::string& value) {
    auto key = create_registry_key(HKEY_LOCAL_MACHINE, netlib(id));
    ASSERT_TRUE(key.ok()) << key.error().message;
    ASSERT_TRUE(write_string_value(key->get(), "Certificate", value, "test").ok());
  }
  std::optional<std::string> bound(const std::string& id) const {
    auto key = open_registry_key(HKEY_LOCAL_MACHINE, netlib(id), RegistryAccess::kRead);
    if (!key.ok() || !*key) return std::nullopt;
    auto value = read_string_value(key->get(), "Certificate", "test");
    return value.ok() ? *value : std::nullopt;
  }

  // A new certificate in LocalMachine\My, with its key in this platform's RSA provider, or without a key.
  std::string add_certificate(bool with_key) {
    auto key = make_rsa_key(2048);
    auto cert =
        make_certificate(key.get(), "sql-" + std::to_string(added_.size()) + ".wincert.test", false, nullptr, nullptr);
    AddCertificateRequest request;
    request.store = "My";
    request.label = "'sql test'";
    if (with_key) {
      request.contents_base64 = Secret(base64_encode(make_pfx(key.get(), cert.get(), {}, "pw", "sql test")));
      request.password = Secret(std::string("pw"));
      request.provider_name = rsa_provider_for_this_platform();
    } else {
      request.contents_base64 = Secret(base64_encode(der_of(cert.get())));
    }
    auto added = add_now(request);
    EXPECT_TRUE(added.ok()) << added.error().message;
    if (!added.ok()) return {};
    added_.push_back(added->thumbprint);
    return added->thumbprint;
  }

  std::string test_key_;
  LocalSqlOptions options_;
  std::vector<std::string> added_;
};

TEST(LocalSqlAccounts, ServiceAccountsAreShownAsWindowsNamesThem) {
  EXPECT_EQ(normalize_service_account("LocalSystem", "DB01"), "NT AUTHORITY\\SYSTEM");
  EXPECT_EQ(normalize_service_account("localsystem", "DB01"), "NT AUTHORITY\\SYSTEM");
  EXPECT_EQ(normalize_service_account(".\\svc-sql", "DB01"), "DB01\\svc-sql");
  EXPECT_EQ(normalize_service_account("NT Service\\MSSQLSERVER", "DB01"), "NT Service\\MSSQLSERVER");
  EXPECT_EQ(normalize_service_account("CORP\\svc-sql$", "DB01"), "CORP\\svc-sql$");
  EXPECT_EQ(normalize_service_account(".\\LocalSystem", "DB01"), "NT AUTHORITY\\SYSTEM");
  EXPECT_EQ(normalize_service_account("NetworkService", "DB01"), "NT AUTHORITY\\NETWORK SERVICE");
  EXPECT_EQ(normalize_service_account("NT AUTHORITY\\NetworkService", "DB01"), "NT AUTHORITY\\NETWORK SERVICE");
  EXPECT_EQ(normalize_service_account("NT AUTHORITY\\NETWORK SERVICE", "DB01"), "NT AUTHORITY\\NETWORK SERVICE");
  EXPECT_EQ(normalize_service_account("LocalService", "DB01"), "NT AUTHORITY\\LOCAL SERVICE");
  EXPECT_EQ(normalize_service_account("nt authority\\localservice", "DB01"), "NT AUTHORITY\\LOCAL SERVICE");
  EXPECT_EQ(normalize_service_account(" .\\svc-sql ", "DB01"), "DB01\\svc-sql");
  EXPECT_EQ(sql_service_name("MSSQLSERVER"), "MSSQLSERVER");
  EXPECT_EQ(sql_service_name("SQLEXPRESS"), "MSSQL$SQLEXPRESS");
}

TEST_F(LocalSql, ListsInstancesWithTheBoundThumbprintInUpperCase) {
  set_bound(kDefaultId, "426e9669376072d8d1461082a6e31ab4023e1857");
  auto sql = make_local_sql_bindings(options_);
  auto instances = run(sql->list_instances());
  ASSERT_TRUE(instances.ok()) << instances.error().message;
  ASSERT_EQ(instances->size(), 2u);
  const auto& first = (*instances)[0].name == "MSSQLSERVER" ? (*instances)[0] : (*instances)[1];
  const auto& named = (*instances)[0].name == "MSSQLSERVER" ? (*instances)[1] : (*instances)[0];
  EXPECT_EQ(first.instance_id, kDefaultId);
  EXPECT_EQ(first.thumbprint, "426E9669376072D8D1461082A6E31AB4023E1857");
  EXPECT_EQ(first.service_name, "MSSQLSERVER");
  EXPECT_EQ(first.service_account, "");  // no such service here
  EXPECT_EQ(named.name, kNamedInstance);
  EXPECT_EQ(named.instance_id, kNamedId);
  EXPECT_EQ(named.thumbprint, "");
  EXPECT_EQ(named.service_name, kNamedService);
}

TEST_F(LocalSql, NoSqlServerMeansNoInstances) {
  LocalSqlOptions options = options_;
  options.sql_server_key = test_key_ + "\\Not Installed";
  auto instances = run(make_local_sql_bindings(options)->list_instances());
  ASSERT_TRUE(instances.ok()) << instances.error().message;
  EXPECT_TRUE(instances->empty());
}

TEST_F(LocalSql, BindWritesLowerCaseVerifiesAndUnbindClearsOnlyTheMatchingInstance) {
  const std::string thumbprint = add_certificate(true);
  ASSERT_FALSE(thumbprint.empty());
  auto sql = make_local_sql_bindings(options_);
  SqlBindingRequest request;
  request.instances = {"MSSQLSERVER", kNamedInstance};
  auto bound_now = run(sql->bind(request, to_lower(thumbprint), "My"));
  ASSERT_TRUE(bound_now.ok()) << bound_now.error().message;
  ASSERT_EQ(bound_now->size(), 2u);
  for (const auto& binding : *bound_now) {
    EXPECT_TRUE(binding.verified) << binding.instance;
    EXPECT_FALSE(binding.restarted);
    EXPECT_EQ(binding.key_file, "");  // no key file below the test's crypto directory: nothing to grant
  }
  EXPECT_EQ((*bound_now)[0].instance, "MSSQLSERVER");
  EXPECT_EQ((*bound_now)[1].instance, kNamedInstance);
  EXPECT_EQ(bound(kDefaultId), to_lower(thumbprint));  // as SQL Server's own tools write it
  EXPECT_EQ(bound(kNamedId), to_lower(thumbprint));
  auto listed = run(sql->list_instances());
  ASSERT_TRUE(listed.ok());
  for (const auto& instance : *listed) EXPECT_EQ(instance.thumbprint, thumbprint);

  // The named instance moves on to another certificate: unbinding ours must leave it alone.
  set_bound(kNamedId, to_lower(kOtherThumbprint));
  auto unbound = run(sql->unbind(request, thumbprint));
  ASSERT_TRUE(unbound.ok()) << unbound.error().message;
  ASSERT_EQ(unbound->size(), 2u);
  EXPECT_EQ((*unbound)[0].instance, "MSSQLSERVER");
  EXPECT_TRUE((*unbound)[0].unbound);
  EXPECT_EQ((*unbound)[0].previous_thumbprint, thumbprint);
  EXPECT_FALSE((*unbound)[1].unbound);
  EXPECT_EQ((*unbound)[1].previous_thumbprint, kOtherThumbprint);
  EXPECT_EQ(bound(kDefaultId), std::optional<std::string>(""));  // blanked, not deleted
  EXPECT_EQ(bound(kNamedId), to_lower(kOtherThumbprint));
}

// On Windows the grant takes effect; under Wine it cannot (see below), and the check that reads it back says so.
TEST_F(LocalSql, BindGrantsTheServiceAccountReadOnTheKeyFile) {
  TestService service;
  ASSERT_EQ(service.problem(), "");
  auto account = service_account(kNamedService);
  ASSERT_TRUE(account.ok()) << account.error().message;
  ASSERT_TRUE(account->has_value());
  const std::string service_account_name = **account;
  EXPECT_TRUE(iequals(service_account_name, kServiceAccount) ||
              iequals(service_account_name, "NT AUTHORITY\\NetworkService"))
      << service_account_name;

  const std::string thumbprint = add_certificate(true);
  ASSERT_FALSE(thumbprint.empty());
  auto link = key_link_in_store("My", thumbprint);
  ASSERT_TRUE(link.has_value());
  auto unique_name = key_unique_name(*link);
  ASSERT_TRUE(unique_name.ok()) << unique_name.error().message;
  ASSERT_FALSE(unique_name->empty());
  // Wine keeps CSP keys in its registry, not in files: the key file is made where Windows would keep it
  // (below the test's crypto directory), so the search and the ACL change run against a real file.
  const std::string folder = key_file_folders(*link, options_.crypto_directory).front();
  std::filesystem::create_directories(std::filesystem::u8path(folder));
  const std::string key_file = folder + "\\" + *unique_name;
  std::ofstream(std::filesystem::u8path(key_file)) << "key material stand-in";
  auto before = account_can_read(key_file, service_account_name);
  ASSERT_TRUE(before.ok()) << before.error().message;
  EXPECT_FALSE(*before);

  SqlBindingRequest request;
  request.instances = {kNamedInstance};
  auto bound_now = run(make_local_sql_bindings(options_)->bind(request, thumbprint, "My"));
  if (running_under_wine()) {
    // Wine 8 accepts SetNamedSecurityInfoW on a file but keeps only what Unix mode bits can hold (no ACE
    // for another account survives), so reading the DACL back must catch it: the key file was found and
    // the grant attempted, and the error says which file and account to check.
    ASSERT_FALSE(bound_now.ok());
    EXPECT_NE(bound_now.error().message.find("granting '" + service_account_name + "' read access to the key file " +
                                             key_file + " did not take effect"),
              std::string::npos)
        << bound_now.error().message;
    EXPECT_NE(bound_now.error().message.find("SQL Server instance 'WINCERTB' (service 'MSSQL$WINCERTB')"),
              std::string::npos)
        << bound_now.error().message;
    return;
  }
  ASSERT_TRUE(bound_now.ok()) << bound_now.error().message;
  ASSERT_EQ(bound_now->size(), 1u);
  EXPECT_TRUE((*bound_now)[0].verified);
  EXPECT_EQ((*bound_now)[0].key_file, key_file);
  auto after = account_can_read(key_file, service_account_name);
  ASSERT_TRUE(after.ok()) << after.error().message;
  EXPECT_TRUE(*after);
}

TEST_F(LocalSql, BindRefusesBeforeChangingAnything) {
  const std::string with_key = add_certificate(true);
  const std::string without_key = add_certificate(false);
  ASSERT_FALSE(with_key.empty());
  ASSERT_FALSE(without_key.empty());
  auto sql = make_local_sql_bindings(options_);

  SqlBindingRequest request;
  request.instances = {"MSSQLSERVER", "NOPE"};
  auto unknown = run(sql->bind(request, with_key, "My"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown, HasCode(ErrorCode::kNotFound));
  EXPECT_NE(unknown.error().message.find("the SQL Server instance 'NOPE' does not exist on this machine"),
            std::string::npos)
      << unknown.error().message;
  EXPECT_NE(unknown.error().message.find("HKLM\\" + options_.sql_server_key + "\\Instance Names\\SQL"),
            std::string::npos)
      << unknown.error().message;
  EXPECT_EQ(bound(kDefaultId), std::optional<std::string>(""));  // the known instance was not touched

  request.instances = {"MSSQLSERVER"};
  auto keyless = run(sql->bind(request, without_key, "My"));
  ASSERT_FALSE(keyless.ok());
  EXPECT_THAT(keyless, HasCode(ErrorCode::kFailedPrecondition));
  EXPECT_NE(keyless.error().message.find("has no private key, which SQL Server needs"), std::string::npos)
      << keyless.error().message;

  auto missing = run(sql->bind(request, kOtherThumbprint, "My"));
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing, HasCode(ErrorCode::kNotFound));
  EXPECT_NE(missing.error().message.find("is not in LocalMachine\\My"), std::string::npos) << missing.error().message;

  auto other_store = run(sql->bind(request, with_key, "WebHosting"));
  ASSERT_FALSE(other_store.ok());
  EXPECT_EQ(other_store.error().code, ErrorCode::kInvalidArgument);

  auto not_a_thumbprint = run(sql->bind(request, "nope", "My"));
  ASSERT_FALSE(not_a_thumbprint.ok());
  EXPECT_EQ(not_a_thumbprint.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bound(kDefaultId), std::optional<std::string>(""));

  LocalSqlOptions not_installed = options_;
  not_installed.sql_server_key = test_key_ + "\\Not Installed";
  auto no_sql = run(make_local_sql_bindings(not_installed)->bind(request, with_key, "My"));
  ASSERT_FALSE(no_sql.ok());
  EXPECT_THAT(no_sql, HasCode(ErrorCode::kFailedPrecondition));
  EXPECT_NE(no_sql.error().message.find("SQL Server is not installed on this machine"), std::string::npos)
      << no_sql.error().message;
}

TEST_F(LocalSql, RestartGoesThroughTheServiceControlManager) {
  TestService service;
  ASSERT_EQ(service.problem(), "");
  auto sql = make_local_sql_bindings(options_);
  // Stopped -> started, then running -> stopped -> started.
  for (int round = 0; round < 2; ++round) {
    auto states = run(sql->restart({kNamedInstance}));
    ASSERT_TRUE(states.ok()) << states.error().message;
    ASSERT_EQ(states->size(), 1u);
    EXPECT_EQ((*states)[0].instance, kNamedInstance);
    EXPECT_EQ((*states)[0].service_name, kNamedService);
    EXPECT_EQ((*states)[0].status, "Running");
    auto status = service_status(kNamedService);
    ASSERT_TRUE(status.ok()) << status.error().message;
    EXPECT_EQ(*status, "Running");
  }

  // bind with RestartService restarts it too.
  const std::string thumbprint = add_certificate(true);
  SqlBindingRequest request;
  request.instances = {kNamedInstance};
  request.restart_service = true;
  auto bound_now = run(sql->bind(request, thumbprint, "My"));
  ASSERT_TRUE(bound_now.ok()) << bound_now.error().message;
  EXPECT_TRUE((*bound_now)[0].restarted);
}

TEST_F(LocalSql, AMissingServiceFailsRestartButIsOnlyAWarningAfterBind) {
  auto sql = make_local_sql_bindings(options_);
  auto states = run(sql->restart({"MSSQLSERVER"}));
  ASSERT_FALSE(states.ok());
  EXPECT_THAT(states, HasCode(ErrorCode::kNotFound));
  EXPECT_NE(states.error().message.find("the service 'MSSQLSERVER' does not exist on this machine"), std::string::npos)
      << states.error().message;
  EXPECT_NE(states.error().message.find("instance 'MSSQLSERVER'"), std::string::npos) << states.error().message;

  const std::string thumbprint = add_certificate(true);
  SqlBindingRequest request;
  request.restart_service = true;  // instances: the default one
  auto bound_now = run(sql->bind(request, thumbprint, "My"));
  ASSERT_TRUE(bound_now.ok()) << bound_now.error().message;
  ASSERT_EQ(bound_now->size(), 1u);
  EXPECT_TRUE((*bound_now)[0].verified);
  EXPECT_FALSE((*bound_now)[0].restarted);  // the binding stands; the restart is left to a person
  EXPECT_EQ(bound(kDefaultId), to_lower(thumbprint));
}

}  // namespace
}  // namespace wincert::certstore::local
