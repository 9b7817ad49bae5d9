// Small text helpers for error messages about what a peer sent.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace wincert {

// At most max_chars printable characters of a peer's text (runs of control characters become one space),
// for error messages that say what the peer sent; "..." when cut, "(empty body)" when nothing printable.
std::string printable_excerpt(std::string_view text, std::size_t max_chars = 100);
// "30 s" for whole seconds, else "1500 ms": how timeouts read in messages.
std::string duration_text(std::chrono::milliseconds d);

}  // namespace wincert
