#include "common/text.hpp"

namespace wincert {

std::string printable_excerpt(std::string_view text, std::size_t max_chars) {
  std::string out;
  bool space = false;
  std::size_t i = 0;
  for (; i < text.size() && out.size() < max_chars; ++i) {
    const auto u = static_cast<unsigned char>(text[i]);
    if (u < 0x20 || u == 0x7f) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += text[i];
  }
  if (out.empty()) return "(empty body)";
  return i < text.size() ? out + "..." : out;
}

std::string duration_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

}  // namespace wincert
