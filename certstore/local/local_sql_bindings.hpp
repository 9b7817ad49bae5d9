// SqlBindings on this machine (agent mode), natively: the registry for instances and their TLS
// certificate, the key file's ACL for the service account, the Service Control Manager for restarts.
// Same semantics as the remote sql-*.ps1 scripts (and the extension's Set-KFSQLCertificateBinding).
// Windows-only.
#pragma once

#include "certstore/cert_store.hpp"
#include "certstore/local/service_control.hpp"

#include <memory>
#include <string>

namespace boost::asio {
class thread_pool;
}

namespace wincert::certstore::local {

struct LocalSqlOptions {
  // Below HKLM: where SQL Server keeps "Instance Names\SQL" and "<instance id>\MSSQLServer\SuperSocketNetLib".
  std::string sql_server_key = R"(SOFTWARE\Microsoft\Microsoft SQL Server)";
  // Where machine key files are searched ("" = %ProgramData%\Microsoft\Crypto).
  std::string crypto_directory;
  ServiceRestartTimeouts restart_timeouts;  // stop <= 60 s, start <= 90 s
};

class LocalSqlBindings final : public SqlBindings {
 public:
  explicit LocalSqlBindings(LocalSqlOptions options = {});
  ~LocalSqlBindings() override;
  LocalSqlBindings(const LocalSqlBindings&) = delete;
  LocalSqlBindings& operator=(const LocalSqlBindings&) = delete;

  Task<std::vector<SqlInstance>> list_instances() override;
  // The certificate must be in LocalMachine\My (SQL Server reads only that store) with a private key.
  // Per instance: writes SuperSocketNetLib\Certificate (lower case, as SQL Server's own tools do), reads it
  // back (verified), grants the service account Read on the key file, and restarts the service when asked.
  // A failed restart is not an error: the binding is done, restarted stays false and a warning is logged.
  Task<std::vector<SqlInstanceBinding>> bind(SqlBindingRequest request, std::string thumbprint,
                                             std::string store) override;
  // Blanks the value (SQL Server expects it to exist) only where this thumbprint is the bound one.
  Task<std::vector<SqlUnbindOutcome>> unbind(SqlBindingRequest request, std::string thumbprint) override;
  // Stops and starts each instance's service with bounded waits; a failure is an error here (the job
  // layer turns it into a Warning).
  Task<std::vector<SqlServiceState>> restart(std::vector<std::string> instances) override;

 private:
  LocalSqlOptions options_;
  std::unique_ptr<boost::asio::thread_pool> worker_;
};

// The blocking calls behind LocalSqlBindings (exposed for tests and for LocalCertStore's add).
Result<std::vector<SqlInstance>> list_sql_instances_now(const LocalSqlOptions& options);
Result<std::vector<SqlInstanceBinding>> bind_sql_now(const LocalSqlOptions& options, const SqlBindingRequest& request,
                                                     const std::string& thumbprint, const std::string& store);
Result<std::vector<SqlUnbindOutcome>> unbind_sql_now(const LocalSqlOptions& options, const SqlBindingRequest& request,
                                                     const std::string& thumbprint);
Result<std::vector<SqlServiceState>> restart_sql_now(const LocalSqlOptions& options,
                                                     const std::vector<std::string>& instances);

// "MSSQLSERVER" for the default instance, else "MSSQL$<name>".
std::string sql_service_name(const std::string& instance);

}  // namespace wincert::certstore::local
