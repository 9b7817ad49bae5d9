// WS-Management envelopes as the simulated Windows host reads and writes them: request parsing
// (namespace-aware, via winrm/xml.hpp) and response/fault builders that copy the shapes of the recorded
// real traffic (fixtures/winrm/pypsrp), including the prefixes Windows uses.
#pragma once

#include <pugixml.hpp>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace wincert::sim {

// What the HTTP layer sends back for one request.
struct HttpReply {
  unsigned status = 200;
  std::string body;  // SOAP envelope (empty for 401/413)
  bool close_connection = false;
};

// One parsed WS-Man request. Keeps the document alive so `body` stays valid.
struct WsmanRequest {
  std::unique_ptr<pugi::xml_document> doc;
  std::string action;
  std::string resource_uri;
  std::string message_id;  // as sent, e.g. "uuid:..."
  std::string to;
  std::optional<long long> operation_timeout_ms;
  std::optional<long long> max_envelope_size;    // bytes the client accepts in a response
  std::map<std::string, std::string> selectors;  // Name -> trimmed value
  std::map<std::string, std::string> options;    // Name -> trimmed value
  pugi::xml_node body;

  // Selector/option lookup; option names are case-sensitive on Windows, values compared case-insensitively.
  std::optional<std::string> selector(const std::string& name) const;
  std::optional<std::string> option(const std::string& name) const;
  // TRUE/True/true -> true; FALSE/... -> false; absent -> fallback.
  bool option_flag(const std::string& name, bool fallback) const;
};

// A SOAP fault as Windows writes it (see fixtures). `http_status` is 500 for every WS-Man fault.
struct Fault {
  std::string code = "s:Receiver";  // s:Sender or s:Receiver
  std::string subcode;              // e.g. "w:TimedOut"
  std::string reason;               // s:Reason/s:Text
  unsigned long wsman_code = 0;     // WSManFault@Code
  std::string message;              // f:Message text
  std::string fault_detail;         // optional w:FaultDetail URI
  bool provider_fault = false;      // wrap message in f:ProviderFault (Shell cmd plugin)
};

// Parses a request envelope. Errors are SchemaValidationError material (message says what is missing).
Result<WsmanRequest> parse_request(std::string_view text);
// Best-effort MessageID extraction for faults about unparsable requests.
std::string sniff_message_id(std::string_view text);

// xs:duration ("PT20S", "PT60.000S", "P0DT0H1M0S") to milliseconds.
std::optional<long long> parse_duration_ms(std::string_view text);
// Milliseconds as Windows writes IdleTimeOut: "PT7200.000S".
std::string format_duration_seconds(long long ms);

// A complete response envelope. `extra_ns` adds namespace declarations (e.g. x, rsp already included).
std::string response_envelope(std::string_view action, std::string_view relates_to, std::string_view body_xml);
std::string fault_envelope(const Fault& fault, std::string_view relates_to, std::string_view machine);
HttpReply fault_reply(const Fault& fault, std::string_view relates_to, std::string_view machine);

// Faults the simulator gives, with the texts real Windows uses.
Fault timed_out_fault();
Fault shell_not_found_fault(std::string_view shell_id);
Fault command_not_found_fault();
Fault schema_validation_fault(std::string_view detail);
Fault action_not_supported_fault(std::string_view action);
Fault max_shells_fault(int limit);
Fault file_not_found_fault();         // WINRS_SKIP_CMD_SHELL with a program that cannot be found
Fault command_line_too_long_fault();  // direct process creation beyond 32767 characters

}  // namespace wincert::sim
