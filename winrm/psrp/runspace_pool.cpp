#include "winrm/psrp/runspace_pool.hpp"

#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <functional>
#include <variant>

namespace wincert::winrm::psrp {

namespace net = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// Fragments per Data packet: PowerShell sends one and waits for its ack; pwsh takes several at once
// (psrp.md §6.2), which saves round trips for a large pipeline (a module definition).
constexpr std::size_t kFragmentsPerPacket = 4;
// How long a stopped pipeline may take to report its final state before the pool is given up.
constexpr auto kStopGrace = std::chrono::seconds(5);

std::chrono::milliseconds remaining(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return std::max(left, std::chrono::milliseconds(1));
}

std::string state_reason(const std::optional<ErrorRecordInfo>& error) {
  if (!error || error->message.empty()) return "";
  return ": " + error->message;
}

}  // namespace

// What pump() does with each packet; `done` is checked before every read.
struct OutOfProcRunspacePool::Handlers {
  std::string pipeline;  // the PSGuid of the running pipeline (lower case); empty while none runs
  std::function<Status(const ServerMessageBody&)> on_pool_message;
  std::function<Status(const ServerMessageBody&)> on_pipeline_message;
  std::function<void(PacketKind, const std::string&)> on_ack;
  std::function<bool()> done;
};

OutOfProcRunspacePool::OutOfProcRunspacePool(const net::any_io_executor& executor,
                                             std::unique_ptr<OutOfProcChannel> channel, RunspacePoolOptions options)
    : channel_(std::move(channel)),
      options_(std::move(options)),
      id_(Guid::random_v4()),
      fragmenter_(options_.max_fragment_size),
      defragmenter_(options_.defragment_limits),
      lock_(executor) {}

OutOfProcRunspacePool::~OutOfProcRunspacePool() = default;

std::string OutOfProcRunspacePool::describe() const {
  return "PowerShell runspace pool " + id_.to_string() + " over " + channel_->describe();
}

Status OutOfProcRunspacePool::fail(Error error) {
  broken_ = true;
  return error;
}

net::awaitable<Status> OutOfProcRunspacePool::send(const Message& message, const std::string& ps_guid,
                                                   DataStream stream) {
  auto fragments = fragmenter_.fragment(encode_message(message));
  if (!fragments.ok()) co_return std::move(fragments).error();
  for (std::size_t i = 0; i < fragments->size(); i += kFragmentsPerPacket) {
    std::string payload;
    for (std::size_t j = i; j < std::min(fragments->size(), i + kFragmentsPerPacket); ++j) payload += (*fragments)[j];
    auto written = co_await channel_->write_packet(OutOfProcPacket::data(ps_guid, std::move(payload), stream));
    if (!written.ok()) co_return fail(std::move(written).error().context(describe() + ": "));
  }
  co_return Status{};
}

net::awaitable<Status> OutOfProcRunspacePool::pump(Clock::time_point deadline, const Handlers& handlers) {
  while (!handlers.done()) {
    if (Clock::now() >= deadline)
      co_return Error::deadline_exceeded(describe() + ": no answer from PowerShell in time");
    auto packet = co_await channel_->read_packet(remaining(deadline));
    if (!packet.ok()) {
      if (packet.error().code == ErrorCode::kDeadlineExceeded)
        co_return Error::deadline_exceeded(describe() + ": no answer from PowerShell in time");
      co_return fail(std::move(packet).error().context(describe() + ": "));
    }
    switch (packet->kind) {
      case PacketKind::kData: {
        auto messages = defragmenter_.feed(packet->payload);
        if (!messages.ok()) co_return fail(std::move(messages).error().context(describe() + ": "));
        const bool for_pipeline = !handlers.pipeline.empty() && packet->ps_guid == handlers.pipeline;
        if (!for_pipeline && !packet->for_pool()) break;  // a late packet of a pipeline already closed
        for (const auto& bytes : *messages) {
          auto message = decode_message(bytes);
          if (!message.ok()) co_return fail(std::move(message).error().context(describe() + ": "));
          auto body = parse_server_message(*message, options_.clixml_limits);
          if (!body.ok()) co_return fail(std::move(body).error().context(describe() + ": "));
          auto handled = for_pipeline ? handlers.on_pipeline_message(*body) : handlers.on_pool_message(*body);
          if (!handled.ok()) co_return handled;
        }
        break;
      }
      case PacketKind::kDataAck:
      case PacketKind::kCommandAck:
      case PacketKind::kCloseAck:
      case PacketKind::kSignalAck:
        if (handlers.on_ack) handlers.on_ack(packet->kind, packet->ps_guid);
        break;
      default:
        co_return fail(Error::invalid_argument(describe() + ": PowerShell sent a " +
                                               std::string(packet_kind_name(packet->kind)) +
                                               " packet, which only a client sends"));
    }
  }
  co_return Status{};
}

net::awaitable<Result<std::unique_ptr<OutOfProcRunspacePool>>> OutOfProcRunspacePool::open(
    std::unique_ptr<OutOfProcChannel> channel, RunspacePoolOptions options) {
  auto executor = co_await net::this_coro::executor;
  std::unique_ptr<OutOfProcRunspacePool> pool(
      new OutOfProcRunspacePool(executor, std::move(channel), std::move(options)));
  const auto deadline = Clock::now() + pool->options_.open_timeout;

  // SESSION_CAPABILITY and INIT_RUNSPACEPOOL go together in one Data packet, as PowerShell's client sends.
  auto capability = pool->fragmenter_.fragment(encode_message(session_capability_message(pool->id_)));
  auto init = pool->fragmenter_.fragment(
      encode_message(init_runspace_pool_message(pool->id_, pool->options_.settings)));
  if (!capability.ok()) co_return std::move(capability).error();
  if (!init.ok()) co_return std::move(init).error();
  std::string payload;
  for (const auto& f : *capability) payload += f;
  for (const auto& f : *init) payload += f;
  auto written = co_await pool->channel_->write_packet(OutOfProcPacket::data(std::string(kPoolPsGuid), payload));
  if (!written.ok()) co_return std::move(written).error().context(pool->describe() + ": opening: ");

  bool opened = false;
  bool have_capability = false;
  Handlers handlers;
  OutOfProcRunspacePool& self = *pool;
  handlers.on_pool_message = [&](const ServerMessageBody& body) -> Status {
    if (const auto* cap = std::get_if<ServerCapability>(&body)) {
      self.server_ = *cap;
      have_capability = true;
    } else if (const auto* state = std::get_if<RunspacePoolStateInfo>(&body)) {
      if (state->state == 2) {
        opened = true;
      } else if (state->state == 3 || state->state == 4 || state->state == 5) {
        return Error::failed_precondition(self.describe() + ": PowerShell did not open the runspace pool (state " +
                                          std::to_string(state->state) + ")" + state_reason(state->error));
      }
    }
    return Status{};
  };
  handlers.on_pipeline_message = handlers.on_pool_message;
  handlers.done = [&] { return opened; };
  auto pumped = co_await pool->pump(deadline, handlers);
  if (!pumped.ok()) co_return std::move(pumped).error().context("opening: ");
  if (!have_capability)
    co_return Error::invalid_argument(pool->describe() + ": the pool opened without a SESSION_CAPABILITY reply");
  co_return pool;
}

net::awaitable<Result<PipelineResult>> OutOfProcRunspacePool::invoke(std::vector<PipelineCommand> commands,
                                                                     std::chrono::milliseconds timeout) {
  auto guard = co_await lock_.acquire();
  if (!guard.locked()) co_return Error::cancelled(describe() + ": the pipeline was cancelled before it started");
  if (broken_ || closed_)
    co_return Error::unavailable(describe() + ": the pool is " + (closed_ ? "closed" : "broken") +
                                 "; open a new one");
  const auto deadline = Clock::now() + timeout;
  const Guid pipeline = Guid::random_v4();
  const std::string pipeline_guid = pipeline.to_string();
  const std::string what = describe() + ", pipeline " + pipeline_guid;

  PipelineResult result;
  bool command_acked = false;
  bool close_acked = false;
  bool signal_acked = false;
  bool finished = false;
  Status host_reply;  // a failure to answer a host call, reported after the pump returns

  Handlers handlers;
  handlers.pipeline = pipeline_guid;
  handlers.on_ack = [&](PacketKind kind, const std::string& guid) {
    if (guid != pipeline_guid) return;
    if (kind == PacketKind::kCommandAck) command_acked = true;
    if (kind == PacketKind::kCloseAck) close_acked = true;
    if (kind == PacketKind::kSignalAck) signal_acked = true;
  };
  std::vector<HostCall> host_calls;  // answered between reads (sending needs the coroutine)
  handlers.on_pool_message = [&](const ServerMessageBody& body) -> Status {
    if (const auto* state = std::get_if<RunspacePoolStateInfo>(&body); state && state->state != 2) {
      return fail(Error::unavailable(what + ": PowerShell reported the runspace pool " +
                                     (state->state == 5 ? "broken" : "closed") + state_reason(state->error)));
    }
    if (const auto* call = std::get_if<HostCall>(&body); call && call->expects_response()) host_calls.push_back(*call);
    return Status{};
  };
  handlers.on_pipeline_message = [&](const ServerMessageBody& body) -> Status {
    if (const auto* output = std::get_if<PipelineOutput>(&body)) {
      if (result.output.size() >= options_.max_output_objects)  // the pipeline is abandoned mid-way
        return fail(Error::resource_exhausted(what + ": more than " + std::to_string(options_.max_output_objects) +
                                              " output objects"));
      result.output.push_back(output->value);
    } else if (const auto* error = std::get_if<ErrorRecordInfo>(&body)) {
      result.errors.push_back(*error);
    } else if (const auto* record = std::get_if<InformationalRecord>(&body)) {
      result.informational.push_back(*record);
    } else if (const auto* state = std::get_if<PipelineStateInfo>(&body)) {
      result.state = *state;
      finished = state->terminal();
    } else if (const auto* call = std::get_if<HostCall>(&body); call && call->expects_response()) {
      host_calls.push_back(*call);
    }
    return Status{};
  };
  // Runs the pump until `until`, answering host calls (no host here: each fails at once, so a Read-Host
  // ends the pipeline instead of waiting for an answer nobody gives).
  auto run_until = [&](std::function<bool()> until, Clock::time_point limit) -> net::awaitable<Status> {
    handlers.done = [&] { return until() || !host_calls.empty(); };
    for (;;) {
      auto pumped = co_await pump(limit, handlers);
      if (!pumped.ok()) co_return pumped;
      while (!host_calls.empty()) {
        const HostCall call = host_calls.front();
        host_calls.erase(host_calls.begin());
        const Guid target = call.pipeline ? pipeline : Guid{};
        auto sent = co_await send(host_call_failure_message(id_, target, call),
                                  call.pipeline ? pipeline_guid : std::string(kPoolPsGuid),
                                  DataStream::kPromptResponse);
        if (!sent.ok()) co_return sent;
      }
      if (until()) co_return Status{};
    }
  };

  auto written = co_await channel_->write_packet(OutOfProcPacket::of_kind(PacketKind::kCommand, pipeline_guid));
  if (!written.ok()) co_return fail(std::move(written).error().context(what + ": ")).error();
  auto acked = co_await run_until([&] { return command_acked; }, deadline);
  if (!acked.ok()) {
    if (acked.error().code == ErrorCode::kDeadlineExceeded) broken_ = true;  // no pipeline to stop yet
    co_return std::move(acked).error();
  }
  auto sent = co_await send(create_pipeline_message(id_, pipeline, commands), pipeline_guid);
  if (!sent.ok()) co_return std::move(sent).error();

  auto ran = co_await run_until([&] { return finished; }, deadline);
  if (!ran.ok() && ran.error().code == ErrorCode::kDeadlineExceeded && !broken_) {
    // Stop it, and keep the pool when PowerShell confirms in time.
    auto signalled =
        co_await channel_->write_packet(OutOfProcPacket::of_kind(PacketKind::kSignal, pipeline_guid));
    if (!signalled.ok()) co_return fail(std::move(signalled).error().context(what + ": stopping: ")).error();
    auto stopped = co_await run_until([&] { return finished && signal_acked; }, Clock::now() + kStopGrace);
    if (!stopped.ok()) {
      broken_ = true;
      co_return Error::deadline_exceeded(what + ": did not finish within " + std::to_string(timeout.count()) +
                                         " ms and did not stop when asked; the pool is given up");
    }
  }
  if (!ran.ok() && (broken_ || ran.error().code != ErrorCode::kDeadlineExceeded)) co_return ran.error();

  // Every pipeline that got a Command is closed, or closing the pool would wait for it (psrp.md §6.2).
  written = co_await channel_->write_packet(OutOfProcPacket::of_kind(PacketKind::kClose, pipeline_guid));
  if (!written.ok()) co_return fail(std::move(written).error().context(what + ": ")).error();
  auto closed = co_await run_until([&] { return close_acked; }, Clock::now() + options_.close_timeout);
  if (!closed.ok()) co_return fail(std::move(closed).error()).error();
  if (!ran.ok())
    co_return Error::deadline_exceeded(what + ": did not finish within " + std::to_string(timeout.count()) +
                                       " ms; it was stopped");
  co_return result;
}

net::awaitable<Status> OutOfProcRunspacePool::close() {
  auto guard = co_await lock_.acquire();
  if (closed_) co_return Status{};
  closed_ = true;
  Status outcome;
  if (!broken_) {
    bool pool_closed = false;
    bool close_acked = false;
    Handlers handlers;
    handlers.on_ack = [&](PacketKind kind, const std::string& guid) {
      if (kind == PacketKind::kCloseAck && guid == kPoolPsGuid) close_acked = true;
    };
    handlers.on_pool_message = [&](const ServerMessageBody& body) -> Status {
      if (const auto* state = std::get_if<RunspacePoolStateInfo>(&body); state && state->state == 3)
        pool_closed = true;
      return Status{};
    };
    handlers.on_pipeline_message = handlers.on_pool_message;
    handlers.done = [&] { return close_acked; };
    auto written = co_await channel_->write_packet(OutOfProcPacket::of_kind(PacketKind::kClose, std::string(kPoolPsGuid)));
    if (written.ok()) {
      outcome = co_await pump(Clock::now() + options_.close_timeout, handlers);
    } else {
      outcome = std::move(written).error();
    }
    (void)pool_closed;  // PowerShell reports Closing/Closed before or after the ack; the ack is what counts
  }
  auto channel_closed = co_await channel_->close();
  if (outcome.ok() && !channel_closed.ok()) outcome = std::move(channel_closed);
  co_return outcome;
}

}  // namespace wincert::winrm::psrp
