// Small helpers shared by the NTLM tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <iterator>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/encoding.hpp"

namespace wincert::testing {

inline Bytes from_hex(std::string_view hex) {
  Bytes out;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  int high = -1;
  for (char c : hex) {
    const int v = nibble(c);
    if (v < 0) continue;  // spaces allowed for readability
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<std::uint8_t>(high * 16 + v));
      high = -1;
    }
  }
  return out;
}

template <typename Container>
std::string to_hex(const Container& bytes) {
  return hex_lower(std::string_view(reinterpret_cast<const char*>(std::data(bytes)), std::size(bytes)));
}

inline std::string read_fixture(const std::string& relative) {
  const std::string path = std::string(WINCERT_SHARED_DIR) + "/fixtures/" + relative;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  EXPECT_TRUE(file != nullptr) << "cannot open fixture " << path;
  std::string out;
  if (!file) return out;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) out.append(buffer, n);
  return out;
}

inline std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace wincert::testing
