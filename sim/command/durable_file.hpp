// Crash-safe file writes for the simulator's state: a reader (or the next start) sees either the old
// or the new content, never a torn file, even across a power cut.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace wincert::sim::command {

// Writes `data` to path.tmp, fsyncs it, renames it over `path` and fsyncs the directory.
// `mode` applies to a newly created file (state and keys are 0600: they hold passwords and keys). Errors
// are coded from errno (kPermissionDenied, kResourceExhausted for a full disk, kNotFound for a missing
// directory, kFailedPrecondition otherwise) and keep it as detail.
Status write_file_durably(const std::string& path, std::string_view data, mode_t mode = 0600);

// Reads a whole file of at most max_bytes; a missing file is kNotFound, a larger one kInvalidArgument.
Result<std::string> read_small_file(const std::string& path, std::size_t max_bytes);

}  // namespace wincert::sim::command
