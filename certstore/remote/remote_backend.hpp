// The remote backend: CertStore, IisBindings and SqlBindings carried out by running the embedded
// wincert-op scripts through a ScriptRunner (WinRM in the agent, a fake in tests). Scripts return raw
// facts; parsing, thumbprints, validation and decisions happen here.
#pragma once

#include "certstore/cert_store.hpp"
#include "certstore/script_runner.hpp"

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>

namespace wincert::certstore::remote {

struct HostInfo {
  std::string hostname;
  int os_build = 0;
  std::string os_version;  // "10.0.20348"
  std::string ps_version;  // "5.1.20348.2849"
};

// Runs one op and turns every failure into an Error naming the op, the store (when given) and the host.
class ScriptCaller {
 public:
  explicit ScriptCaller(ScriptRunner& runner) : runner_(runner) {}
  // scrub: a secret that must not survive into an error message even if the host echoed it.
  // run() then document_of().
  boost::asio::awaitable<Result<nlohmann::json>> call(std::string_view op, nlohmann::json args,
                                                      std::string_view store = {}, const Secret* scrub = nullptr);
  // Runs op and hands back what it printed, whatever its exit code; an Error (named by op, store and host)
  // only when it could not be run. For a caller that reads a large output itself (read_inventory): it takes
  // the text when the script succeeded and leaves every other output to document_of().
  boost::asio::awaitable<Result<ScriptOutput>> run(std::string_view op, nlohmann::json args,
                                                   std::string_view store = {});
  // What call() makes of an output: the document when the script succeeded (exit code 0, no top-level
  // `error` object), otherwise the Error the host reported (code from its category, message, scrubbed).
  Result<nlohmann::json> document_of(std::string_view op, std::string_view store, const ScriptOutput& output,
                                     const Secret* scrub = nullptr) const;
  // host-info, asked once per caller and cached (SSL-flag checks need the OS build).
  boost::asio::awaitable<Result<HostInfo>> host_info();
  std::string host() const { return runner_.host(); }

 private:
  ScriptRunner& runner_;
  std::optional<HostInfo> host_info_;
};

// Turns the documents scripts print into value types (exposed for tests and for the simulator).
// The one JSON document a script printed (stray lines before it tolerated): nothing when there is
// none; an error when the output is too large, too deep or too wide (peer_json_limits::kScriptOutput).
Result<std::optional<nlohmann::json>> parse_script_document(std::string_view stdout_text);
Result<HostInfo> parse_host_info(const nlohmann::json& doc);
Result<StoreInventory> parse_store_inventory(const nlohmann::json& doc, std::string_view store);
// store-inventory's output read one certificate at a time, each decoded only when asked for: a reader that
// owns the text (moved out of stdout_text) when the output has the plain shape (certstore/remote/
// inventory_scan.hpp), else nullptr with stdout_text untouched (read it whole: parse_store_inventory).
// error_context prefixes the reader's Errors (the op, store and host).
std::unique_ptr<InventoryReader> stream_store_inventory(std::string& stdout_text, std::string error_context);
Result<IisBinding> parse_iis_binding(const nlohmann::json& doc);
Result<std::vector<SqlInstance>> parse_sql_instances(const nlohmann::json& doc);

class RemoteCertStore final : public CertStore {
 public:
  explicit RemoteCertStore(std::shared_ptr<ScriptCaller> caller) : caller_(std::move(caller)) {}
  // Drains read_inventory().
  Task<StoreInventory> inventory(std::string store) override;
  // Over the script's output text (never a JSON tree of it): one certificate decoded per next().
  Task<std::unique_ptr<InventoryReader>> read_inventory(std::string store) override;
  Task<AddCertificateResult> add(AddCertificateRequest request) override;
  Task<RemoveResult> remove(RemoveRequest request) override;
  Task<CertificateRequest> create_csr(CsrRequest request) override;
  Task<InstallIssuedResult> install_issued(InstallIssuedRequest request) override;

 private:
  std::shared_ptr<ScriptCaller> caller_;
};

class RemoteIisBindings final : public IisBindings {
 public:
  explicit RemoteIisBindings(std::shared_ptr<ScriptCaller> caller) : caller_(std::move(caller)) {}
  Task<std::vector<IisBinding>> list() override;
  Task<IisBindResult> bind(IisBindingRequest binding, std::string thumbprint, std::string store) override;
  Task<bool> unbind(IisBindingRequest binding) override;
  Task<RemoveIfUnusedResult> remove_certificate_if_unused(std::string store, std::string thumbprint) override;

 private:
  std::shared_ptr<ScriptCaller> caller_;
};

class RemoteSqlBindings final : public SqlBindings {
 public:
  explicit RemoteSqlBindings(std::shared_ptr<ScriptCaller> caller) : caller_(std::move(caller)) {}
  Task<std::vector<SqlInstance>> list_instances() override;
  Task<std::vector<SqlInstanceBinding>> bind(SqlBindingRequest request, std::string thumbprint,
                                             std::string store) override;
  Task<std::vector<SqlUnbindOutcome>> unbind(SqlBindingRequest request, std::string thumbprint) override;
  Task<std::vector<SqlServiceState>> restart(std::vector<std::string> instances) override;

 private:
  std::shared_ptr<ScriptCaller> caller_;
};

// Every service of one host over one ScriptRunner (a WinRM shell in the agent, a fake in tests): what
// the agent hands a job for a remote target. The runner must outlive it.
class RemoteHostSession final : public HostSession {
 public:
  explicit RemoteHostSession(ScriptRunner& runner)
      : caller_(std::make_shared<ScriptCaller>(runner)), certs_(caller_), iis_(caller_), sql_(caller_) {}
  CertStore& certs() override { return certs_; }
  IisBindings& iis() override { return iis_; }
  SqlBindings& sql() override { return sql_; }

 private:
  std::shared_ptr<ScriptCaller> caller_;
  RemoteCertStore certs_;
  RemoteIisBindings iis_;
  RemoteSqlBindings sql_;
};

// Bounded wait the sql-restart script gets per service (stop + start).
inline constexpr int kSqlRestartTimeoutSeconds = 90;

}  // namespace wincert::certstore::remote
