#include "certstore/local/powershell_process.hpp"

#include "certstore/local/blocking_worker.hpp"
#include "certstore/local/handles.hpp"
#include "certstore/local/service_control.hpp"
#include "certstore/local/win32_error.hpp"
#include "common/encoding.hpp"
#include "common/text.hpp"
#include "common/win32_text.hpp"
#include "winrm/powershell_bootstrap.hpp"

#include <boost/asio/thread_pool.hpp>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <thread>
#include <vector>

namespace wincert::certstore::local {
namespace {

inline void close_kernel_handle(HANDLE handle) { CloseHandle(handle); }
using KernelHandle = UniqueHandle<HANDLE, close_kernel_handle>;

constexpr std::string_view kPowerShellBelowSystem = "\\WindowsPowerShell\\v1.0\\powershell.exe";
constexpr std::string_view kNeedsPowerShell = "Windows PowerShell 5.1 is needed for IIS stores in agent mode";

bool file_exists(const std::string& path) {
  const std::wstring wide = widen(path);
  const DWORD attributes = GetFileAttributesW(wide.c_str());
  return attributes != INVALID_FILE_ATTRIBUTES && (attributes & FILE_ATTRIBUTE_DIRECTORY) == 0;
}

// One pipe: the parent's end is not inheritable, the child's end is (and is listed for inheritance).
struct Pipe {
  KernelHandle parent;
  KernelHandle child;
};

Result<Pipe> make_pipe(bool child_reads, std::string_view what) {
  SECURITY_ATTRIBUTES inheritable{sizeof(SECURITY_ATTRIBUTES), nullptr, TRUE};
  HANDLE read_end = nullptr, write_end = nullptr;
  if (!CreatePipe(&read_end, &write_end, &inheritable, 0)) {
    return last_win32_error("cannot start " + std::string(what) + ": ", "CreatePipe");
  }
  Pipe pipe;
  pipe.parent.reset(child_reads ? write_end : read_end);
  pipe.child.reset(child_reads ? read_end : write_end);
  SetHandleInformation(pipe.parent.get(), HANDLE_FLAG_INHERIT, 0);
  return pipe;
}

// Restricts inheritance to the three pipe ends: other threads of the agent may hold inheritable handles
// at the same moment, and the child must not keep them open.
class InheritList {
 public:
  explicit InheritList(std::vector<HANDLE> handles) : handles_(std::move(handles)) {
    SIZE_T size = 0;
    InitializeProcThreadAttributeList(nullptr, 1, 0, &size);
    buffer_.resize(size);
    auto* list = reinterpret_cast<LPPROC_THREAD_ATTRIBUTE_LIST>(buffer_.data());
    if (size == 0 || !InitializeProcThreadAttributeList(list, 1, 0, &size)) return;
    initialized_ = true;
    ready_ = UpdateProcThreadAttribute(list, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, handles_.data(),
                                       handles_.size() * sizeof(HANDLE), nullptr, nullptr) != FALSE;
  }
  ~InheritList() {
    if (initialized_) DeleteProcThreadAttributeList(reinterpret_cast<LPPROC_THREAD_ATTRIBUTE_LIST>(buffer_.data()));
  }
  InheritList(const InheritList&) = delete;
  InheritList& operator=(const InheritList&) = delete;
  // nullptr when the system would not build the list (the child then inherits all inheritable handles).
  LPPROC_THREAD_ATTRIBUTE_LIST get() {
    return ready_ ? reinterpret_cast<LPPROC_THREAD_ATTRIBUTE_LIST>(buffer_.data()) : nullptr;
  }

 private:
  std::vector<HANDLE> handles_;
  std::vector<char> buffer_;
  bool initialized_ = false;
  bool ready_ = false;
};

// A job that kills every process in it when it is closed: the child's own children end with it.
KernelHandle kill_on_close_job() {
  KernelHandle job(CreateJobObjectW(nullptr, nullptr));
  if (!job) return job;
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION limits{};
  limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
  if (!SetInformationJobObject(job.get(), JobObjectExtendedLimitInformation, &limits, sizeof(limits))) job.reset();
  return job;
}

void read_all(HANDLE pipe, std::string& out) {
  char buffer[16384];
  DWORD got = 0;
  while (ReadFile(pipe, buffer, sizeof(buffer), &got, nullptr) && got > 0) out.append(buffer, got);
}

// Writes everything, then closes the pipe so the child sees end-of-input. A child that exits without
// reading makes WriteFile fail; that is not an error here (its exit code tells).
void write_all_and_close(KernelHandle pipe, const std::string& data) {
  std::size_t offset = 0;
  while (offset < data.size()) {
    DWORD written = 0;
    const DWORD chunk = static_cast<DWORD>(std::min<std::size_t>(data.size() - offset, 65536));
    if (!WriteFile(pipe.get(), data.data() + offset, chunk, &written, nullptr) || written == 0) break;
    offset += written;
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// CLIXML string text: XML entities, then PowerShell's _xHHHH_ escapes for control characters.
std::string decode_clixml_text(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] == '&') {
      const auto end = text.find(';', i);
      if (end != std::string_view::npos) {
        const std::string_view entity = text.substr(i + 1, end - i - 1);
        std::optional<char32_t> cp;
        if (entity == "lt")
          cp = U'<';
        else if (entity == "gt")
          cp = U'>';
        else if (entity == "amp")
          cp = U'&';
        else if (entity == "quot")
          cp = U'"';
        else if (entity == "apos")
          cp = U'\'';
        else if (entity.starts_with("#x"))
          cp = static_cast<char32_t>(std::strtoul(std::string(entity.substr(2)).c_str(), nullptr, 16));
        else if (entity.starts_with("#"))
          cp = static_cast<char32_t>(std::strtoul(std::string(entity.substr(1)).c_str(), nullptr, 10));
        if (cp) {
          append_utf8(out, *cp);
          i = end + 1;
          continue;
        }
      }
    }
    if (text[i] == '_' && i + 6 < text.size() && text[i + 1] == 'x' && text[i + 6] == '_') {
      int value = 0;
      bool hex = true;
      for (std::size_t k = i + 2; k < i + 6; ++k) {
        const int digit = hex_value(text[k]);
        if (digit < 0) hex = false;
        value = value * 16 + (digit < 0 ? 0 : digit);
      }
      if (hex) {
        append_utf8(out, static_cast<char32_t>(value));
        i += 7;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

std::string quoted(const std::string& path) { return "\"" + path + "\""; }

}  // namespace

std::string default_powershell_path() {
  wchar_t system[MAX_PATH] = {};
  const UINT length = GetSystemDirectoryW(system, MAX_PATH);
  const std::string directory = length > 0 && length < MAX_PATH ? narrow(std::wstring_view(system, length))
                                                                : std::string("C:\\Windows\\System32");
  return directory + std::string(kPowerShellBelowSystem);
}

// The stdin mode of the remote execution contract (winrm/powershell_bootstrap.hpp): the same bootstrap and
// payload as over WinRM, so a script behaves the same there and here; nothing secret on the command line.
std::string local_bootstrap_script() { return winrm::bootstrap_script(winrm::BootstrapMode::kStdin, nullptr); }

PowerShellInvocation build_powershell_invocation(const std::string& executable, std::string_view script_text,
                                                 const nlohmann::json& args) {
  PowerShellInvocation invocation;
  invocation.executable = executable;
  invocation.command_line = quoted(executable) +
                            " -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand " +
                            winrm::encode_command(local_bootstrap_script());
  const std::string args_json =
      args.is_null() ? std::string("{}") : args.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  invocation.stdin_data = winrm::encode_payload({std::string(script_text), args_json}) + "\n";
  return invocation;
}

Result<ProcessRun> run_process(const PowerShellInvocation& invocation, std::chrono::milliseconds timeout,
                               std::string_view what) {
  auto input = make_pipe(true, what);
  auto output = make_pipe(false, what);
  auto errors = make_pipe(false, what);
  if (!input) return input.error();
  if (!output) return output.error();
  if (!errors) return errors.error();

  STARTUPINFOEXW startup{};
  startup.StartupInfo.cb = sizeof(startup);
  startup.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
  startup.StartupInfo.hStdInput = input->child.get();
  startup.StartupInfo.hStdOutput = output->child.get();
  startup.StartupInfo.hStdError = errors->child.get();
  InheritList inherit({input->child.get(), output->child.get(), errors->child.get()});
  DWORD flags = CREATE_SUSPENDED | CREATE_NO_WINDOW;
  if (inherit.get() != nullptr) {
    startup.lpAttributeList = inherit.get();
    flags |= EXTENDED_STARTUPINFO_PRESENT;
  } else {
    startup.StartupInfo.cb = sizeof(STARTUPINFOW);
  }

  const std::wstring executable = widen(invocation.executable);
  std::wstring command_line = widen(invocation.command_line);  // CreateProcessW may write into it
  PROCESS_INFORMATION started{};
  if (!CreateProcessW(executable.c_str(), command_line.data(), nullptr, nullptr, TRUE, flags, nullptr, nullptr,
                      &startup.StartupInfo, &started)) {
    const DWORD code = GetLastError();
    if (code == ERROR_FILE_NOT_FOUND || code == ERROR_PATH_NOT_FOUND) {
      return Error::failed_precondition(std::string(what) + " cannot be started: " + invocation.executable +
                                        " does not exist");
    }
    return win32_status_error(code, std::string(what) + " (" + invocation.executable +
                                        ") cannot be started: " + call_failed("CreateProcess", code));
  }
  KernelHandle process(started.hProcess), thread(started.hThread);
  // The child has its ends now; ours must go, or the pipes never report end-of-file.
  input->child.reset();
  output->child.reset();
  errors->child.reset();
  KernelHandle job = kill_on_close_job();
  if (job && !AssignProcessToJobObject(job.get(), process.get())) job.reset();
  ResumeThread(thread.get());

  ProcessRun run;
  std::thread writer(write_all_and_close, std::move(input->parent), std::cref(invocation.stdin_data));
  std::thread stdout_reader(read_all, output->parent.get(), std::ref(run.stdout_data));
  std::thread stderr_reader(read_all, errors->parent.get(), std::ref(run.stderr_data));

  const DWORD limit = static_cast<DWORD>(std::min<long long>(timeout.count(), INFINITE - 1));
  const bool timed_out = WaitForSingleObject(process.get(), limit) == WAIT_TIMEOUT;
  if (timed_out) {
    if (job) {
      TerminateJobObject(job.get(), 1);
    } else {
      TerminateProcess(process.get(), 1);
    }
    WaitForSingleObject(process.get(), 10000);
  } else if (job) {
    // Whatever the child left running would hold the output pipes open (and is not ours to keep).
    TerminateJobObject(job.get(), 1);
  }
  writer.join();
  stdout_reader.join();
  stderr_reader.join();

  if (timed_out) {
    return Error::deadline_exceeded(std::string(what) + " did not finish within " + duration_text(timeout) +
                                    " and was stopped");
  }
  DWORD exit_code = 0;
  if (!GetExitCodeProcess(process.get(), &exit_code)) {
    return last_win32_error(std::string(what) + ": ", "GetExitCodeProcess");
  }
  run.exit_code = exit_code;
  return run;
}

std::string readable_stderr(std::string_view raw) {
  constexpr std::string_view kClixmlHeader = "#< CLIXML";
  const std::string_view text = trim(raw);
  if (!text.starts_with(kClixmlHeader)) return std::string(text);
  constexpr std::string_view kErrorOpen = "<S S=\"Error\">";
  std::string errors;
  for (auto start = text.find(kErrorOpen); start != std::string_view::npos; start = text.find(kErrorOpen, start)) {
    start += kErrorOpen.size();
    const auto end = text.find("</S>", start);
    if (end == std::string_view::npos) break;
    errors += decode_clixml_text(text.substr(start, end - start));
    start = end;
  }
  return std::string(trim(errors));
}

PowerShellProcess::PowerShellProcess(LocalPowerShellOptions options)
    : options_(std::move(options)),
      executable_(options_.executable.empty() ? default_powershell_path() : options_.executable),
      worker_(std::make_unique<boost::asio::thread_pool>(1)) {
  host_ = options_.host_name;
  if (host_.empty()) host_ = local_computer_name();
  if (host_.empty()) host_ = "localhost";
}

PowerShellProcess::~PowerShellProcess() { worker_->join(); }

boost::asio::awaitable<Result<ScriptOutput>> PowerShellProcess::run(std::string_view op, std::string_view script_text,
                                                                    const nlohmann::json& args) {
  if (!file_exists(executable_)) {
    co_return Error::failed_precondition(
        std::string(kNeedsPowerShell) + ", but " + executable_ +
        " does not exist on this machine; install Windows PowerShell 5.1 (Windows Management "
        "Framework 5.1), or manage this machine's IIS stores over WinRM");
  }
  // The payload is built here: script_text and args need not outlive this call's first suspension.
  PowerShellInvocation invocation = build_powershell_invocation(executable_, script_text, args);
  const std::string what = "powershell.exe running " + std::string(op);
  // A named lambda, moved in: GCC 12 destroys a prvalue argument of a coroutine call inside co_await twice
  // (a double free of the captured strings, seen under Wine's heap checks).
  auto blocking = [invocation = std::move(invocation), timeout = options_.timeout, what] {
    return run_process(invocation, timeout, what);
  };
  WINCERT_CO_ASSIGN_OR_RETURN(auto ran, co_await run_on_worker<ProcessRun>(*worker_, std::move(blocking)));
  ScriptOutput out;
  out.stdout_text = std::move(ran.stdout_data);
  if (out.stdout_text.starts_with("\xEF\xBB\xBF")) out.stdout_text.erase(0, 3);  // a UTF-8 BOM, if any
  out.exit_code = static_cast<int>(ran.exit_code);
  out.error_text = readable_stderr(ran.stderr_data);
  co_return out;
}

}  // namespace wincert::certstore::local
