#include "agent/outbox.hpp"

#include <nlohmann/json.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <type_traits>

#include "agent/platform/files.hpp"
#include "common/log.hpp"
#include "common/peer_json.hpp"
#include "common/worker_pool.hpp"

namespace wincert::agent {

namespace fs = std::filesystem;
namespace net = boost::asio;
using nlohmann::json;

namespace {

constexpr std::string_view kEntrySuffix = ".entry";
constexpr std::string_view kTempPrefix = ".tmp-";

// temp file, flushed, renamed into place (agent/platform/files.hpp).
Status write_durably(const std::string& dir, const std::string& name, std::string_view header, std::string_view body) {
  return files::write_atomically(dir, std::string(kTempPrefix) + name, name, header, body);
}

std::optional<EntryKind> kind_from_name(std::string_view name) {
  if (name == "inventory") return EntryKind::kInventory;
  if (name == "completion") return EntryKind::kCompletion;
  if (name == "csr") return EntryKind::kCsr;
  return std::nullopt;
}

// Moves a file into `target_dir` (created when missing) under a name not used there yet.
Status move_file_aside(const fs::path& file, const fs::path& target_dir) {
  std::error_code ec;
  fs::create_directories(target_dir, ec);
  if (ec) return Error::failed_precondition("cannot create '" + target_dir.string() + "': " + ec.message());
  fs::path target = target_dir / file.filename();
  for (int n = 1; fs::exists(target, ec) && n < 1000; ++n)
    target = target_dir / (file.filename().string() + "." + std::to_string(n));
  fs::rename(file, target, ec);
  if (ec)
    return Error::failed_precondition("cannot move '" + file.string() + "' to " + target_dir.string() + ": " +
                                      ec.message());
  return {};
}

}  // namespace

std::string_view entry_kind_name(EntryKind kind) {
  switch (kind) {
    case EntryKind::kInventory:
      return "inventory";
    case EntryKind::kCompletion:
      return "completion";
    case EntryKind::kCsr:
      return "csr";
  }
  return "unknown";
}

std::string OutboxEntry::describe() const {
  std::string out = std::string(entry_kind_name(kind)) + " of job " + job_id;
  if (kind == EntryKind::kInventory && parts == kMorePartsFollow)
    out += " (part " + std::to_string(part) + ", more to follow)";
  else if (kind == EntryKind::kInventory && parts > 1)
    out += " (part " + std::to_string(part) + " of " + std::to_string(parts) + ")";
  return out;
}

Status write_file_durably(const std::string& path, std::string_view content) {
  const fs::path p(path);
  const std::string dir = p.parent_path().empty() ? "." : p.parent_path().string();
  return write_durably(dir, p.filename().string(), {}, content);
}

// ---- entry headers ----

namespace {

// The common peer-JSON entry point: the header's limits (size, depth, members) are checked before parsing.
std::optional<json> parse_header_json(std::string_view text, std::string& why) {
  auto parsed = parse_peer_json(text, peer_json_limits::kOutboxHeader, "header");
  if (!parsed.ok()) {
    why = parsed.error().message;
    return std::nullopt;
  }
  return std::move(parsed.value());
}

// Each reader names the field and what was wrong with it; absent optional fields keep the default.
class HeaderFields {
 public:
  explicit HeaderFields(const json& header) : h_(header) {}
  const std::string& problem() const { return problem_; }

  void text(const char* key, bool required, std::string& out) {
    const json* v = find(key, required);
    if (v == nullptr) return;
    if (!v->is_string()) return fail(key, "is not a string");
    const auto& s = v->get_ref<const std::string&>();
    if (required && s.empty()) return fail(key, "is empty");
    if (s.size() > kMaxOutboxIdBytes)
      return fail(key, "is longer than " + std::to_string(kMaxOutboxIdBytes) + " bytes");
    out = s;
  }
  template <typename Int>
  void integer(const char* key, bool required, Int low, Int high, Int& out) {
    const json* v = find(key, required);
    if (v == nullptr) return;
    if (v->is_number_unsigned()) {
      const auto n = v->get<std::uint64_t>();
      if (n > static_cast<std::uint64_t>(std::numeric_limits<Int>::max()) || static_cast<Int>(n) > high ||
          static_cast<Int>(n) < low)
        return fail(key, "is out of range");
      out = static_cast<Int>(n);
    } else if (v->is_number_integer()) {
      const auto n = v->get<std::int64_t>();
      if constexpr (std::is_unsigned_v<Int>) {
        if (n < 0) return fail(key, "is negative");
      }
      if (static_cast<long double>(n) < static_cast<long double>(low) ||
          static_cast<long double>(n) > static_cast<long double>(high))
        return fail(key, "is out of range");
      out = static_cast<Int>(n);
    } else {
      return fail(key, "is not an integer");
    }
  }

 private:
  const json* find(const char* key, bool required) {
    if (!problem_.empty()) return nullptr;
    auto it = h_.find(key);
    if (it == h_.end()) {
      if (required) fail(key, "is missing");
      return nullptr;
    }
    return &*it;
  }
  void fail(const char* key, const std::string& what) {
    if (problem_.empty()) problem_ = std::string("header field '") + key + "' " + what;
  }
  const json& h_;
  std::string problem_;
};

}  // namespace

Result<OutboxEntry> decode_entry_header(std::string_view file_name, std::string_view header_line,
                                        std::uint64_t file_size) {
  auto bad = [](const std::string& why) { return Error::invalid_argument(why); };
  std::uint64_t seq = 0;
  const char* const name_end = file_name.data() + file_name.size();
  auto [ptr, seq_ec] = std::from_chars(file_name.data(), name_end, seq);
  if (seq_ec != std::errc{} || ptr == name_end || *ptr != '.' || seq == 0)
    return bad("file name does not start with a sequence number");
  std::string_view name_kind = std::string_view(ptr + 1, static_cast<std::size_t>(name_end - ptr - 1));
  if (name_kind.size() >= kEntrySuffix.size()) name_kind.remove_suffix(kEntrySuffix.size());

  if (header_line.size() > kMaxOutboxHeaderBytes) return bad("header line is longer than 64 KiB");
  std::string why;
  auto header = parse_header_json(header_line, why);
  if (!header) return bad(why);
  if (!header->is_object()) return bad("header is JSON but not an object");

  HeaderFields fields(*header);
  int version = 1;
  fields.integer("v", false, 1, 1, version);
  std::string kind_text;
  fields.text("kind", true, kind_text);
  OutboxEntry entry;
  entry.seq = seq;
  fields.text("job_id", true, entry.job_id);
  fields.integer("audit_id", false, std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max(),
                 entry.audit_id);
  fields.text("endpoint", true, entry.endpoint);
  fields.text("completion_endpoint", false, entry.completion_endpoint);
  fields.integer("part", false, 1, 1'000'000, entry.part);
  fields.integer("parts", false, kMorePartsFollow, 1'000'000, entry.parts);
  std::uint64_t body_bytes = 0;
  fields.integer("body_bytes", true, std::uint64_t{0}, kMaxOutboxBodyBytes, body_bytes);
  if (!fields.problem().empty()) return bad(fields.problem());
  auto kind = kind_from_name(kind_text);
  if (!kind) return bad("unknown kind '" + kind_text.substr(0, 40) + "'");
  if (kind_text != name_kind) return bad("header kind '" + kind_text + "' does not match the file name");
  if (entry.parts != kMorePartsFollow && entry.part > entry.parts)
    return bad("part " + std::to_string(entry.part) + " of " + std::to_string(entry.parts));
  if (entry.parts == kMorePartsFollow && *kind != EntryKind::kInventory)
    return bad("a " + kind_text + " entry in parts");
  entry.kind = *kind;
  entry.body_size = static_cast<std::size_t>(body_bytes);
  if (file_size != header_line.size() + 1 + body_bytes)
    return bad(file_size < header_line.size() + 1 + body_bytes ? "the body is shorter than its header says (truncated)"
                                                               : "the file is longer than its header says");
  return entry;
}

// ---- Outbox ----

Outbox::Outbox(std::string dir) : dir_(dir + "/outbox"), root_(std::move(dir)) {}

Result<std::unique_ptr<Outbox>> Outbox::open(const std::string& directory) {
  std::unique_ptr<Outbox> box(new Outbox(directory));
  std::error_code ec;
  fs::create_directories(box->dir_, ec);
  if (ec)
    return Error::failed_precondition("cannot create the outbox directory '" + box->dir_ + "': " + ec.message() +
                                      " (check OutboxDirectory and its owner)");
  files::restrict_to_owner(box->root_);
  files::restrict_to_owner(box->dir_);
  if (!files::can_write(box->dir_))
    return Error::permission_denied("the outbox directory '" + box->dir_ +
                                    "' is not writable by this user: " + files::last_error_text());

  std::vector<fs::path> files;
  for (const auto& item : fs::directory_iterator(box->dir_, ec)) files.push_back(item.path());
  if (ec) return Error::failed_precondition("cannot list the outbox directory '" + box->dir_ + "': " + ec.message());
  for (const auto& path : files) box->recover(path);
  box->drop_interrupted_inventories();
  return box;
}

// Parts of an inventory whose last part was never stored: the agent stopped while the job ran. They were
// never sent (next_deliverable waits for the last part) and never will be: Command still lists the job.
void Outbox::drop_interrupted_inventories() {
  const auto finished = jobs_with_finished_inventory();
  std::map<std::string, int> dropped;
  for (auto it = entries_.begin(); it != entries_.end();) {
    const OutboxEntry& entry = it->second;
    if (!waits_for_more_parts(entry, finished)) {
      ++it;
      continue;
    }
    std::error_code ec;
    fs::remove(entry.file, ec);
    ++dropped[entry.job_id];
    it = entries_.erase(it);
  }
  for (const auto& [job_id, count] : dropped) {
    notes_.push_back("dropped " + std::to_string(count) + " part(s) of the unfinished inventory of job " + job_id +
                     " (the agent stopped while the job ran; Command still lists the job)");
  }
}

std::set<std::string_view> Outbox::jobs_with_finished_inventory() const {
  std::set<std::string_view> finished;
  for (const auto& [seq, entry] : entries_) {
    if (entry.kind == EntryKind::kInventory && entry.parts != kMorePartsFollow) finished.insert(entry.job_id);
  }
  return finished;
}

bool Outbox::waits_for_more_parts(const OutboxEntry& entry, const std::set<std::string_view>& finished) {
  return entry.kind == EntryKind::kInventory && entry.parts == kMorePartsFollow && !finished.count(entry.job_id);
}

std::size_t Outbox::drop_unfinished_inventory(std::string_view job_id) {
  std::lock_guard lock(mutex_);
  const auto finished = jobs_with_finished_inventory();
  std::size_t dropped = 0;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.job_id != job_id || !waits_for_more_parts(it->second, finished)) {
      ++it;
      continue;
    }
    std::error_code ec;
    fs::remove(it->second.file, ec);  // a file left behind is dropped at the next start
    ++dropped;
    it = entries_.erase(it);
  }
  return dropped;
}

void Outbox::recover(const fs::path& path) {
  std::error_code ec;
  const std::string name = path.filename().string();
  if (name.rfind(kTempPrefix, 0) == 0) {
    // A write that never reached its rename: the entry was never acknowledged as stored.
    fs::remove(path, ec);
    notes_.push_back(ec ? "cannot remove the incomplete entry '" + name + "': " + ec.message()
                        : "removed an incomplete entry '" + name + "' (the agent stopped while writing it)");
    return;
  }
  if (name.size() <= kEntrySuffix.size() || name.substr(name.size() - kEntrySuffix.size()) != kEntrySuffix) return;

  auto set_aside = [&](const std::string& why) {
    const auto moved = move_file_aside(path, corrupt_directory());
    notes_.push_back(moved.ok() ? "set aside damaged entry '" + name + "' in " + corrupt_directory() + ": " + why +
                                      "; its result was not delivered"
                                : "damaged entry '" + name + "' (" + why +
                                      ") is ignored, and could not be set aside: " + moved.error().message);
  };
  // Not a regular file (a directory, a FIFO that would block a read, a device): never opened.
  const auto status = fs::symlink_status(path, ec);
  if (ec || !fs::is_regular_file(status)) {
    set_aside("not a regular file");
    return;
  }
  const auto file_size = fs::file_size(path, ec);
  if (ec) {
    set_aside("cannot read its size: " + ec.message());
    return;
  }
  if (file_size == 0) {
    set_aside("the file is empty");
    return;
  }
  // At most the header limit plus its newline: a huge file without a newline is not read whole.
  std::string head;
  {
    // Closed before any set_aside(): Windows cannot rename a file that is open.
    std::ifstream in(path, std::ios::binary);
    head.resize(static_cast<std::size_t>(std::min<std::uint64_t>(file_size, kMaxOutboxHeaderBytes + 1)));
    if (in) in.read(head.data(), static_cast<std::streamsize>(head.size()));
    if (!in || static_cast<std::size_t>(in.gcount()) != head.size()) {
      set_aside("cannot read it");
      return;
    }
  }
  const auto eol = head.find('\n');
  if (eol == std::string::npos) {
    set_aside(file_size > kMaxOutboxHeaderBytes ? "no header line within the first 64 KiB" : "no header line");
    return;
  }
  auto entry = decode_entry_header(name, std::string_view(head).substr(0, eol), file_size);
  if (!entry.ok()) {
    set_aside(entry.error().message);
    return;
  }
  if (auto same = entries_.find(entry->seq); same != entries_.end()) {
    set_aside("its sequence number is already used by '" + fs::path(same->second.file).filename().string() + "'");
    return;
  }
  entry->file = path.string();
  next_seq_ = std::max(next_seq_, entry->seq + 1);
  entries_[entry->seq] = std::move(entry.value());
}

OutboxEntry Outbox::make_entry(NewEntry in, std::size_t body_size, std::string& header) {
  OutboxEntry entry;
  entry.seq = next_seq_++;
  entry.kind = in.kind;
  entry.job_id = std::move(in.job_id);
  entry.audit_id = in.audit_id;
  entry.endpoint = std::move(in.endpoint);
  entry.completion_endpoint = std::move(in.completion_endpoint);
  entry.part = in.part;
  entry.parts = in.parts;
  entry.body_size = body_size;
  char seq_text[24];
  std::snprintf(seq_text, sizeof seq_text, "%016llu", static_cast<unsigned long long>(entry.seq));
  const std::string name =
      std::string(seq_text) + "." + std::string(entry_kind_name(entry.kind)) + std::string(kEntrySuffix);
  entry.file = dir_ + "/" + name;

  json h = json::object();
  h["v"] = 1;
  h["kind"] = entry_kind_name(entry.kind);
  h["job_id"] = entry.job_id;
  h["audit_id"] = entry.audit_id;
  h["endpoint"] = entry.endpoint;
  if (!entry.completion_endpoint.empty()) h["completion_endpoint"] = entry.completion_endpoint;
  h["part"] = entry.part;
  h["parts"] = entry.parts;
  h["body_bytes"] = entry.body_size;
  header = h.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  return entry;
}

Result<OutboxEntry> Outbox::append(NewEntry in, std::string_view body) {
  std::lock_guard lock(mutex_);
  std::string header;
  OutboxEntry entry = make_entry(std::move(in), body.size(), header);
  const std::string name = fs::path(entry.file).filename().string();
  auto written = write_durably(dir_, name, header, body);
  if (!written.ok()) return written.error().context("outbox: cannot store the " + entry.describe() + ": ");
  entries_[entry.seq] = entry;
  return entry;
}

// ---- store(): the group commit ----

struct Outbox::PendingWrite {
  OutboxEntry entry;
  std::string header;
  std::string body;
  files::BatchWrite write;
  std::optional<Result<OutboxEntry>> outcome;  // set once its commit is over
  std::unique_ptr<net::steady_timer> wake;     // its awaiting store()
};

net::awaitable<Result<OutboxEntry>> Outbox::store(NewEntry in, std::string body) {
  auto executor = co_await net::this_coro::executor;
  auto pending = std::make_shared<PendingWrite>();
  {
    std::lock_guard lock(mutex_);
    pending->entry = make_entry(std::move(in), body.size(), pending->header);
  }
  pending->body = std::move(body);
  pending->wake = std::make_unique<net::steady_timer>(executor);
  queued_.push_back(pending);
  // Whoever finds no commit on the disk makes the next one, for everything queued by then; the others
  // wait for theirs. After a commit the oldest entry still queued is woken to make the next one, so a
  // caller waits for at most the commit in progress and its own.
  while (!pending->outcome) {
    if (!committing_) {
      committing_ = true;
      std::vector<std::shared_ptr<PendingWrite>> batch(queued_.begin(), queued_.end());
      queued_.clear();
      co_await commit(batch);
      committing_ = false;
      for (const auto& done : batch)
        if (done != pending) done->wake->cancel();
      if (!queued_.empty()) queued_.front()->wake->cancel();
      continue;
    }
    pending->wake->expires_at(std::chrono::steady_clock::time_point::max());
    co_await pending->wake->async_wait(net::as_tuple(net::use_awaitable));
  }
  co_return std::move(*pending->outcome);
}

net::awaitable<void> Outbox::commit(std::vector<std::shared_ptr<PendingWrite>> batch) {
  for (auto& p : batch) {
    p->write.temp_name = std::string(kTempPrefix) + fs::path(p->entry.file).filename().string();
    p->write.name = fs::path(p->entry.file).filename().string();
    p->write.header = p->header;
    p->write.body = p->body;
  }
  // This coroutine stays suspended while the worker writes, so the batch (and dir_, never changed) are the
  // worker's to use. A named lambda with reference captures: GCC 12 double-destroys a temporary lambda's
  // by-value captures in a co_await expression.
  const std::string& dir = dir_;
  auto write_batch = [&batch, &dir] {
    std::vector<files::BatchWrite> writes;
    writes.reserve(batch.size());
    for (const auto& p : batch) writes.push_back(p->write);
    files::write_atomically_batch(dir, writes);
    for (std::size_t i = 0; i < batch.size(); ++i) batch[i]->write.outcome = std::move(writes[i].outcome);
  };
  co_await run_on_worker(write_batch);
  ++commits_;
  std::lock_guard lock(mutex_);
  for (auto& p : batch) {
    if (p->write.outcome.ok()) {
      entries_[p->entry.seq] = p->entry;
      ++committed_entries_;
      p->outcome = p->entry;
    } else {
      p->outcome = p->write.outcome.error().context("outbox: cannot store the " + p->entry.describe() + ": ");
    }
    p->body.clear();
    p->body.shrink_to_fit();
  }
}

Result<std::string> Outbox::read_body(const OutboxEntry& entry) const {
  std::ifstream in(entry.file, std::ios::binary);
  std::string header;
  if (!in || !std::getline(in, header)) return Error::not_found("cannot read '" + entry.file + "'");
  std::string body(entry.body_size, '\0');
  in.read(body.data(), static_cast<std::streamsize>(body.size()));
  if (static_cast<std::size_t>(in.gcount()) != body.size())
    return Error::invalid_argument("the body is shorter than its header says (truncated)");
  return body;
}

Status Outbox::remove(const OutboxEntry& entry) {
  std::lock_guard lock(mutex_);
  // The directory sync of the next commit makes the removal durable; losing it only means a resend.
  if (auto removed = files::remove_file_lazily(entry.file); !removed.ok()) return removed.error().context("outbox: ");
  entries_.erase(entry.seq);
  return {};
}

Status Outbox::move_aside(const OutboxEntry& entry, const std::string& subdir) {
  std::lock_guard lock(mutex_);
  entries_.erase(entry.seq);
  auto moved = move_file_aside(entry.file, fs::path(root_) / subdir);
  if (!moved.ok()) return moved.error().context("outbox: ");
  return {};
}

Status Outbox::reject(const OutboxEntry& entry) { return move_aside(entry, "outbox-rejected"); }
Status Outbox::set_aside_corrupt(const OutboxEntry& entry) { return move_aside(entry, "outbox-corrupt"); }

std::optional<OutboxEntry> Outbox::next_deliverable() const { return next_deliverable_excluding({}); }

std::optional<OutboxEntry> Outbox::next_deliverable_excluding(const std::set<std::uint64_t>& busy) const {
  std::lock_guard lock(mutex_);
  const auto finished = jobs_with_finished_inventory();
  std::set<std::string_view> jobs_waiting;  // jobs with an older entry still pending
  for (const auto& [seq, entry] : entries_) {
    if (entry.kind == EntryKind::kCsr) continue;
    // An inventory still being stored goes only once complete: a job that fails part-way sends none of it.
    if (!busy.count(seq) && !jobs_waiting.count(entry.job_id) && !waits_for_more_parts(entry, finished)) return entry;
    jobs_waiting.insert(entry.job_id);
  }
  return std::nullopt;
}

std::vector<OutboxEntry> Outbox::pending() const {
  std::lock_guard lock(mutex_);
  std::vector<OutboxEntry> out;
  for (const auto& [seq, entry] : entries_) out.push_back(entry);
  return out;
}

bool Outbox::has_completion(std::string_view job_id) const {
  std::lock_guard lock(mutex_);
  for (const auto& [seq, entry] : entries_) {
    if (entry.kind == EntryKind::kCompletion && entry.job_id == job_id) return true;
  }
  return false;
}

std::size_t Outbox::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

std::size_t Outbox::deliverable_count() const {
  std::lock_guard lock(mutex_);
  const auto finished = jobs_with_finished_inventory();
  std::size_t n = 0;
  for (const auto& [seq, entry] : entries_)
    n += entry.kind != EntryKind::kCsr && !waits_for_more_parts(entry, finished);
  return n;
}

// ---- Backoff ----

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, double jitter, std::uint64_t seed)
    : initial_(initial), max_(std::max(max, initial)), jitter_(std::clamp(jitter, 0.0, 1.0)), rng_(seed) {}

std::pair<std::chrono::milliseconds, std::chrono::milliseconds> Backoff::bounds(int attempt) const {
  const double cap = std::min(static_cast<double>(max_.count()),
                              static_cast<double>(initial_.count()) * std::pow(2.0, std::min(attempt, 62)));
  const auto high = std::chrono::milliseconds(static_cast<long long>(cap));
  const auto low = std::chrono::milliseconds(static_cast<long long>(std::ceil(cap * (1.0 - jitter_))));
  return {std::min(low, high), high};
}

std::chrono::milliseconds Backoff::next() {
  const auto [low, high] = bounds(attempt_);
  ++attempt_;
  std::uniform_int_distribution<long long> pick(low.count(), high.count());
  return std::chrono::milliseconds(pick(rng_));
}

// ---- OutboxSender ----

struct OutboxSender::Lane {
  explicit Lane(net::any_io_executor executor) : wake(executor) {}
  net::steady_timer wake;
  bool idle = false;  // waiting for an entry it may send (notify() wakes it)
  bool done = false;
};

OutboxSender::OutboxSender(net::any_io_executor executor, Outbox& outbox, Deliver deliver, Backoff backoff, int lanes)
    : executor_(executor),
      outbox_(outbox),
      deliver_(std::move(deliver)),
      backoff_(std::move(backoff)),
      lane_count_(std::max(lanes, 1)) {
  for (int i = 0; i < lane_count_; ++i) lanes_.push_back(std::make_unique<Lane>(executor_));
}

OutboxSender::~OutboxSender() = default;

void OutboxSender::wake_all() {
  for (auto& lane : lanes_)
    if (lane->idle) lane->wake.cancel();
}

void OutboxSender::notify() { wake_all(); }

void OutboxSender::drain(std::chrono::steady_clock::time_point deadline) {
  drain_deadline_ = deadline;
  for (auto& lane : lanes_) lane->wake.cancel();
}

net::awaitable<void> OutboxSender::run() {
  // Lane 0 runs in this coroutine, the others beside it; run() returns when every lane has ended.
  for (std::size_t i = 1; i < lanes_.size(); ++i) {
    Lane& lane = *lanes_[i];
    net::co_spawn(executor_, run_lane(lane), [this, &lane](std::exception_ptr failure) {
      if (failure) {  // a bug guard: the other lanes go on delivering
        try {
          std::rethrow_exception(failure);
        } catch (const std::exception& e) {
          logger("outbox")->error("a delivery lane ended with an internal error: {}", e.what());
        } catch (...) {
          logger("outbox")->error("a delivery lane ended with an internal error");
        }
      }
      lane.done = true;
      lanes_[0]->wake.cancel();
    });
  }
  co_await run_lane(*lanes_[0]);
  lanes_[0]->done = true;
  auto all_done = [this] {
    return std::all_of(lanes_.begin(), lanes_.end(), [](const auto& lane) { return lane->done; });
  };
  while (!all_done()) {
    lanes_[0]->wake.expires_at(std::chrono::steady_clock::time_point::max());
    co_await lanes_[0]->wake.async_wait(net::as_tuple(net::use_awaitable));
  }
  finished_ = true;
}

net::awaitable<void> OutboxSender::wait_for_retry(Lane& lane) {
  if (!retry_at_) co_return;
  lane.wake.expires_at(*retry_at_);
  const bool was_draining = drain_deadline_.has_value();
  for (;;) {
    co_await lane.wake.async_wait(net::as_tuple(net::use_awaitable));
    if (std::chrono::steady_clock::now() >= lane.wake.expiry()) break;  // backoff over
    if (!was_draining && drain_deadline_) {                             // shutting down: one more try now
      retry_at_.reset();
      break;
    }
    // notify() (a new entry) does not cut a backoff short: keep waiting
  }
}

net::awaitable<void> OutboxSender::run_lane(Lane& lane) {
  auto log = logger("outbox");
  constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (drain_deadline_ && now >= *drain_deadline_) break;
    if (retry_at_ && now < *retry_at_) {  // Command is failing: no lane tries anything before the backoff ends
      co_await wait_for_retry(lane);
      continue;
    }
    auto entry = outbox_.next_deliverable_excluding(in_flight_);
    if (!entry) {
      if (drain_deadline_) break;
      lane.idle = true;
      lane.wake.expires_at(std::chrono::steady_clock::time_point::max());
      co_await lane.wake.async_wait(kUseTuple);
      lane.idle = false;
      continue;
    }
    // Held until this lane is done with it (delivered, refused, or its backoff over): no other lane sends
    // it, or anything later of its job, meanwhile.
    in_flight_.insert(entry->seq);
    max_in_flight_ = std::max(max_in_flight_, static_cast<int>(in_flight_.size()));
    auto release = [this, seq = entry->seq] {
      in_flight_.erase(seq);
      wake_all();  // the job's next entry may be sendable now
    };
    auto body = outbox_.read_body(*entry);
    if (body.ok() && !json::accept(body.value())) body = Error::invalid_argument("its body is not JSON");
    if (!body.ok()) {
      // Damaged on disk, not refused by Command: say so, and keep the file for a person to look at.
      auto moved = outbox_.set_aside_corrupt(*entry);
      log->error("outbox: the {} in '{}' is damaged ({}); it was not delivered and is {}", entry->describe(),
                 entry->file, body.error().message,
                 moved.ok() ? "kept in " + outbox_.corrupt_directory() : "ignored: " + moved.error().message);
      ++set_aside_;
      release();
      continue;
    }
    const Delivery outcome = co_await deliver_(*entry, std::move(body.value()));
    switch (outcome) {
      case Delivery::kDone: {
        auto removed = outbox_.remove(*entry);
        if (!removed.ok()) {
          // Unremovable means it would be resent forever: stop delivering and say why.
          log->error("{}: delivery stops until this is fixed", removed.error().message);
          drain_deadline_ = std::chrono::steady_clock::now();
          for (auto& other : lanes_) other->wake.cancel();
          break;
        }
        ++delivered_;
        backoff_.reset();
        retry_at_.reset();
        break;
      }
      case Delivery::kReject:
        log->error("Command refused the {} for good; it is kept in outbox-rejected beside {}", entry->describe(),
                   outbox_.directory());
        (void)outbox_.reject(*entry);
        backoff_.reset();
        retry_at_.reset();
        break;
      case Delivery::kRetry: {
        // One backoff for the whole sender: the first failure of a round sets it (and says so), the lanes
        // that fail meanwhile wait for the same moment, so Command sees one growing series of retries.
        const auto failed_at = std::chrono::steady_clock::now();
        if (!retry_at_ || *retry_at_ <= failed_at) {
          auto delay = backoff_.next();
          if (drain_deadline_) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*drain_deadline_ - failed_at);
            delay = std::min(delay, std::max(left, std::chrono::milliseconds(0)));
          }
          retry_at_ = failed_at + delay;
          log->info("{} not delivered; retrying in {} ms ({} pending)", entry->describe(), delay.count(),
                    outbox_.deliverable_count());
        }
        co_await wait_for_retry(lane);
        break;
      }
    }
    release();
  }
}

}  // namespace wincert::agent
