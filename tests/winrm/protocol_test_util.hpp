// Helpers shared by the protocol tests: fixture loading and envelope inspection.
#pragma once

#include <gtest/gtest.h>
#include <pugixml.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "winrm/namespaces.hpp"
#include "winrm/xml.hpp"

namespace wincert::winrm::testutil {

inline std::string fixture_path(const std::string& relative) {
  return std::string(WINCERT_SHARED_DIR) + "/fixtures/winrm/" + relative;
}

inline std::string read_fixture(const std::string& relative) {
  std::ifstream in(fixture_path(relative), std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open fixture " << fixture_path(relative);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A parsed request envelope (ours or a recorded one) reduced to what must match.
struct RequestShape {
  std::string action;
  std::string message_id;
  std::string resource_uri;
  std::string operation_timeout;
  std::vector<std::string> header_elements;  // local names of the Header children, sorted
  std::vector<std::pair<std::string, std::string>> selectors;
  std::vector<std::pair<std::string, std::string>> options;
  // Body in document order: "depth:ns|local[@attr=value...]=text" per element.
  std::vector<std::string> body;
};

inline void describe_body(const pugi::xml_node& node, int depth, std::vector<std::string>& out) {
  for (auto c = node.first_child(); c; c = c.next_sibling()) {
    if (c.type() != pugi::node_element) continue;
    std::string line =
        std::to_string(depth) + ":" + std::string(xml::namespace_uri(c)) + "|" + std::string(xml::local_name(c));
    std::vector<std::string> attrs;
    for (auto a = c.first_attribute(); a; a = a.next_attribute()) {
      std::string_view name = a.name();
      if (name == "xmlns" || name.substr(0, 6) == "xmlns:") continue;
      attrs.push_back("@" + std::string(xml::local_name(a)) + "=" + a.value());
    }
    std::sort(attrs.begin(), attrs.end());
    for (auto& a : attrs) line += a;
    line += "=" + xml::text(c);
    out.push_back(line);
    describe_body(c, depth + 1, out);
  }
}

inline RequestShape shape_of(const std::string& envelope_xml) {
  RequestShape s;
  pugi::xml_document doc;
  auto parsed = xml::parse(doc, envelope_xml);
  EXPECT_TRUE(parsed.ok()) << envelope_xml;
  if (!parsed) return s;
  auto env = doc.document_element();
  EXPECT_TRUE(xml::is(env, ns::kSoap, "Envelope"));
  auto header = xml::child(env, ns::kSoap, "Header");
  auto body = xml::child(env, ns::kSoap, "Body");
  EXPECT_TRUE(header && body);
  s.action = xml::text(xml::child(header, ns::kAddressing, "Action"));
  s.message_id = xml::text(xml::child(header, ns::kAddressing, "MessageID"));
  s.resource_uri = xml::text(xml::child(header, ns::kWsman, "ResourceURI"));
  s.operation_timeout = xml::text(xml::child(header, ns::kWsman, "OperationTimeout"));
  for (auto c = header.first_child(); c; c = c.next_sibling())
    if (c.type() == pugi::node_element) s.header_elements.emplace_back(xml::local_name(c));
  std::sort(s.header_elements.begin(), s.header_elements.end());
  for (auto sel : xml::children(xml::child(header, ns::kWsman, "SelectorSet"), ns::kWsman, "Selector"))
    s.selectors.emplace_back(xml::attribute(sel, "Name").value(), xml::text(sel));
  for (auto opt : xml::children(xml::child(header, ns::kWsman, "OptionSet"), ns::kWsman, "Option"))
    s.options.emplace_back(xml::attribute(opt, "Name").value(), xml::text(opt));
  describe_body(body, 0, s.body);
  return s;
}

}  // namespace wincert::winrm::testutil
