#include "sim/winhost/soap.hpp"

#include <charconv>
#include <cmath>

#include "common/encoding.hpp"
#include "winrm/namespaces.hpp"
#include "winrm/xml.hpp"

namespace wincert::sim {
namespace x = winrm::xml;
namespace ns = winrm::ns;

std::optional<std::string> WsmanRequest::selector(const std::string& name) const {
  auto it = selectors.find(name);
  if (it == selectors.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> WsmanRequest::option(const std::string& name) const {
  auto it = options.find(name);
  if (it == options.end()) return std::nullopt;
  return it->second;
}

bool WsmanRequest::option_flag(const std::string& name, bool fallback) const {
  auto v = option(name);
  if (!v) return fallback;
  if (iequals(*v, "true") || *v == "1") return true;
  if (iequals(*v, "false") || *v == "0") return false;
  return fallback;
}

std::optional<long long> parse_duration_ms(std::string_view s) {
  s = trim(s);
  if (s.empty() || s[0] != 'P') return std::nullopt;
  s.remove_prefix(1);
  double total_seconds = 0;
  bool in_time = false;
  bool any = false;
  while (!s.empty()) {
    if (s[0] == 'T') {
      in_time = true;
      s.remove_prefix(1);
      continue;
    }
    std::size_t i = 0;
    while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
    if (i == 0 || i == s.size()) return std::nullopt;
    double value = 0;
    try {
      value = std::stod(std::string(s.substr(0, i)));
    } catch (...) {
      return std::nullopt;
    }
    char unit = s[i];
    s.remove_prefix(i + 1);
    any = true;
    if (!in_time) {
      if (unit == 'D')
        total_seconds += value * 86400;
      else if (unit == 'Y')
        total_seconds += value * 365 * 86400;
      else if (unit == 'M')
        total_seconds += value * 30 * 86400;
      else
        return std::nullopt;
    } else {
      if (unit == 'H')
        total_seconds += value * 3600;
      else if (unit == 'M')
        total_seconds += value * 60;
      else if (unit == 'S')
        total_seconds += value;
      else
        return std::nullopt;
    }
  }
  if (!any || total_seconds < 0 || total_seconds > 1e9) return std::nullopt;
  return static_cast<long long>(std::llround(total_seconds * 1000));
}

std::string format_duration_seconds(long long ms) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "PT%lld.%03lldS", ms / 1000, ms % 1000);
  return buf;
}

std::string sniff_message_id(std::string_view text) {
  auto p = text.find("MessageID");
  if (p == std::string_view::npos) return {};
  auto gt = text.find('>', p);
  if (gt == std::string_view::npos) return {};
  auto lt = text.find('<', gt);
  if (lt == std::string_view::npos || lt - gt > 200) return {};
  return std::string(trim(text.substr(gt + 1, lt - gt - 1)));
}

Result<WsmanRequest> parse_request(std::string_view text) {
  WsmanRequest req;
  req.doc = std::make_unique<pugi::xml_document>();
  WINCERT_TRY(x::parse(*req.doc, text));
  auto envelope = req.doc->document_element();
  if (!x::is(envelope, ns::kSoap, "Envelope"))
    return Error::invalid_argument("the root element is not a SOAP 1.2 Envelope");
  auto header = x::child(envelope, ns::kSoap, "Header");
  if (!header) return Error::invalid_argument("the envelope has no Header");
  req.body = x::child(envelope, ns::kSoap, "Body");
  if (!req.body) return Error::invalid_argument("the envelope has no Body");
  req.action = x::text(x::child(header, ns::kAddressing, "Action"));
  req.message_id = x::text(x::child(header, ns::kAddressing, "MessageID"));
  req.to = x::text(x::child(header, ns::kAddressing, "To"));
  req.resource_uri = x::text(x::child(header, ns::kWsman, "ResourceURI"));
  if (auto t = x::child(header, ns::kWsman, "OperationTimeout")) {
    auto ms = parse_duration_ms(x::text(t));
    if (!ms) return Error::invalid_argument("OperationTimeout '" + x::text(t) + "' is not an xs:duration");
    req.operation_timeout_ms = ms;
  }
  if (auto m = x::child(header, ns::kWsman, "MaxEnvelopeSize")) {
    std::string v = x::text(m);
    long long n = 0;
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || ptr != v.data() + v.size() || n <= 0)
      return Error::invalid_argument("MaxEnvelopeSize '" + v + "' is not a positive number");
    req.max_envelope_size = n;
  }
  if (auto set = x::child(header, ns::kWsman, "SelectorSet"))
    for (auto s : x::children(set, ns::kWsman, "Selector")) req.selectors[x::attribute(s, "Name").value()] = x::text(s);
  if (auto set = x::child(header, ns::kWsman, "OptionSet"))
    for (auto o : x::children(set, ns::kWsman, "Option")) req.options[x::attribute(o, "Name").value()] = x::text(o);
  if (req.action.empty()) return Error::invalid_argument("the header has no wsa:Action");
  if (req.message_id.empty()) return Error::invalid_argument("the header has no wsa:MessageID");
  return req;
}

namespace {
constexpr std::string_view kEnvelopeOpen =
    R"(<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope" )"
    R"(xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" )"
    R"(xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" )"
    R"(xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" )"
    R"(xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" )"
    R"(xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd">)";
constexpr std::string_view kFaultEnvelopeOpen =
    R"(<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope" )"
    R"(xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" )"
    R"(xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" )"
    R"(xmlns:e="http://schemas.xmlsoap.org/ws/2004/08/eventing" )"
    R"(xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration" )"
    R"(xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" )"
    R"(xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd">)";

std::string header_xml(std::string_view action, std::string_view relates_to) {
  std::string h = "<s:Header><a:Action>";
  h += action;
  h += "</a:Action><a:MessageID>uuid:" + random_uuid() + "</a:MessageID><a:To>";
  h += ns::kAnonymous;
  h += "</a:To><a:RelatesTo>";
  h += x::escape(relates_to);
  h += "</a:RelatesTo></s:Header>";
  return h;
}
}  // namespace

std::string response_envelope(std::string_view action, std::string_view relates_to, std::string_view body_xml) {
  std::string out(kEnvelopeOpen);
  out += header_xml(action, relates_to);
  out += "<s:Body>";
  out += body_xml;
  out += "</s:Body></s:Envelope>";
  return out;
}

std::string fault_envelope(const Fault& f, std::string_view relates_to, std::string_view machine) {
  std::string out(kFaultEnvelopeOpen);
  out += header_xml(winrm::action::kFault, relates_to);
  out += "<s:Body><s:Fault><s:Code><s:Value>" + f.code + "</s:Value><s:Subcode><s:Value>" + f.subcode +
         "</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang=\"en-US\">" + x::escape(f.reason) +
         "</s:Text></s:Reason><s:Detail>";
  if (!f.fault_detail.empty()) out += "<w:FaultDetail>" + f.fault_detail + "</w:FaultDetail>";
  out += R"(<f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code=")" +
         std::to_string(f.wsman_code) + "\" Machine=\"" + x::escape(machine) + "\"><f:Message>";
  if (f.provider_fault)
    out += R"(<f:ProviderFault provider="Shell cmd plugin" path="%systemroot%\system32\winrscmd.dll">)" +
           x::escape(f.message) + "</f:ProviderFault>";
  else
    out += x::escape(f.message);
  out += "</f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>";
  return out;
}

HttpReply fault_reply(const Fault& fault, std::string_view relates_to, std::string_view machine) {
  return HttpReply{500, fault_envelope(fault, relates_to, machine), false};
}

Fault timed_out_fault() {
  constexpr std::string_view kText =
      "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  ";
  return Fault{"s:Receiver", "w:TimedOut", std::string(kText), winrm::fault_code::kOperationTimeout, std::string(kText),
               {},           false};
}

Fault shell_not_found_fault(std::string_view shell_id) {
  return Fault{"s:Sender",
               "w:InvalidSelectors",
               "The WS-Management service cannot process the request because the request contained invalid "
               "selectors for the resource. ",
               winrm::fault_code::kShellNotFound,
               "The request for the Windows Remote Shell with ShellId " + std::string(shell_id) +
                   " failed because the shell was not found on the server. Possible causes are: the specified "
                   "ShellId is incorrect or the shell no longer exists on the server. Provide the correct ShellId "
                   "or create a new shell and retry the operation. ",
               "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors",
               false};
}

Fault command_not_found_fault() {
  return Fault{"s:Sender",
               "w:InvalidSelectors",
               "The WS-Management service cannot process the request because the request contained invalid "
               "selectors for the resource. ",
               winrm::fault_code::kShellNotFound,
               "The Windows Remote Shell received a request to perform an operation on a command identifier that "
               "does not exist. Either the command has completed execution or the client specified an invalid "
               "command identifier. ",
               "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors",
               false};
}

Fault schema_validation_fault(std::string_view detail) {
  return Fault{"s:Sender",
               "w:SchemaValidationError",
               "The SOAP XML in the message does not match the corresponding XML schema definition. Change the XML "
               "and retry. ",
               winrm::fault_code::kSchemaValidation,
               "The Windows Remote Shell cannot process the request. The SOAP packet contains an element that is "
               "either missing or has an invalid value: " +
                   std::string(detail),
               {},
               false};
}

Fault action_not_supported_fault(std::string_view action) {
  return Fault{"s:Sender",
               "a:ActionNotSupported",
               "The action is not supported by the service. ",
               winrm::fault_code::kSchemaValidation,
               "The WS-Management service cannot process the request because the action '" + std::string(action) +
                   "' is not supported for this resource. ",
               "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/ActionMismatch",
               false};
}

Fault max_shells_fault(int limit) {
  std::string text =
      "The WS-Management service cannot process the request. This user is allowed a maximum number "
      "of " +
      std::to_string(limit) +
      " concurrent shells, which has been exceeded. Close existing shells or raise the quota for this "
      "user. ";
  return Fault{"s:Receiver", "w:QuotaLimit", text, winrm::fault_code::kMaxShellsPerUser, text, {}, false};
}

Fault file_not_found_fault() {
  return Fault{"s:Receiver",
               "w:InternalError",
               "The system cannot find the file specified. ",
               2147942402UL,
               "The system cannot find the file specified. ",
               {},
               true};
}

Fault command_line_too_long_fault() {
  return Fault{"s:Receiver",
               "w:InternalError",
               "The filename or extension is too long. ",
               winrm::fault_code::kCommandLineTooLong,
               "The filename or extension is too long. ",
               {},
               true};
}

}  // namespace wincert::sim
