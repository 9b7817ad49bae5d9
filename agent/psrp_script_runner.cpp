#include "agent/psrp_script_runner.hpp"

#include <cctype>

#include "certstore/scripts.hpp"

namespace wincert::agent {

namespace psrp = winrm::psrp;

namespace {

// Loads the module text into the runspace running this pipeline, as a global module, and tags it.
constexpr std::string_view kLoadModuleScript =
    "param([string]$Text, [string]$Version)\n"
    "New-Module -Name WincertOps -ScriptBlock ([scriptblock]::Create($Text)) | Import-Module -Global -Force\n"
    "$global:WincertOpsVersion = $Version\n";

bool function_not_found(const psrp::PipelineResult& result) {
  return result.state.state == 5 && result.state.error &&
         result.state.error->fully_qualified_error_id.starts_with("CommandNotFoundException");
}

// ConvertTo-OpErrorJson's category: Data['WincertCategory'], else the ErrorCategory's name.
std::string failure_category(const psrp::ErrorRecordInfo& error) {
  if (auto category = error.exception_data_value("WincertCategory")) return *category;
  const auto colon = error.category_message.find(':');
  return colon == std::string::npos ? std::string() : error.category_message.substr(0, colon);
}

std::string joined_messages(const std::vector<psrp::ErrorRecordInfo>& errors) {
  std::string text;
  for (const auto& e : errors) text += (text.empty() ? "" : "\n") + e.message;
  return text;
}

}  // namespace

std::string op_function_name(std::string_view op) {
  std::string name = "Invoke-Wincert";
  bool upper = true;
  for (char c : op) {
    if (c == '-') {
      upper = true;
      continue;
    }
    name += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    upper = false;
  }
  return name;
}

psrp::PipelineCommand module_load_command() {
  psrp::PipelineCommand load;
  load.command = std::string(kLoadModuleScript);
  load.is_script = true;
  // Escaped for CLIXML once per process, not once per runspace pool.
  static const psrp::PsValue text = psrp::PsValue::cached_string(std::string(certstore::module_text()));
  load.parameters.push_back({"Text", text});
  load.parameters.push_back({"Version", psrp::PsValue::string(std::string(certstore::module_version()))});
  return load;
}

boost::asio::awaitable<Status> PsrpScriptRunner::load_module() {
  std::vector<psrp::PipelineCommand> commands;
  commands.push_back(module_load_command());
  auto loaded = co_await pool_.invoke(std::move(commands), options_.op_timeout);
  if (!loaded.ok()) co_return std::move(loaded).error().context("loading the WincertOps module on " + host_ + ": ");
  if (!loaded->completed()) {
    const std::string reason = loaded->state.error ? loaded->state.error->message : joined_messages(loaded->errors);
    co_return Error::failed_precondition("loading the WincertOps module on " + host_ + " failed: " + reason +
                                         " (a restricted endpoint takes no script text: use its JEA mode)");
  }
  ++module_loads_;
  co_return Status{};
}

boost::asio::awaitable<Result<certstore::ScriptOutput>> PsrpScriptRunner::run(std::string_view op,
                                                                              std::string_view /*script_text*/,
                                                                              const nlohmann::json& args) {
  const std::string function = op_function_name(op);
  if (options_.load_module && options_.load_first && module_loads_ == 0) WINCERT_CO_TRY(co_await load_module());
  // Secrets (PFX passwords) travel inside ArgsJson over the authenticated channel; never logged here.
  const std::string args_json = args.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const auto call = [&]() -> boost::asio::awaitable<Result<psrp::PipelineResult>> {
    psrp::PipelineCommand command;
    command.command = function;
    command.parameters.push_back({"ArgsJson", psrp::PsValue::string(args_json)});
    std::vector<psrp::PipelineCommand> commands;
    commands.push_back(std::move(command));
    co_return co_await pool_.invoke(std::move(commands), options_.op_timeout);
  };
  auto result = co_await call();
  if (result.ok() && function_not_found(*result)) {
    if (!options_.load_module) {
      co_return Error::failed_precondition(
          "the PowerShell endpoint on " + host_ + " does not offer " + function +
          ": register the WincertAgent JEA role there (config/jea/Register-WincertJea.ps1) or use a full endpoint");
    }
    WINCERT_CO_TRY(co_await load_module());
    result = co_await call();
  }
  if (!result.ok()) co_return std::move(result).error().context("running " + std::string(op) + " on " + host_ + ": ");

  certstore::ScriptOutput out;
  out.error_text = joined_messages(result->errors);
  if (result->completed()) {
    // Moved, not copied: an inventory's document is megabytes.
    if (result->output.size() == 1)
      out.stdout_text = std::move(result->output.front()).take_display_string();
    else
      for (auto& value : result->output)
        out.stdout_text += (out.stdout_text.empty() ? "" : "\n") + std::move(value).take_display_string();
    out.exit_code = 0;
    co_return out;
  }
  // A failed or stopped op: the same document the WinRS script prints from its catch block.
  out.exit_code = 1;
  nlohmann::json failure = {{"error", {{"message", ""}, {"category", ""}}}};
  if (result->state.error) {
    failure["error"]["message"] = result->state.error->message;
    failure["error"]["category"] = failure_category(*result->state.error);
    if (out.error_text.empty()) out.error_text = result->state.error->message;
  } else {
    failure["error"]["message"] = "the operation was stopped";
  }
  out.stdout_text = failure.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
  co_return out;
}

}  // namespace wincert::agent
