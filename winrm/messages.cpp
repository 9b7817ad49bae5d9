// WS-Management WinRS envelopes (built with a pugixml DOM, so every value is escaped by the writer)
// and the parsing of response envelopes into typed results (reference winrm.md §1.4–1.11).
#include "winrm/messages.hpp"

#include <pugixml.hpp>

#include <charconv>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <string>

#include "common/encoding.hpp"
#include "winrm/xml.hpp"

namespace wincert::winrm {
namespace {

// SOAP envelopes are shallow (a WMI fault is about ten levels deep); anything much deeper is hostile and
// would only feed the recursive helpers.
constexpr int kMaxElementDepth = 64;
// Attribute values and texts we echo into error messages are cut to this length.
constexpr std::size_t kMaxQuotedChars = 120;

constexpr const char* bool_text(bool v) { return v ? "TRUE" : "FALSE"; }

std::string quoted(std::string_view s) {
  std::string out = "'";
  if (s.size() > kMaxQuotedChars) {
    out.append(s.substr(0, kMaxQuotedChars));
    out += "...";
  } else {
    out.append(s);
  }
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';  // keep error messages on one line
  out += "'";
  return out;
}

// "PT20.000S": xs:duration with milliseconds, as Windows itself writes them.
std::string xs_duration(std::chrono::milliseconds ms) {
  long long total = ms.count() < 0 ? 0 : static_cast<long long>(ms.count());
  char buf[64];
  std::snprintf(buf, sizeof buf, "PT%lld.%03lldS", total / 1000, total % 1000);
  return buf;
}

struct StringWriter : pugi::xml_writer {
  std::string text;
  void write(const void* data, std::size_t size) override { text.append(static_cast<const char*>(data), size); }
};

class EnvelopeWriter {
 public:
  EnvelopeWriter(const RequestContext& ctx, std::string_view action, std::string_view resource_uri,
                 const std::vector<Selector>& selectors, const std::vector<Option>& options) {
    envelope_ = doc_.append_child("s:Envelope");
    envelope_.append_attribute("xmlns:s").set_value(std::string(ns::kSoap).c_str());
    envelope_.append_attribute("xmlns:a").set_value(std::string(ns::kAddressing).c_str());
    envelope_.append_attribute("xmlns:w").set_value(std::string(ns::kWsman).c_str());
    envelope_.append_attribute("xmlns:p").set_value(std::string(ns::kWsmanMs).c_str());
    envelope_.append_attribute("xmlns:rsp").set_value(std::string(ns::kShell).c_str());

    message_id_ = "uuid:" + random_uuid();
    auto header = envelope_.append_child("s:Header");
    text(header, "a:To", ctx.to);
    auto reply_to = header.append_child("a:ReplyTo");
    must_understand(text(reply_to, "a:Address", ns::kAnonymous), true);
    must_understand(text(header, "a:Action", action), true);
    text(header, "a:MessageID", message_id_);
    must_understand(text(header, "w:ResourceURI", resource_uri), true);
    must_understand(text(header, "w:MaxEnvelopeSize", std::to_string(ctx.max_envelope_size)), true);
    text(header, "w:OperationTimeout", xs_duration(ctx.operation_timeout));
    auto locale = header.append_child("w:Locale");
    locale.append_attribute("xml:lang").set_value(ctx.locale.c_str());
    must_understand(locale, false);
    auto data_locale = header.append_child("p:DataLocale");
    data_locale.append_attribute("xml:lang").set_value(ctx.locale.c_str());
    must_understand(data_locale, false);
    if (!ctx.session_id.empty()) must_understand(text(header, "p:SessionId", ctx.session_id), false);
    if (!selectors.empty()) {
      auto set = header.append_child("w:SelectorSet");
      for (const auto& s : selectors) {
        auto sel = text(set, "w:Selector", s.value);
        sel.append_attribute("Name").set_value(s.name.c_str());
      }
    }
    if (!options.empty()) {
      auto set = header.append_child("w:OptionSet");
      must_understand(set, true);
      for (const auto& o : options) {
        auto opt = text(set, "w:Option", o.value);
        opt.append_attribute("Name").set_value(o.name.c_str());
        if (o.must_comply) opt.append_attribute("MustComply").set_value("true");
      }
    }
    body_ = envelope_.append_child("s:Body");
  }

  pugi::xml_node body() { return body_; }

  static pugi::xml_node text(pugi::xml_node parent, const char* name, std::string_view value) {
    auto node = parent.append_child(name);
    node.text().set(std::string(value).c_str());
    return node;
  }

  Envelope finish() {
    StringWriter writer;
    doc_.save(writer, "", pugi::format_raw | pugi::format_no_declaration, pugi::encoding_utf8);
    return Envelope{std::move(message_id_), std::move(writer.text)};
  }

 private:
  static void must_understand(pugi::xml_node node, bool value) {
    node.append_attribute("s:mustUnderstand").set_value(value ? "true" : "false");
  }

  pugi::xml_document doc_;
  pugi::xml_node envelope_;
  pugi::xml_node body_;
  std::string message_id_;
};

// ---- parsing helpers -------------------------------------------------------------------------------------

bool too_deep(const pugi::xml_node& root) {
  int depth = 0;
  pugi::xml_node cur = root;
  while (cur) {
    if (auto first = cur.first_child()) {
      cur = first;
      if (++depth > kMaxElementDepth) return true;
      continue;
    }
    while (cur && cur != root && !cur.next_sibling()) {
      cur = cur.parent();
      --depth;
    }
    if (!cur || cur == root) break;
    cur = cur.next_sibling();
  }
  return false;
}

std::string_view strip_uuid_prefix(std::string_view id) {
  id = trim(id);
  if (istarts_with(id, "uuid:")) id.remove_prefix(5);
  return id;
}

// Collapses runs of whitespace into one space so fault texts fit on one line.
std::string one_line(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool space = false;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

std::optional<unsigned long> parse_unsigned(std::string_view s) {
  s = trim(s);
  unsigned long v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// Windows exit codes are DWORDs; negative values appear too (-1 from OMI). Both map onto int32.
std::optional<int> parse_exit_code(std::string_view s) {
  s = trim(s);
  long long v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  if (v < INT32_MIN || v > static_cast<long long>(UINT32_MAX)) return std::nullopt;
  return static_cast<int>(static_cast<std::int32_t>(static_cast<std::uint32_t>(v)));
}

// Message text of a WSManFault: its own text plus the text of ProviderFault and nested WSManFault
// messages, leaving out ExtendedError blobs (WMI status dumps that are not meant for people).
void collect_message(const pugi::xml_node& node, std::string& out, int depth) {
  if (depth > kMaxElementDepth) return;
  for (auto c = node.first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) {
      out += c.value();
      out += ' ';
    } else if (c.type() == pugi::node_element && xml::local_name(c) != "ExtendedError") {
      collect_message(c, out, depth + 1);
    }
  }
}

// The first element with this local name under root, any namespace (used for MSFT_WmiError, whose
// namespace is a per-class CIM URI).
pugi::xml_node descendant_any_ns(const pugi::xml_node& root, std::string_view local) {
  std::vector<pugi::xml_node> stack{root};
  while (!stack.empty()) {
    auto node = stack.back();
    stack.pop_back();
    for (auto c = node.last_child(); c; c = c.previous_sibling()) {
      if (c.type() != pugi::node_element) continue;
      stack.push_back(c);
    }
    if (node != root && xml::local_name(node) == local) return node;
  }
  return {};
}

WsmanFault parse_fault(const pugi::xml_node& fault) {
  WsmanFault f;
  auto code = xml::child(fault, ns::kSoap, "Code");
  f.code = xml::text(xml::child(code, ns::kSoap, "Value"));
  f.subcode = xml::text(xml::child(xml::child(code, ns::kSoap, "Subcode"), ns::kSoap, "Value"));
  f.reason = one_line(xml::text(xml::child(xml::child(fault, ns::kSoap, "Reason"), ns::kSoap, "Text")));

  auto detail = xml::child(fault, ns::kSoap, "Detail");
  if (auto wsman = xml::child(detail, ns::kWsmanFault, "WSManFault")) {
    if (auto c = parse_unsigned(xml::attribute(wsman, "Code").value())) f.wsman_code = *c;
    f.machine = std::string(trim(xml::attribute(wsman, "Machine").value()));
    auto message = xml::child(wsman, ns::kWsmanFault, "Message");
    std::string text;
    collect_message(message, text, 0);
    f.message = one_line(text);
    if (auto provider = xml::descendant(message, ns::kWsmanFault, "ProviderFault")) {
      f.provider = std::string(trim(xml::attribute(provider, "provider").value()));
      f.provider_path = std::string(trim(xml::attribute(provider, "path").value()));
      // Old Windows leaves the outer Code/Machine empty and fills the nested fault.
      if (auto nested = xml::descendant(provider, ns::kWsmanFault, "WSManFault")) {
        if (f.wsman_code == 0)
          if (auto c = parse_unsigned(xml::attribute(nested, "Code").value())) f.wsman_code = *c;
        if (f.machine.empty()) f.machine = std::string(trim(xml::attribute(nested, "Machine").value()));
      }
    }
  }
  if (auto wmi = descendant_any_ns(detail, "MSFT_WmiError")) {
    for (auto c = wmi.first_child(); c; c = c.next_sibling()) {
      if (c.type() != pugi::node_element) continue;
      if (xml::local_name(c) == "error_Code") {
        if (auto v = parse_unsigned(xml::text(c))) f.wmi_error_code = *v;
      } else if (xml::local_name(c) == "Message" && f.message.empty()) {
        f.message = one_line(xml::text(c));
      }
    }
  }
  return f;
}

// Serialises the Body element with every namespace declaration it inherits, so it parses on its own.
std::string serialise_body(const pugi::xml_node& body) {
  pugi::xml_document out;
  auto copy = out.append_copy(body);
  for (auto anc = body.parent(); anc && anc.type() == pugi::node_element; anc = anc.parent()) {
    for (auto a = anc.first_attribute(); a; a = a.next_attribute()) {
      std::string_view name = a.name();
      if (name != "xmlns" && name.substr(0, 6) != "xmlns:") continue;
      if (!copy.attribute(a.name())) copy.append_attribute(a.name()).set_value(a.value());
    }
  }
  StringWriter writer;
  out.save(writer, "", pugi::format_raw | pugi::format_no_declaration, pugi::encoding_utf8);
  return std::move(writer.text);
}

// Re-parses SoapResponse::body_xml for a typed parser; a fault becomes an error here.
Result<pugi::xml_node> load_body(const SoapResponse& response, pugi::xml_document& doc, std::string_view what) {
  if (response.fault) return response.fault->to_error().context(std::string(what) + ": ");
  if (auto r = xml::parse(doc, response.body_xml); !r)
    return r.error().context(std::string(what) + ": response body: ");
  auto body = doc.document_element();
  if (!xml::is(body, ns::kSoap, "Body"))
    return Error::invalid_argument(std::string(what) + ": response body is not a SOAP Body element");
  if (too_deep(body)) return Error::invalid_argument(std::string(what) + ": response body is nested too deeply");
  return body;
}

}  // namespace

// ---- builders ----------------------------------------------------------------------------------------------

Envelope build_create_shell(const RequestContext& ctx, const ShellOptions& shell) {
  std::vector<Option> options{{"WINRS_NOPROFILE", bool_text(shell.no_profile), false},
                              {"WINRS_CODEPAGE", std::to_string(shell.codepage), false}};
  EnvelopeWriter w(ctx, action::kCreate, ctx.resource_uri, {}, options);
  auto s = w.body().append_child("rsp:Shell");
  EnvelopeWriter::text(s, "rsp:InputStreams", "stdin");
  EnvelopeWriter::text(s, "rsp:OutputStreams", "stdout stderr");
  if (!shell.working_directory.empty()) EnvelopeWriter::text(s, "rsp:WorkingDirectory", shell.working_directory);
  if (!shell.environment.empty()) {
    auto env = s.append_child("rsp:Environment");
    for (const auto& [name, value] : shell.environment)
      EnvelopeWriter::text(env, "rsp:Variable", value).append_attribute("Name").set_value(name.c_str());
  }
  if (shell.idle_timeout) {
    long long secs = shell.idle_timeout->count() < 0 ? 0 : static_cast<long long>(shell.idle_timeout->count());
    EnvelopeWriter::text(s, "rsp:IdleTimeOut", "PT" + std::to_string(secs) + "S");
  }
  return w.finish();
}

Envelope build_command(const RequestContext& ctx, const std::vector<Selector>& shell, std::string_view command,
                       const std::vector<std::string>& arguments, bool skip_cmd_shell, bool console_mode_stdin) {
  std::vector<Option> options{{"WINRS_CONSOLEMODE_STDIN", bool_text(console_mode_stdin), false},
                              {"WINRS_SKIP_CMD_SHELL", bool_text(skip_cmd_shell), false}};
  EnvelopeWriter w(ctx, action::kCommand, ctx.resource_uri, shell, options);
  auto line = w.body().append_child("rsp:CommandLine");
  EnvelopeWriter::text(line, "rsp:Command", command);
  for (const auto& arg : arguments) EnvelopeWriter::text(line, "rsp:Arguments", arg);
  return w.finish();
}

Envelope build_send(const RequestContext& ctx, const std::vector<Selector>& shell, std::string_view command_id,
                    std::string_view data, bool end) {
  EnvelopeWriter w(ctx, action::kSend, ctx.resource_uri, shell, {});
  auto send = w.body().append_child("rsp:Send");
  auto stream = EnvelopeWriter::text(send, "rsp:Stream", base64_encode(data));
  stream.append_attribute("Name").set_value("stdin");
  stream.append_attribute("CommandId").set_value(std::string(command_id).c_str());
  if (end) stream.append_attribute("End").set_value("true");
  return w.finish();
}

Envelope build_receive(const RequestContext& ctx, const std::vector<Selector>& shell, std::string_view command_id) {
  EnvelopeWriter w(ctx, action::kReceive, ctx.resource_uri, shell,
                   {{"WSMAN_CMDSHELL_OPTION_KEEPALIVE", "TRUE", false}});
  auto receive = w.body().append_child("rsp:Receive");
  EnvelopeWriter::text(receive, "rsp:DesiredStream", "stdout stderr")
      .append_attribute("CommandId")
      .set_value(std::string(command_id).c_str());
  return w.finish();
}

Envelope build_signal(const RequestContext& ctx, const std::vector<Selector>& shell, std::string_view command_id,
                      std::string_view code) {
  EnvelopeWriter w(ctx, action::kSignal, ctx.resource_uri, shell, {});
  auto signal = w.body().append_child("rsp:Signal");
  signal.append_attribute("CommandId").set_value(std::string(command_id).c_str());
  EnvelopeWriter::text(signal, "rsp:Code", code);
  return w.finish();
}

Envelope build_delete_shell(const RequestContext& ctx, const std::vector<Selector>& shell) {
  EnvelopeWriter w(ctx, action::kDelete, ctx.resource_uri, shell, {});
  return w.finish();
}

Envelope build_psrp_create(const RequestContext& ctx, std::string_view shell_id, std::string_view creation_fragments,
                           std::optional<std::chrono::seconds> idle_timeout) {
  EnvelopeWriter w(ctx, action::kCreate, ctx.resource_uri, {}, {{"protocolversion", "2.3", true}});
  auto s = w.body().append_child("rsp:Shell");
  s.append_attribute("ShellId").set_value(std::string(shell_id).c_str());
  EnvelopeWriter::text(s, "rsp:InputStreams", "stdin pr");
  EnvelopeWriter::text(s, "rsp:OutputStreams", "stdout");
  if (idle_timeout) {
    const long long secs = idle_timeout->count() < 0 ? 0 : static_cast<long long>(idle_timeout->count());
    EnvelopeWriter::text(s, "rsp:IdleTimeOut", "PT" + std::to_string(secs) + "S");
  }
  auto creation = EnvelopeWriter::text(s, "creationXml", base64_encode(creation_fragments));
  creation.append_attribute("xmlns").set_value(std::string(ns::kPowerShell).c_str());
  return w.finish();
}

Envelope build_psrp_command(const RequestContext& ctx, const std::vector<Selector>& shell, std::string_view command_id,
                            std::string_view fragments) {
  EnvelopeWriter w(ctx, action::kCommand, ctx.resource_uri, shell, {{"WINRS_SKIP_CMD_SHELL", "False", false}});
  auto line = w.body().append_child("rsp:CommandLine");
  line.append_attribute("CommandId").set_value(std::string(command_id).c_str());
  line.append_child("rsp:Command");
  EnvelopeWriter::text(line, "rsp:Arguments", base64_encode(fragments));
  return w.finish();
}

Envelope build_psrp_send(const RequestContext& ctx, const std::vector<Selector>& shell, std::string_view command_id,
                         std::string_view stream, std::string_view fragments) {
  EnvelopeWriter w(ctx, action::kSend, ctx.resource_uri, shell, {});
  auto send = w.body().append_child("rsp:Send");
  auto node = EnvelopeWriter::text(send, "rsp:Stream", base64_encode(fragments));
  node.append_attribute("Name").set_value(std::string(stream).c_str());
  if (!command_id.empty()) node.append_attribute("CommandId").set_value(std::string(command_id).c_str());
  return w.finish();
}

Envelope build_psrp_receive(const RequestContext& ctx, const std::vector<Selector>& shell,
                            std::string_view command_id) {
  EnvelopeWriter w(ctx, action::kReceive, ctx.resource_uri, shell,
                   {{"WSMAN_CMDSHELL_OPTION_KEEPALIVE", "True", false}});
  auto receive = w.body().append_child("rsp:Receive");
  auto desired = EnvelopeWriter::text(receive, "rsp:DesiredStream", "stdout");
  if (!command_id.empty()) desired.append_attribute("CommandId").set_value(std::string(command_id).c_str());
  return w.finish();
}

Envelope build_config_get(const RequestContext& ctx) {
  EnvelopeWriter w(ctx, action::kGet, ns::kResourceConfig, {}, {});
  return w.finish();
}

std::size_t send_chunk_capacity(std::size_t max_envelope_bytes) {
  // A real empty Send with generous header values (long endpoint URL, session id, uuid ids) so the
  // estimate holds for any context the client uses; pypsrp then keeps 256 bytes of slack.
  static const std::size_t empty_len = [] {
    RequestContext ctx;
    ctx.to = "https://" + std::string(253, 'h') + ":65535/wsman";
    ctx.session_id = "uuid:" + random_uuid();
    ctx.operation_timeout = std::chrono::milliseconds(999999999);
    ctx.max_envelope_size = 4294967295u;
    std::vector<Selector> shell{{"ShellId", random_uuid()}};
    return build_send(ctx, shell, random_uuid(), {}, true).xml.size();
  }();
  if (max_envelope_bytes <= empty_len + 256) return 0;
  std::size_t raw = (max_envelope_bytes - empty_len - 256) / 4 * 3;
  return raw;
}

// ---- faults ------------------------------------------------------------------------------------------------

bool WsmanFault::is_operation_timeout() const {
  return wsman_code == fault_code::kOperationTimeout || local_subcode() == "TimedOut";
}

bool WsmanFault::is_shell_gone() const {
  return wsman_code == fault_code::kShellNotFound || local_subcode() == "InvalidSelectors";
}

bool WsmanFault::is_quota() const {
  for (unsigned long c : {wsman_code, wmi_error_code})
    if (c == fault_code::kMaxShellsPerUser || c == fault_code::kQuotaCommands) return true;
  return local_subcode() == "QuotaLimit";
}

std::string_view WsmanFault::local_subcode() const {
  std::string_view s = subcode;
  auto colon = s.find(':');
  return colon == std::string_view::npos ? s : s.substr(colon + 1);
}

unsigned long WsmanFault::effective_code() const { return wsman_code != 0 ? wsman_code : wmi_error_code; }

std::string WsmanFault::summary() const {
  std::string out = "WSMan fault";
  if (unsigned long c = effective_code(); c != 0) out += " " + std::to_string(c);
  const std::string& kind = subcode.empty() ? code : subcode;
  if (!kind.empty()) out += " (" + kind + ")";
  const std::string& text = !message.empty() ? message : reason;
  out += ": ";
  out += text.empty() ? std::string("no reason given") : one_line(text);
  if (!machine.empty()) out += " [machine " + machine + "]";
  return out;
}

bool WsmanFault::is_access_denied() const {
  return wsman_code == fault_code::kAccessDenied || local_subcode() == "AccessDenied";
}

std::string WsmanFault::detail_code() const {
  if (!subcode.empty()) return subcode;
  if (unsigned long c = effective_code(); c != 0) return std::to_string(c);
  return code;
}

ErrorCode WsmanFault::error_code() const {
  // Timeouts and quotas clear up by themselves; a lost shell is fixed by opening a new one (the whole step
  // is redone on it). Sender faults name our request as wrong; the rest is the host's state.
  if (is_operation_timeout()) return ErrorCode::kDeadlineExceeded;
  if (is_quota()) return ErrorCode::kResourceExhausted;
  if (is_shell_gone()) return ErrorCode::kAborted;
  if (is_access_denied()) return ErrorCode::kPermissionDenied;
  const std::string_view local = local_subcode();
  if (local == "EncodingLimit" || local == "SchemaValidationError" || wsman_code == fault_code::kSchemaValidation ||
      wsman_code == fault_code::kCommandLineTooLong) {
    return ErrorCode::kInvalidArgument;
  }
  return ErrorCode::kFailedPrecondition;
}

Error WsmanFault::to_error() const { return Error::make(error_code(), summary()).with_wsman_fault(detail_code()); }

// ---- responses ---------------------------------------------------------------------------------------------

Result<SoapResponse> parse_response(std::string_view text, std::string_view expected_message_id) {
  pugi::xml_document doc;
  if (auto r = xml::parse(doc, text); !r) return r.error().context("WS-Man response: ");
  auto envelope = doc.document_element();
  if (!xml::is(envelope, ns::kSoap, "Envelope"))
    return Error::invalid_argument("WS-Man response: root element " + quoted(envelope.name()) +
                                   " is not a SOAP 1.2 Envelope (namespace " + quoted(xml::namespace_uri(envelope)) +
                                   ")");
  if (too_deep(envelope))
    return Error::invalid_argument("WS-Man response: elements nested deeper than " + std::to_string(kMaxElementDepth) +
                                   " levels");
  auto header = xml::child(envelope, ns::kSoap, "Header");
  auto body = xml::child(envelope, ns::kSoap, "Body");
  if (!body) return Error::invalid_argument("WS-Man response: the SOAP Envelope has no Body");

  SoapResponse out;
  out.action = xml::text(xml::child(header, ns::kAddressing, "Action"));
  auto relates_to = xml::child(header, ns::kAddressing, "RelatesTo");
  out.relates_to = xml::text(relates_to);
  if (auto fault = xml::child(body, ns::kSoap, "Fault")) out.fault = parse_fault(fault);

  if (!expected_message_id.empty()) {
    if (!relates_to) {
      // Faults too: one that names no request of ours must not reach a job result as the host's word (it
      // may be injected), so its text is left out. Windows itself sends some faults without RelatesTo (a
      // shell quota: fixtures winrb/wmi_error_v2.xml), so it counts as the host being unavailable for now:
      // the job's retry policy may try again (only steps that cannot have changed the host are redone).
      if (out.fault) {
        return Error::unavailable("WS-Man fault without RelatesTo (expected " + quoted(expected_message_id) +
                                  "): its text is not trusted, a fault that does not name our request may be "
                                  "injected; Windows sends such faults for a shell quota, so it is retried");
      }
      return Error::invalid_argument("WS-Man response has no RelatesTo (expected " + quoted(expected_message_id) + ")");
    } else if (!iequals(strip_uuid_prefix(out.relates_to), strip_uuid_prefix(expected_message_id))) {
      return Error::invalid_argument("WS-Man response RelatesTo " + quoted(out.relates_to) +
                                     " does not match the request MessageID " + quoted(expected_message_id) +
                                     " (a stale or foreign response)");
    }
  }
  out.body_xml = serialise_body(body);
  return out;
}

Result<CreatedShell> parse_create_shell(const SoapResponse& response) {
  pugi::xml_document doc;
  auto body = load_body(response, doc, "Create shell");
  if (!body) return body.error();

  CreatedShell out;
  auto created = xml::child(*body, ns::kTransfer, "ResourceCreated");
  auto set = xml::descendant(created, ns::kWsman, "SelectorSet");
  if (!set) set = xml::descendant(*body, ns::kWsman, "SelectorSet");
  for (auto sel : xml::children(set, ns::kWsman, "Selector")) {
    Selector s{std::string(trim(xml::attribute(sel, "Name").value())), xml::text(sel)};
    if (s.name.empty()) return Error::invalid_argument("Create shell: response has a Selector without a Name");
    if (s.name == "ShellId") out.shell_id = s.value;
    out.selectors.push_back(std::move(s));
  }
  if (out.shell_id.empty()) {
    // No selector (some servers): fall back to rsp:Shell/rsp:ShellId.
    auto id = xml::child(xml::child(*body, ns::kShell, "Shell"), ns::kShell, "ShellId");
    out.shell_id = xml::text(id);
    if (out.shell_id.empty())
      return Error::invalid_argument(
          "Create shell: response has no ShellId (no Selector Name=\"ShellId\", no rsp:ShellId)");
    out.selectors.push_back({"ShellId", out.shell_id});
  }
  return out;
}

Result<std::string> parse_command_id(const SoapResponse& response) {
  pugi::xml_document doc;
  auto body = load_body(response, doc, "Command");
  if (!body) return body.error();
  auto resp = xml::child(*body, ns::kShell, "CommandResponse");
  if (!resp) return Error::invalid_argument("Command: response body has no rsp:CommandResponse");
  std::string id = xml::text(xml::child(resp, ns::kShell, "CommandId"));
  if (id.empty()) return Error::invalid_argument("Command: CommandResponse has no CommandId");
  return id;
}

Result<ReceiveResult> parse_receive(const SoapResponse& response, std::string_view command_id) {
  pugi::xml_document doc;
  auto body = load_body(response, doc, "Receive");
  if (!body) return body.error();
  auto resp = xml::child(*body, ns::kShell, "ReceiveResponse");
  if (!resp) return Error::invalid_argument("Receive: response body has no rsp:ReceiveResponse");

  auto for_us = [&](const pugi::xml_node& n) {
    auto id = xml::attribute(n, "CommandId");
    return !id || command_id.empty() || iequals(trim(id.value()), trim(command_id));
  };
  ReceiveResult out;
  for (auto stream : xml::children(resp, ns::kShell, "Stream")) {
    if (!for_us(stream)) continue;
    std::string_view name = trim(xml::attribute(stream, "Name").value());
    std::string* target = nullptr;
    bool* end_flag = nullptr;
    if (name == "stdout") {
      target = &out.stdout_data;
      end_flag = &out.stdout_end;
    } else if (name == "stderr") {
      target = &out.stderr_data;
      end_flag = &out.stderr_end;
    } else {
      continue;  // a stream we did not ask for
    }
    auto decoded = base64_decode(stream.child_value());
    if (!decoded) return Error::invalid_argument("Receive: " + std::string(name) + " chunk is not valid base64");
    target->append(*decoded);
    std::string_view end = trim(xml::attribute(stream, "End").value());
    if (iequals(end, "true") || end == "1") *end_flag = true;
  }
  for (auto state : xml::children(resp, ns::kShell, "CommandState")) {
    if (!for_us(state)) continue;
    out.state = std::string(trim(xml::attribute(state, "State").value()));
    out.done = out.state == action::kStateDone ||
               (out.state.size() >= 5 && out.state.compare(out.state.size() - 5, 5, "/Done") == 0);
    if (auto code = xml::child(state, ns::kShell, "ExitCode"); code && out.done) {
      auto value = parse_exit_code(xml::text(code));
      if (!value) return Error::invalid_argument("Receive: ExitCode " + quoted(xml::text(code)) + " is not an integer");
      out.exit_code = value;
    }
  }
  return out;
}

Result<ServerConfig> parse_config(const SoapResponse& response) {
  pugi::xml_document doc;
  auto body = load_body(response, doc, "WS-Man config Get");
  if (!body) return body.error();
  auto config = xml::child(*body, ns::kConfig, "Config");
  if (!config) return Error::invalid_argument("WS-Man config Get: response body has no cfg:Config");
  ServerConfig out;
  auto read = [&](std::string_view name, std::size_t& field) -> Result<void> {
    auto node = xml::child(config, ns::kConfig, name);
    if (!node) return Error::invalid_argument("WS-Man config Get: cfg:Config has no " + std::string(name));
    auto v = parse_unsigned(xml::text(node));
    if (!v)
      return Error::invalid_argument("WS-Man config Get: " + std::string(name) + " " + quoted(xml::text(node)) +
                                     " is not a number");
    field = static_cast<std::size_t>(*v);
    return {};
  };
  WINCERT_TRY(read("MaxEnvelopeSizekb", out.max_envelope_size_kb));
  WINCERT_TRY(read("MaxTimeoutms", out.max_timeout_ms));
  return out;
}

}  // namespace wincert::winrm
