// MS-PSRP fragmenting and defragmenting (reference psrp.md §2.1, §2.4, §2.5).
#include "winrm/psrp/fragment.hpp"

#include <algorithm>

namespace wincert::winrm::psrp {
namespace {

void put_be(std::string& out, std::uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

std::uint64_t get_be(std::string_view in, std::size_t pos, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(in[pos + static_cast<std::size_t>(i)]);
  return v;
}

std::string describe(const Fragment& f) {
  return "PSRP fragment " + std::to_string(f.fragment_id) + " of object " + std::to_string(f.object_id);
}

// Reads the fragment at `pos`; advances pos past it.
Result<Fragment> read_fragment(std::string_view bytes, std::size_t& pos) {
  if (bytes.size() - pos < kFragmentHeaderSize)
    return Error::invalid_argument("truncated PSRP fragment header: " + std::to_string(bytes.size() - pos) +
                                   " bytes left, 21 needed");
  Fragment f;
  f.object_id = get_be(bytes, pos, 8);
  f.fragment_id = get_be(bytes, pos + 8, 8);
  auto flags = static_cast<std::uint8_t>(bytes[pos + 16]);
  auto length = static_cast<std::size_t>(get_be(bytes, pos + 17, 4));
  if (flags & ~(kFragmentStart | kFragmentEnd))
    return Error::invalid_argument(describe(f) + " has reserved flag bits set (flags " + std::to_string(flags) +
                                   ", only 1 = start and 2 = end are defined)");
  if (f.object_id == 0) return Error::invalid_argument("PSRP fragment with object id 0");
  f.start = flags & kFragmentStart;
  f.end = flags & kFragmentEnd;
  if (bytes.size() - pos - kFragmentHeaderSize < length)
    return Error::invalid_argument(describe(f) + " is truncated: blob of " + std::to_string(length) + " bytes, " +
                                   std::to_string(bytes.size() - pos - kFragmentHeaderSize) + " present");
  f.blob.assign(bytes.substr(pos + kFragmentHeaderSize, length));
  pos += kFragmentHeaderSize + length;
  return f;
}

}  // namespace

std::string encode_fragment(const Fragment& fragment) {
  std::string out;
  out.reserve(kFragmentHeaderSize + fragment.blob.size());
  put_be(out, fragment.object_id, 8);
  put_be(out, fragment.fragment_id, 8);
  out.push_back(static_cast<char>((fragment.start ? kFragmentStart : 0) | (fragment.end ? kFragmentEnd : 0)));
  put_be(out, fragment.blob.size(), 4);
  out.append(fragment.blob);
  return out;
}

Result<std::vector<std::string>> fragment_message(std::string_view message, std::uint64_t object_id,
                                                  std::size_t max_fragment_size) {
  if (object_id == 0) return Error::invalid_argument("PSRP object id 0 is reserved");
  if (max_fragment_size <= kFragmentHeaderSize)
    return Error::invalid_argument("PSRP fragment size " + std::to_string(max_fragment_size) +
                                   " leaves no room for data after the 21-byte header");
  const std::size_t blob_size = std::min<std::size_t>(max_fragment_size - kFragmentHeaderSize, 0xFFFFFFFFu);
  std::vector<std::string> out;
  std::size_t pos = 0;
  std::uint64_t id = 0;
  do {
    Fragment f;
    f.object_id = object_id;
    f.fragment_id = id++;
    f.start = pos == 0;
    f.blob.assign(message.substr(pos, blob_size));
    pos += f.blob.size();
    f.end = pos >= message.size();
    out.push_back(encode_fragment(f));
  } while (pos < message.size());
  return out;
}

Result<std::size_t> wsman_max_fragment_size(std::size_t max_envelope_size, std::size_t envelope_overhead) {
  constexpr std::size_t kSpare = 256;
  std::size_t used = envelope_overhead + kSpare;
  std::size_t fragment = max_envelope_size > used ? (max_envelope_size - used) * 3 / 4 : 0;  // base64: 4 -> 3
  if (fragment <= kFragmentHeaderSize)
    return Error::invalid_argument("a WS-Man MaxEnvelopeSize of " + std::to_string(max_envelope_size) +
                                   " bytes leaves no room for PSRP data beside an envelope of " +
                                   std::to_string(envelope_overhead) + " bytes");
  return fragment;
}

Result<std::vector<std::string>> Fragmenter::fragment(std::string_view message) {
  if (max_size_ <= kFragmentHeaderSize) return fragment_message(message, 1, max_size_);  // reports the size error
  return fragment_message(message, ids_.next(), max_size_);
}

std::vector<std::string> pack_fragments(const std::vector<std::string>& fragments, std::size_t max_payload) {
  std::vector<std::string> payloads;
  for (const auto& f : fragments) {
    if (payloads.empty() || payloads.back().size() + f.size() > max_payload) payloads.emplace_back();
    payloads.back().append(f);
  }
  return payloads;
}

Result<std::vector<Fragment>> parse_fragments(std::string_view bytes) {
  std::vector<Fragment> out;
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    WINCERT_ASSIGN_OR_RETURN(auto f, read_fragment(bytes, pos));
    out.push_back(std::move(f));
  }
  return out;
}

Status Defragmenter::accept(Fragment&& f, std::vector<std::string>& complete) {
  auto it = partial_.find(f.object_id);
  if (f.start) {
    if (it != partial_.end()) {
      partial_.erase(it);
      return Error::invalid_argument(describe(f) + " starts an object that is already being reassembled");
    }
    if (f.fragment_id != 0) return Error::invalid_argument(describe(f) + " has the start flag but id is not 0");
    if (f.blob.size() > limits_.max_message_bytes)
      return Error::resource_exhausted(describe(f) + " exceeds the PSRP message limit of " +
                                       std::to_string(limits_.max_message_bytes) + " bytes");
    if (f.end) {
      complete.push_back(std::move(f.blob));
      return {};
    }
    if (partial_.size() >= limits_.max_incomplete_objects)
      return Error::resource_exhausted(describe(f) + ": more than " + std::to_string(limits_.max_incomplete_objects) +
                                       " PSRP messages incomplete at once");
    Partial started;
    started.next_fragment_id = 1;
    started.bytes = f.blob.size();
    started.pieces.push_back(std::move(f.blob));
    partial_.emplace(f.object_id, std::move(started));
    return {};
  }
  if (it == partial_.end()) return Error::invalid_argument(describe(f) + " continues an object that was never started");
  Partial& p = it->second;
  if (f.fragment_id != p.next_fragment_id) {
    std::string expected = std::to_string(p.next_fragment_id);
    partial_.erase(it);
    return Error::invalid_argument(describe(f) + " is out of order: expected fragment " + expected);
  }
  if (f.blob.size() > limits_.max_message_bytes - p.bytes) {
    partial_.erase(it);
    return Error::resource_exhausted(describe(f) + ": the reassembled PSRP message exceeds the limit of " +
                                     std::to_string(limits_.max_message_bytes) + " bytes");
  }
  p.bytes += f.blob.size();
  p.pieces.push_back(std::move(f.blob));
  ++p.next_fragment_id;
  if (f.end) {
    // Joined once, each piece released as it is copied: appending would hold the old and the doubled buffer
    // at every growth of a large message (an inventory's output).
    std::string message;
    message.reserve(p.bytes);
    for (auto& piece : p.pieces) {
      message += piece;
      std::string().swap(piece);
    }
    complete.push_back(std::move(message));
    partial_.erase(it);
  }
  return {};
}

Result<std::vector<std::string>> Defragmenter::feed(std::string_view bytes) {
  std::vector<std::string> complete;
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    WINCERT_ASSIGN_OR_RETURN(auto f, read_fragment(bytes, pos));
    WINCERT_TRY(accept(std::move(f), complete));
  }
  return complete;
}

}  // namespace wincert::winrm::psrp
