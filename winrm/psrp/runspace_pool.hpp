// A PSRP runspace pool over an OutOfProc byte stream (`pwsh -s` child, SSH `powershell` subsystem): open it
// (SESSION_CAPABILITY + INIT_RUNSPACEPOOL), run pipelines of named commands and collect their output, error
// and informational records, close it (reference psrp.md §6.3 and §8.2).
//
// Pipelines run one at a time on a pool (an async lock orders callers); concurrent pipelines up to
// MaxRunspaces need a reader that routes packets to several waiters, which is the next step.
// A pool whose transport failed, or that the server reported Broken, is `broken()`: every later call fails
// at once with kUnavailable, and the caller opens a new one.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "common/result.hpp"
#include "winrm/async_lock.hpp"
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
  std::size_t max_output_objects = 100'000;  // per pipeline; more is refused (resource_exhausted)
};

struct PipelineResult {
  std::vector<PsValue> output;
  std::vector<ErrorRecordInfo> errors;              // non-terminating error records (Write-Error, ...)
  std::vector<InformationalRecord> informational;   // warning, verbose, debug, information; progress dropped
  PipelineStateInfo state;                          // the final state: 3 Stopped, 4 Completed, 5 Failed
  bool completed() const { return state.state == 4; }
};

class OutOfProcRunspacePool {
 public:
  // Sends the two opening messages and waits for RUNSPACEPOOL_STATE Opened. Errors: the channel's
  // (kUnavailable, kDeadlineExceeded), kFailedPrecondition when the server refuses or breaks the pool (with
  // its reason), kInvalidArgument for a malformed reply.
  static boost::asio::awaitable<Result<std::unique_ptr<OutOfProcRunspacePool>>> open(
      std::unique_ptr<OutOfProcChannel> channel, RunspacePoolOptions options = {});
  ~OutOfProcRunspacePool();
  OutOfProcRunspacePool(const OutOfProcRunspacePool&) = delete;
  OutOfProcRunspacePool& operator=(const OutOfProcRunspacePool&) = delete;

  // Runs one statement (commands piped into each other, each with named parameters) and returns what it
  // produced. A pipeline that ends Failed or Stopped is a result, not an error (its state carries the
  // reason); errors are about the pool or transport: kDeadlineExceeded after `timeout` (the pipeline is
  // stopped and the pool stays usable if the server confirms), kUnavailable when the server went away (the
  // pool is broken), kInvalidArgument for a malformed message, kResourceExhausted beyond the limits.
  boost::asio::awaitable<Result<PipelineResult>> invoke(std::vector<PipelineCommand> commands,
                                                        std::chrono::milliseconds timeout);

  // Closes the pool (RUNSPACEPOOL_STATE Closed, CloseAck) and then the channel. Idempotent.
  boost::asio::awaitable<Status> close();

  bool broken() const { return broken_; }
  const ServerCapability& server() const { return server_; }
  const Guid& id() const { return id_; }
  std::string describe() const;

 private:
  OutOfProcRunspacePool(const boost::asio::any_io_executor& executor, std::unique_ptr<OutOfProcChannel> channel,
                        RunspacePoolOptions options);

  // Sends one message as Data packets of whole fragments.
  boost::asio::awaitable<Status> send(const Message& message, const std::string& ps_guid,
                                      DataStream stream = DataStream::kDefault);
  // Reads packets until `done` says so or the deadline passes. Data for the pool and for `pipeline` are
  // defragmented and handed to on_message; acks are handed to on_ack.
  struct Handlers;
  boost::asio::awaitable<Status> pump(std::chrono::steady_clock::time_point deadline, const Handlers& handlers);
  Status fail(Error error);  // marks the pool broken

  std::unique_ptr<OutOfProcChannel> channel_;
  RunspacePoolOptions options_;
  Guid id_;
  Fragmenter fragmenter_;
  Defragmenter defragmenter_;
  AsyncLock lock_;
  ServerCapability server_;
  bool broken_ = false;
  bool closed_ = false;
};

}  // namespace wincert::winrm::psrp
