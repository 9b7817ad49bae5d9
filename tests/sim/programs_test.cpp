// The simulated host's cmd.exe and powershell.exe, without the network.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>

#include "sim/winhost/programs.hpp"
#include "sim/winhost/windows_model.hpp"
#include "winrm/powershell_bootstrap.hpp"

namespace wincert::sim {
namespace {

struct Output {
  std::string out, err;
  long long slept_ms = 0;
  int exit_code = 0;
};

Output collect(const ProgramResult& r) {
  Output o;
  for (const auto& s : r.steps) {
    if (s.kind == OutputStep::Kind::kStdout)
      o.out += s.data;
    else if (s.kind == OutputStep::Kind::kStderr)
      o.err += s.data;
    else
      o.slept_ms += s.sleep_ms;
  }
  o.exit_code = r.exit_code;
  return o;
}

class ProgramsTest : public ::testing::Test {
 protected:
  ProgramsTest() {
    ctx.model = &model;
    ctx.user = "vagrant";
    ctx.codepage = 65001;
  }
  Output cmd(const std::string& line, const std::string* input = nullptr) {
    auto r = run_command_line(ctx, "cmd.exe", {"/c", line}, false, input);
    EXPECT_TRUE(r.has_value()) << line;
    return r ? collect(*r) : Output{};
  }
  WindowsModel model;
  ProcessContext ctx;
};

TEST_F(ProgramsTest, EchoLikeWindows) {
  EXPECT_EQ(cmd("echo hi").out, "hi\r\n");
  EXPECT_EQ(cmd("echo  two  spaces ").out, " two  spaces \r\n");
  EXPECT_EQ(cmd("echo.").out, "\r\n");
  EXPECT_EQ(cmd("echo").out, "ECHO is on.\r\n");
  EXPECT_EQ(cmd("echo \"quoted\"").out, "\"quoted\"\r\n");
  EXPECT_EQ(cmd("echo %COMPUTERNAME% %NOPE%").out, "WINHOST01 %NOPE%\r\n");
}

TEST_F(ProgramsTest, OperatorsRedirectionAndExitCodesMatchTheRecording) {
  // fixtures/winrm/pypsrp/test_winrs_stderr_rc.yml: "out \r\n" on stdout, "err \r\n" on stderr, exit 1.
  auto o = cmd("echo out && echo err>&2 && exit 1");
  EXPECT_EQ(o.out, "out \r\n");
  EXPECT_EQ(o.err, "err \r\n");
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(cmd("exit 7").exit_code, 7);
  EXPECT_EQ(cmd("cmd /c exit 5").exit_code, 5);
  auto chained = cmd("cmd /c exit 3 || echo failed & echo always");
  EXPECT_EQ(chained.out, "failed \r\nalways\r\n");
  EXPECT_EQ(cmd("nosuch && echo never").out, "");
  EXPECT_EQ(cmd("echo hidden >nul & echo shown").out, "shown\r\n");
  auto swapped = cmd("nosuch 2>&1");
  EXPECT_NE(swapped.out.find("is not recognized"), std::string::npos);
  EXPECT_EQ(swapped.err, "");
}

TEST_F(ProgramsTest, UnknownCommandGivesTheRealCmdError) {
  auto o = cmd("frobnicate --now");
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(
      o.err,
      "'frobnicate' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n");
  EXPECT_EQ(o.exit_code, 1);
}

TEST_F(ProgramsTest, SetListsSystemAndShellEnvironment) {
  ctx.shell_environment["WINCERT_TEST"] = "value 1";
  auto o = cmd("set");
  EXPECT_NE(o.out.find("WINCERT_TEST=value 1\r\n"), std::string::npos);
  EXPECT_NE(o.out.find("COMPUTERNAME=WINHOST01\r\n"), std::string::npos);
  EXPECT_NE(o.out.find("USERNAME=vagrant\r\n"), std::string::npos);
  EXPECT_LT(o.out.find("ALLUSERSPROFILE="), o.out.find("windir="));  // sorted case-insensitively
  EXPECT_EQ(cmd("set WINCERT").out, "WINCERT_TEST=value 1\r\n");
  auto missing = cmd("set NOPE_NOT_THERE");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(missing.err, "Environment variable NOPE_NOT_THERE not defined\r\n");
  // In one cmd.exe the variable is visible to later commands; `cmd /c set X=1` would set it in a child only.
  auto same_process = run_command_line(ctx, "set WINCERT_X=1 & set WINCERT_X", {}, false, nullptr);
  ASSERT_TRUE(same_process);
  EXPECT_EQ(collect(*same_process).out, "WINCERT_X=1\r\n");
  EXPECT_EQ(cmd("set WINCERT_X=1 & set WINCERT_X").exit_code, 1);
}

TEST_F(ProgramsTest, StdinReadersWaitForEndOfInputThenCopyIt) {
  EXPECT_FALSE(run_command_line(ctx, "more", {}, false, nullptr).has_value());
  std::string input = "line 1\nline 2";
  EXPECT_EQ(cmd("more", &input).out, "line 1\r\nline 2\r\n");
  EXPECT_EQ(cmd("findstr \"^\"", &input).out, "line 1\r\nline 2\r\n");
  EXPECT_EQ(cmd("findstr 2", &input).out, "line 2\r\n");
  EXPECT_EQ(cmd("type con", &input).out, input);
  EXPECT_EQ(cmd("echo piped | findstr piped").out, "piped \r\n");
}

TEST_F(ProgramsTest, SleepingCommandsSleepThenPrint) {
  auto t = cmd("timeout /t 3");
  EXPECT_EQ(t.slept_ms, 3000);
  EXPECT_EQ(t.exit_code, 0);
  auto p = cmd("ping -n 3 127.0.0.1");
  EXPECT_EQ(p.slept_ms, 2000);
  EXPECT_NE(p.out.find("Reply from 127.0.0.1: bytes=32"), std::string::npos);
  EXPECT_NE(p.out.find("Sent = 3, Received = 3"), std::string::npos);
}

TEST_F(ProgramsTest, SkipCmdShellNeedsAFullPath) {
  EXPECT_FALSE(direct_executable_exists("powershell.exe"));
  EXPECT_TRUE(direct_executable_exists(R"(C:\Windows\system32\WindowsPowerShell\v1.0\powershell.exe)"));
  EXPECT_FALSE(direct_executable_exists(R"(C:\Windows\system32\notthere.exe)"));
  auto r = run_command_line(ctx, R"(C:\Windows\system32\WindowsPowerShell\v1.0\powershell.exe)", {"Write-Host", "hi"},
                            true, nullptr);
  ASSERT_TRUE(r);
  EXPECT_EQ(collect(*r).out, "hi\n");  // as recorded in test_winrs_no_cmd_shell.yml
}

TEST_F(ProgramsTest, CmdLinesOver8191CharactersAreTooLong) {
  std::string script(3500, 'x');  // ~9300 characters once encoded: too long for cmd.exe, as users find out
  auto r = run_command_line(ctx, "powershell", {"-EncodedCommand", winrm::encode_command(script)}, false, nullptr);
  ASSERT_TRUE(r);
  EXPECT_EQ(collect(*r).err, "The command line is too long.\r\n");
  EXPECT_EQ(r->exit_code, 1);
  // Deep nesting is bounded by the same limit (no unbounded recursion).
  std::string nested;
  for (int i = 0; i < 2000; ++i) nested += "cmd /c ";
  EXPECT_EQ(cmd(nested + "echo deep").err, "The command line is too long.\r\n");
  std::string shallow;
  for (int i = 0; i < 100; ++i) shallow += "cmd /c ";
  EXPECT_EQ(cmd(shallow + "echo deep").out, "deep\r\n");
}

TEST_F(ProgramsTest, CodepageOtherThanUtf8LosesNonAscii) {
  ctx.codepage = 437;
  EXPECT_EQ(cmd("echo caf\xC3\xA9").out, "caf?\r\n");
  ctx.codepage = 65001;
  EXPECT_EQ(cmd("echo caf\xC3\xA9").out, "caf\xC3\xA9\r\n");
}

// ---- PowerShell

Output ps_encoded(ProcessContext& ctx, const std::string& script) {
  auto r = run_command_line(ctx, "powershell", {"-encodedcommand", winrm::encode_command(script)}, false, nullptr);
  EXPECT_TRUE(r.has_value());
  return r ? collect(*r) : Output{};
}

TEST_F(ProgramsTest, InterpreterWritesOutputAndHost) {
  auto o = ps_encoded(
      ctx, "$ProgressPreference = 'SilentlyContinue'\nWrite-Output 'a'; Write-Host \"b c\"\n'lit'\n\"x`ty\"");
  EXPECT_EQ(o.out, "a\r\nb c\nlit\r\nx\ty\r\n");
  EXPECT_EQ(o.err, "");
  EXPECT_EQ(o.exit_code, 0);
}

TEST_F(ProgramsTest, InterpreterExitAndSleep) {
  auto o = ps_encoded(ctx, "Start-Sleep -Seconds 2\nStart-Sleep -Milliseconds 250\nexit 42\nWrite-Output 'never'");
  EXPECT_EQ(o.slept_ms, 2250);
  EXPECT_EQ(o.exit_code, 42);
  EXPECT_EQ(o.out, "");
}

TEST_F(ProgramsTest, WriteErrorIsAClixmlRecordAndExitCodeOne) {
  auto o = ps_encoded(ctx, "Write-Output 'before'\nWrite-Error 'it broke'");
  EXPECT_EQ(o.out, "before\r\n");
  EXPECT_EQ(o.exit_code, 1);
  ASSERT_TRUE(o.err.starts_with(
      "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\">"));
  EXPECT_NE(o.err.find("<S S=\"Error\">Write-Error 'it broke' : it broke_x000D__x000A_</S>"), std::string::npos);
}

TEST_F(ProgramsTest, UnknownCmdletGivesCommandNotFoundLikeTheFixture) {
  auto o = ps_encoded(ctx, "fake cmdlet");
  EXPECT_EQ(o.exit_code, 1);
  // The same lines as fixtures/winrm/clixml/with_error.xml.
  for (const char* line :
       {"<S S=\"Error\">fake : The term 'fake' is not recognized as the name of a cmdlet, function, script file, or "
        "operable program. Check _x000D__x000A_</S>",
        "<S S=\"Error\">the spelling of the name, or if a path was included, verify that the path is correct and "
        "try again._x000D__x000A_</S>",
        "<S S=\"Error\">At line:1 char:1_x000D__x000A_</S>", "<S S=\"Error\">+ fake cmdlet_x000D__x000A_</S>",
        "<S S=\"Error\">+ ~~~~_x000D__x000A_</S>",
        "<S S=\"Error\">    + CategoryInfo          : ObjectNotFound: (fake:String) [], "
        "CommandNotFoundException_x000D__x000A_</S>",
        "<S S=\"Error\">    + FullyQualifiedErrorId : CommandNotFoundException_x000D__x000A_</S>",
        "<S S=\"Error\"> _x000D__x000A_</S>"})
    EXPECT_NE(o.err.find(line), std::string::npos) << line;
}

TEST_F(ProgramsTest, PlainCommandTextAndStdinScripts) {
  auto r = run_command_line(ctx, "powershell.exe", {"Write-Host hi; Write-Host there"}, false, nullptr);
  ASSERT_TRUE(r);
  EXPECT_EQ(collect(*r).out, "hi\nthere\n");
  EXPECT_FALSE(run_command_line(ctx, "powershell.exe", {"-"}, false, nullptr).has_value());
  std::string input = "Write-Host \"output 1\";Write-Host \"output 2\";";
  r = run_command_line(ctx, "powershell.exe", {"-"}, false, &input);
  ASSERT_TRUE(r);
  EXPECT_EQ(collect(*r).out, "output 1\noutput 2\n");  // test_winrs_send.yml
}

TEST_F(ProgramsTest, BootstrapInlineRunsModelOperations) {
  auto inv = winrm::build_ps_invocation({"# wincert-op: host-info\n", "{}"});
  ASSERT_EQ(inv.mode, winrm::BootstrapMode::kInline);
  auto r = run_command_line(ctx, inv.executable, inv.arguments, true, nullptr);
  ASSERT_TRUE(r);
  auto o = collect(*r);
  EXPECT_EQ(o.out,
            "{\"Hostname\":\"WINHOST01\",\"OsBuild\":20348,\"OsVersion\":\"10.0.20348\",\"PsVersion\":\"5.1.20348."
            "2582\"}\r\n");
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.err, "");
}

TEST_F(ProgramsTest, BootstrapStdinWaitsForPayloadAndEchoesArguments) {
  nlohmann::json args = {{"big", std::string(40000, 'x')}, {"n", 1}, {"text", "caf\xC3\xA9"}};
  auto inv = winrm::build_ps_invocation({"# wincert-op: echo\nparam($a)\n", args.dump()});
  ASSERT_EQ(inv.mode, winrm::BootstrapMode::kStdin);
  EXPECT_FALSE(run_command_line(ctx, inv.executable, inv.arguments, true, nullptr).has_value());
  auto r = run_command_line(ctx, inv.executable, inv.arguments, true, &inv.stdin_data);
  ASSERT_TRUE(r);
  auto o = collect(*r);
  EXPECT_EQ(o.out, args.dump() + "\r\n");
  EXPECT_EQ(o.exit_code, 0);
}

TEST_F(ProgramsTest, FailedOperationWritesJsonErrorAndClixml) {
  auto inv = winrm::build_ps_invocation({"# wincert-op: no-such-op\n", "{}"});
  auto r = run_command_line(ctx, inv.executable, inv.arguments, true, nullptr);
  ASSERT_TRUE(r);
  auto o = collect(*r);
  EXPECT_EQ(o.exit_code, 1);
  auto j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["error"]["category"], "NotImplemented");
  EXPECT_NE(j["error"]["message"].get<std::string>().find("no-such-op"), std::string::npos);
  EXPECT_TRUE(o.err.starts_with("#< CLIXML\r\n"));
}

TEST_F(ProgramsTest, OperationMarkerWorksInPlainScriptsToo) {
  auto o = ps_encoded(ctx, "# wincert-op: host-info\nWrite-Output 'ignored'");
  EXPECT_EQ(nlohmann::json::parse(o.out)["Hostname"], "WINHOST01");
}

TEST_F(ProgramsTest, BadEncodedCommandIsAnErrorNotACrash) {
  auto r = run_command_line(ctx, "powershell", {"-EncodedCommand", "%%%notbase64"}, false, nullptr);
  ASSERT_TRUE(r);
  auto o = collect(*r);
  EXPECT_NE(o.err.find("not properly encoded"), std::string::npos);
  EXPECT_NE(o.exit_code, 0);
  std::string garbage = "!!!\n???";
  auto inv = winrm::build_ps_invocation({std::string(30000, '#'), "{}"});
  r = run_command_line(ctx, inv.executable, inv.arguments, true, &garbage);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->exit_code, 1);
}

TEST(WindowsArgs, SplitsLikeCommandLineToArgv) {
  EXPECT_EQ(split_windows_args(R"(a "b c" d\"e "f""g")"), (std::vector<std::string>{"a", "b c", "d\"e", "f\"g"}));
  EXPECT_EQ(split_windows_args(R"(C:\x\y.exe -x)"), (std::vector<std::string>{R"(C:\x\y.exe)", "-x"}));
}

TEST(WindowsModelTest, LoadKeepsUnknownKeysAndSaves) {
  std::string path = ::testing::TempDir() + "/winhost_model_test.json";
  {
    std::ofstream out(path);
    out << R"({"hostname":"SQL01","os_build":17763,"future":{"stores":[1,2]}})";
  }
  auto m = WindowsModel::load(path);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->hostname(), "SQL01");
  EXPECT_EQ(m->os_build(), 17763);
  EXPECT_EQ(m->ps_version(), "5.1.20348.2582");
  ASSERT_TRUE(m->save());
  auto again = WindowsModel::load(path);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->data()["future"]["stores"].size(), 2u);
  std::ofstream(path) << "not json";
  EXPECT_FALSE(WindowsModel::load(path));
}

}  // namespace
}  // namespace wincert::sim
