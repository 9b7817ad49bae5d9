#include "common/encoding.hpp"

#include <gtest/gtest.h>

using namespace wincert;

TEST(Encoding, Base64RoundTrip) {
  EXPECT_EQ(base64_encode("hi"), "aGk=");
  EXPECT_EQ(base64_encode(" again\n"), "IGFnYWluCg==");
  EXPECT_EQ(*base64_decode("IGFnYWluCg=="), " again\n");
  EXPECT_EQ(*base64_decode(" aG\nk= "), "hi");
  EXPECT_FALSE(base64_decode("a$b=").has_value());
  EXPECT_FALSE(base64_decode("aGk=aGk=").has_value());
}

// The decoder's fast path (whole groups of four) hands over to the general loop at whitespace, padding or a bad
// character anywhere: every position of them must decode as before.
TEST(Encoding, Base64DecodeHandsOverAtEveryPosition) {
  std::string data;
  for (int i = 0; i < 64; ++i) data.push_back(static_cast<char>(i * 37 + 11));
  for (std::size_t size = 0; size <= data.size(); ++size) {
    const std::string bytes = data.substr(0, size);
    const std::string encoded = base64_encode(bytes);
    ASSERT_EQ(base64_decode(encoded), bytes) << size;
    for (std::size_t at = 0; at <= encoded.size(); ++at) {
      std::string spaced = encoded;
      spaced.insert(at, "\r\n ");
      ASSERT_EQ(base64_decode(spaced), bytes) << size << " space at " << at;
      std::string bad = encoded;
      bad.insert(at, "$");
      ASSERT_FALSE(base64_decode(bad).has_value()) << size << " bad at " << at;
    }
    if (!encoded.empty() && encoded.back() == '=') {
      ASSERT_FALSE(base64_decode(encoded + "QUFB").has_value()) << size << ": data after padding";
    }
  }
}

// Canonical means "exactly what base64_encode gives": what the inventory may send to Command without re-encoding.
TEST(Encoding, CanonicalBase64IsExactlyWhatEncodingGives) {
  std::string data;
  for (int i = 0; i < 64; ++i) data.push_back(static_cast<char>(i * 53 + 7));
  for (std::size_t size = 0; size <= data.size(); ++size) {
    const std::string bytes = data.substr(0, size);
    const std::string encoded = base64_encode(bytes);
    ASSERT_TRUE(is_canonical_base64(encoded, size)) << size;
    ASSERT_FALSE(is_canonical_base64(encoded + "\n", size)) << size;
    ASSERT_FALSE(is_canonical_base64(encoded, size + 1)) << size;
    if (encoded.empty()) continue;
    std::string spaced = encoded;
    spaced.insert(spaced.size() / 2, " ");
    ASSERT_FALSE(is_canonical_base64(spaced, size)) << size;
    const auto padding = encoded.find('=');
    if (padding != std::string::npos) {
      // Decodes to the same bytes, but is not what encoding gives: no padding, or spare bits set.
      const std::string unpadded = encoded.substr(0, padding);
      ASSERT_EQ(base64_decode(unpadded), bytes) << size;
      ASSERT_FALSE(is_canonical_base64(unpadded, size)) << size;
      std::string spare = encoded;
      spare[padding - 1] = spare[padding - 1] == 'A' ? 'B' : 'A';  // flips the unused low bits of the last symbol
      if (base64_decode(spare) == bytes) {
        ASSERT_FALSE(is_canonical_base64(spare, size)) << size << " " << spare;
      }
    }
  }
  EXPECT_FALSE(is_canonical_base64("QQ=A", 1));
  EXPECT_FALSE(is_canonical_base64("Q$==", 1));
  EXPECT_TRUE(is_canonical_base64("QQ==", 1));
  EXPECT_FALSE(is_canonical_base64("QR==", 1));  // 'A' with a spare bit set: decodes, but not canonical
}

TEST(Encoding, Utf16RoundTripIncludingSurrogates) {
  const std::string text = "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80";  // héllo € 😀
  auto u16 = utf8_to_utf16le(text);
  EXPECT_EQ(u16.size(), 2u * 10u);  // 9 BMP code units + 1 surrogate pair (2 units)
  EXPECT_EQ(utf16le_to_utf8(u16), text);
  EXPECT_EQ(utf16le_to_utf8(std::string("\x00\xD8", 2)), "\xEF\xBF\xBD");  // lone surrogate
}

TEST(Encoding, UuidShape) {
  auto u = random_uuid();
  ASSERT_EQ(u.size(), 36u);
  EXPECT_EQ(u[14], '4');
  EXPECT_NE(u, random_uuid());
}
