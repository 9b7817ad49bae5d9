#include "agent/result_sink.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

#include "agent/task_group.hpp"
#include "common/encoding.hpp"
#include "common/log.hpp"

namespace wincert::agent {

namespace net = boost::asio;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);
constexpr int kCsrAttempts = 5;

net::awaitable<void> sleep_on(net::steady_timer& timer, SteadyClock::duration d) {
  timer.expires_after(d);
  co_await timer.async_wait(kUseTuple);
}

}  // namespace

ResultSink::ResultSink(net::any_io_executor executor, Outbox& outbox, CommandApi& api, SessionTokens& session,
                       SinkOptions options, metrics::AgentMetrics* metrics)
    : executor_(executor),
      outbox_(outbox),
      api_(api),
      session_(session),
      options_(options),
      metrics_(metrics),
      held_wake_(executor) {
  sender_ = std::make_unique<OutboxSender>(
      executor, outbox_, [this](const OutboxEntry& entry, std::string body) { return deliver(entry, std::move(body)); },
      Backoff(options_.retry_initial, options_.retry_max), options_.delivery_lanes);
}

void ResultSink::observe_delivery(const OutboxEntry& entry, std::string_view outcome) {
  if (metrics_) metrics_->delivery(entry_kind_name(entry.kind), outcome);
}

void ResultSink::flush_by(SteadyClock::time_point deadline) {
  stopping_ = true;
  flush_deadline_ = deadline;
  sender_->drain(deadline);
  held_wake_.cancel();
}

net::awaitable<void> ResultSink::run_sender() { return sender_->run(); }

// ---- storing ----

void ResultSink::store_completion(const JobEntry& entry, std::int64_t audit_id, jobs::JobStatus status,
                                  const std::string& message) {
  if (entry.completion_endpoint.empty()) {
    logger("agent")->error("job {}: Command gave no CompletionEndpoint; its result ({}) cannot be reported",
                           entry.job_id, jobs::job_status_name(status));
    return;
  }
  NewEntry e;
  e.kind = EntryKind::kCompletion;
  e.job_id = entry.job_id;
  e.audit_id = audit_id;
  e.endpoint = entry.completion_endpoint;
  std::string body = completion_body(entry.job_id, static_cast<int>(status), audit_id, message);
  drop_unfinished_inventory(entry.job_id);  // see commit_completion
  store_or_hold(std::move(e), std::move(body));
}

net::awaitable<bool> ResultSink::commit_completion(const JobEntry& entry, std::int64_t audit_id, jobs::JobStatus status,
                                                   const std::string& message) {
  if (entry.completion_endpoint.empty()) {
    store_completion(entry, audit_id, status, message);  // logs that it cannot be reported
    co_return false;
  }
  NewEntry e;
  e.kind = EntryKind::kCompletion;
  e.job_id = entry.job_id;
  e.audit_id = audit_id;
  e.endpoint = entry.completion_endpoint;
  std::string body = completion_body(entry.job_id, static_cast<int>(status), audit_id, message);
  // The job is over: parts of an inventory it never finished would hold its completion back for good.
  drop_unfinished_inventory(entry.job_id);
  co_return co_await commit_or_hold(std::move(e), std::move(body));
}

// store_or_hold() through the group commit: true once durable in the outbox.
net::awaitable<bool> ResultSink::commit_or_hold(NewEntry e, std::string body) {
  if (!held_.empty()) {
    hold(std::move(e), std::move(body), "results stored earlier are still waiting for the outbox");
    co_return false;
  }
  auto stored = co_await outbox_.store(e, body);
  if (!stored.ok()) {
    hold(std::move(e), std::move(body), stored.error().message);
    co_return false;
  }
  sender_->notify();
  co_return true;
}

// Into the outbox, or (when it cannot be written, or earlier results wait in memory: the order
// counts) kept in memory for run_held().
void ResultSink::store_or_hold(NewEntry e, std::string body) {
  if (!held_.empty()) {
    hold(std::move(e), std::move(body), "results stored earlier are still waiting for the outbox");
    return;
  }
  auto stored = outbox_.append(e, body);
  if (!stored.ok()) {
    hold(std::move(e), std::move(body), stored.error().message);
    return;
  }
  sender_->notify();
}

bool ResultSink::has_completion(std::string_view job_id) const {
  if (outbox_.has_completion(job_id)) return true;
  for (const auto& r : held_)
    if (r.entry.kind == EntryKind::kCompletion && r.entry.job_id == job_id) return true;
  return false;
}

void ResultSink::hold(NewEntry entry, std::string body, const std::string& why) {
  ++stats_.results_held;
  logger("agent")->error(
      "job {}: its result is not safe yet: {} (outbox {}); it stays in memory and is stored again or sent "
      "directly to Command; free space or fix the directory's permissions",
      entry.job_id, why, outbox_.directory());
  held_.push_back(HeldResult{std::move(entry), std::move(body), false});
  held_wake_.cancel();
}

// Stores held results in the outbox once it can be written again, or sends a completion directly
// when Command is reachable (and nothing of the same job waits in the outbox, to keep the order).
net::awaitable<void> ResultSink::run_held() {
  auto log = logger("agent");
  Backoff backoff(options_.retry_initial, std::min<std::chrono::milliseconds>(options_.retry_max, 60s));
  for (;;) {
    if (held_.empty()) {
      if (flush_deadline_ != SteadyClock::time_point::max()) break;
      held_wake_.expires_at(SteadyClock::time_point::max());
      co_await held_wake_.async_wait(kUseTuple);
      continue;
    }
    bool progress = false;
    while (!held_.empty()) {
      if (held_.front().dropped) {
        held_.pop_front();
        progress = true;
        continue;
      }
      HeldResult& front = held_.front();
      const bool completion = front.entry.kind == EntryKind::kCompletion;
      const std::string job_id = front.entry.job_id;
      if (auto stored = outbox_.append(front.entry, front.body); stored.ok()) {
        log->info("stored the held {} in the outbox", stored->describe());
        held_.pop_front();
        sender_->notify();
        progress = true;
      } else if (co_await deliver_held(front)) {
        held_.pop_front();
        progress = true;
      } else {
        break;
      }
      if (completion && on_held_completion_safe_) on_held_completion_safe_(job_id);
    }
    if (held_.empty()) {
      backoff.reset();
      continue;
    }
    if (progress) backoff.reset();
    if (SteadyClock::now() >= flush_deadline_) {
      log->error(
          "stopping with {} result(s) neither stored nor delivered (outbox {} not writable): Command still "
          "lists their jobs and they run again at the next start",
          held_.size(), outbox_.directory());
      break;
    }
    auto delay = backoff.next();
    if (stopping_) delay = std::min<std::chrono::milliseconds>(delay, 1s);
    co_await sleep_on(held_wake_, delay);
  }
}

// True when Command acknowledged (or refused for good) the held result.
net::awaitable<bool> ResultSink::deliver_held(const HeldResult& result) {
  if (!session_.registered() || result.entry.kind == EntryKind::kCsr) co_return false;
  if (result.entry.kind == EntryKind::kInventory && result.entry.parts == kMorePartsFollow) {
    // Not before the inventory's last part exists: an unfinished inventory is not sent.
    const bool finished = std::any_of(held_.begin(), held_.end(), [&result](const HeldResult& other) {
      return other.entry.job_id == result.entry.job_id && !other.dropped && other.entry.kind == EntryKind::kInventory &&
             other.entry.parts != kMorePartsFollow;
    });
    if (!finished) co_return false;
  }
  for (const auto& pending : outbox_.pending())
    if (pending.job_id == result.entry.job_id && pending.kind != EntryKind::kCsr) co_return false;
  OutboxEntry entry;
  entry.kind = result.entry.kind;
  entry.job_id = result.entry.job_id;
  entry.audit_id = result.entry.audit_id;
  entry.endpoint = result.entry.endpoint;
  const Delivery outcome = co_await deliver(entry, result.body);
  if (outcome == Delivery::kRetry) co_return false;
  if (outcome == Delivery::kDone)
    logger("agent")->info("delivered the held {} directly (the outbox was not writable)", entry.describe());
  co_return true;
}

// ---- what a running job calls ----

jobs::JobCallbacks ResultSink::callbacks_for(const std::string& job_id, std::int64_t audit_id,
                                             std::string inventory_endpoint, std::string enroll_endpoint,
                                             std::string completion_endpoint) {
  jobs::JobCallbacks callbacks;
  callbacks.begin_inventory = [this, job_id, audit_id, inventory_endpoint = std::move(inventory_endpoint)]() {
    return begin_inventory(job_id, audit_id, inventory_endpoint);
  };
  callbacks.submit_csr = [this, job_id, audit_id, enroll_endpoint = std::move(enroll_endpoint),
                          completion_endpoint =
                              std::move(completion_endpoint)](const certstore::CertificateRequest& csr) {
    return submit_csr(job_id, audit_id, enroll_endpoint, completion_endpoint, csr.base64());
  };
  return callbacks;
}

// A job's inventory on its way to the outbox: one part being filled (InventoryBodyBuilder) while the ones
// before it are written (kWritesInFlight at most: the job reads on during their fsyncs, which the group
// commit shares, and holds that many parts plus one); the parts before the last marked kMorePartsFollow, so
// that none is sent unless the inventory is finished. finish() returns once every part is durable.
class OutboxInventoryUpload final : public jobs::InventoryUpload {
 public:
  static constexpr std::size_t kWritesInFlight = 4;

  OutboxInventoryUpload(ResultSink& sink, std::string job_id, std::int64_t audit_id, std::string endpoint,
                        std::size_t part_bytes)
      : sink_(sink),
        job_id_(std::move(job_id)),
        audit_id_(audit_id),
        endpoint_(std::move(endpoint)),
        builder_(job_id_, part_bytes) {}
  ~OutboxInventoryUpload() override { abandon(); }

  net::awaitable<Status> add(jobs::InventoryItem item) override {
    WINCERT_CO_TRY(usable());
    ++items_;
    auto full = builder_.add(item);
    if (full) {
      co_await wait_for_writes(kWritesInFlight - 1);
      start_write(std::move(*full), false);  // the outbox numbers entries as their writes start: in order
    }
    co_return Status{};
  }

  net::awaitable<Status> finish() override {
    WINCERT_CO_TRY(usable());
    std::string last = builder_.finish();
    done_ = true;
    start_write(std::move(last), true);
    co_await wait_for_writes(0);
    logger("agent")->debug("job {}: inventory of {} item(s) stored for delivery in {} part(s)", job_id_, items_,
                           parts_);
    co_return Status{};
  }

  void abandon() override {
    if (done_) return;
    done_ = true;
    for (const auto& write : writing_) write->abandoned = true;  // each dropped once its write is over
    if (parts_ > 0) sink_.drop_unfinished_inventory(job_id_);
  }

 private:
  Status usable() const {
    if (endpoint_.empty())
      return Error::invalid_argument("Command sent no InventoryEndpoint for job " + job_id_ +
                                     ": cannot submit the inventory");
    if (done_) return Error::internal("internal error: the inventory of job " + job_id_ + " was already ended");
    return {};
  }

  // One part's write, which may outlive the upload (a job cancelled meanwhile).
  struct Write {
    explicit Write(const net::any_io_executor& executor) : wake(executor, SteadyClock::time_point::max()) {}
    bool done = false;
    bool abandoned = false;
    net::steady_timer wake;
  };

  void start_write(std::string body, bool last) {
    NewEntry e;
    e.kind = EntryKind::kInventory;
    e.job_id = job_id_;
    e.audit_id = audit_id_;
    e.endpoint = endpoint_;
    e.part = ++parts_;
    e.parts = last ? parts_ : kMorePartsFollow;
    auto write = std::make_shared<Write>(sink_.executor_);
    writing_.push_back(write);
    // Held in memory when the disk refuses it (commit_or_hold); never fails.
    net::co_spawn(sink_.executor_, sink_.commit_or_hold(std::move(e), std::move(body)),
                  [write, sink = &sink_, job_id = job_id_](std::exception_ptr, bool) {
                    write->done = true;
                    write->wake.cancel();
                    if (write->abandoned) sink->drop_unfinished_inventory(job_id);
                  });
  }

  // Until at most `left` writes are in flight (the oldest finish first: one group commit after another).
  net::awaitable<void> wait_for_writes(std::size_t left) {
    while (writing_.size() > left) {
      const auto write = writing_.front();  // kept in writing_ meanwhile: abandon() marks it
      while (!write->done) co_await write->wake.async_wait(kUseTuple);
      if (!writing_.empty() && writing_.front() == write) writing_.pop_front();
    }
  }

  ResultSink& sink_;
  std::string job_id_;
  std::int64_t audit_id_;
  std::string endpoint_;
  InventoryBodyBuilder builder_;
  int parts_ = 0;
  bool done_ = false;
  std::deque<std::shared_ptr<Write>> writing_;  // oldest first
};

std::unique_ptr<jobs::InventoryUpload> ResultSink::begin_inventory(std::string job_id, std::int64_t audit_id,
                                                                   std::string endpoint) {
  const std::size_t part_bytes = std::min(options_.inventory_part_bytes, options_.inventory_max_update_bytes);
  return std::make_unique<OutboxInventoryUpload>(*this, std::move(job_id), audit_id, std::move(endpoint), part_bytes);
}

void ResultSink::drop_unfinished_inventory(const std::string& job_id) {
  const std::size_t stored = outbox_.drop_unfinished_inventory(job_id);
  // Marked, not erased: run_held() may be using the deque across a delivery; it discards them in order.
  std::size_t held = 0;
  for (auto& r : held_) {
    if (r.entry.kind == EntryKind::kInventory && r.entry.job_id == job_id && r.entry.parts == kMorePartsFollow &&
        !r.dropped) {
      r.dropped = true;
      ++held;
    }
  }
  if (stored + held > 0)
    logger("agent")->info("job {}: dropped {} part(s) of its unfinished inventory; none of it was sent", job_id,
                          stored + held);
}

net::awaitable<Result<std::string>> ResultSink::submit_csr(std::string job_id, std::int64_t audit_id,
                                                           std::string endpoint, std::string completion_endpoint,
                                                           std::string csr_base64) {
  if (endpoint.empty())
    co_return Error::invalid_argument("Command sent no EnrollEndpoint for job " + job_id + ": cannot submit the CSR");
  const std::string body = csr_body(job_id, csr_base64);
  NewEntry e;
  e.kind = EntryKind::kCsr;
  e.job_id = job_id;
  e.audit_id = audit_id;
  e.endpoint = endpoint;
  e.completion_endpoint = completion_endpoint;
  WINCERT_CO_ASSIGN_OR_RETURN(const OutboxEntry record, outbox_.append(std::move(e), body));
  const std::string what = "CSR of job " + job_id;

  Backoff backoff(options_.retry_initial, std::min<std::chrono::milliseconds>(options_.retry_max, 30s));
  Result<std::string> outcome = Error::cancelled(what + ": not sent (the agent is stopping)");
  for (int attempt = 1; attempt <= kCsrAttempts; ++attempt) {
    auto tok = co_await session_.current_token();
    if (!tok) break;
    auto reply = co_await api_.post_job_data(endpoint, *tok, body, what);
    if (!reply.ok()) {
      outcome = reply.error();
      if (!reply.error().retryable() || attempt == kCsrAttempts || stopping_) break;
      net::steady_timer timer(executor_);
      co_await sleep_on(timer, backoff.next());
      continue;
    }
    if (reply->result.session_invalid()) {
      session_.invalidate(*tok);
      outcome = Error::aborted(what + ": the session ended").with_command_code(reply->result.code);
      continue;
    }
    if (reply->result.is_error()) {
      outcome = Error::failed_precondition(what + ": Command refused it: " + reply->result.describe())
                    .with_command_code(reply->result.code);
      break;
    }
    const std::string certificate = scalar_text(find_member(reply->body, "Certificate"));
    if (certificate.empty()) {
      outcome = Error::invalid_argument(what + ": Command returned no certificate" +
                                        (reply->result.message.empty() ? "" : " (" + reply->result.describe() + ")"))
                    .with_command_code(reply->result.code);
    } else {
      outcome = certificate;
    }
    break;
  }
  (void)outbox_.remove(record);  // the job itself reports how it ended
  co_return outcome;
}

// ---- delivery ----

net::awaitable<Delivery> ResultSink::deliver(const OutboxEntry& entry, std::string body) {
  auto log = logger("agent");
  auto tok = co_await session_.current_token();
  if (!tok) co_return Delivery::kRetry;
  auto reply = co_await api_.post_job_data(entry.endpoint, *tok, std::move(body), entry.describe());
  if (!reply.ok()) {
    if (reply.error().retryable() || is_auth_failure(reply.error())) {
      log->warn("{}", reply.error().message);
      observe_delivery(entry, "retry");
      co_return Delivery::kRetry;
    }
    log->error("{}", reply.error().message);
    observe_delivery(entry, "rejected");
    co_return Delivery::kReject;
  }
  if (reply->result.session_invalid()) {
    session_.invalidate(*tok);
    observe_delivery(entry, "retry");
    co_return Delivery::kRetry;
  }
  if (reply->result.is_error()) {
    log->error("Command refused the {}: {}", entry.describe(), reply->result.describe());
    observe_delivery(entry, "rejected");
    co_return Delivery::kReject;
  }
  if (reply->result.status == ApiStatus::kWarning)
    log->warn("Command accepted the {} with a warning: {}", entry.describe(), reply->result.describe());
  ++stats_.results_delivered;
  observe_delivery(entry, "delivered");
  log->debug("delivered the {}", entry.describe());
  if (entry.kind == EntryKind::kCompletion) {
    test_kill_point("during-delivery");
    const std::string chained = scalar_text(find_member(reply->body, "InventoryJob"));
    if (!chained.empty() && on_chained_job_) on_chained_job_(chained);
  }
  co_return Delivery::kDone;
}

// CSR entries left by a previous run: the job stopped halfway; tell Command so.
void ResultSink::recover_interrupted_csrs() {
  for (const auto& entry : outbox_.pending()) {
    if (entry.kind != EntryKind::kCsr) continue;
    JobEntry job;
    job.job_id = entry.job_id;
    job.completion_endpoint = entry.completion_endpoint;
    logger("agent")->warn(
        "job {} was waiting for Command to sign its CSR when the agent stopped; reporting it as failed", entry.job_id);
    store_completion(job, entry.audit_id, jobs::JobStatus::kFailure,
                     "Reenrollment job " + entry.job_id +
                         " did not finish: the agent stopped while Command was signing its CSR; the key created "
                         "on the host has no certificate. Schedule the reenrollment again.");
    (void)outbox_.remove(entry);
  }
}

}  // namespace wincert::agent
