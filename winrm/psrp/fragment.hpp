// MS-PSRP fragments (reference psrp.md §2.1, §2.4, §2.5): every PSRP message travels as one or more
// fragments, each a 21-byte big-endian header followed by a slice of the message. Pure code, no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.hpp"

namespace wincert::winrm::psrp {

inline constexpr std::size_t kFragmentHeaderSize = 21;
inline constexpr std::uint8_t kFragmentStart = 0x01;
inline constexpr std::uint8_t kFragmentEnd = 0x02;
// OutOfProc default (PowerShell's BaseTransportManager.DefaultFragmentSize), a safe size for any transport.
inline constexpr std::size_t kDefaultMaxFragmentSize = 32 * 1024;

struct Fragment {
  std::uint64_t object_id = 0;
  std::uint64_t fragment_id = 0;
  bool start = false;
  bool end = false;
  std::string blob;
};

// The header followed by the blob.
std::string encode_fragment(const Fragment& fragment);

// Object ids, one counter per runspace pool: the pool's messages and those of all its pipelines share it,
// so every message the client sends in that pool has a distinct id (starting at 1).
class ObjectIdCounter {
 public:
  std::uint64_t next() { return ++last_; }
  std::uint64_t last() const { return last_; }

 private:
  std::uint64_t last_ = 0;
};

// WS-Man's default MaxEnvelopeSize, and the size to switch to once the server speaks protocol 2.2 or later
// (psrp.md §2.4).
inline constexpr std::size_t kWsmanDefaultMaxEnvelopeSize = 153600;
inline constexpr std::size_t kWsmanProtocol22MaxEnvelopeSize = 512000;

// The largest fragment (header included) one WS-Man Command or Send can carry, pypsrp's rule (psrp.md §2.4):
// the base64 of the fragments must fit in the envelope beside its own bytes (envelope_overhead: the size of
// the serialised envelope with an empty stream) plus 256 spare. invalid_argument when that leaves no room.
Result<std::size_t> wsman_max_fragment_size(std::size_t max_envelope_size, std::size_t envelope_overhead);

// Splits one encoded message into encoded fragments of at most max_fragment_size bytes each (header
// included), numbered 0, 1, ... under object_id. An empty message still yields one (S+E) fragment.
// invalid_argument when max_fragment_size leaves no room for data or object_id is 0.
Result<std::vector<std::string>> fragment_message(std::string_view message, std::uint64_t object_id,
                                                  std::size_t max_fragment_size);

// A pool's sending side: a fragment size and the pool's object id counter.
class Fragmenter {
 public:
  // max_fragment_size must exceed kFragmentHeaderSize (checked by fragment()).
  explicit Fragmenter(std::size_t max_fragment_size = kDefaultMaxFragmentSize) : max_size_(max_fragment_size) {}

  // The encoded fragments of one message under the next object id.
  Result<std::vector<std::string>> fragment(std::string_view message);
  // The fragment size may change during the session (WS-Man raises it once the server says protocol >= 2.2).
  void set_max_fragment_size(std::size_t size) { max_size_ = size; }
  std::size_t max_fragment_size() const { return max_size_; }
  ObjectIdCounter& ids() { return ids_; }

 private:
  std::size_t max_size_;
  ObjectIdCounter ids_;
};

// Packs encoded fragments, in order and never splitting one, into payloads of at most max_payload bytes
// (several fragments may share one WS-Man Send or OutOfProc Data packet). A fragment larger than
// max_payload gets a payload of its own.
std::vector<std::string> pack_fragments(const std::vector<std::string>& fragments, std::size_t max_payload);

struct DefragmenterLimits {
  std::size_t max_message_bytes = 16 * 1024 * 1024;  // one reassembled message
  std::size_t max_incomplete_objects = 64;           // messages started but not yet ended, at once
};

// The receiving side: takes bytes holding whole fragments (a WS-Man Stream, an OutOfProc Data packet)
// and returns the messages they complete, in the order their last fragments arrived.
//
// Errors (the spec wants the pool closed or the pipeline stopped after any of them; the defragmenter
// drops the offending object and keeps the others):
//   invalid_argument   truncated fragment, reserved flag bits set, object id 0, a fragment id out of order,
//                      an S flag on an object already started or its absence on a new one;
//   resource_exhausted a message beyond max_message_bytes, too many incomplete objects.
class Defragmenter {
 public:
  explicit Defragmenter(DefragmenterLimits limits = {}) : limits_(limits) {}

  Result<std::vector<std::string>> feed(std::string_view bytes);
  std::size_t incomplete_objects() const { return partial_.size(); }

 private:
  struct Partial {
    std::uint64_t next_fragment_id = 0;
    std::vector<std::string> pieces;  // the fragments' blobs so far
    std::size_t bytes = 0;
  };
  Status accept(Fragment&& fragment, std::vector<std::string>& complete);

  DefragmenterLimits limits_;
  std::unordered_map<std::uint64_t, Partial> partial_;
};

// Parses the fragments of `bytes` without reassembling them (for inspection and tests).
Result<std::vector<Fragment>> parse_fragments(std::string_view bytes);

}  // namespace wincert::winrm::psrp
