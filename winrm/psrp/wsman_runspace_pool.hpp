// A PSRP runspace pool over WS-Management (reference psrp.md §1, §8.1): the pool is a WS-Man shell whose
// resource is a PowerShell session configuration (`Microsoft.PowerShell`, or a JEA endpoint's name). It rides
// the existing WsmanTransport, so every authentication scheme, message encryption and channel binding apply.
//
//   open:    Create (creationXml = SESSION_CAPABILITY + INIT_RUNSPACEPOOL), Receive until Opened
//   invoke:  Command (Arguments = CREATE_PIPELINE; more fragments by Send), Receive until the final state:
//            two HTTP exchanges for a warm operation whose output fits one response
//   close:   Delete
//
// The host answers a request on a shell it dropped (idle timeout, restart) with InvalidSelectors or a bare
// HTTP 400: invoke then opens a new pool once and runs the pipeline there ("transparent reopen"; a module
// loaded into the old runspaces is gone, which PsrpScriptRunner notices and repairs).
//
// Requests go over the one transport, one at a time: concurrent invokes are correct but take turns on the
// connection. Use it from one thread (the transport's executor).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "common/result.hpp"
#include "winrm/psrp/runspace_pool.hpp"
#include "winrm/transport.hpp"

namespace wincert::winrm::psrp {

inline constexpr std::string_view kDefaultConfigurationName = "Microsoft.PowerShell";

struct WsmanRunspacePoolOptions {
  std::string configuration_name{kDefaultConfigurationName};  // a JEA endpoint's name selects it
  RunspacePoolSettings settings;
  std::chrono::milliseconds open_timeout{std::chrono::seconds(60)};
  // The WS-Man OperationTimeout: how long one Receive long-polls before the host answers TimedOut.
  std::chrono::milliseconds operation_timeout{std::chrono::seconds(20)};
  // Unset: 153,600 bytes, then 512,000 once the server speaks protocol 2.2 or later, as pypsrp and
  // PowerShell's own client do (psrp.md §2.4). Set it for a host configured with a smaller MaxEnvelopeSizekb.
  std::optional<std::size_t> max_envelope_size;
  std::optional<std::chrono::seconds> idle_timeout;  // rsp:IdleTimeOut; unset = the host's default
  DefragmenterLimits defragment_limits;
  ClixmlLimits clixml_limits;
  std::size_t max_output_objects = 100'000;  // per pipeline
  std::string locale = "en-US";
};

struct WsmanPoolCounters {
  std::uint64_t pools_opened = 0;  // Creates that succeeded, reopens included
  std::uint64_t reopens = 0;       // pools opened again after the host dropped the shell
  std::uint64_t pipelines = 0;
  std::uint64_t exchanges = 0;  // WS-Man requests this pool made (HTTP auth legs not counted)
};

class WsmanRunspacePool final : public RunspacePool {
 public:
  // Creates the shell and waits until the pool is Opened. Errors: the transport's, the host's fault
  // (access denied, an unknown configuration name), kFailedPrecondition when PowerShell refuses or breaks
  // the pool, kDeadlineExceeded after open_timeout. The transport must outlive the pool.
  static boost::asio::awaitable<Result<std::unique_ptr<WsmanRunspacePool>>> open(WsmanTransport& transport,
                                                                                 WsmanRunspacePoolOptions options);
  ~WsmanRunspacePool() override;
  WsmanRunspacePool(const WsmanRunspacePool&) = delete;
  WsmanRunspacePool& operator=(const WsmanRunspacePool&) = delete;

  boost::asio::awaitable<Result<PipelineResult>> invoke(std::vector<PipelineCommand> commands,
                                                        std::chrono::milliseconds timeout) override;
  // Deletes the shell (the host stops what still runs there). Idempotent; a shell already gone is fine.
  boost::asio::awaitable<Status> close() override;
  bool broken() const override;
  std::string describe() const override;

  const ServerCapability& server() const;
  const std::string& shell_id() const;
  WsmanPoolCounters counters() const;

  struct State;

 private:
  explicit WsmanRunspacePool(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace wincert::winrm::psrp
