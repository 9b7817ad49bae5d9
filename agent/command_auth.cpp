#include "agent/command_auth.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <charconv>
#include <cmath>
#include <optional>

#include "common/encoding.hpp"
#include "common/log.hpp"
#include "common/peer_json.hpp"
#include "winrm/async_lock.hpp"

namespace wincert::agent {

namespace net = boost::asio;
using nlohmann::json;

std::optional<long long> expires_in_seconds(const json& value) {
  constexpr long long kMax = 366LL * 24 * 3600;
  long long v = 0;
  if (value.is_number_integer() || value.is_number_unsigned()) {
    if (value.is_number_unsigned() && value.get<unsigned long long>() > static_cast<unsigned long long>(kMax))
      return std::nullopt;
    v = value.get<long long>();
  } else if (value.is_number_float()) {
    const double d = value.get<double>();
    if (!std::isfinite(d) || d < 1 || d > static_cast<double>(kMax)) return std::nullopt;
    v = static_cast<long long>(d);
  } else if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || ptr != text.data() + text.size()) return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (v < 1 || v > kMax) return std::nullopt;
  return v;
}

std::string form_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    }
  }
  return out;
}

namespace {

class BasicAuth final : public CommandAuth {
 public:
  BasicAuth(std::string username, const Secret& password)
      : username_(std::move(username)), header_("Basic " + base64_encode(username_ + ":" + password.reveal())) {}
  net::awaitable<Result<std::optional<Secret>>> authorization() override { co_return std::optional<Secret>(header_); }
  bool on_unauthorized() override { return false; }
  std::string principal() const override { return "basic user '" + username_ + "'"; }

 private:
  std::string username_;
  Secret header_;
};

class CertificateOnlyAuth final : public CommandAuth {
 public:
  explicit CertificateOnlyAuth(std::string file) : file_(std::move(file)) {}
  net::awaitable<Result<std::optional<Secret>>> authorization() override { co_return std::optional<Secret>(); }
  bool on_unauthorized() override { return false; }
  std::string principal() const override { return "client certificate '" + file_ + "'"; }

 private:
  std::string file_;
};

}  // namespace

std::unique_ptr<CommandAuth> make_basic_auth(std::string username, Secret password) {
  return std::make_unique<BasicAuth>(std::move(username), password);
}
std::unique_ptr<CommandAuth> make_certificate_only_auth(std::string certificate_file) {
  return std::make_unique<CertificateOnlyAuth>(std::move(certificate_file));
}

struct OAuthClientCredentials::Impl {
  HttpClient& http;
  OAuthSettings settings;
  SteadyNow now;
  winrm::AsyncLock lock;  // one token request at a time; the others wait for its result
  std::optional<Secret> token;
  std::chrono::steady_clock::time_point refresh_at{};
  std::atomic<std::uint64_t> fetched{0};

  Impl(HttpClient& h, OAuthSettings s, SteadyNow n, const net::any_io_executor& ex)
      : http(h), settings(std::move(s)), now(std::move(n)), lock(ex) {}

  std::string who() const { return "OAuth client '" + settings.client_id + "'"; }

  net::awaitable<Result<Secret>> fetch() {
    auto url = parse_url(settings.token_url);
    if (!url.ok()) co_return url.error().context("BearerTokenUrl: ");
    HttpRequest request;
    request.url = *url;
    request.content_type = "application/x-www-form-urlencoded";
    // The body carries the client secret: it is sent, never logged.
    request.body = "grant_type=client_credentials&client_id=" + form_encode(settings.client_id) +
                   "&client_secret=" + form_encode(settings.client_secret.reveal());
    if (!settings.scope.empty()) request.body += "&scope=" + form_encode(settings.scope);
    if (!settings.audience.empty()) request.body += "&audience=" + form_encode(settings.audience);
    const std::string what = "token request to " + url->origin() + url->path();
    WINCERT_CO_ASSIGN_OR_RETURN(HttpResponse response, co_await http.send(std::move(request), what));
    const unsigned status = response.status;
    // A body beyond the token reply's limits (or not JSON) reads as no document: the checks below say so.
    json doc = json::value_t::discarded;
    if (auto parsed = parse_peer_json(response.body, peer_json_limits::kTokenReply, "the token reply"); parsed.ok())
      doc = std::move(parsed.value());
    if (status != 200) {
      std::string detail;
      if (doc.is_object()) {
        if (doc.contains("error") && doc["error"].is_string()) detail = doc["error"].get<std::string>();
        if (doc.contains("error_description") && doc["error_description"].is_string())
          detail += (detail.empty() ? "" : ": ") + doc["error_description"].get<std::string>();
      }
      if (detail.empty()) detail = body_excerpt(response.body);
      const std::string message = "the token endpoint " + url->origin() + url->path() + " refused " + who() +
                                  " (HTTP " + std::to_string(status) + ", " + detail + ")";
      const int http_status = static_cast<int>(status);
      if (status >= 500 || status == 429 || status == 408)
        co_return Error::unavailable(message + ": retrying later").with_http_status(http_status);
      const std::string advice = message + ": check ClientId, ClientSecret, Scope and Audience";
      // RFC 6749 5.2: invalid_client is 401 (or 400), invalid_grant/invalid_scope 400: the credentials.
      if (status == 400 || status == 401) co_return Error::unauthenticated(advice).with_http_status(http_status);
      if (status == 403) co_return Error::permission_denied(advice).with_http_status(http_status);
      co_return Error::failed_precondition(advice).with_http_status(http_status);
    }
    if (!doc.is_object() || !doc.contains("access_token") || !doc["access_token"].is_string() ||
        doc["access_token"].get_ref<const std::string&>().empty()) {
      co_return Error::invalid_argument("the token endpoint " + url->origin() + url->path() +
                                        " answered without an access_token (is BearerTokenUrl the token URL?)");
    }
    std::chrono::seconds lifetime = settings.token_lifetime;
    if (doc.contains("expires_in")) {
      // A lifetime outside 1 s .. 1 year is not believed (and a double beyond long long is never cast).
      if (auto v = expires_in_seconds(doc["expires_in"])) {
        lifetime = std::chrono::seconds(*v);
      } else {
        logger("command")->warn("the token endpoint {} sent an unusable expires_in; assuming {} s", url->origin(),
                                lifetime.count());
      }
    }
    // Refresh a little early so a request never carries a token that expires on the way.
    const auto margin = std::min<std::chrono::milliseconds>(std::chrono::seconds(60), lifetime / 10);
    refresh_at = now() + lifetime - margin;
    ++fetched;
    logger("command")->debug("fetched an access token for {}, valid {} s", who(), lifetime.count());
    co_return Secret(doc["access_token"].get<std::string>());
  }
};

OAuthClientCredentials::OAuthClientCredentials(HttpClient& http, OAuthSettings settings, SteadyNow now)
    : impl_(std::make_unique<Impl>(http, std::move(settings),
                                   now ? std::move(now) : SteadyNow([] { return std::chrono::steady_clock::now(); }),
                                   http.executor())) {}
OAuthClientCredentials::~OAuthClientCredentials() = default;

net::awaitable<Result<std::optional<Secret>>> OAuthClientCredentials::authorization() {
  auto guard = co_await impl_->lock.acquire();
  if (!guard.locked()) co_return Error::cancelled("token request was cancelled");
  if (!impl_->token || impl_->now() >= impl_->refresh_at) {
    impl_->token.reset();
    WINCERT_CO_ASSIGN_OR_RETURN(impl_->token, co_await impl_->fetch());
  }
  co_return std::optional<Secret>(Secret("Bearer " + impl_->token->reveal()));
}

bool OAuthClientCredentials::on_unauthorized() {
  impl_->token.reset();
  return true;
}

std::string OAuthClientCredentials::principal() const { return impl_->who(); }
std::uint64_t OAuthClientCredentials::tokens_fetched() const { return impl_->fetched.load(); }

std::unique_ptr<CommandAuth> make_command_auth(const AgentConfig& config, HttpClient& token_http) {
  switch (config.auth_mode) {
    case CommandAuthMode::kBasic:
      return make_basic_auth(config.username, config.password);
    case CommandAuthMode::kOAuth:
      return std::make_unique<OAuthClientCredentials>(token_http, config.oauth);
    case CommandAuthMode::kNone:
      break;
  }
  return make_certificate_only_auth(config.client_cert);
}

}  // namespace wincert::agent
