#include "tests/sim/command_sim_support.hpp"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "certstore/openssl_util.hpp"
#include "common/encoding.hpp"
#include "sim/command/ca.hpp"

extern char** environ;

namespace wincert::sim::command::testing {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ossl = certstore::ossl;
using tcp = net::ip::tcp;

// ---- files

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "command-sim-test-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ---- HTTP client

Json HttpResult::json() const {
  Json parsed = Json::parse(body, nullptr, false);
  return parsed.is_discarded() ? Json(nullptr) : parsed;
}

std::vector<std::string> HttpResult::header_values(const std::string& lowercase_name) const {
  std::vector<std::string> out;
  auto [begin, end] = headers.equal_range(lowercase_name);
  for (auto it = begin; it != end; ++it) out.push_back(it->second);
  return out;
}

namespace {

template <class Stream>
void exchange(Stream& stream, http::request<http::string_body>& req, HttpResult& out,
              std::chrono::steady_clock::time_point deadline) {
  auto& lowest = beast::get_lowest_layer(stream);
  lowest.expires_at(deadline);
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(256u << 20);
  http::read(stream, buffer, parser);
  auto& res = parser.get();
  out.status = res.result_int();
  out.body = res.body();
  for (const auto& field : res) out.headers.emplace(to_lower(field.name_string()), std::string(field.value()));
}

}  // namespace

HttpResult HttpClient::request(http::verb method, const std::string& target, const std::string& body,
                               const Headers& headers, std::chrono::milliseconds timeout) const {
  HttpResult out;
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + timeout;
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port_));
  req.set(http::field::user_agent, "command-sim-tests");
  bool has_content_type = false;
  for (const auto& [k, v] : headers) {
    req.insert(k, v);
    if (iequals(k, "Content-Type")) has_content_type = true;
  }
  if (!body.empty() && !has_content_type) req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.keep_alive(false);
  req.prepare_payload();
  try {
    net::io_context ioc;
    tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), port_);
    if (!tls_) {
      beast::tcp_stream stream(ioc);
      stream.expires_at(deadline);
      stream.connect(endpoint);
      exchange(stream, req, out, deadline);
    } else {
      net::ssl::context ctx(net::ssl::context::tls_client);
      ctx.load_verify_file(tls_->ca_file);
      ctx.set_verify_mode(net::ssl::verify_peer);
      if (!tls_->cert_file.empty()) {
        ctx.use_certificate_chain_file(tls_->cert_file);
        ctx.use_private_key_file(tls_->key_file, net::ssl::context::pem);
      }
      beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
      beast::get_lowest_layer(stream).expires_at(deadline);
      beast::get_lowest_layer(stream).connect(endpoint);
      stream.handshake(net::ssl::stream_base::client);
      exchange(stream, req, out, deadline);
    }
  } catch (const std::exception& e) {
    out.status = 0;
    out.error = e.what();
  }
  out.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  return out;
}

HttpResult HttpClient::post(const std::string& target, const Json& body, const Headers& headers) const {
  return request(http::verb::post, target, body.dump(), headers);
}

HttpResult HttpClient::get(const std::string& target, const Headers& headers) const {
  return request(http::verb::get, target, {}, headers);
}

// ---- the process

CommandSim::CommandSim(std::filesystem::path state_dir, std::vector<std::string> extra_args,
                       std::map<std::string, std::string> env)
    : state_dir_(std::move(state_dir)), extra_args_(std::move(extra_args)), env_(std::move(env)) {}

CommandSim::~CommandSim() { stop(); }

std::string CommandSim::log() const { return read_text(log_file_); }

void CommandSim::start() {
  if (pid_ > 0) return;
  const std::string port_file = (state_dir_.parent_path() / "command-sim.port").string();
  std::filesystem::remove(port_file);
  log_file_ = (state_dir_.parent_path() / ("command-sim-" + std::to_string(++starts_) + ".log")).string();
  std::vector<std::string> args = {WINCERT_COMMAND_SIM, "--listen",          "127.0.0.1:0", "--port-file", port_file,
                                   "--state",           state_dir_.string(), "--log-level", "debug"};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  for (const auto& [k, v] : env_) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  const int rc = posix_spawn(&pid_, args[0].c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    pid_ = -1;
    throw std::runtime_error("cannot start " + args[0]);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string text = read_text(port_file);
    if (!text.empty() && text.back() == '\n') {
      port_ = static_cast<unsigned short>(std::stoi(text));
      return;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("command-sim exited at start:\n" + log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop();
  throw std::runtime_error("command-sim did not write its port file within 30 s:\n" + log());
}

int CommandSim::stop() {
  if (pid_ <= 0) return 0;
  kill(pid_, SIGTERM);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return -1;
}

// ---- protocol helpers

const std::vector<std::string> kDefaultCapabilities = {
    "CertStores.WinCert.Inventory", "CertStores.WinCert.Management", "CertStores.WinCert.ReEnrollment",
    "CertStores.IISU.Inventory",    "CertStores.IISU.Management",    "CertStores.IISU.ReEnrollment",
    "CertStores.WinSql.Inventory",  "CertStores.WinSql.Management",  "CertStores.WinSql.ReEnrollment"};

std::string Registration::code() const {
  const Json& error = response["Result"]["Error"];
  return error.is_object() && error["CodeString"].is_string() ? error["CodeString"].get<std::string>() : "";
}

std::string Registration::message() const {
  const Json& error = response["Result"]["Error"];
  return error.is_object() && error["Message"].is_string() ? error["Message"].get<std::string>() : "";
}

Registration register_agent(const HttpClient& client, const std::string& machine, const std::string& agent_id,
                            const std::vector<std::string>& capabilities, const Headers& headers,
                            const std::string& csr_base64, int platform) {
  Json body = {{"AgentPlatform", platform},
               {"AgentVersion", 563031557799936ULL},
               {"TenantId", "00000000-0000-0000-0000-000000000000"},
               {"ClientMachine", machine},
               {"AgentId", agent_id},
               {"Capabilities", capabilities},
               {"ClientParameters", Json::object()}};
  body["CSR"] = csr_base64.empty() ? Json(nullptr) : Json(csr_base64);
  Registration r;
  r.http = client.post("/KeyfactorAgents/Session/Register", body, headers);
  r.response = r.http.json();
  if (r.response.is_object() && r.response["Session"].is_object()) {
    r.token = r.response["Session"]["Token"].get<std::string>();
    r.agent_id = r.response["Session"]["AgentId"].get<std::string>();
    r.jobs = r.response["Session"]["Jobs"];
  }
  return r;
}

std::string resolve_endpoint(const std::string& endpoint) {
  if (endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
    const auto slash = endpoint.find('/', endpoint.find("//") + 2);
    return slash == std::string::npos ? "/" : endpoint.substr(slash);
  }
  if (endpoint.starts_with("/")) return endpoint;
  // Relative: the base URL's path is /KeyfactorAgents; Command 7.4+ repeats that prefix (reference 1).
  std::string rest = endpoint;
  if (istarts_with(rest, "KeyfactorAgents/")) rest = rest.substr(16);
  return "/KeyfactorAgents/" + rest;
}

HttpResult call_endpoint(const HttpClient& client, const std::string& endpoint, const std::string& token,
                         const std::string& job_id, const Json& extra, const Headers& headers) {
  Json body = extra;
  body["SessionToken"] = token;
  body["JobId"] = job_id;
  return client.post(resolve_endpoint(endpoint), body, headers);
}

Json find_job(const Json& jobs, const std::string& job_id) {
  for (const auto& j : jobs) {
    if (j["JobId"] == job_id) return j;
  }
  return nullptr;
}

namespace {
Json checked(const HttpResult& r, const std::string& what) {
  EXPECT_TRUE(r.status == 200 || r.status == 201) << what << " -> " << r.status << " " << r.error << " " << r.body;
  return r.json();
}
}  // namespace

Json admin_get(const HttpClient& client, const std::string& path) { return checked(client.get(path), "GET " + path); }
Json admin_post(const HttpClient& client, const std::string& path, const Json& body) {
  return checked(client.post(path, body), "POST " + path);
}
Json admin_put(const HttpClient& client, const std::string& path, const Json& body) {
  return checked(client.request(http::verb::put, path, body.dump()), "PUT " + path);
}

// ---- crypto

std::string make_csr_base64(const std::string& subject, const std::vector<std::string>& sans) {
  ossl::PKeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
  ossl::X509ReqPtr req(X509_REQ_new());
  X509_REQ_set_version(req.get(), 0);
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  // Most specific first in the text: add in reverse for DER order.
  std::vector<std::pair<std::string, std::string>> rdns;
  std::stringstream ss(subject);
  std::string part;
  while (std::getline(ss, part, ',')) {
    const std::string p(trim(part));
    const auto eq = p.find('=');
    rdns.emplace_back(p.substr(0, eq), p.substr(eq + 1));
  }
  for (auto it = rdns.rbegin(); it != rdns.rend(); ++it)
    X509_NAME_add_entry_by_txt(name, it->first.c_str(), MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(it->second.c_str()), -1, -1, 0);
  X509_REQ_set_pubkey(req.get(), key.get());
  if (!sans.empty()) {
    std::string conf;
    for (const auto& s : sans) {
      const auto colon = s.find(':');
      const std::string type = to_lower(s.substr(0, colon));
      const std::string value = s.substr(colon + 1);
      const std::string label = type == "dns" ? "DNS" : type == "ip" ? "IP" : type == "email" ? "email" : "URI";
      conf += (conf.empty() ? "" : ",") + label + ":" + value;
    }
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, conf.c_str());
    STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
    sk_X509_EXTENSION_push(exts, ext);
    X509_REQ_add_extensions(req.get(), exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  }
  X509_REQ_sign(req.get(), key.get(), EVP_sha256());
  unsigned char* der = nullptr;
  const int len = i2d_X509_REQ(req.get(), &der);
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return base64_encode(out);
}

std::string der_to_pem(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ossl::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert.get());
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

bool verifies_against(const std::string& leaf_der, const std::string& ca_der, std::string* why) {
  const auto* p = reinterpret_cast<const unsigned char*>(leaf_der.data());
  ossl::X509Ptr leaf(d2i_X509(nullptr, &p, static_cast<long>(leaf_der.size())));
  p = reinterpret_cast<const unsigned char*>(ca_der.data());
  ossl::X509Ptr ca(d2i_X509(nullptr, &p, static_cast<long>(ca_der.size())));
  if (!leaf || !ca) {
    if (why) *why = "cannot decode";
    return false;
  }
  std::unique_ptr<X509_STORE, ossl::Deleter<X509_STORE_free>> store(X509_STORE_new());
  std::unique_ptr<X509_STORE_CTX, ossl::Deleter<X509_STORE_CTX_free>> ctx(X509_STORE_CTX_new());
  X509_STORE_add_cert(store.get(), ca.get());
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), nullptr);
  const bool ok = X509_verify_cert(ctx.get()) == 1;
  if (!ok && why) *why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
  return ok;
}

// ---- PKI

namespace {
CertificateAuthority load_ca(const std::filesystem::path& dir) {
  auto ca = CertificateAuthority::load_or_create(dir.string(), "", "");
  if (!ca) throw std::runtime_error(ca.error().message);
  return std::move(ca.value());
}
}  // namespace

TestPki::TestPki(const std::filesystem::path& dir, const std::string& name) : dir_(dir / name) {
  std::filesystem::create_directories(dir_);
  CertificateAuthority ca = load_ca(dir_);
  ca_file = (dir_ / "ca.pem").string();
  NewKeyRequest request;
  request.subject = "CN=127.0.0.1";
  request.sans = {{certstore::SanType::kIp, "127.0.0.1"}, {certstore::SanType::kDns, "localhost"}};
  request.use = CertificateUse::kServerOnly;
  auto issued = ca.issue(request);
  if (!issued) throw std::runtime_error(issued.error().message);
  server_cert = (dir_ / "server.pem").string();
  server_key = (dir_ / "server.key").string();
  write_text(server_cert, der_to_pem(issued->certificate.der));
  write_text(server_key, issued->private_key_pem.reveal());
}

std::pair<std::string, std::string> TestPki::client(const std::string& cn) const {
  CertificateAuthority ca = load_ca(dir_);
  NewKeyRequest request;
  request.subject = "CN=" + cn;
  request.use = CertificateUse::kClientOnly;
  auto issued = ca.issue(request);
  if (!issued) throw std::runtime_error(issued.error().message);
  const std::string cert = (dir_ / (cn + ".pem")).string();
  const std::string key = (dir_ / (cn + ".key")).string();
  write_text(cert, der_to_pem(issued->certificate.der));
  write_text(key, issued->private_key_pem.reveal());
  return {cert, key};
}

// ---- fixture

void SimFixture::start(std::vector<std::string> args, std::map<std::string, std::string> env) {
  sim = std::make_unique<CommandSim>(dir.path() / "state", std::move(args), std::move(env));
  sim->start();
  http = std::make_unique<HttpClient>(sim->port());
}

std::string create_store_with(const HttpClient& client, const std::string& agent, const std::string& type,
                              const std::string& client_machine, Json properties) {
  if (properties.empty())
    properties = {{"WinRM Protocol", "http"},
                  {"WinRM Port", "5985"},
                  {"ServerUsername", "vagrant"},
                  {"ServerPassword", "Passw0rd!"},
                  {"WinRM Authentication", "basic"}};
  Json body = {
      {"CertStoreType", type}, {"ClientMachine", client_machine}, {"StorePath", "My"}, {"Properties", properties}};
  // A GUID names a registered orchestrator; anything else is a name that may register later.
  body[agent.size() == 36 ? "AgentId" : "Orchestrator"] = agent;
  Json store = admin_post(client, "/admin/stores", body);
  return store.value("Id", "");
}

std::string SimFixture::create_store(const std::string& agent, const std::string& type,
                                     const std::string& client_machine, Json properties) {
  return create_store_with(*http, agent, type, client_machine, std::move(properties));
}

std::string SimFixture::schedule_job(Json body) {
  Json job = admin_post(*http, "/admin/jobs", body);
  return job.value("JobId", "");
}

Registration SimFixture::connect(const std::string& machine) {
  Registration reg = register_agent(*http, machine);
  EXPECT_EQ(reg.http.status, 200u) << reg.http.body;
  return reg;
}

Json SimFixture::configuration(const Registration& reg, const std::string& job_id) {
  Json entry = find_job(reg.jobs, job_id);
  EXPECT_TRUE(entry.is_object()) << "job " << job_id << " not in " << reg.jobs.dump();
  if (!entry.is_object()) return nullptr;
  HttpResult r = call_endpoint(*http, entry["ConfigurationEndpoint"].get<std::string>(), reg.token, job_id);
  EXPECT_EQ(r.status, 200u) << r.body;
  return r.json();
}

HttpResult SimFixture::complete(const Registration& reg, const std::string& job_id, std::int64_t audit_id, int status,
                                const std::string& message) {
  Json entry = find_job(reg.jobs, job_id);
  const std::string endpoint = entry.is_object() ? entry["CompletionEndpoint"].get<std::string>()
                                                 : std::string("KeyfactorAgents/CertStoreInventory/Complete");
  return call_endpoint(*http, endpoint, reg.token, job_id,
                       {{"Status", status}, {"AuditId", audit_id}, {"Message", message}});
}

}  // namespace wincert::sim::command::testing
