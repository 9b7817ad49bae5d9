#include "agent/platform/files.hpp"

#include <windows.h>

#include <io.h>

#include <atomic>
#include <filesystem>

#include "common/win32_acl.hpp"
#include "common/win32_text.hpp"

namespace wincert::agent::files {

namespace {

std::atomic<std::uint64_t> g_syncs{0};

struct FileHandle {
  HANDLE handle = INVALID_HANDLE_VALUE;
  ~FileHandle() {
    if (handle != INVALID_HANDLE_VALUE) ::CloseHandle(handle);
  }
};

std::string why(DWORD code) { return error_text(code); }

// The code follows the Win32 error: a full disk is resource_exhausted, a refused path permission_denied, a
// missing one not_found; anything else leaves the directory unusable for now (failed_precondition).
Error os_error(DWORD code, std::string message) {
  Error error = Error::failed_precondition(std::move(message) + why(code));
  if (code == ERROR_DISK_FULL || code == ERROR_HANDLE_DISK_FULL) error.code = ErrorCode::kResourceExhausted;
  if (code == ERROR_ACCESS_DENIED || code == ERROR_WRITE_PROTECT) error.code = ErrorCode::kPermissionDenied;
  if (code == ERROR_FILE_NOT_FOUND || code == ERROR_PATH_NOT_FOUND) error.code = ErrorCode::kNotFound;
  return std::move(error).with_system_status(SystemStatusKind::kWin32, code);
}

Status write_all(HANDLE file, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const DWORD chunk = static_cast<DWORD>(std::min<std::size_t>(data.size(), 1u << 30));
    DWORD written = 0;
    if (!::WriteFile(file, data.data(), chunk, &written, nullptr)) {
      const DWORD code = ::GetLastError();
      Error error = os_error(code, "cannot write '" + path + "': ");
      error.message += " (disk full?)";
      return error;
    }
    data.remove_prefix(written);
  }
  return {};
}

}  // namespace

std::string last_error_text() { return why(::GetLastError()); }

std::uint64_t sync_count() { return g_syncs.load(std::memory_order_relaxed); }

Status write_atomically(const std::string& dir, const std::string& temp_name, const std::string& name,
                        std::string_view header, std::string_view body) {
  const std::string temp = dir + "/" + temp_name;
  const std::string final_path = dir + "/" + name;
  const std::wstring temp_w = widen(temp);
  Status written;
  {
    FileHandle file;
    file.handle =
        ::CreateFileW(temp_w.c_str(), GENERIC_WRITE, 0, nullptr, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, nullptr);
    if (file.handle == INVALID_HANDLE_VALUE) return os_error(::GetLastError(), "cannot create '" + temp + "': ");
    written = write_all(file.handle, header, temp);
    if (written.ok()) written = write_all(file.handle, body, temp);
    // FlushFileBuffers is Windows' fsync: the data is on the disk before the rename makes it visible.
    g_syncs.fetch_add(2, std::memory_order_relaxed);  // the flush and the written-through rename
    if (written.ok() && !::FlushFileBuffers(file.handle))
      written = os_error(::GetLastError(), "cannot flush '" + temp + "' to disk: ");
  }
  if (!written.ok()) {
    ::DeleteFileW(temp_w.c_str());
    return written;
  }
  // NTFS journals the rename; WRITE_THROUGH returns only once it is on the disk.
  if (!::MoveFileExW(temp_w.c_str(), widen(final_path).c_str(), MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) {
    const DWORD code = ::GetLastError();
    ::DeleteFileW(temp_w.c_str());
    return os_error(code, "cannot rename '" + temp + "' to '" + final_path + "': ");
  }
  return {};
}

// No directory sync on Windows: each rename is written through, so the batch is a loop.
void write_atomically_batch(const std::string& dir, std::span<BatchWrite> writes) {
  for (BatchWrite& w : writes) w.outcome = write_atomically(dir, w.temp_name, w.name, w.header, w.body);
}

Status remove_file_lazily(const std::string& path) { return remove_file(path); }

Status remove_file(const std::string& path) {
  if (!::DeleteFileW(widen(path).c_str())) {
    const DWORD code = ::GetLastError();
    if (code != ERROR_FILE_NOT_FOUND && code != ERROR_PATH_NOT_FOUND)
      return os_error(code, "cannot remove '" + path + "': ");
  }
  return {};
}

// A protected DACL (SYSTEM, Administrators, this account), like chmod 0700: %ProgramData% lets Users read what
// inherits from it. Best effort as on POSIX; `service install` restricts the same paths and reports failures.
Status write_private_file(const std::string& path, std::string_view content) {
  const std::filesystem::path p(path);
  const std::string dir = p.parent_path().empty() ? "." : p.parent_path().string();
  WINCERT_TRY(write_atomically(dir, ".tmp-" + p.filename().string(), p.filename().string(), {}, content));
  return win32_acl::restrict_to_owner(path);
}

void restrict_to_owner(const std::string& directory) { (void)win32_acl::restrict_to_owner(directory); }

bool can_write(const std::string& path) { return ::_waccess(widen(path).c_str(), 2) == 0; }
bool can_read(const std::string& path) { return ::_waccess(widen(path).c_str(), 4) == 0; }

Status probe_write(const std::string& dir) {
  const std::string probe = dir + "/.doctor-probe-" + std::to_string(::GetCurrentProcessId());
  Status written = write_atomically(dir, ".tmp-doctor-probe-" + std::to_string(::GetCurrentProcessId()),
                                    probe.substr(dir.size() + 1), "probe\n", {});
  if (!written.ok()) return written.error().context("cannot write to '" + dir + "': ");
  (void)remove_file(probe);
  return {};
}

std::optional<std::string> secrets_file_exposure(const std::string& path) { return win32_acl::read_exposure(path); }
std::optional<std::string> key_file_exposure(const std::string& path) {
  auto exposure = win32_acl::read_exposure(path);
  if (exposure) *exposure = "the private key " + *exposure;
  return exposure;
}

}  // namespace wincert::agent::files
