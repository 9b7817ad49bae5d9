// Per-message cost of the WS-Management protocol layer: what every command pays on top of the network.
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>
#include <string>

#include "common/encoding.hpp"
#include "winrm/clixml.hpp"
#include "winrm/messages.hpp"
#include "winrm/powershell_bootstrap.hpp"

namespace {

using namespace wincert;
using namespace wincert::winrm;

std::string read_fixture(const std::string& relative) {
  std::ifstream in(std::string(WINCERT_SHARED_DIR) + "/fixtures/winrm/" + relative, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

RequestContext context() {
  RequestContext ctx;
  ctx.to = "https://win01.example.test:5986/wsman";
  ctx.session_id = "uuid:" + random_uuid();
  return ctx;
}

const std::vector<Selector> kShell{{"ShellId", "4283CBDC-3706-415B-88BD-B385F3E51A53"}};
constexpr std::string_view kCommandId = "D644AE56-61E5-4C1A-A135-E599B76B3035";

// A Receive response as Windows writes it: stdout in base64 chunks of up to 1 KiB raw, End flags, Done.
std::string receive_response(std::size_t stdout_bytes, const std::string& relates_to) {
  std::string body;
  std::string line = "CN=server.example.test, Thumbprint=0123456789ABCDEF0123456789ABCDEF01234567\r\n";
  std::string raw;
  while (raw.size() < stdout_bytes) raw += line;
  raw.resize(stdout_bytes);
  for (std::size_t off = 0; off < raw.size(); off += 1024)
    body += "<rsp:Stream Name=\"stdout\" CommandId=\"" + std::string(kCommandId) + "\">" +
            base64_encode(std::string_view(raw).substr(off, 1024)) + "</rsp:Stream>";
  body += "<rsp:Stream Name=\"stdout\" CommandId=\"" + std::string(kCommandId) + "\" End=\"true\"></rsp:Stream>";
  body += "<rsp:Stream Name=\"stderr\" CommandId=\"" + std::string(kCommandId) + "\" End=\"true\"></rsp:Stream>";
  body += "<rsp:CommandState CommandId=\"" + std::string(kCommandId) +
          "\" State=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done\">"
          "<rsp:ExitCode>0</rsp:ExitCode></rsp:CommandState>";
  return "<s:Envelope xml:lang=\"en-US\" xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" "
         "xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" "
         "xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\" "
         "xmlns:rsp=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell\" "
         "xmlns:p=\"http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd\"><s:Header>"
         "<a:Action>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse</a:Action>"
         "<a:MessageID>uuid:6C8EDDC6-2069-4F90-BC13-F3159AE2F8D7</a:MessageID>"
         "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
         "<a:RelatesTo>" +
         relates_to + "</a:RelatesTo></s:Header><s:Body><rsp:ReceiveResponse>" + body +
         "</rsp:ReceiveResponse></s:Body></s:Envelope>";
}

void BM_BuildCommandEnvelope(benchmark::State& state) {
  auto ctx = context();
  // The real command line: powershell.exe with our bootstrap, as the client sends it.
  auto invocation = build_ps_invocation({"Get-ChildItem Cert:\\LocalMachine\\My | ConvertTo-Json -Compress", "{}"});
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto env = build_command(ctx, kShell, invocation.executable, invocation.arguments, true, false);
    bytes += env.xml.size();
    benchmark::DoNotOptimize(env);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}
BENCHMARK(BM_BuildCommandEnvelope);

void BM_BuildReceiveEnvelope(benchmark::State& state) {
  auto ctx = context();
  for (auto _ : state) {
    auto env = build_receive(ctx, kShell, kCommandId);
    benchmark::DoNotOptimize(env);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BuildReceiveEnvelope);

void BM_ParseReceiveResponse(benchmark::State& state) {
  const std::string relates_to = "uuid:FF8C40A3-25A5-4F1F-9728-6F2E729441D1";
  const std::string xml = receive_response(static_cast<std::size_t>(state.range(0)), relates_to);
  for (auto _ : state) {
    auto response = parse_response(xml, relates_to);
    auto result = parse_receive(*response, kCommandId);
    if (!result.ok() || result->stdout_data.size() != static_cast<std::size_t>(state.range(0)))
      state.SkipWithError("receive did not parse");
    benchmark::DoNotOptimize(result);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * xml.size()));
  state.counters["envelope_bytes"] = static_cast<double>(xml.size());
}
BENCHMARK(BM_ParseReceiveResponse)->Arg(4 * 1024)->Arg(100 * 1024);

void BM_ParseFault(benchmark::State& state) {
  const std::string xml = read_fixture("winrb/soap_fault_v1.xml");
  for (auto _ : state) {
    auto response = parse_response(xml, "uuid:B90EC4BB-4484-4ADA-920B-019517747915");
    if (!response.ok() || !response->fault) state.SkipWithError("fault did not parse");
    auto summary = response->fault->summary();
    benchmark::DoNotOptimize(summary);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseFault);

void BM_DecodeClixml(benchmark::State& state) {
  const std::string stderr_bytes = read_fixture("clixml/with_error.xml");
  for (auto _ : state) {
    auto streams = decode_clixml(stderr_bytes);
    if (streams.errors.size() != 8) state.SkipWithError("CLIXML did not decode");
    auto text = streams.error_text();
    benchmark::DoNotOptimize(text);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * stderr_bytes.size()));
}
BENCHMARK(BM_DecodeClixml);

}  // namespace

BENCHMARK_MAIN();
