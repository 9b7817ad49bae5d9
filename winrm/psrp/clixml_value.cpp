// CLIXML object model, serializer and deserializer (reference psrp.md §4.1; [S 2.2.5]).
#include "winrm/psrp/clixml_value.hpp"

#include <pugixml.hpp>

#include <charconv>
#include <limits>
#include <map>
#include <unordered_map>

#include "common/encoding.hpp"
#include "winrm/clixml.hpp"

namespace wincert::winrm::psrp {
namespace {

struct TypeTag {
  PsType type;
  std::string_view tag;
};

constexpr TypeTag kTags[] = {
    {PsType::kNil, "Nil"},        {PsType::kBool, "B"},          {PsType::kChar, "C"},
    {PsType::kSByte, "SB"},       {PsType::kByte, "By"},         {PsType::kInt16, "I16"},
    {PsType::kUInt16, "U16"},     {PsType::kInt32, "I32"},       {PsType::kUInt32, "U32"},
    {PsType::kInt64, "I64"},      {PsType::kUInt64, "U64"},      {PsType::kSingle, "Sg"},
    {PsType::kDouble, "Db"},      {PsType::kDecimal, "D"},       {PsType::kString, "S"},
    {PsType::kGuid, "G"},         {PsType::kDateTime, "DT"},     {PsType::kTimeSpan, "TS"},
    {PsType::kByteArray, "BA"},   {PsType::kVersion, "Version"}, {PsType::kUri, "URI"},
    {PsType::kXmlDocument, "XD"}, {PsType::kScriptBlock, "SBK"}, {PsType::kSecureString, "SS"},
    {PsType::kObject, "Obj"},
};

std::optional<PsType> type_of_tag(std::string_view tag) {
  for (const auto& t : kTags)
    if (t.tag == tag) return t.type;
  return std::nullopt;
}

// Strings whose text is CLIXML-escaped (_xHHHH_); the other text types are plain.
bool is_escaped_text(PsType type) {
  return type == PsType::kString || type == PsType::kScriptBlock || type == PsType::kXmlDocument;
}

// Quotes are escaped only in attribute values, as .NET's XmlWriter does.
void append_xml_escaped(std::string& out, std::string_view text, bool attribute = false) {
  for (char c : text) {
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
        out += attribute ? "&quot;" : "\"";
        break;
      case '\r':
        out += "&#13;";  // a raw CR would be read back as LF
        break;
      default:
        out.push_back(c);
    }
  }
}

// ---- serializer ----

}  // namespace

// The Writer's view of a cached_string's escaped form.
class ClixmlWriterAccess {
 public:
  static const std::string* wire_text(const PsValue& v) { return v.wire_text_.get(); }
  static void set_wire_text(PsValue& v, std::string text) {
    v.wire_text_ = std::make_shared<const std::string>(std::move(text));
  }
};

namespace {

class Writer {
 public:
  std::string out;

  void value(const PsValue& v, const std::string* name) {
    if (v.is_object()) {
      object(v.object_ptr(), name);
      return;
    }
    std::string_view tag = ps_type_tag(v.type());
    open(tag, name);
    if (v.is_nil()) {
      out += " />";
      return;
    }
    out.push_back('>');
    switch (v.type()) {
      case PsType::kBool:
        out += v.as_bool() ? "true" : "false";
        break;
      case PsType::kChar:
      case PsType::kSByte:
      case PsType::kInt16:
      case PsType::kInt32:
      case PsType::kInt64:
        out += std::to_string(v.as_signed());
        break;
      case PsType::kByte:
      case PsType::kUInt16:
      case PsType::kUInt32:
      case PsType::kUInt64:
        out += std::to_string(v.as_unsigned());
        break;
      case PsType::kByteArray:
        out += base64_encode(v.text());
        break;
      default:
        if (const std::string* cached = ClixmlWriterAccess::wire_text(v)) {
          out += *cached;
          break;
        }
        append_xml_escaped(out, is_escaped_text(v.type()) ? encode_clixml_string(v.text()) : v.text());
    }
    close(tag);
  }

 private:
  std::unordered_map<const PsObject*, std::size_t> object_ids_;
  std::map<std::vector<std::string>, std::size_t> type_ids_;

  void open(std::string_view tag, const std::string* name) {
    out.push_back('<');
    out += tag;
    if (name) {
      out += " N=\"";
      append_xml_escaped(out, encode_clixml_string(*name), true);
      out.push_back('"');
    }
  }
  void close(std::string_view tag) {
    out += "</";
    out += tag;
    out.push_back('>');
  }
  void text_element(std::string_view tag, std::string_view text) {
    out.push_back('<');
    out += tag;
    out.push_back('>');
    append_xml_escaped(out, encode_clixml_string(text));
    close(tag);
  }
  void properties(std::string_view tag, const std::vector<PsProperty>& props) {
    if (props.empty()) return;
    out.push_back('<');
    out += tag;
    out.push_back('>');
    for (const auto& p : props) value(p.value, &p.name);
    close(tag);
  }

  void object(const std::shared_ptr<PsObject>& obj, const std::string* name) {
    if (!obj) {
      value(PsValue::nil(), name);
      return;
    }
    if (auto it = object_ids_.find(obj.get()); it != object_ids_.end()) {
      open("Ref", name);
      out += " RefId=\"" + std::to_string(it->second) + "\" />";
      return;
    }
    std::size_t id = object_ids_.size();
    object_ids_.emplace(obj.get(), id);
    open("Obj", name);
    out += " RefId=\"" + std::to_string(id) + "\">";
    if (!obj->type_names.empty()) {
      if (auto it = type_ids_.find(obj->type_names); it != type_ids_.end()) {
        out += "<TNRef RefId=\"" + std::to_string(it->second) + "\" />";
      } else {
        std::size_t tn = type_ids_.size();
        type_ids_.emplace(obj->type_names, tn);
        out += "<TN RefId=\"" + std::to_string(tn) + "\">";
        for (const auto& t : obj->type_names) text_element("T", t);
        out += "</TN>";
      }
    }
    if (obj->to_string) text_element("ToString", *obj->to_string);
    if (obj->base_value) value(*obj->base_value, nullptr);
    static constexpr std::string_view kCollectionTags[] = {"", "LST", "IE", "STK", "QUE", "DCT"};
    std::string_view ctag = kCollectionTags[static_cast<std::size_t>(obj->collection)];
    if (obj->collection == PsCollection::kDictionary) {
      static const std::string kKey = "Key";
      static const std::string kValue = "Value";
      out += obj->entries.empty() ? "<DCT />" : "<DCT>";
      for (const auto& e : obj->entries) {
        out += "<En>";
        value(e.key, &kKey);
        value(e.value, &kValue);
        out += "</En>";
      }
      if (!obj->entries.empty()) out += "</DCT>";
    } else if (obj->collection != PsCollection::kNone) {
      out.push_back('<');
      out += ctag;
      if (obj->items.empty()) {
        out += " />";  // as PowerShell and pypsrp write an empty collection
      } else {
        out.push_back('>');
        for (const auto& item : obj->items) value(item, nullptr);
        close(ctag);
      }
    }
    properties("Props", obj->adapted);
    properties("MS", obj->extended);
    out += "</Obj>";
  }
};

// ---- deserializer ----

std::string element_text(const pugi::xml_node& node) {
  std::string out;
  for (auto c = node.first_child(); c; c = c.next_sibling())
    if (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) out += c.value();
  return out;
}

bool has_element_children(const pugi::xml_node& node) {
  for (auto c = node.first_child(); c; c = c.next_sibling())
    if (c.type() == pugi::node_element) return true;
  return false;
}

template <typename T>
std::optional<T> parse_number(std::string_view text) {
  text = trim(text);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  T v{};
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

class Reader {
 public:
  explicit Reader(const ClixmlLimits& limits) : limits_(limits) {}

  // Reads a value element; `height` receives the nesting below it, Refs included.
  Result<PsValue> value(const pugi::xml_node& node, std::size_t depth, std::size_t& height) {
    WINCERT_TRY(count(node, depth));
    height = 1;
    std::string_view tag = node.name();
    if (tag == "Obj") return object(node, depth, height);
    if (tag == "Ref") {
      std::string id = node.attribute("RefId").value();
      auto it = objects_.find(id);
      if (it == objects_.end())
        return Error::invalid_argument("CLIXML <Ref RefId=\"" + id + "\"> names no earlier object");
      height = it->second.height;
      if (depth + height - 1 > limits_.max_depth) return too_deep();
      return PsValue::object(it->second.object);
    }
    auto type = type_of_tag(tag);
    if (!type) {
      // A primitive this reader does not know (a newer serializer): keep its text rather than fail the message.
      if (has_element_children(node))
        return Error::invalid_argument("unknown CLIXML element <" + std::string(tag) + "> with children");
      return PsValue::string(decode_clixml_string(element_text(node)));
    }
    std::string text = element_text(node);
    auto bad = [&](std::string_view what) {
      return Error::invalid_argument("CLIXML <" + std::string(tag) + "> holds " + std::string(what) + " '" +
                                     text.substr(0, 40) + "'");
    };
    switch (*type) {
      case PsType::kNil:
        return PsValue::nil();
      case PsType::kBool: {
        auto t = trim(text);
        if (iequals(t, "true") || t == "1") return PsValue::boolean(true);
        if (iequals(t, "false") || t == "0") return PsValue::boolean(false);
        return bad("no boolean");
      }
      case PsType::kChar: {
        auto v = parse_number<std::uint32_t>(text);
        if (!v || *v > 0xFFFF) return bad("no UTF-16 code unit");
        return PsValue::signed_integer(PsType::kChar, *v);
      }
      case PsType::kSByte:
      case PsType::kInt16:
      case PsType::kInt32:
      case PsType::kInt64: {
        auto v = parse_number<std::int64_t>(text);
        if (!v || !fits(*type, *v)) return bad("no integer of its size");
        return PsValue::signed_integer(*type, *v);
      }
      case PsType::kByte:
      case PsType::kUInt16:
      case PsType::kUInt32:
      case PsType::kUInt64: {
        auto v = parse_number<std::uint64_t>(text);
        if (!v || !fits_unsigned(*type, *v)) return bad("no unsigned integer of its size");
        return PsValue::unsigned_integer(*type, *v);
      }
      case PsType::kByteArray: {
        auto raw = base64_decode(trim(text));
        if (!raw) return bad("no base64");
        return PsValue::bytes(std::move(*raw));
      }
      default:
        return PsValue::text(*type, is_escaped_text(*type) ? decode_clixml_string(text) : std::move(text));
    }
  }

 private:
  struct Known {
    std::shared_ptr<PsObject> object;
    std::size_t height;
  };
  const ClixmlLimits& limits_;
  std::size_t nodes_ = 0;
  std::unordered_map<std::string, Known> objects_;
  std::unordered_map<std::string, std::vector<std::string>> type_lists_;

  static Error too_deep_error(std::size_t limit) {
    return Error::resource_exhausted("CLIXML nested deeper than the limit of " + std::to_string(limit) + " levels");
  }
  Error too_deep() const { return too_deep_error(limits_.max_depth); }

  Status count(const pugi::xml_node&, std::size_t depth) {
    if (++nodes_ > limits_.max_nodes)
      return Error::resource_exhausted("CLIXML with more than " + std::to_string(limits_.max_nodes) + " elements");
    if (depth > limits_.max_depth) return too_deep();
    return {};
  }

  static bool fits(PsType type, std::int64_t v) {
    switch (type) {
      case PsType::kSByte:
        return v >= -128 && v <= 127;
      case PsType::kInt16:
        return v >= -32768 && v <= 32767;
      case PsType::kInt32:
        return v >= std::numeric_limits<std::int32_t>::min() && v <= std::numeric_limits<std::int32_t>::max();
      default:
        return true;
    }
  }
  static bool fits_unsigned(PsType type, std::uint64_t v) {
    switch (type) {
      case PsType::kByte:
        return v <= 0xFF;
      case PsType::kUInt16:
        return v <= 0xFFFF;
      case PsType::kUInt32:
        return v <= 0xFFFFFFFFu;
      default:
        return true;
    }
  }

  Result<std::string> property_name(const pugi::xml_node& node) {
    auto n = node.attribute("N");
    if (!n) return Error::invalid_argument("CLIXML property <" + std::string(node.name()) + "> without a name (N)");
    return decode_clixml_string(n.value());
  }

  Status properties(const pugi::xml_node& bag, std::size_t depth, std::vector<PsProperty>& out, std::size_t& height) {
    WINCERT_TRY(count(bag, depth));
    height = 1;
    for (auto c = bag.first_child(); c; c = c.next_sibling()) {
      if (c.type() != pugi::node_element) continue;
      WINCERT_ASSIGN_OR_RETURN(auto name, property_name(c));
      std::size_t h = 0;
      WINCERT_ASSIGN_OR_RETURN(auto v, value(c, depth + 1, h));
      height = std::max(height, h + 1);
      out.push_back({std::move(name), std::move(v)});
    }
    return {};
  }

  Status type_names(const pugi::xml_node& node, std::size_t depth, PsObject& obj) {
    WINCERT_TRY(count(node, depth));
    std::string_view tag = node.name();
    std::string id = node.attribute("RefId").value();
    if (tag == "TNRef") {
      auto it = type_lists_.find(id);
      if (it == type_lists_.end())
        return Error::invalid_argument("CLIXML <TNRef RefId=\"" + id + "\"> names no earlier type list");
      obj.type_names = it->second;
      return {};
    }
    for (auto t = node.first_child(); t; t = t.next_sibling()) {
      if (t.type() != pugi::node_element) continue;
      WINCERT_TRY(count(t, depth + 1));
      obj.type_names.push_back(decode_clixml_string(element_text(t)));
    }
    type_lists_[id] = obj.type_names;
    return {};
  }

  Status collection(const pugi::xml_node& node, std::size_t depth, PsCollection kind, PsObject& obj,
                    std::size_t& height) {
    WINCERT_TRY(count(node, depth));
    height = 1;
    obj.collection = kind;
    for (auto c = node.first_child(); c; c = c.next_sibling()) {
      if (c.type() != pugi::node_element) continue;
      std::size_t h = 0;
      if (kind != PsCollection::kDictionary) {
        WINCERT_ASSIGN_OR_RETURN(auto v, value(c, depth + 1, h));
        obj.items.push_back(std::move(v));
        height = std::max(height, h + 1);
        continue;
      }
      if (std::string_view(c.name()) != "En")
        return Error::invalid_argument("CLIXML <DCT> holds <" + std::string(c.name()) + ">, not <En>");
      WINCERT_TRY(count(c, depth + 1));
      PsDictionaryEntry entry;
      bool have_key = false;
      for (auto kv = c.first_child(); kv; kv = kv.next_sibling()) {
        if (kv.type() != pugi::node_element) continue;
        std::string_view n = kv.attribute("N").value();
        WINCERT_ASSIGN_OR_RETURN(auto v, value(kv, depth + 2, h));
        height = std::max(height, h + 2);
        if (n == "Key") {
          entry.key = std::move(v);
          have_key = true;
        } else if (n == "Value") {
          entry.value = std::move(v);
        }
      }
      if (!have_key) return Error::invalid_argument("CLIXML dictionary entry <En> without a Key");
      obj.entries.push_back(std::move(entry));
    }
    return {};
  }

  Result<PsValue> object(const pugi::xml_node& node, std::size_t depth, std::size_t& height) {
    auto obj = std::make_shared<PsObject>();
    for (auto c = node.first_child(); c; c = c.next_sibling()) {
      if (c.type() != pugi::node_element) continue;
      std::string_view tag = c.name();
      std::size_t h = 1;
      if (tag == "TN" || tag == "TNRef") {
        WINCERT_TRY(type_names(c, depth + 1, *obj));
        h = 2;
      } else if (tag == "ToString") {
        WINCERT_TRY(count(c, depth + 1));
        obj->to_string = decode_clixml_string(element_text(c));
      } else if (tag == "MS") {
        WINCERT_TRY(properties(c, depth + 1, obj->extended, h));
      } else if (tag == "Props") {
        WINCERT_TRY(properties(c, depth + 1, obj->adapted, h));
      } else if (tag == "LST") {
        WINCERT_TRY(collection(c, depth + 1, PsCollection::kList, *obj, h));
      } else if (tag == "IE") {
        WINCERT_TRY(collection(c, depth + 1, PsCollection::kEnumerable, *obj, h));
      } else if (tag == "STK") {
        WINCERT_TRY(collection(c, depth + 1, PsCollection::kStack, *obj, h));
      } else if (tag == "QUE") {
        WINCERT_TRY(collection(c, depth + 1, PsCollection::kQueue, *obj, h));
      } else if (tag == "DCT") {
        WINCERT_TRY(collection(c, depth + 1, PsCollection::kDictionary, *obj, h));
      } else {
        // The wrapped primitive of an enum or a primitive with added members (a Ref or Obj here is the same).
        WINCERT_ASSIGN_OR_RETURN(auto v, value(c, depth + 1, h));
        obj->base_value = std::move(v);
      }
      height = std::max(height, h + 1);
    }
    if (depth + height - 1 > limits_.max_depth) return too_deep();
    // Registered only once complete: a Ref to an enclosing object is refused, so values never form cycles.
    if (auto id = node.attribute("RefId")) objects_[id.value()] = Known{obj, height};
    return PsValue::object(std::move(obj));
  }
};

}  // namespace

std::string_view ps_type_tag(PsType type) {
  for (const auto& t : kTags)
    if (t.type == type) return t.tag;
  return "Nil";
}

PsValue PsValue::boolean(bool v) {
  PsValue out;
  out.type_ = PsType::kBool;
  out.signed_ = v ? 1 : 0;
  return out;
}

PsValue PsValue::string(std::string v) { return text(PsType::kString, std::move(v)); }

PsValue PsValue::cached_string(std::string v) {
  PsValue value = string(std::move(v));
  std::string escaped;
  append_xml_escaped(escaped, encode_clixml_string(value.text()));
  ClixmlWriterAccess::set_wire_text(value, std::move(escaped));
  return value;
}

PsValue PsValue::signed_integer(PsType type, std::int64_t v) {
  PsValue out;
  out.type_ = type;
  out.signed_ = v;
  return out;
}

PsValue PsValue::unsigned_integer(PsType type, std::uint64_t v) {
  PsValue out;
  out.type_ = type;
  out.unsigned_ = v;
  return out;
}

PsValue PsValue::text(PsType type, std::string v) {
  PsValue out;
  out.type_ = type;
  out.text_ = std::move(v);
  return out;
}

PsValue PsValue::object(std::shared_ptr<PsObject> object) {
  PsValue out;
  if (!object) return out;
  out.type_ = PsType::kObject;
  out.object_ = std::move(object);
  return out;
}

bool PsValue::is_signed_integer() const {
  return type_ == PsType::kSByte || type_ == PsType::kInt16 || type_ == PsType::kInt32 || type_ == PsType::kInt64;
}

bool PsValue::is_unsigned_integer() const {
  return type_ == PsType::kByte || type_ == PsType::kUInt16 || type_ == PsType::kUInt32 || type_ == PsType::kUInt64;
}

std::optional<std::int64_t> PsValue::as_int64() const {
  if (is_signed_integer()) return signed_;
  if (is_unsigned_integer() && unsigned_ <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    return static_cast<std::int64_t>(unsigned_);
  // An enum object carries its number as the wrapped primitive.
  if (is_object() && object_->base_value && !object_->base_value->is_object()) return object_->base_value->as_int64();
  return std::nullopt;
}

const PsValue* PsValue::property(std::string_view name) const {
  return is_object() ? object_->property(name) : nullptr;
}

std::optional<std::string> PsValue::string_property(std::string_view name) const {
  const PsValue* v = property(name);
  if (!v || !v->is_string()) return std::nullopt;
  return v->text();
}

std::optional<std::int64_t> PsValue::int_property(std::string_view name) const {
  const PsValue* v = property(name);
  return v ? v->as_int64() : std::nullopt;
}

std::optional<bool> PsValue::bool_property(std::string_view name) const {
  const PsValue* v = property(name);
  if (!v || v->type() != PsType::kBool) return std::nullopt;
  return v->as_bool();
}

bool PsValue::has_type_name(std::string_view type_name) const {
  if (!is_object()) return false;
  for (const auto& t : object_->type_names) {
    std::string_view s = t;
    if (s.substr(0, 13) == "Deserialized.") s.remove_prefix(13);
    if (s == type_name) return true;
  }
  return false;
}

std::string PsValue::take_display_string() && {
  switch (type_) {
    case PsType::kString:
      return std::move(text_);
    default:
      return to_display_string();
  }
}

std::string PsValue::to_display_string() const {
  switch (type_) {
    case PsType::kNil:
      return {};
    case PsType::kBool:
      return as_bool() ? "True" : "False";
    case PsType::kChar: {
      std::string out;
      // A lone surrogate has no UTF-8 form.
      append_utf8(out, signed_ >= 0xD800 && signed_ <= 0xDFFF ? 0xFFFD : static_cast<char32_t>(signed_));
      return out;
    }
    case PsType::kSByte:
    case PsType::kInt16:
    case PsType::kInt32:
    case PsType::kInt64:
      return std::to_string(signed_);
    case PsType::kByte:
    case PsType::kUInt16:
    case PsType::kUInt32:
    case PsType::kUInt64:
      return std::to_string(unsigned_);
    case PsType::kByteArray:
      return "System.Byte[]";
    case PsType::kSecureString:
      return "System.Security.SecureString";
    case PsType::kObject:
      if (object_->to_string) return *object_->to_string;
      if (object_->base_value) return object_->base_value->to_display_string();
      return object_->type_names.empty() ? std::string() : object_->type_names.front();
    default:
      return text_;
  }
}

const PsValue* PsObject::property(std::string_view name) const {
  for (const auto* bag : {&extended, &adapted})
    for (const auto& p : *bag)
      if (p.name == name) return &p.value;
  return nullptr;
}

PsValue make_object(std::vector<std::string> type_names) {
  auto obj = std::make_shared<PsObject>();
  obj->type_names = std::move(type_names);
  return PsValue::object(std::move(obj));
}

PsValue make_enum(std::string_view enum_type, std::string name, std::int32_t value) {
  auto obj = std::make_shared<PsObject>();
  obj->type_names = {std::string(enum_type), "System.Enum", "System.ValueType", "System.Object"};
  obj->to_string = std::move(name);
  obj->base_value = PsValue::int32(value);
  return PsValue::object(std::move(obj));
}

PsValue make_list(std::vector<std::string> type_names, std::vector<PsValue> items, PsCollection kind) {
  auto obj = std::make_shared<PsObject>();
  obj->type_names = std::move(type_names);
  obj->collection = kind == PsCollection::kDictionary || kind == PsCollection::kNone ? PsCollection::kList : kind;
  obj->items = std::move(items);
  return PsValue::object(std::move(obj));
}

PsValue make_dictionary(std::vector<std::string> type_names, std::vector<PsDictionaryEntry> entries) {
  auto obj = std::make_shared<PsObject>();
  obj->type_names = std::move(type_names);
  obj->collection = PsCollection::kDictionary;
  obj->entries = std::move(entries);
  return PsValue::object(std::move(obj));
}

std::string serialize_clixml(const PsValue& value) {
  Writer w;
  w.value(value, nullptr);
  return std::move(w.out);
}

namespace {

// Whitespace-only text is data here (<S> </S>); a DOCTYPE is kept as a node only to refuse it.
constexpr unsigned kClixmlParseOptions =
    (pugi::parse_default | pugi::parse_doctype | pugi::parse_ws_pcdata) & ~pugi::parse_wnorm_attribute;

Status check_clixml_size(std::size_t size, const ClixmlLimits& limits) {
  if (size > limits.max_input_bytes)
    return Error::resource_exhausted("CLIXML of " + std::to_string(size) + " bytes exceeds the limit of " +
                                     std::to_string(limits.max_input_bytes));
  return {};
}

// The value of a loaded document's one root element.
Result<PsValue> value_of(const pugi::xml_document& doc, const pugi::xml_parse_result& r, const ClixmlLimits& limits) {
  if (!r)
    return Error::invalid_argument(std::string("malformed CLIXML: ") + r.description() + " at byte " +
                                   std::to_string(r.offset));
  pugi::xml_node root;
  for (auto n = doc.first_child(); n; n = n.next_sibling()) {
    if (n.type() == pugi::node_doctype) return Error::invalid_argument("CLIXML with a DOCTYPE/DTD is refused");
    if (n.type() == pugi::node_element) {
      if (root) return Error::invalid_argument("CLIXML message with more than one root element");
      root = n;
    }
  }
  if (!root) return Error::invalid_argument("CLIXML message without an element");
  Reader reader(limits);
  std::size_t height = 0;
  return reader.value(root, 1, height);
}

}  // namespace

Result<PsValue> parse_clixml(std::string_view xml, const ClixmlLimits& limits) {
  WINCERT_TRY(check_clixml_size(xml.size(), limits));
  if (xml.substr(0, 3) == "\xEF\xBB\xBF") xml.remove_prefix(3);
  pugi::xml_document doc;
  const auto r = doc.load_buffer(xml.data(), xml.size(), kClixmlParseOptions, pugi::encoding_utf8);
  return value_of(doc, r, limits);
}

Result<PsValue> parse_clixml_taking(std::string&& xml, const ClixmlLimits& limits) {
  WINCERT_TRY(check_clixml_size(xml.size(), limits));
  const std::size_t bom = std::string_view(xml).substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;
  std::string buffer = std::move(xml);  // parsed in place: pugixml keeps no copy of it
  pugi::xml_document doc;
  const auto r =
      doc.load_buffer_inplace(buffer.data() + bom, buffer.size() - bom, kClixmlParseOptions, pugi::encoding_utf8);
  return value_of(doc, r, limits);
}

}  // namespace wincert::winrm::psrp
