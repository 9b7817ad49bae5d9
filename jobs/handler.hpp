// The contract between the agent and the job handlers: what a handler gets (the parsed job, the
// resolved target, the host session of its target, callbacks to Command) and what it returns (a
// JobResult). Handlers never throw across this border and never put a secret in a result.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "certstore/cert_store.hpp"
#include "common/result.hpp"
#include "jobs/job_config.hpp"
#include "jobs/job_result.hpp"
#include "jobs/retry_policy.hpp"
#include "jobs/target.hpp"

namespace wincert::jobs {

// The host session of one target for one job run (certstore::HostSession: every certstore service of
// that host), kept leased until the last copy is gone (a WinRM connection then goes back to its pool).
// Never empty: made from a session, and a store type takes the services it declares from it.
class HostSessionHandle {
 public:
  explicit HostSessionHandle(std::shared_ptr<certstore::HostSession> session) : session_(std::move(session)) {
    if (!session_) throw std::invalid_argument("a HostSessionHandle needs a host session");
  }
  certstore::HostSession& operator*() const noexcept { return *session_; }
  certstore::HostSession* operator->() const noexcept { return session_.get(); }

 private:
  std::shared_ptr<certstore::HostSession> session_;
};

// Implemented by the agent: opens (or reuses) the host session for a resolved target. It knows no
// store type: every store type takes its services from the same session.
class StoreSessionFactory {
 public:
  virtual ~StoreSessionFactory() = default;
  virtual boost::asio::awaitable<Result<HostSessionHandle>> open(const Target& target) = 0;
};

// An inventory on its way to Command (the UO's SubmitInventoryUpdate), handed over one item at a time: the
// agent stores it in parts of bounded size as they fill, so a large store is never held whole. Command
// gets the parts only once finish() stored the last one; a job that fails part-way sends none of it.
class InventoryUpload {
 public:
  virtual ~InventoryUpload() = default;
  // Adds one item; stores the part first when the item would not fit (suspends until it is durable).
  virtual boost::asio::awaitable<Status> add(InventoryItem item) = 0;
  // Every item is in: stores the last part (an empty inventory is one empty part); Command gets them all.
  virtual boost::asio::awaitable<Status> finish() = 0;
  // The inventory failed part-way: the parts stored so far are dropped. Also done by the destructor of an
  // upload that was never finished (a job cancelled mid-way).
  virtual void abandon() = 0;
  std::size_t items() const { return items_; }

 protected:
  std::size_t items_ = 0;  // added so far
};

// An InventoryUpload that collects every item and hands the whole list to `on_finish`: for callers that
// want the inventory whole anyway (replay prints it; tests look at it).
using WholeInventoryHandler = std::function<boost::asio::awaitable<Status>(std::vector<InventoryItem> items)>;
std::function<std::unique_ptr<InventoryUpload>()> collect_inventory(WholeInventoryHandler on_finish);

// Calls back into Command for one job (the UO's SubmitInventoryUpdate / SubmitReenrollmentCSR).
struct JobCallbacks {
  // Starts the job's inventory snapshot of the store (one per run of the job).
  std::function<std::unique_ptr<InventoryUpload>()> begin_inventory;
  // Sends a PKCS#10 request and returns the issued certificate (base64 DER or PEM).
  std::function<boost::asio::awaitable<Result<std::string>>(const certstore::CertificateRequest& csr)> submit_csr;
  // Called by JobContext::begin_host_change(), before the host is touched: the agent records durably that
  // the job started changing the host (issue 12). May be empty.
  std::function<void()> on_host_change;
};

// Everything a job run needs besides its configuration.
struct JobServices {
  StoreSessionFactory* sessions = nullptr;
  JobCallbacks callbacks;
  TargetOptions target_options;
  // Transient failures are retried (backoff, attempts) until this deadline: the job's JobTimeoutSeconds.
  RetryOptions retry;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

// What one handler sees while it runs.
struct JobContext {
  const JobConfig& config;
  const Target& target;
  const JobCallbacks& callbacks;
  JobLabel label;  // job kind, store, host, job id: the prefix of every message

  // A handler calls this just before its first call that may change the host (import, bind, unbind,
  // remove, generating a key): from then on a failed run is not redone (see Idempotence).
  void begin_host_change() {
    if (!host_change_started && callbacks.on_host_change) callbacks.on_host_change();
    host_change_started = true;
  }
  bool host_change_started = false;
};

// Whether a run of a handler that failed transiently may be redone (issue 17: only idempotent steps are
// retried, never one that may already have changed the host). Every handler states it.
enum class Idempotence {
  kIdempotent,       // reads only (inventory, and its full-snapshot submission to Command): always redone
  kUntilHostChange,  // changes the host: redone only before JobContext::begin_host_change(), or when the
                     // failure provably never reached the host (failed_before_reaching_host)
};

class JobHandler {
 public:
  virtual ~JobHandler() = default;
  // "Inventory", "Management Add", "Reenrollment": how messages name the job.
  virtual std::string job_kind(const JobConfig& config) const = 0;
  // Checks the job's own inputs (operation, entry parameters) before any connection is made.
  virtual Status validate(const JobConfig& /*config*/) const { return {}; }
  // host: the target's session; a store type's handler takes the services it declares from it
  // (jobs/store_types/store_type.hpp: TypedHandler).
  virtual boost::asio::awaitable<JobResult> run(JobContext& context, certstore::HostSession& host) = 0;
  virtual Idempotence idempotence() const = 0;
};

}  // namespace wincert::jobs
