// A stand-in for powershell.exe in the local PowerShell runner's tests: it checks the command line the
// runner built, reads the payload from stdin exactly as the real bootstrap does (base64 script, newline,
// base64 JSON arguments), and answers according to WINCERT_FAKE_PS_MODE:
//   contract (default)  the .contract.json "output" of the op named in the script's "# wincert-op:" line
//   contract-error      the contract's "error" output and exit code
//   echo                {"commandLine", "script", "args"} as received
//   stderr              a CLIXML error record on stderr, exit code 3, nothing on stdout
//   big                 a 1 MiB JSON document (the pipes must not deadlock)
//   hang                writes its process id to WINCERT_FAKE_PS_PIDFILE, then never exits
// Exit code 97 = the command line is not what Windows PowerShell should get.
#include "common/encoding.hpp"

#include <windows.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>

namespace {

using nlohmann::json;
using wincert::base64_decode;

std::string narrow(const std::wstring& wide) {
  if (wide.empty()) return {};
  const int size =
      WideCharToMultiByte(CP_UTF8, 0, wide.data(), static_cast<int>(wide.size()), nullptr, 0, nullptr, nullptr);
  std::string out(static_cast<std::size_t>(size), '\0');
  WideCharToMultiByte(CP_UTF8, 0, wide.data(), static_cast<int>(wide.size()), out.data(), size, nullptr, nullptr);
  return out;
}

std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

std::string read_stdin() {
  std::string data;
  char buffer[4096];
  DWORD got = 0;
  const HANDLE input = GetStdHandle(STD_INPUT_HANDLE);
  while (ReadFile(input, buffer, sizeof(buffer), &got, nullptr) && got > 0) data.append(buffer, got);
  return data;
}

int fail(const std::string& why) {
  std::cerr << "fake powershell: " << why << std::endl;
  return 97;
}

void print(const json& doc) {
  const std::string text = doc.dump();
  DWORD written = 0;
  WriteFile(GetStdHandle(STD_OUTPUT_HANDLE), text.data(), static_cast<DWORD>(text.size()), &written, nullptr);
}

json read_contract(const std::string& op) {
  std::ifstream file(std::string(WINCERT_CERTSTORE_SCRIPT_DIR) + "/" + op + ".contract.json");
  std::stringstream text;
  text << file.rdbuf();
  return json::parse(text.str(), nullptr, false);
}

}  // namespace

int main() {
  const std::string command_line = narrow(GetCommandLineW());
  const std::string flags = " -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand ";
  const auto at = command_line.find(flags);
  if (at == std::string::npos) return fail("unexpected command line: " + command_line);
  const auto encoded = base64_decode(command_line.substr(at + flags.size()));
  if (!encoded || wincert::utf16le_to_utf8(*encoded).rfind("# wincert-bootstrap: stdin\n", 0) != 0) {
    return fail("-EncodedCommand is not the stdin bootstrap");
  }

  const std::string mode = environment("WINCERT_FAKE_PS_MODE");
  if (mode == "hang") {
    std::ofstream(environment("WINCERT_FAKE_PS_PIDFILE")) << GetCurrentProcessId();
    Sleep(INFINITE);
  }

  const std::string payload = read_stdin();
  const auto newline = payload.find('\n');
  if (newline == std::string::npos) return fail("stdin has no payload");
  const auto script = base64_decode(payload.substr(0, newline));
  const auto args_text = base64_decode(payload.substr(newline + 1));
  if (!script || !args_text) return fail("the payload is not base64");
  const json args = json::parse(*args_text, nullptr, false);
  if (args.is_discarded()) return fail("the arguments are not JSON");

  if (mode == "echo") {
    print({{"commandLine", command_line}, {"script", *script}, {"args", args}});
    return 0;
  }
  if (mode == "stderr") {
    const std::string clixml =
        "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\">"
        "<S S=\"Error\">the script &lt;failed&gt;_x000D__x000A_</S><S S=\"Error\">at line 2_x000D__x000A_</S></Objs>";
    std::cerr << clixml;
    return 3;
  }
  if (mode == "big") {
    print({{"Filler", std::string(1 << 20, 'x')}, {"ArgsSize", args_text->size()}});
    return 0;
  }

  const std::string marker = "# wincert-op: ";
  if (script->rfind(marker, 0) != 0) return fail("the script does not start with '# wincert-op:'");
  const std::string op = script->substr(marker.size(), script->find('\n') - marker.size());
  const json contract = read_contract(op);
  if (contract.is_discarded()) return fail("no contract for op '" + op + "'");
  if (mode == "contract-error") {
    print(contract["error"]["output"]);
    return contract["error"]["exit_code"].get<int>();
  }
  print(contract["output"]);
  return 0;
}
