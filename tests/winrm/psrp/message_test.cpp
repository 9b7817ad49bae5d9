// PSRP message header: little-endian fields, .NET GUID byte order, the optional BOM, every type value.
#include "winrm/psrp/message.hpp"

#include <gtest/gtest.h>

#include <set>

#include "tests/support/result_matchers.hpp"

namespace wincert::winrm::psrp {
namespace {

std::string bytes_of(const std::array<std::uint8_t, 16>& a) { return std::string(a.begin(), a.end()); }

TEST(PsrpGuid, ParsesAndFormats) {
  auto g = Guid::parse("76056A84-51DC-4F24-9262-CA2A55464B2B");
  ASSERT_THAT(g, IsOk());
  EXPECT_EQ(g->to_string(), "76056a84-51dc-4f24-9262-ca2a55464b2b");
  EXPECT_EQ(g->to_upper_string(), "76056A84-51DC-4F24-9262-CA2A55464B2B");
  EXPECT_EQ(Guid::parse("{76056a84-51dc-4f24-9262-ca2a55464b2b}").value(), *g);
  for (auto bad : {"", "76056A84-51DC-4F24-9262-CA2A55464B2", "76056A84x51DC-4F24-9262-CA2A55464B2B",
                   "76056A84-51DC-4F24-9262-CA2A55464B2G", "{76056A84-51DC-4F24-9262-CA2A55464B2B"})
    EXPECT_THAT(Guid::parse(bad), HasCode(ErrorCode::kInvalidArgument)) << bad;
  EXPECT_TRUE(Guid{}.is_nil());
  EXPECT_FALSE(g->is_nil());
}

TEST(PsrpGuid, DotNetByteOrder) {
  // new Guid("00010203-0405-0607-0809-0a0b0c0d0e0f").ToByteArray() in .NET.
  auto g = Guid::parse("00010203-0405-0607-0809-0a0b0c0d0e0f").value();
  EXPECT_EQ(bytes_of(g.to_dotnet_bytes()), std::string("\3\2\1\0\5\4\7\6\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f", 16));
  auto wire = g.to_dotnet_bytes();
  EXPECT_EQ(Guid::from_dotnet_bytes(wire.data()), g);
}

TEST(PsrpGuid, RandomIsVersion4AndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    Guid g = Guid::random_v4();
    EXPECT_EQ(g.bytes[6] >> 4, 4);
    EXPECT_EQ(g.bytes[8] & 0xC0, 0x80);
    seen.insert(g.to_string());
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(PsrpMessage, EncodesTheHeaderAsRecorded) {
  Message m;
  m.destination = Destination::kServer;
  m.type = MessageType::kSessionCapability;
  m.runspace_pool_id = Guid::parse("76056A84-51DC-4F24-9262-CA2A55464B2B").value();
  m.data = "<Obj RefId=\"0\" />";
  std::string encoded = encode_message(m);
  ASSERT_EQ(encoded.size(), kMessageHeaderSize + m.data.size());
  EXPECT_EQ(encoded.substr(0, 8), std::string("\2\0\0\0\2\0\1\0", 8));
  EXPECT_EQ(encoded.substr(8, 16), std::string("\x84\x6a\x05\x76\xdc\x51\x24\x4f\x92\x62\xca\x2a\x55\x46\x4b\x2b", 16));
  EXPECT_EQ(encoded.substr(24, 16), std::string(16, '\0'));
  EXPECT_EQ(encoded.substr(40), m.data);

  auto decoded = decode_message(encoded);
  ASSERT_THAT(decoded, IsOk());
  EXPECT_EQ(decoded->destination, Destination::kServer);
  EXPECT_EQ(decoded->type, MessageType::kSessionCapability);
  EXPECT_EQ(decoded->runspace_pool_id, m.runspace_pool_id);
  EXPECT_TRUE(decoded->pipeline_id.is_nil());
  EXPECT_FALSE(decoded->is_pipeline_message());
  EXPECT_EQ(decoded->data, m.data);
}

TEST(PsrpMessage, BomIsOptionalOnBothSides) {
  Message m;
  m.destination = Destination::kClient;
  m.type = MessageType::kPipelineOutput;
  m.pipeline_id = Guid::random_v4();
  m.data = "<S>out</S>";
  std::string with_bom = encode_message(m, true);
  EXPECT_EQ(with_bom.substr(40, 3), "\xEF\xBB\xBF");
  auto decoded = decode_message(with_bom);
  ASSERT_THAT(decoded, IsOk());
  EXPECT_EQ(decoded->data, "<S>out</S>");
  EXPECT_EQ(decoded->pipeline_id, m.pipeline_id);
  EXPECT_TRUE(decoded->is_pipeline_message());
}

// decode_message_taking (the receive path's: the data moved, not copied) decodes exactly as decode_message.
TEST(PsrpMessage, DecodingByTakingTheBytesGivesTheSameMessage) {
  Message m;
  m.destination = Destination::kClient;
  m.type = MessageType::kPipelineOutput;
  m.runspace_pool_id = Guid::random_v4();
  m.pipeline_id = Guid::random_v4();
  m.data = "<S>" + std::string(100000, 'x') + "</S>";
  for (bool bom : {false, true}) {
    const std::string encoded = encode_message(m, bom);
    auto copied = decode_message(encoded);
    auto taken = decode_message_taking(std::string(encoded));
    ASSERT_THAT(copied, IsOk());
    ASSERT_THAT(taken, IsOk());
    EXPECT_EQ(taken->data, copied->data);
    EXPECT_EQ(taken->type, copied->type);
    EXPECT_EQ(taken->destination, copied->destination);
    EXPECT_EQ(taken->runspace_pool_id, copied->runspace_pool_id);
    EXPECT_EQ(taken->pipeline_id, copied->pipeline_id);
  }
  EXPECT_THAT(decode_message_taking(std::string(39, '\0')), HasCode(ErrorCode::kInvalidArgument));
  std::string bad(40, '\0');
  bad[0] = 3;
  EXPECT_THAT(decode_message_taking(std::move(bad)), HasCode(ErrorCode::kInvalidArgument));
}

TEST(PsrpMessage, RefusesShortInputAndBadDestination) {
  EXPECT_THAT(decode_message(std::string(39, '\0')), HasCode(ErrorCode::kInvalidArgument));
  std::string bad(40, '\0');
  EXPECT_THAT(decode_message(bad), HasCode(ErrorCode::kInvalidArgument));
  bad[0] = 3;
  EXPECT_THAT(decode_message(bad), HasCode(ErrorCode::kInvalidArgument));
  bad[0] = 1;
  bad[4] = 0x55;  // unknown types still decode: the caller decides
  auto unknown = decode_message(bad);
  ASSERT_THAT(unknown, IsOk());
  EXPECT_FALSE(is_known_message_type(static_cast<std::uint32_t>(unknown->type)));
  EXPECT_EQ(message_type_name(unknown->type), "UNKNOWN");
}

TEST(PsrpMessage, EveryTypeValueHasItsSpecName) {
  struct Case {
    std::uint32_t value;
    std::string_view name;
  };
  const Case cases[] = {{0x00010002, "SESSION_CAPABILITY"},
                        {0x00010004, "INIT_RUNSPACEPOOL"},
                        {0x00010005, "PUBLIC_KEY"},
                        {0x00010006, "ENCRYPTED_SESSION_KEY"},
                        {0x00010007, "PUBLIC_KEY_REQUEST"},
                        {0x00010008, "CONNECT_RUNSPACEPOOL"},
                        {0x00021002, "SET_MAX_RUNSPACES"},
                        {0x00021003, "SET_MIN_RUNSPACES"},
                        {0x00021004, "RUNSPACE_AVAILABILITY"},
                        {0x00021005, "RUNSPACEPOOL_STATE"},
                        {0x00021006, "CREATE_PIPELINE"},
                        {0x00021007, "GET_AVAILABLE_RUNSPACES"},
                        {0x00021008, "USER_EVENT"},
                        {0x00021009, "APPLICATION_PRIVATE_DATA"},
                        {0x0002100A, "GET_COMMAND_METADATA"},
                        {0x0002100B, "RUNSPACEPOOL_INIT_DATA"},
                        {0x0002100C, "RESET_RUNSPACE_STATE"},
                        {0x00021100, "RUNSPACEPOOL_HOST_CALL"},
                        {0x00021101, "RUNSPACEPOOL_HOST_RESPONSE"},
                        {0x00041002, "PIPELINE_INPUT"},
                        {0x00041003, "END_OF_PIPELINE_INPUT"},
                        {0x00041004, "PIPELINE_OUTPUT"},
                        {0x00041005, "ERROR_RECORD"},
                        {0x00041006, "PIPELINE_STATE"},
                        {0x00041007, "DEBUG_RECORD"},
                        {0x00041008, "VERBOSE_RECORD"},
                        {0x00041009, "WARNING_RECORD"},
                        {0x00041010, "PROGRESS_RECORD"},
                        {0x00041011, "INFORMATION_RECORD"},
                        {0x00041100, "PIPELINE_HOST_CALL"},
                        {0x00041101, "PIPELINE_HOST_RESPONSE"}};
  for (const auto& c : cases) {
    EXPECT_TRUE(is_known_message_type(c.value)) << c.name;
    EXPECT_EQ(message_type_name(static_cast<MessageType>(c.value)), c.name);
  }
  for (std::uint32_t gap = 0x0004100A; gap <= 0x0004100F; ++gap) EXPECT_FALSE(is_known_message_type(gap));
}

}  // namespace
}  // namespace wincert::winrm::psrp
