// SshChannel: an OutOfProcChannel over an SSH channel to the server's `powershell` subsystem (PowerShell
// over SSH, what the extension's `WinRM Protocol` = ssh uses). libssh, Linux only: the Windows build has no
// libssh (WINCERT_HAVE_LIBSSH is defined where this is built).
//
// The server's host key is checked against a known-hosts file the agent is configured with: an unknown key
// is kFailedPrecondition, a changed one kUnauthenticated (the server failed to prove who it is), each with
// what to check. Trust on first use, when enabled, appends an unknown key to the file.
// Authentication: a private key given as PEM/OpenSSH text in memory (optionally with a passphrase), or a
// password. Secrets stay in Secret and reach no message; connect() hands them to the session thread, which
// drops them once it has authenticated.
// Use one channel from one thread (the I/O thread of a single-threaded io_context, or a strand); one read
// and one write may be in flight at a time.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "common/result.hpp"
#include "common/secret.hpp"
#include "winrm/psrp/byte_stream.hpp"

namespace wincert::winrm::psrp {

struct SshTarget {
  std::string host;
  std::uint16_t port = 22;
};

// "host", "host:2222", "[::1]:2222", "::1" (a bare IPv6 address has no port). kInvalidArgument otherwise.
Result<SshTarget> parse_ssh_target(std::string_view text, std::uint16_t default_port = 22);

struct SshChannelOptions {
  SshTarget target;
  std::string user;
  Secret private_key;     // PEM or OpenSSH private key text; empty = password authentication
  Secret key_passphrase;  // for an encrypted private key
  Secret password;
  std::string known_hosts_file;  // required: the host key is always verified
  bool trust_on_first_use = false;
  std::string subsystem = "powershell";
  std::chrono::milliseconds connect_timeout{15000};  // TCP connect, and each step of the SSH handshake
  std::chrono::milliseconds write_timeout{30000};
  std::size_t max_line_bytes = kDefaultMaxPacketLineBytes;
  // What the subsystem wrote to the channel's stderr, for error messages. OpenSSH drops a subsystem's stderr,
  // and pwsh -sshs reports its errors on stdout (decode_packet turns them into errors); other servers may not.
  std::size_t stderr_tail_bytes = 4096;
};

class SshChannel final : public OutOfProcChannel {
 public:
  // Connects, verifies the host key, authenticates and starts the subsystem. Errors: kUnavailable (no
  // connection), kDeadlineExceeded, kFailedPrecondition (unknown host key, no such subsystem),
  // kUnauthenticated (changed host key, credentials refused), kInvalidArgument (options, unreadable key).
  static boost::asio::awaitable<Result<std::unique_ptr<SshChannel>>> connect(SshChannelOptions options);
  ~SshChannel() override;
  SshChannel(const SshChannel&) = delete;
  SshChannel& operator=(const SshChannel&) = delete;

  boost::asio::awaitable<Status> write_line(std::string line) override;
  boost::asio::awaitable<Result<std::string>> read_line(std::chrono::milliseconds timeout) override;
  boost::asio::awaitable<Status> close() override;
  std::string describe() const override;

  // What the subsystem wrote to the channel's stderr so far (its last stderr_tail_bytes).
  std::string stderr_tail() const;

  // Session threads end by themselves after a close or destruction (they disconnect cleanly first). At
  // shutdown, wait for them so that none is cut off mid-disconnect; false when some were still running at
  // `timeout`. Blocking: call it after the I/O loop has stopped.
  static bool wait_for_sessions_to_end(std::chrono::milliseconds timeout);
  static std::size_t sessions_running();

  struct Shared;
  struct Waiters;

 private:
  SshChannel(std::shared_ptr<Shared> shared, std::shared_ptr<Waiters> waiters);
  std::shared_ptr<Shared> shared_;
  std::shared_ptr<Waiters> waiters_;
  bool closed_ = false;
};

}  // namespace wincert::winrm::psrp
