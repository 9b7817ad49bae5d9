// winhost-sim: a WS-Management / WinRS server that plays a Windows host (see sim/winhost/README.md).
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <filesystem>
#include <iostream>

#include "common/log.hpp"
#include "sim/winhost/auth.hpp"
#include "sim/winhost/gss_auth.hpp"
#include "sim/winhost/psrp_service.hpp"
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
  long long ps_start_ms = 250;
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
  app.add_option("--max-shells-per-user", max_shells, "MaxShellsPerUser quota")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app.add_option("--max-envelope-kb", max_envelope_kb, "MaxEnvelopeSizekb: larger requests get HTTP 413")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024 * 1024));
  app.add_option("--latency-ms", latency_ms, "delay added before every response")->check(CLI::Range(0LL, 600000LL));
  app.add_option("--ps-start-ms", ps_start_ms,
                 "the host's PowerShell start cost in ms: charged (on timers) for each powershell.exe a WinRS command "
                 "starts and each runspace a PowerShell remoting pool opens")
      ->capture_default_str()
      ->check(CLI::Range(0LL, 600000LL));
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
  app.add_option("--netbios-domain", netbios_domain, "NTLM: NetBIOS domain name in the CHALLENGE")
      ->capture_default_str();
  int host_count = 1;
  app.add_option("--hosts", host_count,
                 "serve this many independent hosts, one listener each (ports in --port-file, one per line); "
                 "host i>0 is a copy of the model named <hostname>-<i> that is not saved")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  CLI11_PARSE(app, argc, argv);

  init_logging(log_level, log_file);
  auto log = logger("sim");

  auto listen_addr = parse_listen(listen);
  if (!listen_addr) {
    std::cerr << "winhost-sim: " << listen_addr.error().message << "\n";
    return 2;
  }

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
  bool replay = !replay_file.empty();
  if (replay && host_count > 1) {
    std::cerr << "winhost-sim: --hosts serves models; it cannot be combined with --replay\n";
    return 2;
  }

  // One host = its own model, counters, WinRS service and listener (heap-allocated: services keep references).
  struct Host {
    WindowsModel model;
    Stats stats;
    std::unique_ptr<WsmanHandler> handler;
    std::unique_ptr<PsrpService> powershell;  // PSRP over WS-Man, routed to by the WinRS service
    std::unique_ptr<Server> server;
    unsigned short port = 0;
  };
  std::vector<std::unique_ptr<Host>> hosts;
  for (int i = 0; i < host_count; ++i) {
    auto host = std::make_unique<Host>();
    if (i == 0) {
      host->model = std::move(model);
    } else {
      host->model = hosts[0]->model.copy_unsaved();
      host->model.data()["hostname"] = hosts[0]->model.hostname() + "-" + std::to_string(i);
    }
    if (replay) {
      auto r = ReplayHandler::load(replay_file, host->stats);
      if (!r) {
        std::cerr << "winhost-sim: " << r.error().message << "\n";
        return 2;
      }
      host->handler = std::move(r.value());
    } else {
      WinrsOptions wo;
      wo.max_shells_per_user = max_shells;
      wo.max_envelope_kb = max_envelope_kb;
      wo.ps_start_ms = ps_start_ms;
      auto winrs = std::make_unique<WinrsService>(ioc, host->model, host->stats, wo);
      PsrpOptions po;
      po.max_shells_per_user = max_shells;
      po.ps_start_ms = ps_start_ms;
      host->powershell = std::make_unique<PsrpService>(ioc, host->model, host->stats, po, &winrs->shells_per_owner());
      winrs->set_powershell_handler(host->powershell.get());
      host->handler = std::move(winrs);
    }
    hosts.push_back(std::move(host));
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
      if (auto st = configure_gss_ntlmssp(users_file, hosts[0]->model.hostname(), netbios_domain,
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
  std::uint64_t max_running_all_hosts = 0;  // high-water of commands running on all hosts at once
  if (host_count > 1) {
    // Every change of commands_running happens in a request, after which this runs: an exact high-water.
    so.on_request = [&hosts, &max_running_all_hosts]() {
      std::uint64_t running = 0;
      for (const auto& h : hosts) running += h->stats.commands_running;
      max_running_all_hosts = std::max(max_running_all_hosts, running);
    };
    // One document for all hosts: each host's counters, and the sums a load test reads at a glance.
    so.status_text = [&hosts, &max_running_all_hosts]() {
      nlohmann::json per_host = nlohmann::json::array();
      Stats total;
      for (const auto& h : hosts) {
        per_host.push_back(h->stats.to_json());
        total.connections += h->stats.connections;
        total.requests += h->stats.requests;
        total.shells_created += h->stats.shells_created;
        total.commands += h->stats.commands;
        total.faults += h->stats.faults;
        total.auth_failures += h->stats.auth_failures;
        total.max_commands_running = std::max(total.max_commands_running, h->stats.max_commands_running);
        total.commands_running += h->stats.commands_running;
      }
      nlohmann::json doc = total.to_json();
      doc["max_commands_running_per_host"] = total.max_commands_running;
      doc["max_commands_running_all_hosts"] = max_running_all_hosts;
      doc["hosts"] = std::move(per_host);
      return doc.dump();
    };
  }

  if (!status_file.empty()) {
    // One writer for every host. With --hosts N the document covers all of them, so it is rewritten at most
    // every 50 ms (the last change always written) rather than after every request at O(N) each.
    const auto interval = std::chrono::milliseconds(host_count > 1 ? 50 : 0);
    auto text = so.status_text ? so.status_text : [&hosts] { return hosts[0]->stats.to_json().dump(); };
    so.status_writer = std::make_shared<StatusFileWriter>(ioc, status_file, std::move(text), interval);
  }

  std::string ports_text;
  for (auto& host : hosts) {
    ServerOptions host_options = so;
    if (host.get() != hosts[0].get() && so.port != 0) {
      host_options.port = static_cast<unsigned short>(so.port + (&host - &hosts[0]));  // consecutive ports
    }
    host->server = std::make_unique<Server>(ioc, host_options, auth, *host->handler, host->stats);
    auto port = host->server->start();
    if (!port) {
      std::cerr << "winhost-sim: " << port.error().message << "\n";
      return 1;
    }
    host->port = *port;
    ports_text += std::to_string(*port) + "\n";
  }
  Server& server = *hosts[0]->server;
  server.write_status_now();  // an initial status so readers find the file at once
  if (!port_file.empty()) {
    if (auto st = write_file_atomically(port_file, ports_text); !st) {
      std::cerr << "winhost-sim: " << st.error().message << "\n";
      return 1;
    }
  }
  log->info("winhost-sim listening on {}://{}:{}/wsman ({}){}{}", server.tls() ? "https" : "http", so.listen_host,
            hosts[0]->port, replay ? "replay of " + replay_file : "host " + hosts[0]->model.hostname(),
            allow_unencrypted ? ", Basic over HTTP allowed" : "",
            host_count > 1 ? " and " + std::to_string(host_count - 1) + " more hosts" : "");

  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int sig) {
    log->info("signal {}: shutting down", sig);
    for (auto& host : hosts) {
      host->server->stop();
      host->handler->shutdown();
      if (host->powershell) host->powershell->shutdown();
    }
    ioc.stop();
  });
  ioc.run();
  server.write_status_now();
  std::cout << (host_count > 1 && so.status_text ? so.status_text() : hosts[0]->stats.to_json().dump()) << std::endl;
  return 0;
}
