#include "winrm/powershell.hpp"

#include "winrm/clixml.hpp"

namespace wincert::winrm {

boost::asio::awaitable<Result<PsResult>> run_ps(WinrsSession& session, const PsPayload& payload, PsRunOptions options) {
  PsInvocation invocation = build_ps_invocation(payload);
  CommandSpec spec;
  spec.command = std::move(invocation.executable);
  spec.arguments = std::move(invocation.arguments);
  spec.stdin_data = std::move(invocation.stdin_data);
  spec.skip_cmd_shell = true;  // no cmd.exe: 32767-char command line, full exe path
  spec.console_mode_stdin = invocation.mode == BootstrapMode::kInline;  // FALSE when stdin is piped
  spec.deadline = options.deadline;

  WINCERT_CO_ASSIGN_OR_RETURN(CommandOutput output, co_await session.run(std::move(spec)));

  PsResult result;
  result.mode = invocation.mode;
  result.stdout_data = std::move(output.stdout_data);
  result.exit_code = output.exit_code;
  const ClixmlStreams streams = decode_clixml(output.stderr_data);
  result.error_text = streams.readable_errors();
  result.warnings = streams.warnings;
  result.verbose = streams.verbose;
  result.information = streams.information;
  result.stderr_raw = std::move(output.stderr_data);
  co_return result;
}

}  // namespace wincert::winrm
