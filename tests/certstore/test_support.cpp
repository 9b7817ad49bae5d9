#include "test_support.hpp"

#include "certstore/remote/contract.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace wincert::certstore::testing {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string scripts_dir() { return WINCERT_CERTSTORE_SCRIPT_DIR; }
std::string vectors_dir() { return WINCERT_PKCS12_VECTORS; }
std::string test_data_dir() { return WINCERT_CERTSTORE_TEST_DATA; }

nlohmann::json load_contract(const std::string& op) {
  return nlohmann::json::parse(read_file(scripts_dir() + "/" + op + ".contract.json"));
}

namespace {
void collect_paths(const nlohmann::json& obj, const std::string& prefix, std::set<std::string>& out) {
  for (const auto& [key, value] : obj.items()) {
    const std::string path = prefix.empty() ? key : prefix + "." + key;
    out.insert(path);
    if (value.is_object()) collect_paths(value, path, out);
  }
}

void collect_names(const nlohmann::json& value, std::set<std::string>& out) {
  if (value.is_object()) {
    for (const auto& [key, child] : value.items()) {
      out.insert(key);
      collect_names(child, out);
    }
  } else if (value.is_array()) {
    for (const auto& child : value) collect_names(child, out);
  }
}
}  // namespace

std::set<std::string> argument_paths(const nlohmann::json& args) {
  std::set<std::string> out;
  if (args.is_object()) collect_paths(args, "", out);
  return out;
}

std::set<std::string> output_names(const nlohmann::json& doc) {
  std::set<std::string> out;
  collect_names(doc, out);
  return out;
}

void FakeRunner::answer_with_golden(const std::string& op) { answer(op, load_contract(op)["output"]); }

void FakeRunner::answer(const std::string& op, const nlohmann::json& doc, int exit_code) {
  answers_.insert_or_assign(op, Result<ScriptOutput>(ScriptOutput{doc.dump(), exit_code, ""}));
}

void FakeRunner::answer_raw(const std::string& op, ScriptOutput output) {
  answers_.insert_or_assign(op, Result<ScriptOutput>(std::move(output)));
}

void FakeRunner::fail_transport(const std::string& op, Error error) {
  answers_.insert_or_assign(op, Result<ScriptOutput>(std::move(error)));
}

boost::asio::awaitable<Result<ScriptOutput>> FakeRunner::run(std::string_view op, std::string_view script_text,
                                                             const nlohmann::json& args) {
  calls.push_back({std::string(op), args});
  // The backend must send the embedded script of exactly this op.
  if (!script_text.starts_with("# wincert-op: " + std::string(op) + "\n")) {
    contract_violations.push_back(std::string(op) + ": the script text is not the op's script");
  }
  if (const auto* fields = remote::find_op_fields(op); fields == nullptr) {
    contract_violations.push_back(std::string(op) + ": not in the contract table");
  } else if (!fields->free_form) {
    const std::set<std::string> allowed(fields->args.begin(), fields->args.end());
    for (const auto& path : argument_paths(args)) {
      if (!allowed.contains(path)) contract_violations.push_back(std::string(op) + ": unknown argument " + path);
    }
  }
  const auto it = answers_.find(op);
  if (it == answers_.end()) co_return Error::internal("fake runner: no answer for " + std::string(op));
  co_return it->second;
}

}  // namespace wincert::certstore::testing
