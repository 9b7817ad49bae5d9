#include "sim/command/auth.hpp"

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <sstream>

#include "certstore/openssl_util.hpp"
#include "common/encoding.hpp"
#include "common/log.hpp"
#include "sim/command/durable_file.hpp"

namespace wincert::sim::command {

namespace ossl = certstore::ossl;

namespace {

using X509StorePtr = std::unique_ptr<X509_STORE, ossl::Deleter<X509_STORE_free>>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, ossl::Deleter<X509_STORE_CTX_free>>;

bool secrets_equal(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// Finds name+secret in a credential list: names case-insensitively (Windows account names), secrets exactly.
const Credential* match(const std::vector<Credential>& list, const std::string& name, const std::string& secret) {
  for (const auto& c : list) {
    if (iequals(c.name, name) && secrets_equal(c.secret.reveal(), secret)) return &c;
  }
  return nullptr;
}

// "Basic dXNlcjpwYXNz" -> ("user", "pass").
std::optional<std::pair<std::string, Secret>> decode_basic(std::string_view credentials) {
  auto decoded = base64_decode(trim(credentials));
  if (!decoded) return std::nullopt;
  const Secret plain(std::move(*decoded));
  const auto colon = plain.reveal().find(':');
  if (colon == std::string::npos) return std::nullopt;
  return std::make_pair(plain.reveal().substr(0, colon), Secret(plain.reveal().substr(colon + 1)));
}

std::string random_token() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return {};
  return hex_lower(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

HttpReply oauth_error(unsigned status, const std::string& error, const std::string& description) {
  Json body = Json::object();
  body["error"] = error;
  body["error_description"] = description;
  HttpReply reply = HttpReply::json(status, body);
  reply.headers.emplace_back("Cache-Control", "no-store");
  if (status == 401) reply.headers.emplace_back("WWW-Authenticate", "Basic realm=\"oauth\"");
  return reply;
}

}  // namespace

std::string common_name_of(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ossl::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) {
    ossl::drain_errors();
    return {};
  }
  char cn[256] = {};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, cn, sizeof cn) <= 0) return {};
  return cn;
}

Result<std::vector<Credential>> load_credentials_file(const std::string& path) {
  WINCERT_ASSIGN_OR_RETURN(auto text, read_small_file(path, 1 << 20));
  const Secret content(std::move(text));
  std::vector<Credential> out;
  std::istringstream in(content.reveal());
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const Secret owned(std::move(line));
    const std::string_view l = trim(owned.reveal());
    if (l.empty() || l.front() == '#') continue;
    const auto colon = l.find(':');
    if (colon == std::string_view::npos || colon == 0)
      return Error::invalid_argument(path + " line " + std::to_string(number) + " is not NAME:SECRET");
    out.push_back({std::string(l.substr(0, colon)), Secret(std::string(l.substr(colon + 1)))});
    line.clear();
  }
  return out;
}

Result<AgentAuthenticator> AgentAuthenticator::create(AuthOptions options) {
  if (options.basic && options.users.empty())
    return Error::invalid_argument("basic authentication needs --users or --basic-user");
  if (options.oauth && options.oauth_clients.empty())
    return Error::invalid_argument("OAuth needs --oauth-client/--oauth-secret-env or --oauth-clients");
  if ((options.certificate || options.trust_arr_header) && options.client_ca_file.empty())
    return Error::invalid_argument("client certificate authentication needs --client-ca");
  if (options.token_path.empty() || options.token_path.front() != '/')
    return Error::invalid_argument("--oauth-token-path must start with '/'");
  return AgentAuthenticator(std::move(options));
}

std::vector<std::string> AgentAuthenticator::methods() const {
  std::vector<std::string> out;
  if (options_.anonymous) out.emplace_back("none");
  if (options_.basic) out.emplace_back("basic");
  if (options_.certificate) out.emplace_back("certificate");
  if (options_.oauth) out.emplace_back("oauth");
  if (options_.trust_arr_header) out.emplace_back("arr-header");
  return out;
}

HttpReply AgentAuthenticator::challenge(const std::string& bearer_error) const {
  HttpReply reply = HttpReply::message(401, "Authorization has been denied for this request.");
  if (options_.basic) reply.headers.emplace_back("WWW-Authenticate", "Basic realm=\"Keyfactor\"");
  if (options_.oauth) {
    std::string value = "Bearer realm=\"Keyfactor\"";
    if (!bearer_error.empty()) value += ", error=\"invalid_token\", error_description=\"" + bearer_error + "\"";
    reply.headers.emplace_back("WWW-Authenticate", value);
  }
  // No HTTP scheme names client certificates; say what is missing so a person can act on it.
  if (options_.certificate) reply.headers.emplace_back("WWW-Authenticate", "Certificate realm=\"Keyfactor\"");
  return reply;
}

std::optional<std::string> AgentAuthenticator::verify_forwarded_certificate(const std::string& header_value) const {
  auto decoded = url_decode(header_value, false);
  if (!decoded) return std::nullopt;
  ossl::X509Ptr cert;
  const std::string_view text = trim(*decoded);
  if (text.starts_with("-----BEGIN")) {
    ossl::BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    cert.reset(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  } else if (auto der = base64_decode(text)) {
    const auto* p = reinterpret_cast<const unsigned char*>(der->data());
    cert.reset(d2i_X509(nullptr, &p, static_cast<long>(der->size())));
  }
  if (!cert) {
    ossl::drain_errors();
    return std::nullopt;
  }
  X509StorePtr store(X509_STORE_new());
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_load_file(store.get(), options_.client_ca_file.c_str()) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) != 1) {
    ossl::drain_errors();
    return std::nullopt;
  }
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  const bool ok = X509_verify_cert(ctx.get()) == 1;
  ossl::drain_errors();
  if (!ok) return std::nullopt;
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert.get(), &der);
  std::string out;
  if (len > 0) out.assign(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return common_name_of(out);
}

AuthOutcome AgentAuthenticator::authenticate(const HttpRequest& request, const ConnectionInfo& connection) {
  AuthOutcome out;
  if (options_.anonymous) {
    // No authentication configured: accept anything, but remember a Basic user name for the agent list.
    std::string name = "anonymous";
    if (auto it = request.find(http::field::authorization);
        it != request.end() && istarts_with(it->value(), "Basic ")) {
      if (auto pair = decode_basic(it->value().substr(6))) name = pair->first;
    }
    out.principal = Principal{name, "anonymous"};
    return out;
  }
  if (auto it = request.find(http::field::authorization); it != request.end()) {
    const std::string_view value = trim(it->value());
    const auto space = value.find(' ');
    const std::string_view scheme = value.substr(0, space);
    const std::string_view credentials = space == std::string_view::npos ? std::string_view{} : value.substr(space + 1);
    if (iequals(scheme, "Basic") && options_.basic) {
      auto pair = decode_basic(credentials);
      if (pair && match(options_.users, pair->first, pair->second.reveal())) {
        out.principal = Principal{pair->first, "basic"};
        return out;
      }
      out.reason = pair ? "wrong user name or password for '" + pair->first + "'" : "malformed Basic credentials";
      out.refusal = challenge({});
      return out;
    }
    if (iequals(scheme, "Bearer") && options_.oauth) {
      const std::string token(trim(credentials));
      auto found = tokens_.find(token);
      if (found == tokens_.end()) {
        out.reason = "unknown bearer token";
        out.refusal = challenge("The access token is invalid");
        return out;
      }
      if (std::chrono::steady_clock::now() >= found->second.expires) {
        out.reason = "expired bearer token of client '" + found->second.client_id + "'";
        out.refusal = challenge("The access token expired");
        return out;
      }
      out.principal = Principal{found->second.client_id, "oauth"};
      return out;
    }
    out.reason = "authorization scheme '" + std::string(scheme) + "' is not enabled";
    out.refusal = challenge({});
    return out;
  }
  if (options_.certificate && !connection.client_certificate_der.empty()) {
    const std::string cn = common_name_of(connection.client_certificate_der);
    if (!cn.empty()) {
      out.principal = Principal{cn, "certificate"};
      return out;
    }
    out.reason = "the client certificate has no subject CN";
  }
  if (options_.trust_arr_header) {
    if (auto it = request.find("X-ARR-ClientCert"); it != request.end()) {
      if (auto cn = verify_forwarded_certificate(std::string(it->value())); cn && !cn->empty()) {
        out.principal = Principal{*cn, "certificate"};
        return out;
      }
      out.reason = "the forwarded X-ARR-ClientCert does not chain to --client-ca";
      out.refusal = challenge({});
      return out;
    }
  }
  if (out.reason.empty())
    out.reason =
        options_.certificate && !connection.tls ? "no credentials (client certificates need HTTPS)" : "no credentials";
  out.refusal = challenge({});
  return out;
}

HttpReply AgentAuthenticator::token_endpoint(const HttpRequest& request, bool& auth_failed) {
  auth_failed = false;
  if (!options_.oauth) return HttpReply::message(404, "OAuth is not enabled on this server (--auth oauth)");
  if (request.method() != http::verb::post) {
    HttpReply reply = oauth_error(405, "invalid_request", "use POST");
    reply.headers.emplace_back("Allow", "POST");
    return reply;
  }
  auto form = parse_form(request.body());
  if (!form) return oauth_error(400, "invalid_request", "the body is not application/x-www-form-urlencoded");
  const auto field = [&](const char* name) -> std::string {
    auto it = form->find(name);
    return it == form->end() ? std::string() : it->second;
  };
  const std::string grant_type = field("grant_type");
  std::string client_id = field("client_id");
  Secret client_secret(field("client_secret"));
  if (auto it = request.find(http::field::authorization); it != request.end()) {
    const std::string_view value = trim(it->value());
    if (istarts_with(value, "Basic ")) {
      if (auto pair = decode_basic(value.substr(6))) {
        // RFC 6749 2.3.1: both parts are form-urlencoded inside the Basic credentials.
        client_id = url_decode(pair->first, true).value_or(pair->first);
        client_secret = Secret(url_decode(pair->second.reveal(), true).value_or(pair->second.reveal()));
      }
    }
  }
  // Secrets from the form are cleared from the parsed copy.
  for (auto& [k, v] : *form) OPENSSL_cleanse(v.data(), v.size());
  if (grant_type.empty()) return oauth_error(400, "invalid_request", "grant_type is missing");
  if (grant_type != "client_credentials")
    return oauth_error(400, "unsupported_grant_type", "only client_credentials is supported");
  if (client_id.empty() || client_secret.empty()) {
    auth_failed = true;
    return oauth_error(401, "invalid_client", "client_id and client_secret are required");
  }
  if (!match(options_.oauth_clients, client_id, client_secret.reveal())) {
    auth_failed = true;
    logger("command-sim")->info("token request refused: wrong client_id or client_secret for '{}'", client_id);
    return oauth_error(401, "invalid_client", "client authentication failed");
  }
  const std::string scope = field("scope");
  const std::string audience = field("audience");
  if (!options_.required_scope.empty() && !scope.empty() && scope.find(options_.required_scope) == std::string::npos)
    return oauth_error(400, "invalid_scope", "the scope must include " + options_.required_scope);
  if (!options_.required_audience.empty() && !audience.empty() && audience != options_.required_audience)
    return oauth_error(400, "invalid_target", "unknown audience");
  // Forget tokens long expired so a busy test cannot grow the table without bound.
  if (tokens_.size() > 10000) {
    const auto cutoff = std::chrono::steady_clock::now() - std::chrono::hours(1);
    std::erase_if(tokens_, [&](const auto& t) { return t.second.expires < cutoff; });
  }
  const std::string token = random_token();
  if (token.empty()) return oauth_error(500, "server_error", "no random bytes");
  tokens_[token] =
      Token{client_id, std::chrono::steady_clock::now() + std::chrono::seconds(options_.token_lifetime_seconds)};
  Json body = Json::object();
  body["access_token"] = token;
  body["token_type"] = "Bearer";
  body["expires_in"] = options_.token_lifetime_seconds;
  if (!scope.empty()) body["scope"] = scope;
  HttpReply reply = HttpReply::json(200, body);
  reply.headers.emplace_back("Cache-Control", "no-store");
  reply.headers.emplace_back("Pragma", "no-cache");
  logger("command-sim")
      ->info("issued a bearer token to client '{}' for {} s", client_id, options_.token_lifetime_seconds);
  return reply;
}

void AgentAuthenticator::expire_all_tokens() {
  const auto now = std::chrono::steady_clock::now();
  for (auto& [token, t] : tokens_) t.expires = std::min(t.expires, now);
}

}  // namespace wincert::sim::command
