// certstore's ScriptRunner over the WinRM PowerShell runner: runs an embedded wincert-op script with its
// JSON arguments as one WinRS command (winrm::run_ps) on an open WinrsSession. certstore itself must not
// depend on winrm/, so the agent adapts the two here (the store sessions and winhost-sim's e2e test use it).
#pragma once

#include <string>

#include "certstore/script_runner.hpp"
#include "winrm/winrs.hpp"

namespace wincert::agent {

class WinrmScriptRunner final : public certstore::ScriptRunner {
 public:
  // The session must outlive the runner. host: how messages name the target ("web01").
  WinrmScriptRunner(winrm::WinrsSession& session, std::string host) : session_(session), host_(std::move(host)) {}
  boost::asio::awaitable<Result<certstore::ScriptOutput>> run(std::string_view op, std::string_view script_text,
                                                              const nlohmann::json& args) override;
  std::string host() const override { return host_; }

  // True when a run() was abandoned mid-command (its coroutine destroyed, e.g. a cancelled job): the
  // shell may still have that command running, so the connection must not serve another job.
  bool interrupted() const { return running_; }

 private:
  winrm::WinrsSession& session_;
  std::string host_;
  bool running_ = false;
};

}  // namespace wincert::agent
