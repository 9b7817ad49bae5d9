// The CLIXML object model PSRP messages carry (reference psrp.md §4.1; [S 2.2.5]): a PsValue is a primitive or
// a PsObject (type names, ToString, adapted and extended properties, a list or dictionary). Objects are shared
// by pointer, as the wire shares them with <Ref RefId>: the serializer writes a repeated object as a Ref, and
// the deserializer resolves Refs to the same object. Pure code, no I/O; never throws on peer input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace wincert::winrm::psrp {

// One per CLIXML element kind ([S 2.2.5.1]); the comment is the tag.
enum class PsType : std::uint8_t {
  kNil,           // Nil
  kBool,          // B
  kChar,          // C (a UTF-16 code unit, as its number)
  kSByte,         // SB
  kByte,          // By
  kInt16,         // I16
  kUInt16,        // U16
  kInt32,         // I32
  kUInt32,        // U32
  kInt64,         // I64
  kUInt64,        // U64
  kSingle,        // Sg (text)
  kDouble,        // Db (text)
  kDecimal,       // D (text)
  kString,        // S
  kGuid,          // G (text)
  kDateTime,      // DT (text, ISO 8601 as written)
  kTimeSpan,      // TS (text, xs:duration as written)
  kByteArray,     // BA (the decoded bytes)
  kVersion,       // Version (text)
  kUri,           // URI (text)
  kXmlDocument,   // XD (text)
  kScriptBlock,   // SBK (text)
  kSecureString,  // SS (the base64 text as sent; never decrypted here)
  kObject,        // Obj (or a Ref to one)
};

// The tag of a primitive type ("S", "I32", ...); "Obj" for objects.
std::string_view ps_type_tag(PsType type);

struct PsObject;

class PsValue {
 public:
  PsValue() = default;  // Nil

  static PsValue nil() { return {}; }
  static PsValue boolean(bool v);
  static PsValue string(std::string v);
  // A string whose CLIXML form is escaped once and shared by every copy: a large text sent again and again
  // (the module each new runspace pool loads) is not escaped anew each time.
  static PsValue cached_string(std::string v);
  static PsValue int32(std::int32_t v) { return signed_integer(PsType::kInt32, v); }
  static PsValue int64(std::int64_t v) { return signed_integer(PsType::kInt64, v); }
  static PsValue uint32(std::uint32_t v) { return unsigned_integer(PsType::kUInt32, v); }
  // kSByte, kInt16, kInt32, kInt64, kChar (the value is not range-checked: the caller picks the type).
  static PsValue signed_integer(PsType type, std::int64_t v);
  // kByte, kUInt16, kUInt32, kUInt64.
  static PsValue unsigned_integer(PsType type, std::uint64_t v);
  // The types carried as their wire text: kSingle, kDouble, kDecimal, kGuid, kDateTime, kTimeSpan, kVersion,
  // kUri, kXmlDocument, kScriptBlock, kSecureString; also kString and kByteArray (raw bytes).
  static PsValue text(PsType type, std::string v);
  static PsValue bytes(std::string raw) { return text(PsType::kByteArray, std::move(raw)); }
  static PsValue object(std::shared_ptr<PsObject> object);

  PsType type() const { return type_; }
  bool is_nil() const { return type_ == PsType::kNil; }
  bool is_object() const { return type_ == PsType::kObject; }
  bool is_string() const { return type_ == PsType::kString; }
  bool is_signed_integer() const;
  bool is_unsigned_integer() const;

  bool as_bool() const { return type_ == PsType::kBool && signed_ != 0; }
  std::int64_t as_signed() const { return signed_; }       // signed types and kChar
  std::uint64_t as_unsigned() const { return unsigned_; }  // unsigned types
  // Any integer type that fits an int64.
  std::optional<std::int64_t> as_int64() const;
  // The text of kString and the text-carried types; raw bytes for kByteArray; empty otherwise.
  const std::string& text() const { return text_; }
  const PsObject* object() const { return object_.get(); }
  PsObject* mutable_object() { return object_.get(); }
  const std::shared_ptr<PsObject>& object_ptr() const { return object_; }

  // Property lookups through an object (extended, then adapted); nullptr / nullopt when this is not an
  // object, has no such property, or it has another type.
  const PsValue* property(std::string_view name) const;
  std::optional<std::string> string_property(std::string_view name) const;
  std::optional<std::int64_t> int_property(std::string_view name) const;
  std::optional<bool> bool_property(std::string_view name) const;
  // True when the object's type names contain `type_name` or "Deserialized." + type_name.
  bool has_type_name(std::string_view type_name) const;

  // How the CLI prints an output object: strings as they are, primitives in their invariant text form
  // (True/False, decimal integers, the wire text of numbers, dates and GUIDs), Nil as an empty line, any
  // other object as its ToString (or its wrapped primitive, or its first type name).
  std::string to_display_string() const;
  // The same, moving the text out of a string-like value (a large output is not copied).
  std::string take_display_string() &&;

 private:
  PsType type_ = PsType::kNil;
  std::int64_t signed_ = 0;
  std::uint64_t unsigned_ = 0;
  std::string text_;
  std::shared_ptr<PsObject> object_;
  std::shared_ptr<const std::string> wire_text_;  // cached_string: the escaped element content

  friend class ClixmlWriterAccess;
};

struct PsProperty {
  std::string name;
  PsValue value;
};

struct PsDictionaryEntry {
  PsValue key;
  PsValue value;
};

enum class PsCollection : std::uint8_t {
  kNone,
  kList,        // LST
  kEnumerable,  // IE
  kStack,       // STK
  kQueue,       // QUE
  kDictionary,  // DCT
};

struct PsObject {
  std::vector<std::string> type_names;  // most derived first; empty for a property bag
  std::optional<std::string> to_string;
  std::optional<PsValue> base_value;  // the primitive an enum or a wrapped primitive carries
  std::vector<PsProperty> adapted;    // <Props>
  std::vector<PsProperty> extended;   // <MS>
  PsCollection collection = PsCollection::kNone;
  std::vector<PsValue> items;              // LST/IE/STK/QUE
  std::vector<PsDictionaryEntry> entries;  // DCT

  // Extended first, then adapted (names compare exactly, as PowerShell's wire names are fixed).
  const PsValue* property(std::string_view name) const;
  PsObject& add(std::string name, PsValue value) {
    extended.push_back({std::move(name), std::move(value)});
    return *this;
  }
  PsObject& add_adapted(std::string name, PsValue value) {
    adapted.push_back({std::move(name), std::move(value)});
    return *this;
  }
};

// Builders for the shapes messages use.
// A property bag (<Obj><MS>...</MS></Obj>) to fill with add().
PsValue make_object(std::vector<std::string> type_names = {});
// An enum value: type names (the enum's, then System.Enum, System.ValueType, System.Object), ToString, I32.
PsValue make_enum(std::string_view enum_type, std::string name, std::int32_t value);
PsValue make_list(std::vector<std::string> type_names, std::vector<PsValue> items,
                  PsCollection kind = PsCollection::kList);
PsValue make_dictionary(std::vector<std::string> type_names, std::vector<PsDictionaryEntry> entries);

// Serializes one value as a CLIXML element (no <Objs> wrapper, no XML declaration, no BOM), with RefIds
// and TN RefIds numbered from 0 in this document.
std::string serialize_clixml(const PsValue& value);

struct ClixmlLimits {
  std::size_t max_input_bytes = 16 * 1024 * 1024;
  std::size_t max_depth = 64;  // element nesting, counting what Refs lead to
  std::size_t max_nodes = 500000;
};

// Parses one CLIXML element (a PSRP message body). A leading UTF-8 BOM is skipped. Refused with
// invalid_argument: malformed XML, a DTD, an unknown element with children, a bad number or base64 text, a
// Ref or TNRef to an id not defined before. resource_exhausted: input, depth or node count over the limits.
Result<PsValue> parse_clixml(std::string_view xml, const ClixmlLimits& limits = {});
// The same, parsing the text in place (no copy of a large message); the text is consumed.
Result<PsValue> parse_clixml_taking(std::string&& xml, const ClixmlLimits& limits = {});

}  // namespace wincert::winrm::psrp
