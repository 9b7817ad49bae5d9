// Shared helpers for the certstore tests: files, running coroutines to completion, the golden
// contract files, and a fake ScriptRunner that answers with golden outputs and records requests.
#pragma once

#include "certstore/script_runner.hpp"
#include "common/result.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace wincert::certstore::testing {

std::string read_file(const std::string& path);
std::string scripts_dir();
std::string vectors_dir();
std::string test_data_dir();

// certstore/scripts/<op>.contract.json
nlohmann::json load_contract(const std::string& op);

// "Parent" and "Parent.Child" for nested objects; arrays and scalars are leaves.
std::set<std::string> argument_paths(const nlohmann::json& args);
// Every property name in an output document, nested objects and objects inside arrays included.
std::set<std::string> output_names(const nlohmann::json& doc);

template <typename T>
Result<T> run_sync(boost::asio::awaitable<Result<T>> task) {
  boost::asio::io_context io;
  std::optional<Result<T>> out;
  boost::asio::co_spawn(
      io, [&]() -> boost::asio::awaitable<void> { out.emplace(co_await std::move(task)); }, boost::asio::detached);
  io.run();
  if (!out) return Error::internal("the coroutine did not finish");
  return std::move(*out);
}

struct RecordedCall {
  std::string op;
  nlohmann::json args;
};

class FakeRunner : public ScriptRunner {
 public:
  // Answers op with the contract file's example output (exit 0).
  void answer_with_golden(const std::string& op);
  void answer(const std::string& op, const nlohmann::json& doc, int exit_code = 0);
  void answer_raw(const std::string& op, ScriptOutput output);
  void fail_transport(const std::string& op, Error error);

  boost::asio::awaitable<Result<ScriptOutput>> run(std::string_view op, std::string_view script_text,
                                                   const nlohmann::json& args) override;
  std::string host() const override { return "web01.corp.example.com"; }

  std::vector<RecordedCall> calls;
  std::vector<std::string> contract_violations;  // requests that used names outside the op's table

 private:
  std::map<std::string, Result<ScriptOutput>, std::less<>> answers_;
};

}  // namespace wincert::certstore::testing
