// certstore's ScriptRunner over PowerShell remoting on a WinRM connection: the runspace pool is opened on the
// first operation (so opening a store session touches no network, like the WinRS path), kept for the life of the
// connection (warm reuse carries it, with the module loaded, to the next job), and opened again when it broke.
#pragma once

#include <memory>
#include <string>

#include "agent/psrp_script_runner.hpp"
#include "certstore/script_runner.hpp"
#include "winrm/psrp/wsman_runspace_pool.hpp"

namespace wincert::agent {

class WsmanPsrpRunner final : public certstore::ScriptRunner {
 public:
  // The transport must outlive the runner. host: how messages name the target ("web01").
  WsmanPsrpRunner(winrm::WsmanTransport& transport, winrm::psrp::WsmanRunspacePoolOptions pool_options,
                  PsrpRunnerOptions runner_options, std::string host);
  ~WsmanPsrpRunner() override;

  boost::asio::awaitable<Result<certstore::ScriptOutput>> run(std::string_view op, std::string_view script_text,
                                                              const nlohmann::json& args) override;
  std::string host() const override { return host_; }

  // Deletes the pool's shell on the host, if one is open.
  boost::asio::awaitable<Status> close();
  // True when a run() was abandoned mid-operation (a cancelled job): the pool may still run it, so the
  // connection must not serve another job.
  bool interrupted() const { return running_; }
  bool pool_open() const { return pool_ != nullptr; }
  int module_loads() const { return module_loads_ + (runner_ ? runner_->module_loads() : 0); }

 private:
  winrm::WsmanTransport& transport_;
  winrm::psrp::WsmanRunspacePoolOptions pool_options_;
  PsrpRunnerOptions runner_options_;
  std::string host_;
  std::unique_ptr<winrm::psrp::WsmanRunspacePool> pool_;
  std::unique_ptr<PsrpScriptRunner> runner_;
  int module_loads_ = 0;  // of pools given up
  bool running_ = false;
};

}  // namespace wincert::agent
