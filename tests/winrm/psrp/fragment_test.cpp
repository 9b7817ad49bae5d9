// PSRP fragments: header layout, fragmenting, packing, and every defragmenter limit and consistency check.
#include "winrm/psrp/fragment.hpp"

#include <gtest/gtest.h>

#include "tests/support/result_matchers.hpp"

namespace wincert::winrm::psrp {
namespace {

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += p;
  return out;
}

std::string fragment(std::uint64_t object_id, std::uint64_t fragment_id, bool start, bool end, std::string blob) {
  return encode_fragment(Fragment{object_id, fragment_id, start, end, std::move(blob)});
}

TEST(PsrpFragment, HeaderIsBigEndianAsRecorded) {
  // The first recorded creationXml fragment: object 1, fragment 0, S+E, 199 bytes (psrp.md §2.1).
  std::string encoded = fragment(1, 0, true, true, std::string(199, 'x'));
  ASSERT_EQ(encoded.size(), 21u + 199u);
  EXPECT_EQ(encoded.substr(0, 21), std::string("\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0\0\3\0\0\0\xc7", 21));
  std::string big = fragment(0x0102030405060708ull, 0x1112131415161718ull, false, true, "");
  EXPECT_EQ(big.substr(0, 21), std::string("\1\2\3\4\5\6\7\x08\x11\x12\x13\x14\x15\x16\x17\x18\2\0\0\0\0", 21));
}

TEST(PsrpFragment, SplitsToTheSizeAndReassembles) {
  std::string message(10000, '\0');
  for (std::size_t i = 0; i < message.size(); ++i) message[i] = static_cast<char>(i * 7);
  for (std::size_t size : {22u, 100u, 1021u, 9999u, 10021u, 65536u}) {
    auto parts = fragment_message(message, 5, size);
    ASSERT_THAT(parts, IsOk());
    std::size_t blob = size - kFragmentHeaderSize;
    EXPECT_EQ(parts->size(), (message.size() + blob - 1) / blob) << size;
    for (const auto& p : *parts) EXPECT_LE(p.size(), size);
    auto parsed = parse_fragments(join(*parts));
    ASSERT_THAT(parsed, IsOk());
    for (std::size_t i = 0; i < parsed->size(); ++i) {
      EXPECT_EQ((*parsed)[i].object_id, 5u);
      EXPECT_EQ((*parsed)[i].fragment_id, i);
      EXPECT_EQ((*parsed)[i].start, i == 0);
      EXPECT_EQ((*parsed)[i].end, i + 1 == parsed->size());
    }
    Defragmenter d;
    auto messages = d.feed(join(*parts));
    ASSERT_THAT(messages, IsOk());
    ASSERT_EQ(messages->size(), 1u);
    EXPECT_EQ(messages->front(), message);
    EXPECT_EQ(d.incomplete_objects(), 0u);
  }
}

TEST(PsrpFragment, EmptyMessageIsOneStartEndFragment) {
  auto parts = fragment_message("", 3, 100);
  ASSERT_THAT(parts, IsOk());
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ(parts->front(), fragment(3, 0, true, true, ""));
  Defragmenter d;
  auto messages = d.feed(parts->front());
  ASSERT_THAT(messages, IsOk());
  ASSERT_EQ(messages->size(), 1u);
  EXPECT_TRUE(messages->front().empty());
}

TEST(PsrpFragment, RefusesASizeWithoutRoomAndObjectIdZero) {
  EXPECT_THAT(fragment_message("abc", 1, 21), HasCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(fragment_message("abc", 0, 100), HasCode(ErrorCode::kInvalidArgument));
  Fragmenter tiny(10);
  EXPECT_THAT(tiny.fragment("abc"), HasCode(ErrorCode::kInvalidArgument));
}

TEST(PsrpFragment, WsmanFragmentSizeFollowsTheEnvelopeSize) {
  // floor((MaxEnvelopeSize - (overhead + 256)) * 3 / 4), as pypsrp computes it.
  EXPECT_EQ(wsman_max_fragment_size(kWsmanDefaultMaxEnvelopeSize, 1410).value(), 113950u);
  EXPECT_EQ(wsman_max_fragment_size(kWsmanProtocol22MaxEnvelopeSize, 1410).value(), 382750u);
  EXPECT_EQ(wsman_max_fragment_size(32 * 1024, 1411).value(), 23325u);
  EXPECT_THAT(wsman_max_fragment_size(1000, 900), HasCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(wsman_max_fragment_size(1000, 1000), HasCode(ErrorCode::kInvalidArgument));
}

TEST(PsrpFragment, FragmenterNumbersObjectsPerPool) {
  Fragmenter f(64);
  for (std::uint64_t expected = 1; expected <= 3; ++expected) {
    auto parts = f.fragment("message");
    ASSERT_THAT(parts, IsOk());
    auto parsed = parse_fragments(parts->front());
    ASSERT_THAT(parsed, IsOk());
    EXPECT_EQ(parsed->front().object_id, expected);
  }
  EXPECT_EQ(f.ids().last(), 3u);
}

TEST(PsrpFragment, PacksWholeFragmentsInOrder) {
  std::vector<std::string> fragments = {std::string(40, 'a'), std::string(30, 'b'), std::string(50, 'c'),
                                        std::string(200, 'd'), std::string(10, 'e')};
  auto payloads = pack_fragments(fragments, 100);
  ASSERT_EQ(payloads.size(), 4u);
  EXPECT_EQ(payloads[0], fragments[0] + fragments[1]);
  EXPECT_EQ(payloads[1], fragments[2]);
  EXPECT_EQ(payloads[2], fragments[3]);  // larger than a payload: alone
  EXPECT_EQ(payloads[3], fragments[4]);
}

TEST(PsrpFragment, InterleavedObjectsCompleteInEndOrder) {
  Defragmenter d;
  std::string bytes = fragment(1, 0, true, false, "A1") + fragment(2, 0, true, false, "B1") +
                      fragment(2, 1, false, true, "B2") + fragment(3, 0, true, true, "C") +
                      fragment(1, 1, false, false, "A2");
  auto first = d.feed(bytes);
  ASSERT_THAT(first, IsOk());
  EXPECT_EQ(*first, (std::vector<std::string>{"B1B2", "C"}));
  EXPECT_EQ(d.incomplete_objects(), 1u);
  auto second = d.feed(fragment(1, 2, false, true, "A3"));
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(*second, std::vector<std::string>{"A1A2A3"});
  EXPECT_EQ(d.incomplete_objects(), 0u);
}

TEST(PsrpFragment, TruncatedInputIsRefused) {
  std::string f = fragment(1, 0, true, true, "hello");
  EXPECT_THAT(Defragmenter().feed(f.substr(0, 20)), HasCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(Defragmenter().feed(f.substr(0, f.size() - 1)), HasCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(parse_fragments(f + "x"), HasCode(ErrorCode::kInvalidArgument));
}

TEST(PsrpFragment, ReservedFlagsAndObjectIdZeroAreRefused) {
  std::string f = fragment(1, 0, true, true, "x");
  f[16] = '\x07';
  EXPECT_THAT(Defragmenter().feed(f), HasCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(Defragmenter().feed(fragment(0, 0, true, true, "x")), HasCode(ErrorCode::kInvalidArgument));
}

TEST(PsrpFragment, FragmentIdsMustAscendFromZero) {
  Defragmenter start_not_zero;
  EXPECT_THAT(start_not_zero.feed(fragment(1, 1, true, true, "x")), HasCode(ErrorCode::kInvalidArgument));

  Defragmenter skipped;
  ASSERT_THAT(skipped.feed(fragment(1, 0, true, false, "a")), IsOk());
  EXPECT_THAT(skipped.feed(fragment(1, 2, false, true, "c")), HasCode(ErrorCode::kInvalidArgument));
  EXPECT_EQ(skipped.incomplete_objects(), 0u);  // the broken object is dropped

  Defragmenter repeated;
  ASSERT_THAT(repeated.feed(fragment(1, 0, true, false, "a")), IsOk());
  ASSERT_THAT(repeated.feed(fragment(1, 1, false, false, "b")), IsOk());
  EXPECT_THAT(repeated.feed(fragment(1, 1, false, true, "b")), HasCode(ErrorCode::kInvalidArgument));
}

TEST(PsrpFragment, StartAndEndFlagsMustBeConsistent) {
  Defragmenter no_start;
  EXPECT_THAT(no_start.feed(fragment(4, 0, false, true, "x")), HasCode(ErrorCode::kInvalidArgument));
  Defragmenter restarted;
  ASSERT_THAT(restarted.feed(fragment(4, 0, true, false, "x")), IsOk());
  EXPECT_THAT(restarted.feed(fragment(4, 0, true, false, "x")), HasCode(ErrorCode::kInvalidArgument));
  // After an error the next message of another object still reassembles.
  auto later = restarted.feed(fragment(5, 0, true, true, "y"));
  ASSERT_THAT(later, IsOk());
  EXPECT_EQ(*later, std::vector<std::string>{"y"});
}

TEST(PsrpFragment, MessageSizeLimit) {
  DefragmenterLimits limits;
  limits.max_message_bytes = 100;
  Defragmenter exact(limits);
  auto ok = exact.feed(join(fragment_message(std::string(100, 'a'), 1, 51).value()));
  ASSERT_THAT(ok, IsOk());
  EXPECT_EQ(ok->front().size(), 100u);

  Defragmenter one_over(limits);
  EXPECT_THAT(one_over.feed(join(fragment_message(std::string(101, 'a'), 1, 51).value())),
              HasCode(ErrorCode::kResourceExhausted));
  EXPECT_EQ(one_over.incomplete_objects(), 0u);
  Defragmenter single(limits);
  EXPECT_THAT(single.feed(fragment(1, 0, true, true, std::string(101, 'a'))), HasCode(ErrorCode::kResourceExhausted));
}

TEST(PsrpFragment, IncompleteObjectLimit) {
  DefragmenterLimits limits;
  limits.max_incomplete_objects = 3;
  Defragmenter d(limits);
  for (std::uint64_t id = 1; id <= 3; ++id) ASSERT_THAT(d.feed(fragment(id, 0, true, false, "x")), IsOk());
  EXPECT_THAT(d.feed(fragment(4, 0, true, false, "x")), HasCode(ErrorCode::kResourceExhausted));
  // Whole messages need no slot, and finishing one frees a slot.
  EXPECT_THAT(d.feed(fragment(5, 0, true, true, "x")), IsOk());
  ASSERT_THAT(d.feed(fragment(1, 1, false, true, "y")), IsOk());
  EXPECT_THAT(d.feed(fragment(6, 0, true, false, "x")), IsOk());
  EXPECT_EQ(d.incomplete_objects(), 3u);
}

}  // namespace
}  // namespace wincert::winrm::psrp
