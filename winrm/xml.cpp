#include "winrm/xml.hpp"

#include "common/encoding.hpp"
#include "winrm/namespaces.hpp"

namespace wincert::winrm::xml {

Result<void> parse(pugi::xml_document& doc, std::string_view text) {
  if (text.size() > kMaxDocumentBytes)
    return Error::invalid_argument("XML document of " + std::to_string(text.size()) + " bytes exceeds the limit of " +
                                   std::to_string(kMaxDocumentBytes));
  // parse_doctype keeps the DOCTYPE as a node so we can see it and refuse the document; pugixml never
  // expands entities declared in a DTD, but refusing is clearer than silently leaving "&xxe;" in text.
  const unsigned options = (pugi::parse_default | pugi::parse_doctype) & ~pugi::parse_wnorm_attribute;
  pugi::xml_parse_result r = doc.load_buffer(text.data(), text.size(), options, pugi::encoding_auto);
  if (!r)
    return Error::invalid_argument(std::string("malformed XML: ") + r.description() + " at byte " +
                                   std::to_string(r.offset));
  for (auto n = doc.first_child(); n; n = n.next_sibling())
    if (n.type() == pugi::node_doctype) return Error::invalid_argument("XML with a DOCTYPE/DTD is refused");
  if (!doc.document_element()) return Error::invalid_argument("XML document has no root element");
  return {};
}

std::string_view local_name(const pugi::xml_node& node) {
  std::string_view name = node.name();
  auto colon = name.find(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

std::string_view local_name(const pugi::xml_attribute& attr) {
  std::string_view name = attr.name();
  auto colon = name.find(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

std::string_view namespace_uri(const pugi::xml_node& node) {
  std::string_view name = node.name();
  auto colon = name.find(':');
  std::string attr_name =
      colon == std::string_view::npos ? std::string("xmlns") : "xmlns:" + std::string(name.substr(0, colon));
  for (auto n = node; n && n.type() == pugi::node_element; n = n.parent()) {
    if (auto a = n.attribute(attr_name.c_str())) return a.value();
  }
  if (colon != std::string_view::npos && name.substr(0, colon) == "xml") return ns::kXml;
  return {};
}

bool is(const pugi::xml_node& node, std::string_view ns, std::string_view local) {
  return node.type() == pugi::node_element && local_name(node) == local && namespace_uri(node) == ns;
}

pugi::xml_node child(const pugi::xml_node& parent, std::string_view ns, std::string_view local) {
  for (auto c = parent.first_child(); c; c = c.next_sibling())
    if (is(c, ns, local)) return c;
  return {};
}

std::vector<pugi::xml_node> children(const pugi::xml_node& parent, std::string_view ns, std::string_view local) {
  std::vector<pugi::xml_node> out;
  for (auto c = parent.first_child(); c; c = c.next_sibling())
    if (is(c, ns, local)) out.push_back(c);
  return out;
}

pugi::xml_node descendant(const pugi::xml_node& root, std::string_view ns, std::string_view local) {
  for (auto c = root.first_child(); c; c = c.next_sibling()) {
    if (c.type() != pugi::node_element) continue;
    if (is(c, ns, local)) return c;
    if (auto d = descendant(c, ns, local)) return d;
  }
  return {};
}

pugi::xml_attribute attribute(const pugi::xml_node& node, std::string_view local) {
  for (auto a = node.first_attribute(); a; a = a.next_attribute())
    if (local_name(a) == local) return a;
  return {};
}

std::string text(const pugi::xml_node& node) { return std::string(trim(node.text().get())); }

namespace {
void collect(const pugi::xml_node& node, std::string& out) {
  for (auto c = node.first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata)
      out += c.value();
    else if (c.type() == pugi::node_element)
      collect(c, out);
  }
}
}  // namespace

std::string all_text(const pugi::xml_node& node) {
  std::string out;
  collect(node, out);
  return std::string(trim(out));
}

std::string escape(std::string_view in) {
  std::string out;
  out.reserve(in.size() + 16);
  for (char c : in) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

}  // namespace wincert::winrm::xml
