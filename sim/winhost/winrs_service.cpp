#include "sim/winhost/winrs_service.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>

#include "common/encoding.hpp"
#include "common/log.hpp"
#include "sim/winhost/error_reply.hpp"
#include "sim/winhost/psrp_service.hpp"
#include "sim/winhost/windows_model.hpp"
#include "winrm/namespaces.hpp"
#include "winrm/xml.hpp"

namespace wincert::sim {
namespace x = winrm::xml;
namespace ns = winrm::ns;
namespace act = winrm::action;
using namespace std::chrono_literals;

namespace {
constexpr std::size_t kMaxStdinBytes = 64 * 1024 * 1024;
constexpr long long kReceiveEnvelopeOverhead = 1600;  // header + CommandState + End markers

HttpReply ok(std::string_view action, const WsmanRequest& req, std::string_view body) {
  return HttpReply{200, response_envelope(action, req.message_id, body), false};
}
}  // namespace

std::string machine_from_to(const std::string& to, const std::string& fallback) {
  auto scheme = to.find("://");
  if (scheme == std::string::npos) return fallback;
  std::string rest = to.substr(scheme + 3);
  auto end = rest.find_first_of("/");
  rest = rest.substr(0, end);
  if (!rest.empty() && rest[0] == '[') {  // IPv6 literal
    auto close = rest.find(']');
    return close == std::string::npos ? fallback : rest.substr(1, close - 1);
  }
  auto colon = rest.find(':');
  rest = rest.substr(0, colon);
  return rest.empty() ? fallback : rest;
}

WinrsService::WinrsService(boost::asio::io_context& ioc, WindowsModel& model, Stats& stats, WinrsOptions options)
    : ioc_(ioc), model_(model), stats_(stats), options_(options), idle_timer_(ioc) {
  schedule_idle_sweep();
}

WinrsService::~WinrsService() { shutdown(); }

void WinrsService::shutdown() {
  if (stopped_) return;
  stopped_ = true;
  idle_timer_.cancel();
  for (auto& [id, shell] : shells_)
    for (auto& [cid, cmd] : shell.commands) {
      if (cmd->sleep_timer) cmd->sleep_timer->cancel();
      if (cmd->held && cmd->held->timer) cmd->held->timer->cancel();
    }
}

std::optional<ParsedRequest> parse_or_answer(const RequestContext& ctx, const std::string& body,
                                             const std::string& hostname, Stats& stats, const ReplyCallback& done) {
  auto parsed = parse_request(body);
  const std::string fallback_machine =
      ctx.host_header.empty() ? hostname : machine_from_to("http://" + ctx.host_header, hostname);
  if (!parsed) {
    stats.requests_by_action["Invalid"]++;
    stats.faults++;
    logger("sim")->info("malformed request from {}: {}", ctx.client_ip, parsed.error().message);
    done(fault_reply(wsman_fault_for(parsed.error()), sniff_message_id(body), fallback_machine));
    return std::nullopt;
  }
  stats.requests_by_action[short_action(parsed->action)]++;
  std::string machine = machine_from_to(parsed->to, fallback_machine);
  return ParsedRequest{std::move(parsed).value(), std::move(machine)};
}

void WinrsService::handle(const RequestContext& ctx, std::string body, ReplyCallback done) {
  auto parsed = parse_or_answer(ctx, body, model_.hostname(), stats_, done);
  if (!parsed) return;
  WsmanRequest& req = parsed->request;
  const std::string& machine = parsed->machine;
  auto fault = [&](const Fault& f) {
    stats_.faults++;
    done(fault_reply(f, req.message_id, machine));
  };

  if (req.resource_uri == ns::kResourceConfig ||
      istarts_with(req.resource_uri, std::string(ns::kResourceConfig) + "/")) {
    if (req.action == act::kGet) return done(on_config_get(req));
    return fault(action_not_supported_fault(req.action));
  }
  if (powershell_ && istarts_with(req.resource_uri, kPowerShellResourcePrefix))
    return powershell_->handle_parsed(ctx, req, machine, std::move(done));
  if (req.resource_uri != ns::kResourceCmd) {
    return fault(schema_validation_fault("the ResourceURI '" + req.resource_uri +
                                         "' is not served by this host (expected " + std::string(ns::kResourceCmd) +
                                         ")"));
  }
  if (req.action == act::kCreate) {
    auto reply = on_create(req, ctx, machine);
    if (reply.status != 200) stats_.faults++;
    return done(std::move(reply));
  }
  if (req.action != act::kDelete && req.action != act::kCommand && req.action != act::kSend &&
      req.action != act::kReceive && req.action != act::kSignal)
    return fault(action_not_supported_fault(req.action));

  auto shell_id = req.selector("ShellId");
  if (!shell_id) {
    Fault f = shell_not_found_fault("");
    f.message = "The WS-Management service cannot process the request because the ShellId selector is missing. ";
    f.fault_detail = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InsufficientSelectors";
    return fault(f);
  }
  if (req.action == act::kDelete) {
    auto reply = on_delete(req, machine);
    if (reply.status != 200) stats_.faults++;
    return done(std::move(reply));
  }
  auto it = shells_.find(*shell_id);
  if (it == shells_.end()) return fault(shell_not_found_fault(*shell_id));
  Shell& shell = it->second;
  shell.last_activity = std::chrono::steady_clock::now();
  if (req.action == act::kReceive) return on_receive(req, shell, machine, std::move(done));
  HttpReply reply;
  if (req.action == act::kCommand)
    reply = on_command(req, shell, machine);
  else if (req.action == act::kSend)
    reply = on_send(req, shell, machine);
  else
    reply = on_signal(req, shell, machine);
  if (reply.status != 200) stats_.faults++;
  done(std::move(reply));
}

HttpReply WinrsService::on_create(const WsmanRequest& req, const RequestContext& ctx, const std::string& machine) {
  auto shell_node = x::child(req.body, ns::kShell, "Shell");
  if (!shell_node)
    return fault_reply(schema_validation_fault("rsp:Shell is missing from the Create body"), req.message_id, machine);
  int& owned = shells_per_owner_[to_lower(ctx.user)];
  if (owned >= options_.max_shells_per_user) {
    logger("sim")->info("user {} exceeded MaxShellsPerUser ({})", ctx.user, options_.max_shells_per_user);
    return fault_reply(max_shells_fault(options_.max_shells_per_user), req.message_id, machine);
  }
  Shell shell;
  std::string requested_id = x::attribute(shell_node, "ShellId").value();
  shell.id = requested_id.empty() ? random_uuid() : to_upper(trim(requested_id));
  if (shells_.count(shell.id))
    return fault_reply(schema_validation_fault("a shell with ShellId " + shell.id + " already exists"), req.message_id,
                       machine);
  shell.owner = ctx.user;
  shell.client_ip = ctx.client_ip;
  shell.process.model = &model_;
  shell.process.user = ctx.user;
  shell.process.ps_start_ms = options_.ps_start_ms;
  if (auto cp = req.option("WINRS_CODEPAGE")) {
    try {
      shell.process.codepage = std::stoi(*cp);
    } catch (...) {
      return fault_reply(schema_validation_fault("WINRS_CODEPAGE '" + *cp + "' is not a number"), req.message_id,
                         machine);
    }
  }
  shell.process.no_profile = req.option_flag("WINRS_NOPROFILE", false);
  if (auto wd = x::child(shell_node, ns::kShell, "WorkingDirectory")) shell.process.working_directory = x::text(wd);
  if (auto env = x::child(shell_node, ns::kShell, "Environment"))
    for (auto v : x::children(env, ns::kShell, "Variable"))
      shell.process.shell_environment[x::attribute(v, "Name").value()] = v.text().get();
  if (auto in = x::child(shell_node, ns::kShell, "InputStreams")) shell.input_streams = x::text(in);
  if (auto out = x::child(shell_node, ns::kShell, "OutputStreams")) shell.output_streams = x::text(out);
  shell.idle_timeout_ms = options_.default_idle_timeout_ms;
  if (auto idle = x::child(shell_node, ns::kShell, "IdleTimeOut")) {
    auto ms = parse_duration_ms(x::text(idle));
    if (!ms)
      return fault_reply(schema_validation_fault("IdleTimeOut '" + x::text(idle) + "' is not an xs:duration"),
                         req.message_id, machine);
    shell.idle_timeout_ms = std::max(*ms, 1000LL);
  }
  shell.created = shell.last_activity = std::chrono::steady_clock::now();

  std::string address = req.to.empty() ? "http://" + machine + ":5985/wsman" : req.to;
  std::string body =
      "<x:ResourceCreated><a:Address>" + x::escape(address) + "</a:Address><a:ReferenceParameters><w:ResourceURI>" +
      std::string(ns::kResourceCmd) + "</w:ResourceURI><w:SelectorSet><w:Selector Name=\"ShellId\">" + shell.id +
      "</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>"
      "<rsp:Shell xmlns:rsp=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell\"><rsp:ShellId>" +
      shell.id + "</rsp:ShellId><rsp:ResourceUri>" + std::string(ns::kResourceCmd) + "</rsp:ResourceUri><rsp:Owner>" +
      x::escape(shell.owner) + "</rsp:Owner><rsp:ClientIP>" + x::escape(shell.client_ip) +
      "</rsp:ClientIP><rsp:IdleTimeOut>" + format_duration_seconds(shell.idle_timeout_ms) +
      "</rsp:IdleTimeOut><rsp:InputStreams>" + x::escape(shell.input_streams) +
      "</rsp:InputStreams><rsp:OutputStreams>" + x::escape(shell.output_streams) + "</rsp:OutputStreams>";
  if (!shell.process.working_directory.empty())
    body += "<rsp:WorkingDirectory>" + x::escape(shell.process.working_directory) + "</rsp:WorkingDirectory>";
  body +=
      "<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime><rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></"
      "rsp:Shell>";
  ++owned;
  stats_.shells_created++;
  logger("sim")->debug("shell {} created for {} (codepage {})", shell.id, shell.owner, shell.process.codepage);
  std::string id = shell.id;
  shells_.emplace(id, std::move(shell));
  stats_.winrs_shells_open = shells_.size();
  stats_.note_shells_open();
  return ok(act::kCreateResponse, req, body);
}

void WinrsService::erase_shell(const std::string& id) {
  auto it = shells_.find(id);
  if (it == shells_.end()) return;
  for (auto& [cid, cmd] : it->second.commands) {
    if (cmd->sleep_timer) cmd->sleep_timer->cancel();
    stop_command(*cmd, cmd->finished ? cmd->exit_code : -1073741510);
  }
  auto owner = to_lower(it->second.owner);
  if (auto o = shells_per_owner_.find(owner); o != shells_per_owner_.end() && --o->second <= 0)
    shells_per_owner_.erase(o);
  shells_.erase(it);
  stats_.winrs_shells_open = shells_.size();
  stats_.note_shells_open();
  count_commands();
}

void WinrsService::count_commands() {
  std::uint64_t running = 0;
  for (const auto& [id, shell] : shells_) running += shell.commands.size();
  stats_.winrs_commands_running = running;
  stats_.note_commands_running();
}

HttpReply WinrsService::on_delete(const WsmanRequest& req, const std::string& machine) {
  auto id = *req.selector("ShellId");
  if (!shells_.count(id)) return fault_reply(shell_not_found_fault(id), req.message_id, machine);
  erase_shell(id);
  logger("sim")->debug("shell {} deleted", id);
  return ok(act::kDeleteResponse, req, "");
}

HttpReply WinrsService::on_command(const WsmanRequest& req, Shell& shell, const std::string& machine) {
  auto line = x::child(req.body, ns::kShell, "CommandLine");
  if (!line)
    return fault_reply(schema_validation_fault("rsp:CommandLine is missing from the Command body"), req.message_id,
                       machine);
  auto cmd = std::make_shared<Command>();
  // Command text is taken verbatim (not trimmed inside): cmd.exe sees exactly what the client sent.
  cmd->command = std::string(trim(x::child(line, ns::kShell, "Command").text().get()));
  for (auto a : x::children(line, ns::kShell, "Arguments")) cmd->arguments.push_back(a.text().get());
  if (cmd->command.empty())
    return fault_reply(schema_validation_fault("rsp:Command is empty"), req.message_id, machine);
  cmd->skip_cmd_shell = req.option_flag("WINRS_SKIP_CMD_SHELL", false);
  if (cmd->skip_cmd_shell && command_line_length(cmd->command, cmd->arguments) > kMaxProcessCommandLine)
    return fault_reply(command_line_too_long_fault(), req.message_id, machine);
  if (cmd->skip_cmd_shell && !direct_executable_exists(cmd->command))
    return fault_reply(file_not_found_fault(), req.message_id, machine);
  std::string requested_id = x::attribute(line, "CommandId").value();
  cmd->id = requested_id.empty() ? random_uuid() : to_upper(trim(requested_id));
  if (shell.commands.count(cmd->id))
    return fault_reply(schema_validation_fault("a command with CommandId " + cmd->id + " already exists"),
                       req.message_id, machine);
  cmd->shell_id = shell.id;
  shell.commands[cmd->id] = cmd;
  stats_.commands++;
  count_commands();
  logger("sim")->debug("shell {} command {}: {}", shell.id, cmd->id, cmd->command);
  start_command(cmd, shell);
  return ok(act::kCommandResponse, req,
            "<rsp:CommandResponse><rsp:CommandId>" + cmd->id + "</rsp:CommandId></rsp:CommandResponse>");
}

void WinrsService::start_command(const std::shared_ptr<Command>& cmd, Shell& shell) {
  auto result = run_command_line(shell.process, cmd->command, cmd->arguments, cmd->skip_cmd_shell,
                                 cmd->stdin_closed ? &cmd->stdin_data : nullptr);
  if (!result) return;  // waits for stdin End
  cmd->started = true;
  cmd->stdin_data.clear();
  cmd->steps = std::move(result->steps);
  cmd->exit_code = result->exit_code;
  // Output is produced after the CommandResponse went out, like a real process starting.
  boost::asio::post(ioc_, [this, weak = std::weak_ptr<Command>(cmd)] {
    if (auto c = weak.lock(); c && !stopped_) advance(c);
  });
}

void WinrsService::advance(const std::shared_ptr<Command>& cmd) {
  while (cmd->next_step < cmd->steps.size() && !cmd->finished) {
    OutputStep& step = cmd->steps[cmd->next_step++];
    if (step.kind == OutputStep::Kind::kSleep) {
      cmd->sleep_timer = std::make_unique<boost::asio::steady_timer>(ioc_, std::chrono::milliseconds(step.sleep_ms));
      cmd->sleep_timer->async_wait([this, weak = std::weak_ptr<Command>(cmd)](const boost::system::error_code& ec) {
        if (ec || stopped_) return;
        if (auto c = weak.lock()) advance(c);
      });
      deliver_if_ready(*cmd);
      return;
    }
    cmd->pending.push_back(Chunk{step.kind == OutputStep::Kind::kStdout ? "stdout" : "stderr", std::move(step.data)});
  }
  if (cmd->next_step >= cmd->steps.size()) cmd->finished = true;
  deliver_if_ready(*cmd);
}

void WinrsService::stop_command(Command& cmd, int exit_code) {
  if (!cmd.finished) {
    cmd.finished = true;
    cmd.exit_code = exit_code;
    cmd.next_step = cmd.steps.size();
  }
  if (cmd.sleep_timer) cmd.sleep_timer->cancel();
  deliver_if_ready(cmd);
}

HttpReply WinrsService::on_send(const WsmanRequest& req, Shell& shell, const std::string& machine) {
  auto send = x::child(req.body, ns::kShell, "Send");
  if (!send)
    return fault_reply(schema_validation_fault("rsp:Send is missing from the Send body"), req.message_id, machine);
  for (auto stream : x::children(send, ns::kShell, "Stream")) {
    std::string cid = to_upper(trim(x::attribute(stream, "CommandId").value()));
    auto it = shell.commands.find(cid);
    if (it == shell.commands.end()) return fault_reply(command_not_found_fault(), req.message_id, machine);
    auto& cmd = it->second;
    auto bytes = base64_decode(x::text(stream));
    if (!bytes)
      return fault_reply(schema_validation_fault("the stdin Stream is not valid base64"), req.message_id, machine);
    if (cmd->stdin_closed) continue;  // a process that closed stdin ignores more input
    if (!cmd->started) {
      if (cmd->stdin_data.size() + bytes->size() > kMaxStdinBytes)
        return fault_reply(schema_validation_fault("stdin exceeds the simulator's 64 MiB limit"), req.message_id,
                           machine);
      cmd->stdin_data += *bytes;
    }
    std::string end = x::attribute(stream, "End").value();
    if (iequals(end, "true") || end == "1") {
      cmd->stdin_closed = true;
      if (!cmd->started && !cmd->finished) start_command(cmd, shell);
    }
  }
  return ok(act::kSendResponse, req, "<rsp:SendResponse/>");
}

HttpReply WinrsService::on_signal(const WsmanRequest& req, Shell& shell, const std::string& machine) {
  auto signal = x::child(req.body, ns::kShell, "Signal");
  if (!signal)
    return fault_reply(schema_validation_fault("rsp:Signal is missing from the Signal body"), req.message_id, machine);
  std::string cid = to_upper(trim(x::attribute(signal, "CommandId").value()));
  std::string code = to_lower(x::text(x::child(signal, ns::kShell, "Code")));
  auto it = shell.commands.find(cid);
  if (it == shell.commands.end()) return fault_reply(command_not_found_fault(), req.message_id, machine);
  auto cmd = it->second;
  constexpr int kCtrlCExit = -1073741510;  // STATUS_CONTROL_C_EXIT
  if (code.ends_with("/signal/terminate")) {
    stop_command(*cmd, kCtrlCExit);
    shell.commands.erase(it);
    count_commands();
  } else if (code.ends_with("/signal/ctrl_c") || code.ends_with("/signal/ctrl_break")) {
    stop_command(*cmd, kCtrlCExit);
    // pypsrp and others signal ctrl_c as their cleanup: the command is gone afterwards like on Windows.
    shell.commands.erase(it);
    count_commands();
  } else {
    return fault_reply(schema_validation_fault("unknown signal code '" + code + "'"), req.message_id, machine);
  }
  return ok(act::kSignalResponse, req, "<rsp:SignalResponse/>");
}

void WinrsService::on_receive(const WsmanRequest& req, Shell& shell, const std::string& machine, ReplyCallback done) {
  auto receive = x::child(req.body, ns::kShell, "Receive");
  auto desired = receive ? x::child(receive, ns::kShell, "DesiredStream") : pugi::xml_node();
  if (!desired) {
    stats_.faults++;
    return done(
        fault_reply(schema_validation_fault("rsp:Receive/rsp:DesiredStream is missing"), req.message_id, machine));
  }
  std::string cid = to_upper(trim(x::attribute(desired, "CommandId").value()));
  auto it = shell.commands.find(cid);
  if (it == shell.commands.end()) {
    stats_.faults++;
    return done(fault_reply(command_not_found_fault(), req.message_id, machine));
  }
  auto cmd = it->second;
  if (cmd->held) {
    // A new Receive replaces one still waiting: the old one ends as a normal timeout.
    stats_.timeouts++;
    stats_.faults++;
    finish_held(*cmd, fault_reply(timed_out_fault(), cmd->held->relates_to, cmd->held->machine));
  }
  auto held = std::make_unique<HeldReceive>();
  held->done = std::move(done);
  held->relates_to = req.message_id;
  held->machine = machine;
  std::string names = x::text(desired);
  if (names.empty()) names = "stdout stderr";
  std::size_t p = 0;
  while (p < names.size()) {
    auto sp = names.find(' ', p);
    std::string n = names.substr(p, sp == std::string::npos ? std::string::npos : sp - p);
    if (!n.empty() && std::find(held->streams.begin(), held->streams.end(), n) == held->streams.end())
      held->streams.push_back(n);
    if (sp == std::string::npos) break;
    p = sp + 1;
  }
  long long max_env = req.max_envelope_size.value_or(153600);
  held->budget = std::max(512LL, max_env - kReceiveEnvelopeOverhead);
  long long timeout_ms = std::min(req.operation_timeout_ms.value_or(options_.max_timeout_ms), options_.max_timeout_ms);
  held->timer = std::make_unique<boost::asio::steady_timer>(ioc_, std::chrono::milliseconds(timeout_ms));
  held->timer->async_wait([this, weak = std::weak_ptr<Command>(cmd)](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    auto c = weak.lock();
    if (!c || !c->held) return;
    stats_.timeouts++;
    stats_.faults++;
    finish_held(*c, fault_reply(timed_out_fault(), c->held->relates_to, c->held->machine));
  });
  cmd->held = std::move(held);
  deliver_if_ready(*cmd);
}

void WinrsService::finish_held(Command& cmd, HttpReply reply) {
  if (!cmd.held) return;
  auto held = std::move(cmd.held);
  if (held->timer) held->timer->cancel();
  held->done(std::move(reply));
}

void WinrsService::deliver_if_ready(Command& cmd) {
  if (!cmd.held) return;
  bool has_output = std::any_of(cmd.pending.begin(), cmd.pending.end(), [&](const Chunk& c) {
    return std::find(cmd.held->streams.begin(), cmd.held->streams.end(), c.stream) != cmd.held->streams.end();
  });
  if (!has_output && !cmd.finished) return;
  std::string body = receive_body(cmd, cmd.held->streams, cmd.held->budget);
  finish_held(cmd, HttpReply{200, response_envelope(act::kReceiveResponse, cmd.held->relates_to, body), false});
}

std::string WinrsService::receive_body(Command& cmd, const std::vector<std::string>& streams, long long budget) {
  auto wanted = [&](const std::string& name) {
    return std::find(streams.begin(), streams.end(), name) != streams.end();
  };
  std::string body = "<rsp:ReceiveResponse>";
  const std::string cid_attr = " CommandId=\"" + cmd.id + "\"";
  long long used = 0;
  for (auto it = cmd.pending.begin(); it != cmd.pending.end();) {
    if (!wanted(it->stream)) {
      ++it;
      continue;
    }
    long long overhead = 48 + static_cast<long long>(cid_attr.size());
    long long room_bytes = ((budget - used - overhead) / 4) * 3;
    if (room_bytes <= 0) break;  // the rest goes out with the next Receive
    std::string piece;
    std::string stream = it->stream;
    if (static_cast<long long>(it->data.size()) <= room_bytes) {
      piece = std::move(it->data);
      it = cmd.pending.erase(it);
    } else {
      piece = it->data.substr(0, static_cast<std::size_t>(room_bytes));
      it->data.erase(0, static_cast<std::size_t>(room_bytes));
    }
    std::string encoded = base64_encode(piece);
    used += overhead + static_cast<long long>(encoded.size());
    body += "<rsp:Stream Name=\"" + stream + "\"" + cid_attr + ">" + encoded + "</rsp:Stream>";
  }
  bool drained = std::none_of(cmd.pending.begin(), cmd.pending.end(), [&](const Chunk& c) { return wanted(c.stream); });
  if (cmd.finished && drained) {
    for (const auto& s : streams) body += "<rsp:Stream Name=\"" + s + "\"" + cid_attr + " End=\"true\"></rsp:Stream>";
    body += "<rsp:CommandState" + cid_attr + " State=\"" + std::string(act::kStateDone) + "\"><rsp:ExitCode>" +
            std::to_string(cmd.exit_code) + "</rsp:ExitCode></rsp:CommandState>";
  } else {
    body += "<rsp:CommandState" + cid_attr + " State=\"" + std::string(act::kStateRunning) + "\"></rsp:CommandState>";
  }
  body += "</rsp:ReceiveResponse>";
  return body;
}

void WinrsService::schedule_idle_sweep() {
  idle_timer_.expires_after(1s);
  idle_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    sweep_idle_shells();
    schedule_idle_sweep();
  });
}

void WinrsService::sweep_idle_shells() {
  auto now = std::chrono::steady_clock::now();
  std::vector<std::string> expired;
  for (auto& [id, shell] : shells_) {
    bool waiting =
        std::any_of(shell.commands.begin(), shell.commands.end(), [](auto& kv) { return kv.second->held != nullptr; });
    if (waiting) continue;
    if (now - shell.last_activity > std::chrono::milliseconds(shell.idle_timeout_ms)) expired.push_back(id);
  }
  for (auto& id : expired) {
    logger("sim")->info("shell {} idle for longer than its IdleTimeOut: deleted", id);
    erase_shell(id);
  }
}

HttpReply WinrsService::on_config_get(const WsmanRequest& req) {
  std::string body =
      "<cfg:Config xmlns:cfg=\"http://schemas.microsoft.com/wbem/wsman/1/config\"><cfg:MaxEnvelopeSizekb>" +
      std::to_string(options_.max_envelope_kb) + "</cfg:MaxEnvelopeSizekb><cfg:MaxTimeoutms>" +
      std::to_string(options_.max_timeout_ms) +
      "</cfg:MaxTimeoutms><cfg:MaxBatchItems>32000</cfg:MaxBatchItems><cfg:MaxProviderRequests>4294967295</"
      "cfg:MaxProviderRequests>"
      "<cfg:Client><cfg:NetworkDelayms>5000</cfg:NetworkDelayms><cfg:URLPrefix>wsman</"
      "cfg:URLPrefix><cfg:AllowUnencrypted>false</cfg:AllowUnencrypted>"
      "<cfg:Auth><cfg:Basic>true</cfg:Basic><cfg:Digest>true</cfg:Digest><cfg:Kerberos>true</"
      "cfg:Kerberos><cfg:Negotiate>true</cfg:Negotiate>"
      "<cfg:Certificate>true</cfg:Certificate><cfg:CredSSP>false</cfg:CredSSP></"
      "cfg:Auth><cfg:DefaultPorts><cfg:HTTP>5985</cfg:HTTP>"
      "<cfg:HTTPS>5986</cfg:HTTPS></cfg:DefaultPorts><cfg:TrustedHosts></cfg:TrustedHosts></cfg:Client><cfg:Service>"
      "<cfg:RootSDDL>O:NSG:BAD:P(A;;GA;;;BA)(A;;GR;;;IU)S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)</cfg:RootSDDL>"
      "<cfg:MaxConcurrentOperations>4294967295</cfg:MaxConcurrentOperations><cfg:MaxConcurrentOperationsPerUser>1500</"
      "cfg:MaxConcurrentOperationsPerUser>"
      "<cfg:EnumerationTimeoutms>240000</cfg:EnumerationTimeoutms><cfg:MaxConnections>300</cfg:MaxConnections>"
      "<cfg:MaxPacketRetrievalTimeSeconds>120</cfg:MaxPacketRetrievalTimeSeconds><cfg:AllowUnencrypted>false</"
      "cfg:AllowUnencrypted>"
      "<cfg:Auth><cfg:Basic>true</cfg:Basic><cfg:Kerberos>true</cfg:Kerberos><cfg:Negotiate>true</cfg:Negotiate>"
      "<cfg:Certificate>false</cfg:Certificate><cfg:CredSSP>false</cfg:CredSSP><cfg:CbtHardeningLevel>Relaxed</"
      "cfg:CbtHardeningLevel></cfg:Auth>"
      "<cfg:DefaultPorts><cfg:HTTP>5985</cfg:HTTP><cfg:HTTPS>5986</cfg:HTTPS></cfg:DefaultPorts><cfg:IPv4Filter>*</"
      "cfg:IPv4Filter>"
      "<cfg:IPv6Filter>*</cfg:IPv6Filter><cfg:EnableCompatibilityHttpListener>false</"
      "cfg:EnableCompatibilityHttpListener>"
      "<cfg:EnableCompatibilityHttpsListener>false</cfg:EnableCompatibilityHttpsListener><cfg:CertificateThumbprint></"
      "cfg:CertificateThumbprint>"
      "<cfg:AllowRemoteAccess>true</cfg:AllowRemoteAccess></cfg:Service><cfg:Winrs><cfg:AllowRemoteShellAccess>true</"
      "cfg:AllowRemoteShellAccess>"
      "<cfg:IdleTimeout>" +
      std::to_string(options_.default_idle_timeout_ms) +
      "</cfg:IdleTimeout><cfg:MaxConcurrentUsers>2147483647</cfg:MaxConcurrentUsers><cfg:MaxShellRunTime>2147483647</"
      "cfg:MaxShellRunTime>"
      "<cfg:MaxProcessesPerShell>2147483647</cfg:MaxProcessesPerShell><cfg:MaxMemoryPerShellMB>2147483647</"
      "cfg:MaxMemoryPerShellMB>"
      "<cfg:MaxShellsPerUser>" +
      std::to_string(options_.max_shells_per_user) + "</cfg:MaxShellsPerUser></cfg:Winrs></cfg:Config>";
  return ok(act::kGetResponse, req, body);
}

}  // namespace wincert::sim
