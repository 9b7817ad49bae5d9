// Test support for command-sim: the real binary started as a child process on 127.0.0.1 port 0 with a
// temporary --state directory, a small blocking HTTP(S) client with timeouts, and helpers that play an
// agent (register, fetch configuration, complete) and the administrator.
#pragma once

#include <gtest/gtest.h>

#include <sys/types.h>
#include <boost/beast/http/verb.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace wincert::sim::command::testing {

using Json = nlohmann::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

// A directory removed with its contents at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

void write_text(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);

struct HttpResult {
  unsigned status = 0;  // 0 when the exchange failed (see error)
  std::string body;
  std::multimap<std::string, std::string> headers;  // lowercase names
  std::string error;                                // transport failure: refused, closed, timeout, TLS
  std::chrono::milliseconds elapsed{0};

  Json json() const;  // the body parsed (a JSON null when it is not JSON)
  std::vector<std::string> header_values(const std::string& lowercase_name) const;
};

struct TlsOptions {
  std::string ca_file;    // trust anchor for the server certificate
  std::string cert_file;  // client certificate (PEM), optional
  std::string key_file;
};

class HttpClient {
 public:
  explicit HttpClient(unsigned short port, std::optional<TlsOptions> tls = std::nullopt)
      : port_(port), tls_(std::move(tls)) {}
  // One request on a fresh connection.
  HttpResult request(boost::beast::http::verb method, const std::string& target, const std::string& body = {},
                     const Headers& headers = {}, std::chrono::milliseconds timeout = std::chrono::seconds(15)) const;
  HttpResult post(const std::string& target, const Json& body, const Headers& headers = {}) const;
  HttpResult get(const std::string& target, const Headers& headers = {}) const;
  unsigned short port() const { return port_; }

 private:
  unsigned short port_;
  std::optional<TlsOptions> tls_;
};

// command-sim as a child process. Its output goes to STATE_PARENT/command-sim-N.log.
class CommandSim {
 public:
  CommandSim(std::filesystem::path state_dir, std::vector<std::string> extra_args = {},
             std::map<std::string, std::string> env = {});
  ~CommandSim();
  CommandSim(const CommandSim&) = delete;
  CommandSim& operator=(const CommandSim&) = delete;

  // Starts the process and waits (bounded) until it wrote its port file.
  void start();
  // SIGTERM, then SIGKILL if it does not exit within a few seconds. Returns the exit status (-1 if killed).
  int stop();
  void restart() {
    stop();
    start();
  }
  unsigned short port() const { return port_; }
  const std::filesystem::path& state_dir() const { return state_dir_; }
  std::string log() const;

 private:
  std::filesystem::path state_dir_;
  std::vector<std::string> extra_args_;
  std::map<std::string, std::string> env_;
  pid_t pid_ = -1;
  unsigned short port_ = 0;
  std::string log_file_;
  int starts_ = 0;
};

// ---- protocol helpers (plain HTTP on the default /KeyfactorAgents base)

extern const std::vector<std::string> kDefaultCapabilities;

struct Registration {
  HttpResult http;
  Json response;  // the body
  std::string token;
  std::string agent_id;
  Json jobs = Json::array();
  int status() const { return response["Result"]["Status"].get<int>(); }
  std::string code() const;     // Result.Error.CodeString or ""
  std::string message() const;  // Result.Error.Message or ""
};

// As a Universal Orchestrator (AgentPlatform 1) unless `platform` says otherwise (5: Keyfactor's C agent).
Registration register_agent(const HttpClient& client, const std::string& machine, const std::string& agent_id = "",
                            const std::vector<std::string>& capabilities = kDefaultCapabilities,
                            const Headers& headers = {}, const std::string& csr_base64 = {}, int platform = 1);
// Resolves an endpoint handed out by the server the way an agent must: absolute URL, "/"-rooted path,
// or "KeyfactorAgents/"-prefixed relative path appended to the base URL http://127.0.0.1:PORT/KeyfactorAgents.
std::string resolve_endpoint(const std::string& endpoint);
// POSTs {SessionToken, JobId, ...extra} to an endpoint from a job entry or configuration.
HttpResult call_endpoint(const HttpClient& client, const std::string& endpoint, const std::string& token,
                         const std::string& job_id, const Json& extra = Json::object(), const Headers& headers = {});
// The entry of Jobs with this JobId (a JSON null when absent).
Json find_job(const Json& jobs, const std::string& job_id);

// Creates a store for an orchestrator (a GUID: a registered one; else a name that may register later)
// with WinRM properties for winhost-sim, and returns its id.
std::string create_store_with(const HttpClient& client, const std::string& agent, const std::string& type = "WinCert",
                              const std::string& client_machine = "winhost1", Json properties = Json::object());

// Admin calls that must succeed (the test fails with the response otherwise).
Json admin_get(const HttpClient& client, const std::string& path);
Json admin_post(const HttpClient& client, const std::string& path, const Json& body = Json::object());
Json admin_put(const HttpClient& client, const std::string& path, const Json& body);

// ---- crypto helpers

// A PKCS#10 request (base64 DER) with a fresh RSA key, the subject ("CN=a, O=b": most specific first)
// and SANs as "dns:x" / "ip:1.2.3.4" / "email:x" / "uri:x" entries.
std::string make_csr_base64(const std::string& subject, const std::vector<std::string>& sans);
// PEM text of a DER certificate.
std::string der_to_pem(const std::string& der);
// True when `leaf_der` verifies against the CA certificate (DER) as its only trust anchor.
bool verifies_against(const std::string& leaf_der, const std::string& ca_der, std::string* why = nullptr);

// A throwaway PKI in a directory: ca.pem (a CA made by command-sim's CertificateAuthority), a server
// certificate for 127.0.0.1 and client certificates by CN; returns file paths.
struct TestPki {
  explicit TestPki(const std::filesystem::path& dir, const std::string& name = "pki");
  std::string ca_file;
  std::string server_cert;
  std::string server_key;
  // Writes NAME.pem/NAME.key for a client certificate with CN=cn signed by this CA.
  std::pair<std::string, std::string> client(const std::string& cn) const;

 private:
  std::filesystem::path dir_;
};

// A test that starts one command-sim (plain HTTP) in a fresh temporary directory.
class SimFixture : public ::testing::Test {
 protected:
  // Starts command-sim with these options (state in DIR/state).
  void start(std::vector<std::string> args = {"--auto-approve"}, std::map<std::string, std::string> env = {});
  // Creates a store for an orchestrator (id or name) and returns its id.
  std::string create_store(const std::string& agent, const std::string& type = "WinCert",
                           const std::string& client_machine = "winhost1", Json properties = Json::object());
  // POST /admin/jobs; returns the JobId.
  std::string schedule_job(Json body);
  // Registers `machine` (auto-approve must be on, or the agent approved) and returns the registration.
  Registration connect(const std::string& machine = "orchestrator-1");
  // Fetches the configuration of a job from a registration's job list.
  Json configuration(const Registration& reg, const std::string& job_id);
  // Completes a run with a status (2 Success, 3 Warning, 4 Failure).
  HttpResult complete(const Registration& reg, const std::string& job_id, std::int64_t audit_id, int status = 2,
                      const std::string& message = "");

  TempDir dir;
  std::unique_ptr<CommandSim> sim;
  std::unique_ptr<HttpClient> http;
};

}  // namespace wincert::sim::command::testing
