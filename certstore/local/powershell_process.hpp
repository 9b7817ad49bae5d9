// certstore::ScriptRunner on this machine: each wincert-op script runs in a local Windows PowerShell 5.1
// child process (powershell.exe), so the remote IIS backend (RemoteIisBindings over ScriptCaller) serves
// agent mode unchanged: IIS has no native API that covers what the iis-*.ps1 scripts do.
//
// How the script and its JSON arguments reach the child: the command line carries only a fixed bootstrap
// (-EncodedCommand, the same stdin-mode bootstrap as the WinRM path, winrm/powershell_bootstrap.cpp); the
// script and the arguments follow on stdin as base64(script) "\n" base64(args JSON). Arguments can hold
// secrets (PFX passwords): any local user can read a process's command line, nobody else reads its stdin.
#pragma once

#include "certstore/script_runner.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace boost::asio {
class thread_pool;
}

namespace wincert::certstore::local {

struct LocalPowerShellOptions {
  std::string executable;  // "" = %SystemRoot%\System32\WindowsPowerShell\v1.0\powershell.exe
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};  // then the child (and its children) are killed
  std::string host_name;  // how messages name this machine ("" = its computer name)
};

// Windows PowerShell 5.1's fixed path below the system directory.
std::string default_powershell_path();

struct PowerShellInvocation {
  std::string executable;    // the program CreateProcessW starts
  std::string command_line;  // the whole command line, executable first (quoted)
  std::string stdin_data;    // base64(script) "\n" base64(args JSON) "\n"
};

// The PowerShell text -EncodedCommand carries: reads the payload from stdin, runs the script with the JSON
// text as its one argument, exits with its exit code.
std::string local_bootstrap_script();
PowerShellInvocation build_powershell_invocation(const std::string& executable, std::string_view script_text,
                                                 const nlohmann::json& args);

struct ProcessRun {
  std::string stdout_data;
  std::string stderr_data;
  unsigned long exit_code = 0;
};
// Starts the program with pipes for stdin/stdout/stderr, writes stdin_data, collects both outputs, and
// kills the process (and everything it started) when it runs longer than timeout. `what` names the
// program in errors.
Result<ProcessRun> run_process(const PowerShellInvocation& invocation, std::chrono::milliseconds timeout,
                               std::string_view what);

// powershell.exe's stderr as readable text: the error records of a CLIXML stream ("#< CLIXML", which
// Windows PowerShell writes when started with -EncodedCommand and redirected), else the text as it is.
std::string readable_stderr(std::string_view raw);

class PowerShellProcess final : public ScriptRunner {
 public:
  explicit PowerShellProcess(LocalPowerShellOptions options = {});
  ~PowerShellProcess() override;
  PowerShellProcess(const PowerShellProcess&) = delete;
  PowerShellProcess& operator=(const PowerShellProcess&) = delete;

  boost::asio::awaitable<Result<ScriptOutput>> run(std::string_view op, std::string_view script_text,
                                                   const nlohmann::json& args) override;
  std::string host() const override { return host_; }
  const std::string& executable() const { return executable_; }

 private:
  LocalPowerShellOptions options_;
  std::string executable_;
  std::string host_;
  std::unique_ptr<boost::asio::thread_pool> worker_;  // child processes are waited for here
};

}  // namespace wincert::certstore::local
