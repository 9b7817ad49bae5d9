// Shared by the OutOfProc transport tests: finding pwsh, skipping (or failing under CI=true) without a
// peer, running a coroutine to completion, the recorded pool-opening fragments, and a minimal fragment walk.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/encoding.hpp"

namespace wincert::winrm::psrp::testing {

inline bool running_in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string_view(ci) == "true";
}

// Without a peer the test is SKIPPED; in CI a missing peer is a failure.
#define WINCERT_SKIP_OR_FAIL(reason)                                                          \
  do {                                                                                        \
    if (::wincert::winrm::psrp::testing::running_in_ci()) FAIL() << (reason) << " (CI=true)"; \
    GTEST_SKIP() << (reason);                                                                 \
  } while (0)

inline bool is_executable(const std::filesystem::path& path) {
  std::error_code ec;
  return !path.empty() && std::filesystem::is_regular_file(path, ec) && ::access(path.c_str(), X_OK) == 0;
}

inline std::optional<std::filesystem::path> find_on_path(std::string_view name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return std::nullopt;
  std::string_view rest(path);
  while (!rest.empty()) {
    const auto colon = rest.find(':');
    const std::filesystem::path candidate = std::filesystem::path(rest.substr(0, colon)) / name;
    if (is_executable(candidate)) return candidate;
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return std::nullopt;
}

// As tests/powershell finds it: WINCERT_PWSH (environment, then the CMake cache variable), then
// build/tools/pwsh/pwsh from scripts/setup.sh, then PATH.
inline std::optional<std::filesystem::path> find_pwsh() {
  // No telemetry or update check from the pwsh children (they inherit the environment).
  ::setenv("POWERSHELL_TELEMETRY_OPTOUT", "1", 0);
  ::setenv("POWERSHELL_UPDATECHECK", "Off", 0);
  // An explicit WINCERT_PWSH wins, even when it names nothing (how the skip is tested).
  if (const char* env = std::getenv("WINCERT_PWSH"); env != nullptr && *env != '\0') {
    if (is_executable(env)) return std::filesystem::path(env);
    return std::nullopt;
  }
  if (is_executable(WINCERT_PSRP_PWSH)) return std::filesystem::path(WINCERT_PSRP_PWSH);
  if (is_executable(WINCERT_PSRP_TOOLS_PWSH)) return std::filesystem::path(WINCERT_PSRP_TOOLS_PWSH);
  return find_on_path("pwsh");
}

// Runs a coroutine on its own io_context until it ends; exceptions propagate to the test.
inline void run_coroutine(std::function<boost::asio::awaitable<void>()> body) {
  boost::asio::io_context io;
  std::exception_ptr failure;
  boost::asio::co_spawn(io, body(), [&](std::exception_ptr e) { failure = e; });
  io.run();
  if (failure) std::rethrow_exception(failure);
}

// The SESSION_CAPABILITY and INIT_RUNSPACEPOOL fragments pypsrp sent to a real Windows server to open a pool:
// the creationXml of ../shared/fixtures/winrm/pypsrp-psrp/test_psrp_open_runspace.yml, message #0.
inline std::string recorded_pool_open_fragments() {
  const auto path =
      std::filesystem::path(WINCERT_SHARED_DIR) / "fixtures/winrm/pypsrp-psrp/test_psrp_open_runspace.yml";
  const YAML::Node doc = YAML::LoadFile(path.string());
  const auto request = doc["messages"][0]["request"].as<std::string>();
  const auto open = request.find("<creationXml");
  const auto start = request.find('>', open) + 1;
  const auto end = request.find("</creationXml>", start);
  auto bytes = base64_decode(std::string_view(request).substr(start, end - start));
  return bytes ? *bytes : std::string();
}

inline constexpr std::uint32_t kSessionCapability = 0x00010002;
inline constexpr std::uint32_t kInitRunspacePool = 0x00010004;
inline constexpr std::uint32_t kRunspacePoolState = 0x00021005;

struct WalkedMessage {
  std::uint32_t type = 0;
  std::string start;  // the message's data (CLIXML) in its first fragment
};

// The messages that start in `payload` (a run of PSRP fragments): a fragment header is
// ObjectId u64 BE, FragmentId u64 BE, flags (bit 0 = start), BlobLength u32 BE; a start blob begins with the
// message header (Destination u32 LE, MessageType u32 LE, ...). Empty when the payload is malformed.
inline std::vector<WalkedMessage> messages_in(std::string_view payload) {
  std::vector<WalkedMessage> messages;
  const auto byte = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(payload[i])); };
  std::size_t pos = 0;
  while (pos < payload.size()) {
    if (payload.size() - pos < 21) return {};
    const bool start = (byte(pos + 16) & 0x01) != 0;
    const std::size_t length = (byte(pos + 17) << 24) | (byte(pos + 18) << 16) | (byte(pos + 19) << 8) | byte(pos + 20);
    pos += 21;
    if (payload.size() - pos < length) return {};
    if (start) {
      if (length < 40) return {};
      WalkedMessage message;
      message.type = byte(pos + 4) | (byte(pos + 5) << 8) | (byte(pos + 6) << 16) | (byte(pos + 7) << 24);
      message.start = std::string(payload.substr(pos + 40, length - 40));
      messages.push_back(std::move(message));
    }
    pos += length;
  }
  return messages;
}

inline std::vector<std::uint32_t> message_types_in(std::string_view payload) {
  std::vector<std::uint32_t> types;
  for (const auto& message : messages_in(payload)) types.push_back(message.type);
  return types;
}

}  // namespace wincert::winrm::psrp::testing
