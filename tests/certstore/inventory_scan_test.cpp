#include "certstore/remote/inventory_scan.hpp"

#include "tests/support/result_matchers.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace wincert::certstore::remote {
namespace {

using nlohmann::json;

struct Scanned {
  bool opened = false;
  std::vector<std::string> elements;
  std::optional<Error> error;  // from next(), after the elements
};

Scanned scan_all(std::string text, const PeerJsonLimits& limits = peer_json_limits::kScriptOutput) {
  Scanned out;
  auto scan = InventoryScan::open(text, limits);
  if (!scan) return out;
  out.opened = true;
  while (true) {
    auto element = scan->next();
    if (!element) {
      out.error = element.error();
      // Once damaged, it stays damaged.
      auto again = scan->next();
      EXPECT_FALSE(again.ok());
      if (!again.ok()) {
        EXPECT_EQ(again.error().message, element.error().message);
      }
      return out;
    }
    if (!element->has_value()) break;
    out.elements.emplace_back(**element);
    EXPECT_EQ(scan->elements_read(), out.elements.size());
  }
  auto after_end = scan->next();  // the end stays the end
  EXPECT_TRUE(after_end.ok() && !after_end->has_value());
  return out;
}

bool refused(const std::string& text) {
  std::string copy = text;
  const bool opened = InventoryScan::open(copy).has_value();
  EXPECT_EQ(copy, text) << "a refused text is left untouched";
  return !opened;
}

TEST(InventoryScan, HandsOutEachElementOfThePlainShape) {
  const auto scanned = scan_all(
      " \r\n{\"StoreName\":\"My\",\t\"Certificates\" : [ {\"Base64\":\"QUJD\"} ,\n42,\"x\", null,[1,[2]],{}] }\r\n");
  ASSERT_TRUE(scanned.opened);
  EXPECT_FALSE(scanned.error);
  EXPECT_EQ(scanned.elements,
            (std::vector<std::string>{"{\"Base64\":\"QUJD\"}", "42", "\"x\"", "null", "[1,[2]]", "{}"}));
}

TEST(InventoryScan, TakesTheTextOnlyWhenItScansIt) {
  std::string text = R"({"Certificates":[1]})";
  auto scan = InventoryScan::open(text);
  ASSERT_TRUE(scan);
  EXPECT_TRUE(text.empty()) << "moved into the scan";
  // Short texts live inside the std::string: the scan keeps positions, not pointers.
  auto moved = std::move(*scan);
  auto first = moved.next();
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ(**first, "1");
}

TEST(InventoryScan, StringsWithEscapesQuotesAndBracketsAreOneElement) {
  const std::string tricky = R"({"FriendlyName":"a \"quoted\" ] } [ { , name \\","Base64":"\\\\","X":"\u005d\\\""})";
  ASSERT_FALSE(json::parse(tricky, nullptr, false).is_discarded());
  const auto scanned = scan_all(R"({"Certificates":[)" + tricky + "," + tricky + R"(,"]\"[{"]})");
  ASSERT_TRUE(scanned.opened);
  EXPECT_FALSE(scanned.error);
  EXPECT_EQ(scanned.elements, (std::vector<std::string>{tricky, tricky, R"("]\"[{")"}));
}

TEST(InventoryScan, EmptyArrayNullAndMissingCertificatesHaveNoElements) {
  for (const std::string text : {R"({"StoreName":"My","Certificates":[]})", R"({"Certificates":[ ]})",
                                 R"({"Certificates":null,"StoreName":"My"})", R"({"StoreName":"My"})", "{}"}) {
    SCOPED_TRACE(text);
    const auto scanned = scan_all(text);
    EXPECT_TRUE(scanned.opened);
    EXPECT_FALSE(scanned.error);
    EXPECT_TRUE(scanned.elements.empty());
  }
}

// Every shape the whole parse reads differently, or refuses with its own error, is left to it.
TEST(InventoryScan, RefusesEveryOtherShape) {
  const std::vector<std::string> others = {
      "",
      "   \r\n",
      "Access is denied.\r\n",
      "CertUtil: -csplist command completed successfully.\r\n{\"Certificates\":[]}",  // stray lines before it
      "\xEF\xBB\xBF{\"Certificates\":[]}",                                            // a byte-order mark
      "[{\"Base64\":\"QUJD\"}]",                                                      // not an object
      R"({"Certificates":{"value":[{"Base64":"QUJD"}],"Count":1}})",                  // ETS wrapper
      R"({"Certificates":{"Base64":"QUJD"}})",                                        // one bare object
      R"({"Certificates":"QUJD"})",
      R"({"Certificates":42})",
      R"({"Certificates":nul})",
      R"({"Certificates":[1],"Certificates":[2]})",  // a repeated key: the whole parse says which counts
      R"({"Certificates":[],"error":{"message":"no","category":"StoreNotFound"}})",
      R"({"error":{"message":"no"},"Certificates":[]})",
      R"({"Certificate\u0073":[1]})",  // a key with escapes
      "{\"Store\xC3\xA9\":1,\"Certificates\":[]}",
      R"({"Certificates":[]}{"Certificates":[]})",  // text after the document
      R"({"Certificates":[]} x)",
      R"({"Certificates":[],})",  // trailing comma
      R"({"StoreName" "My","Certificates":[]})",
      R"({"StoreName":"My" "Certificates":[]})",
      R"({"StoreName":tru,"Certificates":[]})",  // members other than Certificates are checked as JSON
      R"({"StoreName":01,"Certificates":[]})",
      R"({"StoreName":"a)"
      "\x01"
      R"(","Certificates":[]})",
      R"({"StoreName":{"a":1,},"Certificates":[]})",
      R"({"StoreName":[1}],"Certificates":[]})",
      R"({"Certificates":[])",  // the object is not closed
      R"({"Certificates":)",
      R"({"Certificates)",
  };
  for (const auto& text : others) {
    SCOPED_TRACE(text);
    EXPECT_TRUE(refused(text));
  }
}

TEST(InventoryScan, RefusesMoreThanTheLimitsOfScriptOutput) {
  const PeerJsonLimits small{64, 4, 3};
  std::string shallow = R"({"Certificates":[[[1]]]})";
  EXPECT_TRUE(InventoryScan::open(shallow, small).has_value());
  std::string deep = R"({"Certificates":[[[[1]]]]})";
  EXPECT_FALSE(InventoryScan::open(deep, small).has_value()) << "five levels: the whole parse's depth error";
  std::string deep_member = R"({"A":[[[[1]]]],"Certificates":[]})";
  EXPECT_FALSE(InventoryScan::open(deep_member, small).has_value());
  std::string wide = R"({"A":1,"B":2,"C":3,"Certificates":[]})";
  EXPECT_FALSE(InventoryScan::open(wide, small).has_value()) << "four members where three are accepted";
  std::string large = R"({"Certificates":[")" + std::string(64, 'A') + R"("]})";
  EXPECT_FALSE(InventoryScan::open(large, small).has_value());

  // At the real limit (64 levels): an element nested 62 deep is read, 63 deep is too deep for the document.
  const auto nested = [](int levels) { return std::string(levels, '[') + std::string(levels, ']'); };
  const std::string deepest = "{\"Certificates\":[" + nested(62) + "]}";
  const std::string too_deep = "{\"Certificates\":[" + nested(63) + "]}";
  EXPECT_TRUE(check_peer_json(deepest, peer_json_limits::kScriptOutput, "output").ok());
  EXPECT_FALSE(check_peer_json(too_deep, peer_json_limits::kScriptOutput, "output").ok());
  EXPECT_TRUE(scan_all(deepest).opened);
  EXPECT_TRUE(refused(too_deep));
  EXPECT_TRUE(refused("{\"Certificates\":[1," + nested(100000) + "]}"));
}

TEST(InventoryScan, TruncatedArrayIsAnErrorAfterTheGoodElements) {
  const std::string whole = R"({"Certificates":[{"Base64":"QUJD"},{"Base64":"REVG"},{"Base64":"R0hJ"}]})";
  const auto cut_in_third = whole.substr(0, whole.find("R0h"));
  const auto scanned = scan_all(cut_in_third);
  ASSERT_TRUE(scanned.opened);
  EXPECT_EQ(scanned.elements.size(), 2u);
  ASSERT_TRUE(scanned.error);
  EXPECT_THAT(*scanned.error, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_EQ(scanned.error->message,
            "the script's output ends inside entry 3 (truncated at byte " + std::to_string(cut_in_third.size()) + ")");

  const auto cut_after_second = whole.substr(0, whole.find(",{\"Base64\":\"R0h"));
  const auto at_comma = scan_all(cut_after_second);
  EXPECT_EQ(at_comma.elements.size(), 2u);
  ASSERT_TRUE(at_comma.error);
  EXPECT_NE(at_comma.error->message.find("ends inside the certificate list after entry 2"), std::string::npos);

  const auto opened_only = scan_all(R"({"Certificates":[)");
  ASSERT_TRUE(opened_only.error);
  EXPECT_NE(opened_only.error->message.find("before entry 1"), std::string::npos);

  // Every cut inside the array: the elements before it, then an Error; never a crash or a silent end.
  for (std::size_t cut = whole.find('[') + 1; cut < whole.size() - 1; ++cut) {
    SCOPED_TRACE(cut);
    const auto partial = scan_all(whole.substr(0, cut));
    ASSERT_TRUE(partial.opened);
    EXPECT_TRUE(partial.error);
    EXPECT_LE(partial.elements.size(), 3u);
  }
}

TEST(InventoryScan, BadTokensBetweenElementsAreErrorsNamingTheEntry) {
  const auto missing_comma = scan_all(R"({"Certificates":[{"a":1} {"a":2}]})");
  EXPECT_EQ(missing_comma.elements.size(), 1u);
  ASSERT_TRUE(missing_comma.error);
  EXPECT_EQ(missing_comma.error->message, "the script's output is not valid JSON after entry 1 (at byte 25)");

  const auto trailing_comma = scan_all(R"({"Certificates":[{"a":1},]})");
  EXPECT_EQ(trailing_comma.elements.size(), 1u);
  ASSERT_TRUE(trailing_comma.error);
  EXPECT_EQ(trailing_comma.error->message, "the script's output is not valid JSON in entry 2 (at byte 25)");

  const auto mismatched = scan_all(R"({"Certificates":[{"a":1},{"a":[2}],{"a":3}]})");
  EXPECT_EQ(mismatched.elements.size(), 1u);
  ASSERT_TRUE(mismatched.error);
  EXPECT_NE(mismatched.error->message.find("in entry 2"), std::string::npos);

  const auto wrong_close = scan_all(R"({"Certificates":[1,2}})");
  EXPECT_EQ(wrong_close.elements.size(), 2u);
  EXPECT_TRUE(wrong_close.error);

  // A token inside an element is the element parser's to check: the scanner hands out its text.
  const auto inside = scan_all(R"({"Certificates":[{"a":tru}]})");
  EXPECT_FALSE(inside.error);
  EXPECT_EQ(inside.elements, std::vector<std::string>{R"({"a":tru})"});
}

TEST(InventoryScan, ErrorsNameBytesNeverTheText) {
  const auto scanned = scan_all(R"({"Certificates":[{"Password":"hunter2-secret"} "hunter2-secret"]})");
  ASSERT_TRUE(scanned.error);
  EXPECT_EQ(scanned.error->message.find("hunter2"), std::string::npos);
}

}  // namespace
}  // namespace wincert::certstore::remote
