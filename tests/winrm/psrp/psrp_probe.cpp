// Test tool for pwsh_peer_test.py: builds client PSRP messages and decodes server ones with the message layer,
// so a script can drive a real `pwsh -s` (OutOfProc framing) without any PSRP code of its own.
//   psrp_probe open POOL FIRST_OBJECT_ID                       base64 of SESSION_CAPABILITY + INIT_RUNSPACEPOOL
//   psrp_probe pipeline POOL FIRST_OBJECT_ID PID cmd|script TEXT [NAME VALUE]...   base64 of CREATE_PIPELINE
//   psrp_probe decode      reads base64 Data payloads, one per line; prints one line per completed message
#include <iostream>
#include <string>
#include <variant>

#include "common/encoding.hpp"
#include "winrm/psrp/fragment.hpp"
#include "winrm/psrp/messages.hpp"

namespace psrp = wincert::winrm::psrp;

namespace {

int usage() {
  std::cerr << "usage: psrp_probe open|pipeline|decode ...\n";
  return 2;
}

std::string describe(const psrp::ServerMessageBody& body) {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        auto error = [](const psrp::ErrorRecordInfo& e) {
          return "message=[" + e.message + "] fqid=" + e.fully_qualified_error_id + " category=[" + e.category_message +
                 "] target=[" + e.target + "]";
        };
        if constexpr (std::is_same_v<T, psrp::ServerCapability>) {
          return "protocol=" + v.protocol_version;
        } else if constexpr (std::is_same_v<T, psrp::RunspacePoolStateInfo>) {
          return "state=" + std::to_string(v.state) + (v.error ? " " + error(*v.error) : "");
        } else if constexpr (std::is_same_v<T, psrp::PipelineStateInfo>) {
          return "state=" + std::to_string(v.state) + (v.error ? " " + error(*v.error) : "");
        } else if constexpr (std::is_same_v<T, psrp::PipelineOutput>) {
          std::string text = v.value.to_display_string();
          return "length=" + std::to_string(text.size()) + " text=[" + (text.size() > 200 ? "..." : text) + "]";
        } else if constexpr (std::is_same_v<T, psrp::ErrorRecordInfo>) {
          return error(v);
        } else if constexpr (std::is_same_v<T, psrp::InformationalRecord>) {
          return "text=[" + v.message + "]";
        } else if constexpr (std::is_same_v<T, psrp::HostCall>) {
          return "method=" + v.method_name;
        } else {
          return "";
        }
      },
      body);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  std::string mode = argv[1];
  if (mode == "open" || mode == "pipeline") {
    if (argc < (mode == "open" ? 4 : 7)) return usage();
    auto pool = psrp::Guid::parse(argv[2]);
    if (!pool.ok()) return usage();
    std::uint64_t object_id = std::stoull(argv[3]);
    std::vector<psrp::Message> messages;
    if (mode == "open") {
      messages.push_back(psrp::session_capability_message(*pool));
      messages.push_back(psrp::init_runspace_pool_message(*pool));
    } else {
      auto pipeline = psrp::Guid::parse(argv[4]);
      if (!pipeline.ok()) return usage();
      psrp::PipelineCommand command;
      command.is_script = std::string(argv[5]) == "script";
      command.command = argv[6];
      for (int i = 7; i + 1 < argc; i += 2) command.parameters.push_back({argv[i], psrp::PsValue::string(argv[i + 1])});
      messages.push_back(psrp::create_pipeline_message(*pool, *pipeline, {command}));
    }
    std::string payload;
    for (const auto& m : messages) {
      auto fragments = psrp::fragment_message(psrp::encode_message(m), object_id++, psrp::kDefaultMaxFragmentSize);
      if (!fragments.ok()) return 1;
      for (const auto& f : *fragments) payload += f;
    }
    std::cout << wincert::base64_encode(payload) << std::endl;
    return 0;
  }
  if (mode != "decode") return usage();
  psrp::Defragmenter defragmenter;
  std::string line;
  while (std::getline(std::cin, line)) {
    auto bytes = wincert::base64_decode(line);
    if (!bytes) {
      std::cout << "DECODE-ERROR bad base64" << std::endl;
      continue;
    }
    auto complete = defragmenter.feed(*bytes);
    if (!complete.ok()) {
      std::cout << "DECODE-ERROR " << complete.error().message << std::endl;
      continue;
    }
    // One line per input line: the messages it completed, separated by " | " (none: empty line).
    std::string out;
    for (const auto& raw : *complete) {
      auto message = psrp::decode_message(raw);
      if (!out.empty()) out += " | ";
      if (!message.ok()) {
        out += "DECODE-ERROR " + message.error().message;
        continue;
      }
      auto parsed = psrp::parse_server_message(*message);
      out += std::string(psrp::message_type_name(message->type)) + " " +
             (parsed.ok() ? describe(*parsed) : "PARSE-ERROR " + parsed.error().message);
    }
    // Keep it one line: record texts may hold line breaks.
    std::string flat;
    for (char c : out) flat += c == '\n' ? std::string("\\n") : c == '\r' ? std::string("\\r") : std::string(1, c);
    std::cout << flat << std::endl;
  }
  return 0;
}
