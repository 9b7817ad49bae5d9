// Threading: one dedicated thread per SSH session runs every libssh call for it.
//   libssh's calls block (connect, key exchange, authentication, channel requests, writes waiting for the
//   peer's window), and a session must only be used from one thread at a time. Its non-blocking mode would
//   let asio wait on the socket instead, but during key exchange and authentication it does not say whether
//   it waits to read or to write, and every call site would need its own resume loop. A thread per session
//   keeps libssh in its plain blocking use, off the I/O thread, at the cost of one mostly sleeping thread per
//   warm connection (one per host). Once the channel is open the thread polls the socket and a wake-up pipe,
//   so a write queued by the I/O thread goes out at once even while the thread waits for the server's output.
// The I/O side and the thread share `Shared` under a mutex; the thread wakes a waiting coroutine by posting
// a cancel of its timer to the coroutine's executor, never after the channel is gone (`gate_open`).
#include "winrm/psrp/ssh_channel.hpp"

#include <fcntl.h>
#include <libssh/libssh.h>
#include <poll.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "common/encoding.hpp"

namespace wincert::winrm::psrp {
namespace net = boost::asio;
using Clock = std::chrono::steady_clock;

// The coroutines' timers; the session thread cancels them (through a post) to wake a waiter.
struct SshChannel::Waiters {
  explicit Waiters(const net::any_io_executor& executor) : reader(executor), writer(executor), opener(executor) {}
  void wake_all() {
    reader.cancel();
    writer.cancel();
    opener.cancel();
  }
  net::steady_timer reader;
  net::steady_timer writer;
  net::steady_timer opener;
};

struct SshChannel::Shared {
  enum class Phase : std::uint8_t { kConnecting, kOpen, kEnded };

  Shared(net::any_io_executor io, SshChannelOptions opts) : executor(std::move(io)), options(std::move(opts)) {}
  ~Shared() {
    for (int fd : wake_pipe) {
      if (fd >= 0) ::close(fd);
    }
  }

  const net::any_io_executor executor;
  const SshChannelOptions options;
  int wake_pipe[2] = {-1, -1};

  mutable std::mutex mutex;
  // Guarded by mutex.
  Phase phase = Phase::kConnecting;
  std::optional<Error> failure;  // why the session ended (or never opened)
  bool stop = false;             // the I/O side asks the thread to end the session
  bool gate_open = true;         // false once nobody on the I/O side may be woken any more
  std::weak_ptr<Waiters> waiters;
  std::deque<std::string> outbound;  // lines (with "\n") waiting for the thread
  std::uint64_t lines_queued = 0;
  std::uint64_t lines_written = 0;
  std::string inbound;  // bytes from the subsystem's stdout not yet taken by read_line
  bool remote_eof = false;
  bool reading_paused = false;  // the thread stopped reading until read_line takes a line
  std::string remote_stderr;

  std::string describe() const {
    return "ssh " + options.user + "@" + options.target.host + ":" + std::to_string(options.target.port);
  }

  // Called by the thread with mutex held: wakes whichever coroutine waits.
  void wake_io_side_locked() {
    if (!gate_open) return;
    net::post(executor, [w = waiters] {
      if (auto alive = w.lock()) alive->wake_all();
    });
  }
  // Called by the I/O side: wakes the thread out of poll().
  void wake_thread() const {
    const char byte = 1;
    [[maybe_unused]] const auto ignored = ::write(wake_pipe[1], &byte, 1);  // a full pipe is awake already
  }
};

namespace {

constexpr std::size_t kReadChunk = 16384;
constexpr std::size_t kWriteChunk = 32768;
// The thread's poll() also wakes this often, in case libssh buffered data while it wrote.
constexpr int kPollMilliseconds = 500;

// RAII for the libssh handles the thread owns.
struct SessionHandles {
  ssh_session session = nullptr;
  ssh_channel channel = nullptr;
  ~SessionHandles() {
    if (channel != nullptr) {
      if (ssh_channel_is_open(channel)) {
        ssh_channel_send_eof(channel);
        ssh_channel_close(channel);
      }
      ssh_channel_free(channel);
    }
    if (session != nullptr) {
      ssh_disconnect(session);
      ssh_free(session);
    }
  }
};

// The secrets, moved out of the options into the session thread, and gone once it has authenticated.
struct Credentials {
  Secret private_key;
  Secret key_passphrase;
  Secret password;
};

struct KeyHandle {
  ssh_key key = nullptr;
  ~KeyHandle() {
    if (key != nullptr) ssh_key_free(key);
  }
};

std::string session_error(ssh_session session) {
  const char* text = ssh_get_error(session);
  return text != nullptr && *text != '\0' ? text : "unknown libssh error";
}

// "SHA256:…" of the server's host key, for messages.
std::string host_key_fingerprint(ssh_session session) {
  KeyHandle server_key;
  if (ssh_get_server_publickey(session, &server_key.key) != SSH_OK) return "(fingerprint unavailable)";
  unsigned char* hash = nullptr;
  size_t hash_length = 0;
  if (ssh_get_publickey_hash(server_key.key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hash_length) != SSH_OK) {
    return "(fingerprint unavailable)";
  }
  char* text = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hash_length);
  ssh_clean_pubkey_hash(&hash);
  if (text == nullptr) return "(fingerprint unavailable)";
  std::string fingerprint(text);
  ssh_string_free_char(text);
  return fingerprint;
}

Status verify_host_key(ssh_session session, const SshChannelOptions& options, const std::string& who) {
  const std::string& file = options.known_hosts_file;
  switch (ssh_session_is_known_server(session)) {
    case SSH_KNOWN_HOSTS_OK:
      return Status();
    case SSH_KNOWN_HOSTS_CHANGED:
    case SSH_KNOWN_HOSTS_OTHER:
      return Error::unauthenticated(who + ": the server's host key (" + host_key_fingerprint(session) +
                                    ") differs from the one in the " + "known-hosts file " + file +
                                    "; the host was reinstalled or the connection is intercepted: check the " +
                                    "key with the host's administrator, then replace its line in that file");
    case SSH_KNOWN_HOSTS_UNKNOWN:
    case SSH_KNOWN_HOSTS_NOT_FOUND:
      if (!options.trust_on_first_use) {
        return Error::failed_precondition(
            who + ": the server's host key (" + host_key_fingerprint(session) + ") is not in the known-hosts " +
            "file " + file + "; check the fingerprint with the host's administrator and add the key (e.g. " +
            "ssh-keyscan), or enable trust on first use");
      }
      if (ssh_session_update_known_hosts(session) != SSH_OK) {
        return Error::failed_precondition(who + ": cannot add the server's host key to the known-hosts file " + file +
                                          ": " + session_error(session));
      }
      return Status();
    case SSH_KNOWN_HOSTS_ERROR:
      break;
  }
  return Error::failed_precondition(who + ": cannot check the server's host key against the known-hosts file " + file +
                                    ": " + session_error(session));
}

Status authenticate(ssh_session session, const SshChannelOptions& options, const Credentials& credentials,
                    const std::string& who) {
  int outcome = SSH_AUTH_ERROR;
  std::string method;
  if (!credentials.private_key.empty()) {
    method = "the private key";
    KeyHandle key;
    const char* passphrase = credentials.key_passphrase.empty() ? nullptr : credentials.key_passphrase.reveal().c_str();
    if (ssh_pki_import_privkey_base64(credentials.private_key.reveal().c_str(), passphrase, nullptr, nullptr,
                                      &key.key) != SSH_OK) {
      return Error::invalid_argument(who + ": the private key cannot be read (it must be PEM or OpenSSH " +
                                     "private key text; an encrypted key needs its passphrase)");
    }
    outcome = ssh_userauth_publickey(session, nullptr, key.key);
  } else if (!credentials.password.empty()) {
    method = "the password";
    outcome = ssh_userauth_password(session, nullptr, credentials.password.reveal().c_str());
  } else {
    return Error::invalid_argument(who + ": neither a private key nor a password is configured");
  }
  switch (outcome) {
    case SSH_AUTH_SUCCESS:
      return Status();
    case SSH_AUTH_DENIED:
    case SSH_AUTH_PARTIAL:
      return Error::unauthenticated(who + ": the server refused " + method + " of user " + options.user +
                                    "; check the user name and the credentials (for a key: the user's " +
                                    "authorized_keys on the host)");
    default:
      return Error::unavailable(who + ": authentication failed: " + session_error(session));
  }
}

// Connect, verify, authenticate, open the subsystem. Blocking; on the session thread.
Status open_session(SessionHandles& handles, const SshChannelOptions& options, Credentials credentials,
                    const std::string& who) {
  handles.session = ssh_new();
  if (handles.session == nullptr) return Error::resource_exhausted(who + ": cannot create a libssh session");
  ssh_session session = handles.session;
  const long timeout_seconds = std::max<long>(1, static_cast<long>((options.connect_timeout.count() + 999) / 1000));
  const unsigned int port = options.target.port;
  const int verbosity = SSH_LOG_NOLOG;  // libssh would log to stderr; and it must never see a secret there
  const int no = 0;
  if (ssh_options_set(session, SSH_OPTIONS_HOST, options.target.host.c_str()) != SSH_OK ||
      ssh_options_set(session, SSH_OPTIONS_PORT, &port) != SSH_OK ||
      ssh_options_set(session, SSH_OPTIONS_USER, options.user.c_str()) != SSH_OK ||
      ssh_options_set(session, SSH_OPTIONS_TIMEOUT, &timeout_seconds) != SSH_OK ||
      ssh_options_set(session, SSH_OPTIONS_LOG_VERBOSITY, &verbosity) != SSH_OK ||
      // Only the agent's known-hosts file, and none of the user's ~/.ssh/config.
      ssh_options_set(session, SSH_OPTIONS_PROCESS_CONFIG, &no) != SSH_OK ||
      ssh_options_set(session, SSH_OPTIONS_KNOWNHOSTS, options.known_hosts_file.c_str()) != SSH_OK ||
      ssh_options_set(session, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null") != SSH_OK) {
    return Error::invalid_argument(who + ": bad SSH options: " + session_error(session));
  }
  const auto connect_started = Clock::now();
  if (ssh_connect(session) != SSH_OK) {
    // libssh reports a timeout like any other failure; the time spent tells them apart.
    if (Clock::now() - connect_started >= options.connect_timeout) {
      return Error::deadline_exceeded(who + ": no SSH handshake within " +
                                      std::to_string(options.connect_timeout.count()) + " ms (" +
                                      session_error(session) + "); check that sshd answers on that port");
    }
    return Error::unavailable(who + ": cannot connect: " + session_error(session) +
                              "; check the host name, the port and that sshd runs there");
  }
  WINCERT_TRY(verify_host_key(session, options, who));
  WINCERT_TRY(authenticate(session, options, credentials, who));

  handles.channel = ssh_channel_new(session);
  if (handles.channel == nullptr || ssh_channel_open_session(handles.channel) != SSH_OK) {
    return Error::unavailable(who + ": cannot open a session channel: " + session_error(session));
  }
  if (ssh_channel_request_subsystem(handles.channel, options.subsystem.c_str()) != SSH_OK) {
    if (!ssh_is_connected(session)) {
      return Error::unavailable(who + ": the connection ended while requesting the '" + options.subsystem +
                                "' subsystem: " + session_error(session));
    }
    return Error::failed_precondition(who + ": the server has no '" + options.subsystem + "' subsystem; add " +
                                      "'Subsystem " + options.subsystem + " <path to pwsh> -sshs -NoLogo " +
                                      "-NoProfile' to its sshd_config and restart sshd");
  }
  return Status();
}

// Moves the subsystem's buffered output (stdout and stderr) into `shared`. False when the channel ended.
bool pump_reads(ssh_channel channel, SshChannel::Shared& shared, std::array<char, kReadChunk>& buffer) {
  bool delivered = false;
  bool ended = false;
  bool paused = false;
  {
    std::lock_guard lock(shared.mutex);
    // Back-pressure: with this much unread, stop taking the subsystem's output; libssh then stops widening
    // the window and the server stops sending. read_line wakes the thread when it has taken a line.
    paused = shared.inbound.size() >= shared.options.max_line_bytes + kReadChunk;
    shared.reading_paused = paused;
  }
  if (paused && ssh_channel_poll(channel, 0) == SSH_ERROR) ended = true;  // still handle packets (acks, adjusts)
  for (int is_stderr = paused ? 1 : 0; is_stderr <= 1 && !ended; ++is_stderr) {
    while (true) {
      const int n =
          ssh_channel_read_nonblocking(channel, buffer.data(), static_cast<std::uint32_t>(buffer.size()), is_stderr);
      if (n == SSH_ERROR) {
        ended = true;
        break;
      }
      if (n <= 0) break;
      std::lock_guard lock(shared.mutex);
      if (is_stderr) {
        shared.remote_stderr.append(buffer.data(), static_cast<std::size_t>(n));
        const std::size_t limit = shared.options.stderr_tail_bytes;
        if (shared.remote_stderr.size() > limit) shared.remote_stderr.erase(0, shared.remote_stderr.size() - limit);
      } else {
        shared.inbound.append(buffer.data(), static_cast<std::size_t>(n));
        delivered = true;
        if (shared.inbound.size() >= shared.options.max_line_bytes + kReadChunk) break;
      }
    }
  }
  if (ssh_channel_is_eof(channel) || ssh_channel_is_closed(channel)) ended = true;
  if (delivered || ended) {
    std::lock_guard lock(shared.mutex);
    if (ended) shared.remote_eof = true;
    shared.wake_io_side_locked();
  }
  return !ended;
}

// Shuttles lines until asked to stop or the channel ends; an error when the session failed.
std::optional<Error> shuttle(SessionHandles& handles, SshChannel::Shared& shared, const std::string& who) {
  std::array<char, kReadChunk> buffer{};
  const int socket_fd = ssh_get_fd(handles.session);
  std::deque<std::string> pending;  // lines taken from `outbound`, the first one partly written
  std::size_t written_of_first = 0;
  while (true) {
    {
      std::lock_guard lock(shared.mutex);
      if (shared.stop) return std::nullopt;
      for (auto& line : shared.outbound) pending.push_back(std::move(line));
      shared.outbound.clear();
    }
    // Writes only what the server's window takes now, so that the thread never blocks in a write while the
    // server blocks writing to us (a subsystem that echoes would deadlock both); the rest goes after the
    // next window adjust.
    while (!pending.empty()) {
      const std::string& line = pending.front();
      const std::size_t chunk = std::min<std::size_t>(
          {line.size() - written_of_first, ssh_channel_window_size(handles.channel), kWriteChunk});
      if (chunk == 0) break;
      if (ssh_channel_write(handles.channel, line.data() + written_of_first, static_cast<std::uint32_t>(chunk)) !=
          static_cast<int>(chunk)) {
        return Error::unavailable(who + ": writing to the subsystem failed: " + session_error(handles.session));
      }
      written_of_first += chunk;
      if (written_of_first < line.size()) continue;
      pending.pop_front();
      written_of_first = 0;
      std::lock_guard lock(shared.mutex);
      ++shared.lines_written;
      shared.wake_io_side_locked();
    }
    if (!pump_reads(handles.channel, shared, buffer)) return std::nullopt;  // read_line reports the end
    std::array<pollfd, 2> fds{};
    fds[0].fd = socket_fd;
    fds[0].events = POLLIN;
    fds[1].fd = shared.wake_pipe[0];
    fds[1].events = POLLIN;
    if (::poll(fds.data(), fds.size(), kPollMilliseconds) > 0 && (fds[1].revents & POLLIN) != 0) {
      std::array<char, 64> drain{};
      while (::read(shared.wake_pipe[0], drain.data(), drain.size()) > 0) {
      }
    }
  }
}

// The session threads still running: counted from before each starts until after it has freed everything,
// so that shutdown can wait for them (SshChannel::wait_for_sessions_to_end).
struct SessionThreads {
  std::mutex mutex;
  std::condition_variable ended;
  std::size_t running = 0;
};
SessionThreads& session_threads() {
  static auto* threads = new SessionThreads;  // never destroyed: a detached thread may finish during exit
  return *threads;
}

// The session thread: open, shuttle, and only then report the end (after the session is disconnected).
void run_session(std::shared_ptr<SshChannel::Shared> shared, Credentials credentials) {
  const std::string who = shared->describe();
  std::optional<Error> failure;
  {
    SessionHandles handles;
    if (auto opened = open_session(handles, shared->options, std::move(credentials), who); !opened.ok()) {
      failure = std::move(opened).error();
    } else {
      {
        std::lock_guard lock(shared->mutex);
        shared->phase = SshChannel::Shared::Phase::kOpen;
        shared->wake_io_side_locked();
      }
      failure = shuttle(handles, *shared, who);
    }
  }  // EOF, channel close, disconnect
  std::lock_guard lock(shared->mutex);
  shared->phase = SshChannel::Shared::Phase::kEnded;
  if (failure && !shared->failure) shared->failure = std::move(failure);
  shared->wake_io_side_locked();
}

void run_session_counted(std::shared_ptr<SshChannel::Shared> shared, Credentials credentials) {
  run_session(std::move(shared), std::move(credentials));
  OPENSSL_thread_stop();  // this thread's random generators (libssh's key exchange made them)
  auto& threads = session_threads();
  std::lock_guard lock(threads.mutex);
  --threads.running;
  threads.ended.notify_all();
}

void ssh_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { ssh_init(); });
}

// Waits on `timer` until `ready()` (checked under the mutex) or `deadline`. The thread's post cancels the
// wait; on this single-threaded executor no wake-up can fall between the check and the wait.
template <class Ready>
net::awaitable<bool> wait_until(SshChannel::Shared& shared, net::steady_timer& timer, Clock::time_point deadline,
                                Ready ready) {
  while (true) {
    {
      std::lock_guard lock(shared.mutex);
      if (ready()) co_return true;
    }
    if (Clock::now() >= deadline) co_return false;
    timer.expires_at(deadline);
    co_await timer.async_wait(net::as_tuple(net::use_awaitable));
  }
}

}  // namespace

Result<SshTarget> parse_ssh_target(std::string_view text, std::uint16_t default_port) {
  const auto bad = [&](std::string_view why) {
    return Error::invalid_argument("SSH target '" + std::string(text) + "' " + std::string(why) +
                                   " (expected HOST, HOST:PORT or [IPv6]:PORT)");
  };
  SshTarget target;
  target.port = default_port;
  std::string_view host = text;
  std::optional<std::string_view> port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return bad("has no closing bracket");
    host = text.substr(1, close - 1);
    const auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("has text after the bracket");
      port = rest.substr(1);
    }
  } else if (const auto colon = text.find(':'); colon != std::string_view::npos && colon == text.rfind(':')) {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }  // more than one colon: a bare IPv6 address
  if (host.empty()) return bad("has no host");
  if (port) {
    unsigned value = 0;
    const auto [end, error] = std::from_chars(port->data(), port->data() + port->size(), value);
    if (port->empty() || error != std::errc() || end != port->data() + port->size() || value == 0 || value > 65535) {
      return bad("has a bad port");
    }
    target.port = static_cast<std::uint16_t>(value);
  }
  target.host = std::string(host);
  return target;
}

net::awaitable<Result<std::unique_ptr<SshChannel>>> SshChannel::connect(SshChannelOptions options) {
  if (options.known_hosts_file.empty()) {
    co_return Error::invalid_argument("ssh " + options.target.host + ": no known-hosts file is configured; " +
                                      "the server's host key must be verified");
  }
  if (options.target.host.empty() || options.user.empty()) {
    co_return Error::invalid_argument("ssh: the host and the user name are required");
  }
  ssh_init_once();
  auto executor = co_await net::this_coro::executor;
  Credentials credentials{std::move(options.private_key), std::move(options.key_passphrase),
                          std::move(options.password)};
  auto shared = std::make_shared<Shared>(executor, std::move(options));
  if (::pipe2(shared->wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    co_return Error::resource_exhausted(shared->describe() + ": cannot create a pipe");
  }
  auto waiters = std::make_shared<Waiters>(executor);
  shared->waiters = waiters;
  {
    auto& threads = session_threads();
    std::lock_guard lock(threads.mutex);
    ++threads.running;
  }
  // It owns `shared` too, and ends by itself.
  std::thread(run_session_counted, shared, std::move(credentials)).detach();
  // Should this coroutine end early (its io_context stopped), the thread stops and wakes nobody any more.
  struct Abandon {
    Shared* shared;
    bool armed = true;
    ~Abandon() {
      if (!armed) return;
      {
        std::lock_guard lock(shared->mutex);
        shared->stop = true;
        shared->gate_open = false;
      }
      shared->wake_thread();
    }
  } abandon{shared.get()};

  // Connect, key exchange, authentication and the channel requests each have the libssh timeout; the
  // deadline here covers all of them.
  const auto deadline = Clock::now() + 4 * shared->options.connect_timeout;
  const bool settled = co_await wait_until(*shared, waiters->opener, deadline,
                                           [&] { return shared->phase != Shared::Phase::kConnecting; });
  std::unique_lock lock(shared->mutex);
  if (!settled || shared->phase != Shared::Phase::kOpen) {
    std::optional<Error> failure = shared->failure;
    lock.unlock();
    if (failure) co_return std::move(*failure);
    co_return Error::deadline_exceeded(shared->describe() + ": the SSH connection did not open within " +
                                       std::to_string(4 * shared->options.connect_timeout.count()) + " ms");
  }
  lock.unlock();
  abandon.armed = false;  // the channel's destructor takes over
  co_return std::unique_ptr<SshChannel>(new SshChannel(std::move(shared), std::move(waiters)));
}

SshChannel::SshChannel(std::shared_ptr<Shared> shared, std::shared_ptr<Waiters> waiters)
    : shared_(std::move(shared)), waiters_(std::move(waiters)) {}

SshChannel::~SshChannel() {
  {
    std::lock_guard lock(shared_->mutex);
    shared_->stop = true;
    shared_->gate_open = false;
  }
  shared_->wake_thread();  // the thread disconnects and frees the session by itself
}

std::string SshChannel::describe() const { return shared_->describe(); }

bool SshChannel::wait_for_sessions_to_end(std::chrono::milliseconds timeout) {
  auto& threads = session_threads();
  std::unique_lock lock(threads.mutex);
  return threads.ended.wait_for(lock, timeout, [&] { return threads.running == 0; });
}

std::size_t SshChannel::sessions_running() {
  auto& threads = session_threads();
  std::lock_guard lock(threads.mutex);
  return threads.running;
}

std::string SshChannel::stderr_tail() const {
  std::lock_guard lock(shared_->mutex);
  return shared_->remote_stderr;
}

net::awaitable<Status> SshChannel::write_line(std::string line) {
  auto& s = *shared_;
  if (line.find('\n') != std::string::npos) {
    co_return Error::internal("an OutOfProc line must not contain a line break (to " + s.describe() + ")");
  }
  std::uint64_t ticket = 0;
  {
    std::lock_guard lock(s.mutex);
    if (closed_ || s.phase != Shared::Phase::kOpen || s.stop) {
      co_return Error::unavailable(s.describe() + ": the session is closed; open a new one");
    }
    line += '\n';
    s.outbound.push_back(std::move(line));
    ticket = ++s.lines_queued;
  }
  s.wake_thread();
  const bool done = co_await wait_until(s, waiters_->writer, Clock::now() + s.options.write_timeout,
                                        [&] { return s.lines_written >= ticket || s.phase == Shared::Phase::kEnded; });
  std::lock_guard lock(s.mutex);
  if (s.lines_written >= ticket) co_return Status();
  if (!done) {
    co_return Error::deadline_exceeded(s.describe() + ": the server did not take a line within " +
                                       std::to_string(s.options.write_timeout.count()) + " ms");
  }
  if (s.failure) co_return *s.failure;
  co_return Error::unavailable(s.describe() + ": the session ended before the line was sent");
}

net::awaitable<Result<std::string>> SshChannel::read_line(std::chrono::milliseconds timeout) {
  auto& s = *shared_;
  std::optional<Result<std::string>> outcome;
  std::string stderr_tail;
  bool ended = false;
  co_await wait_until(s, waiters_->reader, Clock::now() + timeout, [&] {
    // The thread only appends to `inbound`; only this side takes from it.
    const auto end = s.inbound.find('\n');
    const std::size_t length = end == std::string::npos ? s.inbound.size() : end;
    if (length > s.options.max_line_bytes) {
      outcome = Error::resource_exhausted(s.describe() + ": a line from the PowerShell server is over the limit of " +
                                          std::to_string(s.options.max_line_bytes) + " bytes");
      return true;
    }
    if (end != std::string::npos) {
      outcome = s.inbound.substr(0, end);
      s.inbound.erase(0, end + 1);
      if (s.reading_paused) s.wake_thread();
      return true;
    }
    if (closed_) {
      outcome = Error::unavailable(s.describe() + ": the session is closed");
      return true;
    }
    if (s.failure) {
      outcome = *s.failure;
      return true;
    }
    if (s.remote_eof || s.phase == Shared::Phase::kEnded) {
      stderr_tail = s.remote_stderr;
      ended = true;
      return true;
    }
    return false;
  });
  if (outcome) co_return std::move(*outcome);
  if (ended) {
    std::string tail(trim(stderr_tail));
    for (char& c : tail) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    co_return Error::unavailable(s.describe() + ": the '" + s.options.subsystem + "' subsystem ended the session (" +
                                 (tail.empty() ? "nothing on stderr" : "stderr: " + tail) +
                                 "); check the Subsystem line of the host's sshd_config");
  }
  co_return Error::deadline_exceeded("no whole line from " + s.describe() + " within " +
                                     std::to_string(timeout.count()) + " ms");
}

net::awaitable<Status> SshChannel::close() {
  auto& s = *shared_;
  if (closed_) co_return Status();
  closed_ = true;
  {
    std::lock_guard lock(s.mutex);
    s.stop = true;
  }
  s.wake_thread();
  // The thread sends EOF, closes the channel and disconnects; wait for that briefly so the server sees a
  // clean end, but never hang on a dead peer.
  co_await wait_until(s, waiters_->opener, Clock::now() + s.options.connect_timeout,
                      [&] { return s.phase == Shared::Phase::kEnded; });
  co_return Status();
}

}  // namespace wincert::winrm::psrp
