#include "sim/winhost/gss_auth.hpp"

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>

#include <nlohmann/json.hpp>

#include <array>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/encoding.hpp"
#include "common/log.hpp"
#include "winrm/auth/channel_binding.hpp"
#include "winrm/auth/gssapi_context.hpp"
#include "winrm/auth/ntlm_messages.hpp"
#include "winrm/encryption.hpp"

namespace wincert::sim {

namespace {

constexpr std::string_view kCertificateHeader = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual";
constexpr std::string_view kNtlmMechSo = "/usr/lib/x86_64-linux-gnu/gssntlmssp/gssntlmssp.so";
constexpr std::size_t kMaxTokenChars = 128 * 1024;

gss_OID_desc g_ntlmssp_oid = {10, const_cast<char*>("\x2b\x06\x01\x04\x01\x82\x37\x02\x02\x0a")};

std::string gss_text(OM_uint32 major, OM_uint32 minor) {
  std::string text;
  for (auto [code, type] : {std::pair{major, GSS_C_GSS_CODE}, std::pair{minor, GSS_C_MECH_CODE}}) {
    if (code == 0) continue;
    OM_uint32 context = 0;
    for (int guard = 0; guard < 8; ++guard) {
      OM_uint32 m = 0;
      gss_buffer_desc buf{0, nullptr};
      if (GSS_ERROR(gss_display_status(&m, code, type, GSS_C_NO_OID, &context, &buf))) break;
      if (!text.empty()) text += "; ";
      text.append(static_cast<const char*>(buf.value), buf.length);
      gss_release_buffer(&m, &buf);
      if (context == 0) break;
    }
  }
  return text;
}

// One gss-ntlmssp acceptor context (RAII) that also seals WinRM messages: gss_wrap output is the
// 16-byte NTLM signature followed by the sealed data, exactly the multipart header/payload split.
class NtlmAcceptor final : public winrm::MessageSealer {
 public:
  NtlmAcceptor() = default;
  NtlmAcceptor(const NtlmAcceptor&) = delete;
  NtlmAcceptor& operator=(const NtlmAcceptor&) = delete;
  ~NtlmAcceptor() override {
    OM_uint32 minor = 0;
    if (ctx_ != GSS_C_NO_CONTEXT) gss_delete_sec_context(&minor, &ctx_, GSS_C_NO_BUFFER);
    if (cred_ != GSS_C_NO_CREDENTIAL) gss_release_cred(&minor, &cred_);
  }

  struct Leg {
    bool complete = false;
    std::string output;
  };

  Result<Leg> step(std::string_view token, const std::optional<std::string>& binding) {
    OM_uint32 minor = 0;
    if (cred_ == GSS_C_NO_CREDENTIAL) {
      gss_OID_set_desc mechs{1, &g_ntlmssp_oid};
      const OM_uint32 major =
          gss_acquire_cred(&minor, GSS_C_NO_NAME, GSS_C_INDEFINITE, &mechs, GSS_C_ACCEPT, &cred_, nullptr, nullptr);
      if (GSS_ERROR(major))
        return Error::failed_precondition("NTLM acceptor (gss-ntlmssp) unavailable: " + gss_text(major, minor) +
                                          " (is gss-ntlmssp installed and NTLM_USER_FILE set?)")
            .with_system_status(SystemStatusKind::kGss, major);
    }
    gss_buffer_desc input{token.size(), const_cast<char*>(token.data())};
    gss_buffer_desc output{0, nullptr};
    gss_channel_bindings_struct cb{};
    if (binding) cb.application_data = {binding->size(), const_cast<char*>(binding->data())};
    gss_name_t source = GSS_C_NO_NAME;
    OM_uint32 flags = 0;
    const OM_uint32 major =
        gss_accept_sec_context(&minor, &ctx_, cred_, &input, binding ? &cb : GSS_C_NO_CHANNEL_BINDINGS, &source,
                               nullptr, &output, &flags, nullptr, nullptr);
    Leg leg;
    if (output.length > 0) leg.output.assign(static_cast<const char*>(output.value), output.length);
    gss_release_buffer(&minor, &output);
    if (source != GSS_C_NO_NAME) {
      gss_buffer_desc name{0, nullptr};
      OM_uint32 m = 0;
      if (!GSS_ERROR(gss_display_name(&m, source, &name, nullptr))) {
        // gss-ntlmssp counts the terminating NUL in the length: keep printable characters only.
        peer_.clear();
        for (std::size_t i = 0; i < name.length; ++i) {
          const char c = static_cast<const char*>(name.value)[i];
          if (static_cast<unsigned char>(c) >= 0x20) peer_ += c;
        }
      }
      gss_release_buffer(&m, &name);
      gss_release_name(&m, &source);
    }
    if (GSS_ERROR(major))
      return Error::unauthenticated("NTLM: " + gss_text(major, minor))
          .with_system_status(SystemStatusKind::kGss, major);
    leg.complete = major == GSS_S_COMPLETE;
    if (leg.complete) complete_ = true;
    return leg;
  }

  bool complete() const { return complete_; }
  const std::string& peer() const { return peer_; }

  Result<winrm::SealedMessage> wrap(std::string_view plain) override {
    OM_uint32 minor = 0;
    gss_buffer_desc input{plain.size(), const_cast<char*>(plain.data())};
    gss_buffer_desc output{0, nullptr};
    int conf = 0;
    const OM_uint32 major = gss_wrap(&minor, ctx_, 1, GSS_C_QOP_DEFAULT, &input, &conf, &output);
    std::string out;
    if (output.length > 0) out.assign(static_cast<const char*>(output.value), output.length);
    gss_release_buffer(&minor, &output);
    if (GSS_ERROR(major))
      return Error::internal("NTLM seal: " + gss_text(major, minor)).with_system_status(SystemStatusKind::kGss, major);
    if (conf == 0 || out.size() < 16) return Error::internal("NTLM seal: gss-ntlmssp did not encrypt");
    winrm::SealedMessage sealed;
    sealed.header = out.substr(0, 16);
    sealed.payload = out.substr(16);
    sealed.original_length = plain.size();
    return sealed;
  }

  Result<std::string> unwrap(std::string_view header, std::string_view payload) override {
    std::string token;
    token.reserve(header.size() + payload.size());
    token.append(header).append(payload);
    OM_uint32 minor = 0;
    gss_buffer_desc input{token.size(), token.data()};
    gss_buffer_desc output{0, nullptr};
    int conf = 0;
    const OM_uint32 major = gss_unwrap(&minor, ctx_, &input, &output, &conf, nullptr);
    std::string out;
    if (output.length > 0) out.assign(static_cast<const char*>(output.value), output.length);
    gss_release_buffer(&minor, &output);
    if (GSS_ERROR(major))
      return Error::invalid_argument("NTLM unseal: " + gss_text(major, minor))
          .with_system_status(SystemStatusKind::kGss, major);
    if (conf == 0) return Error::invalid_argument("NTLM unseal: the message was not encrypted");
    return out;
  }

  std::string_view protocol_name() const override { return winrm::kSpnegoEncryptedProtocol; }

 private:
  gss_cred_id_t cred_ = GSS_C_NO_CREDENTIAL;
  gss_ctx_id_t ctx_ = GSS_C_NO_CONTEXT;
  std::string peer_;
  bool complete_ = false;
};

// "NTLMSSP\0" + LE32 message type, or 0 when the token is no NTLM message.
std::uint32_t ntlm_message_type(std::string_view token) {
  if (token.size() < 12 || token.substr(0, 8) != std::string_view("NTLMSSP\0", 8)) return 0;
  const auto b = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(token[i])); };
  return b(8) | (b(9) << 8) | (b(10) << 16) | (b(11) << 24);
}

// Whether an AUTHENTICATE carries a non-zero MsvAvChannelBindings (gss-ntlmssp 1.2 does not insist).
bool ntlm_has_channel_binding(std::string_view token) {
  const winrm::ntlm_crypto::ByteView view(reinterpret_cast<const std::uint8_t*>(token.data()), token.size());
  auto message = winrm::ntlm::parse_authenticate(view);
  if (!message) return false;
  auto response = winrm::ntlm::parse_ntlmv2_response(
      winrm::ntlm_crypto::ByteView(message->nt_challenge_response.data(), message->nt_challenge_response.size()));
  if (!response) return false;
  const auto* pair = response->target_info.find(winrm::ntlm::AvId::kChannelBindings);
  if (pair == nullptr || pair->value.size() != 16) return false;
  for (auto byte : pair->value)
    if (byte != 0) return true;
  return false;
}

struct Shared {
  WindowsAuthOptions options;
  std::shared_ptr<AuthStats> stats;            // never null
  std::optional<std::string> channel_binding;  // tls-server-end-point of our certificate
};

class WindowsConnectionAuth final : public ConnectionAuth {
 public:
  explicit WindowsConnectionAuth(std::shared_ptr<const Shared> shared) : shared_(std::move(shared)) {}

  AuthDecision authenticate(const HttpRequest& request, const ConnectionInfo& conn) override {
    tls_ = conn.tls;
    client_ = conn.client_ip;
    connection_end_point_ = conn.tls_server_end_point;
    auto it = request.find(http::field::authorization);
    if (it == request.end()) {
      if (!session_ready()) return refused();
      const int drop_after = shared_->options.drop_context_after;
      if (drop_after > 0 && !dropped_ && ++served_ >= drop_after) {
        dropped_ = true;
        return refused("fault injection: the security context was dropped");
      }
      return accepted();
    }
    if (dropped_ && shared_->options.refuse_after_drop) return refused("fault injection: re-authentication refused");
    const std::string_view value = trim(it->value());
    const auto& schemes = shared_->options.schemes;
    if (istarts_with(value, "Basic ")) {
      if (!schemes.basic) return refused("Basic is not enabled (--auth)");
      return basic(value.substr(6));
    }
    if (istarts_with(value, "Negotiate ") || istarts_with(value, "Kerberos ")) {
      const bool kerberos_header = istarts_with(value, "Kerberos ");
      const std::string_view encoded = trim(value.substr(kerberos_header ? 9 : 10));
      if (encoded.size() > kMaxTokenChars) return refused("oversized token");
      auto token = base64_decode(encoded);
      if (!token || token->empty()) return refused("the token is not base64");
      if (!kerberos_header && ntlm_message_type(*token) != 0) {
        if (!schemes.ntlm && !schemes.negotiate) return refused("NTLM is not enabled (--auth)");
        return ntlm_leg(*token, !request.body().empty());
      }
      if (kerberos_header ? !schemes.kerberos : !(schemes.negotiate || schemes.kerberos))
        return refused(std::string(kerberos_header ? "Kerberos" : "Negotiate") + " is not enabled (--auth)");
      return kerberos_leg(*token, kerberos_header, !request.body().empty());
    }
    if (value == kCertificateHeader) return certificate(conn);
    return refused("unsupported Authorization scheme");
  }

  Result<std::string> unwrap_request(const HttpRequest& request) override {
    request_encrypted_ = false;
    const std::string content_type(request[http::field::content_type]);
    if (winrm::is_encrypted_content_type(content_type)) {
      if (sealer_ == nullptr) return Error::invalid_argument("an encrypted body arrived without a security context");
      auto plain = winrm::parse_encrypted_body(request.body(), content_type, *sealer_);
      if (!plain) {
        ++shared_->stats->unseal_failures;
        logger("sim")->info("rejected an encrypted body from {}: {}", client_, plain.error().message);
        return plain.error();
      }
      ++shared_->stats->encrypted_requests;
      request_encrypted_ = true;
      return plain;
    }
    // Windows (AllowUnencrypted=false) refuses a clear SOAP body on HTTP once NTLM/Kerberos is in use.
    if (sealer_ != nullptr && !tls_ && !shared_->options.allow_unencrypted && !request.body().empty()) {
      ++shared_->stats->unencrypted_refused;
      logger("sim")->info("refused an unencrypted SOAP body on HTTP from {} (AllowUnencrypted=false)", client_);
      return Error::invalid_argument("unencrypted SOAP body on HTTP refused (AllowUnencrypted=false)");
    }
    return request.body();
  }

  void wrap_response(HttpResponse& response) override {
    if (!request_encrypted_ || sealer_ == nullptr || response.body().empty()) return;
    request_encrypted_ = false;
    auto sealed = winrm::build_encrypted_body(response.body(), *sealer_);
    if (!sealed) {
      logger("sim")->warn("cannot seal the response to {}: {}", client_, sealed.error().message);
      response.result(500);
      response.body().clear();
      response.erase(http::field::content_type);
    } else {
      response.body() = std::move(sealed->body);
      response.set(http::field::content_type, sealed->content_type);
    }
    response.prepare_payload();
  }

 private:
  bool session_ready() const { return !user_.empty() && (sealer_ != nullptr || certificate_); }

  AuthDecision accepted() const { return AuthDecision{true, user_, 200, {}}; }

  // The answer to an authentication-only request (empty body): 200 with no SOAP, like Windows.
  AuthDecision auth_only(std::vector<std::pair<std::string, std::string>> headers = {}) {
    AuthDecision d;
    d.authenticated = false;
    d.status = 200;
    d.headers = std::move(headers);
    return d;
  }

  AuthDecision refused(std::string_view why = {}) {
    ++shared_->stats->refusals;
    if (!why.empty()) logger("sim")->info("authentication refused for {}: {}", client_, why);
    forget();
    AuthDecision d;
    const auto& s = shared_->options.schemes;
    if (s.ntlm || s.negotiate) d.headers.emplace_back("WWW-Authenticate", "Negotiate");
    if (s.kerberos) d.headers.emplace_back("WWW-Authenticate", "Kerberos");
    if (s.basic) d.headers.emplace_back("WWW-Authenticate", "Basic realm=\"WSMAN\"");
    return d;
  }

  void forget() {
    sealer_ = nullptr;
    ntlm_.reset();
    kerberos_.reset();
    user_.clear();
    certificate_ = false;
  }

  // The channel binding application data: an explicit listener certificate (options), else the one
  // the server computed for this TLS connection.
  std::optional<std::string> binding() const {
    if (!tls_ || shared_->options.cbt == CbtMode::kNone) return std::nullopt;
    if (shared_->channel_binding) return shared_->channel_binding;
    if (!connection_end_point_.empty()) return std::string(winrm::kTlsServerEndPointPrefix) + connection_end_point_;
    return std::nullopt;
  }

  AuthDecision basic(std::string_view encoded) {
    forget();
    if (!tls_ && !shared_->options.allow_unencrypted) return refused("Basic over plain HTTP (AllowUnencrypted=false)");
    auto decoded = base64_decode(trim(encoded));
    if (!decoded) return refused("malformed Basic credentials");
    const auto colon = decoded->find(':');
    if (colon == std::string::npos) {
      OPENSSL_cleanse(decoded->data(), decoded->size());
      return refused("malformed Basic credentials");
    }
    const std::string login = decoded->substr(0, colon);
    const Secret password(decoded->substr(colon + 1));
    OPENSSL_cleanse(decoded->data(), decoded->size());
    if (shared_->options.users) {
      if (auto owner = shared_->options.users->verify(login, password.reveal()))
        return AuthDecision{true, *owner, 200, {}};
    }
    return refused("Basic authentication failed for user '" + login + "'");
  }

  AuthDecision certificate(const ConnectionInfo& conn) {
    if (!shared_->options.schemes.certificate) return refused("certificate authentication is not enabled (--auth)");
    if (!conn.tls) return refused("certificate authentication over plain HTTP");
    if (certificate_ && !user_.empty()) return accepted();  // the TLS session's certificate is already mapped
    forget();
    if (conn.client_certificate_der.empty()) return refused("the client presented no TLS certificate");
    auto user = map_client_certificate(conn.client_certificate_der, shared_->options.certificate_map);
    if (!user) return refused("the client certificate is not in the certificate map (--cert-map)");
    certificate_ = true;
    user_ = *user;
    ++shared_->stats->certificate_logons;
    logger("sim")->debug("client certificate of {} mapped to {}", client_, user_);
    return accepted();
  }

  AuthDecision ntlm_leg(const std::string& token, bool has_body) {
    const std::uint32_t type = ntlm_message_type(token);
    if (type == 1) {
      forget();
      ntlm_ = std::make_unique<NtlmAcceptor>();
    } else if (type != 3 || !ntlm_ || ntlm_->complete()) {
      return refused("unexpected NTLM message type " + std::to_string(type));
    }
    if (type == 3 && tls_ && shared_->options.cbt == CbtMode::kStrict && !ntlm_has_channel_binding(token))
      return refused("NTLM client sent no channel binding (CbtHardeningLevel=Strict)");
    auto leg = ntlm_->step(token, binding());
    if (!leg) return refused(leg.error().message);
    if (!leg->complete) {
      AuthDecision d;
      d.headers.emplace_back("WWW-Authenticate", "Negotiate " + base64_encode(leg->output));
      ++shared_->stats->challenges;
      return d;
    }
    user_ = ntlm_->peer().empty() ? "ntlm-user" : ntlm_->peer();
    sealer_ = ntlm_.get();
    ++shared_->stats->handshakes;
    logger("sim")->debug("NTLM authenticated {} from {}", user_, client_);
    if (!has_body) return auth_only();
    return accepted();
  }

  AuthDecision kerberos_leg(const std::string& token, bool kerberos_header, bool has_body) {
    if (!kerberos_ || kerberos_->complete()) {
      forget();
      winrm::gss::AcceptorOptions options;
      options.keytab = shared_->options.keytab;
      options.scheme = kerberos_header ? winrm::gss::HttpScheme::kKerberos : winrm::gss::HttpScheme::kNegotiate;
      options.channel_binding = binding();
      options.require_channel_binding = options.channel_binding && shared_->options.cbt == CbtMode::kStrict;
      auto acceptor = winrm::gss::GssAcceptor::create(std::move(options));
      if (!acceptor) return refused(acceptor.error().message);
      kerberos_ = std::move(*acceptor);
    }
    auto reply = kerberos_->step(token);
    if (!reply) return refused(reply.error().message);
    const std::string scheme = kerberos_header ? "Kerberos" : "Negotiate";
    if (!kerberos_->complete()) {
      AuthDecision d;
      d.headers.emplace_back("WWW-Authenticate", scheme + " " + base64_encode(*reply));
      ++shared_->stats->challenges;
      return d;
    }
    user_ = kerberos_->client_principal();
    sealer_ = kerberos_.get();
    ++shared_->stats->handshakes;
    logger("sim")->debug("Kerberos ({}) authenticated {} from {}", scheme, user_, client_);
    const std::string header = reply->empty() ? std::string() : scheme + " " + base64_encode(*reply);
    if (!has_body) {
      if (header.empty()) return auth_only();
      return auth_only({{"WWW-Authenticate", header}});
    }
    AuthDecision decision = accepted();
    if (!header.empty()) decision.headers.emplace_back("WWW-Authenticate", header);  // on the WS-Man response
    return decision;
  }

  std::shared_ptr<const Shared> shared_;
  bool tls_ = false;
  std::string client_;
  std::string connection_end_point_;
  std::unique_ptr<NtlmAcceptor> ntlm_;
  std::unique_ptr<winrm::gss::GssAcceptor> kerberos_;
  winrm::MessageSealer* sealer_ = nullptr;
  std::string user_;
  bool certificate_ = false;
  bool request_encrypted_ = false;
  int served_ = 0;
  bool dropped_ = false;
};

class WindowsAuthenticator final : public Authenticator {
 public:
  explicit WindowsAuthenticator(std::shared_ptr<const Shared> shared) : shared_(std::move(shared)) {}
  std::unique_ptr<ConnectionAuth> new_connection() override { return std::make_unique<WindowsConnectionAuth>(shared_); }

 private:
  std::shared_ptr<const Shared> shared_;
};

}  // namespace

nlohmann::json AuthStats::to_json() const {
  return {{"handshakes", handshakes.load()},
          {"challenges", challenges.load()},
          {"refusals", refusals.load()},
          {"encrypted_requests", encrypted_requests.load()},
          {"unencrypted_refused", unencrypted_refused.load()},
          {"unseal_failures", unseal_failures.load()},
          {"certificate_logons", certificate_logons.load()}};
}

Result<CbtMode> parse_cbt_mode(std::string_view text) {
  if (iequals(text, "none")) return CbtMode::kNone;
  if (iequals(text, "relaxed")) return CbtMode::kRelaxed;
  if (iequals(text, "strict")) return CbtMode::kStrict;
  return Error::invalid_argument("--cbt '" + std::string(text) + "': expected none, relaxed or strict");
}

Result<AuthSchemes> parse_auth_schemes(std::string_view list) {
  AuthSchemes schemes;
  std::string_view rest = list;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string_view item = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (item.empty()) continue;
    if (iequals(item, "basic"))
      schemes.basic = true;
    else if (iequals(item, "ntlm"))
      schemes.ntlm = true;
    else if (iequals(item, "kerberos"))
      schemes.kerberos = true;
    else if (iequals(item, "negotiate"))
      schemes.negotiate = true;
    else if (iequals(item, "certificate"))
      schemes.certificate = true;
    else
      return Error::invalid_argument("--auth: unknown scheme '" + std::string(item) +
                                     "' (expected basic, ntlm, kerberos, negotiate, certificate)");
  }
  return schemes;
}

Result<std::string> load_certificate_der(const std::string& pem_path) {
  BIO* bio = BIO_new_file(pem_path.c_str(), "r");
  if (bio == nullptr) return Error::not_found("cannot read the certificate file " + pem_path);
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) return Error::invalid_argument(pem_path + " holds no PEM certificate");
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert, &der);
  X509_free(cert);
  if (len <= 0) return Error::invalid_argument("cannot encode the certificate of " + pem_path);
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

Result<std::map<std::string, std::string>> load_certificate_map(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error::not_found("cannot read the certificate map " + path);
  std::stringstream text;
  text << in.rdbuf();
  const auto json = nlohmann::json::parse(text.str(), nullptr, false);
  if (json.is_discarded() || !json.is_object())
    return Error::invalid_argument("certificate map " + path +
                                   " must be a JSON object {\"thumbprint or subject\": \"user\"}");
  std::map<std::string, std::string> map;
  for (const auto& [key, value] : json.items()) {
    if (!value.is_string())
      return Error::invalid_argument("certificate map " + path + ": the user for '" + key + "' is not a string");
    map[key] = value.get<std::string>();
  }
  return map;
}

std::optional<std::string> map_client_certificate(const std::string& certificate_der,
                                                  const std::map<std::string, std::string>& map) {
  const auto* p = reinterpret_cast<const unsigned char*>(certificate_der.data());
  X509* cert = d2i_X509(nullptr, &p, static_cast<long>(certificate_der.size()));
  if (cert == nullptr) return std::nullopt;
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_len = 0;
  std::optional<std::string> user;
  if (X509_digest(cert, EVP_sha1(), digest.data(), &digest_len) == 1) {
    const std::string thumbprint =
        hex_upper(std::string_view(reinterpret_cast<const char*>(digest.data()), digest_len));
    for (const auto& [key, value] : map) {
      if (iequals(key, thumbprint)) user = value;
    }
  }
  if (!user) {
    BIO* bio = BIO_new(BIO_s_mem());
    if (bio != nullptr) {
      X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
      char* data = nullptr;
      const long len = BIO_get_mem_data(bio, &data);
      const std::string subject(data != nullptr ? data : "", len > 0 ? static_cast<std::size_t>(len) : 0);
      BIO_free(bio);
      if (auto it = map.find(subject); it != map.end()) user = it->second;
    }
  }
  X509_free(cert);
  return user;
}

Status configure_gss_ntlmssp(const std::string& users_file, const std::string& netbios_computer,
                             const std::string& netbios_domain, const std::string& scratch_dir) {
  namespace fs = std::filesystem;
  if (!fs::exists(std::string(kNtlmMechSo)))
    return Error::failed_precondition("NTLM needs gss-ntlmssp (" + std::string(kNtlmMechSo) +
                                      " is missing): apt-get install gss-ntlmssp");
  if (users_file.empty()) return Error::invalid_argument("NTLM needs --users (DOMAIN:user:password lines)");
  ::setenv("NTLM_USER_FILE", fs::absolute(users_file).c_str(), 1);
  ::setenv("NETBIOS_COMPUTER_NAME", netbios_computer.c_str(), 1);
  ::setenv("NETBIOS_DOMAIN_NAME", netbios_domain.c_str(), 1);
  if (!fs::exists("/etc/gss/mech.d/mech.ntlmssp.conf") && std::getenv("GSS_MECH_CONFIG") == nullptr) {
    const std::string mech = scratch_dir + "/gss-mech-ntlmssp.conf";
    std::ofstream(mech) << "gssntlmssp_v1 1.3.6.1.4.1.311.2.2.10 " << kNtlmMechSo << "\n";
    ::setenv("GSS_MECH_CONFIG", mech.c_str(), 1);
  }
  return {};
}

Result<std::unique_ptr<Authenticator>> make_windows_authenticator(WindowsAuthOptions options) {
  auto shared = std::make_shared<Shared>();
  if (!options.server_certificate_der.empty()) {
    auto app_data = winrm::tls_server_end_point_application_data_der(options.server_certificate_der);
    if (!app_data) return app_data.error().context("channel binding of the listener certificate: ");
    shared->channel_binding = std::move(*app_data);
  }
  if (options.schemes.kerberos || options.schemes.negotiate) {
    // Load the keys once now so a bad keytab is a start-up error, not a 401 per request.
    winrm::gss::AcceptorOptions probe;
    probe.keytab = options.keytab;
    auto acceptor = winrm::gss::GssAcceptor::create(probe);
    if (!acceptor) {
      if (options.schemes.kerberos) return acceptor.error();
      logger("sim")->warn("Negotiate offered without Kerberos keys ({}); only NTLM will work",
                          acceptor.error().message);
    }
  }
  shared->stats = options.stats ? options.stats : std::make_shared<AuthStats>();
  shared->options = std::move(options);
  return std::unique_ptr<Authenticator>(std::make_unique<WindowsAuthenticator>(std::move(shared)));
}

}  // namespace wincert::sim
