// CLIXML stderr decoding (reference winrm.md §2.4; behaviour of pypsrp's sanitise_clixml).
#include "winrm/clixml.hpp"

#include <pugixml.hpp>

#include "common/encoding.hpp"
#include "winrm/xml.hpp"

namespace wincert::winrm {
namespace {

constexpr std::string_view kMarker = "#< CLIXML";
constexpr std::string_view kObjsEnd = "</Objs>";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads "_xHHHH_" at text[pos]; the UTF-16 code unit, or -1 when it is not an escape.
long escape_at(std::string_view text, std::size_t pos) {
  if (pos + 7 > text.size() || text[pos] != '_' || (text[pos + 1] != 'x' && text[pos + 1] != 'X') ||
      text[pos + 6] != '_')
    return -1;
  long v = 0;
  for (std::size_t i = pos + 2; i < pos + 6; ++i) {
    int h = hex_value(text[i]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

// The text of an element as written (not trimmed: record texts carry their own spacing).
std::string raw_text(const pugi::xml_node& node) {
  std::string out;
  for (auto c = node.first_child(); c; c = c.next_sibling())
    if (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) out += c.value();
  return out;
}

std::string normalise_newlines(std::string text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;  // CRLF -> LF
    out.push_back(text[i]);
  }
  return out;
}

std::vector<std::string>* stream_for(ClixmlStreams& out, std::string_view kind) {
  if (iequals(kind, "Error")) return &out.errors;
  if (iequals(kind, "Warning")) return &out.warnings;
  if (iequals(kind, "Verbose")) return &out.verbose;
  if (iequals(kind, "Debug")) return &out.debug;
  if (iequals(kind, "Information")) return &out.information;
  return nullptr;  // progress and anything unknown are dropped
}

// Parses one "<Objs>...</Objs>" document into `out`; false when it is not well-formed CLIXML.
bool decode_objs(std::string_view document, ClixmlStreams& out) {
  pugi::xml_document doc;
  if (!xml::parse(doc, document)) return false;
  auto root = doc.document_element();
  if (xml::local_name(root) != "Objs") return false;
  ClixmlStreams found;
  for (auto record = root.first_child(); record; record = record.next_sibling()) {
    if (record.type() != pugi::node_element) continue;
    auto* target = stream_for(found, xml::attribute(record, "S").value());
    if (!target) continue;
    std::string_view name = xml::local_name(record);
    std::string text;
    if (name == "S") {
      text = raw_text(record);
    } else if (name == "Obj") {
      // Records serialised as objects (information records) carry their display text in ToString.
      for (auto c = record.first_child(); c; c = c.next_sibling())
        if (c.type() == pugi::node_element && xml::local_name(c) == "ToString") text = raw_text(c);
    } else {
      continue;
    }
    std::string line = normalise_newlines(decode_clixml_string(text));
    if (!line.empty() && line.back() == '\n') line.pop_back();  // each record is one line; its break is implied
    target->push_back(std::move(line));
  }
  auto move_all = [](std::vector<std::string>& from, std::vector<std::string>& to) {
    for (auto& s : from) to.push_back(std::move(s));
  };
  move_all(found.errors, out.errors);
  move_all(found.warnings, out.warnings);
  move_all(found.verbose, out.verbose);
  move_all(found.debug, out.debug);
  move_all(found.information, out.information);
  return true;
}

void append_other(ClixmlStreams& out, std::string_view text) {
  // Line breaks between CLIXML blocks are separators, not text.
  if (trim(text).empty()) return;
  out.other_text.append(text);
}

}  // namespace

std::string decode_clixml_string(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    long unit = text[i] == '_' ? escape_at(text, i) : -1;
    if (unit < 0) {
      out.push_back(text[i++]);
      continue;
    }
    if (unit >= 0xD800 && unit <= 0xDBFF) {
      long low = escape_at(text, i + 7);
      if (low >= 0xDC00 && low <= 0xDFFF) {
        append_utf8(out, static_cast<char32_t>(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)));
        i += 14;
        continue;
      }
    }
    if (unit >= 0xD800 && unit <= 0xDFFF) {
      // A lone surrogate has no UTF-8 form: keep the escape as written.
      out.append(text.substr(i, 7));
      i += 7;
      continue;
    }
    append_utf8(out, static_cast<char32_t>(unit));
    i += 7;
  }
  return out;
}

namespace {

void append_escape(std::string& out, std::uint32_t unit) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out += "_x";
  for (int shift = 12; shift >= 0; shift -= 4) out.push_back(kHex[(unit >> shift) & 0xF]);
  out.push_back('_');
}

// Decodes one UTF-8 sequence at text[i]; advances i. Invalid or overlong sequences yield U+FFFD (one byte).
char32_t next_code_point(std::string_view text, std::size_t& i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char b0 = byte(i);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  std::size_t len = b0 >= 0xF0 && b0 <= 0xF4 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC2 && b0 <= 0xDF ? 2 : 0;
  if (len == 0 || i + len > text.size()) {
    ++i;
    return 0xFFFD;
  }
  char32_t cp = b0 & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
  for (std::size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++i;
    return 0xFFFD;
  }
  i += len;
  return cp;
}

}  // namespace

std::string encode_clixml_string(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t start = i;
    char32_t cp = next_code_point(text, i);
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0xFFFE || cp == 0xFFFF) {
      append_escape(out, cp);
    } else if (cp >= 0x10000) {
      append_escape(out, 0xD800 + ((cp - 0x10000) >> 10));
      append_escape(out, 0xDC00 + ((cp - 0x10000) & 0x3FF));
    } else if (cp == '_' && i < text.size() && (text[i] == 'x' || text[i] == 'X')) {
      append_escape(out, '_');
    } else if (cp == 0xFFFD && text.substr(start, i - start) != "\xEF\xBF\xBD") {
      append_utf8(out, 0xFFFD);  // an invalid byte
    } else {
      out.append(text.substr(start, i - start));
    }
  }
  return out;
}

ClixmlStreams decode_clixml(std::string_view input) {
  ClixmlStreams out;
  std::size_t pos = 0;
  while (pos < input.size()) {
    std::size_t marker = input.find(kMarker, pos);
    if (marker == std::string_view::npos) {
      append_other(out, input.substr(pos));
      break;
    }
    append_other(out, input.substr(pos, marker - pos));
    std::size_t start = input.find('<', marker + kMarker.size());
    std::size_t end = start == std::string_view::npos ? start : input.find(kObjsEnd, start);
    // Only whitespace may separate the marker from the document.
    bool adjacent = start != std::string_view::npos &&
                    trim(input.substr(marker + kMarker.size(), start - marker - kMarker.size())).empty();
    if (!adjacent || end == std::string_view::npos) {
      out.other_text.append(input.substr(marker));  // truncated or not CLIXML after all: keep the raw text
      break;
    }
    end += kObjsEnd.size();
    if (!decode_objs(input.substr(start, end - start), out)) out.other_text.append(input.substr(marker, end - marker));
    pos = end;
  }
  return out;
}

std::string ClixmlStreams::error_text() const {
  std::string joined;
  for (const auto& e : errors) {
    if (!joined.empty()) joined += '\n';
    joined += e;
  }
  return std::string(trim(joined));
}

std::string ClixmlStreams::readable_errors() const {
  if (!errors.empty()) return error_text();
  return std::string(trim(other_text));
}

}  // namespace wincert::winrm
