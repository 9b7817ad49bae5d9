// The durable outbox: every result for Command (job completions, inventory submissions, CSRs in
// flight) is written to disk before it is sent, and removed only when Command acknowledged it. A crash
// or a Command outage loses nothing: on start the pending entries are sent again, oldest first.
//
// On disk (<dir>/outbox/): one file per entry, "<16-digit sequence>.<kind>.entry", holding one header
// line of JSON (kind, JobId, AuditId, endpoint, part i of n, body size) and then the request body
// without SessionToken (it changes with every session and is added when sent). A file is written as
// ".tmp-*" first, fsync'ed, renamed into place and the directory fsync'ed, so an entry is either
// complete or absent; leftover temp files (a crash mid-write) are deleted on open, and a file whose
// size does not match its header is moved to <dir>/outbox-corrupt/ and reported. Any damage to an entry
// (empty file, junk, a header of the wrong shape or types, a wrong size, a body that is not JSON) sets
// that entry aside with a note that says what is wrong; nothing in the directory can stop the agent
// from starting.
//
// The body carries JobId (and AuditId), so a resend after a crash between "Command acknowledged" and
// "file removed" is recognisable by Command as the same result.
//
// store() is the agent's way in: the writing happens on a worker thread, with a group commit (entries
// stored while a commit is on the disk go together in the next one: each file flushed, then one
// directory sync for all their renames), and the caller resumes only once its entry is durable. Removing
// an acknowledged entry does not sync the directory: the next commit does (a removal lost in a power cut
// only means an idempotent resend).
//
// OutboxSender delivers the entries in order per job (inventory parts before the completion of the same
// job), several at once when given more than one lane, retrying with capped exponential backoff and
// jitter while jobs keep running. A running inventory job stores its parts as they fill (kMorePartsFollow
// until the last): none of them is sent before the last one is stored, so a job that fails part-way sends
// nothing of its inventory, and the parts of a job the agent never finished are dropped on open.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace wincert::agent {

enum class EntryKind { kInventory, kCompletion, kCsr };
std::string_view entry_kind_name(EntryKind kind);  // "inventory", "completion", "csr"

// The `parts` of an inventory part stored before the inventory's end was known: the last part carries
// the count. Such parts are sent only once the last one is stored.
inline constexpr int kMorePartsFollow = 0;

struct OutboxEntry {
  std::uint64_t seq = 0;
  EntryKind kind = EntryKind::kCompletion;
  std::string job_id;
  std::int64_t audit_id = 0;
  std::string endpoint;             // as Command named it (resolved when sent)
  std::string completion_endpoint;  // kCsr: where to report the job if the agent stops mid-way
  int part = 1;                     // kInventory: part of parts
  int parts = 1;                    // kMorePartsFollow: not the last part, the count is not known yet
  std::size_t body_size = 0;
  std::string file;
  // "completion of job X", "inventory of job X (part 2 of 3)": for logs.
  std::string describe() const;
};

struct NewEntry {
  EntryKind kind = EntryKind::kCompletion;
  std::string job_id;
  std::int64_t audit_id = 0;
  std::string endpoint;
  std::string completion_endpoint;
  int part = 1;
  int parts = 1;
};

// The header line of an entry file, checked field by field (types, ranges, the kind the file name
// names) and the file's size against it. Used by Outbox::open and the fuzz target; never throws.
// `file_name` is the entry's file name ("<seq>.<kind>.entry"), `header_line` the first line without
// its newline, `file_size` the whole file's size.
Result<OutboxEntry> decode_entry_header(std::string_view file_name, std::string_view header_line,
                                        std::uint64_t file_size);

// Limits on what the outbox reads back from disk.
inline constexpr std::size_t kMaxOutboxHeaderBytes = 64 * 1024;
inline constexpr std::uint64_t kMaxOutboxBodyBytes = 1ull << 30;
inline constexpr std::size_t kMaxOutboxIdBytes = 1024;  // JobId, endpoints

class Outbox {
 public:
  // Opens (creating it with mode 0700 when missing) and scans the directory. Recovery notes (torn
  // temp files removed, corrupt entries set aside) are in recovery_notes().
  static Result<std::unique_ptr<Outbox>> open(const std::string& directory);

  // Writes an entry durably on the calling thread and returns it. The body is the request body without
  // SessionToken. For start-up and rare paths; the agent's jobs use store().
  Result<OutboxEntry> append(NewEntry entry, std::string_view body);
  // The same off the calling thread, with a group commit (see above): resumes on the caller's executor
  // once the entry is durable (and visible to next_deliverable()), never before. Call it from one
  // executor's thread (the agent's).
  boost::asio::awaitable<Result<OutboxEntry>> store(NewEntry entry, std::string body);
  Result<std::string> read_body(const OutboxEntry& entry) const;
  // Acknowledged: the entry is gone for good.
  Status remove(const OutboxEntry& entry);
  // Command refused it for good: kept in <dir>/outbox-rejected/ for a person to look at.
  Status reject(const OutboxEntry& entry);
  // The file is damaged (its body cannot be read or is not JSON): kept in <dir>/outbox-corrupt/.
  Status set_aside_corrupt(const OutboxEntry& entry);

  // The oldest entry the sender delivers (CSR entries are the running job's business, not the sender's).
  std::optional<OutboxEntry> next_deliverable() const;
  // The oldest deliverable entry that is not in `busy` and has no older entry of its job still pending:
  // what one more delivery lane may send without breaking a job's order.
  std::optional<OutboxEntry> next_deliverable_excluding(const std::set<std::uint64_t>& busy) const;
  std::vector<OutboxEntry> pending() const;  // every entry, oldest first
  std::size_t size() const;
  std::size_t deliverable_count() const;
  // The job's inventory failed part-way: the parts stored so far (never sent) are removed. Returns how many.
  std::size_t drop_unfinished_inventory(std::string_view job_id);
  // A completion of this job is waiting to be delivered (its run is over, Command just does not know yet).
  bool has_completion(std::string_view job_id) const;
  const std::string& directory() const { return dir_; }
  const std::vector<std::string>& recovery_notes() const { return notes_; }
  // Group commits made by store() and the entries they wrote (entries / commits = the batching).
  std::uint64_t commits() const { return commits_; }
  std::uint64_t committed_entries() const { return committed_entries_; }
  // Where damaged and refused entries go.
  std::string corrupt_directory() const { return root_ + "/outbox-corrupt"; }
  std::string rejected_directory() const { return root_ + "/outbox-rejected"; }

 private:
  struct PendingWrite;
  explicit Outbox(std::string dir);
  // A new entry with its sequence number, file name and header line (under the mutex).
  OutboxEntry make_entry(NewEntry in, std::size_t body_size, std::string& header);
  // Writes `batch` (a worker thread), then publishes what was written (the caller's thread).
  boost::asio::awaitable<void> commit(std::vector<std::shared_ptr<PendingWrite>> batch);
  Status move_aside(const OutboxEntry& entry, const std::string& subdir);
  // Scans one directory item; a damaged one is set aside with a note.
  void recover(const std::filesystem::path& path);
  void drop_interrupted_inventories();
  // Jobs whose inventory's last part is stored (under the mutex).
  std::set<std::string_view> jobs_with_finished_inventory() const;
  static bool waits_for_more_parts(const OutboxEntry& entry, const std::set<std::string_view>& finished);

  std::string dir_;   // <directory>/outbox
  std::string root_;  // <directory>
  mutable std::mutex mutex_;
  std::map<std::uint64_t, OutboxEntry> entries_;
  std::uint64_t next_seq_ = 1;
  std::vector<std::string> notes_;
  // store(): entries waiting for the next commit, and whether one is on the disk (the executor's thread).
  std::deque<std::shared_ptr<PendingWrite>> queued_;
  bool committing_ = false;
  std::uint64_t commits_ = 0;
  std::uint64_t committed_entries_ = 0;
};

// Writes a small file atomically and durably (temp, fsync, rename, fsync directory).
Status write_file_durably(const std::string& path, std::string_view content);

// Capped exponential backoff with jitter: the n-th delay (n from 0) is drawn uniformly from
// [cap_n * (1 - jitter), cap_n] with cap_n = min(max, initial * 2^n). Jitter keeps a fleet of agents
// from hammering a recovering Command in lockstep.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, double jitter = 0.5,
          std::uint64_t seed = std::random_device{}());
  std::chrono::milliseconds next();
  void reset() { attempt_ = 0; }
  int attempts() const { return attempt_; }
  // The bounds next() draws from at attempt n.
  std::pair<std::chrono::milliseconds, std::chrono::milliseconds> bounds(int attempt) const;

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  double jitter_;
  int attempt_ = 0;
  std::mt19937_64 rng_;
};

enum class Delivery {
  kDone,    // acknowledged: remove
  kRetry,   // transient (Command down, session being renewed): keep, back off, try again
  kReject,  // Command refused it for good: set aside, go on with the next
};

class OutboxSender {
 public:
  using Deliver = std::function<boost::asio::awaitable<Delivery>(const OutboxEntry& entry, std::string body)>;
  // `lanes` deliveries at most in flight at once, never two of one job; one backoff for all of them.
  OutboxSender(boost::asio::any_io_executor executor, Outbox& outbox, Deliver deliver, Backoff backoff, int lanes = 1);
  ~OutboxSender();

  // Delivers until drain() says stop and nothing is left (or the drain deadline passed).
  boost::asio::awaitable<void> run();
  // A new entry was appended.
  void notify();
  // Stop waiting for new entries: deliver what is pending until `deadline`, then let run() return.
  void drain(std::chrono::steady_clock::time_point deadline);
  bool finished() const { return finished_; }
  std::uint64_t delivered() const { return delivered_; }
  // Entries found damaged when about to be sent (moved to outbox-corrupt).
  std::uint64_t set_aside() const { return set_aside_; }
  // Highest number of deliveries in flight at once (tests, diagnostics).
  int max_in_flight() const { return max_in_flight_; }

 private:
  struct Lane;
  boost::asio::awaitable<void> run_lane(Lane& lane);
  // Until the sender's backoff ends (or shutdown starts: one more try then).
  boost::asio::awaitable<void> wait_for_retry(Lane& lane);
  void wake_all();

  boost::asio::any_io_executor executor_;
  Outbox& outbox_;
  Deliver deliver_;
  Backoff backoff_;
  int lane_count_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  std::set<std::uint64_t> in_flight_;  // entries a lane is delivering (or backing off on)
  // While Command fails: no lane tries before this (one backoff shared by the lanes).
  std::optional<std::chrono::steady_clock::time_point> retry_at_;
  int max_in_flight_ = 0;
  std::optional<std::chrono::steady_clock::time_point> drain_deadline_;
  bool finished_ = false;
  std::uint64_t delivered_ = 0;
  std::uint64_t set_aside_ = 0;
};

}  // namespace wincert::agent
