// What a WinRS command does on the simulated host: enough of cmd.exe (echo, exit, set, type/more/findstr
// of stdin, timeout, ping, &&/||/&/| and >&2 redirection) and of powershell.exe (the wincert bootstrap that
// runs `# wincert-op:` operations against the WindowsModel, and a tiny interpreter for other scripts).
// A program's run is computed up front as a list of timed steps; the WinRS service plays them with timers,
// so a sleeping command never blocks the io_context.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace wincert::sim {

class WindowsModel;

struct OutputStep {
  enum class Kind { kStdout, kStderr, kSleep };
  Kind kind = Kind::kStdout;
  std::string data;        // bytes for stdout/stderr
  long long sleep_ms = 0;  // for kSleep
};

struct ProgramResult {
  std::vector<OutputStep> steps;
  int exit_code = 0;
};

// Case-insensitive ordering for Windows environment variable names.
struct CaseInsensitiveLess {
  bool operator()(const std::string& a, const std::string& b) const;
};
using Environment = std::map<std::string, std::string, CaseInsensitiveLess>;

struct ProcessContext {
  WindowsModel* model = nullptr;
  std::string user;               // owner ("user" or "DOMAIN\user")
  Environment shell_environment;  // rsp:Environment variables of the shell
  std::string working_directory;  // empty: the user's profile directory
  int codepage = 437;
  bool no_profile = false;
  long long ps_start_ms = 0;  // the host's cost of starting powershell.exe, played as a sleep before it runs
};

// The environment a process of this shell sees (system variables + the shell's own).
Environment process_environment(const ProcessContext& ctx);

// With WINRS_SKIP_CMD_SHELL=TRUE the process is created directly: the program must be given by its full path
// (like `C:\Windows\system32\WindowsPowerShell\v1.0\powershell.exe`) and be one the host has. False means
// CreateProcess fails with "The system cannot find the file specified." (a fault on the Command request).
bool direct_executable_exists(const std::string& command);

// Windows limits: cmd.exe refuses lines over 8191 characters ("The command line is too long."),
// CreateProcess over 32767 (a fault on the Command request).
inline constexpr std::size_t kMaxCmdLine = 8191;
inline constexpr std::size_t kMaxProcessCommandLine = 32767;
std::size_t command_line_length(const std::string& command, const std::vector<std::string>& arguments);

// Runs a command line. `stdin_data` is null while the client has not closed stdin (Send End="true");
// a program that reads stdin then returns nullopt, and is run again once all input is there.
std::optional<ProgramResult> run_command_line(const ProcessContext& ctx, const std::string& command,
                                              const std::vector<std::string>& arguments, bool skip_cmd_shell,
                                              const std::string* stdin_data);

// Exposed for tests: the PowerShell side on its own.
std::optional<ProgramResult> run_powershell(const ProcessContext& ctx, const std::string& argument_line,
                                            const std::string* stdin_data);
// A PowerShell script as the interpreter runs it. `encoded` selects CLIXML error output (-EncodedCommand).
ProgramResult run_powershell_script(const ProcessContext& ctx, const std::string& script, const std::string& args_json,
                                    bool encoded);
// CLIXML error stream text ("#< CLIXML\r\n<Objs ...>...</Objs>") for error lines, as PowerShell writes it.
std::string clixml_error_stream(const std::vector<std::string>& error_lines,
                                const std::vector<std::string>& warning_lines = {});
// Splits a Windows command line into arguments (CommandLineToArgvW rules, simplified).
std::vector<std::string> split_windows_args(const std::string& line);

}  // namespace wincert::sim
