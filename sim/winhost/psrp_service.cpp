#include "sim/winhost/psrp_service.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <cctype>

#include "common/encoding.hpp"
#include "common/log.hpp"
#include "sim/winhost/error_reply.hpp"
#include "sim/winhost/psrp_server_messages.hpp"
#include "sim/winhost/windows_model.hpp"
#include "sim/winhost/winrs_service.hpp"
#include "winrm/namespaces.hpp"
#include "winrm/xml.hpp"

namespace wincert::sim {
namespace x = winrm::xml;
namespace ns = winrm::ns;
namespace act = winrm::action;
namespace psrp = winrm::psrp;
namespace msg = psrp_server;
using namespace std::chrono_literals;

namespace {
constexpr long long kReceiveEnvelopeOverhead = 1600;                  // header + CommandState
constexpr std::string_view kSignalStop = "powershell/signal/crtl_c";  // sic: what PowerShell's plugin compares
constexpr std::string_view kServerProtocolVersion = "2.3";

HttpReply ok(std::string_view action, const WsmanRequest& req, std::string_view body) {
  return HttpReply{200, response_envelope(action, req.message_id, body), false};
}

// Windows' answer to a configuration name it has no plugin for. Not recorded in the shared fixtures: the code
// and texts are those of WinRM's ERROR_WSMAN_RESOURCE_NOT_FOUND (0x80338000) with PowerShell's well-known
// message "Cannot find the <name> session configuration in the WSMan: drive on the <host> computer."
Fault unknown_configuration_fault(std::string_view name, std::string_view machine) {
  return Fault{"s:Sender",
               "w:DestinationUnreachable",
               "The WS-Management service cannot process the request. The resource URI is not valid or the "
               "resource is not found. ",
               2150858752UL,
               "The WS-Management service cannot process the request. Cannot find the " + std::string(name) +
                   " session configuration in the WSMan: drive on the " + std::string(machine) + " computer. ",
               "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidResourceURI",
               false};
}

// The PowerShell plugin refuses a Create whose protocolversion option is missing or not 2.x [S 3.2.5.3.1].
// The spec does not give the fault; this is WinRM's invalid-option fault (w:InvalidOptions) with the
// schema-validation code, the closest real pair.
Fault protocol_version_fault(std::string_view detail) {
  return Fault{"s:Sender",
               "w:InvalidOptions",
               "One of the options in the request is not valid. ",
               winrm::fault_code::kSchemaValidation,
               "The PowerShell plugin cannot open the runspace pool: " + std::string(detail),
               "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidValue",
               false};
}

std::string parameter_string(const psrp::PipelineCommand& command, std::string_view name) {
  for (const auto& p : command.parameters)
    if (iequals(p.name, name)) return p.value.is_string() ? p.value.text() : p.value.to_display_string();
  return {};
}

bool iends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && iequals(s.substr(s.size() - suffix.size()), suffix);
}

bool is_load_module_script(const psrp::PipelineCommand& command) {
  return command.is_script && command.command.find("WincertOps") != std::string::npos &&
         command.command.find("New-Module") != std::string::npos;
}
}  // namespace

std::optional<EndpointKind> endpoint_for(std::string_view name) {
  if (iequals(name, "Microsoft.PowerShell") || iequals(name, "PowerShell.7") || iequals(name, "Microsoft.PowerShell32"))
    return EndpointKind::kFullLanguage;
  if (iequals(name, "WincertAgent")) return EndpointKind::kJea;
  return std::nullopt;
}

const std::vector<std::string>& wincert_functions() {
  static const std::vector<std::string> names = {"Invoke-WincertEcho",
                                                 "Invoke-WincertHostInfo",
                                                 "Invoke-WincertStoreInventory",
                                                 "Invoke-WincertCertAdd",
                                                 "Invoke-WincertCertRemove",
                                                 "Invoke-WincertIisListBindings",
                                                 "Invoke-WincertIisBind",
                                                 "Invoke-WincertIisUnbind",
                                                 "Invoke-WincertIisRemoveCertIfUnused",
                                                 "Invoke-WincertSqlListInstances",
                                                 "Invoke-WincertSqlBind",
                                                 "Invoke-WincertSqlUnbind",
                                                 "Invoke-WincertSqlRestart",
                                                 "Invoke-WincertCsrCreate",
                                                 "Invoke-WincertCsrAccept"};
  return names;
}

std::optional<std::string> op_for_function(std::string_view function) {
  const auto& names = wincert_functions();
  auto it = std::find_if(names.begin(), names.end(), [&](const std::string& n) { return iequals(n, function); });
  if (it == names.end()) return std::nullopt;
  std::string_view rest = std::string_view(*it).substr(std::string_view("Invoke-Wincert").size());
  std::string op;
  for (char c : rest) {
    if (std::isupper(static_cast<unsigned char>(c)) && !op.empty()) op += '-';
    op += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return op;
}

PsrpService::PsrpService(boost::asio::io_context& ioc, WindowsModel& model, Stats& stats, PsrpOptions options,
                         std::map<std::string, int>* shells_per_owner)
    : ioc_(ioc),
      model_(model),
      stats_(stats),
      options_(options),
      shells_per_owner_(shells_per_owner ? *shells_per_owner : own_shells_per_owner_),
      idle_timer_(ioc) {
  schedule_idle_sweep();
}

PsrpService::~PsrpService() { shutdown(); }

void PsrpService::shutdown() {
  if (stopped_) return;
  stopped_ = true;
  idle_timer_.cancel();
  for (auto& [id, pool] : pools_) {
    if (pool.open_timer) pool.open_timer->cancel();
    for (auto& t : pool.start_timers) t->cancel();
    if (pool.held && pool.held->timer) pool.held->timer->cancel();
    for (auto& [cid, p] : pool.pipelines) {
      if (p->timer) p->timer->cancel();
      if (p->held && p->held->timer) p->held->timer->cancel();
    }
  }
}

void PsrpService::handle(const RequestContext& ctx, std::string body, ReplyCallback done) {
  auto parsed = parse_or_answer(ctx, body, model_.hostname(), stats_, done);
  if (!parsed) return;
  handle_parsed(ctx, parsed->request, parsed->machine, std::move(done));
}

void PsrpService::count_open() {
  std::uint64_t running = 0;
  for (const auto& [id, pool] : pools_)
    for (const auto& [cid, pipeline] : pool.pipelines) running += pipeline->done_delivered ? 0 : 1;
  stats_.psrp_pools_open = pools_.size();
  stats_.note_shells_open();
  stats_.psrp_pipelines_running = running;
  stats_.note_commands_running();
}

void PsrpService::handle_parsed(const RequestContext& ctx, WsmanRequest& req, const std::string& machine,
                                ReplyCallback reply_done) {
  // Every request may open or close a pool or a pipeline: the host's figures are brought up to date first.
  auto done = [this, reply_done = std::move(reply_done)](HttpReply r) {
    count_open();
    reply_done(std::move(r));
  };
  auto fault = [&](const Fault& f) {
    stats_.faults++;
    done(fault_reply(f, req.message_id, machine));
  };
  auto reply = [&](HttpReply r) {
    if (r.status != 200) stats_.faults++;
    done(std::move(r));
  };
  if (!istarts_with(req.resource_uri, kPowerShellResourcePrefix))
    return fault(schema_validation_fault("the ResourceURI '" + req.resource_uri + "' is not a PowerShell endpoint"));
  if (req.action == act::kCreate) return reply(on_create(req, ctx, machine));
  if (req.action != act::kDelete && req.action != act::kCommand && req.action != act::kSend &&
      req.action != act::kReceive && req.action != act::kSignal)
    return fault(action_not_supported_fault(req.action));
  auto shell_id = req.selector("ShellId");
  if (!shell_id) {
    Fault f = shell_not_found_fault("");
    f.message = "The WS-Management service cannot process the request because the ShellId selector is missing. ";
    return fault(f);
  }
  auto it = pools_.find(to_upper(trim(*shell_id)));
  if (it == pools_.end() || !iequals(it->second.resource_uri, req.resource_uri))
    return fault(shell_not_found_fault(*shell_id));
  Pool& pool = it->second;
  pool.last_activity = std::chrono::steady_clock::now();
  if (req.action == act::kDelete) {
    erase_pool(pool.id);
    return reply(ok(act::kDeleteResponse, req, ""));
  }
  if (req.action == act::kReceive) return on_receive(req, pool, machine, std::move(done));
  if (req.action == act::kCommand) return reply(on_command(req, pool, machine));
  if (req.action == act::kSend) return reply(on_send(req, pool, machine));
  return reply(on_signal(req, pool, machine));
}

HttpReply PsrpService::on_create(const WsmanRequest& req, const RequestContext& ctx, const std::string& machine) {
  const std::string name = req.resource_uri.substr(kPowerShellResourcePrefix.size());
  auto endpoint = endpoint_for(name);
  if (!endpoint) return fault_reply(unknown_configuration_fault(name, machine), req.message_id, machine);
  auto version = req.option("protocolversion");
  if (!version)
    return fault_reply(protocol_version_fault("the protocolversion option is missing"), req.message_id, machine);
  if (!version->starts_with("2."))
    return fault_reply(protocol_version_fault("protocol version " + *version + " is not 2.x"), req.message_id, machine);
  auto shell_node = x::child(req.body, ns::kShell, "Shell");
  if (!shell_node)
    return fault_reply(schema_validation_fault("rsp:Shell is missing from the Create body"), req.message_id, machine);
  auto creation = shell_node.child("creationXml");  // default namespace .../powershell
  if (!creation)
    for (auto c : shell_node.children())
      if (std::string_view(c.name()).ends_with("creationXml")) creation = c;
  if (!creation)
    return fault_reply(schema_validation_fault("creationXml is missing from rsp:Shell"), req.message_id, machine);
  int& owned = shells_per_owner_[to_lower(ctx.user)];
  if (owned >= options_.max_shells_per_user)
    return fault_reply(max_shells_fault(options_.max_shells_per_user), req.message_id, machine);

  Pool pool;
  pool.input = psrp::Defragmenter(psrp::DefragmenterLimits{options_.max_message_bytes, 64});
  auto bytes = base64_decode(x::text(creation));
  if (!bytes) return fault_reply(schema_validation_fault("creationXml is not base64"), req.message_id, machine);
  auto messages = pool.input.feed(*bytes);
  if (!messages)
    return fault_reply(schema_validation_fault("creationXml: " + messages.error().message), req.message_id, machine);
  bool have_capability = false, have_init = false;
  for (const auto& raw : *messages) {
    auto m = psrp::decode_message(raw);
    if (!m) return fault_reply(schema_validation_fault("creationXml: " + m.error().message), req.message_id, machine);
    auto body = psrp::parse_clixml(m->data);
    if (!body)
      return fault_reply(schema_validation_fault("creationXml: " + body.error().message), req.message_id, machine);
    pool.rpid = m->runspace_pool_id;
    if (m->type == psrp::MessageType::kSessionCapability) {
      auto v = msg::parse_client_protocol_version(*body);
      if (!v) return fault_reply(schema_validation_fault(v.error().message), req.message_id, machine);
      have_capability = true;
    } else if (m->type == psrp::MessageType::kInitRunspacePool) {
      auto init = msg::parse_init_runspace_pool(*body);
      if (!init) return fault_reply(schema_validation_fault(init.error().message), req.message_id, machine);
      pool.min_runspaces = init->min_runspaces;
      pool.max_runspaces = init->max_runspaces;
      have_init = true;
    }
  }
  if (!have_capability || !have_init)
    return fault_reply(schema_validation_fault("creationXml must carry SESSION_CAPABILITY and INIT_RUNSPACEPOOL"),
                       req.message_id, machine);
  std::string requested = x::attribute(shell_node, "ShellId").value();
  pool.id = requested.empty() ? pool.rpid.to_upper_string() : to_upper(trim(requested));
  if (pools_.count(pool.id))
    return fault_reply(schema_validation_fault("a shell with ShellId " + pool.id + " already exists"), req.message_id,
                       machine);
  pool.owner = ctx.user;
  pool.client_ip = ctx.client_ip;
  pool.resource_uri = req.resource_uri;
  pool.endpoint = *endpoint;
  pool.process.model = &model_;
  pool.process.user = ctx.user;
  pool.idle_timeout_ms = options_.default_idle_timeout_ms;
  if (auto idle = x::child(shell_node, ns::kShell, "IdleTimeOut")) {
    auto ms = parse_duration_ms(x::text(idle));
    if (!ms)
      return fault_reply(schema_validation_fault("IdleTimeOut '" + x::text(idle) + "' is not an xs:duration"),
                         req.message_id, machine);
    pool.idle_timeout_ms = std::max(*ms, 1000LL);
  }
  pool.last_activity = std::chrono::steady_clock::now();

  std::string address = req.to.empty() ? "http://" + machine + ":5985/wsman" : req.to;
  std::string body =
      "<x:ResourceCreated><a:Address>" + x::escape(address) + "</a:Address><a:ReferenceParameters><w:ResourceURI>" +
      x::escape(pool.resource_uri) + "</w:ResourceURI><w:SelectorSet><w:Selector Name=\"ShellId\">" + pool.id +
      "</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>"
      "<rsp:Shell xmlns:rsp=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell\"><rsp:ShellId>" +
      pool.id + "</rsp:ShellId><rsp:ResourceUri>" + x::escape(pool.resource_uri) + "</rsp:ResourceUri><rsp:Owner>" +
      x::escape(pool.owner) + "</rsp:Owner><rsp:ClientIP>" + x::escape(pool.client_ip) +
      "</rsp:ClientIP><rsp:ProcessId>" + std::to_string(4000 + pools_.size()) + "</rsp:ProcessId><rsp:IdleTimeOut>" +
      format_duration_seconds(pool.idle_timeout_ms) +
      "</rsp:IdleTimeOut><rsp:InputStreams>stdin pr</rsp:InputStreams><rsp:OutputStreams>stdout</"
      "rsp:OutputStreams><rsp:MaxIdleTimeOut>PT2147483.647S</rsp:MaxIdleTimeOut><rsp:Locale>en-US</"
      "rsp:Locale><rsp:DataLocale>en-US</rsp:DataLocale><rsp:CompressionMode>NoCompression</"
      "rsp:CompressionMode><rsp:ProfileLoaded>Yes</rsp:ProfileLoaded><rsp:Encoding>UTF8</rsp:Encoding>"
      "<rsp:BufferMode>Block</rsp:BufferMode><rsp:State>Connected</rsp:State><rsp:ShellRunTime>P0DT0H0M0S</"
      "rsp:ShellRunTime><rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>";
  ++owned;
  stats_.psrp_pools_opened++;
  stats_.shells_created++;
  // The server's first two messages go out at once; the pool is Opened once its MinRunspaces have started.
  // SESSION_CAPABILITY has an all-zero RPID, as every recorded Windows server sends it (psrp.md §2.2).
  queue(pool, pool.out,
        msg::to_client(psrp::MessageType::kSessionCapability, psrp::Guid{}, psrp::Guid{},
                       msg::session_capability_body(kServerProtocolVersion)));
  queue(pool, pool.out,
        msg::to_client(psrp::MessageType::kApplicationPrivateData, pool.rpid, psrp::Guid{},
                       msg::application_private_data_body(model_.ps_version())));
  const std::string id = pool.id;
  const int min = pool.min_runspaces;
  pool.open_timer = std::make_unique<boost::asio::steady_timer>(
      ioc_, std::chrono::milliseconds(options_.ps_start_ms * pool.min_runspaces));
  pools_.emplace(id, std::move(pool));
  pools_.at(id).open_timer->async_wait([this, id, min](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    auto it = pools_.find(id);
    if (it == pools_.end()) return;
    Pool& p = it->second;
    p.runspaces.resize(static_cast<std::size_t>(min));
    stats_.psrp_runspaces_started += static_cast<std::uint64_t>(min);
    p.opened = true;
    queue(
        p, p.out,
        msg::to_client(psrp::MessageType::kRunspacePoolState, p.rpid, psrp::Guid{}, msg::runspace_pool_state_body(2)));
    deliver_pool(p);
    dispatch(p);
  });
  logger("sim")->debug("runspace pool {} ({}) created for {}, runspaces {}..{}", id, name, ctx.user, min,
                       pools_.at(id).max_runspaces);
  return ok(act::kCreateResponse, req, body);
}

void PsrpService::erase_pool(const std::string& id) {
  auto it = pools_.find(id);
  if (it == pools_.end()) return;
  Pool& pool = it->second;
  if (pool.open_timer) pool.open_timer->cancel();
  for (auto& t : pool.start_timers) t->cancel();
  if (pool.held) {
    auto held = std::move(pool.held);
    held->timer->cancel();
    held->done(fault_reply(shell_not_found_fault(id), held->relates_to, held->machine));
  }
  for (auto& [cid, p] : pool.pipelines) {
    if (p->timer) p->timer->cancel();
    if (p->held) {
      auto held = std::move(p->held);
      held->timer->cancel();
      held->done(fault_reply(command_not_found_fault(), held->relates_to, held->machine));
    }
  }
  auto owner = to_lower(pool.owner);
  if (auto o = shells_per_owner_.find(owner); o != shells_per_owner_.end() && --o->second <= 0)
    shells_per_owner_.erase(o);
  pools_.erase(it);
  count_open();
}

void PsrpService::queue(Pool& pool, std::deque<OutMessage>& out, const psrp::Message& message) {
  OutMessage m;
  m.object_id = ++pool.next_object_id;
  m.bytes = psrp::encode_message(message, true);  // servers send a UTF-8 BOM (psrp.md §2.2)
  out.push_back(std::move(m));
}

Status PsrpService::feed_pool(Pool& pool, std::string_view bytes) {
  WINCERT_ASSIGN_OR_RETURN(auto messages, pool.input.feed(bytes));
  for (const auto& raw : messages) {
    WINCERT_ASSIGN_OR_RETURN(auto m, psrp::decode_message(raw));
    WINCERT_ASSIGN_OR_RETURN(auto body, psrp::parse_clixml(m.data));
    if (m.type == psrp::MessageType::kSetMaxRunspaces || m.type == psrp::MessageType::kSetMinRunspaces) {
      const bool max = m.type == psrp::MessageType::kSetMaxRunspaces;
      WINCERT_ASSIGN_OR_RETURN(auto call, msg::parse_runspace_call(body, max ? "MaxRunspaces" : "MinRunspaces"));
      bool accepted = *call.value >= 1 && *call.value <= 1024 &&
                      (max ? *call.value >= pool.min_runspaces : *call.value <= pool.max_runspaces);
      if (accepted) (max ? pool.max_runspaces : pool.min_runspaces) = *call.value;
      queue(pool, pool.out,
            msg::to_client(psrp::MessageType::kRunspaceAvailability, pool.rpid, psrp::Guid{},
                           msg::runspace_availability_body(call.call_id, psrp::PsValue::boolean(accepted))));
      if (accepted && max) dispatch(pool);
    } else if (m.type == psrp::MessageType::kGetAvailableRunspaces) {
      WINCERT_ASSIGN_OR_RETURN(auto call, msg::parse_runspace_call(body, ""));
      std::int64_t busy = std::count_if(pool.runspaces.begin(), pool.runspaces.end(), [](auto& r) { return r.busy; });
      queue(pool, pool.out,
            msg::to_client(
                psrp::MessageType::kRunspaceAvailability, pool.rpid, psrp::Guid{},
                msg::runspace_availability_body(call.call_id, psrp::PsValue::int64(pool.max_runspaces - busy))));
    }
    // Other pool messages (RESET_RUNSPACE_STATE, PUBLIC_KEY) are accepted and not modelled.
  }
  deliver_pool(pool);
  return {};
}

Status PsrpService::feed_pipeline(Pool& pool, const std::shared_ptr<Pipeline>& pipeline, std::string_view bytes) {
  WINCERT_ASSIGN_OR_RETURN(auto messages, pipeline->input.feed(bytes));
  for (const auto& raw : messages) {
    WINCERT_ASSIGN_OR_RETURN(auto m, psrp::decode_message(raw));
    if (m.type != psrp::MessageType::kCreatePipeline) continue;  // PIPELINE_INPUT and the like: not modelled
    if (pipeline->state != PipelineState::kReceiving)
      return Error::invalid_argument("a second CREATE_PIPELINE for command " + pipeline->id);
    WINCERT_ASSIGN_OR_RETURN(auto body, psrp::parse_clixml(m.data));
    WINCERT_ASSIGN_OR_RETURN(auto created, msg::parse_create_pipeline(body));
    pipeline->pid = m.pipeline_id;
    pipeline->commands = std::move(created.commands);
    submit(pool, pipeline);
  }
  return {};
}

HttpReply PsrpService::on_command(const WsmanRequest& req, Pool& pool, const std::string& machine) {
  auto line = x::child(req.body, ns::kShell, "CommandLine");
  if (!line)
    return fault_reply(schema_validation_fault("rsp:CommandLine is missing from the Command body"), req.message_id,
                       machine);
  auto pipeline = std::make_shared<Pipeline>();
  pipeline->input = psrp::Defragmenter(psrp::DefragmenterLimits{options_.max_message_bytes, 16});
  std::string requested = x::attribute(line, "CommandId").value();
  pipeline->id = requested.empty() ? random_uuid() : to_upper(trim(requested));
  if (pool.pipelines.count(pipeline->id))
    return fault_reply(schema_validation_fault("a command with CommandId " + pipeline->id + " already exists"),
                       req.message_id, machine);
  auto bytes = base64_decode(x::text(x::child(line, ns::kShell, "Arguments")));
  if (!bytes) return fault_reply(schema_validation_fault("rsp:Arguments is not base64"), req.message_id, machine);
  pool.pipelines[pipeline->id] = pipeline;
  stats_.psrp_pipelines++;
  stats_.commands++;
  if (auto st = feed_pipeline(pool, pipeline, *bytes); !st) {
    pool.pipelines.erase(pipeline->id);
    return fault_reply(schema_validation_fault("CREATE_PIPELINE: " + st.error().message), req.message_id, machine);
  }
  return ok(act::kCommandResponse, req,
            "<rsp:CommandResponse><rsp:CommandId>" + pipeline->id + "</rsp:CommandId></rsp:CommandResponse>");
}

HttpReply PsrpService::on_send(const WsmanRequest& req, Pool& pool, const std::string& machine) {
  auto send = x::child(req.body, ns::kShell, "Send");
  if (!send)
    return fault_reply(schema_validation_fault("rsp:Send is missing from the Send body"), req.message_id, machine);
  for (auto stream : x::children(send, ns::kShell, "Stream")) {
    auto bytes = base64_decode(x::text(stream));
    if (!bytes) return fault_reply(schema_validation_fault("the Stream is not valid base64"), req.message_id, machine);
    if (x::attribute(stream, "Name").value() == std::string("pr")) continue;  // host responses: no host calls here
    std::string cid = to_upper(trim(x::attribute(stream, "CommandId").value()));
    Status st;
    if (cid.empty()) {
      st = feed_pool(pool, *bytes);
    } else {
      auto it = pool.pipelines.find(cid);
      if (it == pool.pipelines.end()) return fault_reply(command_not_found_fault(), req.message_id, machine);
      st = feed_pipeline(pool, it->second, *bytes);
    }
    if (!st) return fault_reply(schema_validation_fault(st.error().message), req.message_id, machine);
  }
  return ok(act::kSendResponse, req, "<rsp:SendResponse/>");
}

HttpReply PsrpService::on_signal(const WsmanRequest& req, Pool& pool, const std::string& machine) {
  auto signal = x::child(req.body, ns::kShell, "Signal");
  if (!signal)
    return fault_reply(schema_validation_fault("rsp:Signal is missing from the Signal body"), req.message_id, machine);
  std::string cid = to_upper(trim(x::attribute(signal, "CommandId").value()));
  std::string code = x::text(x::child(signal, ns::kShell, "Code"));
  auto it = pool.pipelines.find(cid);
  if (it == pool.pipelines.end()) return fault_reply(command_not_found_fault(), req.message_id, machine);
  auto pipeline = it->second;
  if (code == kSignalStop || code.ends_with("/" + std::string(kSignalStop))) {
    // Stop: the pipeline ends Stopped and the client reads that state with its next Receive.
    if (pipeline->state != PipelineState::kDone) finish(pool, *pipeline, 3, msg::pipeline_stopped_record());
  } else if (iends_with(code, "/signal/terminate") || iends_with(code, "/signal/ctrl_c")) {
    // Terminate (and the MS-WSMV ctrl_c, which the plugin treats as close): the command is discarded.
    if (pipeline->state != PipelineState::kDone) finish(pool, *pipeline, 3, msg::pipeline_stopped_record());
    if (pipeline->held) {
      auto held = std::move(pipeline->held);
      held->timer->cancel();
      held->done(fault_reply(command_not_found_fault(), held->relates_to, held->machine));
    }
    pool.pipelines.erase(cid);
  } else {
    return fault_reply(schema_validation_fault("unknown signal code '" + code + "'"), req.message_id, machine);
  }
  return ok(act::kSignalResponse, req, "<rsp:SignalResponse/>");
}

void PsrpService::submit(Pool& pool, const std::shared_ptr<Pipeline>& pipeline) {
  pipeline->state = PipelineState::kWaiting;
  pool.waiting.push_back(pipeline->id);
  dispatch(pool);
}

void PsrpService::dispatch(Pool& pool) {
  if (!pool.opened) return;
  while (!pool.waiting.empty()) {
    auto it = pool.pipelines.find(pool.waiting.front());
    if (it == pool.pipelines.end() || it->second->state != PipelineState::kWaiting) {
      pool.waiting.pop_front();
      continue;
    }
    auto free = std::find_if(pool.runspaces.begin(), pool.runspaces.end(), [](const Runspace& r) { return !r.busy; });
    if (free != pool.runspaces.end()) {
      auto pipeline = it->second;
      pool.waiting.pop_front();
      free->busy = true;
      pipeline->runspace = static_cast<int>(free - pool.runspaces.begin());
      pipeline->state = PipelineState::kRunning;
      run(pool, pipeline);
      continue;
    }
    // No free runspace: open one for each waiting pipeline not yet covered, while the pool may grow (each one
    // charged like any PowerShell start); the rest wait for a runspace to come free.
    const auto waiting = static_cast<int>(pool.waiting.size());
    while (pool.starting < waiting && static_cast<int>(pool.runspaces.size()) + pool.starting < pool.max_runspaces)
      start_runspace_then_dispatch(pool);
    return;
  }
}

void PsrpService::start_runspace_then_dispatch(Pool& pool) {
  ++pool.starting;
  stats_.psrp_runspaces_started++;  // counted when started: a client may be done before it is ready
  auto& timer = pool.start_timers.emplace_back(
      std::make_unique<boost::asio::steady_timer>(ioc_, std::chrono::milliseconds(options_.ps_start_ms)));
  timer->async_wait([this, id = pool.id](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    auto it = pools_.find(id);
    if (it == pools_.end()) return;
    --it->second.starting;
    it->second.runspaces.emplace_back();
    dispatch(it->second);
  });
}

void PsrpService::run(Pool& pool, const std::shared_ptr<Pipeline>& pipeline) {
  Runspace& runspace = pool.runspaces[static_cast<std::size_t>(pipeline->runspace)];
  const bool jea = pool.endpoint == EndpointKind::kJea;
  const psrp::PipelineCommand& first = pipeline->commands.front();
  if (first.is_script) {
    if (jea) return finish(pool, *pipeline, 5, msg::scripts_not_allowed_record(first.command));
    if (is_load_module_script(first)) {
      runspace.module_version = parameter_string(first, "Version");
      return finish(pool, *pipeline, 4);
    }
    // Other script text: the simulator's small PowerShell interpreter; each stdout line is one string object.
    ProgramResult result = run_powershell_script(pool.process, first.command, "{}", false);
    pipeline->steps = std::move(result.steps);
    play_steps(pool.id, pipeline);
    return;
  }
  // A command by name. On a full endpoint the module's functions exist once the load script ran in this
  // runspace; under JEA the role capability makes them (and only them) visible.
  auto op = op_for_function(first.command);
  if (!op || (!jea && !runspace.module_version))
    return finish(pool, *pipeline, 5, msg::command_not_found_record(first.command));
  auto args = nlohmann::json::parse(parameter_string(first, "ArgsJson"), nullptr, false);
  OperationOutcome outcome;
  if (args.is_discarded())
    outcome = OperationOutcome::failure("the argument is not JSON", "InvalidArgument");
  else if (args.is_null())
    outcome = model_.run_operation(*op, nlohmann::json::object());
  else
    outcome = model_.run_operation(*op, args);
  if (!outcome.ok)
    return finish(pool, *pipeline, 5,
                  msg::op_failure_record(first.command, outcome.error.message, outcome.error.category));
  // ConvertTo-AsciiJson: the module writes non-ASCII characters as \uXXXX.
  std::string json = outcome.result.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
  queue(pool, pipeline->out,
        msg::to_client(psrp::MessageType::kPipelineOutput, pool.rpid, pipeline->pid,
                       psrp::serialize_clixml(psrp::PsValue::string(std::move(json)))));
  finish(pool, *pipeline, 4);
}

void PsrpService::play_steps(const std::string& pool_id, const std::shared_ptr<Pipeline>& pipeline) {
  auto it = pools_.find(pool_id);
  if (it == pools_.end() || pipeline->state != PipelineState::kRunning) return;
  Pool& pool = it->second;
  while (pipeline->next_step < pipeline->steps.size()) {
    OutputStep& step = pipeline->steps[pipeline->next_step++];
    if (step.kind == OutputStep::Kind::kSleep) {
      pipeline->timer = std::make_unique<boost::asio::steady_timer>(ioc_, std::chrono::milliseconds(step.sleep_ms));
      pipeline->timer->async_wait(
          [this, pool_id, weak = std::weak_ptr<Pipeline>(pipeline)](const boost::system::error_code& ec) {
            if (ec || stopped_) return;
            if (auto p = weak.lock()) play_steps(pool_id, p);
          });
      deliver_pipeline(pool, *pipeline);
      return;
    }
    if (step.kind == OutputStep::Kind::kStderr) {
      // The interpreter writes each error as console text ("<statement> : <message>" then CategoryInfo lines):
      // a non-terminating error becomes an ERROR_RECORD with its message.
      std::string_view first = step.data;
      first = trim(first.substr(0, first.find('\n')));
      if (auto colon = first.find(" : "); colon != std::string_view::npos) first.remove_prefix(colon + 3);
      if (!first.empty())
        queue(pool, pipeline->out,
              msg::to_client(psrp::MessageType::kErrorRecord, pool.rpid, pipeline->pid,
                             psrp::serialize_clixml(msg::runtime_error_record(first))));
      continue;
    }
    std::string_view data = step.data;
    while (!data.empty()) {
      auto nl = data.find('\n');
      std::string line(data.substr(0, nl));
      data.remove_prefix(nl == std::string_view::npos ? data.size() : nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.starts_with("WARNING: ")) {  // Write-Warning as the interpreter prints it
        queue(pool, pipeline->out,
              msg::to_client(psrp::MessageType::kWarningRecord, pool.rpid, pipeline->pid,
                             msg::warning_record_body(line.substr(9))));
        continue;
      }
      queue(pool, pipeline->out,
            msg::to_client(psrp::MessageType::kPipelineOutput, pool.rpid, pipeline->pid,
                           psrp::serialize_clixml(psrp::PsValue::string(std::move(line)))));
    }
  }
  // Errors in script text are non-terminating in PowerShell (ERROR_RECORDs above); `exit N` in a remote
  // pipeline only sets $LASTEXITCODE. The pipeline completes.
  finish(pool, *pipeline, 4);
}

void PsrpService::finish(Pool& pool, Pipeline& pipeline, std::int32_t state,
                         const std::optional<psrp::PsValue>& error) {
  if (pipeline.state == PipelineState::kDone) return;
  const bool had_runspace = pipeline.state == PipelineState::kRunning;
  pipeline.state = PipelineState::kDone;
  if (pipeline.timer) pipeline.timer->cancel();
  queue(pool, pipeline.out,
        msg::to_client(psrp::MessageType::kPipelineState, pool.rpid, pipeline.pid,
                       msg::pipeline_state_body(state, error)));
  if (had_runspace && pipeline.runspace >= 0) pool.runspaces[static_cast<std::size_t>(pipeline.runspace)].busy = false;
  pool.finished.push_back(pipeline.id);
  while (pool.finished.size() > options_.max_finished_pipelines) {
    auto old = pool.finished.front();
    pool.finished.pop_front();
    if (auto it = pool.pipelines.find(old); it != pool.pipelines.end() && !it->second->held) pool.pipelines.erase(it);
  }
  deliver_pipeline(pool, pipeline);
  // The freed runspace takes the next waiting pipeline, after this call's caller is done with its state.
  boost::asio::post(ioc_, [this, id = pool.id, alive = std::weak_ptr<int>(alive_)] {
    if (!alive.lock() || stopped_) return;
    if (auto it = pools_.find(id); it != pools_.end()) dispatch(it->second);
  });
}

void PsrpService::on_receive(const WsmanRequest& req, Pool& pool, const std::string& machine, ReplyCallback done) {
  auto receive = x::child(req.body, ns::kShell, "Receive");
  auto desired = receive ? x::child(receive, ns::kShell, "DesiredStream") : pugi::xml_node();
  if (!desired) {
    stats_.faults++;
    return done(
        fault_reply(schema_validation_fault("rsp:Receive/rsp:DesiredStream is missing"), req.message_id, machine));
  }
  std::string cid = to_upper(trim(x::attribute(desired, "CommandId").value()));
  std::shared_ptr<Pipeline> pipeline;
  if (!cid.empty()) {
    auto it = pool.pipelines.find(cid);
    if (it == pool.pipelines.end()) {
      stats_.faults++;
      return done(fault_reply(command_not_found_fault(), req.message_id, machine));
    }
    pipeline = it->second;
  }
  auto& slot = pipeline ? pipeline->held : pool.held;
  if (slot) {  // a newer Receive replaces one still waiting: the old one ends as a timeout
    stats_.timeouts++;
    stats_.faults++;
    auto old = std::move(slot);
    old->timer->cancel();
    old->done(fault_reply(timed_out_fault(), old->relates_to, old->machine));
  }
  auto held = std::make_unique<HeldReceive>();
  held->done = std::move(done);
  held->relates_to = req.message_id;
  held->machine = machine;
  held->budget = std::max(1024LL, req.max_envelope_size.value_or(153600) - kReceiveEnvelopeOverhead);
  long long timeout_ms = std::min(req.operation_timeout_ms.value_or(options_.max_timeout_ms), options_.max_timeout_ms);
  held->timer = std::make_unique<boost::asio::steady_timer>(ioc_, std::chrono::milliseconds(timeout_ms));
  held->timer->async_wait([this, id = pool.id, weak = std::weak_ptr<Pipeline>(pipeline),
                           for_pipeline = !!pipeline](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    auto it = pools_.find(id);
    if (it == pools_.end()) return;
    std::unique_ptr<HeldReceive>* s = &it->second.held;
    if (for_pipeline) {
      auto p = weak.lock();
      if (!p) return;
      s = &p->held;
    }
    if (!*s) return;
    auto h = std::move(*s);
    stats_.timeouts++;
    stats_.faults++;
    h->done(fault_reply(timed_out_fault(), h->relates_to, h->machine));
  });
  slot = std::move(held);
  if (pipeline)
    deliver_pipeline(pool, *pipeline);
  else
    deliver_pool(pool);
}

std::string PsrpService::take_streams(std::deque<OutMessage>& out, long long budget, const std::string& command_id) {
  const std::string attrs = command_id.empty() ? "" : " CommandId=\"" + command_id + "\"";
  const long long overhead = 40 + static_cast<long long>(attrs.size());
  std::string body;
  long long used = 0;
  while (!out.empty()) {
    OutMessage& m = out.front();
    long long room = ((budget - used - overhead) / 4) * 3 - static_cast<long long>(psrp::kFragmentHeaderSize);
    if (room <= 0) break;  // the rest goes out with the next Receive
    psrp::Fragment f;
    f.object_id = m.object_id;
    f.fragment_id = m.next_fragment++;
    f.start = m.offset == 0;
    std::size_t take = std::min(m.bytes.size() - m.offset, static_cast<std::size_t>(room));
    f.blob = m.bytes.substr(m.offset, take);
    m.offset += take;
    f.end = m.offset == m.bytes.size();
    std::string encoded = base64_encode(psrp::encode_fragment(f));
    used += overhead + static_cast<long long>(encoded.size());
    body += "<rsp:Stream Name=\"stdout\"" + attrs + ">" + encoded + "</rsp:Stream>";
    if (f.end) out.pop_front();
  }
  return body;
}

void PsrpService::deliver_pool(Pool& pool) {
  if (!pool.held || pool.out.empty()) return;
  auto held = std::move(pool.held);
  held->timer->cancel();
  std::string body = "<rsp:ReceiveResponse>" + take_streams(pool.out, held->budget, "") + "</rsp:ReceiveResponse>";
  held->done(HttpReply{200, response_envelope(act::kReceiveResponse, held->relates_to, body), false});
}

void PsrpService::deliver_pipeline(Pool&, Pipeline& pipeline) {
  if (!pipeline.held) return;
  const bool finished = pipeline.state == PipelineState::kDone;
  if (pipeline.out.empty() && !finished) return;
  auto held = std::move(pipeline.held);
  held->timer->cancel();
  std::string body = "<rsp:ReceiveResponse>" + take_streams(pipeline.out, held->budget, pipeline.id);
  if (finished && pipeline.out.empty()) {
    // The response carrying the final PIPELINE_STATE also says the command is done (as recorded).
    body += "<rsp:CommandState CommandId=\"" + pipeline.id + "\" State=\"" + std::string(act::kStateDone) +
            "\"><rsp:ExitCode>0</rsp:ExitCode></rsp:CommandState>";
    pipeline.done_delivered = true;
  }
  count_open();
  body += "</rsp:ReceiveResponse>";
  held->done(HttpReply{200, response_envelope(act::kReceiveResponse, held->relates_to, body), false});
}

void PsrpService::schedule_idle_sweep() {
  idle_timer_.expires_after(1s);
  idle_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    auto now = std::chrono::steady_clock::now();
    std::vector<std::string> expired;
    for (auto& [id, pool] : pools_) {
      bool waiting = pool.held != nullptr || std::any_of(pool.pipelines.begin(), pool.pipelines.end(),
                                                         [](auto& kv) { return kv.second->held != nullptr; });
      if (!waiting && now - pool.last_activity > std::chrono::milliseconds(pool.idle_timeout_ms)) expired.push_back(id);
    }
    for (auto& id : expired) {
      logger("sim")->info("runspace pool {} idle for longer than its IdleTimeOut: closed", id);
      erase_pool(id);
    }
    schedule_idle_sweep();
  });
}

}  // namespace wincert::sim
