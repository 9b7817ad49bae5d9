// command-sim: the Orchestrators API of Keyfactor Command for tests, demos and dry runs
// (see sim/command/README.md).
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "common/encoding.hpp"
#include "common/log.hpp"
#include "sim/command/app.hpp"
#include "sim/command/durable_file.hpp"
#include "sim/command/server.hpp"

using namespace wincert;
using namespace wincert::sim::command;

namespace {

int fail(const std::string& message) {
  std::cerr << "command-sim: " << message << "\n";
  return 2;
}

// A secret from the environment (never from the command line, where `ps` shows it).
Result<Secret> secret_from_env(const std::string& variable, const char* option) {
  const char* value = std::getenv(variable.c_str());
  if (value == nullptr || *value == '\0')
    return Error::invalid_argument(std::string(option) + ": environment variable " + variable + " is not set");
  return Secret(value);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"command-sim: Keyfactor Command's Orchestrators API, an admin API and a CA, for tests and dry runs"};
  std::string listen, port_file, state_dir, log_level = "info", log_file, synchronous = "normal";
  std::string tls_cert, tls_key, client_ca, ca_cert, ca_key;
  std::string auth_list, users_file, basic_user, basic_password_env;
  std::string oauth_client, oauth_secret_env, oauth_clients_file, token_path = "/oauth/token", oauth_scope,
                                                                  oauth_audience;
  std::string admin_token_env, base_path = "/KeyfactorAgents", endpoint_form = "prefixed", public_url;
  int token_lifetime = 300, heartbeat_minutes = 5, validity_days = 365, max_body_mb = 64;
  bool auto_approve = false, trust_arr = false, no_invalidate = false, chain_inventory = false;
  cli.add_option("--listen", listen, "HOST:PORT to listen on (port 0 picks a free port)")->required();
  cli.add_option("--port-file", port_file, "write the bound port here once listening");
  cli.add_option("--state", state_dir, "directory for state.db (SQLite) and the CA (created if missing)")->required();
  cli.add_option("--synchronous", synchronous,
                 "state.db durability: normal (a kill -9 loses nothing, a power cut may lose the last "
                 "transactions) or full (fsync at every commit)")
      ->capture_default_str();
  cli.add_option("--tls-cert", tls_cert, "PEM certificate (chain): serve HTTPS");
  cli.add_option("--tls-key", tls_key, "PEM private key for --tls-cert");
  cli.add_option("--client-ca", client_ca, "PEM CA(s) agent client certificates must chain to (mTLS)");
  cli.add_option("--auth", auth_list,
                 "agent authentication, comma-separated: none, basic, certificate, oauth "
                 "(default: what the other options configure, else none)");
  cli.add_option("--users", users_file, "Basic users file: lines USER:PASSWORD (USER may be DOMAIN\\user)");
  cli.add_option("--basic-user", basic_user, "one Basic user (password from --basic-password-env)");
  cli.add_option("--basic-password-env", basic_password_env, "environment variable holding --basic-user's password");
  cli.add_flag("--trust-arr-header", trust_arr,
               "accept X-ARR-ClientCert (URL-encoded PEM) from a TLS-terminating proxy, verified against --client-ca");
  cli.add_option("--oauth-client", oauth_client, "OAuth client_id (secret from --oauth-secret-env)");
  cli.add_option("--oauth-secret-env", oauth_secret_env, "environment variable holding --oauth-client's secret");
  cli.add_option("--oauth-clients", oauth_clients_file, "OAuth clients file: lines CLIENT_ID:SECRET");
  cli.add_option("--oauth-token-path", token_path, "path of the token endpoint")->capture_default_str();
  cli.add_option("--token-lifetime", token_lifetime, "bearer token lifetime in seconds")
      ->capture_default_str()
      ->check(CLI::Range(1, 86400 * 30));
  cli.add_option("--oauth-scope", oauth_scope, "a requested scope must include this");
  cli.add_option("--oauth-audience", oauth_audience, "a requested audience must equal this");
  cli.add_option("--ca-cert", ca_cert, "PEM CA certificate to sign with (default: STATE/ca.pem, generated)");
  cli.add_option("--ca-key", ca_key, "unencrypted PEM key of --ca-cert");
  cli.add_option("--cert-validity-days", validity_days, "validity of certificates the CA issues")
      ->capture_default_str()
      ->check(CLI::Range(1, 36500));
  cli.add_flag("--auto-approve", auto_approve, "approve new orchestrators at their first registration");
  cli.add_option("--heartbeat-minutes", heartbeat_minutes, "HeartbeatInterval handed to agents")
      ->capture_default_str()
      ->check(CLI::Range(kMinHeartbeatMinutes, kMaxHeartbeatMinutes));
  cli.add_option("--base-path", base_path, "where the Orchestrators API lives")->capture_default_str();
  cli.add_option("--endpoint-form", endpoint_form, "job endpoint URLs: prefixed|rooted|absolute|rotate")
      ->capture_default_str();
  cli.add_option("--public-url", public_url,
                 "scheme://host:port for absolute endpoint URLs (default: the Host header)");
  cli.add_flag("--no-invalidate-on-schedule", no_invalidate,
               "do not invalidate an agent's sessions when its jobs change");
  cli.add_flag("--chain-inventory", chain_inventory,
               "answer successful management/reenrollment completions with a chained inventory job");
  cli.add_option("--admin-token-env", admin_token_env,
                 "environment variable with a token the admin API requires (default: loopback clients only)");
  cli.add_option("--max-body-mb", max_body_mb, "largest request body; beyond it HTTP 413")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cli.add_option("--log-level", log_level, "trace|debug|info|warn|error|off")->capture_default_str();
  cli.add_option("--log-file", log_file, "log to this file instead of stderr");
  CLI11_PARSE(cli, argc, argv);

  init_logging(log_level, log_file);
  auto log = logger("command-sim");

  auto listen_addr = parse_listen(listen);
  if (!listen_addr) return fail(listen_addr.error().message);
  std::error_code fs_ec;
  std::filesystem::create_directories(state_dir, fs_ec);
  if (fs_ec) return fail("cannot create --state " + state_dir + ": " + fs_ec.message());

  // Authentication: an explicit --auth list, else whatever the credential options configure.
  AuthOptions ao;
  ao.token_path = token_path;
  ao.token_lifetime_seconds = token_lifetime;
  ao.required_scope = oauth_scope;
  ao.required_audience = oauth_audience;
  ao.trust_arr_header = trust_arr;
  ao.client_ca_file = client_ca;
  if (!users_file.empty()) {
    auto users = load_credentials_file(users_file);
    if (!users) return fail(users.error().message);
    ao.users = std::move(users.value());
  }
  if (!basic_user.empty()) {
    if (basic_password_env.empty()) return fail("--basic-user needs --basic-password-env");
    auto password = secret_from_env(basic_password_env, "--basic-password-env");
    if (!password) return fail(password.error().message);
    ao.users.push_back({basic_user, std::move(password.value())});
  }
  if (!oauth_clients_file.empty()) {
    auto clients = load_credentials_file(oauth_clients_file);
    if (!clients) return fail(clients.error().message);
    ao.oauth_clients = std::move(clients.value());
  }
  if (!oauth_client.empty()) {
    if (oauth_secret_env.empty()) return fail("--oauth-client needs --oauth-secret-env");
    auto secret = secret_from_env(oauth_secret_env, "--oauth-secret-env");
    if (!secret) return fail(secret.error().message);
    ao.oauth_clients.push_back({oauth_client, std::move(secret.value())});
  }
  const bool https = !tls_cert.empty();
  if (auth_list.empty()) {
    ao.basic = !ao.users.empty();
    ao.oauth = !ao.oauth_clients.empty();
    ao.certificate = !client_ca.empty() && https;  // over plain HTTP --client-ca only checks forwarded certificates
    ao.anonymous = !ao.basic && !ao.oauth && !ao.certificate && !trust_arr;
  } else {
    std::string_view rest = auth_list;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const std::string method = to_lower(trim(rest.substr(0, comma)));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      if (method == "none")
        ao.anonymous = true;
      else if (method == "basic")
        ao.basic = true;
      else if (method == "certificate")
        ao.certificate = true;
      else if (method == "oauth")
        ao.oauth = true;
      else if (!method.empty())
        return fail("--auth: unknown method '" + method + "' (none, basic, certificate, oauth)");
    }
    if (ao.anonymous && (ao.basic || ao.certificate || ao.oauth))
      return fail("--auth none cannot be combined with other methods");
  }
  if (ao.certificate && !https)
    return fail("certificate authentication needs HTTPS (--tls-cert/--tls-key), or --trust-arr-header behind a proxy");
  auto auth = AgentAuthenticator::create(std::move(ao));
  if (!auth) return fail(auth.error().message);

  Settings settings;
  if (base_path.empty() || base_path.front() != '/') return fail("--base-path must start with '/'");
  while (base_path.size() > 1 && base_path.back() == '/') base_path.pop_back();
  settings.base_path = base_path;
  auto form = parse_endpoint_form(endpoint_form);
  if (!form) return fail("--endpoint-form must be prefixed, rooted, absolute or rotate");
  settings.endpoint_form = *form;
  while (!public_url.empty() && public_url.back() == '/') public_url.pop_back();
  settings.public_url = public_url;
  settings.heartbeat_minutes = heartbeat_minutes;
  settings.auto_approve = auto_approve;
  settings.invalidate_on_schedule = !no_invalidate;
  settings.chain_inventory = chain_inventory;
  settings.certificate_validity_days = validity_days;

  Secret admin_token;
  if (!admin_token_env.empty()) {
    auto token = secret_from_env(admin_token_env, "--admin-token-env");
    if (!token) return fail(token.error().message);
    admin_token = std::move(token.value());
  }

  if (synchronous != "normal" && synchronous != "full") return fail("--synchronous must be normal or full");
  auto db = StateDb::open(state_dir, synchronous == "full" ? Durability::kFull : Durability::kNormal);
  if (!db) return fail(db.error().message);
  auto state = db->load();
  if (!state) return fail(state.error().message);
  auto ca = CertificateAuthority::load_or_create(state_dir, ca_cert, ca_key);
  if (!ca) return fail(ca.error().message);

  boost::asio::io_context ioc(1);
  Runtime runtime(std::move(settings), std::move(db.value()), std::move(state.value()), std::move(ca.value()),
                  std::move(auth.value()));
  App app(runtime, std::move(admin_token));
  ServerOptions so;
  so.listen_host = listen_addr->first;
  so.port = listen_addr->second;
  so.tls_cert = tls_cert;
  so.tls_key = tls_key;
  so.client_ca = https ? client_ca : std::string();
  so.max_body_bytes = static_cast<std::size_t>(max_body_mb) << 20;
  Server server(ioc, so, app);
  auto port = server.start();
  if (!port) {
    std::cerr << "command-sim: " << port.error().message << "\n";
    return 1;
  }
  if (!port_file.empty()) {
    if (auto st = write_file_durably(port_file, std::to_string(*port) + "\n", 0644); !st) {
      std::cerr << "command-sim: " << st.error().message << "\n";
      return 1;
    }
  }
  std::string methods;
  for (const auto& m : runtime.auth.methods()) methods += (methods.empty() ? "" : ",") + m;
  log->info("command-sim listening on {}://{}:{}{} (auth {}; state {}; CA '{}'; {} agent(s), {} store(s), {} job(s))",
            server.tls() ? "https" : "http", so.listen_host, *port, runtime.settings.base_path, methods, state_dir,
            runtime.ca.info().subject, runtime.state.agents.size(), runtime.state.stores.size(),
            runtime.state.jobs.size());

  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int sig) {
    log->info("signal {}: shutting down", sig);
    server.stop();
    ioc.stop();
  });
  ioc.run();
  (void)runtime.commit();  // every request committed its own changes; a failure was logged
  return 0;
}
