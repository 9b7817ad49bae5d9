// OutOfProcRunspacePool against a real PowerShell 7 (`pwsh -s` child): named commands and their output,
// error, warning and information records, a throwing pipeline, a Read-Host without a host, 1 MB of output,
// unicode, 50 pipelines on one runspace, a pipeline past its deadline, and the server killed mid-pipeline.
#include "winrm/psrp/runspace_pool.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "tests/support/result_matchers.hpp"
#include "tests/winrm/psrp/transport_test_util.hpp"
#include "winrm/psrp/process_channel.hpp"

#include <nlohmann/json.hpp>

namespace wincert::winrm::psrp {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using testing::run_coroutine;

PipelineCommand command(std::string name, std::vector<CommandParameter> parameters = {}) {
  PipelineCommand c;
  c.command = std::move(name);
  c.parameters = std::move(parameters);
  return c;
}

PipelineCommand script(std::string text) {
  PipelineCommand c;
  c.command = std::move(text);
  c.is_script = true;
  return c;
}

CommandParameter param(std::string name, std::string value) {
  return {std::move(name), PsValue::string(std::move(value))};
}

// One command as a statement. Commands are built in statements of their own: GCC 12 cannot keep an
// initializer list's array alive across a co_await in the same expression.
net::awaitable<Result<PipelineResult>> run(OutOfProcRunspacePool& pool, PipelineCommand c,
                                           std::chrono::milliseconds timeout) {
  std::vector<PipelineCommand> commands;
  commands.push_back(std::move(c));
  co_return co_await pool.invoke(std::move(commands), timeout);
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The quoted names of a PowerShell data file's `Key = @( 'a', 'b' )` list.
std::vector<std::string> quoted_list(const std::string& psd1, const std::string& key) {
  std::vector<std::string> names;
  const auto start = psd1.find(key);
  if (start == std::string::npos) return names;
  const auto open = psd1.find("@(", start);
  const auto close = psd1.find(')', open);
  const std::string body = psd1.substr(open, close - open);
  static const std::regex quoted("'([^']+)'");
  for (std::sregex_iterator it(body.begin(), body.end(), quoted), end; it != end; ++it) names.push_back((*it)[1]);
  return names;
}

class RunspacePoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pwsh_ = testing::find_pwsh();
    if (!pwsh_) WINCERT_SKIP_OR_FAIL("pwsh (PowerShell 7) not found; run scripts/setup.sh or set WINCERT_PWSH");
  }

  // Starts `pwsh -s` and opens a pool on it; `pid` receives the child's pid.
  net::awaitable<std::unique_ptr<OutOfProcRunspacePool>> open_pool(int* pid = nullptr, int max_runspaces = 1) {
    ProcessChannelOptions options;
    options.program = pwsh_->string();
    options.arguments = pwsh_server_arguments();
    auto channel = ProcessChannel::start(co_await net::this_coro::executor, std::move(options));
    EXPECT_THAT(channel, IsOk());
    if (!channel.ok()) co_return nullptr;
    if (pid != nullptr) *pid = (*channel)->pid();
    RunspacePoolOptions pool_options;
    pool_options.settings.max_runspaces = max_runspaces;
    auto pool = co_await OutOfProcRunspacePool::open(std::move(channel).value(), pool_options);
    EXPECT_THAT(pool, IsOk());
    if (!pool.ok()) co_return nullptr;
    co_return std::move(pool).value();
  }

  std::optional<std::filesystem::path> pwsh_;
};

TEST_F(RunspacePoolTest, RunsNamedCommandsAndKeepsTheRecordsApart) {
  run_coroutine([&]() -> net::awaitable<void> {
    auto pool = co_await open_pool();
    if (!pool) co_return;
    EXPECT_FALSE(pool->server().protocol_version.empty());

    // Unicode (accents, CJK, an emoji outside the BMP) and characters CLIXML escapes.
    const std::string text = "h\xC3\xA9llo \xE4\xB8\x96\xE7\x95\x8C \xF0\x9F\x94\x91 <&> _x0041_";
    auto c1 = command("Write-Output", {param("InputObject", text)});
    auto echoed = co_await run(*pool, std::move(c1), 60s);
    EXPECT_THAT(echoed, IsOk());
    if (echoed.ok()) {
      EXPECT_EQ(echoed->output.size(), 1u);
      if (echoed->output.size() == 1u) {
        EXPECT_EQ(echoed->output[0].to_display_string(), text);
      }
      EXPECT_TRUE(echoed->completed());
    }

    // A non-terminating error and a warning: the pipeline completes, each record lands in its own list.
    auto c2 = command("Write-Error", {param("Message", "the store is locked")});
    auto error = co_await run(*pool, std::move(c2), 60s);
    EXPECT_THAT(error, IsOk());
    if (error.ok()) {
      EXPECT_TRUE(error->completed());
      EXPECT_EQ(error->errors.size(), 1u);
      if (error->errors.size() == 1u) {
        EXPECT_THAT(error->errors[0].message, HasSubstr("the store is locked"));
      }
      EXPECT_THAT(error->errors[0].fully_qualified_error_id, HasSubstr("WriteErrorException"));
    }
    auto c3 = command("Write-Warning", {param("Message", "expiring soon")});
    auto warning = co_await run(*pool, std::move(c3), 60s);
    EXPECT_THAT(warning, IsOk());
    if (warning.ok()) {
      EXPECT_EQ(warning->informational.size(), 1u);
      if (warning->informational.size() == 1u) {
        EXPECT_EQ(warning->informational[0].kind, InformationalKind::kWarning);
      }
      EXPECT_EQ(warning->informational[0].message, "expiring soon");
      EXPECT_TRUE(warning->output.empty());
    }

    // A pipeline that throws ends Failed with the exception's message; the pool goes on.
    auto c4 = script("throw 'boom: no such certificate'");
    auto thrown = co_await run(*pool, std::move(c4), 60s);
    EXPECT_THAT(thrown, IsOk());
    if (thrown.ok()) {
      EXPECT_EQ(thrown->state.state, 5);
      EXPECT_TRUE(thrown->state.error.has_value());
      if (thrown->state.error.has_value()) {
        EXPECT_THAT(thrown->state.error->message, HasSubstr("boom: no such certificate"));
      }
    }

    // No host: Read-Host fails at once instead of waiting for an answer.
    const auto asked = std::chrono::steady_clock::now();
    auto c5 = command("Read-Host", {param("Prompt", "password")});
    auto read = co_await run(*pool, std::move(c5), 60s);
    EXPECT_THAT(read, IsOk());
    if (read.ok()) {
      EXPECT_FALSE(read->completed() && read->errors.empty());
    }
    EXPECT_LT(std::chrono::steady_clock::now() - asked, 20s);

    // 1 MB of output in one string, several fragments on the way back.
    auto c6 = script("'x' * 1048576");
    auto big = co_await run(*pool, std::move(c6), 60s);
    EXPECT_THAT(big, IsOk());
    if (big.ok()) {
      EXPECT_EQ(big->output.size(), 1u);
      if (big->output.size() == 1u) {
        EXPECT_EQ(big->output[0].to_display_string().size(), 1048576u);
      }
    }
    EXPECT_FALSE(pool->broken());
    EXPECT_THAT(co_await pool->close(), IsOk());
  });
}

TEST_F(RunspacePoolTest, FiftyPipelinesOnOneRunspaceShareItsState) {
  run_coroutine([&]() -> net::awaitable<void> {
    auto pool = co_await open_pool();
    if (!pool) co_return;
    // The first pipeline defines a function in the runspace; the others call it by name (the module loading
    // scheme: define once, call with arguments).
    auto c7 = script("function global:Get-WincertEcho { param($Value) \"echo:$Value\" }");
    auto defined = co_await run(*pool, std::move(c7), 60s);
    EXPECT_THAT(defined, IsOk());
    const auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < 50; ++i) {
      auto c8 = command("Get-WincertEcho", {param("Value", std::to_string(i))});
      auto echoed = co_await run(*pool, std::move(c8), 60s);
      EXPECT_THAT(echoed, IsOk());
      if (!echoed.ok()) break;
      EXPECT_EQ(echoed->output.size(), 1u);
      if (echoed->output.size() == 1u) {
        EXPECT_EQ(echoed->output[0].to_display_string(), "echo:" + std::to_string(i));
      }
    }
    std::cout
        << "50 pipelines on one runspace: "
        << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count()
        << " ms\n";
    EXPECT_THAT(co_await pool->close(), IsOk());
  });
}

// Four pipelines at once on a pool of four runspaces: each sleeps 1.5 s, so one after the other would take
// 6 s or more; together they take about 1.5 s. Each gets its own output back.
TEST_F(RunspacePoolTest, FourPipelinesRunAtOnceOnAPoolOfFour) {
  run_coroutine([&]() -> net::awaitable<void> {
    auto pool = co_await open_pool(nullptr, 4);
    if (!pool) co_return;
    // Warm all four runspaces first (a runspace's first pipeline also loads PowerShell's modules).
    std::vector<std::optional<Result<PipelineResult>>> results(4);
    auto run_all = [&](std::string text) -> net::awaitable<void> {
      auto executor = co_await net::this_coro::executor;
      int done = 0;
      net::steady_timer all_done(executor, std::chrono::steady_clock::time_point::max());
      // No captures: a coroutine lambda's captures live in the lambda object, not in the coroutine.
      auto one = [](OutOfProcRunspacePool& p, std::string script_text, std::optional<Result<PipelineResult>>& slot,
                    int& count, net::steady_timer& finished) -> net::awaitable<void> {
        auto c = script(std::move(script_text));
        slot = co_await run(p, std::move(c), 60s);
        if (++count == 4) finished.cancel();
      };
      for (int i = 0; i < 4; ++i) {
        net::co_spawn(executor,
                      one(*pool, text + "; 'pipeline " + std::to_string(i) + "'", results[static_cast<std::size_t>(i)],
                          done, all_done),
                      net::detached);
      }
      co_await all_done.async_wait(net::as_tuple(net::use_awaitable));
    };
    co_await run_all("Start-Sleep -Milliseconds 100");
    const auto started = std::chrono::steady_clock::now();
    co_await run_all("Start-Sleep -Milliseconds 1500");
    const auto elapsed = std::chrono::steady_clock::now() - started;
    for (int i = 0; i < 4; ++i) {
      const auto& r = results[static_cast<std::size_t>(i)];
      EXPECT_TRUE(r.has_value() && r->ok());
      if (r && r->ok() && (*r)->output.size() == 1) {
        EXPECT_EQ((*r)->output[0].to_display_string(), "pipeline " + std::to_string(i));
      }
    }
    EXPECT_LT(elapsed, 4500ms) << "the four pipelines did not run at once";
    std::cout << "4 x 1.5 s pipelines on a pool of 4: "
              << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms\n";
    EXPECT_THAT(co_await pool->close(), IsOk());
  });
}

TEST_F(RunspacePoolTest, APipelinePastItsDeadlineIsStoppedAndThePoolStaysUsable) {
  run_coroutine([&]() -> net::awaitable<void> {
    auto pool = co_await open_pool();
    if (!pool) co_return;
    auto c9 = command("Start-Sleep", {{"Seconds", PsValue::int32(60)}});
    auto slow = co_await run(*pool, std::move(c9), 1500ms);
    EXPECT_THAT(slow, HasCode(ErrorCode::kDeadlineExceeded));
    EXPECT_FALSE(pool->broken());
    auto c10 = command("Write-Output", {param("InputObject", "still here")});
    auto next = co_await run(*pool, std::move(c10), 60s);
    EXPECT_THAT(next, IsOk());
    if (next.ok() && next->output.size() == 1) {
      EXPECT_EQ(next->output[0].to_display_string(), "still here");
    }
    EXPECT_THAT(co_await pool->close(), IsOk());
  });
}

TEST_F(RunspacePoolTest, AServerKilledMidPipelineBreaksThePoolClearlyAndANewOneOpens) {
  run_coroutine([&]() -> net::awaitable<void> {
    int pid = -1;
    auto pool = co_await open_pool(&pid);
    if (!pool) co_return;
    net::steady_timer killer(co_await net::this_coro::executor, 1s);
    killer.async_wait([pid](boost::system::error_code) { ::kill(-pid, SIGKILL); });  // pwsh and its launcher
    auto c11 = command("Start-Sleep", {{"Seconds", PsValue::int32(60)}});
    auto killed = co_await run(*pool, std::move(c11), 60s);
    EXPECT_THAT(killed, HasCode(ErrorCode::kUnavailable));
    if (!killed.ok()) {
      EXPECT_THAT(killed.error().message, HasSubstr("runspace pool"));
    }
    EXPECT_TRUE(pool->broken());
    auto c12 = command("Get-Date");
    EXPECT_THAT(co_await run(*pool, std::move(c12), 60s), HasCode(ErrorCode::kUnavailable));
    (void)co_await pool->close();

    auto fresh = co_await open_pool();
    if (!fresh) co_return;
    auto cf = command("Write-Output", {param("InputObject", "reopened")});
    auto works = co_await run(*fresh, std::move(cf), 60s);
    EXPECT_THAT(works, IsOk());
    EXPECT_THAT(co_await fresh->close(), IsOk());
  });
}

// JEA's restriction, played by a local PowerShell 7 server with a session configuration file (pwsh -s
// -ConfigurationFile): RestrictedRemoteServer (NoLanguage), the module imported, only the functions of
// config/jea/WincertAgent.psrc visible. Script text is refused; the operations run by name with their JSON
// argument; anything else is not found. The role capability lists exactly the module's exported operations.
TEST_F(RunspacePoolTest, ARestrictedEndpointRefusesScriptTextAndRunsTheOperationsByName) {
  const std::filesystem::path source(WINCERT_SOURCE_DIR);
  const auto visible = quoted_list(read_text(source / "config/jea/WincertAgent.psrc"), "VisibleFunctions");
  const auto exported = quoted_list(read_text(source / "certstore/ps/WincertOps.psd1"), "FunctionsToExport");
  EXPECT_EQ(visible.size(), 15u);
  EXPECT_EQ(visible, exported) << "config/jea/WincertAgent.psrc must list the module's exported operations";

  const auto dir = std::filesystem::temp_directory_path() / ("wincert-jea-" + Guid::random_v4().to_string());
  std::filesystem::create_directories(dir);
  std::string functions;
  for (const auto& name : visible) functions += (functions.empty() ? "'" : ", '") + name + "'";
  {
    std::ofstream pssc(dir / "WincertAgent.pssc");
    pssc << "@{\n  SchemaVersion = '2.0.0.0'\n  SessionType = 'RestrictedRemoteServer'\n"
         << "  ModulesToImport = @('" << (source / "certstore/ps/WincertOps.psd1").string() << "')\n"
         << "  VisibleFunctions = @(" << functions << ")\n}\n";
  }
  run_coroutine([&]() -> net::awaitable<void> {
    ProcessChannelOptions options;
    options.program = pwsh_->string();
    options.arguments = pwsh_server_arguments();
    options.arguments.push_back("-ConfigurationFile");
    options.arguments.push_back((dir / "WincertAgent.pssc").string());
    auto channel = ProcessChannel::start(co_await net::this_coro::executor, std::move(options));
    EXPECT_THAT(channel, IsOk());
    if (!channel.ok()) co_return;
    auto opened = co_await OutOfProcRunspacePool::open(std::move(channel).value());
    EXPECT_THAT(opened, IsOk());
    if (!opened.ok()) co_return;
    auto& pool = **opened;

    auto text = script("Get-Date");
    auto refused = co_await run(pool, std::move(text), 60s);
    EXPECT_THAT(refused, IsOk());
    if (refused.ok()) {
      EXPECT_FALSE(refused->completed() && refused->errors.empty()) << "script text ran on a NoLanguage endpoint";
    }

    auto echo = command("Invoke-WincertEcho", {param("ArgsJson", "{\"store\":\"My\",\"n\":1}")});
    auto echoed = co_await run(pool, std::move(echo), 60s);
    EXPECT_THAT(echoed, IsOk());
    if (echoed.ok()) {
      EXPECT_TRUE(echoed->completed());
      EXPECT_EQ(echoed->output.size(), 1u);
      if (echoed->output.size() == 1) {
        EXPECT_EQ(nlohmann::json::parse(echoed->output[0].to_display_string()),
                  nlohmann::json::parse("{\"store\":\"My\",\"n\":1}"));
      }
    }

    auto other = command("Get-ChildItem", {param("Path", "/")});
    auto hidden = co_await run(pool, std::move(other), 60s);
    EXPECT_THAT(hidden, IsOk());
    if (hidden.ok()) {
      EXPECT_FALSE(hidden->completed() && hidden->errors.empty()) << "a command outside the role capability ran";
      if (hidden->state.error) {
        EXPECT_THAT(hidden->state.error->fully_qualified_error_id, HasSubstr("CommandNotFound"));
      }
    }
    EXPECT_THAT(co_await pool.close(), IsOk());
  });
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace wincert::winrm::psrp
