#include "winrm/powershell_bootstrap.hpp"

#include "common/encoding.hpp"

namespace wincert::winrm {
namespace {

constexpr std::string_view kInlineMarker = "# wincert-bootstrap: inline";
constexpr std::string_view kStdinMarker = "# wincert-bootstrap: stdin";

// After the payload lines are in $wincertIn: decode, run the script block with the JSON text as its
// single argument, and make the exit code reflect failure ($? false without an exit code -> 1).
constexpr std::string_view kBootstrapBody =
    "$wincertScript = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($wincertIn[0].Trim()))\n"
    "$wincertArgs = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($wincertIn[1].Trim()))\n"
    "$global:LASTEXITCODE = 0\n"
    "& ([ScriptBlock]::Create($wincertScript)) $wincertArgs\n"
    "if (!$?) { if ($LASTEXITCODE) { exit $LASTEXITCODE } else { exit 1 } }\n"
    "exit $LASTEXITCODE\n";

constexpr std::string_view kPreamble =
    "$ProgressPreference = 'SilentlyContinue'\n"
    "$ErrorActionPreference = 'Stop'\n";

}  // namespace

std::string encode_payload(const PsPayload& payload) {
  return base64_encode(payload.script) + "\n" + base64_encode(payload.args_json.empty() ? "{}" : payload.args_json);
}

std::string bootstrap_script(BootstrapMode mode, const PsPayload* inline_payload) {
  std::string s;
  if (mode == BootstrapMode::kInline && inline_payload) {
    s += kInlineMarker;
    s += "\n";
    s += kPreamble;
    const std::string args = inline_payload->args_json.empty() ? "{}" : inline_payload->args_json;
    s += "$wincertIn = @('" + base64_encode(inline_payload->script) + "','" + base64_encode(args) + "')\n";
  } else {
    s += kStdinMarker;
    s += "\n";
    s += kPreamble;
    s += "$wincertIn = [Console]::In.ReadToEnd() -split \"`n\"\n";
  }
  s += kBootstrapBody;
  return s;
}

std::string encode_command(std::string_view ps_text) { return base64_encode(utf8_to_utf16le(ps_text)); }

PsInvocation build_ps_invocation(const PsPayload& payload) {
  PsInvocation inv;
  inv.executable = std::string(kPowerShellExe);
  std::string encoded = encode_command(bootstrap_script(BootstrapMode::kInline, &payload));
  if (encoded.size() <= kMaxInlineEncodedCommand) {
    inv.mode = BootstrapMode::kInline;
  } else {
    inv.mode = BootstrapMode::kStdin;
    encoded = encode_command(bootstrap_script(BootstrapMode::kStdin, nullptr));
    inv.stdin_data = encode_payload(payload);
  }
  inv.arguments = {"-NoProfile", "-NonInteractive", "-EncodedCommand", std::move(encoded)};
  return inv;
}

std::optional<PsPayload> decode_payload(std::string_view data) {
  auto nl = data.find('\n');
  if (nl == std::string_view::npos) return std::nullopt;
  auto script = base64_decode(trim(data.substr(0, nl)));
  auto args = base64_decode(trim(data.substr(nl + 1)));
  if (!script || !args) return std::nullopt;
  return PsPayload{std::move(*script), std::move(*args)};
}

std::optional<ParsedBootstrap> parse_bootstrap(std::string_view text) {
  if (text.starts_with(kStdinMarker)) return ParsedBootstrap{BootstrapMode::kStdin, std::nullopt};
  if (!text.starts_with(kInlineMarker)) return std::nullopt;
  constexpr std::string_view kOpen = "$wincertIn = @('";
  auto p = text.find(kOpen);
  if (p == std::string_view::npos) return std::nullopt;
  p += kOpen.size();
  auto mid = text.find("','", p);
  if (mid == std::string_view::npos) return std::nullopt;
  auto end = text.find("')", mid + 3);
  if (end == std::string_view::npos) return std::nullopt;
  std::string data = std::string(text.substr(p, mid - p)) + "\n" + std::string(text.substr(mid + 3, end - mid - 3));
  auto payload = decode_payload(data);
  if (!payload) return std::nullopt;
  return ParsedBootstrap{BootstrapMode::kInline, std::move(payload)};
}

std::optional<std::string> decode_command(std::string_view encoded) {
  auto raw = base64_decode(encoded);
  if (!raw || raw->size() % 2 != 0) return std::nullopt;
  return utf16le_to_utf8(*raw);
}

}  // namespace wincert::winrm
