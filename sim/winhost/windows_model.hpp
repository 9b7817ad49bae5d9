// The simulated Windows machine: what `# wincert-op: NAME` scripts read and change. Loaded from and saved
// to a JSON file (--model); unknown keys are kept so later features (stores, IIS, SQL) can add their own.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <string>

#include "common/result.hpp"

namespace wincert::sim {

// A failed operation, as the script would report it: {"error":{"message":...,"category":...}}.
struct OperationError {
  std::string message;
  std::string category = "NotSpecified";  // PowerShell ErrorCategory name
};

struct OperationOutcome {
  bool ok = true;
  nlohmann::json result;  // when ok
  OperationError error;   // when !ok

  static OperationOutcome success(nlohmann::json value) { return {true, std::move(value), {}}; }
  static OperationOutcome failure(std::string message, std::string category = "NotSpecified") {
    return {false, nullptr, OperationError{std::move(message), std::move(category)}};
  }
};

class WindowsModel {
 public:
  using Operation = std::function<OperationOutcome(WindowsModel&, const nlohmann::json& args)>;

  WindowsModel();  // the default machine: WINHOST01, Windows Server 2022 (build 20348), PowerShell 5.1
  static Result<WindowsModel> load(const std::string& path);
  // Writes the model atomically (temp file + rename) to the file it was loaded from, if any.
  Status save() const;
  Status save_to(const std::string& path) const;
  // A copy that lives only in memory (never saved): the extra hosts of `winhost-sim --hosts N`.
  WindowsModel copy_unsaved() const {
    WindowsModel copy = *this;
    copy.path_.clear();
    copy.dirty_ = false;
    return copy;
  }

  std::string hostname() const;
  int os_build() const;
  std::string os_version() const;
  std::string ps_version() const;

  nlohmann::json& data() { return data_; }
  const nlohmann::json& data() const { return data_; }

  // Runs a named operation. Unknown names fail like a script that does not exist would.
  // Operations that change the model mark it dirty; run_operation saves a dirty model to its file.
  OperationOutcome run_operation(const std::string& name, const nlohmann::json& args);
  bool has_operation(const std::string& name) const { return operations_.count(name) != 0; }
  // Adds or replaces an operation (the certificate-store operations plug in here).
  void register_operation(const std::string& name, Operation op) { operations_[name] = std::move(op); }
  void mark_dirty() { dirty_ = true; }

 private:
  void register_builtin_operations();

  nlohmann::json data_;
  std::string path_;
  bool dirty_ = false;
  std::map<std::string, Operation> operations_;
};

}  // namespace wincert::sim
