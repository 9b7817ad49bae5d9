// winhost-sim: a WS-Management / WinRS server that plays a Windows host (see sim/winhost/README.md).
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <filesystem>
#include <iostream>

#include "common/log.hpp"
#include "sim/winhost/auth.hpp"
#include "sim/winhost/gss_auth.hpp"
#include "sim/winhost/replay.hpp"
#include "sim/winhost/server.hpp"
#include "sim/winhost/windows_model.hpp"
#include "sim/winhost/winrs_service.hpp"

using namespace wincert;
using namespace wincert::sim;

int main(int argc, char** argv) {
  CLI::App app{"winhost-sim: a WS-Management/WinRS server that plays a Windows host"};
  std::string listen = "127.0.0.1:5985", port_file, status_file, model_file, replay_file, users_file;
  std::string tls_cert, tls_key, log_level = "info", log_file;
  bool allow_unencrypted = false;
  int max_shells = 30, max_envelope_kb = 500;
  long long latency_ms = 0;
  app.add_option("--listen", listen, "HOST:PORT to listen on (port 0 picks a free port)")->capture_default_str();
  app.add_option("--port-file", port_file, "write the bound port here once listening");
  app.add_option("--status-file", status_file, "counters as JSON, rewritten atomically after every request");
  auto* model_opt = app.add_option("--model", model_file, "Windows model JSON (loaded, and saved after changes)");
  app.add_option("--replay", replay_file, "serve the responses of a recorded pypsrp transcript (YAML)")
      ->excludes(model_opt);
  app.add_option("--users", users_file, "users file: lines user:password or DOMAIN:user:password");
  app.add_flag("--allow-unencrypted", allow_unencrypted, "accept Basic over plain HTTP (Windows refuses by default)");
  app.add_option("--tls-cert", tls_cert, "PEM certificate (chain): serve HTTPS");
  app.add_option("--tls-key", tls_key, "PEM private key for --tls-cert");
  app.add_option("--max-shells-per-user", max_shells, "MaxShellsPerUser quota")->capture_default_str()->check(CLI::Range(1, 1000000));
  app.add_option("--max-envelope-kb", max_envelope_kb, "MaxEnvelopeSizekb: larger requests get HTTP 413")
      ->capture_default_str()->check(CLI::Range(1, 1024 * 1024));
  app.add_option("--latency-ms", latency_ms, "delay added before every response")->check(CLI::Range(0LL, 600000LL));
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off")->capture_default_str();
  app.add_option("--log-file", log_file, "log to this file instead of stderr");
  std::string auth_list, keytab, cert_map_file, cbt_text = "relaxed", client_ca, netbios_domain = "WORKGROUP";
  app.add_option("--auth", auth_list,
                 "offered schemes, comma-separated: basic,ntlm,kerberos,negotiate,certificate (default basic)");
  app.add_option("--keytab", keytab, "Kerberos service keytab (default: KRB5_KTNAME)");
  app.add_option("--cert-map", cert_map_file,
                 "client certificate map, JSON {\"SHA-1 thumbprint or subject\": \"user\"}");
  app.add_option("--cbt", cbt_text, "channel binding hardening on HTTPS: none|relaxed|strict")->capture_default_str();
  app.add_option("--client-ca", client_ca, "PEM CA(s) client certificates must chain to");
  app.add_option("--netbios-domain", netbios_domain, "NTLM: NetBIOS domain name in the CHALLENGE")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  init_logging(log_level, log_file);
  auto log = logger("sim");

  auto listen_addr = parse_listen(listen);
  if (!listen_addr) {
    std::cerr << "winhost-sim: " << listen_addr.error().message << "\n";
    return 2;
  }

  Stats stats;
  boost::asio::io_context ioc(1);

  WindowsModel model;
  if (!model_file.empty()) {
    auto loaded = WindowsModel::load(model_file);
    if (!loaded) {
      std::cerr << "winhost-sim: " << loaded.error().message << "\n";
      return 2;
    }
    model = std::move(loaded.value());
  }

  std::unique_ptr<WsmanHandler> handler;
  bool replay = !replay_file.empty();
  if (replay) {
    auto r = ReplayHandler::load(replay_file, stats);
    if (!r) {
      std::cerr << "winhost-sim: " << r.error().message << "\n";
      return 2;
    }
    handler = std::move(r.value());
  } else {
    WinrsOptions wo;
    wo.max_shells_per_user = max_shells;
    wo.max_envelope_kb = max_envelope_kb;
    handler = std::make_unique<WinrsService>(ioc, model, stats, wo);
  }

  auto users = std::make_shared<UserDatabase>();
  if (!users_file.empty()) {
    auto db = UserDatabase::load(users_file);
    if (!db) {
      std::cerr << "winhost-sim: " << db.error().message << "\n";
      return 2;
    }
    *users = std::move(db.value());
  } else if (!replay) {
    log->warn("no --users file: every request will be refused with 401");
  }
  BasicAuthOptions auth_options;
  auth_options.allow_unencrypted = allow_unencrypted;
  auth_options.accept_any = replay;
  std::shared_ptr<Authenticator> auth;
  auto schemes = parse_auth_schemes(auth_list.empty() ? "basic" : auth_list);
  auto cbt = parse_cbt_mode(cbt_text);
  if (!schemes || !cbt) {
    std::cerr << "winhost-sim: " << (!schemes ? schemes.error().message : cbt.error().message) << "\n";
    return 2;
  }
  if (replay || (!schemes->gss() && !schemes->certificate)) {
    auth = make_basic_authenticator(users, auth_options);
  } else {
    // NTLM (alone or inside Negotiate) authenticates against the --users file through gss-ntlmssp.
    if (schemes->ntlm || (schemes->negotiate && !users_file.empty())) {
      if (auto st = configure_gss_ntlmssp(users_file, model.hostname(), netbios_domain,
                                          std::filesystem::temp_directory_path().string());
          !st) {
        std::cerr << "winhost-sim: " << st.error().message << "\n";
        return 2;
      }
    }
    WindowsAuthOptions wo;
    wo.schemes = *schemes;
    wo.users = users;
    wo.allow_unencrypted = allow_unencrypted;
    wo.keytab = keytab;
    wo.cbt = *cbt;
    if (!cert_map_file.empty()) {
      auto map = load_certificate_map(cert_map_file);
      if (!map) {
        std::cerr << "winhost-sim: " << map.error().message << "\n";
        return 2;
      }
      wo.certificate_map = std::move(*map);
    }
    auto made = make_windows_authenticator(std::move(wo));
    if (!made) {
      std::cerr << "winhost-sim: " << made.error().message << "\n";
      return 2;
    }
    auth = std::move(*made);
  }

  ServerOptions so;
  so.listen_host = listen_addr->first;
  so.port = listen_addr->second;
  so.tls_cert = tls_cert;
  so.tls_key = tls_key;
  so.client_ca = client_ca;
  so.request_client_certificate = schemes->certificate;
  so.max_envelope_bytes = static_cast<std::size_t>(max_envelope_kb) * 1024;
  so.latency_ms = latency_ms;
  so.status_file = status_file;

  Server server(ioc, so, auth, *handler, stats);
  auto port = server.start();
  if (!port) {
    std::cerr << "winhost-sim: " << port.error().message << "\n";
    return 1;
  }
  if (!status_file.empty()) server.after_request();  // an initial status so readers find the file at once
  if (!port_file.empty()) {
    if (auto st = write_file_atomically(port_file, std::to_string(*port) + "\n"); !st) {
      std::cerr << "winhost-sim: " << st.error().message << "\n";
      return 1;
    }
  }
  log->info("winhost-sim listening on {}://{}:{}/wsman ({}){}", server.tls() ? "https" : "http", so.listen_host, *port,
            replay ? "replay of " + replay_file : "host " + model.hostname(),
            allow_unencrypted ? ", Basic over HTTP allowed" : "");

  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int sig) {
    log->info("signal {}: shutting down", sig);
    server.stop();
    handler->shutdown();
    ioc.stop();
  });
  ioc.run();
  if (!status_file.empty()) server.after_request();
  std::cout << stats.to_json().dump() << std::endl;
  return 0;
}
