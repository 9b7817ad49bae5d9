// WinrsSession: runs commands in a WinRS shell (resource .../windows/shell/cmd) on one host, over one
// WsmanTransport. The shell is created on first use, kept open across commands and reopened
// transparently (once per command) when the host reports it gone. Every command ends with a Signal
// terminate, also on errors, so the host frees the operation (quota leaks otherwise).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "common/result.hpp"
#include "winrm/async_lock.hpp"
#include "winrm/messages.hpp"
#include "winrm/transport.hpp"

namespace wincert::winrm {

struct SessionOptions {
  ShellOptions shell;  // codepage 65001, WINRS_NOPROFILE, environment, working directory, idle timeout
  // The WS-Man OperationTimeout: how long one Receive long-polls before the host answers TimedOut.
  std::chrono::milliseconds operation_timeout{std::chrono::seconds(20)};
  // Overall deadline of one command (Send + all Receives); past it the command is terminated.
  std::chrono::milliseconds command_deadline{std::chrono::minutes(30)};
  // Envelope size in bytes for requests and responses; unset = read MaxEnvelopeSizekb from the host
  // (config Get, once per session; 150 KB when the Get fails).
  std::optional<std::size_t> max_envelope_size;
  // Limit on the stdout + stderr one command may produce (the peer is not trusted).
  std::size_t max_output_bytes = 64 * 1024 * 1024;
  // Signal code sent after every command.
  std::string signal_code = std::string(action::kSignalTerminate);
  std::string locale = "en-US";
};

struct CommandSpec {
  std::string command;  // executable (a full path when skip_cmd_shell is set)
  std::vector<std::string> arguments;
  std::string stdin_data;  // sent with Send in envelope-sized chunks, End on the last; empty = no Send
  // Upper bound on the bytes of one Send (0 = as many as the envelope size allows): for streaming
  // input in pieces the way the remote process should see them.
  std::size_t stdin_chunk_limit = 0;
  bool skip_cmd_shell = false;  // TRUE: CreateProcess directly instead of cmd.exe /c
  // WINRS_CONSOLEMODE_STDIN; unset = TRUE without stdin data, FALSE with (data is piped).
  std::optional<bool> console_mode_stdin;
  // Overrides SessionOptions::command_deadline.
  std::optional<std::chrono::milliseconds> deadline;
};

struct CommandOutput {
  std::string stdout_data;  // raw bytes as the process wrote them
  std::string stderr_data;
  int exit_code = -1;  // -1 when the host did not report one (OMI)
};

struct SessionCounters {
  std::uint64_t shells_created = 0;
  std::uint64_t commands = 0;
  std::uint64_t receives = 0;
  std::uint64_t instant_timeouts = 0;  // TimedOut faults that came back well before OperationTimeout (backed off)
};

class WinrsSession {
 public:
  // The transport must outlive the session.
  WinrsSession(WsmanTransport& transport, SessionOptions options = {});
  ~WinrsSession();
  WinrsSession(const WinrsSession&) = delete;
  WinrsSession& operator=(const WinrsSession&) = delete;

  // Runs one command to completion. A non-zero exit code is a result, not an error; errors are
  // transport failures, faults ("Command on host:port: WSMan fault ..."), and the deadline.
  boost::asio::awaitable<Result<CommandOutput>> run(CommandSpec spec);

  // The host's limits (config Get), fetched on first use.
  boost::asio::awaitable<Result<ServerConfig>> server_config();

  // Deletes the shell if one is open (faults for an already gone shell are ignored).
  boost::asio::awaitable<Status> close();

  bool shell_open() const { return !shell_.shell_id.empty(); }
  const std::string& shell_id() const { return shell_.shell_id; }
  std::size_t envelope_size() const { return context_.max_envelope_size; }
  SessionCounters counters() const { return counters_; }
  WsmanTransport& transport() { return transport_; }

 private:
  boost::asio::awaitable<Status> ensure_envelope_size();
  boost::asio::awaitable<Status> ensure_shell();
  // Drops the shell id (deleted, or found unusable) and tells the transport's observer.
  void forget_shell();
  boost::asio::awaitable<Result<CommandOutput>> drive(const CommandSpec& spec, const std::string& command_id);
  boost::asio::awaitable<void> signal(const std::string& command_id);
  Error fault_error(std::string_view what, const WsmanReply& reply) const;
  std::string where() const;

  WsmanTransport& transport_;
  SessionOptions options_;
  RequestContext context_;
  CreatedShell shell_;
  std::optional<ServerConfig> server_config_;
  bool envelope_known_ = false;
  bool config_unreachable_ = false;  // the last config Get failed in transport (timeout, connection lost)
  AsyncLock shell_lock_;
  SessionCounters counters_;
};

}  // namespace wincert::winrm
