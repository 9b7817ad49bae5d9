#include "agent/wsman_psrp_runner.hpp"

#include "common/log.hpp"

namespace wincert::agent {

namespace psrp = winrm::psrp;

WsmanPsrpRunner::WsmanPsrpRunner(winrm::WsmanTransport& transport, psrp::WsmanRunspacePoolOptions pool_options,
                                 PsrpRunnerOptions runner_options, std::string host)
    : transport_(transport),
      pool_options_(std::move(pool_options)),
      runner_options_(runner_options),
      host_(std::move(host)) {}

WsmanPsrpRunner::~WsmanPsrpRunner() = default;

boost::asio::awaitable<Result<certstore::ScriptOutput>> WsmanPsrpRunner::run(std::string_view op,
                                                                             std::string_view script_text,
                                                                             const nlohmann::json& args) {
  running_ = true;
  if (pool_ && pool_->broken()) {
    logger("agent")->info("{}: the runspace pool is broken ({}); opening a new one", host_, pool_->describe());
    module_loads_ += runner_->module_loads();
    runner_.reset();
    pool_.reset();  // its shell is left to the host's idle timeout: the pool no longer answers
  }
  if (!pool_) {
    auto opened = co_await psrp::WsmanRunspacePool::open(transport_, pool_options_);
    if (!opened.ok()) {
      running_ = false;
      co_return std::move(opened).error().context("PowerShell remoting to " + host_ + ": ");
    }
    pool_ = std::move(opened).value();
    PsrpRunnerOptions options = runner_options_;
    // A pool of one runspace, just opened, has no module: load it before the first op.
    options.load_first = options.load_module && pool_options_.settings.max_runspaces == 1;
    runner_ = std::make_unique<PsrpScriptRunner>(*pool_, host_, options);
  }
  auto result = co_await runner_->run(op, script_text, args);
  running_ = false;
  co_return result;
}

boost::asio::awaitable<Status> WsmanPsrpRunner::close() {
  if (!pool_) co_return Status{};
  auto closed = co_await pool_->close();
  module_loads_ += runner_->module_loads();
  runner_.reset();
  pool_.reset();
  co_return closed;
}

}  // namespace wincert::agent
