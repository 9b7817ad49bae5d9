#include "winrm/auth/negotiate_http_auth.hpp"

#include "common/encoding.hpp"
#include "common/log.hpp"
#include "winrm/auth/channel_binding.hpp"
#include "winrm/encryption.hpp"

namespace wincert::winrm {
namespace {

constexpr std::size_t kMaxTokenChars =
    128 * 1024;  // a Kerberos AP-REP is a few hundred bytes; PAC-laden tickets a few KiB

std::string_view scheme_name(gss::HttpScheme scheme) {
  return scheme == gss::HttpScheme::kKerberos ? "Kerberos" : "Negotiate";
}

// Comma-separated items of WWW-Authenticate values ("Negotiate", "Basic realm=\"WSMAN\"", ...).
template <typename F>
void for_each_challenge(const std::vector<std::string>& values, F&& f) {
  for (const auto& value : values) {
    std::string_view rest(value);
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const std::string_view item = trim(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      if (!item.empty()) f(item);
    }
  }
}

bool offers(const std::vector<std::string>& values, std::string_view scheme) {
  bool found = false;
  for_each_challenge(values, [&](std::string_view item) {
    if (iequals(item, scheme) ||
        (item.size() > scheme.size() && istarts_with(item, scheme) && item[scheme.size()] == ' '))
      found = true;
  });
  return found;
}

std::string offered_schemes(const std::vector<std::string>& values) {
  std::string out;
  for_each_challenge(values, [&](std::string_view item) {
    const std::string_view name = item.substr(0, item.find(' '));
    if (!out.empty()) out += ", ";
    out += std::string(name.substr(0, 40));
  });
  return out.empty() ? "none" : out;
}

}  // namespace

std::optional<std::string> scheme_token(const std::vector<std::string>& www_authenticate, std::string_view scheme) {
  std::optional<std::string> token;
  for_each_challenge(www_authenticate, [&](std::string_view item) {
    if (token || item.size() <= scheme.size() + 1 || !istarts_with(item, scheme) || item[scheme.size()] != ' ') return;
    const auto value = trim(item.substr(scheme.size() + 1));
    if (!value.empty()) token = std::string(value);
  });
  return token;
}

bool kerberos_unavailable(const Error& error) {
  // GSSAPI/SSPI classify "no ticket can be had here" (no credentials, no realm, no reachable KDC, no Kerberos
  // package) as unavailable or failed_precondition; refused credentials are unauthenticated.
  const SystemStatusKind kind = error.detail.system_kind;
  if (kind != SystemStatusKind::kGss && kind != SystemStatusKind::kSspi) return false;
  return error.code == ErrorCode::kUnavailable || error.code == ErrorCode::kFailedPrecondition;
}

// ---- GssHttpAuth --------------------------------------------------------------------------------------

GssHttpAuth::GssHttpAuth(gss::HttpScheme scheme, std::string user, Secret password, GssHttpAuthOptions options)
    : scheme_(scheme), user_(std::move(user)), password_(std::move(password)), options_(std::move(options)) {}

GssHttpAuth::~GssHttpAuth() = default;

std::string GssHttpAuth::scheme() const { return std::string(scheme_name(scheme_)); }

std::string GssHttpAuth::principal() const {
  if (!user_.empty()) return user_;
  if (context_) return context_->client_principal();
  return "the default Kerberos identity";
}

Status GssHttpAuth::check_transport(const ConnectionInfo& connection) const {
  if (!connection.tls && options_.encryption == GssHttpAuthOptions::Encryption::kNever)
    return Error::failed_precondition(scheme() +
                                      " over plain HTTP without message encryption sends SOAP in clear and "
                                      "Windows refuses it by default; use https or allow encryption");
  if (!password_.empty() && trim(user_).empty())
    return Error::invalid_argument(scheme() + " authentication: a password was given without a user name (--user)");
  return {};
}

Status GssHttpAuth::new_context() {
  context_.reset();
  gss::ClientOptions options;
  options.target.host = options_.spn_host.empty() ? connection_.host : options_.spn_host;
  options.target.service = options_.service;
  options.target.port = connection_.port;
  options.target.spn_with_port = options_.spn_with_port;
  options.mechanism = scheme_ == gss::HttpScheme::kKerberos ? gss::Mechanism::kKerberos : gss::Mechanism::kSpnego;
  options.scheme = scheme_;
  options.user = user_;
  options.password = password_;
  options.delegate = options_.delegate;
  options.channel_binding = channel_binding_;
  auto context = gss::GssContext::create(std::move(options));
  if (!context) return context.error().context(scheme() + " to " + where_ + ": ");
  // The first leg now, so every KDC exchange (AS with a password, TGS for the SPN) fails here, in reset().
  auto token = (*context)->step("");
  if (!token) return token.error().context(scheme() + " to " + where_ + ": ");
  if (token->empty()) return Error::internal(scheme() + " to " + where_ + ": GSSAPI produced no initial token");
  context_ = std::move(*context);
  pending_token_ = base64_encode(*token);
  state_ = State::kStart;
  return {};
}

Status GssHttpAuth::reset(const ConnectionInfo& connection) {
  WINCERT_TRY(check_transport(connection));
  connection_ = connection;
  where_ = connection.host + ":" + std::to_string(connection.port);
  encrypt_ = options_.encryption == GssHttpAuthOptions::Encryption::kAlways ||
             (options_.encryption == GssHttpAuthOptions::Encryption::kAuto && !connection.tls);
  channel_binding_.reset();
  if (connection.tls) {
    if (connection.peer_certificate_der.empty())
      return Error::unauthenticated(scheme() + " over https to " + where_ +
                                    ": the server sent no certificate, so channel binding is impossible");
    auto app_data = tls_server_end_point_application_data_der(connection.peer_certificate_der);
    if (!app_data) return app_data.error().context(scheme() + " over https to " + where_ + ": ");
    channel_binding_ = std::move(*app_data);
  }
  restarted_ = false;
  return new_context();
}

Result<std::optional<std::string>> GssHttpAuth::authorization() {
  if (!context_) return Error::internal(scheme() + ": authorization requested before the connection was set up");
  if (state_ != State::kStart) return std::optional<std::string>();  // the connection is (being) authenticated
  state_ = State::kSent;
  std::string header = scheme() + " " + pending_token_;
  pending_token_.clear();
  return std::optional<std::string>(std::move(header));
}

Result<ChallengeOutcome> GssHttpAuth::on_challenge(const std::vector<std::string>& www_authenticate) {
  if (!context_) return Error::internal(scheme() + ": a 401 arrived before the connection was set up");
  switch (state_) {
    case State::kStart:
      return ChallengeOutcome::kContinue;
    case State::kSent: {
      const auto token = scheme_token(www_authenticate, scheme());
      if (!token) {
        if (!offers(www_authenticate, scheme()))
          return Error::unauthenticated(scheme() + ": " + where_ + " does not offer " + scheme() +
                                        " authentication (it offers: " + offered_schemes(www_authenticate) +
                                        "); check --auth and the WinRM service's Auth settings")
              .with_http_status(401);
        logger("winrm")->debug("{} to {}: the host refused the token (401)", scheme(), where_);
        return ChallengeOutcome::kFailed;
      }
      // A continuation (SPNEGO) or a KRB-ERROR token: GSSAPI explains it.
      if (token->size() > kMaxTokenChars)
        return Error::invalid_argument(scheme() + ": the token from " + where_ + " is larger than any valid one");
      const auto bytes = base64_decode(*token);
      if (!bytes)
        return Error::invalid_argument(scheme() + ": the WWW-Authenticate token from " + where_ +
                                       " is not valid base64");
      if (context_->complete()) return ChallengeOutcome::kFailed;
      auto next = context_->step(*bytes);
      if (!next) return next.error().context("from " + where_ + ": ");
      if (next->empty()) return ChallengeOutcome::kFailed;
      pending_token_ = base64_encode(*next);
      state_ = State::kStart;
      return ChallengeOutcome::kContinue;
    }
    case State::kDone:
      // The host lost the context (and with it the sealing state): one fresh handshake on this
      // connection (the transport redoes the empty-body legs when encrypting); a second 401 is final.
      if (restarted_) return ChallengeOutcome::kFailed;
      restarted_ = true;
      logger("winrm")->debug("{} to {}: 401 in the middle of the session; authenticating again", scheme(), where_);
      if (auto fresh = new_context(); !fresh.ok()) return fresh.error();
      return ChallengeOutcome::kContinue;
  }
  return ChallengeOutcome::kFailed;
}

Status GssHttpAuth::on_response(const std::vector<std::string>& www_authenticate) {
  if (state_ != State::kSent || !context_) return {};
  auto token = scheme_token(www_authenticate, scheme());
  if (!token) token = scheme_token(www_authenticate, scheme_ == gss::HttpScheme::kKerberos ? "Negotiate" : "Kerberos");
  if (!token)
    return Error::unauthenticated(scheme() + " to " + where_ +
                                  ": the host did not prove its identity (no AP-REP token in its answer); refusing to "
                                  "continue without mutual authentication");
  if (token->size() > kMaxTokenChars)
    return Error::invalid_argument(scheme() + ": the token from " + where_ + " is larger than any valid one");
  const auto bytes = base64_decode(*token);
  if (!bytes)
    return Error::invalid_argument(scheme() + ": the WWW-Authenticate token from " + where_ + " is not valid base64");
  auto next = context_->step(*bytes);
  if (!next) return next.error().context("from " + where_ + ": ");
  if (!context_->complete())
    return Error::unauthenticated(scheme() + " to " + where_ +
                                  ": the host's answer did not complete mutual authentication (a further leg was "
                                  "expected); refusing to continue");
  state_ = State::kDone;
  logger("winrm")->debug("{} to {}: authenticated as {} to {}", scheme(), where_, context_->client_principal(),
                         context_->target_spn());
  return {};
}

Result<HttpBody> GssHttpAuth::wrap(std::string_view soap) {
  if (!encrypt_) return HttpBody{std::string(soap), "application/soap+xml;charset=UTF-8"};
  if (state_ != State::kDone || !context_)
    return Error::internal(scheme() + ": message encryption to " + where_ +
                           " requested before authentication finished");
  auto body = build_encrypted_body(soap, *context_);
  if (!body) return body.error().context(scheme() + " to " + where_ + ": ");
  return HttpBody{std::move(body->body), std::move(body->content_type)};
}

Result<std::string> GssHttpAuth::unwrap(std::string_view body, std::string_view content_type) {
  if (state_ != State::kDone || !context_)
    return Error::internal(scheme() + ": an encrypted response from " + where_ +
                           " arrived before authentication finished");
  auto plain = parse_encrypted_body(body, content_type, *context_);
  if (!plain) return plain.error().context("from " + where_ + ": ");
  return plain;
}

// ---- KerberosHttpAuth / NegotiateHttpAuth ------------------------------------------------------------

KerberosHttpAuth::KerberosHttpAuth(std::string user, Secret password, GssHttpAuthOptions options)
    : inner_(gss::HttpScheme::kKerberos, std::move(user), std::move(password), std::move(options)) {}

NegotiateHttpAuth::NegotiateHttpAuth(std::string user, Secret password, GssHttpAuthOptions options)
    : user_(user), have_password_(!password.empty()) {
  if (have_password_ && !user_.empty()) {
    NtlmHttpAuthOptions ntlm_options;
    ntlm_options.encryption =
        options.encryption == GssHttpAuthOptions::Encryption::kAlways  ? NtlmHttpAuthOptions::Encryption::kAlways
        : options.encryption == GssHttpAuthOptions::Encryption::kNever ? NtlmHttpAuthOptions::Encryption::kNever
                                                                       : NtlmHttpAuthOptions::Encryption::kAuto;
    ntlm_options.service = options.service;
    ntlm_options.spn_with_port = options.spn_with_port;
    ntlm_ = std::make_unique<NtlmHttpAuth>(user, password, std::move(ntlm_options));
  }
  kerberos_ = std::make_unique<GssHttpAuth>(gss::HttpScheme::kNegotiate, std::move(user), std::move(password),
                                            std::move(options));
}

Status NegotiateHttpAuth::check_transport(const ConnectionInfo& connection) const {
  return active().check_transport(connection);
}

Status NegotiateHttpAuth::reset(const ConnectionInfo& connection) {
  if (!use_ntlm_) {
    auto kerberos = kerberos_->reset(connection);
    if (kerberos.ok()) return {};
    if (!ntlm_ || !kerberos_unavailable(kerberos.error())) return kerberos;
    // Not a refusal of the credentials: there is just no Kerberos here. Windows' Negotiate uses NTLM then.
    logger("winrm")->debug("Negotiate to {}:{}: no Kerberos ticket can be had ({}); using NTLM", connection.host,
                           connection.port, kerberos.error().message);
    use_ntlm_ = true;
  }
  return ntlm_->reset(connection);
}

}  // namespace wincert::winrm
