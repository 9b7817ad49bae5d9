#include "agent/platform/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace wincert::agent::files {

namespace {

std::atomic<std::uint64_t> g_syncs{0};

int counted_fsync(int fd) {
  g_syncs.fetch_add(1, std::memory_order_relaxed);
  return ::fsync(fd);
}

// The code follows errno: a full disk is resource_exhausted, a refused path permission_denied, a missing
// one not_found; anything else leaves the directory unusable for now (failed_precondition).
Error os_error(int err, std::string message) {
  Error error = Error::failed_precondition(std::move(message));
  if (err == ENOSPC || err == EDQUOT) error.code = ErrorCode::kResourceExhausted;
  if (err == EACCES || err == EPERM || err == EROFS) error.code = ErrorCode::kPermissionDenied;
  if (err == ENOENT || err == ENOTDIR) error.code = ErrorCode::kNotFound;
  return std::move(error).with_system_status(SystemStatusKind::kErrno, static_cast<std::uint32_t>(err));
}

Status write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return os_error(errno, "cannot write '" + path + "': " + last_error_text() + " (disk full?)");
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Status sync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return os_error(errno, "cannot open directory '" + dir + "': " + last_error_text());
  const int rc = counted_fsync(fd);
  ::close(fd);
  if (rc != 0) return os_error(errno, "cannot sync directory '" + dir + "': " + last_error_text());
  return {};
}

}  // namespace

std::string last_error_text() { return std::strerror(errno); }

// The temp file written and flushed (removed when anything fails).
static Status write_synced_temp(const std::string& temp, std::string_view header, std::string_view body) {
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return os_error(errno, "cannot create '" + temp + "': " + last_error_text());
  Status written = write_all(fd, header, temp);
  if (written.ok()) written = write_all(fd, body, temp);
  if (written.ok() && counted_fsync(fd) != 0)
    written = os_error(errno, "cannot sync '" + temp + "': " + last_error_text());
  ::close(fd);
  if (!written.ok()) ::unlink(temp.c_str());
  return written;
}

static Status rename_into_place(const std::string& temp, const std::string& final_path) {
  if (::rename(temp.c_str(), final_path.c_str()) != 0) {
    const int err = errno;
    const std::string why = last_error_text();
    ::unlink(temp.c_str());
    return os_error(err, "cannot rename '" + temp + "' to '" + final_path + "': " + why);
  }
  return {};
}

std::uint64_t sync_count() { return g_syncs.load(std::memory_order_relaxed); }

Status write_atomically(const std::string& dir, const std::string& temp_name, const std::string& name,
                        std::string_view header, std::string_view body) {
  const std::string temp = dir + "/" + temp_name;
  WINCERT_TRY(write_synced_temp(temp, header, body));
  WINCERT_TRY(rename_into_place(temp, dir + "/" + name));
  return sync_directory(dir);
}

void write_atomically_batch(const std::string& dir, std::span<BatchWrite> writes) {
  bool renamed_any = false;
  for (BatchWrite& w : writes) {
    const std::string temp = dir + "/" + w.temp_name;
    w.outcome = write_synced_temp(temp, w.header, w.body);
    if (w.outcome.ok()) w.outcome = rename_into_place(temp, dir + "/" + w.name);
    renamed_any = renamed_any || w.outcome.ok();
  }
  if (!renamed_any) return;
  // One directory sync makes every rename above durable (and the lazy removals made since the last one).
  if (Status synced = sync_directory(dir); !synced.ok()) {
    for (BatchWrite& w : writes)
      if (w.outcome.ok()) w.outcome = synced;
  }
}

Status remove_file_lazily(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return os_error(errno, "cannot remove '" + path + "': " + last_error_text());
  return {};
}

Status remove_file(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return os_error(errno, "cannot remove '" + path + "': " + last_error_text());
  // Best effort: a removal lost in a crash only means one idempotent resend.
  const auto slash = path.find_last_of('/');
  (void)sync_directory(slash == std::string::npos ? "." : path.substr(0, slash));
  return {};
}

Status write_private_file(const std::string& path, std::string_view content) {
  const std::filesystem::path p(path);
  const std::string dir = p.parent_path().empty() ? "." : p.parent_path().string();
  return write_atomically(dir, ".tmp-" + p.filename().string(), p.filename().string(), {}, content);
}

void restrict_to_owner(const std::string& directory) { ::chmod(directory.c_str(), 0700); }

bool can_write(const std::string& path) { return ::access(path.c_str(), W_OK) == 0; }
bool can_read(const std::string& path) { return ::access(path.c_str(), R_OK) == 0; }

Status probe_write(const std::string& dir) {
  const std::string probe = dir + "/.doctor-probe-" + std::to_string(::getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return os_error(errno, "cannot create a file in '" + dir + "': " + last_error_text());
  const bool written = ::write(fd, "probe\n", 6) == 6 && ::fsync(fd) == 0;
  const int write_errno = written ? 0 : errno;
  const std::string write_error = written ? std::string() : last_error_text();
  ::close(fd);
  ::unlink(probe.c_str());
  if (!written) return os_error(write_errno, "cannot write to '" + dir + "': " + write_error);
  return {};
}

std::optional<std::string> secrets_file_exposure(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    return "'" + path + "' is readable by group or others: chmod 600 it";
  return std::nullopt;
}

std::optional<std::string> key_file_exposure(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    return "the private key '" + path + "' is readable by group or others: chmod 600 it (owned by the agent's user)";
  return std::nullopt;
}

}  // namespace wincert::agent::files
