#include "jobs/capabilities.hpp"

#include <exception>

#include "common/log.hpp"
#include "jobs/handlers/handlers.hpp"

namespace wincert::jobs {

namespace {

constexpr StoreType kStoreTypes[] = {StoreType::kWinCert, StoreType::kIisu, StoreType::kWinSql};
constexpr JobKind kJobKinds[] = {JobKind::kInventory, JobKind::kManagement, JobKind::kReenrollment};

std::vector<std::string_view> split_dots(std::string_view s) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = s.find('.', start);
    parts.push_back(s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

}  // namespace

std::string_view store_type_name(StoreType type) {
  switch (type) {
    case StoreType::kWinCert: return "WinCert";
    case StoreType::kIisu: return "IISU";
    case StoreType::kWinSql: return "WinSql";
  }
  return "WinCert";
}

std::string_view job_kind_name(JobKind kind) {
  switch (kind) {
    case JobKind::kInventory: return "Inventory";
    case JobKind::kManagement: return "Management";
    case JobKind::kReenrollment:
      return "ReEnrollment";
  }
  return "Inventory";
}

std::string CapabilityKey::name() const {
  return "CertStores." + std::string(store_type_name(store)) + "." + std::string(job_kind_name(kind));
}

Result<CapabilityKey> parse_capability(std::string_view capability) {
  const std::string_view text = trim(capability);
  auto unknown = [&]() {
    return Error::invalid("capability '" + std::string(text) +
                          "' is not one wincert-agent handles (CertStores.WinCert|IISU|WinSql."
                          "Inventory|Management|ReEnrollment)");
  };
  if (text.empty()) return Error::invalid("the job has no Capability; cannot tell which handler runs it");
  auto parts = split_dots(text);
  if (parts.size() != 3 || !iequals(parts[0], "CertStores")) return unknown();
  CapabilityKey key;
  bool store_found = false, kind_found = false;
  for (StoreType t : kStoreTypes) {
    if (iequals(parts[1], store_type_name(t))) { key.store = t; store_found = true; }
  }
  for (JobKind k : kJobKinds) {
    if (iequals(parts[2], job_kind_name(k))) { key.kind = k; kind_found = true; }
  }
  if (!store_found || !kind_found) return unknown();
  return key;
}

void CapabilityRegistry::add(CapabilityKey key, std::shared_ptr<JobHandler> handler) {
  handlers_[key] = std::move(handler);
}

Result<std::shared_ptr<JobHandler>> CapabilityRegistry::find(std::string_view capability) const {
  auto key = parse_capability(capability);
  if (!key.ok()) return key.error();
  auto it = handlers_.find(key.value());
  if (it == handlers_.end() || !it->second) {
    return Error::invalid("capability '" + std::string(trim(capability)) + "' has no handler registered in this agent");
  }
  return it->second;
}

std::vector<std::string> CapabilityRegistry::capability_names() const {
  std::vector<std::string> names;
  names.reserve(handlers_.size());
  for (const auto& [key, handler] : handlers_) {
    if (handler) names.push_back(key.name());
  }
  return names;
}

CapabilityRegistry make_default_registry() {
  using namespace handlers;
  CapabilityRegistry registry;
  registry.add({StoreType::kWinCert, JobKind::kInventory}, make_wincert_inventory());
  registry.add({StoreType::kWinCert, JobKind::kManagement}, make_wincert_management());
  registry.add({StoreType::kWinCert, JobKind::kReenrollment}, make_wincert_reenrollment());
  registry.add({StoreType::kIisu, JobKind::kInventory}, make_iisu_inventory());
  registry.add({StoreType::kIisu, JobKind::kManagement}, make_iisu_management());
  registry.add({StoreType::kIisu, JobKind::kReenrollment}, make_iisu_reenrollment());
  registry.add({StoreType::kWinSql, JobKind::kInventory}, make_winsql_inventory());
  registry.add({StoreType::kWinSql, JobKind::kManagement}, make_winsql_management());
  // The extension's WinSql store type says no Enrollment, but the extension registers and implements
  // CertStores.WinSql.ReEnrollment; so do we, and config/store-types/ declares Enrollment for WinSql.
  registry.add({StoreType::kWinSql, JobKind::kReenrollment}, make_winsql_reenrollment());
  return registry;
}

boost::asio::awaitable<JobResult> run_job(const CapabilityRegistry& registry, const JobConfig& config,
                                          const JobServices& services) {
  auto log = logger("jobs");
  JobLabel label{"Job", config.store.store_path, config.store.client_machine, config.job_id};
  auto handler = registry.find(config.capability);
  if (!handler.ok()) {
    log->error("job {} (history {}) not run: {}", config.job_id, config.job_history_id, handler.error().message);
    co_return JobResult::failure(config.job_history_id, failure_message(label, handler.error().message));
  }
  label.job_kind = handler.value()->job_kind(config);
  if (config.job_cancelled) {
    log->info("{} job {} was cancelled by Command; not run", label.job_kind, config.job_id);
    co_return JobResult::warning(config.job_history_id,
                                 outcome_message(label, "cancelled in Command before it ran; nothing was done"));
  }

  // Inputs first, then where to connect: a bad entry parameter or store property fails the job
  // without a connection to the host.
  Status valid = handler.value()->validate(config);
  auto target = valid.ok() ? resolve_target(config, services.target_options) : Result<Target>(valid.error());
  if (!target.ok()) {
    JobResult failed = JobResult::failure(config.job_history_id, failure_message(label, target.error().message));
    log->error("{}", failed.message);
    co_return failed;
  }
  if (!target->local) label.host = target->machine;
  if (!services.sessions) {
    co_return JobResult::failure(config.job_history_id, failure_message(label, "internal error: no session factory"));
  }

  log->info("{} job {} (history {}, {}) on store '{}' at '{}' starting", label.job_kind, config.job_id,
            config.job_history_id, config.capability, label.store_path, label.host);
  JobResult result;
  try {
    auto session = co_await services.sessions->open(target.value());
    if (!session.ok()) {
      result = JobResult::failure(config.job_history_id,
                                  failure_message(label, session.error().message));
      result.retryable = session.error().retryable();
    } else {
      JobContext ctx{config, target.value(), session.value(), services.callbacks, label};
      result = co_await handler.value()->run(ctx);
    }
  } catch (const std::exception& e) {
    result = JobResult::failure(config.job_history_id,
                                failure_message(label, std::string("unexpected internal error: ") + e.what()));
  }
  if (result.status == JobStatus::kFailure) {
    log->error("{}", result.message);
  } else if (result.status == JobStatus::kWarning) {
    log->warn("Warning: {}", result.message);
  } else {
    log->info("{}: {}", job_status_name(result.status), result.message);
  }
  co_return result;
}

}  // namespace wincert::jobs
