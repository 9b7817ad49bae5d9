// The one thing certstore's remote backend needs from a transport: run a wincert-op PowerShell script
// with one JSON argument object on the host and hand back what it printed. The agent adapts its WinRM
// PowerShell runner to this; tests use a fake. certstore does not depend on winrm/.
#pragma once

#include "common/result.hpp"

#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace wincert::certstore {

struct ScriptOutput {
  std::string stdout_text;  // the script's JSON document (UTF-8)
  int exit_code = 0;
  std::string error_text;  // stderr / decoded CLIXML error records, readable text
};

class ScriptRunner {
 public:
  virtual ~ScriptRunner() = default;
  // An Error here means the script could not be run (connection, auth, timeout); a script that ran and
  // failed comes back as a ScriptOutput with a non-zero exit code.
  virtual boost::asio::awaitable<Result<ScriptOutput>> run(std::string_view op, std::string_view script_text,
                                                           const nlohmann::json& args) = 0;
  // How messages name the target ("web01.example.com").
  virtual std::string host() const = 0;
};

}  // namespace wincert::certstore
