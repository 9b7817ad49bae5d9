// End-to-end authentication cost per scheme: our client against winhost-sim's real acceptors in one
// process (gss-ntlmssp for NTLM, MIT GSSAPI + a temporary KDC for Kerberos/Negotiate).
//   BM_ColdCommand: new connection + authentication + one command (+ shell Create/Delete).
//     handshakes_per_conn = security contexts the sim established / connections (target 1)
//     http_per_cold       = HTTP exchanges of the whole cold run, auth legs included
//   BM_WarmCommand: one more command on an authenticated connection and open shell.
//     http_per_cmd        = HTTP exchanges per command (same as Basic: Command, Receive, Signal)
//     auth_per_cmd        = auth exchanges (challenges, refusals, handshakes) per warm command (target 0)
#include <benchmark/benchmark.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <thread>

#include "common/encoding.hpp"
#include "common/log.hpp"
#include "sim/winhost/gss_auth.hpp"
#include "sim/winhost/server.hpp"
#include "sim/winhost/windows_model.hpp"
#include "sim/winhost/winrs_service.hpp"
#include "tests/support/krb5_kdc.hpp"
#include "winrm/auth/negotiate_http_auth.hpp"
#include "winrm/auth/ntlm_http_auth.hpp"
#include "winrm/transport.hpp"
#include "winrm/winrs.hpp"

namespace {

using namespace wincert;
namespace fs = std::filesystem;
namespace net = boost::asio;

struct Globals {
  fs::path dir;
  std::string cert, key;
  std::unique_ptr<testing::Krb5Kdc> kdc;
} g;

constexpr const char* kNtlmPassword = "Bench-Ntlm-Pw1";

enum Scheme { kBasicHttps, kNtlmHttp, kNtlmHttps, kKerberosHttp, kKerberosHttps, kNegotiateHttp };
const char* scheme_label(int s) {
  static const char* names[] = {"basic-https",   "ntlm-http",      "ntlm-https",
                                "kerberos-http", "kerberos-https", "negotiate-http"};
  return names[s];
}
bool scheme_tls(int s) { return s == kBasicHttps || s == kNtlmHttps || s == kKerberosHttps; }

class Sim {
 public:
  explicit Sim(int scheme) {
    sim::WindowsAuthOptions options;
    options.schemes = *sim::parse_auth_schemes("basic,ntlm,kerberos,negotiate");
    options.stats = stats_auth;
    auto users = std::make_shared<sim::UserDatabase>();
    users->add("WINCERT", "alice", kNtlmPassword);
    options.users = users;
    if (g.kdc) options.keytab = g.kdc->service_keytab();
    sim::ServerOptions so;
    so.port = 0;
    if (scheme_tls(scheme)) {
      so.tls_cert = g.cert;
      so.tls_key = g.key;
    }
    auto auth = sim::make_windows_authenticator(std::move(options));
    if (!auth) throw std::runtime_error(auth.error().message);
    service = std::make_unique<sim::WinrsService>(ioc, model, stats, sim::WinrsOptions{});
    server =
        std::make_unique<sim::Server>(ioc, so, std::shared_ptr<sim::Authenticator>(std::move(*auth)), *service, stats);
    auto bound = server->start();
    if (!bound) throw std::runtime_error(bound.error().message);
    port = *bound;
    thread = std::thread([this] { ioc.run(); });
  }
  ~Sim() {
    net::post(ioc, [this] {
      server->stop();
      service->shutdown();
      work.reset();
      ioc.stop();
    });
    thread.join();
  }
  std::uint64_t auth_exchanges() const {
    return stats_auth->challenges.load() + stats_auth->refusals.load() + stats_auth->handshakes.load();
  }

  net::io_context ioc{1};
  net::executor_work_guard<net::io_context::executor_type> work = net::make_work_guard(ioc);
  sim::WindowsModel model;
  sim::Stats stats;
  std::shared_ptr<sim::AuthStats> stats_auth = std::make_shared<sim::AuthStats>();
  std::unique_ptr<sim::WinrsService> service;
  std::unique_ptr<sim::Server> server;
  std::thread thread;
  unsigned short port = 0;
};

std::unique_ptr<winrm::HttpAuth> make_auth(int scheme) {
  switch (scheme) {
    case kBasicHttps:
      return std::make_unique<winrm::BasicAuth>("WINCERT\\alice", Secret(kNtlmPassword), false);
    case kNtlmHttp:
    case kNtlmHttps:
      return std::make_unique<winrm::NtlmHttpAuth>("WINCERT\\alice", Secret(kNtlmPassword));
    case kKerberosHttp:
    case kKerberosHttps:
      return std::make_unique<winrm::KerberosHttpAuth>(g.kdc->user_principal(), Secret(g.kdc->user_password()));
    default:
      return std::make_unique<winrm::NegotiateHttpAuth>(g.kdc->user_principal(), Secret(g.kdc->user_password()));
  }
}

template <typename T>
T run(net::io_context& io, net::awaitable<T> work) {
  std::optional<T> value;
  auto wrapper = [](net::awaitable<T> inner, std::optional<T>& out) -> net::awaitable<void> {
    out.emplace(co_await std::move(inner));
  };
  net::co_spawn(io, wrapper(std::move(work), value), net::detached);
  io.restart();
  io.run_for(std::chrono::seconds(60));
  if (!value) throw std::runtime_error("timed out");
  return std::move(*value);
}

winrm::CommandSpec echo() {
  winrm::CommandSpec spec;
  spec.command = "cmd.exe";
  spec.arguments = {"/c", "echo bench"};
  return spec;
}

std::unique_ptr<winrm::WsmanTransport> connect(net::io_context& io, const Sim& sim, int scheme) {
  auto endpoint = winrm::parse_endpoint(std::string(scheme_tls(scheme) ? "https" : "http") +
                                        "://localhost:" + std::to_string(sim.port) + "/wsman");
  winrm::TransportOptions options;
  options.ca_file = g.cert;
  auto transport = winrm::WsmanTransport::create(io.get_executor(), *endpoint, make_auth(scheme), options);
  if (!transport) throw std::runtime_error(transport.error().message);
  return std::move(*transport);
}

bool needs_kdc(int scheme) { return scheme >= kKerberosHttp; }

void BM_ColdCommand(benchmark::State& state) {
  const int scheme = static_cast<int>(state.range(0));
  state.SetLabel(scheme_label(scheme));
  if (needs_kdc(scheme) && !g.kdc) return state.SkipWithError("no KDC");
  Sim sim(scheme);
  net::io_context io;
  std::uint64_t http = 0, connections = 0;
  winrm::SessionOptions session_options;
  session_options.max_envelope_size = 512000;  // skip the config Get: measure auth, not discovery
  for (auto _ : state) {
    auto transport = connect(io, sim, scheme);
    winrm::WinrsSession session(*transport, session_options);
    auto out = run(io, session.run(echo()));
    if (!out) return state.SkipWithError(out.error().message.c_str());
    (void)run(io, session.close());
    http += transport->counters().http_requests;
    connections += transport->counters().connections_opened;
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["handshakes_per_conn"] =
      connections ? static_cast<double>(sim.stats_auth->handshakes.load()) / static_cast<double>(connections) : 0;
  state.counters["http_per_cold"] = static_cast<double>(http) / n;
}

void BM_WarmCommand(benchmark::State& state) {
  const int scheme = static_cast<int>(state.range(0));
  state.SetLabel(scheme_label(scheme));
  if (needs_kdc(scheme) && !g.kdc) return state.SkipWithError("no KDC");
  Sim sim(scheme);
  net::io_context io;
  auto transport = connect(io, sim, scheme);
  winrm::WinrsSession session(*transport);
  if (auto warm = run(io, session.run(echo())); !warm) return state.SkipWithError(warm.error().message.c_str());
  const auto http_before = transport->counters().http_requests;
  const auto auth_before = sim.auth_exchanges();
  for (auto _ : state) {
    auto out = run(io, session.run(echo()));
    if (!out) return state.SkipWithError(out.error().message.c_str());
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["http_per_cmd"] = static_cast<double>(transport->counters().http_requests - http_before) / n;
  state.counters["auth_per_cmd"] = static_cast<double>(sim.auth_exchanges() - auth_before) / n;
  state.counters["connections"] = static_cast<double>(transport->counters().connections_opened);
  (void)run(io, session.close());
}

BENCHMARK(BM_ColdCommand)->DenseRange(kBasicHttps, kNegotiateHttp)->Unit(benchmark::kMillisecond)->MinTime(0.3);
BENCHMARK(BM_WarmCommand)->DenseRange(kBasicHttps, kNegotiateHttp)->Unit(benchmark::kMillisecond)->MinTime(0.3);

}  // namespace

int main(int argc, char** argv) {
  g.dir = fs::temp_directory_path() / ("wincert-auth-bench-" + random_uuid());
  fs::create_directories(g.dir);
  const std::string users = (g.dir / "users").string();
  std::ofstream(users) << "WINCERT:alice:" << kNtlmPassword << "\n";
  g.cert = (g.dir / "cert.pem").string();
  g.key = (g.dir / "key.pem").string();
  const std::string req =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
      "-addext subjectAltName=DNS:localhost -keyout " +
      g.key + " -out " + g.cert + " >/dev/null 2>&1";
  if (std::system(req.c_str()) != 0) std::cerr << "openssl req failed\n";
  init_logging("off");
  if (auto st = sim::configure_gss_ntlmssp(users, "WINHOST01", "WINCERT", g.dir.string()); !st)
    std::cerr << st.error().message << "\n";
  if (testing::Krb5Kdc::binaries_available()) {
    auto kdc = testing::Krb5Kdc::start();
    if (kdc) {
      g.kdc = std::move(*kdc);
      g.kdc->apply_environment();
      ::setenv("KRB5CCNAME", ("FILE:" + (g.dir / "ccache").string()).c_str(), 1);
    } else {
      std::cerr << "no KDC: " << kdc.error().message << "\n";
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  g.kdc.reset();
  std::error_code ec;
  fs::remove_all(g.dir, ec);
  return 0;
}
