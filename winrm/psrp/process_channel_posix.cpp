#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>

#include "common/encoding.hpp"
#include "winrm/psrp/process_channel.hpp"

extern char** environ;  // NOLINT: POSIX declares it nowhere else

namespace wincert::winrm::psrp {
namespace net = boost::asio;
using namespace net::experimental::awaitable_operators;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kReapPoll = std::chrono::milliseconds(10);
// After the child's stdout ends, how long to wait for it to exit and for its last stderr bytes.
constexpr auto kExitReportWait = std::chrono::milliseconds(2000);

// A write to a pipe whose reader has gone raises SIGPIPE, which would end the agent; with SIGPIPE ignored
// the write fails with EPIPE instead, which becomes a coded error. Process-wide, done once, and only when
// nobody installed a handler of their own.
void ignore_sigpipe_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction current {};
    if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
  });
}

std::string errno_text(int error) { return std::strerror(error); }

class Pipe {
 public:
  Pipe() = default;
  ~Pipe() { close_both(); }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  bool open() { return pipe2(fds_, O_CLOEXEC) == 0; }
  int read_end() const { return fds_[0]; }
  int write_end() const { return fds_[1]; }
  int release(int index) {
    const int fd = fds_[index];
    fds_[index] = -1;
    return fd;
  }
  void close_both() {
    for (int& fd : fds_) {
      if (fd >= 0) ::close(fd);
      fd = -1;
    }
  }

 private:
  int fds_[2] = {-1, -1};
};

}  // namespace

// Everything the channel and its stderr drain share; the drain's handlers hold it alive.
struct ProcessChannel::State {
  State(net::any_io_executor executor, ProcessChannelOptions opts)
      : options(std::move(opts)), input(executor), output(executor), errors(executor), lines(options.max_line_bytes) {}

  ProcessChannelOptions options;
  pid_t pid = -1;
  bool reaped = false;
  int wait_status = 0;
  net::posix::stream_descriptor input;   // the child's stdin
  net::posix::stream_descriptor output;  // the child's stdout
  net::posix::stream_descriptor errors;  // the child's stderr
  LineBuffer lines;
  std::array<char, 16384> read_buffer{};
  std::array<char, 4096> error_buffer{};
  std::string error_tail;
  bool errors_ended = false;
  bool output_ended = false;
  bool broken = false;  // a write was cut short: the stream can no longer be trusted
  bool closed = false;

  std::string describe() const { return "pwsh child " + std::to_string(pid) + " (" + options.program + ")"; }

  bool try_reap() {
    if (reaped || pid < 0) return true;
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) {
      reaped = true;
      wait_status = status;
    }
    return reaped;
  }

  void kill_and_reap() {
    if (pid < 0) return;
    // The whole group (the launcher and the server it started); before the reap the group id cannot have
    // been reused, after it only processes the child left behind can still hold it.
    ::kill(-pid, SIGKILL);
    if (reaped) return;
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    reaped = true;
    wait_status = status;
  }

  std::string exit_text() const {
    if (!reaped) return "is still running";
    if (WIFEXITED(wait_status)) return "exited with code " + std::to_string(WEXITSTATUS(wait_status));
    if (WIFSIGNALED(wait_status)) return "was killed by signal " + std::to_string(WTERMSIG(wait_status));
    return "ended";
  }

  std::string stderr_summary() const {
    std::string tail(trim(error_tail));
    for (char& c : tail) {
      if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    }
    return tail.empty() ? "nothing on stderr" : "stderr: " + tail;
  }
};

namespace {

void drain_errors(std::shared_ptr<ProcessChannel::State> state) {
  // The buffer and the descriptor are taken before the handler takes ownership of the state.
  auto& errors = state->errors;
  const auto buffer = net::buffer(state->error_buffer);
  errors.async_read_some(buffer, [state = std::move(state)](boost::system::error_code ec, std::size_t n) mutable {
    if (ec) {
      state->errors_ended = true;
      return;
    }
    state->error_tail.append(state->error_buffer.data(), n);
    const std::size_t limit = state->options.stderr_tail_bytes;
    if (state->error_tail.size() > limit) {
      state->error_tail.erase(0, state->error_tail.size() - limit);
    }
    drain_errors(std::move(state));
  });
}

// Waits (polling, without blocking the thread) until the child has exited and its stderr has ended, or
// until `wait` has passed.
net::awaitable<void> settle(ProcessChannel::State& state, std::chrono::milliseconds wait) {
  const auto give_up = Clock::now() + wait;
  net::steady_timer pause(state.output.get_executor());
  while (!(state.try_reap() && state.errors_ended) && Clock::now() < give_up) {
    pause.expires_after(kReapPoll);
    co_await pause.async_wait(net::as_tuple(net::use_awaitable));
  }
}

// The coded error for a child that stopped talking: unavailable, with its exit status and stderr tail.
net::awaitable<Error> child_gone(ProcessChannel::State& state, std::string_view what) {
  co_await settle(state, kExitReportWait);
  co_return Error::unavailable(state.describe() + " " + std::string(what) + " and " + state.exit_text() + " (" +
                               state.stderr_summary() + "); check that the program is PowerShell 7 and that " +
                               "it starts with these arguments");
}

}  // namespace

std::vector<std::string> pwsh_server_arguments() { return {"-s", "-NoLogo", "-NoProfile"}; }

Result<std::unique_ptr<ProcessChannel>> ProcessChannel::start(net::any_io_executor executor,
                                                              ProcessChannelOptions options) {
  ignore_sigpipe_once();
  Pipe in;
  Pipe out;
  Pipe err;
  if (!in.open() || !out.open() || !err.open()) {
    const int error = errno;
    return Error::resource_exhausted("cannot create pipes for " + options.program + ": " + errno_text(error))
        .with_system_status(SystemStatusKind::kErrno, static_cast<std::uint32_t>(error));
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.read_end(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out.write_end(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err.write_end(), STDERR_FILENO);
  // The child starts with default signal handling and no blocked signals, whatever the agent changed
  // (SIGPIPE above, the daemon's signal set).
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGHUP);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attributes, &empty);
  // A process group of its own: `pwsh` installed as a .NET tool is a launcher that runs the real server
  // (`dotnet pwsh.dll`) as its child, so stopping the server means signalling the whole group.
  posix_spawnattr_setpgroup(&attributes, 0);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);

  std::vector<std::string> argv_text;
  argv_text.push_back(options.program);
  argv_text.insert(argv_text.end(), options.arguments.begin(), options.arguments.end());
  std::vector<char*> argv;
  for (auto& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);

  pid_t pid = -1;
  const int spawned = posix_spawn(&pid, options.program.c_str(), &actions, &attributes, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (spawned != 0) {
    return Error::failed_precondition("cannot start " + options.program + ": " + errno_text(spawned) +
                                      "; check the PowerShell 7 path configured for the agent")
        .with_system_status(SystemStatusKind::kErrno, static_cast<std::uint32_t>(spawned));
  }

  auto state = std::make_shared<State>(executor, std::move(options));
  state->pid = pid;
  state->input.assign(in.release(1));
  state->output.assign(out.release(0));
  state->errors.assign(err.release(0));
  // The child's ends close here (the Pipe destructors), so EOF arrives when the child exits.
  in.close_both();
  out.close_both();
  err.close_both();
  drain_errors(state);
  return std::unique_ptr<ProcessChannel>(new ProcessChannel(std::move(state)));
}

ProcessChannel::ProcessChannel(std::shared_ptr<State> state) : state_(std::move(state)) {}

ProcessChannel::~ProcessChannel() {
  boost::system::error_code ignored;
  state_->input.close(ignored);
  state_->output.close(ignored);
  state_->errors.close(ignored);  // the drain's handler ends with operation_aborted
  state_->kill_and_reap();
}

int ProcessChannel::pid() const { return state_->pid; }
std::string ProcessChannel::stderr_tail() const { return state_->error_tail; }
std::string ProcessChannel::describe() const { return state_->describe(); }

net::awaitable<Status> ProcessChannel::write_line(std::string line) {
  auto& s = *state_;
  if (line.find('\n') != std::string::npos) {
    co_return Error::internal("an OutOfProc line must not contain a line break (to " + s.describe() + ")");
  }
  if (s.closed || s.broken || !s.input.is_open()) {
    co_return Error::unavailable(s.describe() + " is closed or broken; open a new session");
  }
  line += '\n';
  net::steady_timer deadline(s.input.get_executor());
  deadline.expires_after(s.options.write_timeout);
  auto outcome = co_await (net::async_write(s.input, net::buffer(line), net::as_tuple(net::use_awaitable)) ||
                           deadline.async_wait(net::as_tuple(net::use_awaitable)));
  if (outcome.index() == 1) {
    s.broken = true;
    co_return Error::deadline_exceeded(s.describe() + " did not read its input within " +
                                       std::to_string(s.options.write_timeout.count()) + " ms");
  }
  const auto [ec, written] = std::get<0>(outcome);
  if (ec) {
    s.broken = true;
    co_return co_await child_gone(s, "stopped reading its input (" + ec.message() + ")");
  }
  co_return Status();
}

net::awaitable<Result<std::string>> ProcessChannel::read_line(std::chrono::milliseconds timeout) {
  auto& s = *state_;
  const auto give_up = Clock::now() + timeout;
  while (true) {
    if (s.closed) co_return Error::unavailable(s.describe() + " is closed");
    auto line = s.lines.next_line();
    if (!line.ok()) {
      s.broken = true;
      co_return std::move(line).error().context(s.describe() + ": ");
    }
    if (line.value()) co_return std::move(*line.value());
    if (s.output_ended) co_return co_await child_gone(s, "closed its output");
    const auto left = give_up - Clock::now();
    if (left <= Clock::duration::zero()) {
      co_return Error::deadline_exceeded("no whole line from " + s.describe() + " within " +
                                         std::to_string(timeout.count()) + " ms");
    }
    net::steady_timer deadline(s.output.get_executor());
    deadline.expires_after(left);
    auto outcome = co_await (s.output.async_read_some(net::buffer(s.read_buffer), net::as_tuple(net::use_awaitable)) ||
                             deadline.async_wait(net::as_tuple(net::use_awaitable)));
    if (outcome.index() == 1) continue;  // the deadline: reported at the top of the loop
    const auto [ec, n] = std::get<0>(outcome);
    if (ec) {
      s.output_ended = true;
      continue;
    }
    s.lines.append(std::string_view(s.read_buffer.data(), n));
  }
}

net::awaitable<Status> ProcessChannel::close() {
  auto& s = *state_;
  if (s.closed) co_return Status();
  s.closed = true;
  boost::system::error_code ignored;
  s.input.close(ignored);  // EOF on stdin ends the PowerShell server
  co_await settle(s, s.options.exit_grace);
  s.kill_and_reap();  // a child still running after the grace period (or one that ignores EOF)
  s.output.close(ignored);
  s.errors.close(ignored);
  co_return Status();
}

}  // namespace wincert::winrm::psrp
