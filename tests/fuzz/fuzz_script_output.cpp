// libFuzzer target: what a script prints on a managed host (the host is a peer), through the document
// reader and the result parsers of the remote execution contract.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "certstore/remote/remote_backend.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace remote = wincert::certstore::remote;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto doc = remote::parse_script_document(text);
  if (!doc.ok() || !doc->has_value()) return 0;
  const nlohmann::json& value = **doc;
  (void)remote::parse_host_info(value);
  (void)remote::parse_store_inventory(value, "My");
  (void)remote::parse_iis_binding(value);
  (void)remote::parse_sql_instances(value);
  return 0;
}
