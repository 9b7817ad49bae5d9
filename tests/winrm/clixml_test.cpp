// CLIXML stderr decoding: the captured pypsrp streams, escapes, mixed and malformed input.
#include <gtest/gtest.h>

#include <random>

#include "protocol_test_util.hpp"
#include "winrm/clixml.hpp"

namespace wincert::winrm {
namespace {

using testutil::read_fixture;

std::string objs(const std::string& records) {
  return "<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\">" + records + "</Objs>";
}

TEST(Clixml, FixtureWithErrorDecodesToTheReadableMessage) {
  auto streams = decode_clixml(read_fixture("clixml/with_error.xml"));
  ASSERT_EQ(streams.errors.size(), 8u);
  EXPECT_TRUE(streams.warnings.empty());
  EXPECT_TRUE(streams.other_text.empty()) << streams.other_text;
  EXPECT_EQ(streams.errors[0],
            "fake : The term 'fake' is not recognized as the name of a cmdlet, function, script file, or operable "
            "program. Check ");
  EXPECT_EQ(streams.errors[7], " ");
  EXPECT_EQ(streams.error_text(),
            "fake : The term 'fake' is not recognized as the name of a cmdlet, function, script file, or operable "
            "program. Check \n"
            "the spelling of the name, or if a path was included, verify that the path is correct and try again.\n"
            "At line:1 char:1\n"
            "+ fake cmdlet\n"
            "+ ~~~~\n"
            "    + CategoryInfo          : ObjectNotFound: (fake:String) [], CommandNotFoundException\n"
            "    + FullyQualifiedErrorId : CommandNotFoundException");
  EXPECT_EQ(streams.readable_errors(), streams.error_text());
  EXPECT_TRUE(streams.has_errors());
}

TEST(Clixml, FixtureWithOnlyProgressHasNoErrorText) {
  auto streams = decode_clixml(read_fixture("clixml/with_no_errors.xml"));
  EXPECT_TRUE(streams.errors.empty());
  EXPECT_EQ(streams.error_text(), "");
  EXPECT_EQ(streams.other_text, "") << "progress records are dropped, not shown as text";
  EXPECT_EQ(streams.readable_errors(), "");
}

TEST(Clixml, CrlfMarkerAndAllStreams) {
  std::string input =
      "#< CLIXML\r\n" + objs(
                            "<S S=\"Error\">bad_x000D__x000A_</S><S S=\"warning\">careful_x000D__x000A_</S>"
                            "<S S=\"verbose\">chatty</S><S S=\"debug\">dbg</S><S S=\"Information\">info</S>"
                            "<Obj S=\"information\" RefId=\"1\"><TN RefId=\"0\"><T>System.Management.Automation."
                            "InformationRecord</T></TN><ToString>from Write-Information</ToString></Obj>"
                            "<Obj S=\"progress\" RefId=\"2\"><MS><PR N=\"Record\"><AV>x</AV></PR></MS></Obj>"
                            "<S S=\"Unknown\">dropped</S>");
  auto s = decode_clixml(input);
  EXPECT_EQ(s.errors, std::vector<std::string>{"bad"});
  EXPECT_EQ(s.warnings, std::vector<std::string>{"careful"});
  EXPECT_EQ(s.verbose, std::vector<std::string>{"chatty"});
  EXPECT_EQ(s.debug, std::vector<std::string>{"dbg"});
  EXPECT_EQ(s.information, (std::vector<std::string>{"info", "from Write-Information"}));
  EXPECT_EQ(s.other_text, "");
  EXPECT_EQ(s.error_text(), "bad");
}

TEST(Clixml, PlainTextIsKeptAsIs) {
  auto s = decode_clixml("Access is denied.\r\n");
  EXPECT_TRUE(s.errors.empty());
  EXPECT_EQ(s.other_text, "Access is denied.\r\n");
  EXPECT_EQ(s.readable_errors(), "Access is denied.");
  EXPECT_EQ(decode_clixml("").other_text, "");
}

TEST(Clixml, MixedTextAndSeveralBlocks) {
  std::string input = "warning from cmd.exe\r\n#< CLIXML\r\n" + objs("<S S=\"Error\">one_x000D__x000A_</S>") +
                      "\r\nbetween\r\n#< CLIXML\n" + objs("<S S=\"Error\">two</S><S S=\"Warning\">w</S>") + "\r\ntail";
  auto s = decode_clixml(input);
  EXPECT_EQ(s.errors, (std::vector<std::string>{"one", "two"}));
  EXPECT_EQ(s.warnings, std::vector<std::string>{"w"});
  EXPECT_EQ(s.other_text, "warning from cmd.exe\r\n\r\nbetween\r\n\r\ntail");
  EXPECT_EQ(s.error_text(), "one\ntwo");
}

TEST(Clixml, MalformedFallsBackToRawText) {
  // Truncated (no </Objs>): the raw text is kept.
  std::string truncated = "#< CLIXML\r\n<Objs><S S=\"Error\">cut off";
  auto t = decode_clixml(truncated);
  EXPECT_TRUE(t.errors.empty());
  EXPECT_EQ(t.other_text, truncated);
  // Broken XML inside a complete block.
  std::string broken = "#< CLIXML\r\n<Objs><S S=\"Error\">x</Y></Objs>";
  auto b = decode_clixml(broken);
  EXPECT_TRUE(b.errors.empty());
  EXPECT_EQ(b.other_text, broken);
  // A DOCTYPE is refused like everywhere else.
  std::string dtd = "#< CLIXML\r\n<!DOCTYPE x [<!ENTITY e \"boom\">]><Objs><S S=\"Error\">&e;</S></Objs>";
  auto d = decode_clixml(dtd);
  EXPECT_TRUE(d.errors.empty());
  EXPECT_EQ(d.other_text, dtd);
  // Marker followed by text, not a document.
  auto m = decode_clixml("#< CLIXML is what I typed");
  EXPECT_EQ(m.other_text, "#< CLIXML is what I typed");
}

TEST(Clixml, EscapesAreAllDecoded) {
  EXPECT_EQ(decode_clixml_string("a_x0009_b"), "a\tb");
  EXPECT_EQ(decode_clixml_string("_x005F_x000D_"), "_x000D_");  // a literal "_x000D_" in the original text
  EXPECT_EQ(decode_clixml_string("caf_x00E9_"), "caf\xc3\xa9");
  EXPECT_EQ(decode_clixml_string("_x20AC_"), "\xe2\x82\xac");
  EXPECT_EQ(decode_clixml_string("_xD83D__xDE00_"), "\xf0\x9f\x98\x80");  // one code point from a surrogate pair
  EXPECT_EQ(decode_clixml_string("_xd83d__xde00_"), "\xf0\x9f\x98\x80");
  // Invalid escapes stay literal.
  EXPECT_EQ(decode_clixml_string("_x00G1_"), "_x00G1_");
  EXPECT_EQ(decode_clixml_string("_x123_"), "_x123_");
  EXPECT_EQ(decode_clixml_string("_x0041"), "_x0041");
  EXPECT_EQ(decode_clixml_string("_xD83D_ alone"), "_xD83D_ alone");
  EXPECT_EQ(decode_clixml_string("_xDE00_"), "_xDE00_");
  EXPECT_EQ(decode_clixml_string("_xD83D__x0041_"), "_xD83D_A");
  EXPECT_EQ(decode_clixml_string("snake_case_x"), "snake_case_x");
  EXPECT_EQ(decode_clixml_string(""), "");
  // Inside a record, with CRLF normalised.
  auto s = decode_clixml("#< CLIXML\r\n" + objs("<S S=\"Error\">_xD83D__xDE00_ x_x005F_y_x000D__x000A_</S>"));
  EXPECT_EQ(s.errors, std::vector<std::string>{"\xf0\x9f\x98\x80 x_y"});
  // Line breaks inside a record stay.
  auto multi = decode_clixml("#< CLIXML\r\n" + objs("<S S=\"Warning\">a_x000D__x000A_b_x000A__x000D__x000A_</S>"));
  EXPECT_EQ(multi.warnings, std::vector<std::string>{"a\nb\n"});
}

TEST(Clixml, GarbageNeverThrows) {
  std::mt19937 rng(7);
  auto seed = read_fixture("clixml/with_error.xml");
  std::uniform_int_distribution<int> byte(0, 255), edits(1, 10);
  for (int i = 0; i < 2000; ++i) {
    std::string input = seed;
    std::uniform_int_distribution<std::size_t> pos(0, input.size() - 1);
    for (int e = edits(rng); e > 0; --e) input[pos(rng)] = static_cast<char>(byte(rng));
    auto s = decode_clixml(input);
    (void)s.error_text();
    EXPECT_TRUE(s.has_errors() || !s.other_text.empty()) << "input must come back as records or raw text";
  }
}

}  // namespace
}  // namespace wincert::winrm
