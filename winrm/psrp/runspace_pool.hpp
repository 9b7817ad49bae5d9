// A PSRP runspace pool over an OutOfProc byte stream (`pwsh -s` child, SSH `powershell` subsystem): open it
// (SESSION_CAPABILITY + INIT_RUNSPACEPOOL), run pipelines of named commands and collect their output, error
// and informational records, close it (reference psrp.md §6.3 and §8.2).
//
// One reader coroutine per pool reads every packet and routes it to the pool or to its pipeline, so several
// pipelines run at once (up to MaxRunspaces on the server; more wait there for a free runspace). Writes are
// serialised whole lines. A pool whose transport failed, or that the server reported Broken or Closed, is
// `broken()`: every later call fails at once with kUnavailable, and the caller opens a new one.
//
// Use it from one thread (a single-threaded io_context or a strand), as the channels require.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "common/result.hpp"
#include "winrm/psrp/byte_stream.hpp"
#include "winrm/psrp/fragment.hpp"
#include "winrm/psrp/messages.hpp"

namespace wincert::winrm::psrp {

struct RunspacePoolOptions {
  RunspacePoolSettings settings;  // MinRunspaces / MaxRunspaces
  std::chrono::milliseconds open_timeout{std::chrono::seconds(60)};
  std::chrono::milliseconds close_timeout{std::chrono::seconds(10)};
  std::size_t max_fragment_size = 32 * 1024;  // psrp.md §2.4: safe everywhere
  DefragmenterLimits defragment_limits;
  ClixmlLimits clixml_limits;
  std::size_t max_output_objects = 100'000;  // per pipeline; more breaks the pool (resource_exhausted)
};

struct PipelineResult {
  std::vector<PsValue> output;
  std::vector<ErrorRecordInfo> errors;             // non-terminating error records (Write-Error, ...)
  std::vector<InformationalRecord> informational;  // warning, verbose, debug, information; progress dropped
  PipelineStateInfo state;                         // the final state: 3 Stopped, 4 Completed, 5 Failed
  bool completed() const { return state.state == 4; }
};

// What callers of a pool need, whatever carries it (OutOfProc byte stream, WS-Man).
class RunspacePool {
 public:
  virtual ~RunspacePool() = default;
  // Runs one statement (commands piped into each other, each with named parameters) and returns what it
  // produced. A pipeline that ends Failed or Stopped is a result, not an error (its state carries the
  // reason); errors are about the pool or transport: kDeadlineExceeded after `timeout` (the pipeline is
  // stopped, and the pool stays usable when the server confirms), kUnavailable when the server went away or
  // the pool is broken, kInvalidArgument for a malformed message, kResourceExhausted beyond the limits.
  virtual boost::asio::awaitable<Result<PipelineResult>> invoke(std::vector<PipelineCommand> commands,
                                                                std::chrono::milliseconds timeout) = 0;
  // Closes the pool. Idempotent.
  virtual boost::asio::awaitable<Status> close() = 0;
  // A broken pool fails every call at once; the caller opens a new one.
  virtual bool broken() const = 0;
  virtual std::string describe() const = 0;
};

class OutOfProcRunspacePool final : public RunspacePool {
 public:
  // Sends the two opening messages and waits for RUNSPACEPOOL_STATE Opened. Errors: the channel's
  // (kUnavailable, kDeadlineExceeded), kFailedPrecondition when the server refuses or breaks the pool (with
  // its reason), kInvalidArgument for a malformed reply.
  static boost::asio::awaitable<Result<std::unique_ptr<OutOfProcRunspacePool>>> open(
      std::unique_ptr<OutOfProcChannel> channel, RunspacePoolOptions options = {});
  // Without close(): the reader stops within a second and the channel is destroyed (a child is killed).
  ~OutOfProcRunspacePool() override;
  OutOfProcRunspacePool(const OutOfProcRunspacePool&) = delete;
  OutOfProcRunspacePool& operator=(const OutOfProcRunspacePool&) = delete;

  boost::asio::awaitable<Result<PipelineResult>> invoke(std::vector<PipelineCommand> commands,
                                                        std::chrono::milliseconds timeout) override;

  // Closes the pool (CloseAck) and then the channel. Idempotent; waits for no running pipeline.
  boost::asio::awaitable<Status> close() override;

  bool broken() const override;
  const ServerCapability& server() const;
  const Guid& id() const;
  std::string describe() const override;

  struct State;
  struct Pipeline;

 private:
  explicit OutOfProcRunspacePool(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace wincert::winrm::psrp
