// The remote execution contract (ARCHITECTURE.md): how a PowerShell script and its JSON argument
// object reach powershell.exe. The command line carries only a short -EncodedCommand bootstrap;
// the script and arguments travel either inside it (small scripts: no Send round trip) or on stdin.
//
// Payload format (both modes): two lines, base64(UTF-8 script) "\n" base64(UTF-8 JSON arguments).
// The bootstrap's first line is "# wincert-bootstrap: inline" or "# wincert-bootstrap: stdin", which is
// how winhost-sim recognises it; Windows just sees a comment.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wincert::winrm {

// Full path: with WINRS_SKIP_CMD_SHELL the process is created directly (32767-char limit instead of
// cmd.exe's 8191), which needs an absolute executable path.
inline constexpr std::string_view kPowerShellExe = R"(C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe)";

// Scripts whose inline encoded command would exceed this many characters go through stdin instead.
inline constexpr std::size_t kMaxInlineEncodedCommand = 24000;

struct PsPayload {
  std::string script;     // UTF-8 PowerShell text
  std::string args_json;  // one JSON object ("{}" when there are none)
};

enum class BootstrapMode { kInline, kStdin };

struct PsInvocation {
  std::string executable;              // kPowerShellExe
  std::vector<std::string> arguments;  // -NoProfile -NonInteractive -EncodedCommand <b64>
  std::string stdin_data;              // empty in inline mode
  BootstrapMode mode = BootstrapMode::kInline;
};

// Chooses inline or stdin mode by size and builds the command line and stdin bytes.
PsInvocation build_ps_invocation(const PsPayload& payload);
// The bootstrap PowerShell text for a mode (inline embeds the payload).
std::string bootstrap_script(BootstrapMode mode, const PsPayload* inline_payload);
// The "payload format" above.
std::string encode_payload(const PsPayload& payload);
// base64 of the UTF-16LE text, as -EncodedCommand expects.
std::string encode_command(std::string_view ps_text);

// --- for the simulator: the inverse operations ---
struct ParsedBootstrap {
  BootstrapMode mode;
  std::optional<PsPayload> payload;  // set in inline mode
};
// Recognises our bootstrap in decoded -EncodedCommand text; nullopt for any other script.
std::optional<ParsedBootstrap> parse_bootstrap(std::string_view ps_text);
std::optional<PsPayload> decode_payload(std::string_view data);
// Decodes an -EncodedCommand argument (base64 of UTF-16LE) to UTF-8.
std::optional<std::string> decode_command(std::string_view encoded);

}  // namespace wincert::winrm
