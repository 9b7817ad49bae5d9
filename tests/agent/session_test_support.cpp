#include "session_test_support.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <fstream>

#include "agent/local_ca.hpp"
#include "certstore/x509.hpp"
#include "common/encoding.hpp"

namespace wincert::agent::testing {

std::string fixture_job(const std::string& name) {
  return (fs::path(WINCERT_SHARED_DIR) / "fixtures" / "jobs" / name).string();
}

Host::Host(SimAuth auth, const std::function<void(json&)>& prepare) {
  if (!winrm::test::sim_available()) return;
  dir_ = fs::temp_directory_path() / ("wincert-agent-session-" + random_uuid());
  fs::create_directories(dir_);
  model_file_ = dir_ / "host.json";
  {
    std::ifstream in(WINCERT_MODEL_EXAMPLE);
    json model = json::parse(in);
    if (prepare) prepare(model);
    std::ofstream(model_file_) << model.dump(2);
  }
  std::vector<std::string> args = {"--users", (dir_ / "users").string(), "--model", model_file_.string()};
  if (auth == SimAuth::kNtlm) {
    std::ofstream(dir_ / "users") << "WINCERT:alice:" << kPassword << "\n";
    args.insert(args.end(), {"--auth", "ntlm", "--netbios-domain", "WINCERT"});
  } else {
    std::ofstream(dir_ / "users") << kBasicUser << ":" << kPassword << "\n";
    args.push_back("--allow-unencrypted");
  }
  sim_ = std::make_unique<winrm::test::SimProcess>(args);
}

Host::~Host() {
  sim_.reset();
  std::error_code ec;
  if (!dir_.empty()) fs::remove_all(dir_, ec);
}

json Host::model() const {
  std::ifstream in(model_file_);
  return json::parse(in, nullptr, false);
}

unsigned short closed_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const unsigned short port = acceptor.local_endpoint().port();
  acceptor.close();
  return port;
}

ReplayRun replay(const std::string& job_file, const std::vector<std::string>& args,
                 const std::vector<std::string>& env_extra) {
  std::vector<std::string> argv = {WINCERT_AGENT_BINARY, "replay", job_file};
  argv.insert(argv.end(), args.begin(), args.end());
  auto ran = winrm::test::run_process(argv, env_extra);
  ReplayRun run;
  run.exit_code = ran.exit_code;
  run.out = std::move(ran.out);
  run.err = std::move(ran.err);
  run.doc = json::parse(run.out, nullptr, false);
  return run;
}

std::vector<std::string> ntlm_target_args(const Host& host) {
  return {"--set",     "CertificateStoreDetails.ClientMachine=" + host.client_machine(),
          "--set",     "CertificateStoreDetails.Properties.WinRM Protocol=http",
          "--set",     "CertificateStoreDetails.Properties.WinRM Authentication=ntlm",
          "--set",     std::string("ServerUsername=") + kNtlmUser,
          "--set-env", "ServerPassword=WINCERT_TEST_PASSWORD"};
}

std::vector<std::string> concat(std::vector<std::string> args, const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

CaFiles write_ca(const fs::path& dir) {
  using namespace sim::model::testing;
  CaFiles files;
  const TestKey key = make_rsa_key(2048);
  const TestCert ca = make_cert("Replay Test CA", key, nullptr, true);
  files.subject = certstore::parse_certificate_der(ca.der).value().subject;
  files.cert_file = (dir / "ca.pem").string();
  files.key_file = (dir / "ca.key").string();
  std::ofstream(files.cert_file) << pem_encode(ca.der, "CERTIFICATE");
  std::ofstream(files.key_file) << key.pem;
  return files;
}

std::vector<std::string> thumbprints(const json& model, const std::string& store) {
  std::vector<std::string> out;
  if (!model.contains("stores") || !model["stores"].contains(store)) return out;
  for (const auto& cert : model["stores"][store]) out.push_back(cert.value("thumbprint", std::string()));
  return out;
}

json find_binding(const json& model, const std::string& site, const std::string& binding_information) {
  for (const auto& s : model["iis"]["sites"]) {
    if (s.value("name", std::string()) != site) continue;
    for (const auto& b : s["bindings"]) {
      if (b.value("binding_information", std::string()) == binding_information) return b;
    }
  }
  return nullptr;
}

}  // namespace wincert::agent::testing
