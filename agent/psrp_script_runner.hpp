// certstore's ScriptRunner over PowerShell remoting: each op is a call of its WincertOps function by name
// ("store-inventory" -> Invoke-WincertStoreInventory -ArgsJson '{...}') in a warm runspace pool, instead of
// one powershell.exe per op over WinRS.
//
// Full-language endpoints get the module once per runspace: a call that finds no such function loads
// certstore::module_text() into that runspace (tagged with module_version()) and is repeated. A JEA
// endpoint has the module installed (config/jea) and is never sent script text (load_module = false).
//
// What comes back matches the WinRS scripts' contract (certstore/remote/contract.hpp): the function's JSON
// document on success; on a failed op, exit code 1 and {"error":{"message","category"}}, the category taken
// from the exception's Data['WincertCategory'] as ConvertTo-OpErrorJson does on the host.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "certstore/script_runner.hpp"
#include "winrm/psrp/runspace_pool.hpp"

namespace wincert::agent {

struct PsrpRunnerOptions {
  bool load_module = true;  // false on a JEA endpoint
  // Load the module before the first op instead of after its CommandNotFound: right for a pool of one runspace
  // just opened (it cannot have the module), and saves a failed pipeline (two WS-Man exchanges) per pool.
  bool load_first = false;
  std::chrono::milliseconds op_timeout{std::chrono::minutes(30)};
};

// "store-inventory" -> "Invoke-WincertStoreInventory" (the module's naming of its op functions).
std::string op_function_name(std::string_view op);

// The pipeline that defines the WincertOps functions in the runspace running it (script text: full-language
// endpoints only), tagged with certstore::module_version().
winrm::psrp::PipelineCommand module_load_command();

class PsrpScriptRunner final : public certstore::ScriptRunner {
 public:
  // The pool must outlive the runner. host: how messages name the target ("web01").
  PsrpScriptRunner(winrm::psrp::RunspacePool& pool, std::string host, PsrpRunnerOptions options = {})
      : pool_(pool), host_(std::move(host)), options_(options) {}
  // script_text (the WinRS script) is not used: the op's function is called by name.
  boost::asio::awaitable<Result<certstore::ScriptOutput>> run(std::string_view op, std::string_view script_text,
                                                              const nlohmann::json& args) override;
  std::string host() const override { return host_; }
  // How many times the module was sent (once per runspace that needed it).
  int module_loads() const { return module_loads_; }

 private:
  boost::asio::awaitable<Status> load_module();

  winrm::psrp::RunspacePool& pool_;
  std::string host_;
  PsrpRunnerOptions options_;
  int module_loads_ = 0;
};

}  // namespace wincert::agent
