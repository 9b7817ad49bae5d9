// libFuzzer target: a body from Command through the one peer-JSON entry point and every reply
// interpreter (Register, Heartbeat, job configuration, completion/inventory/CSR envelopes).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/command_client.hpp"
#include "common/peer_json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace wincert;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto doc = parse_peer_ordered_json(body, peer_json_limits::kCommandReply, "the fuzzed reply");
  if (!doc.ok()) return 0;
  (void)agent::parse_api_result(*doc);
  (void)agent::interpret_register_reply(*doc);
  (void)agent::interpret_heartbeat_reply(*doc);
  (void)agent::integer_in_range(agent::find_member(*doc, "AuditId"), 0, 1000);
  agent::JobEntry job;
  job.job_id = "00000000-0000-0000-0000-000000000001";
  job.capability = "CertStores.WinCert.Inventory";
  auto reply = agent::interpret_job_configuration(std::move(doc.value()), job);
  (void)jobs::parse_job_config_document(std::move(reply.config), reply.last_inventory.get());
  return 0;
}
