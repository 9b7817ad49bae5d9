// PowerShell runner: one script + JSON arguments as one WinRS command (the remote execution contract of
// winrm/powershell_bootstrap.hpp). Small payloads ride inline in the -EncodedCommand bootstrap (a warm
// run is exactly Command, Receive, Signal); larger ones go through stdin.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "common/result.hpp"
#include "winrm/powershell_bootstrap.hpp"
#include "winrm/winrs.hpp"

namespace wincert::winrm {

struct PsResult {
  std::string stdout_data;  // raw bytes (scripts write one JSON document)
  int exit_code = -1;
  // Decoded from the CLIXML on stderr: error records as readable text (plain stderr when it was not
  // CLIXML); warnings/verbose/information kept apart; progress records dropped.
  std::string error_text;
  std::vector<std::string> warnings;
  std::vector<std::string> verbose;
  std::vector<std::string> information;
  std::string stderr_raw;  // the undecoded stream, for diagnostics
  BootstrapMode mode = BootstrapMode::kInline;
};

struct PsRunOptions {
  std::optional<std::chrono::milliseconds> deadline;  // overrides the session's command deadline
};

boost::asio::awaitable<Result<PsResult>> run_ps(WinrsSession& session, const PsPayload& payload,
                                                PsRunOptions options = {});

}  // namespace wincert::winrm
