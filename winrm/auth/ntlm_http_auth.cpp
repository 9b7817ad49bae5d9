#include "winrm/auth/ntlm_http_auth.hpp"

#include "common/encoding.hpp"
#include "winrm/auth/channel_binding.hpp"
#include "winrm/encryption.hpp"

namespace wincert::winrm {
namespace {

constexpr std::size_t kMaxTokenChars = 96 * 1024;  // base64 of ntlm::kMaxMessageBytes, with room

std::string offered_schemes(const std::vector<std::string>& www_authenticate) {
  std::string out;
  for (const auto& v : www_authenticate) {
    if (!out.empty()) out += ", ";
    out += std::string(trim(v).substr(0, 60));
  }
  return out.empty() ? "none" : out;
}

// True when a WWW-Authenticate value lists the Negotiate scheme (with or without a token).
bool offers_negotiate(std::string_view value) {
  std::string_view rest = value;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string_view item = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (iequals(item, "Negotiate") || istarts_with(item, "Negotiate ")) return true;
  }
  return false;
}

}  // namespace

std::optional<std::string> negotiate_token(const std::vector<std::string>& www_authenticate) {
  for (const auto& value : www_authenticate) {
    std::string_view rest(value);
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const std::string_view item = trim(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      if (item.size() > 10 && istarts_with(item, "Negotiate ")) {
        const auto token = trim(item.substr(10));
        if (!token.empty()) return std::string(token);
      }
    }
  }
  return std::nullopt;
}

NtlmHttpAuth::NtlmHttpAuth(std::string user, Secret password, NtlmHttpAuthOptions options)
    : user_(std::move(user)), password_(std::move(password)), options_(std::move(options)) {}

Status NtlmHttpAuth::check_transport(const ConnectionInfo& connection) const {
  if (user_.empty()) return Error::invalid_argument("NTLM authentication needs a user name (--user DOMAIN\\user)");
  if (!connection.tls && options_.encryption == NtlmHttpAuthOptions::Encryption::kNever)
    return Error::failed_precondition(
        "NTLM over plain HTTP without message encryption sends SOAP in clear and Windows "
        "refuses it by default; use https or allow encryption");
  if (auto available = ntlm_crypto::legacy_provider_available(); !available.ok()) return available.error();
  return {};
}

Status NtlmHttpAuth::reset(const ConnectionInfo& connection) {
  WINCERT_TRY(check_transport(connection));
  where_ = connection.host + ":" + std::to_string(connection.port);
  auto credentials = ntlm::parse_credentials(user_, password_);
  if (!credentials) return credentials.error();

  ntlm::ClientOptions client_options;
  client_options.target_spn = options_.service + "/" + connection.host;
  if (options_.spn_with_port) client_options.target_spn += ":" + std::to_string(connection.port);
  client_options.workstation = options_.workstation;
  if (connection.tls) {
    if (connection.peer_certificate_der.empty())
      return Error::unauthenticated("NTLM over https to " + where_ +
                                    ": the server sent no certificate, so channel binding is impossible");
    auto app_data = tls_server_end_point_application_data_der(connection.peer_certificate_der);
    if (!app_data) return app_data.error().context("NTLM over https to " + where_ + ": ");
    client_options.channel_binding_application_data = std::move(*app_data);
  }
  encrypt_ = options_.encryption == NtlmHttpAuthOptions::Encryption::kAlways ||
             (options_.encryption == NtlmHttpAuthOptions::Encryption::kAuto && !connection.tls);
  client_.emplace(std::move(*credentials), std::move(client_options));
  state_ = State::kStart;
  restarted_ = false;
  pending_token_.clear();
  sealer_.reset();
  negotiated_flags_ = 0;
  return {};
}

Result<std::optional<std::string>> NtlmHttpAuth::authorization() {
  if (!client_) return Error::internal("NTLM: authorization requested before the connection was set up");
  switch (state_) {
    case State::kStart:
    case State::kSentNegotiate: {  // (re)start: a NEGOTIATE without an answer is simply sent again
      auto negotiate = client_->negotiate();
      if (!negotiate) return negotiate.error();
      sealer_.reset();
      state_ = State::kSentNegotiate;
      return std::optional<std::string>("Negotiate " + base64_encode(*negotiate));
    }
    case State::kHaveAuthenticate:
      state_ = State::kSentAuthenticate;
      return std::optional<std::string>("Negotiate " + pending_token_);
    case State::kSentAuthenticate:
    case State::kDone:
      return std::optional<std::string>();  // the connection is authenticated
  }
  return std::optional<std::string>();
}

Result<ChallengeOutcome> NtlmHttpAuth::on_challenge(const std::vector<std::string>& www_authenticate) {
  if (!client_) return Error::internal("NTLM: a 401 arrived before the connection was set up");
  const auto token = negotiate_token(www_authenticate);
  switch (state_) {
    case State::kStart:
      return ChallengeOutcome::kContinue;  // the first 401 just lists the schemes
    case State::kSentNegotiate: {
      if (!token) {
        bool offered = false;
        for (const auto& v : www_authenticate) offered = offered || offers_negotiate(v);
        if (!offered)
          return Error::unauthenticated("NTLM: " + where_ + " does not offer Negotiate authentication (it offers: " +
                                        offered_schemes(www_authenticate) +
                                        "); check the WinRM service's Auth settings")
              .with_http_status(401);
        return ChallengeOutcome::kFailed;  // NEGOTIATE refused outright
      }
      if (token->size() > kMaxTokenChars)
        return Error::invalid_argument("NTLM: the CHALLENGE from " + where_ + " is larger than any valid NTLM message");
      const auto challenge = base64_decode(*token);
      if (!challenge)
        return Error::invalid_argument("NTLM: the WWW-Authenticate token from " + where_ + " is not valid base64");
      auto authenticate = client_->authenticate(ntlm_crypto::view(*challenge));
      if (!authenticate) return authenticate.error().context("from " + where_ + ": ");
      pending_token_ = base64_encode(*authenticate);
      negotiated_flags_ = client_->negotiated_flags();
      state_ = State::kHaveAuthenticate;
      return ChallengeOutcome::kContinue;
    }
    case State::kHaveAuthenticate:
    case State::kSentAuthenticate:
      return ChallengeOutcome::kFailed;  // AUTHENTICATE refused: wrong credentials or channel binding
    case State::kDone:
      // The server lost the context (and with it the sealing state): one fresh handshake on this
      // connection (the transport redoes the empty-body legs when encrypting); a second 401 is final.
      if (restarted_) return ChallengeOutcome::kFailed;
      restarted_ = true;
      state_ = State::kStart;
      return ChallengeOutcome::kContinue;
  }
  return ChallengeOutcome::kFailed;
}

Status NtlmHttpAuth::on_response(const std::vector<std::string>& www_authenticate) {
  (void)www_authenticate;  // NTLM has no mutual-authentication token on the 200
  if (state_ != State::kSentAuthenticate) return {};
  auto session = client_->take_session();
  if (!session) return Error::internal("NTLM: the security context is missing after authentication");
  sealer_.emplace(std::move(*session));
  pending_token_.clear();
  state_ = State::kDone;
  return {};
}

Result<HttpBody> NtlmHttpAuth::wrap(std::string_view soap) {
  if (!encrypt_) return HttpBody{std::string(soap), "application/soap+xml;charset=UTF-8"};
  if (!sealer_)
    return Error::internal("NTLM: message encryption to " + where_ + " requested before authentication finished");
  auto body = build_encrypted_body(soap, *sealer_);
  if (!body) return body.error();
  return HttpBody{std::move(body->body), std::move(body->content_type)};
}

Result<std::string> NtlmHttpAuth::unwrap(std::string_view body, std::string_view content_type) {
  if (!sealer_)
    return Error::internal("NTLM: an encrypted response from " + where_ + " arrived before authentication finished");
  auto plain = parse_encrypted_body(body, content_type, *sealer_);
  if (!plain) return plain.error().context("from " + where_ + ": ");
  return plain;
}

}  // namespace wincert::winrm
