#include "sim/winhost/psrp_server_messages.hpp"

namespace wincert::sim::psrp_server {
namespace {

using psrp::PsType;
using psrp::PsValue;

PsValue version(std::string text) { return PsValue::text(PsType::kVersion, std::move(text)); }

PsValue data_dictionary(std::vector<psrp::PsDictionaryEntry> entries = {}) {
  return psrp::make_dictionary({"System.Collections.ListDictionaryInternal", "System.Object"}, std::move(entries));
}

// The record around an exception, in the property order real PowerShell writes.
struct RecordFields {
  std::string message;
  PsValue exception;
  PsValue target = PsValue::nil();
  std::string fqid;
  PsValue invocation_info = PsValue::nil();
  std::int32_t category = 0;
  std::string reason;
  std::string target_name;
  std::string target_type;
  std::string category_name;
  std::optional<std::string> script_stack_trace;
};

PsValue error_record(RecordFields f) {
  PsValue record = psrp::make_object({"System.Management.Automation.ErrorRecord", "System.Object"});
  auto& o = *record.mutable_object();
  o.to_string = f.message;
  const std::string target_part = f.target_name + ":" + f.target_type;
  o.add("Exception", std::move(f.exception))
      .add("TargetObject", std::move(f.target))
      .add("FullyQualifiedErrorId", PsValue::string(f.fqid))
      .add("InvocationInfo", std::move(f.invocation_info))
      .add("ErrorCategory_Category", PsValue::int32(f.category))
      .add("ErrorCategory_Activity", PsValue::string(""))
      .add("ErrorCategory_Reason", PsValue::string(f.reason))
      .add("ErrorCategory_TargetName", PsValue::string(f.target_name))
      .add("ErrorCategory_TargetType", PsValue::string(f.target_type))
      .add("ErrorCategory_Message", PsValue::string(f.category_name + ": (" + target_part + ") [], " + f.reason))
      .add("SerializeExtendedInfo", PsValue::boolean(false));
  if (f.script_stack_trace) o.add("ErrorDetails_ScriptStackTrace", PsValue::string(*f.script_stack_trace));
  return record;
}

const std::vector<std::string> kRuntimeExceptionBases = {"System.Management.Automation.RuntimeException",
                                                         "System.SystemException", "System.Exception", "System.Object"};

std::vector<std::string> with_bases(std::string type, const std::vector<std::string>& bases) {
  std::vector<std::string> names{std::move(type)};
  names.insert(names.end(), bases.begin(), bases.end());
  return names;
}

// What `throw` of an exception object records as the InvocationInfo of the function that threw.
PsValue function_invocation_info(std::string_view function) {
  PsValue info = psrp::make_object({"System.Management.Automation.InvocationInfo", "System.Object"});
  auto& o = *info.mutable_object();
  o.to_string = "System.Management.Automation.InvocationInfo";
  const std::string statement = "throw (New-OpError ...)";
  o.add_adapted("MyCommand", PsValue::nil())
      .add_adapted("BoundParameters",
                   psrp::make_dictionary({"System.Collections.Generic.Dictionary`2[[System.String, "
                                          "System.Private.CoreLib],[System.Object, System.Private.CoreLib]]",
                                          "System.Object"},
                                         {}))
      .add_adapted(
          "UnboundArguments",
          psrp::make_list(
              {"System.Collections.Generic.List`1[[System.Object, System.Private.CoreLib]]", "System.Object"}, {}))
      .add_adapted("ScriptLineNumber", PsValue::int32(0))
      .add_adapted("OffsetInLine", PsValue::int32(0))
      .add_adapted("HistoryId", PsValue::int64(1))
      .add_adapted("ScriptName", PsValue::string(""))
      .add_adapted("Line", PsValue::string(statement + "\n"))
      .add_adapted("Statement", PsValue::string(statement))
      .add_adapted("PositionMessage", PsValue::string("In " + std::string(function)))
      .add_adapted("PSScriptRoot", PsValue::string(""))
      .add_adapted("PSCommandPath", PsValue::nil())
      .add_adapted("InvocationName", PsValue::string(""))
      .add_adapted("PipelineLength", PsValue::int32(0))
      .add_adapted("PipelinePosition", PsValue::int32(0))
      .add_adapted("ExpectingInput", PsValue::boolean(false))
      .add_adapted("CommandOrigin", PsValue::string("Internal"))
      .add_adapted("DisplayScriptPosition", PsValue::nil());
  return info;
}

}  // namespace

psrp::Message to_client(psrp::MessageType type, const psrp::Guid& pool, const psrp::Guid& pipeline,
                        std::string clixml) {
  psrp::Message m;
  m.destination = psrp::Destination::kClient;
  m.type = type;
  m.runspace_pool_id = pool;
  m.pipeline_id = pipeline;
  m.data = std::move(clixml);
  return m;
}

std::string session_capability_body(std::string_view protocol_version) {
  PsValue body = psrp::make_object();
  body.mutable_object()
      ->add("protocolversion", version(std::string(protocol_version)))
      .add("PSVersion", version("2.0"))
      .add("SerializationVersion", version("1.1.0.1"));
  return psrp::serialize_clixml(body);
}

std::string application_private_data_body(std::string_view ps_version) {
  const std::vector<std::string> dictionary = {"System.Management.Automation.PSPrimitiveDictionary",
                                               "System.Collections.Hashtable", "System.Object"};
  auto entry = [](std::string key, PsValue value) { return psrp::PsDictionaryEntry{PsValue::string(key), value}; };
  std::vector<PsValue> compatible;
  for (const char* v : {"1.0", "2.0", "3.0", "4.0", "5.0", "5.1"}) compatible.push_back(version(v));
  std::vector<psrp::PsDictionaryEntry> table;
  table.push_back(entry("PSVersion", version(std::string(ps_version))));
  table.push_back(entry("PSEdition", PsValue::string("Desktop")));
  table.push_back(entry("PSCompatibleVersions",
                        psrp::make_list({"System.Version[]", "System.Array", "System.Object"}, std::move(compatible))));
  table.push_back(entry("WSManStackVersion", version("3.0")));
  table.push_back(entry("PSRemotingProtocolVersion", version("2.3")));
  table.push_back(entry("SerializationVersion", version("1.1.0.1")));
  std::vector<psrp::PsDictionaryEntry> outer;
  outer.push_back(entry("PSVersionTable", psrp::make_dictionary(dictionary, std::move(table))));
  PsValue body = psrp::make_object();
  body.mutable_object()->add("ApplicationPrivateData", psrp::make_dictionary(dictionary, std::move(outer)));
  return psrp::serialize_clixml(body);
}

std::string runspace_pool_state_body(std::int32_t state) {
  PsValue body = psrp::make_object();
  body.mutable_object()->add("RunspaceState", PsValue::int32(state));
  return psrp::serialize_clixml(body);
}

std::string runspace_availability_body(std::int64_t call_id, const PsValue& response) {
  PsValue body = psrp::make_object();
  body.mutable_object()->add("SetMinMaxRunspacesResponse", response).add("ci", PsValue::int64(call_id));
  return psrp::serialize_clixml(body);
}

std::string pipeline_state_body(std::int32_t state, const std::optional<PsValue>& error) {
  PsValue body = psrp::make_object();
  body.mutable_object()->add("PipelineState", PsValue::int32(state));
  if (error) body.mutable_object()->add("ExceptionAsErrorRecord", *error);
  return psrp::serialize_clixml(body);
}

PsValue op_failure_record(std::string_view function, std::string_view message, std::string_view category) {
  PsValue exception = psrp::make_object(
      {"System.InvalidOperationException", "System.SystemException", "System.Exception", "System.Object"});
  auto& e = *exception.mutable_object();
  e.to_string = "System.InvalidOperationException: " + std::string(message);
  std::vector<psrp::PsDictionaryEntry> data;
  data.push_back({PsValue::string("WincertCategory"), PsValue::string(std::string(category))});
  e.add_adapted("TargetSite", PsValue::nil())
      .add_adapted("Message", PsValue::string(std::string(message)))
      .add_adapted("Data", data_dictionary(std::move(data)))
      .add_adapted("InnerException", PsValue::nil())
      .add_adapted("HelpLink", PsValue::nil())
      .add_adapted("Source", PsValue::nil())
      .add_adapted("HResult", PsValue::int32(-2146233079))
      .add_adapted("StackTrace", PsValue::nil());
  RecordFields f;
  f.message = std::string(message);
  f.exception = std::move(exception);
  f.fqid = std::string(message);  // `throw $exceptionObject`: PowerShell uses the message as the id
  f.invocation_info = function_invocation_info(function);
  f.category = 14;  // OperationStopped
  f.reason = "InvalidOperationException";
  f.category_name = "OperationStopped";
  f.script_stack_trace = "at " + std::string(function) + ", <No file>";
  return error_record(std::move(f));
}

PsValue command_not_found_record(std::string_view name) {
  const std::string text = "The term '" + std::string(name) +
                           "' is not recognized as a name of a cmdlet, function, script file, or executable "
                           "program.\nCheck the spelling of the name, or if a path was included, verify that the "
                           "path is correct and try again.";
  PsValue exception =
      psrp::make_object(with_bases("System.Management.Automation.CommandNotFoundException", kRuntimeExceptionBases));
  auto& e = *exception.mutable_object();
  e.to_string = "System.Management.Automation.CommandNotFoundException: " + text;
  e.add_adapted("ErrorRecord", PsValue::string(text))
      .add_adapted("CommandName", PsValue::string(std::string(name)))
      .add_adapted("WasThrownFromThrowStatement", PsValue::boolean(false))
      .add_adapted("TargetSite", PsValue::string("System.Management.Automation.CommandInfo LookupCommandInfo("
                                                 "System.String, System.Management.Automation.CommandTypes, "
                                                 "System.Management.Automation.SearchResolutionOptions, "
                                                 "System.Management.Automation.CommandOrigin, "
                                                 "System.Management.Automation.ExecutionContext)"))
      .add_adapted("Message", PsValue::string(text))
      .add_adapted("Data", data_dictionary())
      .add_adapted("InnerException", PsValue::nil())
      .add_adapted("HelpLink", PsValue::nil())
      .add_adapted("Source", PsValue::string("System.Management.Automation"))
      .add_adapted("HResult", PsValue::int32(-2146233087))
      .add_adapted("StackTrace", PsValue::string("   at System.Management.Automation.CommandDiscovery."
                                                 "LookupCommandInfo(String commandName, CommandOrigin commandOrigin)"));
  RecordFields f;
  f.message = text;
  f.exception = std::move(exception);
  f.target = PsValue::string(std::string(name));
  f.fqid = "CommandNotFoundException";
  f.category = 13;  // ObjectNotFound
  f.reason = "CommandNotFoundException";
  f.target_name = std::string(name);
  f.target_type = "String";
  f.category_name = "ObjectNotFound";
  return error_record(std::move(f));
}

PsValue scripts_not_allowed_record(std::string_view script) {
  const std::string text =
      "The syntax is not supported by this runspace. This can occur if the runspace is in no-language mode.";
  PsValue exception =
      psrp::make_object(with_bases("System.Management.Automation.ParseException", kRuntimeExceptionBases));
  auto& e = *exception.mutable_object();
  e.to_string = "System.Management.Automation.ParseException: " + text;
  e.add_adapted("Errors", PsValue::nil())
      .add_adapted("Message", PsValue::string(text))
      .add_adapted("ErrorRecord", PsValue::string(text))
      .add_adapted("WasThrownFromThrowStatement", PsValue::boolean(false))
      .add_adapted("TargetSite",
                   PsValue::string("System.Management.Automation.CommandProcessorBase "
                                   "CreateCommandProcessor(System.Management.Automation.ExecutionContext, "
                                   "Boolean, System.Management.Automation.CommandOrigin)"))
      .add_adapted("Data", data_dictionary())
      .add_adapted("InnerException", PsValue::nil())
      .add_adapted("HelpLink", PsValue::nil())
      .add_adapted("Source", PsValue::string("System.Management.Automation"))
      .add_adapted("HResult", PsValue::int32(-2146233087))
      .add_adapted("StackTrace", PsValue::string("   at System.Management.Automation.Runspaces.Command."
                                                 "CreateCommandProcessor(ExecutionContext executionContext, Boolean "
                                                 "addToHistory, CommandOrigin origin)"));
  RecordFields f;
  f.message = text;
  f.exception = std::move(exception);
  f.target = PsValue::string(std::string(script));
  f.fqid = "ScriptsNotAllowed";
  f.category = 17;  // ParserError
  f.reason = "ParseException";
  f.target_name = std::string(script);
  f.target_type = "String";
  f.category_name = "ParserError";
  return error_record(std::move(f));
}

PsValue runtime_error_record(std::string_view message) {
  PsValue exception = psrp::make_object(kRuntimeExceptionBases);
  auto& e = *exception.mutable_object();
  e.to_string = "System.Management.Automation.RuntimeException: " + std::string(message);
  e.add_adapted("ErrorRecord", PsValue::string(std::string(message)))
      .add_adapted("WasThrownFromThrowStatement", PsValue::boolean(true))
      .add_adapted("Message", PsValue::string(std::string(message)))
      .add_adapted("Data", data_dictionary())
      .add_adapted("InnerException", PsValue::nil())
      .add_adapted("HResult", PsValue::int32(-2146233087));
  RecordFields f;
  f.message = std::string(message);
  f.exception = std::move(exception);
  f.fqid = std::string(message);
  f.category = 14;  // OperationStopped
  f.reason = "RuntimeException";
  f.category_name = "OperationStopped";
  return error_record(std::move(f));
}

std::string warning_record_body(std::string_view message) {
  PsValue record = psrp::make_object({"System.Management.Automation.WarningRecord",
                                      "System.Management.Automation.InformationalRecord", "System.Object"});
  record.mutable_object()->to_string = std::string(message);
  record.mutable_object()
      ->add("InformationalRecord_Message", PsValue::string(std::string(message)))
      .add("InformationalRecord_InvocationInfoSet", PsValue::boolean(false));
  return psrp::serialize_clixml(record);
}

PsValue pipeline_stopped_record() {
  const std::string text = "The pipeline has been stopped.";
  PsValue exception =
      psrp::make_object(with_bases("System.Management.Automation.PipelineStoppedException", kRuntimeExceptionBases));
  auto& e = *exception.mutable_object();
  e.to_string = "System.Management.Automation.PipelineStoppedException: " + text;
  e.add_adapted("ErrorRecord", PsValue::string(text))
      .add_adapted("WasThrownFromThrowStatement", PsValue::boolean(false))
      .add_adapted("Message", PsValue::string(text))
      .add_adapted("Data", data_dictionary())
      .add_adapted("InnerException", PsValue::nil())
      .add_adapted("HResult", PsValue::int32(-2146233087));
  RecordFields f;
  f.message = text;
  f.exception = std::move(exception);
  f.fqid = "PipelineStopped";
  f.category = 14;  // OperationStopped
  f.reason = "PipelineStoppedException";
  f.category_name = "OperationStopped";
  return error_record(std::move(f));
}

Result<InitRunspacePool> parse_init_runspace_pool(const PsValue& body) {
  if (!body.is_object()) return Error::invalid_argument("INIT_RUNSPACEPOOL: the body is not an object");
  auto min = body.int_property("MinRunspaces");
  auto max = body.int_property("MaxRunspaces");
  if (!min || !max) return Error::invalid_argument("INIT_RUNSPACEPOOL without MinRunspaces/MaxRunspaces");
  if (*min < 1 || *max < *min || *max > 1024)
    return Error::invalid_argument("INIT_RUNSPACEPOOL: MinRunspaces " + std::to_string(*min) + " / MaxRunspaces " +
                                   std::to_string(*max) + " is not a valid pool size (1 <= min <= max <= 1024)");
  return InitRunspacePool{static_cast<std::int32_t>(*min), static_cast<std::int32_t>(*max)};
}

Result<std::string> parse_client_protocol_version(const PsValue& body) {
  WINCERT_ASSIGN_OR_RETURN(auto capability, psrp::parse_session_capability(body));
  return capability.protocol_version;
}

Result<CreatePipeline> parse_create_pipeline(const PsValue& body) {
  if (!body.is_object()) return Error::invalid_argument("CREATE_PIPELINE: the body is not an object");
  CreatePipeline out;
  out.no_input = body.bool_property("NoInput").value_or(true);
  const PsValue* powershell = body.property("PowerShell");
  const PsValue* cmds = powershell ? powershell->property("Cmds") : nullptr;
  if (!cmds || !cmds->is_object() || cmds->object()->items.empty())
    return Error::invalid_argument("CREATE_PIPELINE without PowerShell.Cmds");
  for (const PsValue& cmd : cmds->object()->items) {
    psrp::PipelineCommand command;
    auto text = cmd.string_property("Cmd");
    if (!text) return Error::invalid_argument("CREATE_PIPELINE: a command without Cmd");
    command.command = *text;
    command.is_script = cmd.bool_property("IsScript").value_or(false);
    if (const PsValue* args = cmd.property("Args"); args && args->is_object()) {
      for (const PsValue& arg : args->object()->items) {
        psrp::CommandParameter p;
        p.name = arg.string_property("N").value_or("");
        if (const PsValue* v = arg.property("V")) p.value = *v;
        command.parameters.push_back(std::move(p));
      }
    }
    out.commands.push_back(std::move(command));
  }
  return out;
}

Result<RunspaceCall> parse_runspace_call(const PsValue& body, std::string_view value_name) {
  if (!body.is_object()) return Error::invalid_argument("runspace call: the body is not an object");
  RunspaceCall out;
  auto ci = body.int_property("ci");
  if (!ci) ci = body.int_property("CI");
  if (!ci) return Error::invalid_argument("runspace call without a call id (ci)");
  out.call_id = *ci;
  if (!value_name.empty()) {
    auto v = body.int_property(value_name);
    if (!v) return Error::invalid_argument("runspace call without " + std::string(value_name));
    out.value = static_cast<std::int32_t>(*v);
  }
  return out;
}

}  // namespace wincert::sim::psrp_server
