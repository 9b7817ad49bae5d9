// The host-change log (issue 12): a job that started changing its host (JobContext::begin_host_change())
// is recorded durably before the host is touched, and the record is removed once the job's completion is
// stored in the outbox. A record found at start-up without a stored result means the agent was killed
// between the host change and the outbox write: the job is reported to Command as a Failure saying so
// (what to check on the host) instead of being run again, which would repeat its change (a second key
// and certificate for a reenrollment) with nobody told about the first.
//
// On disk: <directory>/host-changes/<16-digit sequence>.json, one small JSON object each (JobId, AuditId,
// CompletionEndpoint, what the job was doing), written atomically and durably. A damaged record is
// removed with a note (it can only come from a crash mid-write, which write_file_durably rules out, or
// from a person). Not thread-safe: used on the agent's executor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace wincert::agent {

struct HostChangeRecord {
  std::string job_id;
  std::int64_t audit_id = 0;
  std::string completion_endpoint;
  std::string what;  // "CertStores.WinCert.Management on store 'My' at host 'h1'"
  std::string file;
};

class HostChangeLog {
 public:
  static constexpr std::size_t kMaxRecordBytes = 16 * 1024;

  // Opens (creating it when missing) <directory>/host-changes and reads the records left there.
  static Result<std::unique_ptr<HostChangeLog>> open(const std::string& directory);

  // Records that `record.job_id` starts changing its host (durably: fsync'ed before it returns).
  Status record(HostChangeRecord record);
  // The job's result is safe (stored in the outbox): its record goes.
  void clear(const std::string& job_id);

  // Records found at open (a previous run was killed mid-change), and those of this run not cleared.
  std::vector<HostChangeRecord> records() const;
  bool contains(const std::string& job_id) const { return records_.count(job_id) != 0; }
  const std::vector<std::string>& recovery_notes() const { return notes_; }
  const std::string& directory() const { return dir_; }

 private:
  explicit HostChangeLog(std::string dir) : dir_(std::move(dir)) {}

  std::string dir_;
  std::map<std::string, HostChangeRecord> records_;  // by job id
  std::uint64_t next_seq_ = 1;
  std::vector<std::string> notes_;
};

}  // namespace wincert::agent
