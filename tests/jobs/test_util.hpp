// Helpers shared by the jobs tests: fixture reading and running coroutines to completion.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <exception>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>

namespace wincert::jobs::testing {

inline std::string fixture_path(const std::string& name) {
  return std::string(WINCERT_SHARED_DIR) + "/fixtures/jobs/" + name;
}

inline std::string read_fixture(const std::string& name) {
  std::ifstream in(fixture_path(name), std::ios::binary);
  if (!in) throw std::runtime_error("cannot read fixture " + fixture_path(name));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Runs one awaitable on a fresh io_context and returns its value (rethrows its exception).
template <typename T>
T run_awaitable(boost::asio::awaitable<T> task) {
  boost::asio::io_context io;
  std::optional<T> value;
  std::exception_ptr error;
  boost::asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T v) {
    error = e;
    if (!e) value = std::move(v);
  });
  io.run();
  if (error) std::rethrow_exception(error);
  return std::move(*value);
}

}  // namespace wincert::jobs::testing
