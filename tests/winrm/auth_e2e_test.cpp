// End-to-end authentication: our WinRM client (NtlmHttpAuth, KerberosHttpAuth, NegotiateHttpAuth)
// against winhost-sim's server with its real acceptors, in one process: gss-ntlmssp for NTLM (users from
// NTLM_USER_FILE), MIT GSSAPI with a keytab from a real temporary KDC (tests/support/krb5_kdc) for
// Kerberos/SPNEGO. Over HTTP with message encryption and over HTTPS with channel binding; failure cases
// must give one clear line and no secret, also at trace log level.
#include <gtest/gtest.h>
#include <krb5.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "common/encoding.hpp"
#include "common/log.hpp"
#include "sim/winhost/gss_auth.hpp"
#include "sim/winhost/psrp_service.hpp"
#include "sim/winhost/server.hpp"
#include "sim/winhost/windows_model.hpp"
#include "sim/winhost/winrs_service.hpp"
#include "tests/support/krb5_kdc.hpp"
#include "tests/support/result_matchers.hpp"
#include "tests/winrm/client_test_util.hpp"
#include "winrm/auth/certificate_http_auth.hpp"
#include "winrm/auth/legacy_crypto.hpp"
#include "winrm/auth/negotiate_http_auth.hpp"
#include "winrm/auth/ntlm_http_auth.hpp"
#include "winrm/powershell.hpp"
#include "winrm/psrp/wsman_runspace_pool.hpp"
#include "winrm/transport.hpp"
#include "winrm/winrs.hpp"

extern "C" const char* __lsan_default_suppressions() {
  return "leak:gssntlmssp.so\nleak:libgssapi_krb5\nleak:libkrb5\n";
}

namespace wincert::winrm {
namespace {

namespace fs = std::filesystem;
namespace net = boost::asio;
using testing::Krb5Kdc;

// The detail of a GSSAPI failure: the GSS major status.
auto gss_status() { return ::testing::Field(&ErrorDetail::system_kind, SystemStatusKind::kGss); }

constexpr const char* kNtlmUser = "WINCERT\\alice";
constexpr const char* kNtlmPassword = "Ntlm-Secr3t-Pw!";
constexpr const char* kWrongPassword = "Wr0ng-Passw0rd-42";
constexpr std::string_view kCertificateAuthHeaderForTest =
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual";

// Process-wide peers: one KDC, the gss-ntlmssp users file, a TLS certificate for localhost, and a log
// file at trace level that the secret checks read.
struct Peers {
  std::unique_ptr<Krb5Kdc> kdc;
  std::string kdc_error;
  fs::path dir;
  std::string users_file, cert, key, other_cert, log_file, ca_cert;
};
Peers* g_peers = nullptr;

int run_shell(const std::string& command) { return std::system(command.c_str()); }

class PeersEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    g_peers = new Peers;
    Peers& p = *g_peers;
    p.dir = fs::temp_directory_path() / ("wincert-auth-e2e-" + random_uuid());
    fs::create_directories(p.dir);
    p.users_file = (p.dir / "users").string();
    std::ofstream(p.users_file) << "WINCERT:alice:" << kNtlmPassword << "\nWINCERT:bob:Bob-Passw0rd-9\n";
    p.cert = (p.dir / "cert.pem").string();
    p.key = (p.dir / "key.pem").string();
    p.other_cert = (p.dir / "other.pem").string();
    const std::string req =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
        "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 ";
    run_shell(req + "-keyout " + p.key + " -out " + p.cert + " >/dev/null 2>&1");
    run_shell(req + "-keyout " + (p.dir / "other.key").string() + " -out " + p.other_cert + " >/dev/null 2>&1");
    p.log_file = (p.dir / "trace.log").string();
    init_logging("trace", p.log_file);
    (void)sim::configure_gss_ntlmssp(p.users_file, "WINHOST01", "WINCERT", p.dir.string());
    if (Krb5Kdc::binaries_available()) {
      auto kdc = Krb5Kdc::start();
      if (kdc) {
        p.kdc = std::move(*kdc);
        p.kdc->apply_environment();
      } else {
        p.kdc_error = kdc.error().message;
      }
    } else {
      p.kdc_error = Krb5Kdc::missing_binaries();
    }
  }
  void TearDown() override {
    std::error_code ec;
    fs::path dir = g_peers->dir;
    delete g_peers;
    g_peers = nullptr;
    fs::remove_all(dir, ec);
  }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new PeersEnvironment);

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The trace log so far (the file sink is buffered).
std::string flushed_log() {
  for (const auto* name : {"winrm", "sim"}) logger(name)->flush();
  spdlog::default_logger()->flush();
  return read_file(g_peers->log_file);
}

// winhost-sim's server, WinRS service and the authenticator under test on a thread of their own.
class InProcessSim {
 public:
  InProcessSim(sim::WindowsAuthOptions auth_options, bool tls, std::string client_ca = {}) {
    auth_stats = std::make_shared<sim::AuthStats>();
    auth_options.stats = auth_stats;
    auth_options.users = std::make_shared<sim::UserDatabase>();
    auto auth = sim::make_windows_authenticator(std::move(auth_options));
    if (!auth) {
      error = auth.error().message;
      return;
    }
    service = std::make_unique<sim::WinrsService>(ioc, model, stats, sim::WinrsOptions{});
    // The PowerShell resource too (PSRP over the same authenticated connection); no start cost in these tests.
    sim::PsrpOptions psrp_options;
    psrp_options.ps_start_ms = 0;
    powershell = std::make_unique<sim::PsrpService>(ioc, model, stats, psrp_options, &service->shells_per_owner());
    service->set_powershell_handler(powershell.get());
    sim::ServerOptions options;
    options.port = 0;
    if (tls) {
      options.tls_cert = g_peers->cert;
      options.tls_key = g_peers->key;
      options.request_client_certificate = auth_options.schemes.certificate;
      options.client_ca = client_ca;
    }
    server = std::make_unique<sim::Server>(ioc, options, std::shared_ptr<sim::Authenticator>(std::move(*auth)),
                                           *service, stats);
    auto bound = server->start();
    if (!bound) {
      error = bound.error().message;
      return;
    }
    port = *bound;
    thread = std::thread([this] { ioc.run(); });
  }
  ~InProcessSim() {
    if (thread.joinable()) {
      net::post(ioc, [this] {
        server->stop();
        service->shutdown();
        if (powershell) powershell->shutdown();
        work.reset();
        ioc.stop();
      });
      thread.join();
    }
  }
  std::string url(bool tls, const std::string& host = "localhost") const {
    return std::string(tls ? "https" : "http") + "://" + host + ":" + std::to_string(port) + "/wsman";
  }
  // The sim's request counter, read on its own thread.
  std::uint64_t requests() {
    std::promise<std::uint64_t> value;
    net::post(ioc, [&] { value.set_value(stats.requests); });
    return value.get_future().get();
  }

  net::io_context ioc{1};
  net::executor_work_guard<net::io_context::executor_type> work = net::make_work_guard(ioc);
  sim::WindowsModel model;
  sim::Stats stats;
  std::shared_ptr<sim::AuthStats> auth_stats;
  std::unique_ptr<sim::PsrpService> powershell;  // declared first: the WinRS service routes to it
  std::unique_ptr<sim::WinrsService> service;
  std::unique_ptr<sim::Server> server;
  std::thread thread;
  unsigned short port = 0;
  std::string error;
};

sim::WindowsAuthOptions offer(std::string_view schemes, sim::CbtMode cbt = sim::CbtMode::kRelaxed) {
  sim::WindowsAuthOptions options;
  options.schemes = *sim::parse_auth_schemes(schemes);
  options.cbt = cbt;
  if (g_peers->kdc) options.keytab = g_peers->kdc->service_keytab();
  return options;
}

CommandSpec cmd(std::string line) {
  CommandSpec spec;
  spec.command = "cmd.exe";
  spec.arguments = {"/c", std::move(line)};
  return spec;
}

struct Outcome {
  Status status;
  std::string stdout_data;
  std::string ps_stdout;
  TransportCounters counters;
  std::uint64_t warm_requests = 0;  // HTTP requests of the second (warm) command
  // PowerShell remoting over the same connection: what two pipelines in one runspace pool wrote, and the HTTP
  // requests of the second (warm) one.
  std::vector<std::string> psrp_output;
  std::uint64_t psrp_warm_requests = 0;
  bool fault_seen = false;  // a SOAP fault (HTTP 500) arrived and was readable
};

class AuthE2E : public ::testing::Test {
 protected:
  void need_kdc() {
    if (!g_peers->kdc) GTEST_SKIP() << "no test KDC: " << g_peers->kdc_error;
    g_peers->kdc->apply_environment();
    ccache_ = g_peers->kdc->dir() + "/cc-" + random_uuid();
    ::setenv("KRB5CCNAME", ("FILE:" + ccache_).c_str(), 1);
  }

  // Runs `echo` through cmd.exe twice and a wincert-op echo script over one connection and shell.
  Outcome exercise(InProcessSim& sim, std::unique_ptr<HttpAuth> auth, bool tls, const std::string& host = "localhost",
                   std::pair<std::string, std::string> client_certificate = {}) {
    Outcome out;
    EXPECT_TRUE(sim.error.empty()) << sim.error;
    auto endpoint = parse_endpoint(sim.url(tls, host));
    EXPECT_TRUE(endpoint.ok());
    TransportOptions options;
    options.ca_file = g_peers->cert;
    options.connect.connect_timeout = std::chrono::seconds(20);
    options.exchange.read_timeout = std::chrono::seconds(40);
    options.client_certificate_file = client_certificate.first;
    options.client_key_file = client_certificate.second;
    auto transport = WsmanTransport::create(io_.get_executor(), *endpoint, std::move(auth), options);
    if (!transport) {
      out.status = transport.error();
      return out;
    }
    SessionOptions session_options;
    session_options.operation_timeout = std::chrono::seconds(5);
    WinrsSession session(**transport, session_options);
    auto first = test::run_coro(io_, session.run(cmd("echo hello-auth")));
    if (!first) {
      out.status = first.error();
      return out;
    }
    out.stdout_data = first->stdout_data;
    const auto before = (*transport)->counters().http_requests;
    auto second = test::run_coro(io_, session.run(cmd("echo warm")));
    if (!second) {
      out.status = second.error();
      return out;
    }
    out.warm_requests = (*transport)->counters().http_requests - before;
    auto ps = test::run_coro(io_, run_ps(session, PsPayload{"# wincert-op: echo\n", R"({"secret_free":"yes"})"}));
    if (!ps) {
      out.status = ps.error();
      return out;
    }
    out.ps_stdout = ps->stdout_data;
    (void)test::run_coro(io_, session.close());
    // PSRP over the same authenticated (and, over http, sealed) connection: a runspace pool, two pipelines.
    psrp::WsmanRunspacePoolOptions pool_options;
    pool_options.operation_timeout = std::chrono::seconds(5);
    auto pool = test::run_coro(io_, psrp::WsmanRunspacePool::open(**transport, pool_options));
    if (!pool) {
      out.status = pool.error();
      return out;
    }
    for (const char* text : {"Write-Output 'hello-psrp'", "Write-Output 'warm-psrp'"}) {
      psrp::PipelineCommand command;
      command.command = text;
      command.is_script = true;
      std::vector<psrp::PipelineCommand> commands{command};
      const auto before_pipeline = (*transport)->counters().http_requests;
      auto ran = test::run_coro(io_, (*pool)->invoke(std::move(commands), std::chrono::seconds(30)));
      if (!ran) {
        out.status = ran.error();
        return out;
      }
      for (const auto& value : ran->output) out.psrp_output.push_back(value.to_display_string());
      out.psrp_warm_requests = (*transport)->counters().http_requests - before_pipeline;
    }
    (void)test::run_coro(io_, (*pool)->close());
    // A WS-Man fault (HTTP 500) comes back sealed like any response and is decrypted.
    RequestContext ctx;
    ctx.to = (*transport)->endpoint().url();
    auto fault = test::run_coro(
        io_,
        (*transport)
            ->request(build_delete_shell(ctx, {{"ShellId", "00000000-0000-0000-0000-000000000000"}}), "Delete shell"));
    out.fault_seen = fault.ok() && fault->http_status == 500 && fault->soap.fault.has_value();
    out.counters = (*transport)->counters();
    return out;
  }

  void expect_success(const Outcome& out) {
    ASSERT_TRUE(out.status.ok()) << out.status.error().message;
    EXPECT_EQ(out.stdout_data, "hello-auth\r\n");
    EXPECT_NE(out.ps_stdout.find("secret_free"), std::string::npos) << out.ps_stdout;
    EXPECT_TRUE(out.fault_seen);
    EXPECT_EQ(out.counters.connections_opened, 1u);
    EXPECT_EQ(out.psrp_output, (std::vector<std::string>{"hello-psrp", "warm-psrp"}));
    EXPECT_EQ(out.psrp_warm_requests, 2u);  // Command, Receive: no auth exchange on a warm pipeline
  }

  static std::unique_ptr<HttpAuth> ntlm(std::string password = kNtlmPassword, std::string user = kNtlmUser) {
    return std::make_unique<NtlmHttpAuth>(std::move(user), Secret(std::move(password)));
  }
  static std::unique_ptr<HttpAuth> kerberos(bool negotiate, bool with_password = true, GssHttpAuthOptions o = {}) {
    const auto& kdc = *g_peers->kdc;
    Secret password = with_password ? Secret(kdc.user_password()) : Secret();
    if (negotiate) return std::make_unique<NegotiateHttpAuth>(kdc.user_principal(), password, o);
    return std::make_unique<KerberosHttpAuth>(kdc.user_principal(), password, o);
  }

  net::io_context io_;
  std::string ccache_;
};

// ---- sim helpers ------------------------------------------------------------------------------------

TEST(SimAuthHelpers, SchemesAndCbtModes) {
  auto all = sim::parse_auth_schemes("basic, NTLM,kerberos,negotiate,certificate");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->basic && all->ntlm && all->kerberos && all->negotiate && all->certificate);
  auto none = sim::parse_auth_schemes("basic");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->gss());
  auto bad = sim::parse_auth_schemes("basic,digest");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(bad.error().message.find("'digest'"), std::string::npos);
  EXPECT_EQ(*sim::parse_cbt_mode("Strict"), sim::CbtMode::kStrict);
  EXPECT_EQ(*sim::parse_cbt_mode("none"), sim::CbtMode::kNone);
  EXPECT_FALSE(sim::parse_cbt_mode("hard").ok());
}

TEST(SimAuthHelpers, CertificateMapByThumbprintOrSubject) {
  auto der = sim::load_certificate_der(g_peers->cert);
  ASSERT_TRUE(der.ok()) << der.error().message;
  // SHA-1 thumbprint of the DER, as Windows shows it.
  const std::string map_file = (g_peers->dir / "certmap.json").string();
  std::string thumbprint;
  {
    unsigned char digest[20];
    unsigned int len = 0;
    const auto* p = reinterpret_cast<const unsigned char*>(der->data());
    X509* cert = d2i_X509(nullptr, &p, static_cast<long>(der->size()));
    ASSERT_NE(cert, nullptr);
    ASSERT_EQ(X509_digest(cert, EVP_sha1(), digest, &len), 1);
    X509_free(cert);
    thumbprint = hex_lower(std::string(reinterpret_cast<const char*>(digest), len));
  }
  std::ofstream(map_file) << "{\"" << thumbprint << "\": \"WINCERT\\\\alice\"}";
  auto map = sim::load_certificate_map(map_file);
  ASSERT_TRUE(map.ok()) << map.error().message;
  EXPECT_EQ(sim::map_client_certificate(*der, *map).value_or(""), "WINCERT\\alice");  // case-insensitive hex
  EXPECT_EQ(sim::map_client_certificate(*der, {{"CN=localhost", "bob"}}).value_or(""), "bob");
  EXPECT_FALSE(sim::map_client_certificate(*der, {{"CN=other", "bob"}}).has_value());
  EXPECT_FALSE(sim::map_client_certificate("not a certificate", *map).has_value());
  std::ofstream(map_file) << "[1,2]";
  EXPECT_FALSE(sim::load_certificate_map(map_file).ok());
  EXPECT_FALSE(sim::load_certificate_map(map_file + ".missing").ok());
}

// Hostile Authorization headers and bodies straight into the sim's per-connection acceptor: every one is
// refused (401) or rejected (error), none crashes.
TEST(SimAuthHelpers, HostileTokensAreRefused) {
  auto options = sim::WindowsAuthOptions{};
  options.schemes = *sim::parse_auth_schemes("basic,ntlm,kerberos,negotiate,certificate");
  if (g_peers->kdc) options.keytab = g_peers->kdc->service_keytab();
  auto authenticator = sim::make_windows_authenticator(options);
  ASSERT_TRUE(authenticator.ok()) << authenticator.error().message;
  const std::string ntlm_type3_garbage = std::string("NTLMSSP\0\3\0\0\0", 12) + std::string(40, '\xff');
  const std::string ntlm_type1_short = std::string("NTLMSSP\0\1\0\0\0", 12);
  std::vector<std::string> headers = {"Negotiate",
                                      "Negotiate ",
                                      "Negotiate !!!",
                                      "Kerberos " + base64_encode(std::string(300, 'x')),
                                      "Negotiate " + base64_encode(std::string("\x60\x82\xff\xff\x06\x06", 6)),
                                      "Negotiate " + base64_encode(ntlm_type3_garbage),
                                      "Negotiate " + base64_encode(ntlm_type1_short),
                                      "Negotiate " + std::string(60000, 'A'),
                                      "Basic " + base64_encode(std::string("no-colon")),
                                      "Basic ",
                                      std::string(kCertificateAuthHeaderForTest),
                                      "Digest x",
                                      ""};
  sim::ConnectionInfo conn;
  conn.client_ip = "127.0.0.1";
  for (const auto& header : headers) {
    auto connection = (*authenticator)->new_connection();
    sim::HttpRequest request{boost::beast::http::verb::post, "/wsman", 11};
    if (!header.empty()) request.set(boost::beast::http::field::authorization, header);
    const auto decision = connection->authenticate(request, conn);
    EXPECT_FALSE(decision.authenticated) << header.substr(0, 40);
    // A multipart/encrypted body without a security context is an error, not a crash.
    request.set(
        boost::beast::http::field::content_type,
        "multipart/encrypted;protocol=\"application/HTTP-SPNEGO-session-encrypted\";boundary=\"Encrypted Boundary\"");
    request.body() = "--Encrypted Boundary\r\n garbage";
    EXPECT_FALSE(connection->unwrap_request(request).ok());
  }
}

// ---- success: NTLM ----------------------------------------------------------------------------------

TEST_F(AuthE2E, NtlmOverHttpEncrypts) {
  InProcessSim sim(offer("ntlm"), false);
  auto out = exercise(sim, ntlm(), false);
  expect_success(out);
  EXPECT_EQ(sim.auth_stats->handshakes.load(), 1u);  // once per connection
  EXPECT_GT(sim.auth_stats->encrypted_requests.load(), 5u);
  EXPECT_EQ(sim.auth_stats->unencrypted_refused.load(), 0u);
  EXPECT_EQ(out.warm_requests, 3u);  // Command, Receive, Signal: no auth exchange on a warm command
}

TEST_F(AuthE2E, NtlmOverHttpsWithStrictChannelBinding) {
  InProcessSim sim(offer("ntlm", sim::CbtMode::kStrict), true);
  auto out = exercise(sim, ntlm(), true);
  expect_success(out);
  EXPECT_EQ(sim.auth_stats->handshakes.load(), 1u);
  EXPECT_EQ(sim.auth_stats->encrypted_requests.load(), 0u);  // TLS: no message encryption
}

// ---- success: Kerberos / Negotiate ------------------------------------------------------------------

TEST_F(AuthE2E, KerberosWithPasswordOverHttpEncrypts) {
  need_kdc();
  InProcessSim sim(offer("kerberos"), false);
  auto out = exercise(sim, kerberos(false), false);
  expect_success(out);
  EXPECT_EQ(sim.auth_stats->handshakes.load(), 1u);
  EXPECT_EQ(sim.auth_stats->challenges.load(), 0u);  // preemptive token: no 401 round trip
  EXPECT_GT(sim.auth_stats->encrypted_requests.load(), 5u);
  EXPECT_EQ(out.warm_requests, 3u);
}

TEST_F(AuthE2E, NegotiateWithPasswordOverHttpEncrypts) {
  need_kdc();
  InProcessSim sim(offer("negotiate"), false);
  auto auth =
      std::make_unique<NegotiateHttpAuth>(g_peers->kdc->user_principal(), Secret(g_peers->kdc->user_password()));
  const std::size_t log_before = flushed_log().size();
  auto out = exercise(sim, std::move(auth), false);  // the transport (and the auth) is gone afterwards
  expect_success(out);
  EXPECT_EQ(flushed_log().substr(log_before).find("using NTLM"), std::string::npos);  // Kerberos it was
  EXPECT_EQ(sim.auth_stats->handshakes.load(), 1u);
  EXPECT_GT(sim.auth_stats->encrypted_requests.load(), 5u);
}

TEST_F(AuthE2E, KerberosAndNegotiateFromCcacheOverHttpsWithChannelBinding) {
  need_kdc();
  ASSERT_TRUE(gss::store_ticket_in_ccache(g_peers->kdc->user_principal(), Secret(g_peers->kdc->user_password()),
                                          "FILE:" + ccache_)
                  .ok());
  for (bool negotiate : {false, true}) {
    SCOPED_TRACE(negotiate ? "negotiate" : "kerberos");
    InProcessSim sim(offer("kerberos,negotiate", sim::CbtMode::kStrict), true);
    auto out = exercise(sim, kerberos(negotiate, /*with_password=*/false), true);
    expect_success(out);
    EXPECT_EQ(sim.auth_stats->handshakes.load(), 1u);
  }
}

TEST_F(AuthE2E, KerberosFromCcacheOverHttpAndPasswordOverHttps) {
  need_kdc();
  ASSERT_TRUE(gss::store_ticket_in_ccache(g_peers->kdc->user_principal(), Secret(g_peers->kdc->user_password()),
                                          "FILE:" + ccache_)
                  .ok());
  {
    InProcessSim sim(offer("kerberos,negotiate"), false);
    expect_success(exercise(sim, kerberos(true, false), false));
  }
  {
    InProcessSim sim(offer("kerberos,negotiate", sim::CbtMode::kStrict), true);
    expect_success(exercise(sim, kerberos(false, true), true));
  }
}

TEST_F(AuthE2E, NegotiateFallsBackToNtlmWithoutKerberos) {
  need_kdc();
  // WINCERT is no Kerberos realm here (no KDC for it): Negotiate must use NTLM.
  InProcessSim sim(offer("negotiate"), false);
  auto auth = std::make_unique<NegotiateHttpAuth>(kNtlmUser, Secret(kNtlmPassword));
  auto out = exercise(sim, std::move(auth), false);  // the transport (and the auth) is gone afterwards
  expect_success(out);
  EXPECT_NE(flushed_log().find("using NTLM"), std::string::npos);
}

// Negotiate falls back to NTLM on "no Kerberos here" (no ticket, no realm, no reachable KDC), decided on
// the code and the GSS/SSPI status kind, never on the text; refused credentials never fall back.
TEST(NegotiateFallback, DecidedByCodeAndStatusKind) {
  const auto gss = [](Error e) { return std::move(e).with_system_status(SystemStatusKind::kGss, 851968); };
  EXPECT_TRUE(kerberos_unavailable(gss(Error::unavailable("x"))));
  EXPECT_TRUE(kerberos_unavailable(gss(Error::failed_precondition("x"))));
  EXPECT_TRUE(kerberos_unavailable(
      Error::unavailable("x").with_system_status(SystemStatusKind::kSspi, 0x80090311u)));  // no authority
  EXPECT_FALSE(kerberos_unavailable(gss(Error::unauthenticated("x"))));
  EXPECT_FALSE(kerberos_unavailable(gss(Error::invalid_argument("x"))));
  // The right words without the GSS status are not a Kerberos verdict.
  EXPECT_FALSE(kerberos_unavailable(Error::unavailable("cannot reach a KDC")));
}

// ---- failures: one clear line ----------------------------------------------------------------------

TEST_F(AuthE2E, NtlmWrongPasswordAndUnknownUser) {
  InProcessSim sim(offer("ntlm"), false);
  auto out = exercise(sim, ntlm(kWrongPassword), false);
  ASSERT_FALSE(out.status.ok());
  const std::string where = "localhost:" + std::to_string(sim.port);
  EXPECT_NE(out.status.error().message.find(std::string("authentication failed for WINCERT\\alice at ") + where),
            std::string::npos)
      << out.status.error().message;
  EXPECT_EQ(out.status.error().message.find('\n'), std::string::npos);
  EXPECT_THAT(out.status, ErrorWith(ErrorCode::kUnauthenticated, HttpStatus(401)));
  auto unknown = exercise(sim, ntlm(kNtlmPassword, "WINCERT\\mallory"), false);
  ASSERT_FALSE(unknown.status.ok());
  EXPECT_NE(unknown.status.error().message.find("authentication failed for WINCERT\\mallory at " + where),
            std::string::npos)
      << unknown.status.error().message;
  EXPECT_THAT(unknown.status, ErrorWith(ErrorCode::kUnauthenticated, HttpStatus(401)));
}

TEST_F(AuthE2E, KerberosWrongPasswordUnknownUserWrongSpn) {
  need_kdc();
  InProcessSim sim(offer("kerberos,negotiate"), false);
  auto wrong =
      exercise(sim, std::make_unique<KerberosHttpAuth>(g_peers->kdc->user_principal(), Secret(kWrongPassword)), false);
  ASSERT_FALSE(wrong.status.ok());
  EXPECT_NE(wrong.status.error().message.find("refused the password"), std::string::npos)
      << wrong.status.error().message;
  EXPECT_THAT(wrong.status, ErrorWith(ErrorCode::kUnauthenticated, gss_status()));

  auto unknown = exercise(sim, std::make_unique<KerberosHttpAuth>("nobody@TEST.LOCAL", Secret(kWrongPassword)), false);
  ASSERT_FALSE(unknown.status.ok());
  EXPECT_NE(unknown.status.error().message.find("unknown to the KDC"), std::string::npos)
      << unknown.status.error().message;
  EXPECT_THAT(unknown.status, ErrorWith(ErrorCode::kUnauthenticated, gss_status()));

  GssHttpAuthOptions wsman;
  wsman.service = "WSMAN";
  auto spn = exercise(sim, kerberos(false, true, wsman), false);
  ASSERT_FALSE(spn.status.ok());
  EXPECT_NE(spn.status.error().message.find("no service principal WSMAN/localhost"), std::string::npos)
      << spn.status.error().message;
  EXPECT_THAT(spn.status, ErrorWith(ErrorCode::kUnauthenticated, gss_status()));
  // Negotiate with a wrong password must not hide it behind NTLM.
  auto negotiate =
      exercise(sim, std::make_unique<NegotiateHttpAuth>(g_peers->kdc->user_principal(), Secret(kWrongPassword)), false);
  ASSERT_FALSE(negotiate.status.ok());
  EXPECT_NE(negotiate.status.error().message.find("refused the password"), std::string::npos)
      << negotiate.status.error().message;
  EXPECT_THAT(negotiate.status, ErrorWith(ErrorCode::kUnauthenticated, gss_status()));
}

TEST_F(AuthE2E, KerberosKdcUnreachable) {
  need_kdc();
  const std::string conf = g_peers->kdc->write_client_config("closed-kdc.conf", 9);  // discard port: closed
  ::setenv("KRB5_CONFIG", conf.c_str(), 1);
  InProcessSim sim(offer("kerberos"), false);
  auto out = exercise(sim, kerberos(false), false);
  g_peers->kdc->apply_environment();
  ASSERT_FALSE(out.status.ok());
  EXPECT_NE(out.status.error().message.find("cannot reach a KDC"), std::string::npos) << out.status.error().message;
  EXPECT_THAT(out.status, ErrorWith(ErrorCode::kUnavailable, gss_status()));
  EXPECT_TRUE(out.status.error().retryable());
}

TEST_F(AuthE2E, ChannelBindingMismatchIsRefused) {
  need_kdc();
  // The acceptor binds to another certificate than the one the client sees (a TLS-intercepting proxy).
  auto options = offer("ntlm,kerberos,negotiate", sim::CbtMode::kStrict);
  options.server_certificate_der = *sim::load_certificate_der(g_peers->other_cert);
  InProcessSim sim(options, true);
  auto n = exercise(sim, ntlm(), true);
  ASSERT_FALSE(n.status.ok());
  EXPECT_NE(n.status.error().message.find("authentication failed for WINCERT\\alice"), std::string::npos)
      << n.status.error().message;
  EXPECT_THAT(n.status, ErrorWith(ErrorCode::kUnauthenticated, HttpStatus(401)));
  auto k = exercise(sim, kerberos(false), true);
  ASSERT_FALSE(k.status.ok());
  EXPECT_NE(k.status.error().message.find("authentication failed for " + g_peers->kdc->user_principal()),
            std::string::npos)
      << k.status.error().message;
  EXPECT_THAT(k.status, ErrorWith(ErrorCode::kUnauthenticated, HttpStatus(401)));
  EXPECT_EQ(sim.auth_stats->handshakes.load(), 0u);
}

TEST_F(AuthE2E, ServerDemandingAnotherScheme) {
  need_kdc();
  InProcessSim sim(offer("basic"), false);
  auto out = exercise(sim, kerberos(false), false);
  ASSERT_FALSE(out.status.ok());
  EXPECT_NE(out.status.error().message.find("does not offer Kerberos authentication (it offers: Basic)"),
            std::string::npos)
      << out.status.error().message;
  EXPECT_THAT(out.status, ErrorWith(ErrorCode::kUnauthenticated, HttpStatus(401)));
  InProcessSim kerberos_only(offer("kerberos"), false);
  auto n = exercise(kerberos_only, ntlm(), false);
  ASSERT_FALSE(n.status.ok());
  EXPECT_NE(n.status.error().message.find("does not offer Negotiate"), std::string::npos) << n.status.error().message;
  EXPECT_THAT(n.status, ErrorWith(ErrorCode::kUnauthenticated, HttpStatus(401)));
}

// The client believes its clock is an hour ahead (reused from the kerberos engineer's failure test: MIT
// keeps the KDC time offset in the ccache header, so a ccache written with a shifted clock makes every
// request from it carry a skewed timestamp).
TEST_F(AuthE2E, KerberosClockSkew) {
  need_kdc();
  const std::string good = g_peers->kdc->dir() + "/skew-source-" + random_uuid() + ".cc";
  ASSERT_TRUE(
      gss::store_ticket_in_ccache(g_peers->kdc->user_principal(), Secret(g_peers->kdc->user_password()), "FILE:" + good)
          .ok());
  krb5_context context = nullptr;
  ASSERT_EQ(krb5_init_context(&context), 0);
  krb5_ccache source = nullptr;
  krb5_ccache skewed = nullptr;
  krb5_principal principal = nullptr;
  ASSERT_EQ(krb5_cc_resolve(context, ("FILE:" + good).c_str(), &source), 0);
  ASSERT_EQ(krb5_cc_get_principal(context, source, &principal), 0);
  ASSERT_EQ(krb5_set_real_time(context, static_cast<krb5_timestamp>(std::time(nullptr) + 3600), 0), 0);
  ASSERT_EQ(krb5_cc_resolve(context, ("FILE:" + ccache_).c_str(), &skewed), 0);
  ASSERT_EQ(krb5_cc_initialize(context, skewed, principal), 0);
  ASSERT_EQ(krb5_cc_copy_creds(context, source, skewed), 0);
  krb5_free_principal(context, principal);
  krb5_cc_close(context, source);
  krb5_cc_close(context, skewed);
  krb5_free_context(context);

  InProcessSim sim(offer("kerberos"), false);
  auto out = exercise(sim, kerberos(false, /*with_password=*/false), false);
  ASSERT_FALSE(out.status.ok());
  EXPECT_NE(out.status.error().message.find("clocks of this machine"), std::string::npos) << out.status.error().message;
  EXPECT_THAT(out.status, ErrorWith(ErrorCode::kUnauthenticated, gss_status()));
}

TEST_F(AuthE2E, KerberosSpnWithPort) {
  need_kdc();
  InProcessSim sim(offer("kerberos,negotiate"), false);
  GssHttpAuthOptions with_port;
  with_port.spn_with_port = true;
  // Not registered yet: the error names the SPN with the port.
  auto missing = exercise(sim, kerberos(false, true, with_port), false);
  ASSERT_FALSE(missing.status.ok());
  const std::string spn = "HTTP/localhost:" + std::to_string(sim.port);
  EXPECT_NE(missing.status.error().message.find(spn), std::string::npos) << missing.status.error().message;
  EXPECT_THAT(missing.status, ErrorWith(ErrorCode::kUnauthenticated, gss_status()));
  ASSERT_TRUE(g_peers->kdc->add_service(spn, g_peers->kdc->service_keytab()).ok());
  expect_success(exercise(sim, kerberos(true, true, with_port), false));
}

TEST_F(AuthE2E, MidSession401ReauthenticatesOnceThenFailsClearly) {
  need_kdc();
  auto options = offer("ntlm,kerberos,negotiate");
  options.drop_context_after = 3;
  {
    InProcessSim sim(options, true);
    expect_success(exercise(sim, ntlm(), true));
    EXPECT_EQ(sim.auth_stats->handshakes.load(), 2u);
    expect_success(exercise(sim, kerberos(false), true));
    EXPECT_EQ(sim.auth_stats->handshakes.load(), 4u);  // each: the first handshake and one fresh one
  }
  {
    // Over HTTP the sealing state is lost with the context: the transport redoes the handshake.
    InProcessSim sim(options, false);
    expect_success(exercise(sim, ntlm(), false));
    expect_success(exercise(sim, kerberos(false), false));
    expect_success(exercise(sim, kerberos(true), false));
    EXPECT_EQ(sim.auth_stats->handshakes.load(), 6u);
  }
  options.refuse_after_drop = true;
  InProcessSim sim(options, true);
  auto out = exercise(sim, kerberos(true), true);
  ASSERT_FALSE(out.status.ok());
  EXPECT_NE(out.status.error().message.find("authentication failed for " + g_peers->kdc->user_principal()),
            std::string::npos)
      << out.status.error().message;
  EXPECT_THAT(out.status, ErrorWith(ErrorCode::kUnauthenticated, HttpStatus(401)));
  InProcessSim http(options, false);
  auto encrypted = exercise(http, kerberos(false), false);
  ASSERT_FALSE(encrypted.status.ok());
  EXPECT_NE(encrypted.status.error().message.find("authentication failed for " + g_peers->kdc->user_principal()),
            std::string::npos)
      << encrypted.status.error().message;
  EXPECT_THAT(encrypted.status, ErrorWith(ErrorCode::kUnauthenticated, HttpStatus(401)));
}

TEST_F(AuthE2E, ClientCertificateOverHttps) {
  const std::string dir = g_peers->dir.string();
  const auto sh = [&](const std::string& c) { ASSERT_EQ(run_shell(c + " >/dev/null 2>&1"), 0) << c; };
  sh("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=Client CA' -addext "
     "basicConstraints=critical,CA:TRUE "
     "-keyout " +
     dir + "/ca.key -out " + dir + "/ca.pem");
  for (const std::string name : {"alice", "stranger"}) {
    sh("openssl req -new -newkey rsa:2048 -nodes -subj /CN=" + name + " -keyout " + dir + "/" + name + ".key -out " +
       dir + "/" + name + ".csr");
    sh("openssl x509 -req -in " + dir + "/" + name + ".csr -CA " + dir + "/ca.pem -CAkey " + dir +
       "/ca.key -CAcreateserial -days 2 -out " + dir + "/" + name + ".pem");
  }
  auto options = offer("certificate,ntlm");
  options.certificate_map = {{"CN=alice", "WINCERT\\alice"}};
  InProcessSim sim(options, true, dir + "/ca.pem");
  const auto alice = std::make_pair(dir + "/alice.pem", dir + "/alice.key");
  expect_success(exercise(sim, std::make_unique<CertificateHttpAuth>(alice.first), true, "localhost", alice));
  EXPECT_GE(sim.auth_stats->certificate_logons.load(), 1u);
  // The same listener still serves NTLM clients that present no certificate.
  expect_success(exercise(sim, ntlm(), true));
  const auto stranger = std::make_pair(dir + "/stranger.pem", dir + "/stranger.key");
  auto refused = exercise(sim, std::make_unique<CertificateHttpAuth>(stranger.first), true, "localhost", stranger);
  ASSERT_FALSE(refused.status.ok());
  EXPECT_NE(refused.status.error().message.find("authentication failed for the client certificate"), std::string::npos)
      << refused.status.error().message;
  EXPECT_THAT(refused.status, ErrorWith(ErrorCode::kUnauthenticated, HttpStatus(401)));
  auto plain = exercise(sim, std::make_unique<CertificateHttpAuth>(alice.first), false, "localhost", alice);
  ASSERT_FALSE(plain.status.ok());
  EXPECT_NE(plain.status.error().message.find("needs https"), std::string::npos) << plain.status.error().message;
  EXPECT_THAT(plain.status, HasCode(ErrorCode::kFailedPrecondition));
}

// An HttpAuth that corrupts what it seals or receives, for the tamper tests.
class Tampering final : public HttpAuth {
 public:
  enum class Mode { kFlipRequest, kTruncateRequest, kFlipResponse, kClearRequest };
  Tampering(std::unique_ptr<HttpAuth> inner, Mode mode) : inner_(std::move(inner)), mode_(mode) {}
  std::string scheme() const override { return inner_->scheme(); }
  std::string principal() const override { return inner_->principal(); }
  Status check_transport(const ConnectionInfo& c) const override { return inner_->check_transport(c); }
  Status reset(const ConnectionInfo& c) override { return inner_->reset(c); }
  Result<std::optional<std::string>> authorization() override { return inner_->authorization(); }
  Result<ChallengeOutcome> on_challenge(const std::vector<std::string>& w) override { return inner_->on_challenge(w); }
  Status on_response(const std::vector<std::string>& w) override { return inner_->on_response(w); }
  bool encrypts() const override { return inner_->encrypts(); }
  Result<HttpBody> wrap(std::string_view soap) override {
    if (mode_ == Mode::kClearRequest) return HttpBody{std::string(soap), "application/soap+xml;charset=UTF-8"};
    auto body = inner_->wrap(soap);
    if (!body) return body;
    auto& data = body->data;
    const auto at = data.find("application/octet-stream");
    if (mode_ == Mode::kFlipRequest && at != std::string::npos && at + 60 < data.size()) data[at + 60] ^= 0x5a;
    if (mode_ == Mode::kTruncateRequest) data.resize(data.size() * 2 / 3);
    return body;
  }
  Result<std::string> unwrap(std::string_view body, std::string_view ct) override {
    std::string copy(body);
    const auto at = copy.find("application/octet-stream");
    if (mode_ == Mode::kFlipResponse && at != std::string::npos && at + 60 < copy.size()) copy[at + 60] ^= 0x5a;
    return inner_->unwrap(copy, ct);
  }

 private:
  std::unique_ptr<HttpAuth> inner_;
  Mode mode_;
};

TEST_F(AuthE2E, TamperedTruncatedOrClearBodiesAreRejected) {
  for (auto mode : {Tampering::Mode::kFlipRequest, Tampering::Mode::kTruncateRequest, Tampering::Mode::kFlipResponse,
                    Tampering::Mode::kClearRequest}) {
    SCOPED_TRACE(static_cast<int>(mode));
    InProcessSim sim(offer("ntlm"), false);
    auto out = exercise(sim, std::make_unique<Tampering>(ntlm(), mode), false);
    ASSERT_FALSE(out.status.ok());
    EXPECT_EQ(out.status.error().message.find('\n'), std::string::npos);
    if (mode == Tampering::Mode::kClearRequest) {
      EXPECT_GE(sim.auth_stats->unencrypted_refused.load(), 1u);
    } else if (mode != Tampering::Mode::kFlipResponse) {
      EXPECT_GE(sim.auth_stats->unseal_failures.load(), 1u);
    }
    // The server survived: a clean client still works.
    expect_success(exercise(sim, ntlm(), false));
  }
  if (g_peers->kdc) {
    need_kdc();
    InProcessSim sim(offer("kerberos"), false);
    auto out = exercise(sim, std::make_unique<Tampering>(kerberos(false), Tampering::Mode::kFlipResponse), false);
    ASSERT_FALSE(out.status.ok());
    auto flipped = exercise(sim, std::make_unique<Tampering>(kerberos(false), Tampering::Mode::kFlipRequest), false);
    ASSERT_FALSE(flipped.status.ok());
    EXPECT_GE(sim.auth_stats->unseal_failures.load(), 1u);
  }
}

// ---- secrets never logged ------------------------------------------------------------------------

TEST_F(AuthE2E, NoSecretInTraceLogs) {
  // Successes and failures of every scheme at trace level (client and sim log into the same file).
  {
    InProcessSim sim(offer("ntlm,kerberos,negotiate"), false);
    expect_success(exercise(sim, ntlm(), false));
    EXPECT_FALSE(exercise(sim, ntlm(kWrongPassword), false).status.ok());
    if (g_peers->kdc) {
      need_kdc();
      expect_success(exercise(sim, kerberos(false), false));
      expect_success(exercise(sim, kerberos(true), false));
      EXPECT_FALSE(exercise(sim,
                            std::make_unique<KerberosHttpAuth>(g_peers->kdc->user_principal(), Secret(kWrongPassword)),
                            false)
                       .status.ok());
    }
  }
  {
    InProcessSim sim(offer("ntlm,kerberos,negotiate", sim::CbtMode::kStrict), true);
    expect_success(exercise(sim, ntlm(), true));
    if (g_peers->kdc) expect_success(exercise(sim, kerberos(true), true));
  }
  const std::string log = flushed_log();
  ASSERT_FALSE(log.empty());
  std::vector<std::string> secrets = {kNtlmPassword, kWrongPassword, base64_encode(std::string(kNtlmPassword))};
  const std::string utf16 = utf8_to_utf16le(kNtlmPassword);
  auto nt = ntlm_crypto::md4(ntlm_crypto::view(utf16));
  ASSERT_TRUE(nt.ok());
  const std::string nt_bytes(reinterpret_cast<const char*>(nt->data()), nt->size());
  secrets.push_back(hex_lower(nt_bytes));
  secrets.push_back(hex_upper(nt_bytes));
  if (g_peers->kdc) secrets.push_back(g_peers->kdc->user_password());
  for (const auto& secret : secrets) EXPECT_EQ(log.find(secret), std::string::npos) << "a secret leaked into the log";
  // No token (tickets and session keys travel inside them) is logged either.
  EXPECT_EQ(log.find("TlRMTVNTUA"), std::string::npos);     // base64 "NTLMSSP"
  EXPECT_EQ(log.find("Negotiate YII"), std::string::npos);  // base64 SPNEGO/Kerberos tokens
  EXPECT_EQ(log.find("Kerberos YII"), std::string::npos);
}

}  // namespace
}  // namespace wincert::winrm
