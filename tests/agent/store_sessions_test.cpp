// WinrmSessionFactory in-process with jobs::run_job against a winhost-sim child (NTLM over http with
// message encryption): warm reuse of one connection and shell across jobs on a host, one connection per
// concurrent job, the idle timeout, shutdown, and the refusals that need no network.
#include <gtest/gtest.h>

#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <thread>

#include "agent/replay.hpp"
#include "agent/store_sessions.hpp"
#include "agent/winrm_auth_factory.hpp"
#include "jobs/capabilities.hpp"
#include "jobs/job_config.hpp"
#include "session_test_support.hpp"

namespace wincert::agent::testing {
namespace {

namespace net = boost::asio;

struct SessionFactoryTest : ::testing::Test {
  net::io_context io;
  std::unique_ptr<Host> host;
  jobs::CapabilityRegistry registry = jobs::make_default_registry();
  std::vector<jobs::InventoryItem> last_inventory;
  jobs::JobServices services;

  void SetUp() override {
    if (!winrm::test::sim_available()) GTEST_SKIP() << "winhost-sim is not built";
    host = std::make_unique<Host>();
    ASSERT_TRUE(host->running()) << "winhost-sim did not start";
    services.callbacks.begin_inventory =
        jobs::collect_inventory([this](std::vector<jobs::InventoryItem> items) -> net::awaitable<Status> {
          last_inventory = std::move(items);
          co_return Status{};
        });
  }

  jobs::JobConfig job(const std::string& fixture, std::vector<std::string> extra = {}) {
    ReplayOptions options;
    options.job_file = fixture_job(fixture);
    options.sets = {"CertificateStoreDetails.ClientMachine=" + host->client_machine(),
                    "CertificateStoreDetails.Properties.WinRM Protocol=http",
                    "CertificateStoreDetails.Properties.WinRM Authentication=ntlm",
                    std::string("ServerUsername=") + kNtlmUser, std::string("ServerPassword=") + kPassword};
    options.sets.insert(options.sets.end(), extra.begin(), extra.end());
    auto text = load_job_text(options);
    EXPECT_TRUE(text.ok()) << text.error().message;
    auto config = jobs::parse_job_config(text.value());
    EXPECT_TRUE(config.ok()) << config.error().message;
    return config.value();
  }

  jobs::JobResult run_one(WinrmSessionFactory& factory, const jobs::JobConfig& config) {
    services.sessions = &factory;
    return run_coro(io, jobs::run_job(registry, config, services));
  }
};

TEST_F(SessionFactoryTest, ConsecutiveJobsOnOneHostShareOneConnectionAndShell) {
  WinrmSessionFactory factory;
  auto first = run_one(factory, job("WinCertInventory.json"));
  ASSERT_EQ(first.status, jobs::JobStatus::kSuccess) << first.message;
  EXPECT_EQ(last_inventory.size(), 2u);
  auto second = run_one(factory, job("WinIISInventory.json"));
  ASSERT_EQ(second.status, jobs::JobStatus::kSuccess) << second.message;
  auto third = run_one(factory, job("WinCertInventory.json", {"Capability=CertStores.WinSql.Inventory"}));
  ASSERT_EQ(third.status, jobs::JobStatus::kSuccess) << third.message;

  EXPECT_EQ(host->counter("connections"), 1u) << host->status().dump();
  EXPECT_EQ(host->counter("shells_created"), 1u) << host->status().dump();
  const auto stats = factory.stats();
  EXPECT_EQ(stats.opened, 1u);
  EXPECT_EQ(stats.reused, 2u);
  EXPECT_EQ(stats.idle, 1u);
  EXPECT_EQ(stats.leased, 0u);

  run_coro(io, factory.shutdown());
  EXPECT_EQ(factory.stats().idle, 0u);
  EXPECT_EQ(host->status()["requests_by_action"].value("Delete", 0), 1) << "the shell is deleted at shutdown";
}

TEST_F(SessionFactoryTest, ConcurrentJobsOnOneHostGetTheirOwnShells) {
  WinrmSessionFactory factory;
  services.sessions = &factory;
  const auto a = job("WinCertInventory.json");
  const auto b = job("WinIISInventory.json");
  std::optional<jobs::JobResult> ra, rb;
  auto both = [&]() -> net::awaitable<int> {
    auto executor = co_await net::this_coro::executor;
    int done = 0;
    auto one = [&](const jobs::JobConfig& config, std::optional<jobs::JobResult>& out) -> net::awaitable<void> {
      out = co_await jobs::run_job(registry, config, services);
      ++done;
    };
    net::co_spawn(executor, one(a, ra), net::detached);
    net::co_spawn(executor, one(b, rb), net::detached);
    net::steady_timer timer(executor);
    while (done < 2) {
      timer.expires_after(std::chrono::milliseconds(10));
      co_await timer.async_wait(net::use_awaitable);
    }
    co_return done;
  };
  ASSERT_EQ(run_coro(io, both()), 2);
  ASSERT_TRUE(ra && rb);
  EXPECT_EQ(ra->status, jobs::JobStatus::kSuccess) << ra->message;
  EXPECT_EQ(rb->status, jobs::JobStatus::kSuccess) << rb->message;
  EXPECT_EQ(factory.stats().opened, 2u);
  EXPECT_EQ(host->counter("shells_created"), 2u) << host->status().dump();
  EXPECT_EQ(factory.stats().idle, 2u);

  // Both stay warm: the next job takes one of them.
  auto c = run_one(factory, job("WinCertInventory.json"));
  EXPECT_EQ(c.status, jobs::JobStatus::kSuccess) << c.message;
  EXPECT_EQ(factory.stats().opened, 2u);
  EXPECT_EQ(factory.stats().reused, 1u);
  EXPECT_EQ(host->counter("shells_created"), 2u);
}

TEST_F(SessionFactoryTest, IdleConnectionsAreClosedAfterTheIdleTimeout) {
  WinrmSettings defaults;
  defaults.idle_timeout = std::chrono::milliseconds(200);
  WinrmSessionFactory factory(defaults);
  auto first = run_one(factory, job("WinCertInventory.json"));
  ASSERT_EQ(first.status, jobs::JobStatus::kSuccess) << first.message;
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  run_coro(io, factory.close_idle());
  EXPECT_EQ(factory.stats().idle, 0u);
  EXPECT_EQ(factory.stats().closed_idle, 1u);
  EXPECT_EQ(host->status()["requests_by_action"].value("Delete", 0), 1);

  auto second = run_one(factory, job("WinCertInventory.json"));
  ASSERT_EQ(second.status, jobs::JobStatus::kSuccess) << second.message;
  EXPECT_EQ(factory.stats().opened, 2u);
  EXPECT_EQ(factory.stats().reused, 0u);
  EXPECT_EQ(host->counter("shells_created"), 2u);
}

TEST_F(SessionFactoryTest, DifferentCredentialsNeverShareAConnection) {
  WinrmSessionFactory factory;
  auto good = run_one(factory, job("WinCertInventory.json"));
  ASSERT_EQ(good.status, jobs::JobStatus::kSuccess) << good.message;
  auto wrong = run_one(factory, job("WinCertInventory.json", {"ServerPassword=Wr0ng-Passw0rd-42"}));
  EXPECT_EQ(wrong.status, jobs::JobStatus::kFailure);
  EXPECT_NE(wrong.message.find("authentication failed"), std::string::npos) << wrong.message;
  EXPECT_EQ(wrong.message.find("Wr0ng-Passw0rd-42"), std::string::npos);
  EXPECT_FALSE(wrong.retryable());
  EXPECT_EQ(factory.stats().opened, 2u);
}

// The agent's WinRM settings reach the transport as they are; only the client certificate is withheld from hosts
// that do not authenticate with it.
TEST(SessionFactory, TransportOptionsAreTheAgentsWithTheClientCertificateOnlyForCertificateAuth) {
  WinrmSettings settings;
  settings.transport.connect.connect_timeout = std::chrono::seconds(7);
  settings.transport.exchange.read_timeout = std::chrono::seconds(90);
  settings.transport.ca_file = "/etc/wincert/hosts-ca.pem";
  settings.transport.client_certificate_file = "/etc/wincert/agent.pem";
  settings.transport.client_key_file = "/etc/wincert/agent.key";

  const auto certificate = transport_options_for(settings.transport, jobs::AuthScheme::kCertificate);
  EXPECT_EQ(certificate.client_certificate_file, "/etc/wincert/agent.pem");
  EXPECT_EQ(certificate.client_key_file, "/etc/wincert/agent.key");
  for (auto scheme : {jobs::AuthScheme::kBasic, jobs::AuthScheme::kNtlm, jobs::AuthScheme::kNegotiate}) {
    const auto other = transport_options_for(settings.transport, scheme);
    EXPECT_TRUE(other.client_certificate_file.empty());
    EXPECT_TRUE(other.client_key_file.empty());
    EXPECT_EQ(other.connect.connect_timeout, std::chrono::seconds(7));
    EXPECT_EQ(other.exchange.read_timeout, std::chrono::seconds(90));
    EXPECT_EQ(other.ca_file, "/etc/wincert/hosts-ca.pem");
  }
  EXPECT_TRUE(transport_options_for(settings.transport, std::nullopt).client_certificate_file.empty());
}

TEST(SessionFactory, RefusesLocalTargetsAndCertificateAuthWithoutAClientCertificate) {
  net::io_context io;
  WinrmSessionFactory factory;
  jobs::Target local;
  local.local = true;
  local.machine = "WEB01";
  auto refused = run_coro(io, factory.open(local));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(refused.error().message.find("Windows build"), std::string::npos) << refused.error().message;

  jobs::Target remote;
  remote.machine = "web01";
  remote.remote.host = "web01";
  remote.remote.port = 5986;
  remote.remote.https = true;
  remote.remote.endpoint_url = jobs::endpoint_url("web01", 5986, true);
  remote.remote.auth = jobs::AuthScheme::kCertificate;
  auto no_cert = run_coro(io, factory.open(remote));
  ASSERT_FALSE(no_cert.ok());
  EXPECT_EQ(no_cert.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(no_cert.error().message.find("client certificate"), std::string::npos) << no_cert.error().message;
  EXPECT_EQ(factory.stats().opened, 0u);
}

}  // namespace
}  // namespace wincert::agent::testing
