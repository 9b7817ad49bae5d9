#include "agent/winrm_script_runner.hpp"

#include "winrm/powershell.hpp"

namespace wincert::agent {

boost::asio::awaitable<Result<certstore::ScriptOutput>> WinrmScriptRunner::run(std::string_view op,
                                                                               std::string_view script_text,
                                                                               const nlohmann::json& args) {
  // Secrets (PFX passwords) travel inside args_json over the encrypted/authenticated channel; they are
  // never logged here.
  winrm::PsPayload payload{std::string(script_text),
                           args.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
  // Cleared only when run_ps comes back: a destroyed frame leaves it set (see interrupted()).
  running_ = true;
  auto ran = co_await winrm::run_ps(session_, payload);
  running_ = false;
  if (!ran) co_return ran.error().context("running " + std::string(op) + " on " + host_ + ": ");
  certstore::ScriptOutput out;
  out.stdout_text = std::move(ran->stdout_data);
  out.exit_code = ran->exit_code;
  out.error_text = std::move(ran->error_text);
  co_return out;
}

}  // namespace wincert::agent
