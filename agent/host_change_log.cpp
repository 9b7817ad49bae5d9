#include "agent/host_change_log.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "agent/outbox.hpp"
#include "agent/platform/files.hpp"
#include "common/peer_json.hpp"

namespace wincert::agent {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string sequence_name(std::uint64_t seq) {
  char name[32];
  std::snprintf(name, sizeof name, "%016llu.json", static_cast<unsigned long long>(seq));
  return name;
}

// One record file, or why it is not one.
Result<HostChangeRecord> read_record(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) return Error::failed_precondition("cannot read it: " + ec.message());
  if (size > HostChangeLog::kMaxRecordBytes) return Error::invalid_argument("it is too large");
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  WINCERT_ASSIGN_OR_RETURN(const json doc, parse_peer_json(text.str(), peer_json_limits::kOutboxHeader, "record"));
  if (!doc.is_object()) return Error::invalid_argument("it is not a JSON object");
  HostChangeRecord record;
  const auto text_of = [&](const char* key, std::string& out) {
    if (const auto it = doc.find(key); it != doc.end() && it->is_string()) out = it->get<std::string>();
  };
  text_of("JobId", record.job_id);
  text_of("CompletionEndpoint", record.completion_endpoint);
  text_of("What", record.what);
  if (const auto it = doc.find("AuditId"); it != doc.end() && it->is_number_integer())
    record.audit_id = it->get<std::int64_t>();
  if (record.job_id.empty() || record.job_id.size() > kMaxOutboxIdBytes ||
      record.completion_endpoint.size() > kMaxOutboxIdBytes)
    return Error::invalid_argument("it names no usable JobId");
  record.file = path.string();
  return record;
}

}  // namespace

Result<std::unique_ptr<HostChangeLog>> HostChangeLog::open(const std::string& directory) {
  std::unique_ptr<HostChangeLog> log(new HostChangeLog(directory + "/host-changes"));
  std::error_code ec;
  fs::create_directories(log->dir_, ec);
  if (ec)
    return Error::failed_precondition("cannot create the directory '" + log->dir_ + "': " + ec.message() +
                                      " (check OutboxDirectory and its owner)");
  files::restrict_to_owner(log->dir_);
  std::vector<fs::path> paths;
  for (const auto& item : fs::directory_iterator(log->dir_, ec)) paths.push_back(item.path());
  if (ec) return Error::failed_precondition("cannot list the directory '" + log->dir_ + "': " + ec.message());
  std::sort(paths.begin(), paths.end());
  for (const auto& path : paths) {
    const std::string name = path.filename().string();
    unsigned long long seq = 0;
    if (name.size() == 21 && std::sscanf(name.c_str(), "%16llu.json", &seq) == 1)
      log->next_seq_ = std::max<std::uint64_t>(log->next_seq_, seq + 1);
    auto record = read_record(path);
    if (!record.ok()) {
      log->notes_.push_back("removed the damaged host-change record '" + path.string() +
                            "': " + record.error().message);
      (void)files::remove_file(path.string());
      continue;
    }
    if (log->records_.count(record->job_id)) (void)files::remove_file(log->records_[record->job_id].file);
    log->records_[record->job_id] = std::move(record.value());
  }
  return log;
}

Status HostChangeLog::record(HostChangeRecord record) {
  if (records_.count(record.job_id)) return Status{};  // already recorded (a redone step)
  json doc = json::object();
  doc["JobId"] = record.job_id;
  doc["AuditId"] = record.audit_id;
  doc["CompletionEndpoint"] = record.completion_endpoint;
  doc["What"] = record.what;
  record.file = dir_ + "/" + sequence_name(next_seq_++);
  WINCERT_TRY(write_file_durably(record.file, doc.dump(-1, ' ', false, json::error_handler_t::replace)));
  records_[record.job_id] = std::move(record);
  return Status{};
}

void HostChangeLog::clear(const std::string& job_id) {
  const auto it = records_.find(job_id);
  if (it == records_.end()) return;
  (void)files::remove_file(it->second.file);
  records_.erase(it);
}

std::vector<HostChangeRecord> HostChangeLog::records() const {
  std::vector<HostChangeRecord> out;
  for (const auto& [id, record] : records_) out.push_back(record);
  return out;
}

}  // namespace wincert::agent
