// The result sink: everything a job hands back to Command. Completions and inventory parts are stored
// in the durable outbox and delivered in order by its sender (inventory parts before the completion of
// the same job); a result the outbox cannot store (disk full, read-only directory) is held in memory,
// stored again once the outbox can be written, or sent directly when nothing of its job waits in the
// outbox. The CSR round trip (a reenrollment's submit_csr) records the CSR in the outbox while Command
// signs it, so a restart reports the half-done job instead of forgetting it. A completion reply naming
// a chained job ("InventoryJob") goes to the on_chained_job handler.
//
// Jobs store their results with the outbox's group commit (Outbox::store: off the executor's thread, resumed
// once durable); the sender delivers with `delivery_lanes` requests in flight (never two of one job), through
// the CommandApi it is given, which the agent builds on connections of its own so that deliveries neither
// wait behind configuration fetches nor hold up heartbeats.
//
// Runs on the agent's executor (one io_context thread); not thread-safe. Unit-tested with a scripted
// Command (tests/agent/result_sink_test.cpp).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/command_session.hpp"
#include "agent/metrics/agent_metrics.hpp"
#include "agent/outbox.hpp"
#include "jobs/handler.hpp"

namespace wincert::agent {

struct SinkOptions {
  std::chrono::milliseconds retry_initial{1000};
  std::chrono::milliseconds retry_max{60000};
  std::size_t inventory_max_update_bytes = 10u << 20;  // Command's largest inventory request
  // An inventory is stored (and sent) in parts of at most this many bytes as it is read, so that a job
  // holds one part, not its whole inventory. Never more than inventory_max_update_bytes.
  std::size_t inventory_part_bytes = 256u << 10;
  int delivery_lanes = 1;  // deliveries in flight at once
};

struct SinkStats {
  std::uint64_t results_delivered = 0;
  std::uint64_t results_held = 0;  // results the outbox could not store (kept in memory)
};

class ResultSink {
 public:
  using ChainedJobHandler = std::function<void(const std::string& job_id)>;

  // `outbox`, `api`, `session` and `metrics` (optional) outlive the sink.
  ResultSink(boost::asio::any_io_executor executor, Outbox& outbox, CommandApi& api, SessionTokens& session,
             SinkOptions options, metrics::AgentMetrics* metrics = nullptr);

  void on_chained_job(ChainedJobHandler handler) { on_chained_job_ = std::move(handler); }
  // Told when a completion that was held in memory becomes safe later: stored in the outbox, or delivered
  // to Command directly (the job runner then drops the job's host-change record).
  void on_held_completion_safe(ChainedJobHandler handler) { on_held_completion_safe_ = std::move(handler); }

  // A job's end: its completion (nothing when Command gave no CompletionEndpoint: logged).
  // Written on the calling thread: for start-up recovery and tests.
  void store_completion(const JobEntry& entry, std::int64_t audit_id, jobs::JobStatus status,
                        const std::string& message);
  // The same through the outbox's group commit, for running jobs: returns once the completion is durable
  // in the outbox (true), or held in memory when the outbox cannot be written (false).
  boost::asio::awaitable<bool> commit_completion(const JobEntry& entry, std::int64_t audit_id, jobs::JobStatus status,
                                                 const std::string& message);
  // The callbacks a running job gets (inventory parts, the CSR round trip).
  jobs::JobCallbacks callbacks_for(const std::string& job_id, std::int64_t audit_id, std::string inventory_endpoint,
                                   std::string enroll_endpoint, std::string completion_endpoint);
  // A job's inventory, stored in parts as it is read (SinkOptions::inventory_part_bytes); delivered once
  // its last part is stored. The sink outlives the upload.
  std::unique_ptr<jobs::InventoryUpload> begin_inventory(std::string job_id, std::int64_t audit_id,
                                                         std::string endpoint);
  boost::asio::awaitable<Result<std::string>> submit_csr(std::string job_id, std::int64_t audit_id,
                                                         std::string endpoint, std::string completion_endpoint,
                                                         std::string csr_base64);  // the DER in base64, as sent

  // The job's run is over and its completion waits (in the outbox or in memory): not to be run again.
  bool has_completion(std::string_view job_id) const;
  // The job's completion is stored durably (in the outbox, not only held in memory).
  bool completion_stored(std::string_view job_id) const { return outbox_.has_completion(job_id); }
  // CSR entries left by a previous run: their jobs are reported as failed (call before run_*()).
  void recover_interrupted_csrs();

  // The outbox sender and the loop for held results; both return after flush_by()'s deadline.
  boost::asio::awaitable<void> run_sender();
  boost::asio::awaitable<void> run_held();
  // No more CSR retries; deliveries go on until flush_by().
  void stop() { stopping_ = true; }
  // At shutdown: deliver and store what waits until `deadline`, then the loops end.
  void flush_by(std::chrono::steady_clock::time_point deadline);

  // One delivery (the outbox sender's callback).
  boost::asio::awaitable<Delivery> deliver(const OutboxEntry& entry, std::string body);

  std::size_t held() const { return held_.size(); }
  const SinkStats& stats() const { return stats_; }
  const OutboxSender& sender() const { return *sender_; }
  Outbox& outbox() { return outbox_; }

 private:
  friend class OutboxInventoryUpload;
  struct HeldResult {
    NewEntry entry;
    std::string body;
    bool dropped = false;  // a part of an inventory that failed part-way: discarded when it reaches the front
  };
  void store_or_hold(NewEntry entry, std::string body);
  boost::asio::awaitable<bool> commit_or_hold(NewEntry entry, std::string body);
  void hold(NewEntry entry, std::string body, const std::string& why);
  boost::asio::awaitable<bool> deliver_held(const HeldResult& result);
  // The parts of a job's unfinished inventory, stored or held, are dropped (the job failed part-way).
  void drop_unfinished_inventory(const std::string& job_id);
  void observe_delivery(const OutboxEntry& entry, std::string_view outcome);

  boost::asio::any_io_executor executor_;
  Outbox& outbox_;
  CommandApi& api_;
  SessionTokens& session_;
  SinkOptions options_;
  metrics::AgentMetrics* metrics_;
  ChainedJobHandler on_chained_job_;
  ChainedJobHandler on_held_completion_safe_;
  std::unique_ptr<OutboxSender> sender_;
  std::deque<HeldResult> held_;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point flush_deadline_ = std::chrono::steady_clock::time_point::max();
  boost::asio::steady_timer held_wake_;  // held results: retry now
  SinkStats stats_;
};

}  // namespace wincert::agent
