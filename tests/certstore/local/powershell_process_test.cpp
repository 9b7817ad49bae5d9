// The local PowerShell runner (agent-mode IIS): the command line and stdin it builds, and the real process
// plumbing (pipes, exit code, stderr, timeout kill) against fake_powershell.exe, a test program that reads
// what the runner sends and answers with the scripts' contract documents. Wine has no PowerShell or IIS.
#include "certstore/local/powershell_process.hpp"
#include "certstore/local/local_bindings.hpp"
#include "common/encoding.hpp"
#include "common/win32_text.hpp"
#include "local_test_support.hpp"
#include "test_paths.hpp"
#include "tests/support/result_matchers.hpp"

#include <gtest/gtest.h>

#include <windows.h>

#include <fstream>
#include <sstream>

namespace wincert::certstore::local {
namespace {

using nlohmann::json;
using testing::run;

std::string fake_powershell() { return testing::windows_path(WINCERT_FAKE_POWERSHELL); }

// Sets WINCERT_FAKE_PS_MODE for the children started during one test.
class FakeMode {
 public:
  explicit FakeMode(const char* mode) { SetEnvironmentVariableW(L"WINCERT_FAKE_PS_MODE", widen(mode).c_str()); }
  ~FakeMode() { SetEnvironmentVariableW(L"WINCERT_FAKE_PS_MODE", nullptr); }
};

LocalPowerShellOptions fake_options(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  LocalPowerShellOptions options;
  options.executable = fake_powershell();
  options.timeout = timeout;
  options.host_name = "agent-host";
  return options;
}

TEST(LocalPowerShell, CommandLineCarriesOnlyTheBootstrapAndStdinTheScriptAndArguments) {
  const json args = {{"StoreName", "My"}, {"PfxPassword", "s3cret-Password"}};
  const auto invocation = build_powershell_invocation(R"(C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe)",
                                                      "# wincert-op: echo\nWrite-Output 1\n", args);
  EXPECT_EQ(invocation.executable, R"(C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe)");
  const std::string prefix =
      R"("C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe" -NoLogo -NoProfile -NonInteractive )"
      "-ExecutionPolicy Bypass -EncodedCommand ";
  ASSERT_EQ(invocation.command_line.substr(0, prefix.size()), prefix);
  const auto encoded = base64_decode(invocation.command_line.substr(prefix.size()));
  ASSERT_TRUE(encoded.has_value());
  EXPECT_EQ(utf16le_to_utf8(*encoded), local_bootstrap_script());
  EXPECT_TRUE(local_bootstrap_script().starts_with("# wincert-bootstrap: stdin\n"));
  EXPECT_NE(local_bootstrap_script().find("[Console]::In.ReadToEnd()"), std::string::npos);
  // Secrets never reach the command line, which every local user can read.
  EXPECT_EQ(invocation.command_line.find("s3cret"), std::string::npos);
  EXPECT_EQ(invocation.command_line.find(base64_encode(args.dump())), std::string::npos);
  EXPECT_EQ(invocation.stdin_data,
            base64_encode("# wincert-op: echo\nWrite-Output 1\n") + "\n" + base64_encode(args.dump()) + "\n");
}

TEST(LocalPowerShell, DefaultExecutableIsWindowsPowerShell51) {
  const std::string path = default_powershell_path();
  EXPECT_TRUE(path.ends_with(R"(\WindowsPowerShell\v1.0\powershell.exe)")) << path;
  EXPECT_EQ(PowerShellProcess().executable(), path);
}

TEST(LocalPowerShell, StderrClixmlBecomesReadableText) {
  EXPECT_EQ(readable_stderr("  plain text error\r\n"), "plain text error");
  EXPECT_EQ(readable_stderr("#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/"
                            "2004/04\"><Obj S=\"progress\" RefId=\"0\"><TN RefId=\"0\"><T>System.Management.Automation."
                            "PSCustomObject</T></TN></Obj><S S=\"Error\">Cannot find path &apos;C:\\x&apos; because "
                            "it does not exist._x000D__x000A_</S><S S=\"Error\">At line:1 char:1_x000D__x000A_</S>"
                            "</Objs>"),
            "Cannot find path 'C:\\x' because it does not exist.\r\nAt line:1 char:1");
  EXPECT_EQ(readable_stderr("#< CLIXML\r\n<Objs><Obj S=\"progress\"/></Objs>"), "");
}

TEST(LocalPowerShell, RunsTheScriptInAChildProcessAndReturnsItsOutput) {
  FakeMode mode("echo");
  PowerShellProcess runner(fake_options());
  EXPECT_EQ(runner.host(), "agent-host");
  const std::string script = "# wincert-op: echo\n$x = 'caf\xC3\xA9'\n";
  const json args = {{"Name", "caf\xC3\xA9"}, {"PfxPassword", "pa ss\"word"}};
  auto output = run(runner.run("echo", script, args));
  ASSERT_TRUE(output.ok()) << output.error().message;
  EXPECT_EQ(output->exit_code, 0);
  EXPECT_EQ(output->error_text, "");
  const json echoed = json::parse(output->stdout_text, nullptr, false);
  ASSERT_FALSE(echoed.is_discarded()) << output->stdout_text;
  EXPECT_EQ(echoed["script"], script);
  EXPECT_EQ(echoed["args"], args);
  EXPECT_TRUE(echoed["commandLine"].get<std::string>().starts_with("\"" + fake_powershell() + "\" -NoLogo"));
}

TEST(LocalPowerShell, ExitCodeAndClixmlStderrComeBack) {
  FakeMode mode("stderr");
  PowerShellProcess runner(fake_options());
  auto output = run(runner.run("echo", "# wincert-op: echo\n", json::object()));
  ASSERT_TRUE(output.ok()) << output.error().message;
  EXPECT_EQ(output->exit_code, 3);
  EXPECT_EQ(output->stdout_text, "");
  EXPECT_EQ(output->error_text, "the script <failed>\r\nat line 2");
}

TEST(LocalPowerShell, LargeInputAndOutputDoNotDeadlockThePipes) {
  FakeMode mode("big");
  PowerShellProcess runner(fake_options());
  const json args = {{"ContentsBase64", std::string(512 * 1024, 'A')}};
  auto output = run(runner.run("echo", "# wincert-op: echo\n", args));
  ASSERT_TRUE(output.ok()) << output.error().message;
  EXPECT_EQ(output->exit_code, 0);
  const json doc = json::parse(output->stdout_text, nullptr, false);
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_EQ(doc["Filler"].get<std::string>().size(), 1u << 20);
  EXPECT_EQ(doc["ArgsSize"].get<std::size_t>(), args.dump().size());
}

TEST(LocalPowerShell, AChildThatRunsTooLongIsKilled) {
  FakeMode mode("hang");
  char temp[MAX_PATH] = {};
  GetTempPathA(MAX_PATH, temp);
  const std::string pid_file = std::string(temp) + "wincert-fake-ps-" + std::to_string(GetCurrentProcessId()) + ".pid";
  SetEnvironmentVariableW(L"WINCERT_FAKE_PS_PIDFILE", widen(pid_file).c_str());
  PowerShellProcess runner(fake_options(std::chrono::seconds(3)));
  const auto started = std::chrono::steady_clock::now();
  auto output = run(runner.run("iis-list-bindings", "# wincert-op: iis-list-bindings\n", json::object()));
  const auto elapsed = std::chrono::steady_clock::now() - started;
  SetEnvironmentVariableW(L"WINCERT_FAKE_PS_PIDFILE", nullptr);
  ASSERT_FALSE(output.ok());
  EXPECT_THAT(output, HasCode(ErrorCode::kDeadlineExceeded));
  EXPECT_TRUE(output.error().retryable());
  EXPECT_NE(output.error().message.find("iis-list-bindings did not finish within 3 s and was stopped"),
            std::string::npos)
      << output.error().message;
  EXPECT_LT(elapsed, std::chrono::seconds(30));

  DWORD pid = 0;
  std::ifstream(pid_file) >> pid;
  DeleteFileA(pid_file.c_str());
  ASSERT_NE(pid, 0u);
  HANDLE process = OpenProcess(SYNCHRONIZE, FALSE, pid);
  if (process != nullptr) {  // still known: it must have ended
    EXPECT_EQ(WaitForSingleObject(process, 5000), WAIT_OBJECT_0);
    CloseHandle(process);
  }
}

TEST(LocalPowerShell, MissingPowerShellIsAClearError) {
  LocalPowerShellOptions options;
  options.executable = R"(C:\no-such-dir\WindowsPowerShell\v1.0\powershell.exe)";
  PowerShellProcess runner(options);
  auto output = run(runner.run("iis-list-bindings", "# wincert-op: iis-list-bindings\n", json::object()));
  ASSERT_FALSE(output.ok());
  EXPECT_THAT(output, HasCode(ErrorCode::kFailedPrecondition));
  EXPECT_FALSE(output.error().retryable());
  EXPECT_NE(output.error().message.find("Windows PowerShell 5.1 is needed for IIS stores in agent mode"),
            std::string::npos)
      << output.error().message;
  EXPECT_NE(output.error().message.find(options.executable), std::string::npos);

  // The same through the IIS bindings the agent gets.
  auto iis = make_local_iis_bindings(options);
  auto listed = run(iis->list());
  ASSERT_FALSE(listed.ok());
  EXPECT_THAT(listed, HasCode(ErrorCode::kFailedPrecondition));
  EXPECT_NE(listed.error().message.find("Windows PowerShell 5.1 is needed"), std::string::npos)
      << listed.error().message;
}

// The whole agent-mode IIS path: RemoteIisBindings -> ScriptCaller -> PowerShellProcess -> a real child.
TEST(LocalIisBindings, ListParsesTheScriptsDocument) {
  FakeMode mode("contract");
  auto iis = make_local_iis_bindings(fake_options());
  auto bindings = run(iis->list());
  ASSERT_TRUE(bindings.ok()) << bindings.error().message;
  ASSERT_EQ(bindings->size(), 3u);
  EXPECT_EQ((*bindings)[0].site, "Default Web Site");
  EXPECT_EQ((*bindings)[0].ip, "2001:db8::10");
  EXPECT_EQ((*bindings)[0].host, "www.example.com");
  EXPECT_EQ((*bindings)[0].thumbprint, "426E9669376072D8D1461082A6E31AB4023E1857");
  EXPECT_EQ((*bindings)[1].store, "WebHosting");
  EXPECT_EQ((*bindings)[1].port, 8443);
  EXPECT_EQ((*bindings)[2].ssl_flags, 65);
}

TEST(LocalIisBindings, BindAsksForHostInfoThenBinds) {
  FakeMode mode("contract");
  auto iis = make_local_iis_bindings(fake_options());
  IisBindingRequest request;
  request.ip = "2001:db8::10";
  request.host = "www.example.com";
  request.ssl_flags = 1;
  auto bound = run(iis->bind(request, "426e9669376072d8d1461082a6e31ab4023e1857", "My"));
  ASSERT_TRUE(bound.ok()) << bound.error().message;
  EXPECT_TRUE(bound->replaced_existing);
  EXPECT_EQ(bound->binding.thumbprint, "426E9669376072D8D1461082A6E31AB4023E1857");
}

TEST(LocalIisBindings, AScriptErrorNamesTheOpAndThisHost) {
  FakeMode mode("contract-error");
  auto iis = make_local_iis_bindings(fake_options());
  auto listed = run(iis->list());
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.error().message,
            "iis-list-bindings failed on host 'agent-host': IIS is not installed on this host "
            "(Microsoft.Web.Administration.dll is missing) [IisNotInstalled]");
}

}  // namespace
}  // namespace wincert::certstore::local
