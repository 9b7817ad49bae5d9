// The contract between the agent and the job handlers: what a handler gets (the parsed job, the
// resolved target, the certstore interfaces of one session, callbacks to Command) and what it
// returns (a JobResult). Handlers never throw across this border and never put a secret in a result.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "certstore/cert_store.hpp"
#include "common/result.hpp"
#include "jobs/job_config.hpp"
#include "jobs/job_result.hpp"
#include "jobs/retry_policy.hpp"
#include "jobs/target.hpp"

namespace wincert::jobs {

// The three certstore interfaces for one target, as one session (one WinRM connection / shell, or
// the local CryptoAPI backend on Windows). A store type uses the ones it needs.
struct StoreSession {
  std::shared_ptr<certstore::CertStore> certs;
  std::shared_ptr<certstore::IisBindings> iis;
  std::shared_ptr<certstore::SqlBindings> sql;
};

// Implemented by the agent: opens (or reuses) a session for a resolved target.
class StoreSessionFactory {
 public:
  virtual ~StoreSessionFactory() = default;
  virtual boost::asio::awaitable<Result<StoreSession>> open(const Target& target) = 0;
};

// Calls back into Command for one job (the UO's SubmitInventoryUpdate / SubmitReenrollmentCSR).
struct JobCallbacks {
  // Sends the full inventory snapshot of the store.
  std::function<boost::asio::awaitable<Status>(std::vector<InventoryItem> items)> submit_inventory;
  // Sends a PKCS#10 request (base64 DER) and returns the issued certificate (base64 DER or PEM).
  std::function<boost::asio::awaitable<Result<std::string>>(const certstore::CertificateRequest& csr)> submit_csr;
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
  StoreSession& session;
  const JobCallbacks& callbacks;
  JobLabel label;  // job kind, store, host, job id: the prefix of every message

  // A handler calls this just before its first call that may change the host (import, bind, unbind,
  // remove, generating a key): from then on a failed run is not redone (see Idempotence).
  void begin_host_change() { host_change_started = true; }
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
  virtual boost::asio::awaitable<JobResult> run(JobContext& context) = 0;
  virtual Idempotence idempotence() const = 0;
};

}  // namespace wincert::jobs
