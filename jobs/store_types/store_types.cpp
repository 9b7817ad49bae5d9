// The one list of store types. A new store type is one line here, its file beside this one, its
// column in jobs/store_properties.hpp and its definition in config/store-types/.
#include "common/encoding.hpp"
#include "jobs/store_types/store_type.hpp"

namespace wincert::jobs {

namespace {

constexpr StoreTypeModule kStoreTypeModules[] = {
    {"WinCert", StoreType::kWinCert, &store_types::wincert_handlers},
    {"IISU", StoreType::kIisu, &store_types::iisu_handlers},
    {"WinSql", StoreType::kWinSql, &store_types::winsql_handlers},
};

}  // namespace

std::span<const StoreTypeModule> store_type_modules() { return kStoreTypeModules; }

const StoreTypeModule* find_store_type(std::string_view name) {
  for (const StoreTypeModule& module : kStoreTypeModules) {
    if (iequals(module.name, name)) return &module;
  }
  return nullptr;
}

std::shared_ptr<JobHandler> StoreTypeHandlers::for_kind(JobKind kind) const {
  switch (kind) {
    case JobKind::kInventory:
      return inventory;
    case JobKind::kManagement:
      return management;
    case JobKind::kReenrollment:
      return reenrollment;
  }
  return nullptr;
}

std::string_view job_kind_name(JobKind kind) {
  switch (kind) {
    case JobKind::kInventory:
      return "Inventory";
    case JobKind::kManagement:
      return "Management";
    case JobKind::kReenrollment:
      return "ReEnrollment";
  }
  return "Inventory";
}

}  // namespace wincert::jobs
