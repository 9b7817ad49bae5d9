#include "agent/outbox.hpp"

#include <nlohmann/json.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "agent/platform/files.hpp"
#include "common/log.hpp"

namespace wincert::agent {

namespace fs = std::filesystem;
namespace net = boost::asio;
using nlohmann::json;

namespace {

constexpr std::string_view kEntrySuffix = ".entry";
constexpr std::string_view kTempPrefix = ".tmp-";
constexpr std::size_t kMaxHeader = 64 * 1024;

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
  if (kind == EntryKind::kInventory && parts > 1)
    out += " (part " + std::to_string(part) + " of " + std::to_string(parts) + ")";
  return out;
}

Status write_file_durably(const std::string& path, std::string_view content) {
  const fs::path p(path);
  const std::string dir = p.parent_path().empty() ? "." : p.parent_path().string();
  return write_durably(dir, p.filename().string(), {}, content);
}

// ---- Outbox ----

Outbox::Outbox(std::string dir) : dir_(dir + "/outbox"), root_(std::move(dir)) {}

Result<std::unique_ptr<Outbox>> Outbox::open(const std::string& directory) {
  std::unique_ptr<Outbox> box(new Outbox(directory));
  std::error_code ec;
  fs::create_directories(box->dir_, ec);
  if (ec)
    return Error::permanent("cannot create the outbox directory '" + box->dir_ + "': " + ec.message() +
                            " (check OutboxDirectory and its owner)");
  files::restrict_to_owner(box->root_);
  files::restrict_to_owner(box->dir_);
  if (!files::can_write(box->dir_))
    return Error::permanent("the outbox directory '" + box->dir_ +
                            "' is not writable by this user: " + files::last_error_text());

  std::vector<fs::path> files;
  for (const auto& item : fs::directory_iterator(box->dir_, ec)) files.push_back(item.path());
  if (ec) return Error::permanent("cannot list the outbox directory '" + box->dir_ + "': " + ec.message());
  for (const auto& path : files) {
    const std::string name = path.filename().string();
    if (name.rfind(kTempPrefix, 0) == 0) {
      // A write that never reached its rename: the entry was never acknowledged as stored.
      fs::remove(path, ec);
      box->notes_.push_back("removed an incomplete entry '" + name + "' (the agent stopped while writing it)");
      continue;
    }
    if (name.size() <= kEntrySuffix.size() || name.substr(name.size() - kEntrySuffix.size()) != kEntrySuffix) continue;

    OutboxEntry entry;
    entry.file = path.string();
    auto set_aside = [&](const std::string& why) {
      const std::string corrupt = box->root_ + "/outbox-corrupt";
      fs::create_directories(corrupt, ec);
      fs::rename(path, fs::path(corrupt) / name, ec);
      box->notes_.push_back("set aside damaged entry '" + name + "' in " + corrupt + ": " + why);
    };
    std::uint64_t seq = 0;
    auto [ptr, seq_ec] = std::from_chars(name.data(), name.data() + name.size(), seq);
    if (seq_ec != std::errc{} || *ptr != '.') {
      set_aside("file name does not start with a sequence number");
      continue;
    }
    std::string header;
    bool header_read = false;
    {
      // Closed before any set_aside(): Windows cannot rename a file that is open.
      std::ifstream in(path, std::ios::binary);
      header_read = in && std::getline(in, header) && header.size() <= kMaxHeader;
    }
    if (!header_read) {
      set_aside("no header line");
      continue;
    }
    json h = json::parse(header, nullptr, false);
    if (h.is_discarded() || !h.is_object()) {
      set_aside("header is not JSON");
      continue;
    }
    auto kind = kind_from_name(h.value("kind", ""));
    if (!kind) {
      set_aside("unknown kind");
      continue;
    }
    entry.seq = seq;
    entry.kind = *kind;
    entry.job_id = h.value("job_id", "");
    entry.audit_id = h.value("audit_id", std::int64_t{0});
    entry.endpoint = h.value("endpoint", "");
    entry.completion_endpoint = h.value("completion_endpoint", "");
    entry.part = h.value("part", 1);
    entry.parts = h.value("parts", 1);
    entry.body_size = h.value("body_bytes", std::size_t{0});
    const auto file_size = fs::file_size(path, ec);
    if (ec || file_size != header.size() + 1 + entry.body_size) {
      set_aside("size does not match its header (truncated)");
      continue;
    }
    box->entries_[seq] = std::move(entry);
    box->next_seq_ = std::max(box->next_seq_, seq + 1);
  }
  return box;
}

Result<OutboxEntry> Outbox::append(NewEntry in, std::string_view body) {
  std::lock_guard lock(mutex_);
  OutboxEntry entry;
  entry.seq = next_seq_++;
  entry.kind = in.kind;
  entry.job_id = std::move(in.job_id);
  entry.audit_id = in.audit_id;
  entry.endpoint = std::move(in.endpoint);
  entry.completion_endpoint = std::move(in.completion_endpoint);
  entry.part = in.part;
  entry.parts = in.parts;
  entry.body_size = body.size();
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
  const std::string header = h.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  auto written = write_durably(dir_, name, header, body);
  if (!written.ok()) return written.error().context("outbox: cannot store the " + entry.describe() + ": ");
  entries_[entry.seq] = entry;
  return entry;
}

Result<std::string> Outbox::read_body(const OutboxEntry& entry) const {
  std::ifstream in(entry.file, std::ios::binary);
  std::string header;
  if (!in || !std::getline(in, header)) return Error::permanent("outbox: cannot read '" + entry.file + "'");
  std::string body(entry.body_size, '\0');
  in.read(body.data(), static_cast<std::streamsize>(body.size()));
  if (static_cast<std::size_t>(in.gcount()) != body.size())
    return Error::permanent("outbox: '" + entry.file + "' is shorter than its header says");
  return body;
}

Status Outbox::remove(const OutboxEntry& entry) {
  std::lock_guard lock(mutex_);
  if (auto removed = files::remove_file(entry.file); !removed.ok()) return removed.error().context("outbox: ");
  entries_.erase(entry.seq);
  return {};
}

Status Outbox::move_aside(const OutboxEntry& entry, const std::string& subdir) {
  std::lock_guard lock(mutex_);
  std::error_code ec;
  const fs::path target = fs::path(root_) / subdir;
  fs::create_directories(target, ec);
  fs::rename(entry.file, target / fs::path(entry.file).filename(), ec);
  entries_.erase(entry.seq);
  if (ec)
    return Error::permanent("outbox: cannot move '" + entry.file + "' to " + target.string() + ": " + ec.message());
  return {};
}

Status Outbox::reject(const OutboxEntry& entry) { return move_aside(entry, "outbox-rejected"); }

std::optional<OutboxEntry> Outbox::next_deliverable() const {
  std::lock_guard lock(mutex_);
  for (const auto& [seq, entry] : entries_) {
    if (entry.kind != EntryKind::kCsr) return entry;
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
  std::size_t n = 0;
  for (const auto& [seq, entry] : entries_) n += entry.kind != EntryKind::kCsr;
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

OutboxSender::OutboxSender(net::any_io_executor executor, Outbox& outbox, Deliver deliver, Backoff backoff)
    : executor_(executor),
      outbox_(outbox),
      deliver_(std::move(deliver)),
      backoff_(std::move(backoff)),
      wake_(executor) {}

void OutboxSender::notify() { wake_.cancel(); }

void OutboxSender::drain(std::chrono::steady_clock::time_point deadline) {
  drain_deadline_ = deadline;
  wake_.cancel();
}

net::awaitable<void> OutboxSender::run() {
  auto log = logger("outbox");
  constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (drain_deadline_ && now >= *drain_deadline_) break;
    auto entry = outbox_.next_deliverable();
    if (!entry) {
      if (drain_deadline_) break;
      wake_.expires_at(std::chrono::steady_clock::time_point::max());
      co_await wake_.async_wait(kUseTuple);
      continue;
    }
    auto body = outbox_.read_body(*entry);
    if (!body.ok()) {
      log->error("{}; setting it aside", body.error().message);
      (void)outbox_.reject(*entry);
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
          break;
        }
        ++delivered_;
        backoff_.reset();
        break;
      }
      case Delivery::kReject:
        log->error("Command refused the {} for good; it is kept in outbox-rejected beside {}", entry->describe(),
                   outbox_.directory());
        (void)outbox_.reject(*entry);
        backoff_.reset();
        break;
      case Delivery::kRetry: {
        auto delay = backoff_.next();
        if (drain_deadline_) {
          const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*drain_deadline_ -
                                                                                  std::chrono::steady_clock::now());
          delay = std::min(delay, std::max(left, std::chrono::milliseconds(0)));
        }
        log->info("{} not delivered; retrying in {} ms ({} pending)", entry->describe(), delay.count(),
                  outbox_.deliverable_count());
        wake_.expires_after(delay);
        const bool was_draining = drain_deadline_.has_value();
        for (;;) {
          co_await wake_.async_wait(kUseTuple);
          if (std::chrono::steady_clock::now() >= wake_.expiry()) break;  // backoff over
          if (!was_draining && drain_deadline_) break;                    // shutting down: one more try now
          // notify() (a new entry) does not cut a backoff short: keep waiting
        }
        break;
      }
    }
  }
  finished_ = true;
}

}  // namespace wincert::agent
