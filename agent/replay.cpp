#include "agent/replay.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include "agent/local_ca.hpp"
#include "agent/local_sessions.hpp"
#include "common/encoding.hpp"
#include "common/log.hpp"
#include "common/peer_json.hpp"
#include "jobs/capabilities.hpp"
#include "jobs/job_config.hpp"

namespace wincert::agent {

namespace net = boost::asio;
using Json = nlohmann::ordered_json;

namespace {

const char* json_kind(const Json& j) {
  if (j.is_object()) return "an object";
  if (j.is_array()) return "an array";
  if (j.is_string()) return "a string";
  if (j.is_boolean()) return "a boolean";
  if (j.is_number()) return "a number";
  return "null";
}

// Parses JSON under the job configuration's limits, without quoting the input in the error (a job
// file holds passwords).
Result<Json> parse_json_text(std::string_view text, const std::string& what) {
  return parse_peer_ordered_json(text, peer_json_limits::kJobConfiguration, what);
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = path.find('.', start);
    parts.emplace_back(trim(path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start)));
    if (dot == std::string_view::npos) return parts;
    start = dot + 1;
  }
}

Status set_at(Json& node, const std::vector<std::string>& parts, std::size_t index, Json& value,
              const std::string& full_path, const std::string& walked) {
  const std::string& key = parts[index];
  if (key.empty()) return Error::invalid_argument("--set path '" + full_path + "' has an empty segment");
  const std::string here = walked.empty() ? key : walked + "." + key;
  if (node.is_null()) node = Json::object();
  if (!node.is_object()) {
    return Error::invalid_argument("--set " + full_path + ": " + walked + " is " + json_kind(node) + ", not an object");
  }
  auto it = node.end();
  for (auto i = node.begin(); i != node.end(); ++i) {
    if (iequals(i.key(), key)) {
      it = i;
      break;
    }
  }
  Json& child = it != node.end() ? it.value() : node[key];
  if (index + 1 == parts.size()) {
    child = std::move(value);
    return {};
  }
  if (child.is_string()) {
    // JSON text inside JSON (the UO's CertificateStoreDetails.Properties): edit the inner object.
    const std::string& text = child.get_ref<const std::string&>();
    Json inner = Json::object();
    if (!trim(text).empty()) {
      auto parsed = parse_json_text(text, here);
      if (!parsed.ok()) return parsed.error().context("--set " + full_path + ": ");
      inner = std::move(parsed.value());
    }
    if (!inner.is_object()) {
      return Error::invalid_argument("--set " + full_path + ": " + here +
                                     " is a string that does not hold a JSON object");
    }
    WINCERT_TRY(set_at(inner, parts, index + 1, value, full_path, here));
    child = inner.dump();
    return {};
  }
  return set_at(child, parts, index + 1, value, full_path, here);
}

Result<std::pair<std::string, std::string>> split_assignment(std::string_view assignment, std::string_view option) {
  const std::size_t eq = assignment.find('=');
  if (eq == std::string_view::npos || trim(assignment.substr(0, eq)).empty()) {
    // Only the part before '=' may be shown: the value could be a secret.
    return Error::invalid_argument(std::string(option) + " needs PATH=" + (option == "--set-env" ? "VAR" : "VALUE") +
                                   ", got '" + std::string(trim(assignment.substr(0, eq))) + "...'");
  }
  return std::make_pair(std::string(trim(assignment.substr(0, eq))), std::string(assignment.substr(eq + 1)));
}

Result<std::string> read_job_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return Error::not_found("cannot read the job file '" + path + "'");
  const auto size = static_cast<std::streamoff>(in.tellg());
  if (size < 0) return Error::failed_precondition("cannot read the job file '" + path + "'");
  if (static_cast<std::uintmax_t>(size) > peer_json_limits::kJobConfiguration.max_bytes)
    return Error::invalid_argument("the job file '" + path + "' is " + std::to_string(size) +
                                   " bytes, more than the 64 MiB a job configuration may have");
  std::string text(static_cast<std::size_t>(size), '\0');
  in.seekg(0);
  if (!in.read(text.data(), size)) return Error::failed_precondition("cannot read the job file '" + path + "'");
  return text;
}

// Runs a coroutine to completion on io (Result has no default constructor, hence the optional).
template <typename T>
T run_to_completion(net::io_context& io, net::awaitable<T> work) {
  std::optional<T> value;
  std::exception_ptr failure;
  auto wrapper = [](net::awaitable<T> inner, std::optional<T>& out) -> net::awaitable<void> {
    out.emplace(co_await std::move(inner));
  };
  net::co_spawn(io, wrapper(std::move(work), value), [&failure](std::exception_ptr e) { failure = e; });
  io.run();
  if (failure) std::rethrow_exception(failure);
  return std::move(*value);
}

// What the job hands to "Command" while it runs, captured for the output document.
struct Captured {
  std::optional<Json> inventory;
  std::optional<std::string> csr_pem;
  std::optional<std::string> issued_pem;
};

net::awaitable<jobs::JobResult> run_and_close(const jobs::CapabilityRegistry& registry, const jobs::JobConfig& config,
                                              const jobs::JobServices& services, WinrmSessionFactory& factory) {
  jobs::JobResult result = co_await jobs::run_job(registry, config, services);
  co_await factory.shutdown();  // delete the shell on the host instead of leaving it to its idle timeout
  co_return result;
}

}  // namespace

Json override_value(std::string_view text) {
  const std::string_view trimmed = trim(text);
  if (!trimmed.empty()) {
    auto parsed = parse_peer_ordered_json(trimmed, peer_json_limits::kJobConfiguration, "--set VALUE");
    if (parsed.ok()) return std::move(parsed.value());
  }
  return Json(std::string(text));
}

Status set_job_value(Json& job, std::string_view path, Json value) {
  const std::string full_path(trim(path));
  if (full_path.empty()) return Error::invalid_argument("--set needs PATH=VALUE, the path is empty");
  try {
    return set_at(job, split_path(full_path), 0, value, full_path, "");
  } catch (const std::exception&) {
    return Error::invalid_argument("--set " + full_path + " could not be applied");
  }
}

Result<Json> load_job_document(const ReplayOptions& options) {
  auto job = [&]() -> Result<Json> {
    auto raw = read_job_file(options.job_file);
    if (!raw.ok()) return raw.error();
    return parse_json_text(raw.value(), "the job file '" + options.job_file + "'");  // BOM skipped there
  }();  // the file's text is freed here, before the job runs
  if (!job.ok()) return job.error();
  if (!job->is_object()) {
    return Error::invalid_argument("the job file '" + options.job_file + "' must hold one JSON object, not " +
                                   json_kind(job.value()));
  }
  for (const auto& assignment : options.sets) {
    auto parts = split_assignment(assignment, "--set");
    if (!parts.ok()) return parts.error();
    WINCERT_TRY(set_job_value(job.value(), parts->first, override_value(parts->second)));
  }
  for (const auto& assignment : options.set_envs) {
    auto parts = split_assignment(assignment, "--set-env");
    if (!parts.ok()) return parts.error();
    const char* value = std::getenv(std::string(trim(parts->second)).c_str());
    if (value == nullptr) {
      return Error::invalid_argument("environment variable '" + std::string(trim(parts->second)) +
                                     "' (from --set-env " + parts->first + ") is not set");
    }
    WINCERT_TRY(set_job_value(job.value(), parts->first, Json(std::string(value))));
  }
  return job;
}

Result<std::string> load_job_text(const ReplayOptions& options) {
  auto job = load_job_document(options);
  if (!job.ok()) return job.error();
  return job->dump(-1, ' ', false, Json::error_handler_t::replace);
}

int replay_exit_code(jobs::JobStatus status) {
  switch (status) {
    case jobs::JobStatus::kSuccess:
      return 0;
    case jobs::JobStatus::kWarning:
      return 1;
    default:
      return 2;
  }
}

Result<ReplayOutcome> replay_job(const ReplayOptions& options) {
  auto document = load_job_document(options);  // parsed once and moved: no re-serialisation
  if (!document.ok()) return document.error();
  auto config = jobs::parse_job_config_document(std::move(document.value()));
  if (!config.ok()) return config.error().context("the job file '" + options.job_file + "': ");

  std::optional<LocalCa> ca;
  if (options.ca_certificate_file.empty() != options.ca_key_file.empty()) {
    return Error::invalid_argument("--ca-cert and --ca-key go together (the CA certificate and its private key, PEM)");
  }
  if (!options.ca_certificate_file.empty()) {
    auto loaded = LocalCa::load(options.ca_certificate_file, options.ca_key_file);
    if (!loaded.ok()) return loaded.error();
    ca = std::move(loaded.value());
  }

  Captured captured;
  jobs::JobServices services;
  services.target_options.default_auth = options.winrm.default_auth;
  // replay prints the whole inventory anyway: it is collected, not streamed.
  services.callbacks.begin_inventory =
      jobs::collect_inventory([&captured](std::vector<jobs::InventoryItem> items) -> net::awaitable<Status> {
        captured.inventory = jobs::to_json(items);
        co_return Status{};
      });
  services.callbacks.submit_csr =
      [&captured, &ca](const certstore::CertificateRequest& csr) -> net::awaitable<Result<std::string>> {
    captured.csr_pem = csr.pem();
    if (!ca) {
      co_return Error::failed_precondition(
          "replay has no Command to submit the CSR to; pass --ca-cert and --ca-key (PEM) to sign it locally");
    }
    auto issued = ca->issue(csr.info);
    if (!issued.ok()) co_return issued.error().context("signing with the --ca-cert CA: ");
    captured.issued_pem = pem_encode(issued.value(), "CERTIFICATE");
    co_return *captured.issued_pem;
  };

  // The io_context outlives the factory: its connections' sockets belong to it.
  net::io_context io(1);
  WinrmSessionFactory factory(options.winrm);
  SshSessionFactory ssh(options.ssh);
  StoreSessionRouter sessions(factory, &ssh);  // local targets: CryptoAPI in the Windows build
  services.sessions = &sessions;
  services.target_options.local_backend_available = local_backend_available();
  const jobs::CapabilityRegistry registry = jobs::make_default_registry();
  jobs::JobResult result = run_to_completion(io, run_and_close(registry, config.value(), services, factory));

  ReplayOutcome outcome;
  outcome.output["JobResult"] = jobs::to_json(result);
  if (captured.inventory) outcome.output["Inventory"] = std::move(*captured.inventory);
  if (captured.csr_pem) outcome.output["Csr"] = *captured.csr_pem;
  if (captured.issued_pem) outcome.output["IssuedCertificate"] = *captured.issued_pem;
  outcome.result = std::move(result);
  return outcome;
}

namespace {

struct ReplayFlags {
  ReplayOptions options;
  std::string auth_default = "negotiate";
  std::string execution_mode = "psrp";
  double connect_timeout_sec = 30;
  double operation_timeout_sec = 20;
  double command_timeout_sec = 600;
  bool insecure_skip_verify = false;
  std::string log_level = "warn";
};

std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000.0));
}

int run_replay_command(ReplayFlags& flags) {
  init_logging(flags.log_level);
  ReplayOptions& options = flags.options;
  WinrmSettings& settings = options.winrm;
  settings.default_auth = jobs::parse_auth_scheme(flags.auth_default).value_or(jobs::AuthScheme::kNegotiate);
  settings.execution_mode = jobs::parse_execution_mode(flags.execution_mode).value_or(jobs::ExecutionMode::kPsrp);
  settings.transport.connect.connect_timeout = to_ms(flags.connect_timeout_sec);
  settings.transport.connect.tls_handshake_timeout = settings.transport.connect.connect_timeout;
  settings.transport.connect.verify_peer = !flags.insecure_skip_verify;
  settings.session.operation_timeout = to_ms(flags.operation_timeout_sec);
  settings.session.command_deadline = to_ms(flags.command_timeout_sec);
  options.ssh.connect_timeout = settings.transport.connect.connect_timeout;
  options.ssh.operation_timeout = settings.session.command_deadline;
  if (settings.transport.client_certificate_file.empty() != settings.transport.client_key_file.empty()) {
    std::fprintf(stderr, "wincert-agent replay: --client-cert and --client-key go together\n");
    return 2;
  }
  auto outcome = replay_job(options);
  wait_for_ssh_sessions_to_end();  // the job's SSH connection (if any) disconnects cleanly before the exit
  if (!outcome.ok()) {
    std::fprintf(stderr, "wincert-agent replay: %s\n", outcome.error().message.c_str());
    return 2;
  }
  const std::string document = outcome->output.dump(2, ' ', false, Json::error_handler_t::replace);
  std::fprintf(stdout, "%s\n", document.c_str());
  std::fflush(stdout);
  return replay_exit_code(outcome->result.status);
}

}  // namespace

void add_replay_command(CLI::App& app) {
  auto flags = std::make_shared<ReplayFlags>();
  auto* cmd = app.add_subcommand("replay", "run one job configuration now and print its result as JSON");
  cmd->add_option("job", flags->options.job_file, "job configuration JSON (as the Universal Orchestrator gets it)")
      ->required();
  cmd->add_option("--set", flags->options.sets,
                  "PATH=VALUE: set a field by dotted path (keys case-insensitive; CertificateStoreDetails."
                  "Properties.KEY edits the Properties string); VALUE is JSON when it parses as JSON, else text")
      ->allow_extra_args(false);
  cmd->add_option("--set-env", flags->options.set_envs,
                  "PATH=VAR: set a field to the value of environment variable VAR (passwords, PFX contents)")
      ->allow_extra_args(false);
  cmd->add_option("--ca-cert", flags->options.ca_certificate_file, "PEM CA certificate that signs reenrollment CSRs");
  cmd->add_option("--ca-key", flags->options.ca_key_file, "unencrypted PEM private key of --ca-cert");
  cmd->add_option("--auth-default", flags->auth_default,
                  "WinRM authentication for stores without a 'WinRM Authentication' property")
      ->check(CLI::IsMember({"basic", "ntlm", "kerberos", "negotiate", "certificate"}))
      ->capture_default_str();
  cmd->add_option("--execution-mode", flags->execution_mode,
                  "how operations run on WinRM hosts: psrp (PowerShell remoting) or winrs (one powershell.exe each); "
                  "a store's ExecutionMode property wins")
      ->check(CLI::IsMember({"psrp", "winrs"}))
      ->capture_default_str();
  cmd->add_option("--ca-file", flags->options.winrm.transport.ca_file,
                  "PEM file of CAs trusted for the hosts' TLS certificates")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--insecure-skip-verify", flags->insecure_skip_verify,
                "do not verify the hosts' TLS certificates (logged; for testing only)");
  cmd->add_option("--client-cert", flags->options.winrm.transport.client_certificate_file,
                  "PEM client certificate for stores using certificate authentication")
      ->check(CLI::ExistingFile);
  cmd->add_option("--client-key", flags->options.winrm.transport.client_key_file, "PEM private key of --client-cert")
      ->check(CLI::ExistingFile);
  cmd->add_option("--connect-timeout", flags->connect_timeout_sec, "TCP/TLS connect timeout in seconds")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  cmd->add_option("--operation-timeout", flags->operation_timeout_sec, "WS-Man OperationTimeout in seconds")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  cmd->add_option("--command-timeout", flags->command_timeout_sec, "deadline of one script run in seconds")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 86400.0));
  cmd->add_option("--ssh-known-hosts", flags->options.ssh.known_hosts_file,
                  "known-hosts file for stores whose 'WinRM Protocol' is ssh (the host key is always checked)");
  cmd->add_flag("--ssh-trust-on-first-use", flags->options.ssh.trust_on_first_use,
                "with --ssh-known-hosts: accept and record an unknown host key (never a changed one)");
  cmd->add_option("--log-level", flags->log_level, "trace|debug|info|warn|error|off (logs go to stderr)")
      ->capture_default_str();
  // Runs right after parsing and ends the process: stdout carries only the result document, and the
  // exit code (0/1/2) must not pass through main's parse-error mapping.
  cmd->callback([flags] {
    const int code = run_replay_command(*flags);
    std::fflush(nullptr);
    std::exit(code);
  });
}

}  // namespace wincert::agent
