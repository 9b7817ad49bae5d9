// Every recorded pypsrp PSRP exchange (real Windows hosts, ../shared/fixtures/winrm/pypsrp-psrp) decodes
// completely: each creationXml, Command Arguments, Send Stream and Receive Stream is defragmented, each message
// header parsed, each CLIXML body deserialized and each server message run through its typed parser. The YAML
// is read with yaml-cpp at test time, as the WS-Man transcript tests do (no generated data is checked in).
// Our own SESSION_CAPABILITY, INIT_RUNSPACEPOOL and CREATE_PIPELINE are compared with the recorded ones.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>

#include "common/encoding.hpp"
#include "tests/support/result_matchers.hpp"
#include "winrm/namespaces.hpp"
#include "winrm/psrp/fragment.hpp"
#include "winrm/psrp/messages.hpp"
#include "winrm/xml.hpp"

namespace wincert::winrm::psrp {
namespace {

std::string fixture_dir() { return std::string(WINCERT_SHARED_DIR) + "/fixtures/winrm/pypsrp-psrp"; }

struct Decoded {
  std::string where;  // fixture #index request/response element
  bool from_client = false;
  std::string raw;  // the message bytes as reassembled (header included)
  Message message;
};

struct Transcript {
  std::string name;
  std::vector<Decoded> messages;
  std::string shell_id;  // the Create request's ShellId
};

void collect_payloads(const pugi::xml_node& node, std::vector<std::pair<std::string, std::string>>& out) {
  for (auto c = node.first_child(); c; c = c.next_sibling()) {
    if (c.type() != pugi::node_element) continue;
    std::string_view local = xml::local_name(c);
    if (local == "creationXml" || local == "Arguments" || local == "Stream")
      out.emplace_back(std::string(local), xml::text(c));
    collect_payloads(c, out);
  }
}

Transcript decode_transcript(const std::filesystem::path& path) {
  Transcript t;
  t.name = path.stem().string();
  YAML::Node root = YAML::LoadFile(path.string());
  Defragmenter from_client;
  Defragmenter from_server;
  int index = 0;
  for (const auto& m : root["messages"]) {
    for (const char* kind : {"request", "response"}) {
      if (!m[kind] || !m[kind].IsScalar()) continue;
      std::string text = m[kind].as<std::string>();
      pugi::xml_document doc;
      if (!xml::parse(doc, text).ok()) {
        EXPECT_EQ(text.find("rsp:Stream"), std::string::npos) << t.name << " #" << index << " " << kind;
        continue;
      }
      if (t.shell_id.empty())
        if (auto shell = xml::descendant(doc.document_element(), ns::kShell, "Shell"))
          t.shell_id = xml::attribute(shell, "ShellId").value();
      std::vector<std::pair<std::string, std::string>> payloads;
      collect_payloads(doc.document_element(), payloads);
      bool client = std::string_view(kind) == "request";
      for (const auto& [element, b64] : payloads) {
        std::string where = t.name + " #" + std::to_string(index) + " " + kind + " " + element;
        auto bytes = base64_decode(b64);
        EXPECT_TRUE(bytes.has_value()) << where;
        if (!bytes) continue;
        auto complete = (client ? from_client : from_server).feed(*bytes);
        EXPECT_THAT(complete, IsOk()) << where;
        if (!complete.ok()) continue;
        for (auto& raw : *complete) {
          auto message = decode_message(raw);
          EXPECT_THAT(message, IsOk()) << where;
          if (!message.ok()) continue;
          t.messages.push_back(Decoded{where, client, raw, std::move(message).value()});
        }
      }
    }
    ++index;
  }
  EXPECT_EQ(from_client.incomplete_objects(), 0u) << t.name;
  EXPECT_EQ(from_server.incomplete_objects(), 0u) << t.name;
  return t;
}

const std::vector<Transcript>& transcripts() {
  static const std::vector<Transcript> all = [] {
    std::vector<std::filesystem::path> paths;
    for (const auto& entry : std::filesystem::directory_iterator(fixture_dir()))
      if (entry.path().extension() == ".yml") paths.push_back(entry.path());
    std::sort(paths.begin(), paths.end());
    std::vector<Transcript> out;
    for (const auto& p : paths) out.push_back(decode_transcript(p));
    return out;
  }();
  return all;
}

const Transcript& transcript(std::string_view name) {
  for (const auto& t : transcripts())
    if (t.name == name) return t;
  static const Transcript none;
  ADD_FAILURE() << "no transcript " << name;
  return none;
}

const Decoded* first_of(const Transcript& t, MessageType type, bool from_client) {
  for (const auto& d : t.messages)
    if (d.message.type == type && d.from_client == from_client) return &d;
  return nullptr;
}

TEST(PsrpTranscripts, EveryMessageDecodesAndEveryServerMessageParses) {
  ASSERT_EQ(transcripts().size(), 30u);
  std::map<std::pair<bool, std::uint32_t>, int> counts;
  for (const auto& t : transcripts()) {
    for (const auto& d : t.messages) {
      auto type = static_cast<std::uint32_t>(d.message.type);
      EXPECT_TRUE(is_known_message_type(type)) << d.where << " type " << type;
      EXPECT_EQ(d.message.destination, d.from_client ? Destination::kServer : Destination::kClient) << d.where;
      ++counts[{d.from_client, type}];
      if (!d.message.data.empty()) {
        EXPECT_THAT(parse_clixml(d.message.data), IsOk()) << d.where;
        // Servers always send the BOM, pypsrp never does (psrp.md §2.2).
        EXPECT_EQ(d.raw.substr(kMessageHeaderSize, 3) == "\xEF\xBB\xBF", !d.from_client) << d.where;
      }
      if (!d.from_client) {
        EXPECT_THAT(parse_server_message(d.message), IsOk()) << d.where;
      }
    }
  }
  int client = 0;
  int server = 0;
  for (const auto& [key, n] : counts) {
    (key.first ? client : server) += n;
    std::cout << (key.first ? "client " : "server ") << message_type_name(static_cast<MessageType>(key.second)) << ": "
              << n << "\n";
  }
  EXPECT_EQ(client, 121);
  EXPECT_EQ(server, 281);
  using T = MessageType;
  const std::map<std::pair<bool, std::uint32_t>, int> expected = {
      {{true, static_cast<std::uint32_t>(T::kSessionCapability)}, 32},
      {{true, static_cast<std::uint32_t>(T::kInitRunspacePool)}, 32},
      {{true, static_cast<std::uint32_t>(T::kPublicKey)}, 3},
      {{true, static_cast<std::uint32_t>(T::kSetMaxRunspaces)}, 2},
      {{true, static_cast<std::uint32_t>(T::kSetMinRunspaces)}, 2},
      {{true, static_cast<std::uint32_t>(T::kCreatePipeline)}, 24},
      {{true, static_cast<std::uint32_t>(T::kGetAvailableRunspaces)}, 2},
      {{true, static_cast<std::uint32_t>(T::kGetCommandMetadata)}, 3},
      {{true, static_cast<std::uint32_t>(T::kResetRunspaceState)}, 2},
      {{true, static_cast<std::uint32_t>(T::kPipelineInput)}, 10},
      {{true, static_cast<std::uint32_t>(T::kEndOfPipelineInput)}, 3},
      {{true, static_cast<std::uint32_t>(T::kPipelineHostResponse)}, 6},
      {{false, static_cast<std::uint32_t>(T::kSessionCapability)}, 32},
      {{false, static_cast<std::uint32_t>(T::kEncryptedSessionKey)}, 2},
      {{false, static_cast<std::uint32_t>(T::kRunspaceAvailability)}, 8},
      {{false, static_cast<std::uint32_t>(T::kRunspacePoolState)}, 34},
      {{false, static_cast<std::uint32_t>(T::kApplicationPrivateData)}, 34},
      {{false, static_cast<std::uint32_t>(T::kPipelineOutput)}, 76},
      {{false, static_cast<std::uint32_t>(T::kErrorRecord)}, 3},
      {{false, static_cast<std::uint32_t>(T::kPipelineState)}, 26},
      {{false, static_cast<std::uint32_t>(T::kDebugRecord)}, 10},
      {{false, static_cast<std::uint32_t>(T::kVerboseRecord)}, 4},
      {{false, static_cast<std::uint32_t>(T::kWarningRecord)}, 4},
      {{false, static_cast<std::uint32_t>(T::kProgressRecord)}, 14},
      {{false, static_cast<std::uint32_t>(T::kInformationRecord)}, 3},
      {{false, static_cast<std::uint32_t>(T::kPipelineHostCall)}, 31},
  };
  EXPECT_EQ(counts, expected);
}

TEST(PsrpTranscripts, TypedParsersReadTheRecordedValues) {
  int pool_states = 0;
  int pipeline_states = 0;
  int capabilities = 0;
  int host_calls = 0;
  for (const auto& t : transcripts()) {
    for (const auto& d : t.messages) {
      if (d.from_client) continue;
      auto parsed = parse_server_message(d.message);
      if (!parsed.ok()) continue;  // reported by the test above
      if (auto* s = std::get_if<RunspacePoolStateInfo>(&*parsed)) {
        EXPECT_EQ(s->state, 2) << d.where;
        ++pool_states;
      } else if (auto* p = std::get_if<PipelineStateInfo>(&*parsed)) {
        EXPECT_TRUE(p->terminal()) << d.where;
        EXPECT_FALSE(p->error.has_value()) << d.where;
        ++pipeline_states;
      } else if (auto* c = std::get_if<ServerCapability>(&*parsed)) {
        EXPECT_TRUE(c->protocol_version == "2.3" || c->protocol_version == "2.2") << d.where;
        EXPECT_EQ(c->serialization_version, "1.1.0.1") << d.where;
        ++capabilities;
      } else if (auto* h = std::get_if<HostCall>(&*parsed)) {
        EXPECT_TRUE(h->pipeline) << d.where;
        EXPECT_FALSE(h->method_name.empty()) << d.where;
        EXPECT_GT(h->method_id, 0) << d.where;
        ++host_calls;
      }
    }
  }
  EXPECT_EQ(pool_states, 34);
  EXPECT_EQ(pipeline_states, 26);
  EXPECT_EQ(capabilities, 32);
  EXPECT_EQ(host_calls, 31);
}

TEST(PsrpTranscripts, StreamsOfOnePipeline) {
  // $DebugPreference/$VerbosePreference = 'Continue'; Write-Debug, -Verbose, -Error, -Output, -Warning,
  // -Information (test_psrp_stream_output_invocation #3, answered in #4).
  const Transcript& t = transcript("test_psrp_stream_output_invocation");
  std::vector<std::string> outputs;
  std::map<InformationalKind, std::string> records;
  std::optional<ErrorRecordInfo> error;
  int progress = 0;
  std::optional<PipelineStateInfo> state;
  for (const auto& d : t.messages) {
    if (d.from_client) continue;
    auto parsed = parse_server_message(d.message);
    ASSERT_THAT(parsed, IsOk());
    if (auto* o = std::get_if<PipelineOutput>(&*parsed)) outputs.push_back(o->value.to_display_string());
    if (auto* r = std::get_if<InformationalRecord>(&*parsed)) records[r->kind] = r->message;
    if (auto* e = std::get_if<ErrorRecordInfo>(&*parsed)) error = *e;
    if (std::holds_alternative<ProgressRecord>(*parsed)) ++progress;
    if (auto* s = std::get_if<PipelineStateInfo>(&*parsed)) state = *s;
  }
  EXPECT_EQ(outputs, std::vector<std::string>{"output stream"});
  EXPECT_EQ(records[InformationalKind::kDebug], "debug stream");
  EXPECT_EQ(records[InformationalKind::kVerbose], "verbose stream");
  EXPECT_EQ(records[InformationalKind::kWarning], "warning stream");
  EXPECT_EQ(records[InformationalKind::kInformation], "information stream");
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->message, "error stream");
  EXPECT_EQ(error->fully_qualified_error_id, "Microsoft.PowerShell.Commands.WriteErrorException");
  EXPECT_EQ(error->category, 0);
  EXPECT_EQ(error->category_message, "NotSpecified: (:) [Write-Error], WriteErrorException");
  EXPECT_EQ(error->exception_type, "Microsoft.PowerShell.Commands.WriteErrorException");
  EXPECT_GE(progress, 1);
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->state, 4);
}

TEST(PsrpTranscripts, OutputObjectsRenderAsTheCliPrintsThem) {
  // Write-Output 1; Write-Output 2 (test_psrp_with_history): <I32> values.
  std::vector<std::string> outputs;
  for (const auto& d : transcript("test_psrp_with_history").messages) {
    if (d.from_client || d.message.type != MessageType::kPipelineOutput) continue;
    outputs.push_back(parse_clixml(d.message.data)->to_display_string());
    if (outputs.size() == 2) break;
  }
  EXPECT_EQ(outputs, (std::vector<std::string>{"1", "2"}));
}

TEST(PsrpTranscripts, GuidByteOrderTrap) {
  // The 2018 recordings put the ShellId in RFC byte order at offset 8 (psrp.md §2.3); .NET order differs.
  const Transcript& t = transcript("test_psrp_open_runspace");
  ASSERT_EQ(t.shell_id, "76056A84-51DC-4F24-9262-CA2A55464B2B");
  const Decoded* cap = first_of(t, MessageType::kSessionCapability, true);
  ASSERT_NE(cap, nullptr);
  Guid shell = Guid::parse(t.shell_id).value();
  EXPECT_EQ(cap->raw.substr(8, 16), std::string(shell.bytes.begin(), shell.bytes.end()));
  // Read as .NET bytes, the recorded RPID is not the ShellId...
  EXPECT_EQ(cap->message.runspace_pool_id.to_upper_string(), "846A0576-DC51-244F-9262-CA2A55464B2B");
  // ...and what we send for that ShellId is the .NET layout.
  auto wire = shell.to_dotnet_bytes();
  EXPECT_EQ(std::string(wire.begin(), wire.end()),
            std::string("\x84\x6a\x05\x76\xdc\x51\x24\x4f\x92\x62\xca\x2a\x55\x46\x4b\x2b", 16));
  // The server echoes the bytes it received: compare them as opaque bytes.
  const Decoded* state = first_of(t, MessageType::kRunspacePoolState, false);
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(state->raw.substr(8, 16), cap->raw.substr(8, 16));
  // Its SESSION_CAPABILITY has an all-zero RPID.
  EXPECT_TRUE(first_of(t, MessageType::kSessionCapability, false)->message.runspace_pool_id.is_nil());
}

// Element names, types, property names and type names of a CLIXML document, in order (values left out).
std::vector<std::string> shape(std::string_view clixml) {
  pugi::xml_document doc;
  EXPECT_TRUE(doc.load_buffer(clixml.data(), clixml.size()));
  std::vector<std::string> out;
  auto walk = [&](auto&& self, const pugi::xml_node& n, int depth) -> void {
    for (auto c = n.first_child(); c; c = c.next_sibling()) {
      if (c.type() != pugi::node_element) continue;
      std::string line = std::to_string(depth) + " " + c.name();
      if (auto name = c.attribute("N")) line += " N=" + std::string(name.value());
      if (std::string_view(c.name()) == "T") line += " " + std::string(c.text().get());
      out.push_back(line);
      self(self, c, depth + 1);
    }
  };
  walk(walk, doc, 0);
  return out;
}

TEST(PsrpTranscripts, OurOpeningMessagesMatchTheRecordedOnes) {
  int compared = 0;
  int byte_equal = 0;
  for (const auto& t : transcripts()) {
    const Decoded* cap = first_of(t, MessageType::kSessionCapability, true);
    const Decoded* init = first_of(t, MessageType::kInitRunspacePool, true);
    ASSERT_TRUE(cap && init) << t.name;
    Guid pool = cap->message.runspace_pool_id;
    EXPECT_EQ(shape(session_capability_message(pool).data), shape(cap->message.data)) << t.name;
    EXPECT_EQ(session_capability_message(pool).data, cap->message.data) << t.name;
    if (init->message.data.find("<Nil N=\"ApplicationArguments\" />") == std::string::npos ||
        init->message.data.find("_isHostNull\">true") == std::string::npos)
      continue;  // recorded with application arguments or a host
    PsValue recorded = parse_clixml(init->message.data).value();
    RunspacePoolSettings settings;
    settings.min_runspaces = static_cast<std::int32_t>(*recorded.int_property("MinRunspaces"));
    settings.max_runspaces = static_cast<std::int32_t>(*recorded.int_property("MaxRunspaces"));
    Message ours = init_runspace_pool_message(pool, settings);
    EXPECT_EQ(shape(ours.data), shape(init->message.data)) << t.name;
    ++compared;
    // Older pypsrp versions wrote RefId before N; byte equality holds for the others.
    if (init->message.data.find("<Obj RefId=\"1\" N=") != std::string::npos) continue;
    EXPECT_EQ(ours.data, init->message.data) << t.name;
    EXPECT_EQ(encode_message(ours), init->raw) << t.name;  // header included
    ++byte_equal;
  }
  std::cout << "INIT_RUNSPACEPOOL: " << compared << " compared, " << byte_equal << " byte for byte\n";
  EXPECT_EQ(compared, 26);
  EXPECT_EQ(byte_equal, 21);
}

TEST(PsrpTranscripts, OurCreatePipelineMatchesTheRecordedOnes) {
  // Rebuild every recorded single-statement CREATE_PIPELINE with default merges and a null host from its
  // values, and compare the documents: structure first (for a readable failure), then byte for byte.
  int compared = 0;
  int byte_equal = 0;
  for (const auto& t : transcripts()) {
    for (const auto& d : t.messages) {
      if (!d.from_client || d.message.type != MessageType::kCreatePipeline) continue;
      PsValue recorded = parse_clixml(d.message.data).value();
      const PsValue* ps = recorded.property("PowerShell");
      ASSERT_NE(ps, nullptr) << d.where;
      if (!ps->property("ExtraCmds")->is_nil() || recorded.property("HostInfo")->bool_property("_isHostNull") != true)
        continue;
      std::vector<PipelineCommand> commands;
      bool defaults = true;
      for (const auto& cmd : ps->property("Cmds")->object()->items) {
        PipelineCommand c;
        c.command = *cmd.string_property("Cmd");
        c.is_script = *cmd.bool_property("IsScript");
        for (auto merge : {"MergeMyResult", "MergeToResult", "MergePreviousResults", "MergeError", "MergeWarning",
                           "MergeVerbose", "MergeDebug", "MergeInformation"})
          defaults = defaults && cmd.property(merge) && cmd.property(merge)->as_int64() == 0;
        for (const auto& arg : cmd.property("Args")->object()->items)
          c.parameters.push_back({arg.string_property("N").value_or(""), *arg.property("V")});
        commands.push_back(std::move(c));
      }
      if (!defaults) continue;
      PipelineSettings settings;
      settings.no_input = *recorded.bool_property("NoInput");
      settings.add_to_history = *recorded.bool_property("AddToHistory");
      settings.is_nested = *recorded.bool_property("IsNested");
      settings.remote_stream_options = static_cast<std::int32_t>(*recorded.property("RemoteStreamOptions")->as_int64());
      Message ours = create_pipeline_message(d.message.runspace_pool_id, d.message.pipeline_id, commands, settings);
      EXPECT_EQ(shape(ours.data), shape(d.message.data)) << d.where;
      ++compared;
      // Byte equality where pypsrp wrote N before RefId and the RemoteStreamOptions we send (15).
      if (d.message.data.find("<Obj RefId=\"1\" N=") != std::string::npos || settings.remote_stream_options != 15)
        continue;
      EXPECT_EQ(ours.data, d.message.data) << d.where;
      ++byte_equal;
    }
  }
  std::cout << "CREATE_PIPELINE rebuilt: " << compared << " of 24 compared, " << byte_equal << " byte for byte\n";
  EXPECT_EQ(compared, 16);  // the others have ExtraCmds, merged streams or a host
  EXPECT_EQ(byte_equal, 14);
}

TEST(PsrpTranscripts, RecordedClientMessagesSurviveOurSerializer) {
  // Deserialize and serialize every recorded client body: pypsrp writes what our serializer writes.
  int same = 0;
  int total = 0;
  for (const auto& t : transcripts())
    for (const auto& d : t.messages) {
      if (!d.from_client || d.message.data.empty()) continue;
      ++total;
      auto parsed = parse_clixml(d.message.data);
      ASSERT_THAT(parsed, IsOk()) << d.where;
      std::string again = serialize_clixml(*parsed);
      EXPECT_EQ(shape(again), shape(d.message.data)) << d.where;
      if (again == d.message.data) ++same;
    }
  std::cout << "recorded client bodies reserialized byte for byte: " << same << " of " << total << "\n";
  EXPECT_GT(same, total / 2);
}

TEST(PsrpTranscripts, RecordedFragmentsRefragmentToTheSameBytes) {
  // Each recorded message was sent as one S+E fragment; our fragmenter reproduces the recorded stream.
  const Transcript& t = transcript("test_psrp_open_runspace");
  std::vector<std::string> ours;
  std::uint64_t id = 0;
  for (const auto& d : t.messages) {
    if (!d.from_client || d.where.find("creationXml") == std::string::npos) continue;
    auto parts = fragment_message(d.raw, ++id, 32 * 1024);
    ASSERT_THAT(parts, IsOk());
    ours.insert(ours.end(), parts->begin(), parts->end());
  }
  ASSERT_EQ(ours.size(), 2u);
  YAML::Node root = YAML::LoadFile(fixture_dir() + "/test_psrp_open_runspace.yml");
  pugi::xml_document doc;
  ASSERT_THAT(xml::parse(doc, root["messages"][0]["request"].as<std::string>()), IsOk());
  std::vector<std::pair<std::string, std::string>> payloads;
  collect_payloads(doc.document_element(), payloads);
  ASSERT_EQ(payloads.size(), 1u);
  EXPECT_EQ(base64_encode(pack_fragments(ours, 1 << 20).front()), payloads[0].second);
}

}  // namespace
}  // namespace wincert::winrm::psrp
