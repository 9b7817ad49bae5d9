// The few file-system operations the agent needs that differ between POSIX and Windows: durable atomic
// writes (the outbox, schedules), owner-only directories, and access checks for doctor. One interface,
// two implementations selected by CMake (files_posix.cpp, files_windows.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace wincert::agent::files {

// Writes header + body to dir/name so that a crash leaves either the old file or the whole new one:
// written to dir/temp_name, flushed to the disk, renamed over dir/name, and the rename made durable
// (POSIX: fsync of the directory; Windows: MoveFileEx with MOVEFILE_WRITE_THROUGH). The temp file is
// removed when anything fails.
Status write_atomically(const std::string& dir, const std::string& temp_name, const std::string& name,
                        std::string_view header, std::string_view body);

// One file of write_atomically_batch(): written as dir/temp_name, renamed to dir/name; `outcome` says how it went.
struct BatchWrite {
  std::string temp_name;
  std::string name;
  std::string_view header;
  std::string_view body;
  Status outcome;
};

// write_atomically() for many files of one directory, made durable together (a group commit): every file is
// written and flushed, then all are renamed, then the directory is synced once for all the renames
// (Windows: each rename is written through). A file whose outcome is an error was not made visible, or its
// rename is not known to be durable.
void write_atomically_batch(const std::string& dir, std::span<BatchWrite> writes);

// write_atomically() for a private key: the file is owner-only whatever its directory allows (POSIX: created
// 0600, as every file write_atomically makes; Windows: the protected owner-only DACL of common/win32_acl.hpp
// set on it, so it does not inherit a readable ACL).
Status write_private_file(const std::string& path, std::string_view content);

// Removes a file (a missing one is not an error) and makes the removal durable where that is cheap.
Status remove_file(const std::string& path);

// Removes a file without syncing its directory: the next sync of the directory (a later group commit) makes
// the removal durable. For files whose removal, if lost in a power cut, only means an idempotent resend.
Status remove_file_lazily(const std::string& path);

// How many times this process forced data to the disk through these functions (fsync / FlushFileBuffers,
// directory syncs and written-through renames included): the agent reports it per job.
std::uint64_t sync_count();

// Best effort: only the agent's own account may read the directory (POSIX mode 0700; Windows: a protected
// DACL for SYSTEM, Administrators and this account, common/win32_acl.hpp).
void restrict_to_owner(const std::string& directory);

// access(2)-style checks for doctor's messages: may this process write / read the path?
bool can_write(const std::string& path);
bool can_read(const std::string& path);

// Creates, writes, flushes and deletes a probe file in dir: a real write (access() says yes to root
// even on a read-only mount). The error names the directory and the system's reason.
Status probe_write(const std::string& dir);

// Why a secrets file is too open to trust, or nullopt. POSIX: group/other permission bits. Windows: an ACL
// entry letting anyone but SYSTEM, Administrators, the owner or this account read it.
std::optional<std::string> secrets_file_exposure(const std::string& path);
// The same check for a private key file (KeyPath, WinRM.ClientKeyPath).
std::optional<std::string> key_file_exposure(const std::string& path);

// The last system error (errno / GetLastError) as text.
std::string last_error_text();

}  // namespace wincert::agent::files
