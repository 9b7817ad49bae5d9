#include "winrm/winrs.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

#include "common/encoding.hpp"
#include "common/log.hpp"

namespace wincert::winrm {

namespace net = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kFallbackEnvelopeBytes = 150 * 1024;
constexpr std::size_t kMinEnvelopeBytes = 8 * 1024;
// The HTTP read timeout must exceed OperationTimeout: a Receive legitimately waits that long.
constexpr std::chrono::milliseconds kReadTimeoutMargin = 10s;
// A TimedOut fault that comes back long before OperationTimeout means the host (or something on the
// path) does not long-poll: wait before polling again, doubling up to the cap, until the deadline.
constexpr std::chrono::milliseconds kInstantTimeoutFirstWait = 100ms;
constexpr std::chrono::milliseconds kInstantTimeoutMaxWait = 5s;

// One buffer of the pieces, each released as soon as it is copied (the peak is the result plus what is left).
std::string join_releasing(std::vector<std::string>& pieces, std::size_t total) {
  if (pieces.size() == 1) return std::move(pieces.front());
  std::string joined;
  joined.reserve(total);
  for (auto& piece : pieces) {
    joined += piece;
    std::string().swap(piece);
  }
  return joined;
}

std::string duration_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

bool shell_unusable(const WsmanReply& reply) {
  if (reply.http_status == 400) return true;
  return reply.soap.fault && (reply.soap.fault->is_shell_gone() || reply.soap.fault->is_quota());
}

}  // namespace

WinrsSession::WinrsSession(WsmanTransport& transport, SessionOptions options)
    : transport_(transport), options_(std::move(options)), shell_lock_(transport.executor()) {
  context_.to = transport_.endpoint().url();
  context_.session_id = "uuid:" + random_uuid();
  context_.operation_timeout = options_.operation_timeout;
  context_.locale = options_.locale;
  context_.max_envelope_size = options_.max_envelope_size.value_or(kFallbackEnvelopeBytes);
  envelope_known_ = options_.max_envelope_size.has_value();
  // The margin covers the network and the host's own slack; a short OperationTimeout gets a shorter one.
  const auto margin = std::clamp<std::chrono::milliseconds>(options_.operation_timeout, 1s, kReadTimeoutMargin);
  const auto wanted_read_timeout = options_.operation_timeout + margin;
  if (transport_.options().exchange.read_timeout < wanted_read_timeout)
    transport_.set_read_timeout(wanted_read_timeout);
}

WinrsSession::~WinrsSession() { forget_shell(); }  // an abandoned shell no longer counts as open

std::string WinrsSession::where() const { return transport_.endpoint().authority(); }

Error WinrsSession::fault_error(std::string_view what, const WsmanReply& reply) const {
  const std::string text = std::string(what) + " on " + where() + ": ";
  const int status = static_cast<int>(reply.http_status);
  if (!reply.soap.fault) {
    return Error::invalid_argument(text + "unexpected response (HTTP " + std::to_string(reply.http_status) + ")")
        .with_http_status(status);
  }
  const WsmanFault& fault = *reply.soap.fault;
  // A bare HTTP 400 (no SOAP fault) is how hosts answer a request on a shell they dropped: redo on a new one.
  if (status == 400 && fault.code == "http") return Error::aborted(text + fault.summary()).with_http_status(status);
  return fault.to_error().context(text).with_http_status(status);
}

net::awaitable<Result<ServerConfig>> WinrsSession::server_config() {
  if (server_config_) co_return *server_config_;
  RequestContext config_context = context_;
  // Envelopes are named locals throughout: GCC 12 miscompiles temporaries living across a co_await.
  const Envelope request = build_config_get(config_context);
  auto reply = co_await transport_.request(request, "Get WinRM config");
  config_unreachable_ = !reply.ok() && reply.error().retryable();
  if (!reply.ok()) co_return reply.error();
  if (reply->soap.fault) co_return fault_error("Get WinRM config", *reply);
  auto config = parse_config(reply->soap);
  if (!config.ok()) co_return config.error().context("Get WinRM config on " + where() + ": ");
  server_config_ = *config;
  co_return *config;
}

net::awaitable<Status> WinrsSession::ensure_envelope_size() {
  if (envelope_known_) co_return Status{};
  envelope_known_ = true;
  auto config = co_await server_config();
  // A host that could not answer at all (timeout, connection lost) will not answer Create shell either:
  // fail now instead of waiting out a second timeout. A fault (e.g. access denied) falls back below.
  if (!config.ok() && config_unreachable_) {
    envelope_known_ = false;  // ask again next time
    co_return config.error();
  }
  if (config.ok() && config->max_envelope_size_kb > 0) {
    // Clamp to something sane: a hostile peer must not make us build or accept gigantic envelopes.
    const std::size_t bytes = std::min<std::size_t>(config->max_envelope_size_kb, 16 * 1024) * 1024;
    context_.max_envelope_size = std::max(bytes, kMinEnvelopeBytes);
    logger("winrm")->debug("{}: MaxEnvelopeSizekb {}", where(), config->max_envelope_size_kb);
  } else {
    context_.max_envelope_size = kFallbackEnvelopeBytes;
    logger("winrm")->debug("{}: config Get failed ({}), using {} KB envelopes", where(),
                           config.ok() ? std::string("no MaxEnvelopeSizekb") : config.error().message,
                           kFallbackEnvelopeBytes / 1024);
  }
  co_return Status{};
}

net::awaitable<Status> WinrsSession::ensure_shell() {
  if (shell_open()) co_return Status{};
  auto guard = co_await shell_lock_.acquire();
  if (!guard.locked()) co_return Error::cancelled("opening a shell on " + where() + " was cancelled");
  if (shell_open()) co_return Status{};  // another caller opened it while we waited
  WINCERT_CO_TRY(co_await ensure_envelope_size());
  const Envelope request = build_create_shell(context_, options_.shell);
  WINCERT_CO_ASSIGN_OR_RETURN(const WsmanReply reply, co_await transport_.request(request, "Create shell"));
  if (reply.soap.fault) co_return fault_error("Create shell", reply);
  auto created = parse_create_shell(reply.soap);
  if (!created.ok()) co_return created.error().context("Create shell on " + where() + ": ");
  shell_ = std::move(*created);
  ++counters_.shells_created;
  if (auto* observer = transport_.options().observer) observer->shell_created(transport_.endpoint().host);
  logger("winrm")->debug("{}: shell {} created", where(), shell_.shell_id);
  co_return Status{};
}

net::awaitable<Result<CommandOutput>> WinrsSession::run(CommandSpec spec) {
  for (int attempt = 0;; ++attempt) {
    WINCERT_CO_TRY(co_await ensure_shell());
    const auto shell_selectors = shell_.selectors;
    const bool console_stdin = spec.console_mode_stdin.value_or(spec.stdin_data.empty());
    const Envelope request =
        build_command(context_, shell_selectors, spec.command, spec.arguments, spec.skip_cmd_shell, console_stdin);
    WINCERT_CO_ASSIGN_OR_RETURN(const WsmanReply reply, co_await transport_.request(request, "Command"));
    if (reply.soap.fault) {
      if (shell_unusable(reply) && attempt == 0) {
        // Idle shells get disconnected/removed by the host, and quotas fill up: start a fresh shell.
        logger("winrm")->debug("{}: shell {} unusable ({}); reopening", where(), shell_.shell_id,
                               reply.soap.fault->summary());
        if (reply.soap.fault->is_quota()) co_await close();
        forget_shell();
        continue;
      }
      co_return fault_error("Command", reply);
    }
    auto command_id = parse_command_id(reply.soap);
    if (!command_id.ok()) co_return command_id.error().context("Command on " + where() + ": ");
    ++counters_.commands;
    auto output = co_await drive(spec, *command_id);
    co_await signal(*command_id);
    co_return output;
  }
}

net::awaitable<Result<CommandOutput>> WinrsSession::drive(const CommandSpec& spec, const std::string& command_id) {
  const auto deadline_after = spec.deadline.value_or(options_.command_deadline);
  const auto deadline = std::chrono::steady_clock::now() + deadline_after;
  auto past_deadline = [&]() -> Error {
    return Error::deadline_exceeded(
        "command '" + spec.command + "' on " + where() + " did not finish within " +
        duration_text(std::chrono::duration_cast<std::chrono::milliseconds>(deadline_after)) +
        " (deadline); it was terminated");
  };

  if (!spec.stdin_data.empty()) {
    std::size_t chunk = send_chunk_capacity(context_.max_envelope_size);
    if (spec.stdin_chunk_limit > 0) chunk = std::min(chunk, spec.stdin_chunk_limit);
    if (chunk == 0)
      co_return Error::invalid_argument("envelope size " + std::to_string(context_.max_envelope_size) + " of " +
                                        where() + " is too small to send stdin");
    std::size_t offset = 0;
    while (offset < spec.stdin_data.size()) {
      if (std::chrono::steady_clock::now() > deadline) co_return past_deadline();
      const std::size_t n = std::min(chunk, spec.stdin_data.size() - offset);
      const bool last = offset + n == spec.stdin_data.size();
      const Envelope request =
          build_send(context_, shell_.selectors, command_id, std::string_view(spec.stdin_data).substr(offset, n), last);
      WINCERT_CO_ASSIGN_OR_RETURN(const WsmanReply reply, co_await transport_.request(request, "Send"));
      if (reply.soap.fault) co_return fault_error("Send", reply);
      offset += n;
    }
  }

  CommandOutput output;
  // stdout in the pieces the Receives brought, joined once at the end: appending to one string would hold the
  // old and the doubled buffer at once at every growth (a 5 MB inventory briefly took 15).
  std::vector<std::string> stdout_pieces;
  std::size_t stdout_bytes = 0;
  std::chrono::milliseconds instant_timeout_wait{0};
  for (;;) {
    if (std::chrono::steady_clock::now() > deadline) co_return past_deadline();
    const Envelope request = build_receive(context_, shell_.selectors, command_id);
    const auto polled_at = std::chrono::steady_clock::now();
    auto reply = co_await transport_.request(request, "Receive");
    ++counters_.receives;
    if (!reply.ok()) co_return reply.error();
    if (reply->soap.fault) {
      if (!reply->soap.fault->is_operation_timeout()) co_return fault_error("Receive", *reply);
      // Normal long-poll expiry: poll again. An instant one: poll again after a growing pause.
      const auto now = std::chrono::steady_clock::now();
      if (now - polled_at >= context_.operation_timeout / 2) {
        instant_timeout_wait = {};
        continue;
      }
      instant_timeout_wait = instant_timeout_wait.count() == 0
                                 ? kInstantTimeoutFirstWait
                                 : std::min(instant_timeout_wait * 2, kInstantTimeoutMaxWait);
      ++counters_.instant_timeouts;
      if (now >= deadline) co_return past_deadline();
      net::steady_timer pause(transport_.executor());
      pause.expires_after(std::min<std::chrono::steady_clock::duration>(instant_timeout_wait, deadline - now));
      co_await pause.async_wait(net::as_tuple(net::use_awaitable));
      continue;
    }
    instant_timeout_wait = {};
    auto received = parse_receive(reply->soap, command_id);
    if (!received.ok()) co_return received.error().context("Receive on " + where() + ": ");
    stdout_bytes += received->stdout_data.size();
    if (!received->stdout_data.empty()) stdout_pieces.push_back(std::move(received->stdout_data));
    output.stderr_data += received->stderr_data;
    if (stdout_bytes + output.stderr_data.size() > options_.max_output_bytes) {
      co_return Error::invalid_argument("command '" + spec.command + "' on " + where() + " produced more than " +
                                        std::to_string(options_.max_output_bytes / (1024 * 1024)) + " MiB of output");
    }
    if (received->done) {
      output.exit_code = received->exit_code.value_or(-1);
      output.stdout_data = join_releasing(stdout_pieces, stdout_bytes);
      co_return output;
    }
  }
}

net::awaitable<void> WinrsSession::signal(const std::string& command_id) {
  // Always sent (MS-WSMV 3.1.4.14); a failure here does not change the command's outcome.
  const Envelope request = build_signal(context_, shell_.selectors, command_id, options_.signal_code);
  auto reply = co_await transport_.request(request, "Signal");
  if (!reply.ok()) {
    logger("winrm")->debug("{}: Signal for command {} failed: {}", where(), command_id, reply.error().message);
  } else if (reply->soap.fault) {
    logger("winrm")->debug("{}: Signal for command {}: {}", where(), command_id, reply->soap.fault->summary());
    if (shell_unusable(*reply)) forget_shell();
  }
}

void WinrsSession::forget_shell() {
  if (!shell_open()) return;
  if (auto* observer = transport_.options().observer) observer->shell_closed(transport_.endpoint().host);
  shell_ = {};
}

net::awaitable<Status> WinrsSession::close() {
  if (!shell_open()) co_return Status{};
  const auto selectors = shell_.selectors;
  forget_shell();
  const Envelope request = build_delete_shell(context_, selectors);
  WINCERT_CO_ASSIGN_OR_RETURN(const WsmanReply reply, co_await transport_.request(request, "Delete shell"));
  if (reply.soap.fault) {
    const auto& fault = *reply.soap.fault;
    if (fault.is_shell_gone() || fault.wsman_code == fault_code::kOperationAborted) co_return Status{};
    co_return fault_error("Delete shell", reply);
  }
  co_return Status{};
}

}  // namespace wincert::winrm
