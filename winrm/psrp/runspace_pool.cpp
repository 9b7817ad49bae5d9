#include "winrm/psrp/runspace_pool.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <variant>

#include "winrm/async_lock.hpp"

namespace wincert::winrm::psrp {

namespace net = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// Fragments per Data packet: PowerShell sends one and waits for its ack; pwsh takes several at once
// (psrp.md §6.2), which saves round trips for a large pipeline (a module definition).
constexpr std::size_t kFragmentsPerPacket = 4;
// How long a stopped pipeline may take to report its final state before the pool is given up.
constexpr auto kStopGrace = std::chrono::seconds(5);
// The reader reads in slices this long, so that it notices a pool dropped without close().
constexpr auto kReadSlice = std::chrono::seconds(1);

std::string state_reason(const std::optional<ErrorRecordInfo>& error) {
  if (!error || error->message.empty()) return "";
  return ": " + error->message;
}

}  // namespace

struct OutOfProcRunspacePool::Pipeline {
  Guid id;
  std::string guid;  // lower-case text, the OutOfProc PSGuid
  PipelineResult result;
  bool command_acked = false;
  bool signal_acked = false;
  bool close_acked = false;
  bool finished = false;
  std::vector<HostCall> host_calls;  // to answer (there is no host: each fails at once)
};

// Everything the reader coroutine and the callers share; the reader holds it too, so it outlives the pool
// object until the reader has stopped.
struct OutOfProcRunspacePool::State {
  State(net::any_io_executor ex, std::unique_ptr<OutOfProcChannel> ch, RunspacePoolOptions opts)
      : executor(std::move(ex)),
        channel(std::move(ch)),
        options(std::move(opts)),
        id(Guid::random_v4()),
        fragmenter(options.max_fragment_size),
        defragmenter(options.defragment_limits),
        write_lock(executor) {}

  net::any_io_executor executor;
  std::unique_ptr<OutOfProcChannel> channel;
  RunspacePoolOptions options;
  Guid id;
  Fragmenter fragmenter;
  Defragmenter defragmenter;
  AsyncLock write_lock;  // whole lines, one writer at a time

  ServerCapability server;
  bool have_capability = false;
  bool opened = false;
  bool close_acked = false;
  bool closed = false;    // close() was called
  bool stopping = false;  // the reader is to stop (closed, or the pool object is gone)
  bool reader_running = false;
  std::optional<Error> broken;                                 // why the pool cannot be used any more
  std::map<std::string, std::shared_ptr<Pipeline>> pipelines;  // by PSGuid
  std::vector<HostCall> pool_host_calls;
  std::set<net::steady_timer*> waiters;  // woken after every packet

  std::string describe() const { return "PowerShell runspace pool " + id.to_string() + " over " + channel->describe(); }

  void wake_all() {
    for (auto* timer : waiters) timer->cancel();
  }
  void break_pool(Error error) {
    if (!broken) broken = std::move(error);
    wake_all();
  }

  net::awaitable<Status> write(const OutOfProcPacket& packet) {
    auto guard = co_await write_lock.acquire();
    if (!guard.locked()) co_return Error::cancelled(describe() + ": a write was cancelled");
    auto written = co_await channel->write_packet(packet);
    if (!written.ok()) {
      auto error = std::move(written).error().context(describe() + ": ");
      break_pool(error);
      co_return error;
    }
    co_return Status{};
  }

  // One message as Data packets of whole fragments.
  net::awaitable<Status> send(const Message& message, const std::string& ps_guid,
                              DataStream stream = DataStream::kDefault) {
    auto fragments = fragmenter.fragment(encode_message(message));
    if (!fragments.ok()) co_return std::move(fragments).error();
    for (std::size_t i = 0; i < fragments->size(); i += kFragmentsPerPacket) {
      std::string payload;
      for (std::size_t j = i; j < std::min(fragments->size(), i + kFragmentsPerPacket); ++j) payload += (*fragments)[j];
      auto written = co_await write(OutOfProcPacket::data(ps_guid, std::move(payload), stream));
      if (!written.ok()) co_return written;
    }
    co_return Status{};
  }

  // Waits until ready() (checked after every packet the reader handles), the pool breaks, or the deadline.
  net::awaitable<Status> wait_for(const std::function<bool()>& ready, Clock::time_point deadline,
                                  const std::string& what) {
    net::steady_timer timer(executor);
    struct Registration {
      State& state;
      net::steady_timer* timer;
      ~Registration() { state.waiters.erase(timer); }
    } registration{*this, &timer};
    waiters.insert(&timer);
    for (;;) {
      if (ready()) co_return Status{};
      if (broken) co_return *broken;
      if (!reader_running) co_return Error::unavailable(describe() + ": the pool is no longer read");
      if (Clock::now() >= deadline) co_return Error::deadline_exceeded(what);
      timer.expires_at(deadline);
      co_await timer.async_wait(net::as_tuple(net::use_awaitable));
    }
  }

  Status on_pool_message(const ServerMessageBody& body) {
    if (const auto* cap = std::get_if<ServerCapability>(&body)) {
      server = *cap;
      have_capability = true;
    } else if (const auto* state = std::get_if<RunspacePoolStateInfo>(&body)) {
      if (state->state == 2) {
        opened = true;
      } else if (state->state == 3 || state->state == 4 || state->state == 5) {
        if (!opened) {
          return Error::failed_precondition(describe() + ": PowerShell did not open the runspace pool (state " +
                                            std::to_string(state->state) + ")" + state_reason(state->error));
        }
        if (!closed) {
          return Error::unavailable(describe() + ": PowerShell reported the runspace pool " +
                                    (state->state == 5 ? "broken" : "closed") + state_reason(state->error));
        }
      }
    } else if (const auto* call = std::get_if<HostCall>(&body); call && call->expects_response()) {
      pool_host_calls.push_back(*call);
    }
    return Status{};
  }

  Status on_pipeline_message(Pipeline& pipeline, const ServerMessageBody& body) {
    auto& result = pipeline.result;
    if (const auto* output = std::get_if<PipelineOutput>(&body)) {
      if (result.output.size() >= options.max_output_objects)  // the pipeline cannot be followed any further
        return Error::resource_exhausted(describe() + ", pipeline " + pipeline.guid + ": more than " +
                                         std::to_string(options.max_output_objects) + " output objects");
      result.output.push_back(output->value);
    } else if (const auto* error = std::get_if<ErrorRecordInfo>(&body)) {
      result.errors.push_back(*error);
    } else if (const auto* record = std::get_if<InformationalRecord>(&body)) {
      result.informational.push_back(*record);
    } else if (const auto* state = std::get_if<PipelineStateInfo>(&body)) {
      result.state = *state;
      pipeline.finished = state->terminal();
    } else if (const auto* call = std::get_if<HostCall>(&body); call && call->expects_response()) {
      pipeline.host_calls.push_back(*call);
    }
    return Status{};
  }

  Status dispatch(const OutOfProcPacket& packet) {
    const auto found = pipelines.find(packet.ps_guid);
    Pipeline* pipeline = found == pipelines.end() ? nullptr : found->second.get();
    switch (packet.kind) {
      case PacketKind::kData: {
        auto messages = defragmenter.feed(packet.payload);
        if (!messages.ok()) return std::move(messages).error().context(describe() + ": ");
        if (pipeline == nullptr && !packet.for_pool()) return Status{};  // a pipeline already closed
        for (const auto& bytes : *messages) {
          auto message = decode_message(bytes);
          if (!message.ok()) return std::move(message).error().context(describe() + ": ");
          auto body = parse_server_message(*message, options.clixml_limits);
          if (!body.ok()) return std::move(body).error().context(describe() + ": ");
          WINCERT_TRY(pipeline != nullptr ? on_pipeline_message(*pipeline, *body) : on_pool_message(*body));
        }
        return Status{};
      }
      case PacketKind::kDataAck:
        return Status{};
      case PacketKind::kCommandAck:
        if (pipeline != nullptr) pipeline->command_acked = true;
        return Status{};
      case PacketKind::kSignalAck:
        if (pipeline != nullptr) pipeline->signal_acked = true;
        return Status{};
      case PacketKind::kCloseAck:
        if (pipeline != nullptr) pipeline->close_acked = true;
        if (packet.for_pool()) close_acked = true;
        return Status{};
      default:
        return Error::invalid_argument(describe() + ": PowerShell sent a " +
                                       std::string(packet_kind_name(packet.kind)) +
                                       " packet, which only a client sends");
    }
  }
};

namespace {

// Reads every packet of the pool and routes it; answers the pool's host calls. Ends when the pool is
// closed or dropped, or the stream fails (which breaks the pool).
net::awaitable<void> read_loop(std::shared_ptr<OutOfProcRunspacePool::State> s) {
  s->reader_running = true;
  while (!s->stopping && !s->broken) {
    auto packet = co_await s->channel->read_packet(kReadSlice);
    if (s->stopping) break;
    if (!packet.ok()) {
      if (packet.error().code == ErrorCode::kDeadlineExceeded) continue;  // nothing in this slice
      s->break_pool(std::move(packet).error().context(s->describe() + ": "));
      break;
    }
    if (auto handled = s->dispatch(*packet); !handled.ok()) {
      s->break_pool(std::move(handled).error());
      break;
    }
    while (!s->pool_host_calls.empty()) {
      const HostCall call = s->pool_host_calls.front();
      s->pool_host_calls.erase(s->pool_host_calls.begin());
      (void)co_await s->send(host_call_failure_message(s->id, Guid{}, call), std::string(kPoolPsGuid),
                             DataStream::kPromptResponse);
    }
    s->wake_all();
  }
  s->reader_running = false;
  s->wake_all();
}

}  // namespace

OutOfProcRunspacePool::OutOfProcRunspacePool(std::shared_ptr<State> state) : state_(std::move(state)) {}

OutOfProcRunspacePool::~OutOfProcRunspacePool() {
  state_->stopping = true;  // the reader ends within a slice, and with it the last owner of the channel
}

bool OutOfProcRunspacePool::broken() const { return state_->broken.has_value(); }
const ServerCapability& OutOfProcRunspacePool::server() const { return state_->server; }
const Guid& OutOfProcRunspacePool::id() const { return state_->id; }
std::string OutOfProcRunspacePool::describe() const { return state_->describe(); }

net::awaitable<Result<std::unique_ptr<OutOfProcRunspacePool>>> OutOfProcRunspacePool::open(
    std::unique_ptr<OutOfProcChannel> channel, RunspacePoolOptions options) {
  auto executor = co_await net::this_coro::executor;
  auto s = std::make_shared<State>(executor, std::move(channel), std::move(options));
  std::unique_ptr<OutOfProcRunspacePool> pool(new OutOfProcRunspacePool(s));
  const auto deadline = Clock::now() + s->options.open_timeout;

  // SESSION_CAPABILITY and INIT_RUNSPACEPOOL go together in one Data packet, as PowerShell's client sends.
  auto capability = s->fragmenter.fragment(encode_message(session_capability_message(s->id)));
  if (!capability.ok()) co_return std::move(capability).error();
  auto init = s->fragmenter.fragment(encode_message(init_runspace_pool_message(s->id, s->options.settings)));
  if (!init.ok()) co_return std::move(init).error();
  std::string payload;
  for (const auto& f : *capability) payload += f;
  for (const auto& f : *init) payload += f;
  auto written = co_await s->write(OutOfProcPacket::data(std::string(kPoolPsGuid), std::move(payload)));
  if (!written.ok()) co_return std::move(written).error().context("opening: ");

  s->reader_running = true;  // from now on: set false only by the reader itself
  net::co_spawn(executor, read_loop(s), net::detached);
  auto opened = co_await s->wait_for([&] { return s->opened; }, deadline,
                                     s->describe() + ": PowerShell did not open the runspace pool in time");
  if (!opened.ok()) co_return std::move(opened).error().context("opening: ");
  if (!s->have_capability)
    co_return Error::invalid_argument(s->describe() + ": the pool opened without a SESSION_CAPABILITY reply");
  co_return pool;
}

net::awaitable<Result<PipelineResult>> OutOfProcRunspacePool::invoke(std::vector<PipelineCommand> commands,
                                                                     std::chrono::milliseconds timeout) {
  auto s = state_;
  if (s->broken) co_return Error::unavailable(s->broken->message + " (the pool is broken; open a new one)");
  if (s->closed) co_return Error::unavailable(s->describe() + ": the pool is closed");
  const auto deadline = Clock::now() + timeout;
  auto pipeline = std::make_shared<Pipeline>();
  pipeline->id = Guid::random_v4();
  pipeline->guid = pipeline->id.to_string();
  const std::string what = s->describe() + ", pipeline " + pipeline->guid;
  s->pipelines.emplace(pipeline->guid, pipeline);
  struct Unregister {
    State& state;
    std::string guid;
    ~Unregister() { state.pipelines.erase(guid); }
  } unregister{*s, pipeline->guid};
  const auto late = [&] {
    return what + ": no answer from PowerShell within " + std::to_string(timeout.count()) + " ms";
  };

  WINCERT_CO_TRY(co_await s->write(OutOfProcPacket::of_kind(PacketKind::kCommand, pipeline->guid)));
  auto acked = co_await s->wait_for([&] { return pipeline->command_acked; }, deadline, late());
  if (!acked.ok()) {
    // No pipeline to stop yet, and the server's state is unknown: give the pool up.
    if (acked.error().code == ErrorCode::kDeadlineExceeded) s->break_pool(acked.error());
    co_return std::move(acked).error();
  }
  PipelineSettings pipeline_settings;
  pipeline_settings.minimal = true;
  const Message create = create_pipeline_message(s->id, pipeline->id, commands, pipeline_settings);
  WINCERT_CO_TRY(co_await s->send(create, pipeline->guid));

  // Until the final state, answering host calls (there is no host: each fails at once, so a Read-Host ends
  // the pipeline instead of waiting for an answer nobody gives).
  const auto run_until = [&](const std::function<bool()>& ready, Clock::time_point limit,
                             const std::string& message) -> net::awaitable<Status> {
    for (;;) {
      WINCERT_CO_TRY(co_await s->wait_for([&] { return ready() || !pipeline->host_calls.empty(); }, limit, message));
      while (!pipeline->host_calls.empty()) {
        const HostCall call = pipeline->host_calls.front();
        pipeline->host_calls.erase(pipeline->host_calls.begin());
        const Guid target = call.pipeline ? pipeline->id : Guid{};
        WINCERT_CO_TRY(co_await s->send(host_call_failure_message(s->id, target, call),
                                        call.pipeline ? pipeline->guid : std::string(kPoolPsGuid),
                                        DataStream::kPromptResponse));
      }
      if (ready()) co_return Status{};
    }
  };
  auto ran = co_await run_until([&] { return pipeline->finished; }, deadline, late());
  const bool timed_out = !ran.ok() && ran.error().code == ErrorCode::kDeadlineExceeded && !s->broken;
  if (!ran.ok() && !timed_out) co_return std::move(ran).error();
  if (timed_out) {
    // Stop it, and keep the pool when PowerShell confirms in time.
    WINCERT_CO_TRY(co_await s->write(OutOfProcPacket::of_kind(PacketKind::kSignal, pipeline->guid)));
    auto stopped = co_await run_until([&] { return pipeline->finished && pipeline->signal_acked; },
                                      Clock::now() + kStopGrace, what + ": did not stop when asked");
    if (!stopped.ok()) {
      s->break_pool(Error::deadline_exceeded(what + ": did not finish within " + std::to_string(timeout.count()) +
                                             " ms and did not stop when asked; the pool is given up"));
      co_return *s->broken;
    }
  }
  // Every pipeline that got a Command is closed, or closing the pool would wait for it (psrp.md §6.2).
  WINCERT_CO_TRY(co_await s->write(OutOfProcPacket::of_kind(PacketKind::kClose, pipeline->guid)));
  auto closed = co_await s->wait_for([&] { return pipeline->close_acked; }, Clock::now() + s->options.close_timeout,
                                     what + ": PowerShell did not acknowledge closing the pipeline");
  if (!closed.ok()) {
    s->break_pool(closed.error());
    co_return std::move(closed).error();
  }
  if (timed_out)
    co_return Error::deadline_exceeded(what + ": did not finish within " + std::to_string(timeout.count()) +
                                       " ms; it was stopped");
  co_return std::move(pipeline->result);
}

net::awaitable<Status> OutOfProcRunspacePool::close() {
  auto s = state_;
  if (s->closed) co_return Status{};
  s->closed = true;
  Status outcome;
  if (!s->broken && s->reader_running) {
    outcome = co_await s->write(OutOfProcPacket::of_kind(PacketKind::kClose, std::string(kPoolPsGuid)));
    if (outcome.ok()) {
      outcome = co_await s->wait_for([&] { return s->close_acked; }, Clock::now() + s->options.close_timeout,
                                     s->describe() + ": PowerShell did not acknowledge closing the pool");
    }
  }
  s->stopping = true;
  auto channel_closed = co_await s->channel->close();
  if (outcome.ok() && !channel_closed.ok()) outcome = std::move(channel_closed);
  co_return outcome;
}

}  // namespace wincert::winrm::psrp
