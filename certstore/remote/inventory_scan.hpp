// A pull scanner over what store-inventory prints: it finds the top-level object's Certificates array and
// hands out the text of one element per call, so that a store of 10,000 certificates is never a JSON tree
// (nor a list of decoded entries) in memory: the text plus one element.
//
// Only the plain shape is scanned: one JSON object (whitespace around it), its Certificates member an
// array or null, every key written without escapes, no `error` member and no repeated Certificates key.
// Anything else (stray lines before the document, PowerShell's ETS wrapper or a bare object, text after
// the document, a value too deep, ...) is refused by open(), and the caller reads the text whole, so that
// unusual output is interpreted exactly as before. Members other than Certificates are checked as JSON
// here (each parsed alone: they are small); the elements are checked by whoever parses them.
#pragma once

#include "common/peer_json.hpp"
#include "common/result.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace wincert::certstore::remote {

class InventoryScan {
 public:
  // Takes the text (moved out of `text`) when it has the plain shape; otherwise nothing, and `text` is left
  // untouched. Limits: size, depth and object width of the whole document (peer_json_limits::kScriptOutput).
  static std::optional<InventoryScan> open(std::string& text,
                                           const PeerJsonLimits& limits = peer_json_limits::kScriptOutput);

  // The next element's text (valid until the next call), nothing after the last. An Error (invalid_argument)
  // when the text is damaged before the array ends (truncated output, a bad token, nesting too deep): the
  // message names the entry and the byte, never the text.
  Result<std::optional<std::string_view>> next();

  // Elements handed out so far (the last one's number in "entry N").
  std::size_t elements_read() const { return elements_; }

  // Depth left to an element (the object and the array around it use two levels of the limit).
  std::size_t element_max_depth() const { return limits_.max_depth > 2 ? limits_.max_depth - 2 : 0; }

 private:
  InventoryScan(std::string text, const PeerJsonLimits& limits) : text_(std::move(text)), limits_(limits) {}

  std::string text_;
  PeerJsonLimits limits_;
  std::size_t pos_ = 0;           // where the next element (or the array's end) starts, whitespace included
  std::size_t array_end_ = 0;     // one past the array's ']', when open() found it
  bool array_end_known_ = false;  // false: the array is not closed as far as open() could tell (next() errs)
  bool done_ = true;              // no array (null or missing) or its end was reached
  std::size_t elements_ = 0;
  std::optional<Error> failed_;  // once damaged, every later next() says so again
};

}  // namespace wincert::certstore::remote
