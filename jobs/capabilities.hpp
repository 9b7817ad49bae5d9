// Capability registry: "CertStores.<StoreType>.<JobKind>" -> handler, the native equivalent of the
// UO's manifest.json, generated from the list of store types (jobs/store_types/store_type.hpp). The
// capability list sent to Command at registration is generated from it.
// Names are spelled as the extension's manifest spells them ("CertStores.IISU.ReEnrollment"); lookup is
// case-insensitive, so "Reenrollment" (how Command's own store types spell it) finds the same handler.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "jobs/handler.hpp"
#include "jobs/store_properties.hpp"
#include "jobs/store_types/store_type.hpp"

namespace wincert::jobs {

std::string_view store_type_name(StoreType type);  // "WinCert", "IISU", "WinSql": the module's name

struct CapabilityKey {
  StoreType store = StoreType::kWinCert;
  JobKind kind = JobKind::kInventory;
  auto operator<=>(const CapabilityKey&) const = default;
  std::string name() const;  // "CertStores.IISU.Management"
};
// Case-insensitive; an unknown family, store type or job kind is an Error naming the capability.
Result<CapabilityKey> parse_capability(std::string_view capability);

class CapabilityRegistry {
 public:
  void add(CapabilityKey key, std::shared_ptr<JobHandler> handler);
  // The handler for a capability string; Error naming it when none is registered.
  Result<std::shared_ptr<JobHandler>> find(std::string_view capability) const;
  // Every registered capability, in a stable order, as sent in /Session/Register.
  std::vector<std::string> capability_names() const;

 private:
  std::map<CapabilityKey, std::shared_ptr<JobHandler>> handlers_;
};

// Every handler of every store type in store_type_modules(), under the module's name.
CapabilityRegistry make_default_registry();

// Runs one job end to end: finds the handler for config.capability, resolves the target, opens a
// session, runs the handler. Every problem becomes a JobResult (Failure with a message naming the job,
// store and host); nothing throws. A cancelled job is not run (Warning saying so).
boost::asio::awaitable<JobResult> run_job(const CapabilityRegistry& registry, const JobConfig& config,
                                          const JobServices& services);

}  // namespace wincert::jobs
