// SshChannel against a real OpenSSH server the tests start: /usr/sbin/sshd on a free loopback port with its
// own host key, sshd_config and authorized_keys in a temporary directory, and `Subsystem powershell` = the
// project's pwsh -sshs. Without sshd, ssh-keygen, pwsh or libssh the tests are SKIPPED (FAILED under CI=true).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/result_matchers.hpp"
#include "tests/winrm/psrp/transport_test_util.hpp"

#ifdef WINCERT_HAVE_LIBSSH
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "winrm/psrp/runspace_pool.hpp"
#include "winrm/psrp/ssh_channel.hpp"

extern char** environ;  // NOLINT: POSIX declares it nowhere else

namespace wincert::winrm::psrp {
// Defined in process_channel_test.cpp: the pool handshake over any OutOfProcChannel.
boost::asio::awaitable<void> open_and_close_pool(OutOfProcChannel& channel);

namespace {

namespace fs = std::filesystem;
namespace net = boost::asio;
using namespace std::chrono_literals;
using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::run_coroutine;
using Clock = std::chrono::steady_clock;

constexpr const char* kSshd = "/usr/sbin/sshd";
constexpr const char* kSshKeygen = "/usr/bin/ssh-keygen";

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

int run_program(std::vector<std::string> argv) {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A loopback port nothing listens on (a moment ago).
std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

bool accepts_connections(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return ok;
}

// One sshd -D -e on a loopback port; stopped (and reaped) by the destructor.
class SshServer {
 public:
  // `subsystem`: the command of `Subsystem powershell`, none when empty.
  SshServer(const fs::path& dir, const std::string& name, const fs::path& host_key, const std::string& subsystem)
      : port_(free_port()), log_(dir / (name + ".log")) {
    std::string config = "Port " + std::to_string(port_) +
                         "\n"
                         "ListenAddress 127.0.0.1\n"
                         "HostKey " +
                         host_key.string() +
                         "\n"
                         "PidFile none\n"
                         "AuthorizedKeysFile " +
                         (dir / "authorized_keys").string() +
                         "\n"
                         "StrictModes no\n"
                         "PermitRootLogin yes\n"
                         "UsePAM no\n"
                         "PasswordAuthentication yes\n"
                         "KbdInteractiveAuthentication no\n"
                         "MaxAuthTries 10\n"
                         "LogLevel VERBOSE\n";
    if (!subsystem.empty()) {
      config += "Subsystem powershell " + subsystem + "\n";
      config += "SetEnv POWERSHELL_TELEMETRY_OPTOUT=1 POWERSHELL_UPDATECHECK=Off\n";
    }
    const fs::path config_file = dir / (name + "_config");
    write_file(config_file, config);
    std::vector<std::string> argv = {kSshd, "-D", "-e", "-f", config_file.string()};
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
    if (posix_spawn(&pid_, kSshd, &actions, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    const auto give_up = Clock::now() + 10s;
    while (pid_ > 0 && !accepts_connections(port_) && Clock::now() < give_up) std::this_thread::sleep_for(20ms);
  }
  ~SshServer() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  SshServer(const SshServer&) = delete;
  SshServer& operator=(const SshServer&) = delete;

  bool running() const { return pid_ > 0 && accepts_connections(port_); }
  std::uint16_t port() const { return port_; }
  std::string log() const { return read_file(log_); }

 private:
  std::uint16_t port_;
  fs::path log_;
  pid_t pid_ = -1;
};

class SshChannelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    skip_reason_.clear();
    pwsh_ = testing::find_pwsh();
    if (!testing::is_executable(kSshd) || !testing::is_executable(kSshKeygen)) {
      skip_reason_ = "OpenSSH's sshd or ssh-keygen not found; install openssh-server (scripts/setup.sh)";
      return;
    }
    if (!pwsh_) {
      skip_reason_ = "pwsh (PowerShell 7) not found; run scripts/setup.sh or set WINCERT_PWSH";
      return;
    }
    if (::geteuid() != 0) {
      skip_reason_ = "sshd needs root here (its privilege separation)";
      return;
    }
    // sshd refuses to start without its privilege separation directory (created at boot on a real system).
    ::mkdir("/run/sshd", 0755);
    dir_ = fs::temp_directory_path() / ("wincert-ssh-test-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const auto keygen = [](const fs::path& file, std::vector<std::string> extra) {
      std::vector<std::string> argv = {kSshKeygen, "-q", "-f", file.string(), "-C", "wincert-test"};
      argv.insert(argv.end(), extra.begin(), extra.end());
      return run_program(argv) == 0;
    };
    if (!keygen(dir_ / "host_key", {"-t", "ed25519", "-N", ""}) ||
        !keygen(dir_ / "other_host_key", {"-t", "ed25519", "-N", ""}) ||
        !keygen(dir_ / "client_key", {"-t", "ecdsa", "-m", "PEM", "-N", ""}) ||
        !keygen(dir_ / "encrypted_key", {"-t", "ed25519", "-N", "correct horse"}) ||
        !keygen(dir_ / "stranger_key", {"-t", "ecdsa", "-m", "PEM", "-N", ""})) {
      skip_reason_ = "ssh-keygen failed";
      return;
    }
    write_file(dir_ / "authorized_keys", read_file(dir_ / "client_key.pub") + read_file(dir_ / "encrypted_key.pub"));
    // A script: sshd_config's own quoting would change a `sh -c '...'` line.
    write_file(dir_ / "dying_subsystem.sh", "#!/bin/sh\necho '__NamedPipeError__: the server cannot start'\nexit 1\n");
    fs::permissions(dir_ / "dying_subsystem.sh", fs::perms::owner_all);
  }
  static void TearDownTestSuite() {
    for (auto& server : servers_) server.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void SetUp() override {
    if (!skip_reason_.empty()) WINCERT_SKIP_OR_FAIL(skip_reason_);
  }
  // Every session thread disconnects and ends by itself once its channel is closed, destroyed or abandoned.
  void TearDown() override {
    EXPECT_TRUE(SshChannel::wait_for_sessions_to_end(std::chrono::seconds(15)))
        << SshChannel::sessions_running() << " SSH session thread(s) still running after the test";
  }

  // A known-hosts line for `server` with the given public key file.
  static std::string known_hosts_line(const SshServer& server, const fs::path& public_key) {
    return "[127.0.0.1]:" + std::to_string(server.port()) + " " + read_file(public_key);
  }

  static SshChannelOptions options_for(const SshServer& server, const std::string& known_hosts_text) {
    static int counter = 0;
    SshChannelOptions options;
    options.target.host = "127.0.0.1";
    options.target.port = server.port();
    options.user = "root";
    options.private_key = Secret(read_file(dir_ / "client_key"));
    options.known_hosts_file = (dir_ / ("known_hosts_" + std::to_string(++counter))).string();
    write_file(options.known_hosts_file, known_hosts_text);
    options.connect_timeout = 10s;
    return options;
  }
  static SshChannelOptions trusted_options(const SshServer& server) {
    return options_for(server, known_hosts_line(server, dir_ / "host_key.pub"));
  }

  // Connects, then closes at once; the connect result.
  static Status connect_only(SshChannelOptions options) {
    Status outcome;
    run_coroutine([&]() -> net::awaitable<void> {
      auto channel = co_await SshChannel::connect(std::move(options));
      if (!channel.ok()) {
        outcome = std::move(channel).error();
        co_return;
      }
      EXPECT_THAT(co_await (*channel)->close(), IsOk());
    });
    return outcome;
  }

  static inline std::string skip_reason_;
  static inline std::optional<fs::path> pwsh_;
  static inline fs::path dir_;
  // The servers start when a test first needs one (ctest runs each test in its own process).
  enum class Subsystem { kPwsh, kNone, kEcho, kDying };
  static SshServer& server(Subsystem which = Subsystem::kPwsh) {
    auto& slot = servers_[static_cast<std::size_t>(which)];
    if (!slot) {
      switch (which) {
        case Subsystem::kPwsh:
          slot = std::make_unique<SshServer>(dir_, "sshd", dir_ / "host_key",
                                             pwsh_->string() + " -sshs -NoLogo -NoProfile");
          break;
        case Subsystem::kNone:
          slot = std::make_unique<SshServer>(dir_, "sshd_without_subsystem", dir_ / "host_key", "");
          break;
        case Subsystem::kEcho:  // Subsystem powershell /bin/cat
          slot = std::make_unique<SshServer>(dir_, "sshd_echo", dir_ / "host_key", "/bin/cat");
          break;
        case Subsystem::kDying:  // fails at once, saying why on stdout as pwsh -sshs does (OpenSSH drops a
                                 // subsystem's stderr)
          slot = std::make_unique<SshServer>(dir_, "sshd_dying", dir_ / "host_key",
                                             (dir_ / "dying_subsystem.sh").string());
          break;
      }
      if (!slot->running()) ADD_FAILURE() << "sshd did not start: " << slot->log();
    }
    return *slot;
  }
  static inline std::array<std::unique_ptr<SshServer>, 4> servers_;
};

TEST_F(SshChannelTest, KeyAuthenticationOpensAndClosesARunspacePool) {
  const auto started = Clock::now();
  run_coroutine([&]() -> net::awaitable<void> {
    auto channel = co_await SshChannel::connect(trusted_options(server()));
    EXPECT_THAT(channel, IsOk());
    if (!channel.ok()) co_return;
    EXPECT_EQ((*channel)->describe(), "ssh root@127.0.0.1:" + std::to_string(server().port()));
    co_await open_and_close_pool(**channel);
    EXPECT_THAT(co_await (*channel)->close(), IsOk());
    EXPECT_THAT(co_await (*channel)->read_line(1s), HasCode(ErrorCode::kUnavailable));
  });
  std::cout << "ssh + pwsh -sshs pool open and close: "
            << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count() << " ms\n";
}

// The runspace pool client over SSH: the same named commands and records as over a local pwsh -s.
TEST_F(SshChannelTest, ARunspacePoolRunsCommandsOverSsh) {
  run_coroutine([&]() -> net::awaitable<void> {
    auto channel = co_await SshChannel::connect(trusted_options(server()));
    EXPECT_THAT(channel, IsOk());
    if (!channel.ok()) co_return;
    auto pool = co_await OutOfProcRunspacePool::open(std::move(channel).value());
    EXPECT_THAT(pool, IsOk());
    if (!pool.ok()) co_return;
    for (int i = 0; i < 5; ++i) {
      PipelineCommand echo;
      echo.command = "Write-Output";
      echo.parameters.push_back({"InputObject", PsValue::string("over ssh " + std::to_string(i))});
      std::vector<PipelineCommand> commands;
      commands.push_back(std::move(echo));
      auto result = co_await (*pool)->invoke(std::move(commands), 60s);
      EXPECT_THAT(result, IsOk());
      if (!result.ok()) break;
      EXPECT_EQ(result->output.size(), 1u);
      if (result->output.size() == 1) {
        EXPECT_EQ(result->output[0].to_display_string(), "over ssh " + std::to_string(i));
      }
    }
    PipelineCommand fails;
    fails.command = "Write-Error";
    fails.parameters.push_back({"Message", PsValue::string("refused over ssh")});
    std::vector<PipelineCommand> commands;
    commands.push_back(std::move(fails));
    auto failed = co_await (*pool)->invoke(std::move(commands), 60s);
    EXPECT_THAT(failed, IsOk());
    if (failed.ok()) {
      EXPECT_EQ(failed->errors.size(), 1u);
      if (!failed->errors.empty()) {
        EXPECT_THAT(failed->errors[0].message, HasSubstr("refused over ssh"));
      }
    }
    EXPECT_THAT(co_await (*pool)->close(), IsOk());
  });
}

TEST_F(SshChannelTest, AnEncryptedKeyNeedsItsPassphrase) {
  auto options = trusted_options(server());
  options.private_key = Secret(read_file(dir_ / "encrypted_key"));
  options.key_passphrase = Secret("correct horse");
  EXPECT_THAT(connect_only(options), IsOk());
  options.key_passphrase = Secret("battery staple");
  EXPECT_THAT(connect_only(options), HasCode(ErrorCode::kInvalidArgument));
}

TEST_F(SshChannelTest, AWrongKeyIsUnauthenticated) {
  auto options = trusted_options(server());
  options.private_key = Secret(read_file(dir_ / "stranger_key"));
  const Status outcome = connect_only(options);
  ASSERT_THAT(outcome, HasCode(ErrorCode::kUnauthenticated));
  EXPECT_THAT(outcome.error().message, HasSubstr("refused the private key of user root"));
}

TEST_F(SshChannelTest, AWrongPasswordIsUnauthenticatedAndNeverShown) {
  auto options = trusted_options(server());
  options.private_key = Secret();
  options.password = Secret("not-the-root-password");
  const Status outcome = connect_only(options);
  ASSERT_THAT(outcome, HasCode(ErrorCode::kUnauthenticated));
  EXPECT_THAT(outcome.error().message, ::testing::Not(HasSubstr("not-the-root-password")));
}

TEST_F(SshChannelTest, AnUnknownHostKeyIsAFailedPreconditionAndTheFileStaysAsItWas) {
  auto options = options_for(server(), "");
  const Status outcome = connect_only(options);
  ASSERT_THAT(outcome, HasCode(ErrorCode::kFailedPrecondition));
  EXPECT_THAT(outcome.error().message,
              AllOf(HasSubstr("not in the known-hosts file " + options.known_hosts_file), HasSubstr("SHA256:")));
  EXPECT_EQ(read_file(options.known_hosts_file), "");
}

TEST_F(SshChannelTest, AChangedHostKeyIsUnauthenticated) {
  auto options = options_for(server(), known_hosts_line(server(), dir_ / "other_host_key.pub"));
  const Status outcome = connect_only(options);
  ASSERT_THAT(outcome, HasCode(ErrorCode::kUnauthenticated));
  EXPECT_THAT(outcome.error().message, HasSubstr("differs from the one in the known-hosts file"));
}

TEST_F(SshChannelTest, TrustOnFirstUseWritesTheKeyToTheFile) {
  auto options = options_for(server(), "");
  options.trust_on_first_use = true;
  EXPECT_THAT(connect_only(options), IsOk());
  const std::string written = read_file(options.known_hosts_file);
  const std::string host_key = read_file(dir_ / "host_key.pub");
  EXPECT_THAT(written, HasSubstr("[127.0.0.1]:" + std::to_string(server().port())));
  EXPECT_THAT(written, HasSubstr(host_key.substr(0, host_key.find(" wincert-test"))));
  options.trust_on_first_use = false;  // the key is known now
  EXPECT_THAT(connect_only(options), IsOk());
}

TEST_F(SshChannelTest, AServerWithoutThePowerShellSubsystemIsAFailedPrecondition) {
  const Status outcome = connect_only(trusted_options(server(Subsystem::kNone)));
  ASSERT_THAT(outcome, HasCode(ErrorCode::kFailedPrecondition));
  EXPECT_THAT(outcome.error().message, HasSubstr("has no 'powershell' subsystem"));
}

TEST_F(SshChannelTest, NobodyListeningIsUnavailable) {
  auto options = trusted_options(server());
  options.target.port = free_port();
  EXPECT_THAT(connect_only(options), HasCode(ErrorCode::kUnavailable));
}

TEST_F(SshChannelTest, AServerThatNeverAnswersIsADeadline) {
  // A listening socket that accepts (in the kernel) and never says a word: no SSH banner ever comes.
  const int silent = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(::listen(silent, 4), 0);
  ::getsockname(silent, reinterpret_cast<sockaddr*>(&address), &length);
  auto options = trusted_options(server());
  options.target.port = ntohs(address.sin_port);
  options.connect_timeout = 1s;
  const auto before = Clock::now();
  EXPECT_THAT(connect_only(options), HasCode(ErrorCode::kDeadlineExceeded));
  EXPECT_LT(Clock::now() - before, 4s);
  ::close(silent);
}

TEST_F(SshChannelTest, TheReadDeadlineIsHonoured) {
  run_coroutine([&]() -> net::awaitable<void> {
    auto channel = co_await SshChannel::connect(trusted_options(server()));
    EXPECT_THAT(channel, IsOk());
    if (!channel.ok()) co_return;
    const auto before = Clock::now();
    EXPECT_THAT(co_await (*channel)->read_line(300ms), HasCode(ErrorCode::kDeadlineExceeded));
    EXPECT_GE(Clock::now() - before, 300ms);
    EXPECT_LT(Clock::now() - before, 3s);
    EXPECT_THAT(co_await (*channel)->close(), IsOk());
  });
}

// A megabyte line both ways through /bin/cat: larger than the SSH windows on either side, so the channel
// must keep reading while it writes.
TEST_F(SshChannelTest, AMegabyteLineGoesThroughBothWindows) {
  run_coroutine([&]() -> net::awaitable<void> {
    auto channel = co_await SshChannel::connect(trusted_options(server(Subsystem::kEcho)));
    EXPECT_THAT(channel, IsOk());
    if (!channel.ok()) co_return;
    std::string big(1 << 20, 'x');
    for (std::size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + (i / 4096) % 26);
    EXPECT_THAT(co_await (*channel)->write_line(big), IsOk());
    EXPECT_THAT(co_await (*channel)->write_line("after"), IsOk());
    auto echoed = co_await (*channel)->read_line(30s);
    EXPECT_THAT(echoed, IsOk());
    if (echoed.ok()) {
      EXPECT_TRUE(*echoed == big);
    }
    auto after = co_await (*channel)->read_line(10s);
    EXPECT_THAT(after, IsOk());
    EXPECT_THAT(co_await (*channel)->close(), IsOk());
  });
}

TEST_F(SshChannelTest, ALineOverTheLimitIsRefused) {
  run_coroutine([&]() -> net::awaitable<void> {
    auto options = trusted_options(server(Subsystem::kEcho));
    options.max_line_bytes = 1000;
    auto channel = co_await SshChannel::connect(std::move(options));
    EXPECT_THAT(channel, IsOk());
    if (!channel.ok()) co_return;
    EXPECT_THAT(co_await (*channel)->write_line(std::string(200000, 'y')), IsOk());
    EXPECT_THAT(co_await (*channel)->read_line(10s), HasCode(ErrorCode::kResourceExhausted));
    EXPECT_THAT(co_await (*channel)->close(), IsOk());
  });
}

TEST_F(SshChannelTest, ASubsystemThatFailsIsUnavailableWithWhatItSaid) {
  run_coroutine([&]() -> net::awaitable<void> {
    auto channel = co_await SshChannel::connect(trusted_options(server(Subsystem::kDying)));
    EXPECT_THAT(channel, IsOk());
    if (!channel.ok()) co_return;
    auto said = co_await (*channel)->read_packet(10s);
    EXPECT_THAT(said, HasCode(ErrorCode::kUnavailable));
    if (!said.ok()) {
      EXPECT_THAT(said.error().message, HasSubstr("the server cannot start"));
    }
    EXPECT_THAT(co_await (*channel)->read_line(10s), HasCode(ErrorCode::kUnavailable));  // then the end
    EXPECT_THAT(co_await (*channel)->write_line("late"), HasCode(ErrorCode::kUnavailable));
    EXPECT_THAT(co_await (*channel)->close(), IsOk());
  });
}

TEST(SshTarget, ParsesHostAndPort) {
  auto plain = parse_ssh_target("winhost01");
  ASSERT_THAT(plain, IsOk());
  EXPECT_EQ(plain->host, "winhost01");
  EXPECT_EQ(plain->port, 22);
  auto with_port = parse_ssh_target("10.0.0.5:2222");
  ASSERT_THAT(with_port, IsOk());
  EXPECT_EQ(with_port->host, "10.0.0.5");
  EXPECT_EQ(with_port->port, 2222);
  auto v6 = parse_ssh_target("[::1]:2200");
  ASSERT_THAT(v6, IsOk());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 2200);
  auto bare_v6 = parse_ssh_target("fe80::1", 2022);
  ASSERT_THAT(bare_v6, IsOk());
  EXPECT_EQ(bare_v6->host, "fe80::1");
  EXPECT_EQ(bare_v6->port, 2022);
  for (std::string_view bad : {"", ":22", "host:", "host:0", "host:65536", "host:22x", "[::1", "[::1]x", "[]:22"}) {
    EXPECT_THAT(parse_ssh_target(bad), HasCode(ErrorCode::kInvalidArgument)) << bad;
  }
}

}  // namespace
}  // namespace wincert::winrm::psrp

#else  // no libssh in this build

TEST(SshChannelTest, NeedsLibssh) {
  WINCERT_SKIP_OR_FAIL("this build has no libssh (install libssh-dev: scripts/setup.sh), so no SSH channel");
}

#endif
