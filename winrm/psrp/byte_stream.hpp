// OutOfProcChannel: the line-oriented byte stream under the OutOfProc transport (a `pwsh -s` child's
// stdin/stdout, an SSH channel to the `powershell` subsystem). The runspace pool reads and writes packets
// through it and never sees which one it is.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "winrm/psrp/outofproc.hpp"

namespace wincert::winrm::psrp {

class OutOfProcChannel {
 public:
  virtual ~OutOfProcChannel() = default;

  // Writes one line and its "\n" (the line must not contain one: a blank line ends the server's session).
  // Fails with kDeadlineExceeded when the peer does not take it within the channel's write timeout.
  virtual boost::asio::awaitable<Status> write_line(std::string line) = 0;
  // The next line without its "\n" (a "\r" before it is kept; decode_packet drops it). Errors:
  // kDeadlineExceeded after `timeout` without a whole line (the partial line is kept for the next read),
  // kResourceExhausted for a line over the channel's limit, kUnavailable when the peer closed or died
  // (with what it said on stderr, if anything).
  virtual boost::asio::awaitable<Result<std::string>> read_line(std::chrono::milliseconds timeout) = 0;
  // Ends the session: closes the peer's input, then stops and reaps the peer. Idempotent.
  virtual boost::asio::awaitable<Status> close() = 0;
  // For messages: "pwsh child 1234 (/usr/bin/pwsh)", "ssh root@host:22".
  virtual std::string describe() const = 0;

  boost::asio::awaitable<Status> write_packet(const OutOfProcPacket& packet) {
    auto line = encode_packet(packet);
    if (!line.ok()) co_return std::move(line).error();
    co_return co_await write_line(std::move(line).value());
  }
  boost::asio::awaitable<Result<OutOfProcPacket>> read_packet(std::chrono::milliseconds timeout) {
    auto line = co_await read_line(timeout);
    if (!line.ok()) co_return std::move(line).error();
    auto packet = decode_packet(line.value());
    if (!packet.ok()) co_return std::move(packet).error().context("from " + describe() + ": ");
    co_return packet;
  }
};

// Accumulates bytes and hands out whole lines, refusing a line over the limit. Shared by the channels.
class LineBuffer {
 public:
  explicit LineBuffer(std::size_t max_line_bytes) : max_line_bytes_(max_line_bytes) {}

  void append(std::string_view bytes) { buffer_.append(bytes); }
  // A whole line (without "\n") if one is buffered; kResourceExhausted once the pending line is over the
  // limit (with or without its end).
  Result<std::optional<std::string>> next_line() {
    const auto end = buffer_.find('\n');
    const std::size_t length = end == std::string::npos ? buffer_.size() : end;
    if (length > max_line_bytes_) {
      return Error::resource_exhausted("a line from the PowerShell server is over the limit of " +
                                       std::to_string(max_line_bytes_) + " bytes");
    }
    if (end == std::string::npos) return std::optional<std::string>();
    std::string line = buffer_.substr(0, end);
    buffer_.erase(0, end + 1);
    return std::optional<std::string>(std::move(line));
  }
  bool empty() const { return buffer_.empty(); }
  std::size_t max_line_bytes() const { return max_line_bytes_; }

 private:
  std::size_t max_line_bytes_;
  std::string buffer_;
};

}  // namespace wincert::winrm::psrp
