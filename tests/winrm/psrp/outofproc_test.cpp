// The OutOfProc packet codec: round trips, PowerShell's own lines, malformed lines and limits.
#include "winrm/psrp/outofproc.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/support/result_matchers.hpp"
#include "winrm/psrp/byte_stream.hpp"

namespace wincert::winrm::psrp {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view kPipeline = "0b9c6a04-1f2e-4d3c-9a8b-7c6d5e4f3a2b";

TEST(OutOfProcCodec, EncodesDataAsPowerShellWritesIt) {
  auto line = encode_packet(OutOfProcPacket::data(std::string(kPoolPsGuid), "\x01\x02\x03hello"));
  ASSERT_THAT(line, IsOk());
  EXPECT_EQ(*line, "<Data Stream='Default' PSGuid='00000000-0000-0000-0000-000000000000'>AQIDaGVsbG8=</Data>");
}

TEST(OutOfProcCodec, EncodesEveryEmptyPacketSelfClosed) {
  const std::pair<PacketKind, std::string_view> cases[] = {
      {PacketKind::kDataAck, "DataAck"},       {PacketKind::kCommand, "Command"},
      {PacketKind::kCommandAck, "CommandAck"}, {PacketKind::kClose, "Close"},
      {PacketKind::kCloseAck, "CloseAck"},     {PacketKind::kSignal, "Signal"},
      {PacketKind::kSignalAck, "SignalAck"},
  };
  for (const auto& [kind, name] : cases) {
    auto line = encode_packet(OutOfProcPacket::of_kind(kind, "0B9C6A04-1F2E-4D3C-9A8B-7C6D5E4F3A2B"));
    ASSERT_THAT(line, IsOk());
    EXPECT_EQ(*line, "<" + std::string(name) + " PSGuid='" + std::string(kPipeline) + "' />");  // lower-cased
  }
}

TEST(OutOfProcCodec, RoundTripsEveryKindAndStream) {
  std::string binary;
  for (int i = 0; i < 256; ++i) binary += static_cast<char>(i);
  const OutOfProcPacket packets[] = {
      OutOfProcPacket::data(std::string(kPipeline), binary),
      OutOfProcPacket::data(std::string(kPoolPsGuid), "answer", DataStream::kPromptResponse),
      OutOfProcPacket::data(std::string(kPoolPsGuid), ""),
      OutOfProcPacket::of_kind(PacketKind::kDataAck, std::string(kPoolPsGuid)),
      OutOfProcPacket::of_kind(PacketKind::kCommand, std::string(kPipeline)),
      OutOfProcPacket::of_kind(PacketKind::kCommandAck, std::string(kPipeline)),
      OutOfProcPacket::of_kind(PacketKind::kClose, std::string(kPipeline)),
      OutOfProcPacket::of_kind(PacketKind::kCloseAck, std::string(kPoolPsGuid)),
      OutOfProcPacket::of_kind(PacketKind::kSignal, std::string(kPipeline)),
      OutOfProcPacket::of_kind(PacketKind::kSignalAck, std::string(kPipeline)),
  };
  for (const auto& packet : packets) {
    auto line = encode_packet(packet);
    ASSERT_THAT(line, IsOk());
    auto back = decode_packet(*line);
    ASSERT_THAT(back, IsOk()) << *line;
    EXPECT_EQ(back->kind, packet.kind);
    EXPECT_EQ(back->ps_guid, packet.ps_guid);
    EXPECT_EQ(back->stream, packet.stream);
    EXPECT_EQ(back->payload, packet.payload);
    EXPECT_EQ(back->for_pool(), packet.ps_guid == kPoolPsGuid);
  }
}

TEST(OutOfProcCodec, DecodesServerLinesWithCrlfDoubleQuotesAndUpperCaseGuids) {
  auto ack = decode_packet("<DataAck PSGuid='00000000-0000-0000-0000-000000000000' />\r");
  ASSERT_THAT(ack, IsOk());
  EXPECT_EQ(ack->kind, PacketKind::kDataAck);
  EXPECT_TRUE(ack->for_pool());

  auto data = decode_packet("<Data  PSGuid=\"0B9C6A04-1F2E-4D3C-9A8B-7C6D5E4F3A2B\" Stream = 'Default' >aGk=</Data >");
  ASSERT_THAT(data, IsOk());
  EXPECT_EQ(data->ps_guid, kPipeline);
  EXPECT_EQ(data->payload, "hi");

  auto close = decode_packet("<CloseAck PSGuid='0b9c6a04-1f2e-4d3c-9a8b-7c6d5e4f3a2b'></CloseAck>");
  ASSERT_THAT(close, IsOk());
  EXPECT_EQ(close->kind, PacketKind::kCloseAck);
}

TEST(OutOfProcCodec, RefusesMalformedLines) {
  const std::string_view bad[] = {
      "",
      "\r",
      "hello",
      " <DataAck PSGuid='00000000-0000-0000-0000-000000000000' />",
      "<DataAck PSGuid='00000000-0000-0000-0000-000000000000' /> ",
      "<DataAck PSGuid='00000000-0000-0000-0000-000000000000' /><DataAck PSGuid='00000000-0000-0000-0000-000000000000' "
      "/>",
      "<Dataack PSGuid='00000000-0000-0000-0000-000000000000' />",
      "<Unknown PSGuid='00000000-0000-0000-0000-000000000000' />",
      "<DataAck />",
      "<DataAck PSGuid='not-a-guid' />",
      "<DataAck PSGuid='00000000-0000-0000-0000-00000000000g' />",
      "<DataAck PSGuid='00000000-0000-0000-0000-000000000000 ' />",
      "<DataAck PSGuid=00000000-0000-0000-0000-000000000000 />",
      "<DataAck PSGuid='00000000-0000-0000-0000-000000000000\" />",
      "<DataAck PSGuid='00000000-0000-0000-0000-000000000000' PSGuid='00000000-0000-0000-0000-000000000000' />",
      "<DataAck PSGuid='00000000-0000-0000-0000-000000000000' Stream='Default' />",
      "<DataAck PSGuid='00000000-0000-0000-0000-000000000000'Extra='1' />",
      "<DataAck PSGuid='00000000-0000-0000-0000-000000000000'>text</DataAck>",
      "<DataAck PSGuid='00000000-0000-0000-0000-000000000000'>",
      "<Data PSGuid='00000000-0000-0000-0000-000000000000'>aGk=</Data>",
      "<Data Stream='Other' PSGuid='00000000-0000-0000-0000-000000000000'>aGk=</Data>",
      "<Data Stream='Default' PSGuid='00000000-0000-0000-0000-000000000000'>aGk=</DataAck>",
      "<Data Stream='Default' PSGuid='00000000-0000-0000-0000-000000000000'>aGk=",
      "<Data Stream='Default' PSGuid='00000000-0000-0000-0000-000000000000'>a Gk=</Data>",
      "<Data Stream='Default' PSGuid='00000000-0000-0000-0000-000000000000'>&amp;</Data>",
      "<Data Stream='Default' PSGuid='00000000-0000-0000-0000-000000000000'><![CDATA[aGk=]]></Data>",
      "<Data Stream='Default' PSGuid='00000000-0000-0000-0000-000000000000'>aGk</Data>",
      "<Data Stream='Default' PSGuid='&#48;0000000-0000-0000-0000-000000000000'>aGk=</Data>",
      "<!DOCTYPE x [<!ENTITY e 'a'>]>",
      "<?xml version='1.0'?><DataAck PSGuid='00000000-0000-0000-0000-000000000000' />",
      "<!-- c --><DataAck PSGuid='00000000-0000-0000-0000-000000000000' />",
      "<ps:DataAck PSGuid='00000000-0000-0000-0000-000000000000' />",
  };
  for (std::string_view line : bad) {
    EXPECT_THAT(decode_packet(line), HasCode(ErrorCode::kInvalidArgument)) << line;
  }
}

TEST(OutOfProcCodec, AMalformedLineIsQuotedShortAndPrintable) {
  const std::string line = "<Bogus>\x01" + std::string(500, 'x');
  auto result = decode_packet(line);
  ASSERT_THAT(result, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_LT(result.error().message.size(), 300u);
  EXPECT_EQ(result.error().message.find('\x01'), std::string::npos);
}

TEST(OutOfProcCodec, RefusesALineOverTheLimit) {
  auto line = encode_packet(OutOfProcPacket::data(std::string(kPoolPsGuid), std::string(3000, 'a')));
  ASSERT_THAT(line, IsOk());
  EXPECT_THAT(decode_packet(*line, line->size()), IsOk());
  EXPECT_THAT(decode_packet(*line, line->size() - 1), HasCode(ErrorCode::kResourceExhausted));
}

TEST(OutOfProcCodec, TheSshServersErrorLineIsATransportError) {
  auto result = decode_packet("__NamedPipeError__: The pipeline was stopped.\r");
  ASSERT_THAT(result, HasCode(ErrorCode::kUnavailable));
  EXPECT_THAT(result.error().message, HasSubstr("The pipeline was stopped."));
}

TEST(OutOfProcCodec, EncodingRefusesAGuidThatIsNotGuidText) {
  EXPECT_THAT(encode_packet(OutOfProcPacket::of_kind(PacketKind::kClose, "pool")), HasCode(ErrorCode::kInternal));
  EXPECT_THAT(encode_packet(OutOfProcPacket::of_kind(PacketKind::kClose, "x' /><Close PSGuid='")),
              HasCode(ErrorCode::kInternal));
}

TEST(LineBuffer, SplitsLinesAndKeepsTheRest) {
  LineBuffer buffer(10);
  buffer.append("ab\ncd");
  auto first = buffer.next_line();
  ASSERT_THAT(first, IsOk());
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ(**first, "ab");
  auto none = buffer.next_line();
  ASSERT_THAT(none, IsOk());
  EXPECT_FALSE(none->has_value());
  buffer.append("e\n\n");
  EXPECT_EQ(**buffer.next_line(), "cde");
  EXPECT_EQ(**buffer.next_line(), "");
  EXPECT_TRUE(buffer.empty());
}

TEST(LineBuffer, RefusesALineOverTheLimitBeforeItEnds) {
  LineBuffer buffer(4);
  buffer.append("abcd");
  EXPECT_THAT(buffer.next_line(), IsOk());
  buffer.append("e");
  EXPECT_THAT(buffer.next_line(), HasCode(ErrorCode::kResourceExhausted));
}

}  // namespace
}  // namespace wincert::winrm::psrp
