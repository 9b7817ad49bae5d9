// Typed PSRP client messages and server message parsers (reference psrp.md §3-5).
#include "winrm/psrp/messages.hpp"

namespace wincert::winrm::psrp {
namespace {

constexpr std::string_view kPipelineResultTypes = "System.Management.Automation.Runspaces.PipelineResultTypes";
const std::vector<std::string> kPsObjectList = {
    "System.Collections.Generic.List`1[[System.Management.Automation.PSObject, System.Management.Automation, "
    "Version=1.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35]]",
    "System.Object"};

Message client_message(MessageType type, const Guid& pool, const Guid& pipeline, std::string data) {
  Message m;
  m.destination = Destination::kServer;
  m.type = type;
  m.runspace_pool_id = pool;
  m.pipeline_id = pipeline;
  m.data = std::move(data);
  return m;
}

PsValue version(std::string text) { return PsValue::text(PsType::kVersion, std::move(text)); }

// The HostInfo of a client without a host [S 2.2.3.14]; the wire names carry an underscore (psrp.md §4.3).
PsValue null_host_info() {
  PsValue host = make_object();
  host.mutable_object()
      ->add("_isHostNull", PsValue::boolean(true))
      .add("_isHostUINull", PsValue::boolean(true))
      .add("_isHostRawUINull", PsValue::boolean(true))
      .add("_useRunspaceHost", PsValue::boolean(true));
  return host;
}

std::string apartment_state_name(std::int32_t value) {
  switch (value) {
    case 0:
      return "STA";
    case 1:
      return "MTA";
    default:
      return "UNKNOWN";
  }
}

PsValue apartment_state(std::int32_t value) {
  return make_enum("System.Management.Automation.Runspaces.ApartmentState", apartment_state_name(value), value);
}

PsValue merge_none() { return make_enum(kPipelineResultTypes, "None", 0); }

// An enum in the form the settings ask for: typed (with its type names and ToString) or its integer value.
PsValue enum_value(bool minimal, std::string_view type, std::string name, std::int32_t value) {
  return minimal ? PsValue::int32(value) : make_enum(type, std::move(name), value);
}

PsValue command_object(const PipelineCommand& command, bool minimal) {
  std::vector<PsValue> args;
  for (const auto& p : command.parameters) {
    PsValue arg = make_object();
    arg.mutable_object()->add("N", p.name.empty() ? PsValue::nil() : PsValue::string(p.name)).add("V", p.value);
    args.push_back(std::move(arg));
  }
  PsValue cmd = make_object();
  const auto none = [minimal] { return minimal ? PsValue::int32(0) : merge_none(); };
  cmd.mutable_object()
      ->add("Cmd", PsValue::string(command.command))
      .add("IsScript", PsValue::boolean(command.is_script))
      .add("UseLocalScope", PsValue::nil())
      .add("MergeMyResult", none())
      .add("MergeToResult", none())
      .add("MergePreviousResults", none())
      .add("Args", make_list(minimal ? std::vector<std::string>{} : kPsObjectList, std::move(args)));
  if (!minimal) {
    cmd.mutable_object()
        ->add("MergeError", merge_none())
        .add("MergeWarning", merge_none())
        .add("MergeVerbose", merge_none())
        .add("MergeDebug", merge_none())
        .add("MergeInformation", merge_none());
  }
  return cmd;
}

std::string text_of(const PsValue* v) { return v ? v->to_display_string() : std::string(); }

Result<std::int64_t> required_int(const PsValue& body, std::string_view name, std::string_view message) {
  auto v = body.int_property(name);
  if (!v)
    return Error::invalid_argument("PSRP " + std::string(message) + " without the integer property " +
                                   std::string(name));
  return *v;
}

Status require_object(const PsValue& body, std::string_view message) {
  if (!body.is_object()) return Error::invalid_argument("PSRP " + std::string(message) + " body is not an object");
  return {};
}

}  // namespace

Message session_capability_message(const Guid& pool, const SessionCapability& capability) {
  PsValue body = make_object();
  body.mutable_object()
      ->add("protocolversion", version(capability.protocol_version))
      .add("PSVersion", version(capability.ps_version))
      .add("SerializationVersion", version(capability.serialization_version));
  return client_message(MessageType::kSessionCapability, pool, Guid{}, serialize_clixml(body));
}

Message init_runspace_pool_message(const Guid& pool, const RunspacePoolSettings& settings) {
  PsValue body = make_object();
  body.mutable_object()
      ->add("MinRunspaces", PsValue::int32(settings.min_runspaces))
      .add("MaxRunspaces", PsValue::int32(settings.max_runspaces))
      .add("PSThreadOptions",
           make_enum("System.Management.Automation.Runspaces.PSThreadOptions",
                     settings.thread_options == 0 ? "Default" : "UseNewThread", settings.thread_options))
      .add("ApartmentState", apartment_state(settings.apartment_state))
      .add("HostInfo", null_host_info())
      .add("ApplicationArguments", PsValue::nil());
  return client_message(MessageType::kInitRunspacePool, pool, Guid{}, serialize_clixml(body));
}

Message create_pipeline_message(const Guid& pool, const Guid& pipeline, const std::vector<PipelineCommand>& commands,
                                const PipelineSettings& settings) {
  std::vector<PsValue> cmds;
  for (const auto& c : commands) cmds.push_back(command_object(c, settings.minimal));
  PsValue powershell = make_object();
  powershell.mutable_object()
      ->add("IsNested", PsValue::boolean(settings.is_nested))
      .add("ExtraCmds", PsValue::nil())
      .add("Cmds", make_list(settings.minimal ? std::vector<std::string>{} : kPsObjectList, std::move(cmds)))
      .add("History", PsValue::nil())
      .add("RedirectShellErrorOutputPipe", PsValue::boolean(false));
  PsValue body = make_object();
  body.mutable_object()
      ->add("NoInput", PsValue::boolean(settings.no_input))
      .add("ApartmentState", enum_value(settings.minimal, "System.Management.Automation.Runspaces.ApartmentState",
                                        apartment_state_name(2), 2))
      .add("RemoteStreamOptions",
           enum_value(settings.minimal, "System.Management.Automation.Runspaces.RemoteStreamOptions",
                      settings.remote_stream_options == 15 ? "AddInvocationInfo" : "None",
                      settings.remote_stream_options))
      .add("AddToHistory", PsValue::boolean(settings.add_to_history))
      .add("HostInfo", null_host_info())
      .add("PowerShell", std::move(powershell))
      .add("IsNested", PsValue::boolean(settings.is_nested));
  return client_message(MessageType::kCreatePipeline, pool, pipeline, serialize_clixml(body));
}

Message pipeline_input_message(const Guid& pool, const Guid& pipeline, const PsValue& input) {
  return client_message(MessageType::kPipelineInput, pool, pipeline, serialize_clixml(input));
}

Message end_of_pipeline_input_message(const Guid& pool, const Guid& pipeline) {
  return client_message(MessageType::kEndOfPipelineInput, pool, pipeline, {});
}

Message set_max_runspaces_message(const Guid& pool, std::int32_t max_runspaces, std::int64_t call_id) {
  PsValue body = make_object();
  body.mutable_object()->add("MaxRunspaces", PsValue::int32(max_runspaces)).add("CI", PsValue::int64(call_id));
  return client_message(MessageType::kSetMaxRunspaces, pool, Guid{}, serialize_clixml(body));
}

Message set_min_runspaces_message(const Guid& pool, std::int32_t min_runspaces, std::int64_t call_id) {
  PsValue body = make_object();
  body.mutable_object()->add("MinRunspaces", PsValue::int32(min_runspaces)).add("CI", PsValue::int64(call_id));
  return client_message(MessageType::kSetMinRunspaces, pool, Guid{}, serialize_clixml(body));
}

Message host_call_failure_message(const Guid& pool, const Guid& pipeline, const HostCall& call,
                                  std::string_view reason) {
  std::string text = reason.empty() ? "The host method " + call.method_name +
                                          " is not supported: this client has no interactive host, so commands "
                                          "that prompt for input (Read-Host, Get-Credential) cannot be answered."
                                    : std::string(reason);
  PsValue exception =
      make_object({"System.Management.Automation.Host.HostException", "System.Management.Automation.RuntimeException",
                   "System.SystemException", "System.Exception", "System.Object"});
  exception.mutable_object()->to_string = "System.Management.Automation.Host.HostException: " + text;
  exception.mutable_object()
      ->add_adapted("Message", PsValue::string(text))
      .add_adapted("HResult", PsValue::int32(-2146233087))
      .add_adapted("InnerException", PsValue::nil());
  PsValue record = make_object({"System.Management.Automation.ErrorRecord", "System.Object"});
  record.mutable_object()->to_string = text;
  record.mutable_object()
      ->add("Exception", std::move(exception))
      .add("TargetObject", PsValue::nil())
      .add("FullyQualifiedErrorId", PsValue::string("RemoteHostExecutionException"))
      .add("InvocationInfo", PsValue::nil())
      .add("ErrorCategory_Category", PsValue::int32(11))  // NotImplemented
      .add("ErrorCategory_Activity", PsValue::string(call.method_name))
      .add("ErrorCategory_Reason", PsValue::string("HostException"))
      .add("ErrorCategory_TargetName", PsValue::string(""))
      .add("ErrorCategory_TargetType", PsValue::string(""))
      .add("ErrorCategory_Message", PsValue::string("NotImplemented: (:) [" + call.method_name + "], HostException"))
      .add("SerializeExtendedInfo", PsValue::boolean(false));
  PsValue body = make_object();
  body.mutable_object()
      ->add("ci", PsValue::int64(call.call_id))
      .add("mi",
           make_enum("System.Management.Automation.Remoting.RemoteHostMethodId", call.method_name, call.method_id))
      .add("me", std::move(record));
  bool to_pipeline = !pipeline.is_nil();
  return client_message(to_pipeline ? MessageType::kPipelineHostResponse : MessageType::kRunspacePoolHostResponse, pool,
                        pipeline, serialize_clixml(body));
}

Result<ServerCapability> parse_session_capability(const PsValue& body) {
  WINCERT_TRY(require_object(body, "SESSION_CAPABILITY"));
  const PsValue* protocol = body.property("protocolversion");
  if (!protocol || protocol->is_nil() || protocol->is_object())
    return Error::invalid_argument("PSRP SESSION_CAPABILITY without a protocolversion");
  ServerCapability out;
  out.protocol_version = protocol->text();
  out.ps_version = text_of(body.property("PSVersion"));
  out.serialization_version = text_of(body.property("SerializationVersion"));
  return out;
}

Result<ErrorRecordInfo> parse_error_record(const PsValue& body) {
  WINCERT_TRY(require_object(body, "error record"));
  ErrorRecordInfo out;
  const PsValue* exception = body.property("Exception");
  if (body.object()->to_string) {
    out.message = *body.object()->to_string;
  } else if (exception) {
    out.message = exception->string_property("Message").value_or(exception->to_display_string());
  }
  if (exception && exception->is_object() && !exception->object()->type_names.empty())
    out.exception_type = exception->object()->type_names.front();
  out.fully_qualified_error_id = body.string_property("FullyQualifiedErrorId").value_or("");
  out.category = static_cast<std::int32_t>(body.int_property("ErrorCategory_Category").value_or(0));
  out.category_message = body.string_property("ErrorCategory_Message").value_or("");
  out.category_reason = body.string_property("ErrorCategory_Reason").value_or("");
  out.target_name = body.string_property("ErrorCategory_TargetName").value_or("");
  out.target = text_of(body.property("TargetObject"));
  out.script_stack_trace = body.string_property("ErrorDetails_ScriptStackTrace").value_or("");
  if (exception && exception->is_object()) {
    if (const PsValue* data = exception->property("Data"); data && data->is_object()) {
      for (const auto& entry : data->object()->entries) {
        if (entry.key.is_string() && entry.value.is_string())
          out.exception_data.emplace_back(entry.key.to_display_string(), entry.value.to_display_string());
      }
    }
  }
  return out;
}

Result<RunspacePoolStateInfo> parse_runspace_pool_state(const PsValue& body) {
  WINCERT_TRY(require_object(body, "RUNSPACEPOOL_STATE"));
  RunspacePoolStateInfo out;
  WINCERT_ASSIGN_OR_RETURN(auto state, required_int(body, "RunspaceState", "RUNSPACEPOOL_STATE"));
  out.state = static_cast<std::int32_t>(state);
  if (const PsValue* e = body.property("ExceptionAsErrorRecord"); e && e->is_object()) {
    WINCERT_ASSIGN_OR_RETURN(out.error, parse_error_record(*e));
  }
  return out;
}

Result<RunspaceAvailability> parse_runspace_availability(const PsValue& body) {
  WINCERT_TRY(require_object(body, "RUNSPACE_AVAILABILITY"));
  RunspaceAvailability out;
  WINCERT_ASSIGN_OR_RETURN(out.call_id, required_int(body, "ci", "RUNSPACE_AVAILABILITY"));
  if (const PsValue* r = body.property("SetMinMaxRunspacesResponse")) out.response = *r;
  return out;
}

Result<PipelineStateInfo> parse_pipeline_state(const PsValue& body) {
  WINCERT_TRY(require_object(body, "PIPELINE_STATE"));
  PipelineStateInfo out;
  WINCERT_ASSIGN_OR_RETURN(auto state, required_int(body, "PipelineState", "PIPELINE_STATE"));
  out.state = static_cast<std::int32_t>(state);
  if (const PsValue* e = body.property("ExceptionAsErrorRecord"); e && e->is_object()) {
    WINCERT_ASSIGN_OR_RETURN(out.error, parse_error_record(*e));
  }
  return out;
}

Result<InformationalRecord> parse_informational_record(InformationalKind kind, const PsValue& body) {
  WINCERT_TRY(require_object(body, "informational record"));
  InformationalRecord out;
  out.kind = kind;
  if (kind == InformationalKind::kInformation) {
    // MessageData is any object; Write-Host sends a HostInformationMessage whose ToString is the text.
    out.message = text_of(body.property("MessageData"));
  } else if (auto m = body.string_property("InformationalRecord_Message")) {
    out.message = *m;
  } else {
    out.message = body.object()->to_string.value_or("");
  }
  return out;
}

Result<HostCall> parse_host_call(const PsValue& body, bool pipeline) {
  WINCERT_TRY(require_object(body, "host call"));
  HostCall out;
  out.pipeline = pipeline;
  WINCERT_ASSIGN_OR_RETURN(out.call_id, required_int(body, "ci", "host call"));
  const PsValue* method = body.property("mi");
  if (!method) return Error::invalid_argument("PSRP host call without a method (mi)");
  auto id = method->as_int64();
  if (!id) return Error::invalid_argument("PSRP host call whose method (mi) has no number");
  out.method_id = static_cast<std::int32_t>(*id);
  out.method_name = method->is_object() ? method->object()->to_string.value_or("") : "";
  if (const PsValue* params = body.property("mp"); params && params->is_object())
    out.parameters = params->object()->items;
  return out;
}

Result<ServerMessageBody> parse_server_message(const Message& message, const ClixmlLimits& limits) {
  Message copy = message;
  return parse_server_message_taking(std::move(copy), limits);
}

Result<ServerMessageBody> parse_server_message_taking(Message&& message, const ClixmlLimits& limits) {
  if (!is_known_message_type(static_cast<std::uint32_t>(message.type)))
    return Error::invalid_argument("unknown PSRP message type " +
                                   std::to_string(static_cast<std::uint32_t>(message.type)));
  PsValue body;
  if (!message.data.empty()) {
    auto parsed = parse_clixml_taking(std::move(message.data), limits);
    if (!parsed.ok()) return std::move(parsed).error().context(std::string(message_type_name(message.type)) + ": ");
    body = std::move(parsed).value();
  }
  auto wrap = [](auto result) -> Result<ServerMessageBody> {
    if (!result.ok()) return std::move(result).error();
    return ServerMessageBody(std::move(result).value());
  };
  switch (message.type) {
    case MessageType::kSessionCapability:
      return wrap(parse_session_capability(body));
    case MessageType::kApplicationPrivateData:
      return ServerMessageBody(ApplicationPrivateData{std::move(body)});
    case MessageType::kRunspacePoolState:
      return wrap(parse_runspace_pool_state(body));
    case MessageType::kRunspaceAvailability:
      return wrap(parse_runspace_availability(body));
    case MessageType::kPipelineState:
      return wrap(parse_pipeline_state(body));
    case MessageType::kPipelineOutput:
      return ServerMessageBody(PipelineOutput{std::move(body)});
    case MessageType::kErrorRecord:
      return wrap(parse_error_record(body));
    case MessageType::kDebugRecord:
      return wrap(parse_informational_record(InformationalKind::kDebug, body));
    case MessageType::kVerboseRecord:
      return wrap(parse_informational_record(InformationalKind::kVerbose, body));
    case MessageType::kWarningRecord:
      return wrap(parse_informational_record(InformationalKind::kWarning, body));
    case MessageType::kInformationRecord:
      return wrap(parse_informational_record(InformationalKind::kInformation, body));
    case MessageType::kProgressRecord:
      return ServerMessageBody(ProgressRecord{});
    case MessageType::kRunspacePoolHostCall:
      return wrap(parse_host_call(body, false));
    case MessageType::kPipelineHostCall:
      return wrap(parse_host_call(body, true));
    default:
      return ServerMessageBody(OtherMessage{});
  }
}

}  // namespace wincert::winrm::psrp
