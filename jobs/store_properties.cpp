#include "jobs/store_properties.hpp"

#include "common/encoding.hpp"

namespace wincert::jobs {

std::string_view property_type_name(PropertyType type) {
  switch (type) {
    case PropertyType::kBool:
      return "Bool";
    case PropertyType::kString:
      return "String";
    case PropertyType::kSecret:
      return "Secret";
    case PropertyType::kMultipleChoice:
      return "MultipleChoice";
  }
  return "String";
}

std::span<const PropertySpec> property_specs() { return kPropertySpecs; }

const PropertySpec* find_property_spec(PropertyScope scope, std::string_view name) {
  for (const PropertySpec& spec : kPropertySpecs) {
    if (spec.scope == scope && iequals(spec.name, name)) return &spec;
  }
  return nullptr;
}

}  // namespace wincert::jobs
