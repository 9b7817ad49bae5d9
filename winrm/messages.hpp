// WS-Management messages for the WinRS resource: request envelopes and parsed responses.
// Pure functions (no I/O), so they are unit-tested against recorded traffic and fuzzed.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "winrm/namespaces.hpp"

namespace wincert::winrm {

struct Selector {
  std::string name;
  std::string value;
};

struct Option {
  std::string name;
  std::string value;
  bool must_comply = false;
};

// What every request header carries (MS-WSMV; reference winrm.md §1.4).
struct RequestContext {
  std::string to;  // endpoint URL, e.g. http://host:5985/wsman
  std::string resource_uri = std::string(ns::kResourceCmd);
  std::string session_id;                  // "uuid:..." one per client session; omitted when empty
  std::size_t max_envelope_size = 153600;  // largest response envelope we accept
  std::chrono::milliseconds operation_timeout{20000};
  std::string locale = "en-US";
};

struct Envelope {
  std::string message_id;  // "uuid:XXXXXXXX-...", what RelatesTo must echo
  std::string xml;
};

struct ShellOptions {
  std::string working_directory;
  std::map<std::string, std::string> environment;
  std::optional<std::chrono::seconds> idle_timeout;
  bool no_profile = true;
  int codepage = 65001;
};

Envelope build_create_shell(const RequestContext& ctx, const ShellOptions& shell);
Envelope build_command(const RequestContext& ctx, const std::vector<Selector>& shell, std::string_view command,
                       const std::vector<std::string>& arguments, bool skip_cmd_shell, bool console_mode_stdin);
Envelope build_send(const RequestContext& ctx, const std::vector<Selector>& shell, std::string_view command_id,
                    std::string_view data, bool end);
Envelope build_receive(const RequestContext& ctx, const std::vector<Selector>& shell, std::string_view command_id);
Envelope build_signal(const RequestContext& ctx, const std::vector<Selector>& shell, std::string_view command_id,
                      std::string_view code);
Envelope build_delete_shell(const RequestContext& ctx, const std::vector<Selector>& shell);
// ---- the PowerShell resource (PSRP over WS-Man, reference psrp.md §1) ----
// ctx.resource_uri is the configuration's URI (ns::kResourcePowerShellPrefix + name). Payloads are the raw
// bytes of whole PSRP fragments; the builders base64 them.

// Create: opens the runspace pool. shell_id is the pool's id (upper-case GUID text, as clients send);
// creation_fragments carry SESSION_CAPABILITY and INIT_RUNSPACEPOOL. protocolversion 2.3 is a MustComply option.
Envelope build_psrp_create(const RequestContext& ctx, std::string_view shell_id, std::string_view creation_fragments,
                           std::optional<std::chrono::seconds> idle_timeout);
// Command: creates a pipeline (CommandId = the pipeline's id) with the first fragments of CREATE_PIPELINE.
Envelope build_psrp_command(const RequestContext& ctx, const std::vector<Selector>& shell, std::string_view command_id,
                            std::string_view fragments);
// Send on "stdin" (more fragments) or "pr" (host call responses), for a pipeline or (command_id empty) the pool.
Envelope build_psrp_send(const RequestContext& ctx, const std::vector<Selector>& shell, std::string_view command_id,
                         std::string_view stream, std::string_view fragments);
// Receive of "stdout": the pool's messages (command_id empty) or a pipeline's.
Envelope build_psrp_receive(const RequestContext& ctx, const std::vector<Selector>& shell, std::string_view command_id);

// Get on the config resource (reads MaxEnvelopeSizekb and MaxTimeoutms).
Envelope build_config_get(const RequestContext& ctx);

// How many raw stdin bytes fit in one Send so the whole envelope stays under max_envelope_bytes
// (pypsrp's rule: (max - empty Send envelope - 256) * 3/4). 0 when even an empty Send does not fit.
std::size_t send_chunk_capacity(std::size_t max_envelope_bytes);

// A SOAP fault (reference winrm.md §1.11), typed.
struct WsmanFault {
  std::string code;              // s:Code/s:Value, e.g. "s:Receiver"
  std::string subcode;           // s:Subcode/s:Value, e.g. "w:TimedOut"
  std::string reason;            // s:Reason/s:Text
  unsigned long wsman_code = 0;  // WSManFault@Code (decimal HRESULT as unsigned), 0 when absent
  std::string machine;           // WSManFault@Machine
  std::string message;           // WSManFault/Message text (ProviderFault text included)
  std::string provider;          // ProviderFault@provider
  std::string provider_path;
  unsigned long wmi_error_code = 0;  // MSFT_WmiError/error_Code

  bool is_operation_timeout() const;  // 2150858793 or subcode TimedOut: poll again
  bool is_shell_gone() const;         // 2150858843 / InvalidSelectors: reopen the shell
  bool is_quota() const;              // MaxShellsPerUser and friends: reopen the shell later
  bool is_access_denied() const;      // w:AccessDenied / ERROR_ACCESS_DENIED
  // "WSMan fault 2150858843 (w:InvalidSelectors): <reason or message>" on one line.
  std::string summary() const;

  // Subcode without its prefix ("TimedOut" for "w:TimedOut").
  std::string_view local_subcode() const;
  // wsman_code, or the WMI error code when there is no WSManFault.
  unsigned long effective_code() const;
  // What ErrorDetail::wsman_fault carries: the subcode ("w:QuotaLimit"), else the WSManFault/WMI code in
  // decimal, else the SOAP code ("s:Receiver").
  std::string detail_code() const;
  // The code of the fault: deadline_exceeded (TimedOut), resource_exhausted (quota), aborted (the shell is
  // gone: redo on a new one), permission_denied (AccessDenied), invalid_argument (our request was refused as
  // malformed or too large), failed_precondition otherwise.
  ErrorCode error_code() const;
  // The fault as an Error with that code and detail_code() as its WS-Man fault detail.
  Error to_error() const;
};

// A parsed response envelope: either a fault or a body for the expected action.
struct SoapResponse {
  std::string action;
  std::string relates_to;
  std::optional<WsmanFault> fault;
  std::string body_xml;  // the s:Body element serialised, for the typed parsers below
};

// Parses any response envelope. Checks RelatesTo against expected_message_id (when non-empty);
// a mismatch or a missing RelatesTo (faults included), malformed XML, a DTD or a missing Body is an error. A Fault is
// *not* an error here: it comes back in .fault so the caller can decide (TimedOut means poll again).
Result<SoapResponse> parse_response(std::string_view xml, std::string_view expected_message_id);

struct CreatedShell {
  std::string shell_id;
  std::vector<Selector> selectors;  // copied verbatim into later requests
};
struct ReceiveResult {
  std::string stdout_data;  // decoded stream bytes, concatenated in document order
  std::string stderr_data;
  bool stdout_end = false;
  bool stderr_end = false;
  std::string state;             // full CommandState URI, empty when absent
  bool done = false;             // state is .../Done
  std::optional<int> exit_code;  // only with Done; OMI may omit it
};
struct ServerConfig {
  std::size_t max_envelope_size_kb = 0;
  std::size_t max_timeout_ms = 0;
};

Result<CreatedShell> parse_create_shell(const SoapResponse& response);
Result<std::string> parse_command_id(const SoapResponse& response);
Result<ReceiveResult> parse_receive(const SoapResponse& response, std::string_view command_id);
Result<ServerConfig> parse_config(const SoapResponse& response);

}  // namespace wincert::winrm
