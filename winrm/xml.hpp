// Namespace-aware reading of SOAP documents on top of pugixml (which itself ignores namespaces).
// Elements are matched by (namespace URI, local name), so `s:`, `env:` and `SOAP-ENV:` all work.
#pragma once

#include <pugixml.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace wincert::winrm::xml {

// Largest document we agree to parse (the transport limits bodies before this too).
inline constexpr std::size_t kMaxDocumentBytes = 16 * 1024 * 1024;

// Parses untrusted XML. A DOCTYPE (and so any DTD or entity declaration) is refused outright;
// only the five predefined entities and character references are decoded.
Result<void> parse(pugi::xml_document& doc, std::string_view text);

std::string_view local_name(const pugi::xml_node& node);
std::string_view local_name(const pugi::xml_attribute& attr);
// The namespace URI of an element, resolved through the xmlns declarations of it and its ancestors.
std::string_view namespace_uri(const pugi::xml_node& node);

bool is(const pugi::xml_node& node, std::string_view ns, std::string_view local);
// First child element with that namespace and local name (empty node when none).
pugi::xml_node child(const pugi::xml_node& parent, std::string_view ns, std::string_view local);
std::vector<pugi::xml_node> children(const pugi::xml_node& parent, std::string_view ns, std::string_view local);
// First descendant element (depth-first, document order) with that namespace and local name.
pugi::xml_node descendant(const pugi::xml_node& root, std::string_view ns, std::string_view local);
// Attribute by local name, ignoring any prefix ("s:mustUnderstand" and "mustUnderstand" both match).
pugi::xml_attribute attribute(const pugi::xml_node& node, std::string_view local);

// Text content of an element with surrounding whitespace trimmed (OMI pads values with newlines).
std::string text(const pugi::xml_node& node);
// All descendant text concatenated, trimmed (for messages containing nested elements).
std::string all_text(const pugi::xml_node& node);

// Escapes text for element content or attribute values.
std::string escape(std::string_view text);

}  // namespace wincert::winrm::xml
