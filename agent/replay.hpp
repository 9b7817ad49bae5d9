// `wincert-agent replay JOB.json`: runs one Universal Orchestrator job configuration now, against the
// real host over WinRM, and prints what the job would have sent to Command as one JSON object:
//   {"JobResult": {"Result", "JobHistoryId", "FailureMessage"}, "Inventory": [...] (inventory jobs),
//    "Csr": "PEM" and "IssuedCertificate": "PEM" (reenrollment)}
// Exit code: 0 Success, 1 Warning, 2 Failure; 2 also for unusable input (message on stderr, nothing
// on stdout). Placeholders of a test file are replaced with --set PATH=VALUE (dotted path, keys
// case-insensitive, into the Properties string too) and secrets with --set-env PATH=VAR. There is no
// Command: a reenrollment CSR is signed locally with --ca-cert/--ca-key, or the job fails saying so.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "agent/ssh_sessions.hpp"
#include "agent/store_sessions.hpp"
#include "common/result.hpp"
#include "jobs/job_result.hpp"
#include "jobs/target.hpp"

namespace wincert::agent {

// The value of `--set PATH=VALUE`: VALUE read as JSON when it is JSON (a number, true, false, null, an
// object, an array, a "quoted string"), else VALUE itself as a string.
nlohmann::ordered_json override_value(std::string_view text);

// Sets PATH in a job document: dot-separated keys matched case-insensitively (a missing key is created
// with the given spelling, a null on the way becomes an object). A string on the way that holds a JSON
// object (CertificateStoreDetails.Properties) is parsed, edited and written back as a string. Errors
// name the path, never the value (it may be a secret).
Status set_job_value(nlohmann::ordered_json& job, std::string_view path, nlohmann::ordered_json value);

struct ReplayOptions {
  std::string job_file;
  std::vector<std::string> sets;      // "PATH=VALUE"
  std::vector<std::string> set_envs;  // "PATH=VAR": the variable's value, always as a string
  std::string ca_certificate_file;    // PEM CA that signs reenrollment CSRs (with ca_key_file)
  std::string ca_key_file;
  WinrmSettings winrm;  // the same settings as the agent's "WinRM" section, here from flags
  SshSettings ssh;      // the "Ssh" section's, from flags
};

// Reads JOB.json (UTF-8 BOM tolerated; size, depth and width limited like a job configuration from
// Command) and applies the overrides; returns the edited document.
Result<nlohmann::ordered_json> load_job_document(const ReplayOptions& options);
// The same as JSON text.
Result<std::string> load_job_text(const ReplayOptions& options);

struct ReplayOutcome {
  jobs::JobResult result;
  nlohmann::ordered_json output;  // the document replay prints
};

// Loads, overrides, parses and runs the job on its own io_context. An Error means unusable input
// (unreadable file, bad JSON, bad override, unusable CA files): nothing was run.
Result<ReplayOutcome> replay_job(const ReplayOptions& options);

int replay_exit_code(jobs::JobStatus status);  // 0 Success, 1 Warning, 2 Failure/Unknown

// Registers the `replay` subcommand. When it is parsed, it runs the job, prints the result and ends
// the process with the exit code above (so main() needs just this one line).
void add_replay_command(CLI::App& app);

}  // namespace wincert::agent
