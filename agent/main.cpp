// wincert-agent: the command line entry point.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "agent/doctor.hpp"
#include "agent/platform/process.hpp"
#include "agent/replay.hpp"
#include "agent/run_cli.hpp"
#include "agent/winrm_cli.hpp"
#ifdef _WIN32
#include "agent/windows_service.hpp"
#endif

#ifndef WINCERT_VERSION
#define WINCERT_VERSION "0.0.0"
#endif

int main(int argc, char** argv) {
  // Before any secret is read, for every command: no core dump may carry passwords or tokens. `run`
  // repeats it and logs a failure (which only weakens that protection).
  (void)wincert::agent::process::disable_core_dumps();
  CLI::App app{"wincert-agent: manages Windows certificate stores for Keyfactor Command"};
  app.require_subcommand(1);
  // One syntax everywhere: CLI11 would read "/path" as an option on Windows (subcommands inherit this).
  app.allow_windows_style_options(false);
  auto* version = app.add_subcommand("version", "print the version");
  auto run_winrm = wincert::agent::add_winrm_commands(app);
  wincert::agent::add_replay_command(app);  // runs the job and exits from its own callback
  wincert::agent::add_run_command(app);     // the long-running agent; exits from its own callback
  wincert::agent::add_doctor_command(app);  // checks configuration, Command and WinRM; exits from its callback
#ifdef _WIN32
  wincert::agent::add_service_command(app);  // install/uninstall/start/stop/run as a Windows service
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  try {
    if (version->parsed()) {
      std::printf("wincert-agent %s\n", WINCERT_VERSION);
      return 0;
    }
    return run_winrm();
  } catch (const std::exception& e) {
    // Nothing should throw out of the modules; this keeps a surprise to one line.
    std::fprintf(stderr, "wincert-agent: internal error: %s\n", e.what());
    return 255;
  }
}
