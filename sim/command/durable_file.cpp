#include "sim/command/durable_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace wincert::sim::command {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// A failed file call, coded by what errno says (a full disk is not a permission problem), errno kept as detail.
Error file_error(const std::string& what) {
  const int err = errno;
  if (err == 0) return Error::failed_precondition(what);
  const std::string message = what + ": " + std::strerror(err);
  ErrorCode code = ErrorCode::kFailedPrecondition;
  if (err == EACCES || err == EPERM || err == EROFS) code = ErrorCode::kPermissionDenied;
  if (err == ENOSPC || err == EDQUOT) code = ErrorCode::kResourceExhausted;
  if (err == ENOENT || err == ENOTDIR) code = ErrorCode::kNotFound;
  return Error::make(code, message).with_system_status(SystemStatusKind::kErrno, static_cast<std::uint32_t>(err));
}

}  // namespace

Status write_file_durably(const std::string& path, std::string_view data, mode_t mode) {
  const std::string tmp = path + ".tmp";
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (fd.get() < 0) return file_error("cannot create " + tmp);
  std::size_t written = 0;
  while (written < data.size()) {
    const ssize_t n = ::write(fd.get(), data.data() + written, data.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return file_error("cannot write " + tmp);
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return file_error("cannot fsync " + tmp);
  if (::close(fd.release()) != 0) return file_error("cannot close " + tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return file_error("cannot rename " + tmp + " to " + path);
  // The rename itself is durable only once the directory entry is on disk.
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  Fd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() >= 0) ::fsync(dir_fd.get());
  return {};
}

Result<std::string> read_small_file(const std::string& path, std::size_t max_bytes) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) return file_error("cannot read " + path);
  std::string data;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    data.append(buf, static_cast<std::size_t>(in.gcount()));
    if (data.size() > max_bytes)
      return Error::invalid_argument(path + " is larger than " + std::to_string(max_bytes) + " bytes");
  }
  return data;
}

}  // namespace wincert::sim::command
