#include "common/peer_json.hpp"

#include <gtest/gtest.h>

#include <string>

#include "tests/support/result_matchers.hpp"

namespace wincert {
namespace {

std::string nested(std::size_t depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

TEST(PeerJsonTest, ParsesOrdinaryDocumentsAndSkipsABom) {
  auto doc = parse_peer_json("\xEF\xBB\xBF{\"a\": [1, {\"b\": \"[[[{{{\\\"\"}]}", {}, "the test document");
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  EXPECT_EQ((*doc)["a"][1]["b"], "[[[{{{\"");
}

TEST(PeerJsonTest, DepthIsLimitedBeforeAnyValueIsBuilt) {
  PeerJsonLimits limits;
  EXPECT_TRUE(parse_peer_json(nested(64), limits, "x").ok());
  auto deep = parse_peer_json(nested(65), limits, "the Register reply from https://kf/Session/Register");
  ASSERT_FALSE(deep.ok());
  EXPECT_THAT(deep, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(deep.error().message.find("the Register reply from https://kf/Session/Register"), std::string::npos);
  EXPECT_NE(deep.error().message.find("deeper than 64"), std::string::npos);
  // The audit's case: 70,000 levels (about 140 KB) of objects and arrays; never recursed into.
  std::string hostile;
  for (int i = 0; i < 70000; ++i) hostile += (i % 2) ? "[" : "{\"a\":";
  EXPECT_FALSE(parse_peer_ordered_json(hostile, limits, "x").ok());
  // Brackets inside strings (with escaped quotes) do not count.
  std::string in_string = "[\"" + std::string(1000, '[') + "\\\"" + std::string(1000, '{') + "\"]";
  EXPECT_TRUE(parse_peer_json(in_string, limits, "x").ok());
}

TEST(PeerJsonTest, SizeAndObjectWidthAreLimited) {
  PeerJsonLimits limits;
  limits.max_bytes = 100;
  auto big = parse_peer_json("[" + std::string(200, ' ') + "]", limits, "the job configuration");
  // A peer over a size limit: invalid input, not a transient shortage (retrying would not help).
  EXPECT_THAT(big, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(big.error().message.find("the job configuration is 202 bytes"), std::string::npos) << big.error().message;

  limits = PeerJsonLimits{};
  limits.max_object_members = 10;
  std::string wide = "{";
  for (int i = 0; i < 11; ++i) wide += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":1";
  wide += "}";
  EXPECT_THAT(parse_peer_ordered_json(wide, limits, "x"), HasCode(ErrorCode::kInvalidArgument));
  // Arrays are not capped by width (their elements append in constant time).
  std::string long_array = "[0";
  for (int i = 0; i < 5000; ++i) long_array += ",0";
  long_array += "]";
  EXPECT_TRUE(parse_peer_json(long_array, limits, "x").ok());
}

TEST(PeerJsonTest, SyntaxErrorsNameTheSourceAndByteNeverTheText) {
  auto bad = parse_peer_json("{\"Password\": \"hunter2\" oops}", {}, "the completion reply");
  EXPECT_THAT(bad, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(bad.error().message.find("the completion reply is not valid JSON: syntax error at byte"),
            std::string::npos);
  EXPECT_EQ(bad.error().message.find("hunter2"), std::string::npos);
  EXPECT_FALSE(parse_peer_json("", {}, "x").ok());
  EXPECT_FALSE(parse_peer_json("]]]]", {}, "x").ok());  // unbalanced closers: the parser's error, no underflow
}

}  // namespace
}  // namespace wincert
