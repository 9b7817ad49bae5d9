#include "agent/winrm_cli.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include "agent/winrm_auth_factory.hpp"
#include "agent/winrm_psrp_cli.hpp"
#include "common/encoding.hpp"
#include "common/log.hpp"
#include "common/secret.hpp"
#include "winrm/endpoint.hpp"
#include "winrm/powershell.hpp"
#include "winrm/transport.hpp"
#include "winrm/winrs.hpp"

namespace wincert::agent {

namespace net = boost::asio;
using namespace wincert::winrm;

namespace {

constexpr int kLocalErrorExit = 255;

struct ConnectionFlags {
  std::string endpoint;
  std::string auth;
  std::string user;
  std::string password_env;
  bool allow_unencrypted = false;
  // --ca-file, --client-cert and --client-key straight into the transport's options; the timeouts and
  // --insecure-skip-verify are converted once in make_transport.
  winrm::TransportOptions transport;
  bool insecure_skip_verify = false;
  double operation_timeout_sec = 20;
  double connect_timeout_sec = 30;
  double command_timeout_sec = 1800;
  std::string log_level = "warn";
  bool spn_with_port = false;
};

struct ExecFlags {
  bool skip_cmd_shell = false;
  std::vector<std::string> command_line;
};

struct PsFlags {
  std::string script_file;
  std::string command_text;
  std::string args_json = "{}";
  int repeat = 0;
  bool psrp = false;  // PowerShell remoting instead of one powershell.exe per run
  bool args_given = false;
  PsrpCliOptions psrp_options;
};

void add_connection_options(CLI::App* cmd, ConnectionFlags& flags) {
  // Required, except by `ps --psrp` over --ssh or --pwsh (checked in the subcommands' callbacks).
  cmd->add_option("--endpoint", flags.endpoint, "WinRM URL, e.g. https://host:5986/wsman");
  cmd->add_option("--auth", flags.auth,
                  "basic | ntlm | kerberos | negotiate | certificate | none; default basic when --user is given")
      ->check(CLI::IsMember({"basic", "none", "ntlm", "kerberos", "negotiate", "certificate"}));
  cmd->add_option("--user", flags.user, "account name");
  cmd->add_option("--password-env", flags.password_env,
                  "name of the environment variable holding the password (never on the command line)");
  cmd->add_flag("--allow-unencrypted", flags.allow_unencrypted,
                "allow Basic over plain HTTP (the host must have AllowUnencrypted=true)");
  cmd->add_option("--ca-file", flags.transport.ca_file, "PEM file of CAs trusted for the host's TLS certificate")
      ->check(CLI::ExistingFile);
  cmd->add_option("--client-cert", flags.transport.client_certificate_file,
                  "PEM client certificate (--auth certificate)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--client-key", flags.transport.client_key_file, "PEM private key of --client-cert")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--spn-with-port", flags.spn_with_port,
                "Kerberos/NTLM: target HTTP/host:port instead of HTTP/host (services under a custom account)");
  cmd->add_flag("--insecure-skip-verify", flags.insecure_skip_verify,
                "do not verify the host's TLS certificate (logged; for testing only)");
  cmd->add_option("--operation-timeout", flags.operation_timeout_sec, "WS-Man OperationTimeout in seconds")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  cmd->add_option("--connect-timeout", flags.connect_timeout_sec, "TCP/TLS connect timeout in seconds")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  cmd->add_option("--command-timeout", flags.command_timeout_sec, "overall deadline per command in seconds")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 86400.0 * 7));
  cmd->add_option("--log-level", flags.log_level, "trace|debug|info|warn|error|off")->capture_default_str();
}

std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000.0));
}

void print_error(const std::string& message) { std::fprintf(stderr, "wincert-agent: %s\n", message.c_str()); }

void write_bytes(std::FILE* out, const std::string& data) {
  if (!data.empty()) std::fwrite(data.data(), 1, data.size(), out);
  std::fflush(out);
}

// Remote exit codes pass through when they fit a process status; 255 is reserved for local errors.
int process_exit_code(int remote) {
  if (remote >= 0 && remote < kLocalErrorExit) return remote;
  std::fprintf(stderr, "wincert-agent: remote exit code %d\n", remote);
  return 254;
}

// The password from --password-env VAR: never on the command line.
Result<Secret> password_from_env(const ConnectionFlags& flags) {
  const char* password = std::getenv(flags.password_env.c_str());
  if (password == nullptr) {
    return Error::invalid_argument("environment variable " + flags.password_env + " (from --password-env) is not set");
  }
  return Secret(password);
}

// Checks the flag combinations (messages name the flags), then builds through winrm_auth_factory,
// the same construction the store sessions use.
Result<std::unique_ptr<WsmanTransport>> make_transport(net::io_context& io, const ConnectionFlags& flags) {
  auto endpoint = parse_endpoint(flags.endpoint);
  if (!endpoint.ok()) return endpoint.error();
  std::string scheme = flags.auth;
  if (scheme.empty()) scheme = flags.user.empty() ? "none" : "basic";
  HttpAuthSpec spec;
  spec.user = flags.user;
  spec.spn_with_port = flags.spn_with_port;
  spec.allow_unencrypted = flags.allow_unencrypted;
  if (scheme == "basic" || scheme == "ntlm") {
    if (flags.user.empty()) {
      return Error::invalid_argument("--auth " + scheme + " needs --user" + (scheme == "ntlm" ? " DOMAIN\\user" : ""));
    }
    if (flags.password_env.empty()) {
      return Error::invalid_argument("--auth " + scheme +
                                     " needs --password-env VAR (the name of a variable holding the password)");
    }
    auto password = password_from_env(flags);
    if (!password.ok()) return password.error();
    spec.password = std::move(password.value());
  } else if (scheme == "kerberos" || scheme == "negotiate") {
    // No --password-env: the ticket cache (KRB5CCNAME) or client keytab of --user, or the default identity.
    if (!flags.password_env.empty()) {
      auto password = password_from_env(flags);
      if (!password.ok()) return password.error();
      if (flags.user.empty())
        return Error::invalid_argument("--password-env needs --user (user@REALM or DOMAIN\\user)");
      spec.password = std::move(password.value());
    }
  } else if (scheme == "certificate") {
    if (flags.transport.client_certificate_file.empty() || flags.transport.client_key_file.empty()) {
      return Error::invalid_argument("--auth certificate needs --client-cert and --client-key (PEM files)");
    }
  } else if (scheme != "none") {
    return Error::invalid_argument("--auth " + scheme + " is not supported");
  }
  if (scheme != "none") spec.scheme = jobs::parse_auth_scheme(scheme);

  winrm::TransportOptions options = flags.transport;
  options.connect.connect_timeout = to_ms(flags.connect_timeout_sec);
  options.connect.tls_handshake_timeout = options.connect.connect_timeout;
  options.connect.verify_peer = !flags.insecure_skip_verify;
  return agent::make_transport(io.get_executor(), std::move(*endpoint), spec, std::move(options));
}

SessionOptions session_options(const ConnectionFlags& flags) {
  SessionOptions options;
  options.operation_timeout = to_ms(flags.operation_timeout_sec);
  options.command_deadline = to_ms(flags.command_timeout_sec);
  return options;
}

// Runs a coroutine to completion on io and returns its value (Result has no default constructor,
// which co_spawn's completion needs, hence the optional).
template <typename T>
T run_on(net::io_context& io, net::awaitable<T> work) {
  std::optional<T> value;
  auto wrapper = [](net::awaitable<T> inner, std::optional<T>& out) -> net::awaitable<void> {
    out.emplace(co_await std::move(inner));
  };
  std::exception_ptr failure;
  net::co_spawn(io, wrapper(std::move(work), value), [&failure](std::exception_ptr e) { failure = e; });
  io.run();
  if (failure) std::rethrow_exception(failure);
  return std::move(*value);
}

int run_exec(const ConnectionFlags& flags, const ExecFlags& exec) {
  init_logging(flags.log_level);
  net::io_context io(1);
  auto transport = make_transport(io, flags);
  if (!transport.ok()) {
    print_error(transport.error().message);
    return kLocalErrorExit;
  }
  WinrsSession session(**transport, session_options(flags));
  CommandSpec spec;
  spec.command = exec.command_line.front();
  spec.arguments.assign(exec.command_line.begin() + 1, exec.command_line.end());
  spec.skip_cmd_shell = exec.skip_cmd_shell;

  auto work = [&]() -> net::awaitable<Result<CommandOutput>> {
    auto output = co_await session.run(spec);
    auto closed = co_await session.close();
    if (!closed.ok()) logger("winrm")->debug("closing the shell: {}", closed.error().message);
    co_return output;
  };
  auto output = run_on(io, work());
  if (!output.ok()) {
    print_error(output.error().message);
    return kLocalErrorExit;
  }
  write_bytes(stdout, output->stdout_data);
  write_bytes(stderr, output->stderr_data);
  return process_exit_code(output->exit_code);
}

Result<PsPayload> load_payload(const PsFlags& ps) {
  PsPayload payload;
  if (!ps.script_file.empty()) {
    std::ifstream in(ps.script_file, std::ios::binary);
    if (!in) return Error::not_found("cannot read script file '" + ps.script_file + "'");
    std::ostringstream text;
    text << in.rdbuf();
    payload.script = text.str();
  } else {
    payload.script = ps.command_text;
  }
  const auto args = nlohmann::json::parse(ps.args_json, nullptr, /*allow_exceptions=*/false);
  if (args.is_discarded() || !args.is_object()) {
    return Error::invalid_argument("--args-json must be one JSON object, e.g. '{\"name\":\"value\"}'");
  }
  payload.args_json = args.dump();
  return payload;
}

int run_ps_command(const ConnectionFlags& flags, const PsFlags& ps) {
  init_logging(flags.log_level);
  auto payload = load_payload(ps);
  if (!payload.ok()) {
    print_error(payload.error().message);
    return kLocalErrorExit;
  }
  net::io_context io(1);
  auto transport = make_transport(io, flags);
  if (!transport.ok()) {
    print_error(transport.error().message);
    return kLocalErrorExit;
  }
  WinrsSession session(**transport, session_options(flags));
  const int runs = ps.repeat > 0 ? ps.repeat : 1;

  struct Outcome {
    Result<PsResult> last = Error::internal("no run");
    std::chrono::steady_clock::duration elapsed{};
  };
  auto work = [&]() -> net::awaitable<Outcome> {
    Outcome outcome;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < runs; ++i) {
      outcome.last = co_await run_ps(session, *payload);
      if (!outcome.last.ok()) break;
      if (i + 1 < runs) {  // every run's output is shown; the last one is printed by the caller
        write_bytes(stdout, outcome.last->stdout_data);
        if (!outcome.last->error_text.empty()) std::fprintf(stderr, "%s\n", outcome.last->error_text.c_str());
      }
    }
    outcome.elapsed = std::chrono::steady_clock::now() - start;
    auto closed = co_await session.close();
    if (!closed.ok()) logger("winrm")->debug("closing the shell: {}", closed.error().message);
    co_return outcome;
  };
  auto outcome = run_on(io, work());
  if (ps.repeat > 0) {
    const auto counters = (*transport)->counters();
    const double total_ms = std::chrono::duration<double, std::milli>(outcome.elapsed).count();
    std::fprintf(stderr, "wincert-agent: runs=%d total_ms=%.1f mean_ms=%.2f http_requests=%llu connections=%llu\n",
                 runs, total_ms, total_ms / runs, static_cast<unsigned long long>(counters.http_requests),
                 static_cast<unsigned long long>(counters.connections_opened));
  }
  if (!outcome.last.ok()) {
    print_error(outcome.last.error().message);
    return kLocalErrorExit;
  }
  write_bytes(stdout, outcome.last->stdout_data);
  if (!outcome.last->error_text.empty()) std::fprintf(stderr, "%s\n", outcome.last->error_text.c_str());
  return process_exit_code(outcome.last->exit_code);
}

// `ps --psrp`: over WS-Man (--endpoint), SSH or a local pwsh child.
int run_psrp_command(const ConnectionFlags& flags, const PsFlags& ps) {
  init_logging(flags.log_level);
  auto payload = load_payload(ps);
  if (!payload.ok()) {
    print_error(payload.error().message);
    return kLocalErrorExit;
  }
  PsrpCliOptions options = ps.psrp_options;
  if (ps.args_given) {
    if (!ps.script_file.empty()) {
      print_error("--input-json goes with --command NAME (a command to call), not --script");
      return kLocalErrorExit;
    }
    options.args_json = payload->args_json;
    payload->script = std::string(trim(ps.command_text));
  }
  options.user = flags.user;
  options.password_env = flags.password_env;
  options.connect_timeout = to_ms(flags.connect_timeout_sec);
  options.command_timeout = to_ms(flags.command_timeout_sec);
  options.operation_timeout = to_ms(flags.operation_timeout_sec);
  options.repeat = ps.repeat;
  if (options.ssh_target.empty() && options.pwsh_child.empty()) {
    net::io_context io(1);
    auto transport = make_transport(io, flags);
    if (!transport.ok()) {
      print_error(transport.error().message);
      return kLocalErrorExit;
    }
    return run_psrp_script_over_wsman(io, **transport, options, payload->script);
  }
  if (!options.configuration_name.empty()) {
    print_error("--configuration-name names a WS-Man session configuration: it goes with --endpoint");
    return kLocalErrorExit;
  }
  return run_psrp_script(options, payload->script);
}

}  // namespace

std::function<int()> add_winrm_commands(CLI::App& app) {
  auto* winrm = app.add_subcommand("winrm", "run a command or a PowerShell script on a host over WinRM");
  winrm->require_subcommand(1);

  auto exec_connection = std::make_shared<ConnectionFlags>();
  auto exec_flags = std::make_shared<ExecFlags>();
  auto* exec = winrm->add_subcommand("exec", "run a command; print its stdout/stderr, exit with its code");
  add_connection_options(exec, *exec_connection);
  exec->add_flag("--skip-cmd-shell", exec_flags->skip_cmd_shell,
                 "start the process directly instead of through cmd.exe /c (needs a full path)");
  exec->add_option("command", exec_flags->command_line, "-- CMD [ARGS...]")->required();
  exec->callback([exec, exec_connection] {
    if (exec_connection->endpoint.empty()) throw CLI::RequiredError(exec->get_name() + ": --endpoint");
  });

  auto ps_connection = std::make_shared<ConnectionFlags>();
  auto ps_flags = std::make_shared<PsFlags>();
  auto* ps = winrm->add_subcommand("ps", "run a PowerShell script; print its stdout, errors to stderr");
  add_connection_options(ps, *ps_connection);
  auto* script_opt =
      ps->add_option("--script", ps_flags->script_file, "PowerShell script file")->check(CLI::ExistingFile);
  auto* command_opt = ps->add_option("--command", ps_flags->command_text, "PowerShell script text");
  script_opt->excludes(command_opt);
  command_opt->excludes(script_opt);
  auto* args_opt = ps->add_option("--args-json,--input-json", ps_flags->args_json,
                                  "JSON object passed to the script; with --psrp, --command then names a command "
                                  "run with -ArgsJson JSON (no script text, as a JEA endpoint needs)")
                       ->capture_default_str();
  ps->add_option("--repeat", ps_flags->repeat,
                 "run N times over one connection and shell; print a timing summary to stderr")
      ->check(CLI::Range(1, 1000000));
  auto& psrp = ps_flags->psrp_options;
  ps->add_flag("--psrp", ps_flags->psrp, "PowerShell remoting: a runspace pool instead of powershell.exe per run");
  auto* ssh_opt = ps->add_option("--ssh", psrp.ssh_target,
                                 "with --psrp: HOST[:PORT] of an SSH server with the powershell subsystem");
  auto* pwsh_opt = ps->add_option("--pwsh", psrp.pwsh_child, "with --psrp: a local pwsh, started as `pwsh -s`")
                       ->check(CLI::ExistingFile);
  ssh_opt->excludes(pwsh_opt);
  ps->add_flag("--with-module", psrp.with_module,
               "with --psrp: define the agent's WincertOps functions in the runspace first (full-language "
               "endpoints), so --command Invoke-Wincert<Op> --input-json JSON calls them as the agent does");
  ps->add_option("--configuration-name", psrp.configuration_name,
                 "with --psrp over --endpoint: the PowerShell session configuration (a JEA endpoint's name); "
                 "default Microsoft.PowerShell");
  ps->add_option("--key-file", psrp.key_file, "with --ssh: private key (PEM or OpenSSH; --password-env: passphrase)")
      ->check(CLI::ExistingFile);
  ps->add_option("--known-hosts", psrp.known_hosts_file, "with --ssh: known-hosts file the host key is checked in");
  ps->add_flag("--trust-on-first-use", psrp.trust_on_first_use,
               "with --ssh: accept and record an unknown host key (never a changed one)");
  ps->callback([ps, script_opt, command_opt, args_opt, ps_flags, ps_connection] {
    ps_flags->args_given = args_opt->count() > 0;
    if (script_opt->count() == 0 && command_opt->count() == 0) {
      throw CLI::RequiredError(ps->get_name() + ": one of --script or --command");
    }
    const auto& o = ps_flags->psrp_options;
    const bool byte_stream = !o.ssh_target.empty() || !o.pwsh_child.empty();
    if (byte_stream && !ps_flags->psrp) throw CLI::ValidationError("--ssh and --pwsh", "need --psrp");
    if (!byte_stream && ps_connection->endpoint.empty()) throw CLI::RequiredError(ps->get_name() + ": --endpoint");
  });

  return [exec, ps, exec_connection, exec_flags, ps_connection, ps_flags]() -> int {
    if (exec->parsed()) return run_exec(*exec_connection, *exec_flags);
    if (ps->parsed() && ps_flags->psrp) return run_psrp_command(*ps_connection, *ps_flags);
    if (ps->parsed()) return run_ps_command(*ps_connection, *ps_flags);
    return kLocalErrorExit;
  };
}

}  // namespace wincert::agent
