#include "sim/winhost/windows_model.hpp"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/log.hpp"
#include "sim/winhost/model/certificate_host.hpp"

namespace wincert::sim {

WindowsModel::WindowsModel() {
  data_ = {
      {"hostname", "WINHOST01"}, {"os_build", 20348}, {"os_version", "10.0.20348"}, {"ps_version", "5.1.20348.2582"}};
  register_builtin_operations();
  model::install(*this);  // the default host's stores, IIS, SQL Server, providers and their operations
}

Result<WindowsModel> WindowsModel::load(const std::string& path) {
  WindowsModel model;
  model.path_ = path;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    // A model file that does not exist yet starts as the default machine and is created on first save.
    logger("sim")->info("model file {} does not exist; starting with the default machine", path);
    return model;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  auto parsed = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object())
    return Error::invalid_argument("model file " + path + " is not a JSON object: fix or delete it");
  for (auto& [key, value] : parsed.items()) model.data_[key] = value;
  return model;
}

Status WindowsModel::save() const {
  if (path_.empty()) return {};
  return save_to(path_);
}

Status WindowsModel::save_to(const std::string& path) const {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out)
      return Error::failed_precondition("cannot write the model file " + tmp + ": check the directory permissions");
    out << data_.dump(2) << "\n";
    if (!out) return Error::resource_exhausted("writing the model file " + tmp + " failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return Error::failed_precondition("cannot replace the model file " + path);
  return {};
}

std::string WindowsModel::hostname() const { return data_.value("hostname", std::string("WINHOST01")); }
int WindowsModel::os_build() const { return data_.value("os_build", 20348); }
std::string WindowsModel::os_version() const { return data_.value("os_version", std::string("10.0.20348")); }
std::string WindowsModel::ps_version() const { return data_.value("ps_version", std::string("5.1.20348.2582")); }

OperationOutcome WindowsModel::run_operation(const std::string& name, const nlohmann::json& args) {
  auto it = operations_.find(name);
  if (it == operations_.end())
    return OperationOutcome::failure("The operation '" + name + "' is not implemented by this host.", "NotImplemented");
  OperationOutcome outcome;
  try {
    outcome = it->second(*this, args);
  } catch (const std::exception& e) {
    // json type errors on malformed arguments end up here: a failed operation, not a crashed host.
    outcome = OperationOutcome::failure("The operation '" + name + "' failed: " + e.what(), "InvalidArgument");
  }
  if (dirty_) {
    dirty_ = false;
    if (auto st = save(); !st) logger("sim")->error("{}", st.error().message);
  }
  return outcome;
}

void WindowsModel::register_builtin_operations() {
  operations_["echo"] = [](WindowsModel&, const nlohmann::json& args) { return OperationOutcome::success(args); };
  operations_["host-info"] = [](WindowsModel& m, const nlohmann::json&) {
    return OperationOutcome::success(nlohmann::json{{"Hostname", m.hostname()},
                                                    {"OsBuild", m.os_build()},
                                                    {"OsVersion", m.os_version()},
                                                    {"PsVersion", m.ps_version()}});
  };
}

}  // namespace wincert::sim
