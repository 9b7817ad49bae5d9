#include "tests/support/krb5_kdc.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace wincert::testing {
namespace {

constexpr const char* kKrb5kdc = "/usr/sbin/krb5kdc";
constexpr const char* kKdb5Util = "/usr/sbin/kdb5_util";
constexpr const char* kKadminLocal = "/usr/sbin/kadmin.local";
constexpr auto kToolTimeout = std::chrono::seconds(90);  // generous: 2 shared cores under load

bool executable(const char* path) { return ::access(path, X_OK) == 0; }

// A file descriptor closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

sockaddr_in loopback(unsigned short port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// A loopback port free for both TCP and UDP right now (the KDC listens on both).
Result<unsigned short> pick_free_port() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    Fd tcp(::socket(AF_INET, SOCK_STREAM, 0));
    if (tcp.get() < 0) return Error::unavailable(std::string("socket(): ") + std::strerror(errno));
    sockaddr_in addr = loopback(0);
    if (::bind(tcp.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) continue;
    socklen_t len = sizeof addr;
    if (::getsockname(tcp.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) continue;
    const unsigned short port = ntohs(addr.sin_port);
    Fd udp(::socket(AF_INET, SOCK_DGRAM, 0));
    sockaddr_in udp_addr = loopback(port);
    if (udp.get() >= 0 && ::bind(udp.get(), reinterpret_cast<sockaddr*>(&udp_addr), sizeof udp_addr) == 0) {
      return port;
    }
  }
  return Error::resource_exhausted("no free loopback port for the test KDC");
}

bool port_accepts(unsigned short port) {
  Fd sock(::socket(AF_INET, SOCK_STREAM, 0));
  if (sock.get() < 0) return false;
  sockaddr_in addr = loopback(port);
  return ::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

// argv/envp as the char* arrays execve wants; built before fork (nothing allocates in the child).
struct ExecArgs {
  std::vector<std::string> storage_argv, storage_env;
  std::vector<char*> argv, envp;

  ExecArgs(const std::vector<std::string>& args, const std::vector<std::string>& env)
      : storage_argv(args), storage_env(env) {
    for (auto& a : storage_argv) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : storage_env) envp.push_back(e.data());
    envp.push_back(nullptr);
  }
};

// Starts argv[0] with stdin from /dev/null and stdout+stderr appended to log_path. The child gets
// SIGTERM when the test process dies, so a crashed test never leaves a KDC behind.
Result<pid_t> spawn(const std::vector<std::string>& args, const std::vector<std::string>& env,
                    const std::string& log_path) {
  ExecArgs exec(args, env);
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) return Error::failed_precondition("cannot open " + log_path + ": " + std::strerror(errno));
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::execve(exec.argv[0], exec.argv.data(), exec.envp.data());
    ::_exit(127);
  }
  const int fork_errno = errno;
  ::close(log_fd);
  if (null_fd >= 0) ::close(null_fd);
  if (pid < 0) return Error::resource_exhausted(std::string("fork(): ") + std::strerror(fork_errno));
  return pid;
}

// Waits for pid up to `timeout`; -1 when still running. Returns the raw wait status otherwise.
int wait_for(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return 0;  // not our child any more: treat as gone
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void terminate(pid_t pid) {
  ::kill(pid, SIGTERM);
  if (wait_for(pid, std::chrono::seconds(10)) == -1) {
    ::kill(pid, SIGKILL);
    wait_for(pid, std::chrono::seconds(10));
  }
}

std::string tail_of(const std::string& path, std::size_t max_chars = 600) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() > max_chars) text = text.substr(text.size() - max_chars);
  for (char& c : text) {
    if (c == '\n') c = ' ';
  }
  return text;
}

Status write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Error::failed_precondition("cannot write " + path);
  return {};
}

}  // namespace

bool Krb5Kdc::binaries_available() { return missing_binaries().empty(); }

std::string Krb5Kdc::missing_binaries() {
  std::string missing;
  for (const char* tool : {kKrb5kdc, kKdb5Util, kKadminLocal}) {
    if (!executable(tool)) missing += std::string(missing.empty() ? "" : ", ") + tool;
  }
  if (missing.empty()) return {};
  return missing + " not installed (packages krb5-kdc, krb5-admin-server; run scripts/setup.sh)";
}

Krb5Kdc::Krb5Kdc(Krb5KdcOptions options) : options_(std::move(options)) {}

Krb5Kdc::~Krb5Kdc() {
  stop();
  if (!dir_.empty() && std::getenv("WINCERT_KEEP_KDC_DIR") == nullptr) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

Result<std::unique_ptr<Krb5Kdc>> Krb5Kdc::start(Krb5KdcOptions options) {
  if (!binaries_available()) return Error::failed_precondition(missing_binaries());
  std::unique_ptr<Krb5Kdc> kdc(new Krb5Kdc(std::move(options)));
  std::string dir_template = (std::filesystem::temp_directory_path() / "wincert-krb5-XXXXXX").string();
  if (::mkdtemp(dir_template.data()) == nullptr) {
    return Error::failed_precondition("mkdtemp failed: " + std::string(std::strerror(errno)));
  }
  kdc->dir_ = dir_template;
  WINCERT_TRY(kdc->create_realm());
  WINCERT_TRY(kdc->start_process());
  return kdc;
}

Status Krb5Kdc::write_configs(unsigned short port) {
  port_ = port;
  const std::string& realm = options_.realm;
  std::ostringstream kdc;
  kdc << "[kdcdefaults]\n"
      << " kdc_ports = " << port << "\n"
      << " kdc_tcp_ports = " << port << "\n"
      << "[realms]\n"
      << " " << realm << " = {\n"
      << "  database_name = " << dir_ << "/principal\n"
      << "  key_stash_file = " << dir_ << "/stash\n"
      << "  acl_file = " << dir_ << "/kadm5.acl\n"
      << "  kdc_ports = " << port << "\n"
      << "  kdc_tcp_ports = " << port << "\n"
      << "  master_key_type = aes256-cts-hmac-sha1-96\n"
      << "  supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n"
      << "  max_life = 10h 0m 0s\n"
      << "  max_renewable_life = 7d 0h 0m 0s\n"
      // Like Active Directory: the KDC demands encrypted-timestamp pre-authentication.
      << "  default_principal_flags = +preauth\n"
      << " }\n"
      << "[logging]\n"
      << " kdc = FILE:" << kdc_log() << "\n"
      << " admin_server = FILE:" << dir_ << "/kadmin.log\n"
      << " default = FILE:" << dir_ << "/krb5lib.log\n";
  WINCERT_TRY(write_file(kdc_conf(), kdc.str()));
  write_client_config("krb5.conf", port);
  return {};
}

std::string Krb5Kdc::write_client_config(const std::string& file_name, unsigned short kdc_port) const {
  const std::string& realm = options_.realm;
  std::ostringstream conf;
  conf << "[libdefaults]\n"
       << " default_realm = " << realm << "\n"
       << " dns_lookup_kdc = false\n"
       << " dns_lookup_realm = false\n"
       << " dns_canonicalize_hostname = false\n"
       << " rdns = false\n"
       << " forwardable = true\n"
       << " udp_preference_limit = 1\n"
       << " clockskew = " << options_.clock_skew_seconds << "\n"
       << " default_ccache_name = FILE:" << ccache_path() << "\n"
       << "[realms]\n"
       << " " << realm << " = {\n"
       << "  kdc = 127.0.0.1:" << kdc_port << "\n"
       << " }\n"
       << "[domain_realm]\n"
       << " localhost = " << realm << "\n";
  const std::string path = dir_ + "/" + file_name;
  (void)write_file(path, conf.str());
  return path;
}

static std::vector<std::string> realm_environment(const Krb5Kdc& kdc) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, "KRB5", 4) != 0) env.emplace_back(*e);
  }
  env.push_back("KRB5_CONFIG=" + kdc.krb5_conf());
  env.push_back("KRB5_KDC_PROFILE=" + kdc.kdc_conf());
  env.push_back("KRB5RCACHEDIR=" + kdc.dir());
  return env;
}

Status Krb5Kdc::run_tool(const std::vector<std::string>& argv) const {
  const std::string log = dir_ + "/tools.log";
  auto pid = spawn(argv, realm_environment(*this), log);
  if (!pid) return pid.error();
  const int status = wait_for(*pid, kToolTimeout);
  if (status == -1) {
    terminate(*pid);
    return Error::deadline_exceeded(argv[0] + " did not finish within " + std::to_string(kToolTimeout.count()) + " s");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Error::internal(argv[0] + " failed (status " + std::to_string(status) + "): " + tail_of(log));
  }
  return {};
}

Status Krb5Kdc::kadmin(const std::string& query) const {
  return run_tool({kKadminLocal, "-r", options_.realm, "-q", query});
}

Status Krb5Kdc::add_user(const std::string& name, const std::string& password) const {
  return kadmin("addprinc -pw " + password + " " + name);
}

Status Krb5Kdc::add_service(const std::string& principal, const std::string& keytab_path) const {
  WINCERT_TRY(kadmin("addprinc -randkey " + principal));
  return kadmin("ktadd -k " + keytab_path + " " + principal);
}

Status Krb5Kdc::create_realm() {
  auto port = pick_free_port();
  if (!port) return port.error();
  WINCERT_TRY(write_configs(*port));
  WINCERT_TRY(write_file(dir_ + "/kadm5.acl", "*/admin@" + options_.realm + " *\n"));
  // A random master password: nothing outside this directory ever needs it.
  WINCERT_TRY(
      run_tool({kKdb5Util, "create", "-s", "-r", options_.realm, "-P", "master-" + std::to_string(::getpid())}));
  WINCERT_TRY(add_user(options_.user, options_.user_password));
  WINCERT_TRY(add_service(options_.agent, client_keytab()));
  for (const auto& spn : options_.service_principals) WINCERT_TRY(add_service(spn, service_keytab()));
  return {};
}

Status Krb5Kdc::start_process() {
  std::string last_failure;
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (attempt > 0) {
      auto port = pick_free_port();
      if (!port) return port.error();
      WINCERT_TRY(write_configs(*port));
    }
    auto pid = spawn({kKrb5kdc, "-n", "-r", options_.realm}, realm_environment(*this), dir_ + "/krb5kdc.out");
    if (!pid) return pid.error();
    const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
    bool exited = false;
    while (std::chrono::steady_clock::now() < deadline) {
      if (port_accepts(port_)) {
        pid_ = *pid;
        return {};
      }
      int status = 0;
      if (::waitpid(*pid, &status, WNOHANG) == *pid) {
        exited = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    if (!exited) {
      terminate(*pid);
      return Error::deadline_exceeded("krb5kdc did not accept connections on 127.0.0.1:" + std::to_string(port_) +
                                      " within " + std::to_string(options_.start_timeout.count()) +
                                      " ms: " + tail_of(kdc_log()));
    }
    // Most likely the port was taken between pick_free_port() and bind(): try another one.
    last_failure = tail_of(dir_ + "/krb5kdc.out") + " " + tail_of(kdc_log());
  }
  return Error::unavailable("krb5kdc exited at start-up: " + last_failure);
}

void Krb5Kdc::stop() {
  if (pid_ > 0) {
    terminate(pid_);
    pid_ = -1;
  }
}

Status Krb5Kdc::restart() {
  if (running()) return {};
  return start_process();
}

void Krb5Kdc::apply_environment() const {
  ::setenv("KRB5_CONFIG", krb5_conf().c_str(), 1);
  ::setenv("KRB5_KTNAME", ("FILE:" + service_keytab()).c_str(), 1);
  ::setenv("KRB5_CLIENT_KTNAME", ("FILE:" + client_keytab()).c_str(), 1);
  ::setenv("KRB5CCNAME", ("FILE:" + ccache_path()).c_str(), 1);
  ::setenv("KRB5RCACHEDIR", dir_.c_str(), 1);
  ::unsetenv("KRB5_KDC_PROFILE");
}

}  // namespace wincert::testing
