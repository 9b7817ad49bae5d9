// The PSRP messages a client sends (typed builders) and the server messages it reads (typed parsers)
// (reference psrp.md §3, §4, §5). Pure code, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/result.hpp"
#include "winrm/psrp/clixml_value.hpp"
#include "winrm/psrp/message.hpp"

namespace wincert::winrm::psrp {

// ---- client messages ----

struct SessionCapability {
  std::string protocol_version = "2.3";
  std::string ps_version = "2.0";
  std::string serialization_version = "1.1.0.1";
};

Message session_capability_message(const Guid& pool, const SessionCapability& capability = {});

struct RunspacePoolSettings {
  std::int32_t min_runspaces = 1;
  std::int32_t max_runspaces = 1;
  // PSThreadOptions 0 = Default; ApartmentState 2 = UNKNOWN, as Windows' and pypsrp's clients send.
  std::int32_t thread_options = 0;
  std::int32_t apartment_state = 2;
};

// With a null host (all four HostInfo flags true) and ApplicationArguments Nil.
Message init_runspace_pool_message(const Guid& pool, const RunspacePoolSettings& settings = {});

struct CommandParameter {
  std::string name;  // without the dash; empty for a positional argument (sent as Nil N)
  PsValue value;
};

struct PipelineCommand {
  std::string command;  // a command name, or script text when is_script
  bool is_script = false;
  std::vector<CommandParameter> parameters;
};

struct PipelineSettings {
  bool no_input = true;  // false only when PIPELINE_INPUT messages will follow
  bool add_to_history = false;
  bool is_nested = false;
  // RemoteStreamOptions 15 (AddInvocationInfo), what Windows' and pypsrp's clients send.
  std::int32_t remote_stream_options = 15;
  // false: PowerShell's own client shapes (typed enums, the PowerShell 3+ merge fields, typed lists; what pypsrp
  // sends byte for byte). true: what the server's RemotingDecoder needs and no more, about 1 KB less per pipeline:
  // enums as their integer values (ConvertPropertyValueTo takes an enum's underlying value), the merge fields of
  // PowerShell 3+ left out (read only when present; absent means None), lists without type names (read through
  // EnumerateListProperty, any IEnumerable). The runspace pools send this form.
  bool minimal = false;
};

// One statement of one or more piped commands. UseLocalScope is Nil (the default; JEA refuses false), every
// Merge* is None, the host is null, ExtraCmds and History are Nil.
Message create_pipeline_message(const Guid& pool, const Guid& pipeline, const std::vector<PipelineCommand>& commands,
                                const PipelineSettings& settings = {});
Message pipeline_input_message(const Guid& pool, const Guid& pipeline, const PsValue& input);
Message end_of_pipeline_input_message(const Guid& pool, const Guid& pipeline);
// call_id is echoed by the server's RUNSPACE_AVAILABILITY reply.
Message set_max_runspaces_message(const Guid& pool, std::int32_t max_runspaces, std::int64_t call_id);
Message set_min_runspaces_message(const Guid& pool, std::int32_t min_runspaces, std::int64_t call_id);

// ---- server messages ----

struct ServerCapability {
  std::string protocol_version;  // "2.2", "2.3", "2.4"...
  std::string ps_version;
  std::string serialization_version;
};

struct ErrorRecordInfo {
  std::string message;                   // ToString, or Exception.Message
  std::string fully_qualified_error_id;  // e.g. "Microsoft.PowerShell.Commands.WriteErrorException"
  std::int32_t category = 0;             // ErrorCategory_Category
  std::string category_message;          // e.g. "NotSpecified: (:) [Write-Error], WriteErrorException"
  std::string category_reason;
  std::string target_name;  // ErrorCategory_TargetName
  std::string target;       // TargetObject rendered as text ("" when Nil)
  std::string exception_type;
  std::string script_stack_trace;
  // Exception.Data entries whose key and value are strings (WincertOps puts its failure category in
  // Data['WincertCategory']).
  std::vector<std::pair<std::string, std::string>> exception_data;
  std::optional<std::string> exception_data_value(std::string_view key) const {
    for (const auto& [k, v] : exception_data)
      if (k == key) return v;
    return std::nullopt;
  }
};

struct RunspacePoolStateInfo {
  // RunspacePoolState: 2 Opened, 3 Closed, 4 Closing, 5 Broken (others: psrp.md §3).
  std::int32_t state = 0;
  std::optional<ErrorRecordInfo> error;  // ExceptionAsErrorRecord when Broken
};

struct PipelineStateInfo {
  // PSInvocationState: 1 Running, 2 Stopping, 3 Stopped, 4 Completed, 5 Failed, 6 Disconnected.
  std::int32_t state = 0;
  std::optional<ErrorRecordInfo> error;  // ExceptionAsErrorRecord when Failed or Stopped
  bool terminal() const { return state == 3 || state == 4 || state == 5; }
};

// RUNSPACE_AVAILABILITY: the reply to SET_MAX/SET_MIN_RUNSPACES (B) or GET_AVAILABLE_RUNSPACES (I64).
struct RunspaceAvailability {
  std::int64_t call_id = 0;
  PsValue response;  // SetMinMaxRunspacesResponse
  bool succeeded() const { return response.type() == PsType::kBool ? response.as_bool() : !response.is_nil(); }
};

// APPLICATION_PRIVATE_DATA, kept as is (a PSPrimitiveDictionary holding PSVersionTable).
struct ApplicationPrivateData {
  PsValue data;
};

struct PipelineOutput {
  PsValue value;
};

enum class InformationalKind : std::uint8_t { kDebug, kVerbose, kWarning, kInformation };

struct InformationalRecord {
  InformationalKind kind = InformationalKind::kVerbose;
  std::string message;
};

// Recognised so it can be dropped.
struct ProgressRecord {};

struct HostCall {
  bool pipeline = false;       // PIPELINE_HOST_CALL (else RUNSPACEPOOL_HOST_CALL)
  std::int64_t call_id = 0;    // -100: a void method, no response expected
  std::int32_t method_id = 0;  // RemoteHostMethodId
  std::string method_name;     // e.g. "ReadLine"
  std::vector<PsValue> parameters;
  bool expects_response() const { return call_id != kVoidCallId; }
  static constexpr std::int64_t kVoidCallId = -100;
};

// A message this layer recognises but does not interpret (USER_EVENT, ENCRYPTED_SESSION_KEY, ...).
struct OtherMessage {};

using ServerMessageBody = std::variant<ServerCapability, ApplicationPrivateData, RunspacePoolStateInfo,
                                       RunspaceAvailability, PipelineStateInfo, PipelineOutput, ErrorRecordInfo,
                                       InformationalRecord, ProgressRecord, HostCall, OtherMessage>;

Result<ServerCapability> parse_session_capability(const PsValue& body);
Result<RunspacePoolStateInfo> parse_runspace_pool_state(const PsValue& body);
Result<RunspaceAvailability> parse_runspace_availability(const PsValue& body);
Result<PipelineStateInfo> parse_pipeline_state(const PsValue& body);
Result<ErrorRecordInfo> parse_error_record(const PsValue& body);
Result<InformationalRecord> parse_informational_record(InformationalKind kind, const PsValue& body);
Result<HostCall> parse_host_call(const PsValue& body, bool pipeline);

// Parses the CLIXML of any server message and dispatches on its type. invalid_argument for a malformed
// body or an unknown message type; resource_exhausted from the CLIXML limits.
Result<ServerMessageBody> parse_server_message(const Message& message, const ClixmlLimits& limits = {});
// The same, consuming the message (its CLIXML parsed in place, not copied: the receive path's).
Result<ServerMessageBody> parse_server_message_taking(Message&& message, const ClixmlLimits& limits = {});

// The reply to a host call this client cannot serve (it has no host): an exception, so a Read-Host or a
// prompt fails at once instead of waiting for an answer that never comes (psrp.md §5). A
// PIPELINE_HOST_RESPONSE for a pipeline call, a RUNSPACEPOOL_HOST_RESPONSE otherwise; pipeline is the
// message's PID.
Message host_call_failure_message(const Guid& pool, const Guid& pipeline, const HostCall& call,
                                  std::string_view reason = {});

}  // namespace wincert::winrm::psrp
