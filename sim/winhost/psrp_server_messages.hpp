// The server side of the PSRP message layer for winhost-sim: the messages a PowerShell remoting endpoint
// sends (SESSION_CAPABILITY, APPLICATION_PRIVATE_DATA, RUNSPACEPOOL_STATE, PIPELINE_OUTPUT, PIPELINE_STATE with
// the ErrorRecords real PowerShell 7.6 puts there) and the client messages it reads (INIT_RUNSPACEPOOL,
// CREATE_PIPELINE). The ErrorRecord shapes copy what a real `pwsh -s` sent (captured for this simulator);
// the client side of the same layer is winrm/psrp/messages.hpp. Pure code, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "winrm/psrp/clixml_value.hpp"
#include "winrm/psrp/message.hpp"
#include "winrm/psrp/messages.hpp"

namespace wincert::sim::psrp_server {

namespace psrp = winrm::psrp;

// A message to the client (Destination 1), CLIXML body as given.
psrp::Message to_client(psrp::MessageType type, const psrp::Guid& pool, const psrp::Guid& pipeline, std::string clixml);

// Bodies. `protocol_version` is what the server speaks ("2.3", like the recorded Windows PowerShell 5.1).
std::string session_capability_body(std::string_view protocol_version);
// A PSPrimitiveDictionary holding PSVersionTable (PSVersion = ps_version, e.g. "5.1.20348.1").
std::string application_private_data_body(std::string_view ps_version);
std::string runspace_pool_state_body(std::int32_t state);
// RUNSPACE_AVAILABILITY: the reply to SET_MAX/MIN_RUNSPACES (a B) or GET_AVAILABLE_RUNSPACES (an I64).
std::string runspace_availability_body(std::int64_t call_id, const psrp::PsValue& response);
// PSInvocationState: 3 Stopped, 4 Completed, 5 Failed; error = the ExceptionAsErrorRecord (an ErrorRecord).
std::string pipeline_state_body(std::int32_t state, const std::optional<psrp::PsValue>& error = std::nullopt);

// ErrorRecords as real PowerShell serializes them into PIPELINE_STATE.ExceptionAsErrorRecord.
// `throw (New-OpError Category Message)` in a WincertOps function: an InvalidOperationException whose Data
// holds WincertCategory, FullyQualifiedErrorId = the message, category OperationStopped.
psrp::PsValue op_failure_record(std::string_view function, std::string_view message, std::string_view category);
// A command the runspace does not know: CommandNotFoundException, FQID "CommandNotFoundException".
psrp::PsValue command_not_found_record(std::string_view name);
// Script text in a NoLanguage (JEA) runspace: ParseException, FQID "ScriptsNotAllowed".
psrp::PsValue scripts_not_allowed_record(std::string_view script);
// A runtime failure of other script text (the simulator's interpreter): RuntimeException.
psrp::PsValue runtime_error_record(std::string_view message);
// A WARNING_RECORD body (Write-Warning).
std::string warning_record_body(std::string_view message);
// A pipeline stopped by the client (Signal crtl_c): PipelineStoppedException.
psrp::PsValue pipeline_stopped_record();

// What the server reads from the client.
struct InitRunspacePool {
  std::int32_t min_runspaces = 1;
  std::int32_t max_runspaces = 1;
};
Result<InitRunspacePool> parse_init_runspace_pool(const psrp::PsValue& body);
Result<std::string> parse_client_protocol_version(const psrp::PsValue& session_capability_body);

struct CreatePipeline {
  std::vector<psrp::PipelineCommand> commands;  // the first statement's commands, in pipe order
  bool no_input = true;
};
Result<CreatePipeline> parse_create_pipeline(const psrp::PsValue& body);

// SET_MAX_RUNSPACES / SET_MIN_RUNSPACES / GET_AVAILABLE_RUNSPACES: the value (absent for GET) and the call id.
struct RunspaceCall {
  std::optional<std::int32_t> value;
  std::int64_t call_id = 0;
};
Result<RunspaceCall> parse_runspace_call(const psrp::PsValue& body, std::string_view value_name);

}  // namespace wincert::sim::psrp_server
