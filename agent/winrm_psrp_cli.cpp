#include "agent/winrm_psrp_cli.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>

#include <algorithm>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <optional>
#include <sstream>

#include "agent/psrp_script_runner.hpp"
#include "common/secret.hpp"
#include "winrm/psrp/runspace_pool.hpp"
#include "winrm/psrp/wsman_runspace_pool.hpp"
#ifndef _WIN32
#include "winrm/psrp/process_channel.hpp"
#endif
#ifdef WINCERT_HAVE_LIBSSH
#include "winrm/psrp/ssh_channel.hpp"
#endif

namespace wincert::agent {

namespace net = boost::asio;
using namespace wincert::winrm::psrp;

namespace {

constexpr int kCompletedExit = 0;
constexpr int kFailedExit = 1;
constexpr int kLocalErrorExit = 255;

void print_line(std::FILE* out, const std::string& prefix, const std::string& text) {
  std::fprintf(out, "%s%s\n", prefix.c_str(), text.c_str());
}

#ifdef WINCERT_HAVE_LIBSSH
Result<std::string> read_text_file(const std::string& path, const std::string& option) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error::not_found("cannot read " + option + " '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::optional<Secret> secret_from_env(const std::string& variable) {
  if (variable.empty()) return std::nullopt;
  const char* value = std::getenv(variable.c_str());
  if (value == nullptr) return std::nullopt;
  return Secret(value);
}
#endif

// The byte stream the options name: an SSH channel or a local pwsh child.
net::awaitable<Result<std::unique_ptr<OutOfProcChannel>>> open_channel(const PsrpCliOptions& options) {
  if (!options.pwsh_child.empty()) {
#ifndef _WIN32
    ProcessChannelOptions child;
    child.program = options.pwsh_child;
    child.arguments = pwsh_server_arguments();
    auto channel = ProcessChannel::start(co_await net::this_coro::executor, std::move(child));
    if (!channel.ok()) co_return std::move(channel).error();
    co_return std::unique_ptr<OutOfProcChannel>(std::move(channel).value());
#else
    co_return Error::failed_precondition("--pwsh is not available in the Windows build");
#endif
  }
#ifdef WINCERT_HAVE_LIBSSH
  auto target = parse_ssh_target(options.ssh_target);
  if (!target.ok()) co_return std::move(target).error();
  if (options.known_hosts_file.empty())
    co_return Error::invalid_argument("--ssh needs --known-hosts FILE: the host key is always verified");
  SshChannelOptions ssh;
  ssh.target = *target;
  ssh.user = options.user;
  ssh.known_hosts_file = options.known_hosts_file;
  ssh.trust_on_first_use = options.trust_on_first_use;
  ssh.connect_timeout = options.connect_timeout;
  auto secret = secret_from_env(options.password_env);
  if (!options.password_env.empty() && !secret)
    co_return Error::invalid_argument("environment variable " + options.password_env +
                                      " (from --password-env) is not set");
  if (!options.key_file.empty()) {
    auto key = read_text_file(options.key_file, "--key-file");
    if (!key.ok()) co_return std::move(key).error();
    ssh.private_key = Secret(std::move(key).value());
    if (secret) ssh.key_passphrase = std::move(*secret);
  } else if (secret) {
    ssh.password = std::move(*secret);
  } else {
    co_return Error::invalid_argument("--ssh needs --key-file FILE or --password-env VAR");
  }
  auto channel = co_await SshChannel::connect(std::move(ssh));
  if (!channel.ok()) co_return std::move(channel).error();
  co_return std::unique_ptr<OutOfProcChannel>(std::move(channel).value());
#else
  co_return Error::failed_precondition("PowerShell over SSH is not built in (no libssh)");
#endif
}

// The pool the options name: over WS-Man when a transport is given, else over a byte stream.
net::awaitable<Result<std::unique_ptr<RunspacePool>>> open_pool(const PsrpCliOptions& options,
                                                                winrm::WsmanTransport* transport) {
  if (transport != nullptr) {
    WsmanRunspacePoolOptions pool_options;
    if (!options.configuration_name.empty()) pool_options.configuration_name = options.configuration_name;
    pool_options.operation_timeout = options.operation_timeout;
    pool_options.open_timeout = std::max(options.connect_timeout, std::chrono::milliseconds(60000));
    auto pool = co_await WsmanRunspacePool::open(*transport, std::move(pool_options));
    if (!pool.ok()) co_return std::move(pool).error();
    co_return std::unique_ptr<RunspacePool>(std::move(pool).value());
  }
  auto channel = co_await open_channel(options);
  if (!channel.ok()) co_return std::move(channel).error();
  RunspacePoolOptions pool_options;
  pool_options.open_timeout = options.connect_timeout;
  auto pool = co_await OutOfProcRunspacePool::open(std::move(channel).value(), pool_options);
  if (!pool.ok()) co_return std::move(pool).error();
  co_return std::unique_ptr<RunspacePool>(std::move(pool).value());
}

net::awaitable<int> run(const PsrpCliOptions& options, std::string script, winrm::WsmanTransport* transport) {
  auto pool = co_await open_pool(options, transport);
  if (!pool.ok()) {
    print_line(stderr, "wincert-agent: ", pool.error().message);
    co_return kLocalErrorExit;
  }
  if (options.with_module) {
    std::vector<PipelineCommand> load;
    load.push_back(module_load_command());
    auto loaded = co_await (*pool)->invoke(std::move(load), options.command_timeout);
    if (!loaded.ok() || !loaded->completed()) {
      print_line(stderr, "wincert-agent: ",
                 "loading the WincertOps module failed: " +
                     (!loaded.ok() ? loaded.error().message
                                   : (loaded->state.error ? loaded->state.error->message
                                                          : std::string("the pipeline did not complete"))));
      (void)co_await (*pool)->close();
      co_return kLocalErrorExit;
    }
  }
  const auto before = transport != nullptr ? transport->counters() : winrm::TransportCounters{};
  const auto started = std::chrono::steady_clock::now();
  const int runs = options.repeat > 0 ? options.repeat : 1;
  Result<PipelineResult> result = Error::internal("no run");
  for (int i = 0; i < runs; ++i) {
    PipelineCommand command;
    command.command = script;
    command.is_script = !options.args_json.has_value();
    if (options.args_json) command.parameters.push_back({"ArgsJson", PsValue::string(*options.args_json)});
    std::vector<PipelineCommand> commands;
    commands.push_back(std::move(command));
    result = co_await (*pool)->invoke(std::move(commands), options.command_timeout);
    if (!result.ok()) break;
    for (const auto& value : result->output) print_line(stdout, "", value.to_display_string());
    std::fflush(stdout);
  }
  const auto elapsed = std::chrono::steady_clock::now() - started;
  const auto after = transport != nullptr ? transport->counters() : winrm::TransportCounters{};
  (void)co_await (*pool)->close();
  if (options.repeat > 0) {
    const double total_ms = std::chrono::duration<double, std::milli>(elapsed).count();
    std::fprintf(stderr,
                 "wincert-agent: runs=%d total_ms=%.1f mean_ms=%.2f http_requests=%llu bytes_sent=%llu "
                 "bytes_received=%llu (the runs only, after the pool opened)\n",
                 runs, total_ms, total_ms / runs,
                 static_cast<unsigned long long>(after.http_requests - before.http_requests),
                 static_cast<unsigned long long>(after.bytes_sent - before.bytes_sent),
                 static_cast<unsigned long long>(after.bytes_received - before.bytes_received));
  }
  if (!result.ok()) {
    print_line(stderr, "wincert-agent: ", result.error().message);
    co_return kLocalErrorExit;
  }
  for (const auto& record : result->informational) {
    if (record.kind == InformationalKind::kWarning) print_line(stderr, "warning: ", record.message);
  }
  for (const auto& error : result->errors) print_line(stderr, "error: ", error.message);
  if (result->state.error) print_line(stderr, "error: ", result->state.error->message);
  co_return result->completed() ? kCompletedExit : kFailedExit;
}

int run_on(net::io_context& io, net::awaitable<int> work) {
  std::optional<int> code;
  std::exception_ptr failure;
  auto wrapper = [](net::awaitable<int> inner, std::optional<int>& out) -> net::awaitable<void> {
    out = co_await std::move(inner);
  };
  net::co_spawn(io, wrapper(std::move(work), code), [&failure](std::exception_ptr e) { failure = e; });
  io.run();
  if (failure) std::rethrow_exception(failure);
  return code.value_or(kLocalErrorExit);
}

}  // namespace

int run_psrp_script_over_wsman(net::io_context& io, winrm::WsmanTransport& transport, const PsrpCliOptions& options,
                               const std::string& script) {
  return run_on(io, run(options, script, &transport));
}

int run_psrp_script(const PsrpCliOptions& options, const std::string& script) {
  net::io_context io(1);
  const int code = run_on(io, run(options, script, nullptr));
#ifdef WINCERT_HAVE_LIBSSH
  // Let the SSH session thread finish its clean disconnect before the process exits.
  (void)SshChannel::wait_for_sessions_to_end(std::chrono::seconds(10));
#endif
  return code;
}

}  // namespace wincert::agent
