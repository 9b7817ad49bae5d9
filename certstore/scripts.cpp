#include "certstore/scripts.hpp"

#include <algorithm>
#include <cstddef>

namespace wincert::certstore::generated {
struct EmbeddedScript {
  std::string_view op;
  const unsigned char* text;
  std::size_t size;
};
extern const EmbeddedScript kEmbeddedScripts[];
extern const std::size_t kEmbeddedScriptCount;
extern const unsigned char* const kModuleText;
extern const std::size_t kModuleSize;
extern const char kModuleVersion[];
}  // namespace wincert::certstore::generated

namespace wincert::certstore {

std::optional<std::string_view> script_for(std::string_view op) {
  for (std::size_t i = 0; i < generated::kEmbeddedScriptCount; ++i) {
    const auto& script = generated::kEmbeddedScripts[i];
    if (script.op == op) return std::string_view(reinterpret_cast<const char*>(script.text), script.size);
  }
  return std::nullopt;
}

std::vector<std::string_view> embedded_ops() {
  std::vector<std::string_view> ops;
  for (std::size_t i = 0; i < generated::kEmbeddedScriptCount; ++i) ops.push_back(generated::kEmbeddedScripts[i].op);
  std::sort(ops.begin(), ops.end());
  return ops;
}

std::string_view module_text() {
  return std::string_view(reinterpret_cast<const char*>(generated::kModuleText), generated::kModuleSize);
}

std::string_view module_version() { return generated::kModuleVersion; }

}  // namespace wincert::certstore
