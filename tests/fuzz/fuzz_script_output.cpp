// libFuzzer target: what a script prints on a managed host (the host is a peer), through the document
// reader and the result parsers of the remote execution contract, and through the streamed inventory reader
// (certstore/remote/inventory_scan.hpp), which must agree with the whole parse on every output it accepts.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "certstore/remote/remote_backend.hpp"
#include "common/peer_json.hpp"

namespace {

namespace certstore = wincert::certstore;
namespace remote = wincert::certstore::remote;

bool same_entry(const certstore::InventoryEntry& a, const certstore::InventoryEntry& b) {
  return a.der == b.der && a.thumbprint == b.thumbprint && a.has_private_key == b.has_private_key &&
         a.provider_name == b.provider_name && a.friendly_name == b.friendly_name && a.sans == b.sans;
}

// The streamed reader against the whole parse: when it reads to the end, the text is one valid document and
// both give the same entries and problems; when the text is a valid document (within the limits) that the
// scan took, it reads to the end.
void check_streamed_inventory(std::string_view text) {
  std::string owned(text);
  auto reader = remote::stream_store_inventory(owned, "");
  if (!reader) {
    if (owned != text) __builtin_trap();  // a refused text is left untouched
    return;
  }
  certstore::StoreInventory streamed;
  bool complete = false;
  while (true) {
    auto entry = reader->next();
    if (!entry.ok()) break;
    if (!entry->has_value()) {
      complete = true;
      break;
    }
    streamed.entries.push_back(std::move(**entry));
  }
  streamed.problems = reader->problems();

  const bool valid = nlohmann::json::accept(text) &&
                     wincert::check_peer_json(text, wincert::peer_json_limits::kScriptOutput, "output").ok();
  if (valid != complete) __builtin_trap();
  if (!complete) return;
  auto doc = remote::parse_script_document(text);
  if (!doc.ok() || !doc->has_value()) __builtin_trap();
  auto whole = remote::parse_store_inventory(**doc, "My");
  if (!whole.ok() || whole->problems != streamed.problems || whole->entries.size() != streamed.entries.size())
    __builtin_trap();
  for (std::size_t i = 0; i < streamed.entries.size(); ++i) {
    if (!same_entry(whole->entries[i], streamed.entries[i])) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_streamed_inventory(text);
  auto doc = remote::parse_script_document(text);
  if (!doc.ok() || !doc->has_value()) return 0;
  const nlohmann::json& value = **doc;
  (void)remote::parse_host_info(value);
  (void)remote::parse_store_inventory(value, "My");
  (void)remote::parse_iis_binding(value);
  (void)remote::parse_sql_instances(value);
  return 0;
}
