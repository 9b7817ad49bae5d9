// PsrpScriptRunner against a real PowerShell 7 (`pwsh -s` child), through certstore's real remote backend:
// the WincertOps module loaded once per runspace and its op functions called by name; an op's coded
// failure (Data['WincertCategory']) arriving as the same Error the WinRS path gives; a JEA-mode runner that
// never sends script text. The Windows seams (Cert:\, the registry) do not exist on Linux, so the ops here
// are echo and the argument/store checks that run before any Windows API.
#include "agent/psrp_script_runner.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/this_coro.hpp>

#include "certstore/remote/remote_backend.hpp"
#include "tests/support/result_matchers.hpp"
#include "tests/winrm/psrp/transport_test_util.hpp"
#include "winrm/psrp/process_channel.hpp"

namespace wincert::agent {
namespace {

namespace net = boost::asio;
namespace psrp = winrm::psrp;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

TEST(OpFunctionName, FollowsTheModulesNaming) {
  EXPECT_EQ(op_function_name("echo"), "Invoke-WincertEcho");
  EXPECT_EQ(op_function_name("store-inventory"), "Invoke-WincertStoreInventory");
  EXPECT_EQ(op_function_name("iis-remove-cert-if-unused"), "Invoke-WincertIisRemoveCertIfUnused");
  EXPECT_EQ(op_function_name("csr-accept"), "Invoke-WincertCsrAccept");
}

class PsrpScriptRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pwsh_ = psrp::testing::find_pwsh();
    if (!pwsh_) WINCERT_SKIP_OR_FAIL("pwsh (PowerShell 7) not found; run scripts/setup.sh or set WINCERT_PWSH");
  }
  net::awaitable<std::unique_ptr<psrp::OutOfProcRunspacePool>> open_pool(int max_runspaces = 1) {
    psrp::ProcessChannelOptions options;
    options.program = pwsh_->string();
    options.arguments = psrp::pwsh_server_arguments();
    auto channel = psrp::ProcessChannel::start(co_await net::this_coro::executor, std::move(options));
    EXPECT_THAT(channel, IsOk());
    if (!channel.ok()) co_return nullptr;
    psrp::RunspacePoolOptions pool_options;
    pool_options.settings.max_runspaces = max_runspaces;
    auto pool = co_await psrp::OutOfProcRunspacePool::open(std::move(channel).value(), pool_options);
    EXPECT_THAT(pool, IsOk());
    if (!pool.ok()) co_return nullptr;
    co_return std::move(pool).value();
  }
  std::optional<std::filesystem::path> pwsh_;
};

TEST_F(PsrpScriptRunnerTest, LoadsTheModuleOnceAndCallsTheOpsByName) {
  psrp::testing::run_coroutine([&]() -> net::awaitable<void> {
    auto pool = co_await open_pool();
    if (!pool) co_return;
    PsrpScriptRunner runner(*pool, "pwsh-child");
    certstore::remote::ScriptCaller caller(runner);
    const nlohmann::json args = {{"StoreName", "My"}, {"Friendly", "caf\xC3\xA9"}};
    for (int i = 0; i < 3; ++i) {
      auto echoed = co_await caller.call("echo", args);
      EXPECT_THAT(echoed, IsOk());
      if (echoed.ok()) {
        EXPECT_EQ(*echoed, args);
      }
    }
    EXPECT_EQ(runner.module_loads(), 1);  // the runspace kept it: later calls send the command only

    // The op's own failure category travels in the exception's Data, as on the WinRS path: a coded Error.
    auto store = std::make_shared<certstore::remote::ScriptCaller>(runner);
    certstore::remote::RemoteCertStore certs(store);
    certstore::RemoveRequest missing_store;
    missing_store.store = "My";
    missing_store.thumbprint = "426E9669376072D8D1461082A6E31AB4023E1857";
    auto removed = co_await certs.remove(missing_store);  // no Cert:\ drive on Linux: StoreNotFound
    EXPECT_THAT(removed, HasCode(ErrorCode::kNotFound));
    if (!removed.ok()) {
      EXPECT_THAT(removed.error().message, HasSubstr("StoreNotFound"));
    }
    certstore::RemoveRequest no_store = missing_store;
    no_store.store = "";
    auto refused = co_await certs.remove(no_store);
    EXPECT_THAT(refused, HasCode(ErrorCode::kInvalidArgument));
    EXPECT_THAT(co_await pool->close(), IsOk());
  });
}

TEST_F(PsrpScriptRunnerTest, EachRunspaceOfAPoolGetsTheModuleOnce) {
  psrp::testing::run_coroutine([&]() -> net::awaitable<void> {
    auto pool = co_await open_pool(2);
    if (!pool) co_return;
    PsrpScriptRunner runner(*pool, "pwsh-child");
    certstore::remote::ScriptCaller caller(runner);
    for (int i = 0; i < 6; ++i) {
      nlohmann::json numbered = nlohmann::json::object();  // no initializer list across co_await (GCC 12)
      numbered["n"] = i;
      auto echoed = co_await caller.call("echo", std::move(numbered));
      EXPECT_THAT(echoed, IsOk());
    }
    EXPECT_GE(runner.module_loads(), 1);
    EXPECT_LE(runner.module_loads(), 2);
    EXPECT_THAT(co_await pool->close(), IsOk());
  });
}

TEST_F(PsrpScriptRunnerTest, AJeaRunnerNeverSendsTheModule) {
  psrp::testing::run_coroutine([&]() -> net::awaitable<void> {
    auto pool = co_await open_pool();
    if (!pool) co_return;
    PsrpRunnerOptions jea;
    jea.load_module = false;
    PsrpScriptRunner runner(*pool, "pwsh-child", jea);
    certstore::remote::ScriptCaller caller(runner);
    auto echoed = co_await caller.call("echo", nlohmann::json::object());
    EXPECT_THAT(echoed, HasCode(ErrorCode::kFailedPrecondition));
    if (!echoed.ok()) {
      EXPECT_THAT(echoed.error().message, HasSubstr("JEA"));
    }
    EXPECT_EQ(runner.module_loads(), 0);
    EXPECT_THAT(co_await pool->close(), IsOk());
  });
}

}  // namespace
}  // namespace wincert::agent
