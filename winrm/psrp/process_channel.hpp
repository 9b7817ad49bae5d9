// ProcessChannel: an OutOfProcChannel over a child process's stdin/stdout, e.g. `pwsh -s -NoLogo -NoProfile`
// (the local PowerShell server, and the test peer). Linux only (posix_spawn, pipes, waitpid).
//
// The child's stderr is drained all the time (a full pipe would stall it) and its last bytes are kept for
// error messages. The child is killed and reaped on close() or destruction, so no zombie stays behind.
// Use one channel from one thread (the I/O thread or a strand); one read and one write may be in flight at
// a time.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "winrm/psrp/byte_stream.hpp"

namespace wincert::winrm::psrp {

struct ProcessChannelOptions {
  std::string program;                 // an absolute path, e.g. /opt/pwsh/pwsh (no PATH search)
  std::vector<std::string> arguments;  // e.g. {"-s", "-NoLogo", "-NoProfile"}
  std::size_t max_line_bytes = kDefaultMaxPacketLineBytes;
  std::size_t stderr_tail_bytes = 4096;  // how much of the child's stderr an error message quotes
  std::chrono::milliseconds write_timeout{30000};
  // How long close() lets the child end by itself after its stdin is closed, before it is killed.
  std::chrono::milliseconds exit_grace{3000};
};

// The arguments that start PowerShell 7 as an OutOfProc server on stdin/stdout.
std::vector<std::string> pwsh_server_arguments();

class ProcessChannel final : public OutOfProcChannel {
 public:
  // Starts the child. kFailedPrecondition when it cannot be started (missing, not executable).
  static Result<std::unique_ptr<ProcessChannel>> start(boost::asio::any_io_executor executor,
                                                       ProcessChannelOptions options);
  ~ProcessChannel() override;
  ProcessChannel(const ProcessChannel&) = delete;
  ProcessChannel& operator=(const ProcessChannel&) = delete;

  boost::asio::awaitable<Status> write_line(std::string line) override;
  boost::asio::awaitable<Result<std::string>> read_line(std::chrono::milliseconds timeout) override;
  boost::asio::awaitable<Status> close() override;
  std::string describe() const override;

  int pid() const;
  // What the child wrote to stderr so far (its last stderr_tail_bytes).
  std::string stderr_tail() const;

  struct State;

 private:
  explicit ProcessChannel(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace wincert::winrm::psrp
