// command-sim: agent authentication - Basic (users file and one user from the environment), OAuth client
// credentials (token endpoint, bearer tokens, expiry), client certificates over mTLS and the forwarded
// X-ARR-ClientCert header.
#include <gtest/gtest.h>

#include <thread>

#include "common/encoding.hpp"
#include "tests/sim/command_sim_support.hpp"

namespace wincert::sim::command::testing {
namespace {

using namespace std::chrono_literals;
using boost::beast::http::verb;

Headers basic(const std::string& user, const std::string& password) {
  return {{"Authorization", "Basic " + base64_encode(user + ":" + password)}};
}

Headers bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

std::string url_encode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

HttpResult token_request(const HttpClient& http, const std::string& path, const std::string& form,
                         const Headers& extra = {}) {
  Headers headers = extra;
  headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  return http.request(verb::post, path, form, headers);
}

bool has_challenge(const HttpResult& r, const std::string& scheme) {
  for (const auto& v : r.header_values("www-authenticate")) {
    if (v.starts_with(scheme)) return true;
  }
  return false;
}

class CommandSimAuthTest : public SimFixture {};

TEST_F(CommandSimAuthTest, BasicWithAUsersFile) {
  write_text(dir.file("users"), "# service accounts\nKEYFACTOR\\svc-orch:S3cret:with:colons\n\nother:pw\n");
  start({"--auto-approve", "--users", dir.file("users")});
  Registration none = register_agent(*http, "orchestrator-1");
  EXPECT_EQ(none.http.status, 401u);
  EXPECT_TRUE(has_challenge(none.http, "Basic realm=")) << none.http.body;
  EXPECT_EQ(register_agent(*http, "orchestrator-1", "", kDefaultCapabilities, basic("KEYFACTOR\\svc-orch", "wrong"))
                .http.status,
            401u);
  EXPECT_EQ(register_agent(*http, "orchestrator-1", "", kDefaultCapabilities, bearer("abc")).http.status, 401u);
  Registration ok = register_agent(*http, "orchestrator-1", "", kDefaultCapabilities,
                                   basic("keyfactor\\SVC-ORCH", "S3cret:with:colons"));
  EXPECT_EQ(ok.http.status, 200u) << ok.http.body;
  EXPECT_EQ(admin_get(*http, "/admin/agents")[0]["Username"], "keyfactor\\SVC-ORCH");
  // Every API call needs the credentials, not only the registration.
  EXPECT_EQ(http->post("/KeyfactorAgents/Session/Heartbeat", {{"SessionToken", ok.token}}).status, 401u);
  EXPECT_EQ(http->post("/KeyfactorAgents/Session/Heartbeat", {{"SessionToken", ok.token}}, basic("other", "pw")).status,
            200u);
  EXPECT_EQ(admin_get(*http, "/admin/counters")["AuthFailures"], 4);
  EXPECT_EQ(sim->log().find("S3cret"), std::string::npos);
}

TEST_F(CommandSimAuthTest, BasicUserFromTheEnvironment) {
  start({"--auto-approve", "--basic-user", "DOMAIN\\orch", "--basic-password-env", "CMDSIM_PW"},
        {{"CMDSIM_PW", "env-pa55"}});
  EXPECT_EQ(register_agent(*http, "o", "", kDefaultCapabilities, basic("DOMAIN\\orch", "env-pa55")).http.status, 200u);
  EXPECT_EQ(register_agent(*http, "o", "", kDefaultCapabilities, basic("DOMAIN\\orch", "env-pa56")).http.status, 401u);
  CommandSim missing(dir.path() / "state2", {"--basic-user", "u", "--basic-password-env", "CMDSIM_UNSET_VARIABLE"});
  EXPECT_THROW(missing.start(), std::runtime_error);
}

TEST_F(CommandSimAuthTest, OAuthClientCredentials) {
  const std::string path = "/realms/Keyfactor/protocol/openid-connect/token";
  start({"--auto-approve", "--oauth-client", "orchestrator", "--oauth-secret-env", "CMDSIM_SECRET", "--token-lifetime",
         "2", "--oauth-token-path", path},
        {{"CMDSIM_SECRET", "cl1ent-s3cret"}});
  // The token endpoint.
  HttpResult wrong =
      token_request(*http, path, "grant_type=client_credentials&client_id=orchestrator&client_secret=nope");
  EXPECT_EQ(wrong.status, 401u);
  EXPECT_EQ(wrong.json()["error"], "invalid_client");
  EXPECT_EQ(token_request(*http, path, "grant_type=password&client_id=orchestrator&client_secret=cl1ent-s3cret")
                .json()["error"],
            "unsupported_grant_type");
  EXPECT_EQ(http->get(path).status, 405u);
  HttpResult granted = token_request(
      *http, path,
      "grant_type=client_credentials&client_id=orchestrator&client_secret=cl1ent-s3cret&scope=agents&audience=command");
  ASSERT_EQ(granted.status, 200u) << granted.body;
  const Json token = granted.json();
  EXPECT_EQ(token["token_type"], "Bearer");
  EXPECT_EQ(token["expires_in"], 2);
  ASSERT_TRUE(token["access_token"].is_string());
  const std::string access = token["access_token"];
  // Client credentials in a Basic header (client_secret_basic) work too.
  EXPECT_EQ(token_request(*http, path, "grant_type=client_credentials", basic("orchestrator", "cl1ent-s3cret")).status,
            200u);

  // The API takes the bearer token.
  Registration none = register_agent(*http, "orchestrator-1");
  EXPECT_EQ(none.http.status, 401u);
  EXPECT_TRUE(has_challenge(none.http, "Bearer"));
  Registration ok = register_agent(*http, "orchestrator-1", "", kDefaultCapabilities, bearer(access));
  EXPECT_EQ(ok.http.status, 200u) << ok.http.body;
  EXPECT_EQ(admin_get(*http, "/admin/agents")[0]["Username"], "orchestrator");
  HttpResult forged =
      register_agent(*http, "orchestrator-1", "", kDefaultCapabilities, bearer("0123456789abcdef")).http;
  EXPECT_EQ(forged.status, 401u);
  EXPECT_NE(forged.header_values("www-authenticate")[0].find("invalid_token"), std::string::npos);
  EXPECT_EQ(register_agent(*http, "orchestrator-1", "", kDefaultCapabilities, basic("orchestrator", "cl1ent-s3cret"))
                .http.status,
            401u);

  // Expired tokens are refused with a reason.
  std::this_thread::sleep_for(2200ms);
  HttpResult expired = register_agent(*http, "orchestrator-1", "", kDefaultCapabilities, bearer(access)).http;
  EXPECT_EQ(expired.status, 401u);
  ASSERT_FALSE(expired.header_values("www-authenticate").empty());
  EXPECT_NE(expired.header_values("www-authenticate")[0].find("expired"), std::string::npos);
  // The lifetime can change at runtime; the admin API can expire every token at once.
  admin_put(*http, "/admin/settings", {{"TokenLifetimeSeconds", 600}});
  const Json longer =
      token_request(*http, path, "grant_type=client_credentials&client_id=orchestrator&client_secret=cl1ent-s3cret")
          .json();
  EXPECT_EQ(longer["expires_in"], 600);
  EXPECT_EQ(
      register_agent(*http, "orchestrator-1", "", kDefaultCapabilities, bearer(longer["access_token"])).http.status,
      200u);
  admin_post(*http, "/admin/tokens/expire");
  EXPECT_EQ(
      register_agent(*http, "orchestrator-1", "", kDefaultCapabilities, bearer(longer["access_token"])).http.status,
      401u);
  Json counters = admin_get(*http, "/admin/counters");
  EXPECT_EQ(counters["TokensIssued"], 3);
  EXPECT_EQ(counters["Requests"]["oauth/token"], 6);
  EXPECT_EQ(sim->log().find("cl1ent-s3cret"), std::string::npos);
  EXPECT_EQ(sim->log().find(access), std::string::npos);
}

TEST_F(CommandSimAuthTest, ClientCertificatesOverMutualTls) {
  TestPki server_pki(dir.path(), "server");
  TestPki client_pki(dir.path(), "clients");
  TestPki stranger_pki(dir.path(), "stranger");
  auto [cert, key] = client_pki.client("orch-by-cert");
  auto [bad_cert, bad_key] = stranger_pki.client("orch-by-cert");
  start({"--auto-approve", "--tls-cert", server_pki.server_cert, "--tls-key", server_pki.server_key, "--client-ca",
         client_pki.ca_file});
  HttpClient with_cert(sim->port(), TlsOptions{server_pki.ca_file, cert, key});
  HttpClient without_cert(sim->port(), TlsOptions{server_pki.ca_file, "", ""});
  HttpClient wrong_ca(sim->port(), TlsOptions{server_pki.ca_file, bad_cert, bad_key});

  Registration reg = register_agent(with_cert, "orchestrator-1");
  EXPECT_EQ(reg.http.status, 200u) << reg.http.error << reg.http.body;
  EXPECT_EQ(admin_get(without_cert, "/admin/agents")[0]["Username"], "orch-by-cert");
  // Endpoints the server hands out over HTTPS are https:// when absolute.
  admin_put(without_cert, "/admin/settings", {{"EndpointForm", "absolute"}});
  const std::string store = create_store_with(without_cert, reg.agent_id);
  admin_post(without_cert, "/admin/jobs", {{"Type", "Inventory"}, {"StoreId", store}});
  Registration again = register_agent(with_cert, "orchestrator-1", reg.agent_id);
  ASSERT_EQ(again.jobs.size(), 1u);
  EXPECT_TRUE(again.jobs[0]["ConfigurationEndpoint"].get<std::string>().starts_with("https://127.0.0.1:"));

  Registration missing = register_agent(without_cert, "orchestrator-1");
  EXPECT_EQ(missing.http.status, 401u);
  EXPECT_TRUE(has_challenge(missing.http, "Certificate"));
  HttpResult refused = register_agent(wrong_ca, "orchestrator-1").http;
  EXPECT_EQ(refused.status, 0u);  // the handshake fails: the certificate does not chain to --client-ca
  EXPECT_FALSE(refused.error.empty());
  HttpClient plain(sim->port());
  EXPECT_EQ(plain.get("/admin/agents").status, 0u);
}

TEST_F(CommandSimAuthTest, BasicOrCertificate) {
  TestPki pki(dir.path(), "pki");
  auto [cert, key] = pki.client("orch-cert");
  write_text(dir.file("users"), "svc:pw\n");
  start({"--auto-approve", "--auth", "basic,certificate", "--users", dir.file("users"), "--tls-cert", pki.server_cert,
         "--tls-key", pki.server_key, "--client-ca", pki.ca_file});
  HttpClient with_cert(sim->port(), TlsOptions{pki.ca_file, cert, key});
  HttpClient without_cert(sim->port(), TlsOptions{pki.ca_file, "", ""});
  EXPECT_EQ(register_agent(with_cert, "a").http.status, 200u);
  EXPECT_EQ(register_agent(without_cert, "b", "", kDefaultCapabilities, basic("svc", "pw")).http.status, 200u);
  HttpResult neither = register_agent(without_cert, "c").http;
  EXPECT_EQ(neither.status, 401u);
  EXPECT_TRUE(has_challenge(neither, "Basic"));
  EXPECT_TRUE(has_challenge(neither, "Certificate"));
}

TEST_F(CommandSimAuthTest, ForwardedClientCertificateBehindAProxy) {
  TestPki pki(dir.path(), "pki");
  TestPki stranger(dir.path(), "stranger");
  auto [cert, key] = pki.client("orch-behind-proxy");
  auto [bad_cert, bad_key] = stranger.client("intruder");
  start({"--auto-approve", "--trust-arr-header", "--client-ca", pki.ca_file});
  const Headers forwarded = {{"X-ARR-ClientCert", url_encode(read_text(cert))}};
  EXPECT_EQ(register_agent(*http, "orchestrator-1", "", kDefaultCapabilities, forwarded).http.status, 200u);
  EXPECT_EQ(admin_get(*http, "/admin/agents")[0]["Username"], "orch-behind-proxy");
  const Headers stranger_header = {{"X-ARR-ClientCert", url_encode(read_text(bad_cert))}};
  EXPECT_EQ(register_agent(*http, "orchestrator-1", "", kDefaultCapabilities, stranger_header).http.status, 401u);
  EXPECT_EQ(register_agent(*http, "orchestrator-1").http.status, 401u);
}

}  // namespace
}  // namespace wincert::sim::command::testing
