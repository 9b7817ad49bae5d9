#include "winrm/psrp/wsman_runspace_pool.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <variant>

#include "common/encoding.hpp"
#include "common/log.hpp"
#include "winrm/messages.hpp"

namespace wincert::winrm::psrp {

namespace net = boost::asio;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

// A stopped pipeline must report its final state within this, or the pool is given up.
constexpr auto kStopGrace = 10s;
// A TimedOut fault long before OperationTimeout: the host (or a proxy) does not long-poll; pause, doubling.
constexpr auto kInstantTimeoutFirstWait = 100ms;
constexpr auto kInstantTimeoutMaxWait = 5s;
// The HTTP read timeout must exceed OperationTimeout: a Receive legitimately waits that long.
constexpr auto kReadTimeoutMargin = 10s;

bool shell_gone(const WsmanReply& reply) {
  if (reply.http_status == 400) return true;
  return reply.soap.fault && reply.soap.fault->is_shell_gone();
}

std::string state_reason(const std::optional<ErrorRecordInfo>& error) {
  if (!error || error->message.empty()) return "";
  return ": " + error->message;
}

bool protocol_at_least_2_2(const std::string& version) {
  const auto dot = version.find('.');
  if (dot == std::string::npos) return false;
  try {
    const int major = std::stoi(version.substr(0, dot));
    const int minor = std::stoi(version.substr(dot + 1));
    return major > 2 || (major == 2 && minor >= 2);
  } catch (...) {
    return false;
  }
}

}  // namespace

struct WsmanRunspacePool::State {
  State(WsmanTransport& t, WsmanRunspacePoolOptions opts) : transport(t), options(std::move(opts)) {
    context.to = transport.endpoint().url();
    context.resource_uri = std::string(ns::kResourcePowerShellPrefix) + options.configuration_name;
    context.session_id = "uuid:" + random_uuid();
    context.operation_timeout = options.operation_timeout;
    context.locale = options.locale;
    context.max_envelope_size = options.max_envelope_size.value_or(kWsmanDefaultMaxEnvelopeSize);
    const auto margin = std::clamp<std::chrono::milliseconds>(options.operation_timeout, 1s, kReadTimeoutMargin);
    if (transport.options().exchange.read_timeout < options.operation_timeout + margin)
      transport.set_read_timeout(options.operation_timeout + margin);
  }

  WsmanTransport& transport;
  WsmanRunspacePoolOptions options;
  RequestContext context;
  Guid id;
  std::vector<Selector> shell;  // empty while no shell is open
  std::string shell_id;
  Fragmenter fragmenter;
  ServerCapability server;
  std::optional<Error> broken;
  bool closed = false;  // close() was called; a shell the host dropped is reopened instead
  WsmanPoolCounters counters;

  std::string where() const { return transport.endpoint().authority(); }
  std::string describe() const {
    return "PowerShell runspace pool " + (shell_id.empty() ? std::string("(not open)") : shell_id) + " (" +
           options.configuration_name + ") on " + where();
  }

  Error fault_error(std::string_view what, const WsmanReply& reply) const {
    const std::string text = std::string(what) + " on " + describe() + ": ";
    const int status = static_cast<int>(reply.http_status);
    if (!reply.soap.fault)
      return Error::invalid_argument(text + "unexpected response (HTTP " + std::to_string(status) + ")")
          .with_http_status(status);
    if (status == 400 && reply.soap.fault->code == "http")
      return Error::aborted(text + reply.soap.fault->summary()).with_http_status(status);
    return reply.soap.fault->to_error().context(text).with_http_status(status);
  }

  net::awaitable<Result<WsmanReply>> request(const Envelope& envelope, std::string_view what) {
    ++counters.exchanges;
    co_return co_await transport.request(envelope, what);
  }

  // The size of one fragment (header included) that a Command or Send can carry.
  Result<std::size_t> fragment_size() const {
    const Envelope empty =
        build_psrp_send(context, shell.empty() ? std::vector<Selector>{{"ShellId", id.to_upper_string()}} : shell,
                        Guid::random_v4().to_upper_string(), "stdin", "");
    return wsman_max_fragment_size(context.max_envelope_size, empty.xml.size());
  }

  // Fragments one message into payloads that fit one request each.
  Result<std::vector<std::string>> payloads(const Message& message) {
    WINCERT_ASSIGN_OR_RETURN(const std::size_t size, fragment_size());
    fragmenter.set_max_fragment_size(size);
    WINCERT_ASSIGN_OR_RETURN(auto fragments, fragmenter.fragment(encode_message(message)));
    return pack_fragments(fragments, size);
  }

  void forget_shell() {
    if (shell.empty()) return;
    if (auto* observer = transport.options().observer) observer->shell_closed(transport.endpoint().host);
    shell.clear();
  }

  // Waits before the next poll after a TimedOut that came back early; resets after a proper long poll.
  net::awaitable<void> pace_timed_out(Clock::time_point polled_at, std::chrono::milliseconds& wait,
                                      Clock::time_point deadline, std::chrono::milliseconds poll_timeout) {
    const auto now = Clock::now();
    if (now - polled_at >= poll_timeout / 2) {
      wait = {};
      co_return;
    }
    wait = wait.count() == 0 ? std::chrono::milliseconds(kInstantTimeoutFirstWait)
                             : std::min<std::chrono::milliseconds>(wait * 2, kInstantTimeoutMaxWait);
    if (now >= deadline) co_return;
    net::steady_timer pause(transport.executor());
    pause.expires_after(std::min<Clock::duration>(wait, deadline - now));
    co_await pause.async_wait(net::as_tuple(net::use_awaitable));
  }

  // Create + Receive until the pool is Opened.
  net::awaitable<Status> open_shell() {
    const auto deadline = Clock::now() + options.open_timeout;
    id = Guid::random_v4();
    fragmenter = Fragmenter();
    context.max_envelope_size = options.max_envelope_size.value_or(kWsmanDefaultMaxEnvelopeSize);
    const Message capability_message = session_capability_message(id);
    const Message init_message = init_runspace_pool_message(id, options.settings);
    WINCERT_CO_ASSIGN_OR_RETURN(const std::size_t size, fragment_size());
    fragmenter.set_max_fragment_size(size);
    WINCERT_CO_ASSIGN_OR_RETURN(auto capability, fragmenter.fragment(encode_message(capability_message)));
    WINCERT_CO_ASSIGN_OR_RETURN(auto init, fragmenter.fragment(encode_message(init_message)));
    std::string creation;
    for (const auto& f : capability) creation += f;
    for (const auto& f : init) creation += f;
    if (creation.size() > size)  // pypsrp silently drops a remainder here; we refuse instead
      co_return Error::invalid_argument(describe() + ": the pool's opening messages (" +
                                        std::to_string(creation.size()) + " bytes) do not fit one Create of " +
                                        std::to_string(context.max_envelope_size) + "-byte envelopes");
    const std::string requested_id = id.to_upper_string();
    const Envelope create = build_psrp_create(context, requested_id, creation, options.idle_timeout);
    WINCERT_CO_ASSIGN_OR_RETURN(const WsmanReply created, co_await request(create, "Create runspace pool"));
    if (created.soap.fault) co_return fault_error("Create runspace pool", created);
    auto parsed = parse_create_shell(created.soap);
    if (!parsed.ok()) co_return parsed.error().context("Create runspace pool on " + where() + ": ");
    shell = parsed->selectors;
    shell_id = parsed->shell_id;
    if (auto* observer = transport.options().observer) observer->shell_created(transport.endpoint().host);

    Defragmenter defragmenter(options.defragment_limits);
    bool have_capability = false;
    std::chrono::milliseconds instant_wait{0};
    for (;;) {
      if (Clock::now() >= deadline)
        co_return Error::deadline_exceeded(describe() + ": PowerShell did not open the runspace pool within " +
                                           std::to_string(options.open_timeout.count()) + " ms");
      const Envelope receive = build_psrp_receive(context, shell, "");
      const auto polled_at = Clock::now();
      WINCERT_CO_ASSIGN_OR_RETURN(const WsmanReply reply, co_await request(receive, "Receive (opening the pool)"));
      if (reply.soap.fault) {
        if (!reply.soap.fault->is_operation_timeout()) co_return fault_error("Receive (opening the pool)", reply);
        co_await pace_timed_out(polled_at, instant_wait, deadline, context.operation_timeout);
        continue;
      }
      auto received = parse_receive(reply.soap, "");
      if (!received.ok()) co_return received.error().context("Receive on " + describe() + ": ");
      WINCERT_CO_ASSIGN_OR_RETURN(auto messages, defragmenter.feed(received->stdout_data));
      for (const auto& bytes : messages) {
        WINCERT_CO_ASSIGN_OR_RETURN(const Message message, decode_message(bytes));
        WINCERT_CO_ASSIGN_OR_RETURN(const ServerMessageBody body, parse_server_message(message, options.clixml_limits));
        if (const auto* cap = std::get_if<ServerCapability>(&body)) {
          server = *cap;
          have_capability = true;
          if (!options.max_envelope_size && protocol_at_least_2_2(cap->protocol_version))
            context.max_envelope_size = kWsmanProtocol22MaxEnvelopeSize;
        } else if (const auto* state = std::get_if<RunspacePoolStateInfo>(&body)) {
          if (state->state == 2) {
            if (!have_capability)
              co_return Error::invalid_argument(describe() + ": the pool opened without a SESSION_CAPABILITY reply");
            ++counters.pools_opened;
            co_return Status{};
          }
          if (state->state >= 3)
            co_return Error::failed_precondition(describe() + ": PowerShell did not open the runspace pool (state " +
                                                 std::to_string(state->state) + ")" + state_reason(state->error));
        }
      }
    }
  }

  // Tells PowerShell there is no host to answer it: each call fails at once. The answers to one Receive's
  // calls share one Send (pypsrp's recorded exchange has one Send for a burst of calls).
  net::awaitable<Status> refuse_host_calls(const std::vector<HostCall>& calls, const Guid& pipeline,
                                           const std::string& command_id) {
    if (calls.empty()) co_return Status{};
    WINCERT_CO_ASSIGN_OR_RETURN(const std::size_t size, fragment_size());
    fragmenter.set_max_fragment_size(size);
    std::vector<std::string> fragments;
    for (const auto& call : calls) {
      const Message reply = host_call_failure_message(id, call.pipeline ? pipeline : Guid{}, call);
      WINCERT_CO_ASSIGN_OR_RETURN(auto parts, fragmenter.fragment(encode_message(reply)));
      for (auto& part : parts) fragments.push_back(std::move(part));
    }
    for (const auto& payload : pack_fragments(fragments, size)) {
      const Envelope send = build_psrp_send(context, shell, command_id, "pr", payload);
      WINCERT_CO_ASSIGN_OR_RETURN(const WsmanReply sent, co_await request(send, "Send (host response)"));
      if (sent.soap.fault) co_return fault_error("Send (host response)", sent);
    }
    co_return Status{};
  }

  // Reads one Receive's messages into the result; true once the pipeline reached its final state.
  Result<bool> take(const std::string& data, Defragmenter& defragmenter, PipelineResult& result,
                    std::vector<HostCall>& host_calls, const std::string& what) {
    WINCERT_ASSIGN_OR_RETURN(auto messages, defragmenter.feed(data));
    bool finished = false;
    for (auto& bytes : messages) {
      WINCERT_ASSIGN_OR_RETURN(Message message, decode_message_taking(std::move(bytes)));
      auto body = parse_server_message_taking(std::move(message), options.clixml_limits);
      if (!body.ok()) return std::move(body).error().context(what + ": ");
      if (const auto* output = std::get_if<PipelineOutput>(&*body)) {
        if (result.output.size() >= options.max_output_objects)
          return Error::resource_exhausted(what + ": more than " + std::to_string(options.max_output_objects) +
                                           " output objects");
        result.output.push_back(std::move(output->value));  // no copy of a large output
      } else if (const auto* error = std::get_if<ErrorRecordInfo>(&*body)) {
        result.errors.push_back(*error);
      } else if (const auto* record = std::get_if<InformationalRecord>(&*body)) {
        result.informational.push_back(*record);
      } else if (const auto* state = std::get_if<PipelineStateInfo>(&*body)) {
        result.state = *state;
        finished = finished || state->terminal();
      } else if (const auto* pool_state = std::get_if<RunspacePoolStateInfo>(&*body);
                 pool_state && pool_state->state >= 3) {
        broken = Error::unavailable(describe() + ": PowerShell reported the runspace pool " +
                                    (pool_state->state == 5 ? "broken" : "closed") + state_reason(pool_state->error));
        return *broken;
      } else if (const auto* call = std::get_if<HostCall>(&*body); call && call->expects_response()) {
        host_calls.push_back(*call);
      }
    }
    return finished;
  }

  // Receives until the final state or the deadline (kDeadlineExceeded, nothing else changed).
  net::awaitable<Status> receive_until_done(const std::string& command_id, const Guid& pipeline,
                                            Defragmenter& defragmenter, PipelineResult& result,
                                            Clock::time_point deadline, const std::string& what) {
    std::chrono::milliseconds instant_wait{0};
    for (;;) {
      const auto now = Clock::now();
      if (now >= deadline) co_return Error::deadline_exceeded(what + ": no final state in time");
      // The long poll ends by the deadline, so a pipeline past it is stopped on time.
      RequestContext poll = context;
      poll.operation_timeout =
          std::clamp<std::chrono::milliseconds>(std::chrono::ceil<std::chrono::milliseconds>(deadline - now),
                                                std::chrono::milliseconds(1000), context.operation_timeout);
      const Envelope receive = build_psrp_receive(poll, shell, command_id);
      const auto polled_at = Clock::now();
      WINCERT_CO_ASSIGN_OR_RETURN(const WsmanReply reply, co_await request(receive, "Receive"));
      if (reply.soap.fault) {
        if (!reply.soap.fault->is_operation_timeout()) {
          if (shell_gone(reply)) forget_shell();
          co_return fault_error("Receive", reply);
        }
        co_await pace_timed_out(polled_at, instant_wait, deadline, poll.operation_timeout);
        continue;
      }
      instant_wait = {};
      auto received = parse_receive(reply.soap, command_id);
      if (!received.ok()) co_return received.error().context("Receive on " + describe() + ": ");
      std::vector<HostCall> host_calls;
      WINCERT_CO_ASSIGN_OR_RETURN(const bool finished,
                                  take(received->stdout_data, defragmenter, result, host_calls, what));
      WINCERT_CO_TRY(co_await refuse_host_calls(host_calls, pipeline, command_id));
      if (finished) co_return Status{};
    }
  }

  // One attempt on the current shell. kAborted when the host no longer has it (before anything ran).
  net::awaitable<Result<PipelineResult>> run(const std::vector<PipelineCommand>& commands,
                                             std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    const Guid pipeline = Guid::random_v4();
    const std::string what = describe() + ", pipeline " + pipeline.to_upper_string();
    PipelineSettings pipeline_settings;
    pipeline_settings.minimal = true;  // about 1 KB less per pipeline, read the same by every PowerShell
    const Message create = create_pipeline_message(id, pipeline, commands, pipeline_settings);
    WINCERT_CO_ASSIGN_OR_RETURN(auto parts, payloads(create));
    const Envelope command = build_psrp_command(context, shell, pipeline.to_upper_string(), parts.front());
    WINCERT_CO_ASSIGN_OR_RETURN(const WsmanReply commanded, co_await request(command, "Command"));
    if (commanded.soap.fault) {
      if (shell_gone(commanded)) {
        forget_shell();
        co_return Error::aborted(fault_error("Command", commanded).message);
      }
      co_return fault_error("Command", commanded);
    }
    auto returned_id = parse_command_id(commanded.soap);
    if (!returned_id.ok()) co_return returned_id.error().context("Command on " + describe() + ": ");
    const std::string command_id = *returned_id;  // old hosts ignore the requested id (psrp.md §1.4)
    ++counters.pipelines;
    for (std::size_t i = 1; i < parts.size(); ++i) {
      const Envelope send = build_psrp_send(context, shell, command_id, "stdin", parts[i]);
      WINCERT_CO_ASSIGN_OR_RETURN(const WsmanReply sent, co_await request(send, "Send"));
      if (sent.soap.fault) co_return fault_error("Send", sent);
    }

    PipelineResult result;
    Defragmenter defragmenter(options.defragment_limits);
    auto done = co_await receive_until_done(command_id, pipeline, defragmenter, result, deadline, what);
    if (done.ok()) co_return result;
    if (done.error().code != ErrorCode::kDeadlineExceeded) co_return std::move(done).error();

    // Past the deadline: stop it (the plugin's own signal), and keep the pool when PowerShell confirms.
    const Envelope stop = build_signal(context, shell, command_id, action::kSignalPowerShellStop);
    auto stopped = co_await request(stop, "Signal (stop)");
    Status confirmed = stopped.ok() ? Status{} : Status(stopped.error());
    if (confirmed.ok() && stopped->soap.fault) confirmed = fault_error("Signal (stop)", *stopped);
    if (confirmed.ok())
      confirmed =
          co_await receive_until_done(command_id, pipeline, defragmenter, result, Clock::now() + kStopGrace, what);
    if (!confirmed.ok()) {
      broken = Error::deadline_exceeded(what + ": did not finish within " + std::to_string(timeout.count()) +
                                        " ms and did not stop when asked; the pool is given up");
      co_return *broken;
    }
    co_return Error::deadline_exceeded(what + ": did not finish within " + std::to_string(timeout.count()) +
                                       " ms; it was stopped");
  }
};

WsmanRunspacePool::WsmanRunspacePool(std::unique_ptr<State> state) : state_(std::move(state)) {}
WsmanRunspacePool::~WsmanRunspacePool() { state_->forget_shell(); }

bool WsmanRunspacePool::broken() const { return state_->broken.has_value(); }
std::string WsmanRunspacePool::describe() const { return state_->describe(); }
const ServerCapability& WsmanRunspacePool::server() const { return state_->server; }
const std::string& WsmanRunspacePool::shell_id() const { return state_->shell_id; }
WsmanPoolCounters WsmanRunspacePool::counters() const { return state_->counters; }

net::awaitable<Result<std::unique_ptr<WsmanRunspacePool>>> WsmanRunspacePool::open(WsmanTransport& transport,
                                                                                   WsmanRunspacePoolOptions options) {
  auto state = std::make_unique<State>(transport, std::move(options));
  auto opened = co_await state->open_shell();
  if (!opened.ok()) {
    if (!state->shell.empty()) {  // created but never opened: do not leave it to the host's idle timeout
      const Envelope remove = build_delete_shell(state->context, state->shell);
      state->forget_shell();
      (void)co_await transport.request(remove, "Delete runspace pool");
    }
    co_return std::move(opened).error();
  }
  logger("winrm")->debug("{}: opened (protocol {})", state->describe(), state->server.protocol_version);
  co_return std::unique_ptr<WsmanRunspacePool>(new WsmanRunspacePool(std::move(state)));
}

net::awaitable<Result<PipelineResult>> WsmanRunspacePool::invoke(std::vector<PipelineCommand> commands,
                                                                 std::chrono::milliseconds timeout) {
  auto& s = *state_;
  if (s.broken) co_return Error::unavailable(s.broken->message + " (the pool is broken; open a new one)");
  for (int attempt = 0;; ++attempt) {
    if (s.closed) co_return Error::unavailable(s.describe() + ": the pool is closed");
    if (s.shell.empty()) {
      logger("winrm")->info("{}: the host dropped the shell; opening a new runspace pool", s.describe());
      auto reopened = co_await s.open_shell();
      if (!reopened.ok()) co_return std::move(reopened).error().context("reopening: ");
      ++s.counters.reopens;
    }
    auto result = co_await s.run(commands, timeout);
    // Only a Command refused for a dropped shell is repeated: nothing ran. A shell lost later is reopened by
    // the next call.
    if (result.ok() || result.error().code != ErrorCode::kAborted || attempt > 0 || !s.shell.empty()) co_return result;
  }
}

net::awaitable<Status> WsmanRunspacePool::close() {
  auto& s = *state_;
  s.closed = true;
  if (s.shell.empty()) co_return Status{};
  const auto selectors = s.shell;
  s.forget_shell();
  const Envelope remove = build_delete_shell(s.context, selectors);
  WINCERT_CO_ASSIGN_OR_RETURN(const WsmanReply reply, co_await s.request(remove, "Delete runspace pool"));
  if (reply.soap.fault) {
    const auto& fault = *reply.soap.fault;
    if (fault.is_shell_gone() || fault.wsman_code == fault_code::kOperationAborted) co_return Status{};
    co_return s.fault_error("Delete runspace pool", reply);
  }
  co_return Status{};
}

}  // namespace wincert::winrm::psrp
