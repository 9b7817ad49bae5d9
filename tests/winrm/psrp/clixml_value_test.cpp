// CLIXML object model: serializer and deserializer round trips, escapes, Ref/TNRef, limits, display text.
#include "winrm/psrp/clixml_value.hpp"

#include <gtest/gtest.h>

#include "tests/support/result_matchers.hpp"
#include "winrm/clixml.hpp"

namespace wincert::winrm::psrp {
namespace {

PsValue round_trip(const PsValue& v) {
  auto parsed = parse_clixml(serialize_clixml(v));
  EXPECT_THAT(parsed, IsOk()) << serialize_clixml(v);
  return parsed.ok() ? parsed.value() : PsValue();
}

TEST(PsrpClixml, EncodesStringsAsPowerShellDoes) {
  // psrpcore's COMPLEX_STRING test vector (psrp.md §4.1), minus the lone surrogate UTF-8 cannot carry.
  std::string text = "\n_x0000_ _X0000_ \xF0\x9D\x84\x9E _x001G_";
  EXPECT_EQ(encode_clixml_string(text), "_x000A__x005F_x0000_ _x005F_X0000_ _xD834__xDD1E_ _x005F_x001G_");
  EXPECT_EQ(decode_clixml_string(encode_clixml_string(text)), text);
  EXPECT_EQ(encode_clixml_string(std::string("a\0b\tc\x7f", 6)), "a_x0000_b_x0009_c_x007F_");
  EXPECT_EQ(encode_clixml_string("\xC2\x85"), "_x0085_");      // C1 control
  EXPECT_EQ(encode_clixml_string("\xEF\xBF\xBF"), "_xFFFF_");  // not a valid XML character
  EXPECT_EQ(encode_clixml_string("_ x_ _y"), "_ x_ _y");
  EXPECT_EQ(encode_clixml_string("caf\xC3\xA9 \xE2\x82\xAC"), "caf\xC3\xA9 \xE2\x82\xAC");
  EXPECT_EQ(encode_clixml_string("bad\xFF\xC3"), "bad\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(PsrpClixml, PrimitivesRoundTrip) {
  const PsValue values[] = {
      PsValue::nil(),
      PsValue::boolean(true),
      PsValue::boolean(false),
      PsValue::signed_integer(PsType::kChar, 0x263A),
      PsValue::signed_integer(PsType::kSByte, -128),
      PsValue::unsigned_integer(PsType::kByte, 255),
      PsValue::signed_integer(PsType::kInt16, -32768),
      PsValue::unsigned_integer(PsType::kUInt16, 65535),
      PsValue::int32(-2147483647 - 1),
      PsValue::uint32(4294967295u),
      PsValue::int64(-9223372036854775807 - 1),
      PsValue::unsigned_integer(PsType::kUInt64, 18446744073709551615ull),
      PsValue::text(PsType::kSingle, "1.5"),
      PsValue::text(PsType::kDouble, "-1.7976931348623157E+308"),
      PsValue::text(PsType::kDecimal, "79228162514264337593543950335"),
      PsValue::string("<a & b> \"quoted\""),
      PsValue::string(""),
      PsValue::text(PsType::kGuid, "76056a84-51dc-4f24-9262-ca2a55464b2b"),
      PsValue::text(PsType::kDateTime, "2018-06-13T23:45:29.4583203+00:00"),
      PsValue::text(PsType::kTimeSpan, "PT9.0269026S"),
      PsValue::bytes(std::string("\0\1\2\xff", 4)),
      PsValue::text(PsType::kVersion, "1.1.0.1"),
      PsValue::text(PsType::kUri, "http://example/a?b=c&d"),
      PsValue::text(PsType::kXmlDocument, "<root/>"),
      PsValue::text(PsType::kScriptBlock, "Get-Item\n$x"),
      PsValue::text(PsType::kSecureString, "AAEC"),
  };
  for (const auto& v : values) {
    PsValue back = round_trip(v);
    EXPECT_EQ(back.type(), v.type()) << serialize_clixml(v);
    EXPECT_EQ(back.as_signed(), v.as_signed());
    EXPECT_EQ(back.as_unsigned(), v.as_unsigned());
    EXPECT_EQ(back.text(), v.text());
  }
  EXPECT_EQ(serialize_clixml(PsValue::nil()), "<Nil />");
  EXPECT_EQ(serialize_clixml(PsValue::string("a\nb<")), "<S>a_x000A_b&lt;</S>");
  EXPECT_EQ(serialize_clixml(PsValue::bytes("abc")), "<BA>YWJj</BA>");
}

TEST(PsrpClixml, UnicodeAndEscapesRoundTrip) {
  std::string text = "\xF0\x9F\x98\x80 emoji, \xE4\xB8\xAD\xE6\x96\x87, _x000A_ literal, \r\n, \x01, tab\t";
  PsValue back = round_trip(PsValue::string(text));
  EXPECT_EQ(back.text(), text);
  // Surrogate pairs as the server writes them, lower or upper case hex.
  auto parsed = parse_clixml("<S>_xd83d__xDE00_ and _x005f_x</S>");
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->text(), "\xF0\x9F\x98\x80 and _x");
}

TEST(PsrpClixml, OneMegabyteStringRoundTrips) {
  std::string text;
  text.reserve(1 << 20);
  while (text.size() < (1u << 20)) text += "line of output \xE2\x82\xAC _x\n";
  PsValue back = round_trip(PsValue::string(text));
  EXPECT_EQ(back.text(), text);
}

// A cached string (escaped once, the module's text) serializes exactly as a plain one, in every copy.
TEST(PsrpClixml, ACachedStringSerializesAsAPlainOne) {
  const std::string text = "function X { '<&>' }\r\n\t_x0041_ \xE2\x82\xAC \x01" + std::string(5000, 'y');
  const PsValue cached = PsValue::cached_string(text);
  const PsValue copy = cached;
  EXPECT_EQ(serialize_clixml(copy), serialize_clixml(PsValue::string(text)));
  auto obj = std::make_shared<PsObject>();
  obj->extended.push_back({"Text", cached});
  auto plain = std::make_shared<PsObject>();
  plain->extended.push_back({"Text", PsValue::string(text)});
  EXPECT_EQ(serialize_clixml(PsValue::object(obj)), serialize_clixml(PsValue::object(plain)));
  EXPECT_EQ(round_trip(cached).text(), text);
}

// parse_clixml_taking (in place, the receive path's) reads exactly what parse_clixml reads, errors included.
TEST(PsrpClixml, ParsingInPlaceGivesTheSameValuesAndErrors) {
  const std::string big = serialize_clixml(PsValue::string(std::string(300000, 'x') + " & <escaped> \xE2\x82\xAC"));
  for (const std::string& xml :
       {big, "\xEF\xBB\xBF" + big, std::string("<I32>42</I32>"), std::string("<S> </S>"), std::string("<S>cut"),
        std::string("<!DOCTYPE x><S>a</S>"), std::string("<S>a</S><S>b</S>"), std::string("")}) {
    auto copied = parse_clixml(xml);
    auto taken = parse_clixml_taking(std::string(xml));
    ASSERT_EQ(copied.ok(), taken.ok()) << xml.substr(0, 40);
    if (copied.ok()) {
      EXPECT_EQ(taken->to_display_string(), copied->to_display_string());
    } else {
      EXPECT_EQ(taken.error().message, copied.error().message);
    }
  }
  ClixmlLimits small;
  small.max_input_bytes = 100;
  EXPECT_THAT(parse_clixml_taking(std::string(big), small), HasCode(ErrorCode::kResourceExhausted));
}

TEST(PsrpClixml, ObjectsWithTypesPropertiesAndCollections) {
  PsValue list = make_list({"System.Collections.ArrayList", "System.Object"},
                           {PsValue::int32(1), PsValue::string("two"), PsValue::nil()});
  PsValue stack = make_list({"System.Collections.Stack", "System.Object"}, {PsValue::int32(3)}, PsCollection::kStack);
  PsValue queue = make_list({"System.Collections.Queue", "System.Object"}, {PsValue::int32(4)}, PsCollection::kQueue);
  PsValue ie =
      make_list({"System.Int32[]", "System.Array", "System.Object"}, {PsValue::int32(5)}, PsCollection::kEnumerable);
  PsValue dict = make_dictionary(
      {"System.Collections.Hashtable", "System.Object"},
      {{PsValue::string("key"), PsValue::string("value")}, {PsValue::int32(7), PsValue::boolean(true)}});
  PsValue obj = make_object({"My.Type", "System.Object"});
  obj.mutable_object()->to_string = "my object";
  obj.mutable_object()
      ->add("List", list)
      .add("Stack", stack)
      .add("Queue", queue)
      .add("Enumerable", ie)
      .add("Dict", dict)
      .add("Same", list)  // shared: written as a Ref
      .add("name with _x and \n", PsValue::int32(9))
      .add_adapted("Adapted", PsValue::string("prop"));
  std::string xml = serialize_clixml(obj);
  EXPECT_NE(xml.find("<Ref N=\"Same\" RefId=\"1\" />"), std::string::npos) << xml;

  PsValue back = round_trip(obj);
  ASSERT_TRUE(back.is_object());
  const PsObject& o = *back.object();
  EXPECT_EQ(o.type_names, (std::vector<std::string>{"My.Type", "System.Object"}));
  EXPECT_EQ(o.to_string, "my object");
  EXPECT_EQ(back.string_property("Adapted"), "prop");
  EXPECT_EQ(back.int_property("name with _x and \n"), 9);
  const PsValue* l = back.property("List");
  ASSERT_TRUE(l && l->is_object());
  EXPECT_EQ(l->object()->collection, PsCollection::kList);
  ASSERT_EQ(l->object()->items.size(), 3u);
  EXPECT_EQ(l->object()->items[1].text(), "two");
  EXPECT_EQ(back.property("Same")->object(), l->object());  // the Ref resolves to the same object
  EXPECT_EQ(back.property("Stack")->object()->collection, PsCollection::kStack);
  EXPECT_EQ(back.property("Queue")->object()->collection, PsCollection::kQueue);
  EXPECT_EQ(back.property("Enumerable")->object()->collection, PsCollection::kEnumerable);
  const PsObject* d = back.property("Dict")->object();
  ASSERT_EQ(d->entries.size(), 2u);
  EXPECT_EQ(d->entries[0].key.text(), "key");
  EXPECT_EQ(d->entries[1].key.as_int64(), 7);
  EXPECT_TRUE(d->entries[1].value.as_bool());
  // Serializing what was read gives the same document.
  EXPECT_EQ(serialize_clixml(back), xml);
}

TEST(PsrpClixml, TypeNameReferencesAreShared) {
  PsValue a = make_enum("Some.Enum", "One", 1);
  PsValue b = make_enum("Some.Enum", "Two", 2);
  PsValue obj = make_object();
  obj.mutable_object()->add("A", a).add("B", b);
  std::string xml = serialize_clixml(obj);
  EXPECT_NE(xml.find("<Obj N=\"B\" RefId=\"2\"><TNRef RefId=\"0\" /><ToString>Two</ToString><I32>2</I32></Obj>"),
            std::string::npos)
      << xml;
  PsValue back = round_trip(obj);
  EXPECT_EQ(back.property("B")->object()->type_names.front(), "Some.Enum");
  EXPECT_EQ(back.property("B")->as_int64(), 2);
  EXPECT_EQ(back.property("B")->to_display_string(), "Two");
}

TEST(PsrpClixml, DisplayStrings) {
  EXPECT_EQ(PsValue::string("as is \n").to_display_string(), "as is \n");
  EXPECT_EQ(PsValue::nil().to_display_string(), "");
  EXPECT_EQ(PsValue::boolean(true).to_display_string(), "True");
  EXPECT_EQ(PsValue::boolean(false).to_display_string(), "False");
  EXPECT_EQ(PsValue::int32(-5).to_display_string(), "-5");
  EXPECT_EQ(PsValue::unsigned_integer(PsType::kUInt64, 18446744073709551615ull).to_display_string(),
            "18446744073709551615");
  EXPECT_EQ(PsValue::signed_integer(PsType::kChar, 97).to_display_string(), "a");
  EXPECT_EQ(PsValue::text(PsType::kDouble, "1.5").to_display_string(), "1.5");
  EXPECT_EQ(PsValue::text(PsType::kGuid, "76056a84-51dc-4f24-9262-ca2a55464b2b").to_display_string(),
            "76056a84-51dc-4f24-9262-ca2a55464b2b");
  auto obj = parse_clixml(
      "<Obj RefId=\"0\"><TN RefId=\"0\"><T>System.IO.FileInfo</T></TN><ToString>C:\\a.txt</ToString>"
      "<Props><S N=\"Name\">a.txt</S></Props></Obj>");
  ASSERT_THAT(obj, IsOk());
  EXPECT_EQ(obj->to_display_string(), "C:\\a.txt");
  EXPECT_TRUE(obj->has_type_name("System.IO.FileInfo"));
  auto bag = parse_clixml("<Obj RefId=\"0\"><TN RefId=\"0\"><T>Deserialized.X</T></TN><MS /></Obj>");
  ASSERT_THAT(bag, IsOk());
  EXPECT_EQ(bag->to_display_string(), "Deserialized.X");
  EXPECT_TRUE(bag->has_type_name("X"));
}

TEST(PsrpClixml, MalformedInputIsRefused) {
  for (const char* bad :
       {"", "<S>unterminated", "<I32>12x</I32>", "<I32>2147483648</I32>", "<By>256</By>", "<B>maybe</B>",
        "<BA>!!!</BA>", "<C>70000</C>", "<Ref RefId=\"0\" />", "<Obj RefId=\"0\"><TNRef RefId=\"3\" /></Obj>",
        "<Obj RefId=\"0\"><MS><S>no name</S></MS></Obj>", "<Obj RefId=\"0\"><DCT><X /></DCT></Obj>",
        "<Unknown><S>child</S></Unknown>", "<S/><S/>", "<!DOCTYPE x [<!ENTITY e \"boom\">]><S>&e;</S>"})
    EXPECT_THAT(parse_clixml(bad), HasCode(ErrorCode::kInvalidArgument)) << bad;
  // A Ref to an enclosing object would make a cycle: refused.
  EXPECT_THAT(parse_clixml("<Obj RefId=\"0\"><MS><Ref N=\"self\" RefId=\"0\" /></MS></Obj>"),
              HasCode(ErrorCode::kInvalidArgument));
  // Unknown leaf elements keep their text.
  auto unknown = parse_clixml("<Future>text</Future>");
  ASSERT_THAT(unknown, IsOk());
  EXPECT_EQ(unknown->text(), "text");
}

std::string nested_lists(int depth) {
  std::string xml;
  for (int i = 0; i < depth; ++i) xml += "<Obj RefId=\"" + std::to_string(i) + "\"><LST>";
  xml += "<I32>1</I32>";
  for (int i = 0; i < depth; ++i) xml += "</LST></Obj>";
  return xml;
}

TEST(PsrpClixml, DepthLimit) {
  ClixmlLimits limits;
  limits.max_depth = 20;
  EXPECT_THAT(parse_clixml(nested_lists(9), limits), IsOk());
  EXPECT_THAT(parse_clixml(nested_lists(11), limits), HasCode(ErrorCode::kResourceExhausted));
  // The default limit refuses very deep input without exhausting the stack.
  EXPECT_THAT(parse_clixml(nested_lists(100000)), HasCode(ErrorCode::kResourceExhausted));
}

TEST(PsrpClixml, RefsCountTowardsTheDepth) {
  // Each object holds a Ref to the previous one: shallow text, deep values.
  ClixmlLimits limits;
  limits.max_depth = 30;
  std::string xml = "<Obj RefId=\"root\"><LST><Obj RefId=\"0\"><MS><I32 N=\"v\">1</I32></MS></Obj>";
  for (int i = 1; i < 40; ++i)
    xml += "<Obj RefId=\"" + std::to_string(i) + "\"><MS><Ref N=\"prev\" RefId=\"" + std::to_string(i - 1) +
           "\" /></MS></Obj>";
  xml += "</LST></Obj>";
  EXPECT_THAT(parse_clixml(xml, limits), HasCode(ErrorCode::kResourceExhausted));
  limits.max_depth = 1000;
  EXPECT_THAT(parse_clixml(xml, limits), IsOk());
}

TEST(PsrpClixml, NodeAndSizeLimits) {
  std::string many = "<Obj RefId=\"0\"><LST>";
  for (int i = 0; i < 1000; ++i) many += "<I32>1</I32>";
  many += "</LST></Obj>";
  ClixmlLimits limits;
  limits.max_nodes = 500;
  EXPECT_THAT(parse_clixml(many, limits), HasCode(ErrorCode::kResourceExhausted));
  limits.max_nodes = 1002;
  EXPECT_THAT(parse_clixml(many, limits), IsOk());
  limits.max_input_bytes = many.size() - 1;
  EXPECT_THAT(parse_clixml(many, limits), HasCode(ErrorCode::kResourceExhausted));
}

}  // namespace
}  // namespace wincert::winrm::psrp
