// Store types as modules. Each store type lives in one file of jobs/store_types/ (wincert.cpp, iisu.cpp,
// winsql.cpp): the services it needs from a host session, its handlers for each job kind, its inputs.
// The one list of store types (store_type_modules(), store_types.cpp) generates the capability registry
// and so what registration sends to Command; nothing else names a store type.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <memory>
#include <span>
#include <string_view>

#include "certstore/cert_store.hpp"
#include "jobs/handler.hpp"
#include "jobs/store_properties.hpp"

namespace wincert::jobs {

enum class JobKind { kInventory, kManagement, kReenrollment };
inline constexpr JobKind kJobKinds[] = {JobKind::kInventory, JobKind::kManagement, JobKind::kReenrollment};
std::string_view job_kind_name(JobKind kind);  // "Inventory", "Management", "ReEnrollment"

// A handler of a store type that needs `Services`: a struct of references to the certstore services
// the store type uses, with `static Services from(certstore::HostSession&)`. The handler receives
// exactly those, typed; it never sees a service it did not declare.
template <typename Services>
class TypedHandler : public JobHandler {
 public:
  boost::asio::awaitable<JobResult> run(JobContext& context, certstore::HostSession& host) final {
    const Services services = Services::from(host);
    co_return co_await run_with(context, services);
  }
  virtual boost::asio::awaitable<JobResult> run_with(JobContext& context, const Services& services) = 0;
};

// The handlers of one store type; a null one is a job kind the store type does not support.
struct StoreTypeHandlers {
  std::shared_ptr<JobHandler> inventory;
  std::shared_ptr<JobHandler> management;
  std::shared_ptr<JobHandler> reenrollment;
  std::shared_ptr<JobHandler> for_kind(JobKind kind) const;
};

// What the list knows of a store type.
struct StoreTypeModule {
  std::string_view name;  // "IISU": as the manifest, the capability and config/store-types/<name>.json spell it
  StoreType properties;   // its column in the property table (jobs/store_properties.hpp)
  StoreTypeHandlers (*make_handlers)();
};

// Every store type the agent handles, in registration order (store_types.cpp: one line per type).
std::span<const StoreTypeModule> store_type_modules();
// The module named `name` (case-insensitive), or nullptr.
const StoreTypeModule* find_store_type(std::string_view name);

namespace store_types {
// One function per store type, defined in its own file.
StoreTypeHandlers wincert_handlers();
StoreTypeHandlers iisu_handlers();
StoreTypeHandlers winsql_handlers();
}  // namespace store_types

}  // namespace wincert::jobs
