// GssContext on Windows: Kerberos and Negotiate through SSPI (secur32) instead of MIT GSSAPI. The same
// interface and the same WinRM sealing layout (shared/reference/winrm.md §3.9): EncryptMessage with a
// TOKEN buffer (the security header, for AES the 16-byte token header plus the rotated trailer), the
// DATA encrypted in place and, for ciphers with a block size, a PADDING buffer; payload = data || padding.
//
// Wine's Kerberos SSP (which calls the host's MIT libraries) differs in one place: for contexts that are
// not DCE-style, EncryptMessage returns a plain gss_wrap token split as DATA = its first len(plain) bytes,
// TOKEN = the rest, and DecryptMessage expects that split back. wine_layout.hpp converts that to the
// rotated layout every other WinRM peer uses; both adaptations apply only when running under Wine.
#include "winrm/auth/gssapi_context.hpp"

#ifndef SECURITY_WIN32
#define SECURITY_WIN32
#endif
#include <windows.h>
// (after windows.h, which they build on)
#include <security.h>
#include <sspi.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>
#include <vector>

#include "common/encoding.hpp"
#include "common/win32_text.hpp"
#include "winrm/auth/wine_layout.hpp"

namespace wincert::winrm::gss {
namespace {

// The security header Wine's Kerberos writes can exceed the SECPKG_ATTR_SIZES trailer it reports (49
// against 60 for AES, and it does not check the buffer); real Windows writes at most its reported size
// and sets cbBuffer to what it used. So the TOKEN buffer is never smaller than this.
constexpr ULONG kMinSecurityTrailer = 256;

// Wine's ntdll exports wine_get_version; Windows' does not.
bool running_under_wine() {
  static const bool wine = [] {
    const HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    return ntdll != nullptr && GetProcAddress(ntdll, "wine_get_version") != nullptr;
  }();
  return wine;
}

// ---- RAII over SSPI handles -----------------------------------------------------------------------

class CredentialHandle {
 public:
  CredentialHandle() = default;
  CredentialHandle(const CredentialHandle&) = delete;
  CredentialHandle& operator=(const CredentialHandle&) = delete;
  ~CredentialHandle() {
    if (valid_) FreeCredentialsHandle(&handle_);
  }
  CredHandle* out() {
    if (valid_) FreeCredentialsHandle(&handle_);
    valid_ = false;
    return &handle_;
  }
  void set_valid() { valid_ = true; }
  CredHandle* get() { return &handle_; }

 private:
  CredHandle handle_{};
  bool valid_ = false;
};

class ContextHandle {
 public:
  ContextHandle() = default;
  ContextHandle(const ContextHandle&) = delete;
  ContextHandle& operator=(const ContextHandle&) = delete;
  ~ContextHandle() {
    if (valid_) DeleteSecurityContext(&handle_);
  }
  bool valid() const { return valid_; }
  void set_valid() { valid_ = true; }
  CtxtHandle* get() { return &handle_; }

 private:
  CtxtHandle handle_{};
  bool valid_ = false;
};

// A buffer SSPI allocated (package info, names).
template <typename T>
class SspiBuffer {
 public:
  SspiBuffer() = default;
  SspiBuffer(const SspiBuffer&) = delete;
  SspiBuffer& operator=(const SspiBuffer&) = delete;
  ~SspiBuffer() {
    if (ptr_ != nullptr) FreeContextBuffer(ptr_);
  }
  T** out() { return &ptr_; }
  T* get() const { return ptr_; }

 private:
  T* ptr_ = nullptr;
};

// A UTF-16 copy of a secret, wiped when it goes out of scope.
class WipedWide {
 public:
  explicit WipedWide(std::wstring value) : value_(std::move(value)) {}
  WipedWide(const WipedWide&) = delete;
  WipedWide& operator=(const WipedWide&) = delete;
  ~WipedWide() { SecureZeroMemory(value_.data(), value_.size() * sizeof(wchar_t)); }
  std::wstring& get() { return value_; }

 private:
  std::wstring value_;
};

// ---- Errors -------------------------------------------------------------------------------------------

// STATUS_UNSUCCESSFUL: what Wine's Kerberos returns for every failure of its KDC exchange (wrong password,
// unknown user, no KDC for the realm).
constexpr SECURITY_STATUS kWineKerberosFailure = static_cast<SECURITY_STATUS>(0xC0000001UL);

struct StatusName {
  SECURITY_STATUS status;
  const char* name;
};

#define WINCERT_STATUS(x) \
  StatusName { static_cast<SECURITY_STATUS>(x), #x }
constexpr std::array kStatusNames{
    WINCERT_STATUS(SEC_E_INSUFFICIENT_MEMORY),
    WINCERT_STATUS(SEC_E_INVALID_HANDLE),
    WINCERT_STATUS(SEC_E_UNSUPPORTED_FUNCTION),
    WINCERT_STATUS(SEC_E_TARGET_UNKNOWN),
    WINCERT_STATUS(SEC_E_INTERNAL_ERROR),
    WINCERT_STATUS(SEC_E_SECPKG_NOT_FOUND),
    WINCERT_STATUS(SEC_E_INVALID_TOKEN),
    WINCERT_STATUS(SEC_E_QOP_NOT_SUPPORTED),
    WINCERT_STATUS(SEC_E_LOGON_DENIED),
    WINCERT_STATUS(SEC_E_UNKNOWN_CREDENTIALS),
    WINCERT_STATUS(SEC_E_NO_CREDENTIALS),
    WINCERT_STATUS(SEC_E_MESSAGE_ALTERED),
    WINCERT_STATUS(SEC_E_OUT_OF_SEQUENCE),
    WINCERT_STATUS(SEC_E_NO_AUTHENTICATING_AUTHORITY),
    WINCERT_STATUS(SEC_E_CONTEXT_EXPIRED),
    WINCERT_STATUS(SEC_E_INCOMPLETE_MESSAGE),
    WINCERT_STATUS(SEC_E_BUFFER_TOO_SMALL),
    WINCERT_STATUS(SEC_E_WRONG_PRINCIPAL),
    WINCERT_STATUS(SEC_E_TIME_SKEW),
    WINCERT_STATUS(SEC_E_DECRYPT_FAILURE),
    WINCERT_STATUS(SEC_E_ALGORITHM_MISMATCH),
    WINCERT_STATUS(SEC_E_NO_TGT_REPLY),
    WINCERT_STATUS(SEC_E_KDC_UNKNOWN_ETYPE),
    WINCERT_STATUS(SEC_E_UNSUPPORTED_PREAUTH),
    WINCERT_STATUS(SEC_E_DELEGATION_REQUIRED),
    WINCERT_STATUS(SEC_E_BAD_BINDINGS),
    WINCERT_STATUS(SEC_E_MULTIPLE_ACCOUNTS),
    WINCERT_STATUS(SEC_E_NO_KERB_KEY),
    WINCERT_STATUS(SEC_E_CROSSREALM_DELEGATION_FAILURE),
    WINCERT_STATUS(SEC_E_DOWNGRADE_DETECTED),
    WINCERT_STATUS(SEC_E_KDC_INVALID_REQUEST),
    WINCERT_STATUS(SEC_E_KDC_UNABLE_TO_REFER),
    WINCERT_STATUS(SEC_E_MAX_REFERRALS_EXCEEDED),
    WINCERT_STATUS(SEC_E_STRONG_CRYPTO_NOT_SUPPORTED),
    WINCERT_STATUS(SEC_E_NO_IMPERSONATION),
    WINCERT_STATUS(SEC_E_WRONG_CREDENTIAL_HANDLE),
    StatusName{kWineKerberosFailure, "STATUS_UNSUCCESSFUL"},
};
#undef WINCERT_STATUS

// "0x8009030C SEC_E_LOGON_DENIED: The logon attempt failed" (name and system text when known).
std::string status_text(SECURITY_STATUS status) {
  std::string text = error_text(static_cast<DWORD>(status));
  for (const auto& entry : kStatusNames) {
    if (entry.status == status && text.find(entry.name) == std::string::npos) {
      char hex[16];
      std::snprintf(hex, sizeof(hex), "0x%08lX", static_cast<unsigned long>(status));
      const std::string rest = text.find(hex) == 0 ? text.substr(std::strlen(hex)) : " " + text;
      text = std::string(hex) + " " + entry.name + (rest == " " ? "" : rest);
    }
  }
  return text;
}

enum class Phase { kAcquire, kInitiate, kMessage };

struct ErrorScope {
  Phase phase = Phase::kInitiate;
  std::string operation;  // "Kerberos authentication", "acquiring Kerberos credentials", ...
  std::string user;       // empty: the current Windows identity
  std::string spn;
};

std::string who(const ErrorScope& scope) { return scope.user.empty() ? "the current Windows identity" : scope.user; }

// One actionable line per SECURITY_STATUS, with the status as detail. "No Kerberos here" (no credentials,
// no reachable KDC, no Kerberos package) is unavailable or failed_precondition: what NegotiateHttpAuth
// treats as a reason to fall back to NTLM (kerberos_unavailable()); refused credentials are unauthenticated.
Error map_error(const ErrorScope& scope, std::string_view call, SECURITY_STATUS status) {
  const std::string sspi = " [SSPI " + std::string(call) + ": " + status_text(status) + "]";
  const std::string& op = scope.operation;
  auto fail = [status](ErrorCode error_code, std::string message) {
    return Error::make(error_code, std::move(message))
        .with_system_status(SystemStatusKind::kSspi, static_cast<std::uint32_t>(status));
  };
  const std::string spn = scope.spn.empty() ? "the service" : scope.spn;
  switch (status) {
    case SEC_E_LOGON_DENIED:
      return fail(ErrorCode::kUnauthenticated, op + ": the domain controller refused the logon of " + who(scope) +
                                                   " (wrong user name or password?)" + sspi);
    case SEC_E_UNKNOWN_CREDENTIALS:
      return fail(ErrorCode::kUnauthenticated, op + ": the credentials of " + who(scope) +
                                                   " are not valid for Kerberos (check the user name and its domain)" +
                                                   sspi);
    case SEC_E_NO_CREDENTIALS:
      return fail(ErrorCode::kFailedPrecondition,
                  op + ": no Kerberos ticket or client keytab for " + who(scope) +
                      " (the account has no domain logon: run the agent as a domain account or give "
                      "a user and password)" +
                      sspi);
    case SEC_E_NO_AUTHENTICATING_AUTHORITY:
    case SEC_E_NO_TGT_REPLY:
    case SEC_E_KDC_UNABLE_TO_REFER:
      return fail(ErrorCode::kUnavailable,
                  op + " for " + who(scope) +
                      ": cannot reach a KDC (domain controller) for the "
                      "realm (check DNS, the domain name and that TCP/UDP port 88 is reachable)" +
                      sspi);
    case SEC_E_TARGET_UNKNOWN:
      return fail(ErrorCode::kUnauthenticated,
                  op + " for " + who(scope) + ": no service principal " + spn +
                      " is registered in the domain (use the host's FQDN rather than an IP or alias; "
                      "check setspn, the service name and --spn-with-port)" +
                      sspi);
    case SEC_E_WRONG_PRINCIPAL:
      return fail(ErrorCode::kUnauthenticated,
                  op + " with " + spn +
                      ": the server answered for a different principal (the SPN is "
                      "registered to another account, or a duplicate SPN; check setspn -X)" +
                      sspi);
    case SEC_E_TIME_SKEW:
      return fail(ErrorCode::kUnauthenticated,
                  op + " for " + who(scope) +
                      ": the clocks of this machine, the domain controller "
                      "and the host differ too much (synchronise time; Kerberos allows 5 minutes)" +
                      sspi);
    case SEC_E_BAD_BINDINGS:
      return fail(ErrorCode::kUnauthenticated, op + " with " + spn +
                                                   ": channel bindings do not match (a TLS-intercepting proxy, "
                                                   "or the wrong server certificate)" +
                                                   sspi);
    case SEC_E_CONTEXT_EXPIRED:
      return fail(ErrorCode::kAborted, op + " for " + who(scope) +
                                           ": the Kerberos ticket or context has expired (it is "
                                           "renewed on retry)" +
                                           sspi);
    case SEC_E_MESSAGE_ALTERED:
    case SEC_E_DECRYPT_FAILURE:
      return fail(ErrorCode::kUnauthenticated,
                  op + (scope.spn.empty() ? "" : " with " + spn) +
                      ": a message failed its integrity check (tampered, or the server's key differs "
                      "from the KDC's)" +
                      sspi);
    case SEC_E_OUT_OF_SEQUENCE:
      return fail(ErrorCode::kInvalidArgument, op + ": the message was replayed or arrived out of order" + sspi);
    case SEC_E_INVALID_TOKEN:
    case SEC_E_INCOMPLETE_MESSAGE:
      return fail(ErrorCode::kInvalidArgument, op + (scope.spn.empty() ? "" : " with " + spn) +
                                                   ": the peer sent a malformed or tampered token" + sspi);
    case kWineKerberosFailure:
      if (scope.phase == Phase::kAcquire) {
        // Wine obtains the TGT in AcquireCredentialsHandle and reports every KDC failure alike. Treated like
        // an unreachable KDC, so Negotiate may still use NTLM (whose own check then catches a bad password).
        return fail(ErrorCode::kFailedPrecondition,
                    op + " for " + who(scope) +
                        ": cannot reach a KDC for the realm, or the KDC "
                        "refused the user or password (Wine's Kerberos does not say which: check the "
                        "realm's kdc entries in krb5.conf/KRB5_CONFIG, the user name and the password)" +
                        sspi);
      }
      break;
    case SEC_E_SECPKG_NOT_FOUND:
      return fail(ErrorCode::kFailedPrecondition,
                  op + ": the security package is not installed on this machine" + sspi);
    default:
      break;
  }
  return fail(scope.phase == Phase::kMessage ? ErrorCode::kInvalidArgument : ErrorCode::kUnauthenticated,
              op + " for " + who(scope) + (scope.spn.empty() ? "" : " to " + spn) + " failed" + sspi);
}

// "CORP\alice" -> (alice, CORP); "alice@corp.example" -> (alice, CORP.EXAMPLE); "alice" -> (alice, "").
std::pair<std::string, std::string> split_user(std::string_view user) {
  user = trim(user);
  if (const auto backslash = user.find('\\'); backslash != std::string_view::npos) {
    return {std::string(user.substr(backslash + 1)), std::string(user.substr(0, backslash))};
  }
  if (const auto at = user.rfind('@'); at != std::string_view::npos) {
    return {std::string(user.substr(0, at)), to_upper(user.substr(at + 1))};
  }
  return {std::string(user), {}};
}

// SEC_CHANNEL_BINDINGS with only the application data (tls-server-end-point), followed by that data.
std::string channel_bindings_buffer(const std::string& application_data) {
  SEC_CHANNEL_BINDINGS header{};
  header.cbApplicationDataLength = static_cast<ULONG>(application_data.size());
  header.dwApplicationDataOffset = sizeof(SEC_CHANNEL_BINDINGS);
  std::string buffer(sizeof(header), '\0');
  std::memcpy(buffer.data(), &header, sizeof(header));
  return buffer + application_data;
}

SecBuffer sec_buffer(ULONG type, std::string& bytes) {
  return SecBuffer{static_cast<ULONG>(bytes.size()), type, bytes.data()};
}

}  // namespace

struct GssContext::Impl {
  ClientOptions options;
  std::string spn;
  std::string user_display;  // what errors and client_principal() show; empty = the current identity
  std::wstring package;      // L"Kerberos" or L"Negotiate"
  std::wstring target_name;  // UTF-16 SPN for InitializeSecurityContextW
  CredentialHandle credential;
  ContextHandle context;
  ULONG max_token = 0;
  std::string bindings;  // SEC_CHANNEL_BINDINGS buffer; empty on plain HTTP
  bool established = false;
  bool failed = false;  // an SSPI context cannot continue after an error
  ULONG attributes = 0;
  SecPkgContext_Sizes sizes{};
  std::string client_name;

  ErrorScope scope(Phase phase, std::string operation) const {
    return {phase, std::move(operation), user_display, spn};
  }

  Status acquire_credentials() {
    const ErrorScope acquire = scope(Phase::kAcquire, "acquiring Kerberos credentials");
    SspiBuffer<SecPkgInfoW> info;
    if (const SECURITY_STATUS status = QuerySecurityPackageInfoW(package.data(), info.out()); status != SEC_E_OK) {
      return map_error(acquire, "QuerySecurityPackageInfoW(" + narrow(package) + ")", status);
    }
    max_token = info.get()->cbMaxToken;

    const auto [user, domain] = split_user(options.user);
    std::wstring user_w = widen(user);
    std::wstring domain_w = widen(domain);
    WipedWide password_w(widen(options.password.reveal()));
    SEC_WINNT_AUTH_IDENTITY_W identity{};
    identity.User = reinterpret_cast<unsigned short*>(user_w.data());
    identity.UserLength = static_cast<unsigned long>(user_w.size());
    identity.Domain = reinterpret_cast<unsigned short*>(domain_w.data());
    identity.DomainLength = static_cast<unsigned long>(domain_w.size());
    identity.Password = reinterpret_cast<unsigned short*>(password_w.get().data());
    identity.PasswordLength = static_cast<unsigned long>(password_w.get().size());
    identity.Flags = SEC_WINNT_AUTH_IDENTITY_UNICODE;
    // No user: the logged-on identity (its Kerberos tickets), as GSSAPI's default credential.
    void* auth_data = user.empty() ? nullptr : &identity;
    TimeStamp expiry{};
    const SECURITY_STATUS status = AcquireCredentialsHandleW(nullptr, package.data(), SECPKG_CRED_OUTBOUND, nullptr,
                                                             auth_data, nullptr, nullptr, credential.out(), &expiry);
    if (status != SEC_E_OK) return map_error(acquire, "AcquireCredentialsHandleW(" + narrow(package) + ")", status);
    credential.set_valid();
    return {};
  }

  // The client name SSPI reports once the context exists (not every SSP supports it).
  void resolve_client_name() {
    SecPkgContext_NamesW names{};
    if (QueryContextAttributesW(context.get(), SECPKG_ATTR_NAMES, &names) == SEC_E_OK && names.sUserName != nullptr) {
      client_name = narrow(names.sUserName);
      FreeContextBuffer(names.sUserName);
    }
  }

  Status check_established() {
    if ((attributes & ISC_RET_MUTUAL_AUTH) == 0) {
      return Error::unauthenticated("Kerberos authentication to " + spn +
                                    ": the server did not prove its identity (no mutual authentication)");
    }
    if ((attributes & ISC_RET_CONFIDENTIALITY) == 0 || (attributes & ISC_RET_INTEGRITY) == 0) {
      return Error::failed_precondition("Kerberos authentication to " + spn +
                                        ": the context offers no message confidentiality/integrity");
    }
    if (const SECURITY_STATUS status = QueryContextAttributesW(context.get(), SECPKG_ATTR_SIZES, &sizes);
        status != SEC_E_OK) {
      return map_error(scope(Phase::kInitiate, "Kerberos authentication"), "QueryContextAttributesW(SIZES)", status);
    }
    resolve_client_name();
    return {};
  }
};

GssContext::GssContext(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GssContext::~GssContext() = default;

Result<std::unique_ptr<GssContext>> GssContext::create(ClientOptions options) {
  if (auto checked = check_client_options(options); !checked.ok()) return checked.error();
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->spn = service_principal(impl->options.target);
  impl->target_name = widen(impl->spn);
  impl->package = impl->options.mechanism == Mechanism::kSpnego ? L"Negotiate" : L"Kerberos";
  if (!trim(impl->options.user).empty()) impl->user_display = map_user_principal(impl->options.user, "");
  if (impl->options.channel_binding) impl->bindings = channel_bindings_buffer(*impl->options.channel_binding);
  WINCERT_TRY(impl->acquire_credentials());
  return std::unique_ptr<GssContext>(new GssContext(std::move(impl)));
}

Result<std::string> GssContext::step(std::string_view input_token) {
  Impl& s = *impl_;
  if (s.established)
    return Error::invalid_argument("Kerberos: the server sent another token after authentication completed");
  if (s.failed) return Error::failed_precondition("Kerberos: this context already failed; authenticate on a new one");

  std::string input(input_token);
  std::array<SecBuffer, 2> in_buffers{};
  ULONG in_count = 0;
  if (!input.empty()) in_buffers[in_count++] = sec_buffer(SECBUFFER_TOKEN, input);
  if (!s.bindings.empty()) in_buffers[in_count++] = sec_buffer(SECBUFFER_CHANNEL_BINDINGS, s.bindings);
  SecBufferDesc in_desc{SECBUFFER_VERSION, in_count, in_buffers.data()};

  std::string output(std::max<ULONG>(s.max_token, 4096), '\0');
  SecBuffer out_buffer = sec_buffer(SECBUFFER_TOKEN, output);
  SecBufferDesc out_desc{SECBUFFER_VERSION, 1, &out_buffer};

  ULONG requested = ISC_REQ_MUTUAL_AUTH | ISC_REQ_CONFIDENTIALITY | ISC_REQ_INTEGRITY | ISC_REQ_SEQUENCE_DETECT |
                    ISC_REQ_REPLAY_DETECT;
  if (s.options.delegate) requested |= ISC_REQ_DELEGATE;
  TimeStamp expiry{};
  const bool first = !s.context.valid();
  SECURITY_STATUS status = InitializeSecurityContextW(
      s.credential.get(), first ? nullptr : s.context.get(), s.target_name.data(), requested, 0, SECURITY_NATIVE_DREP,
      in_count > 0 ? &in_desc : nullptr, 0, s.context.get(), &out_desc, &s.attributes, &expiry);
  if (first && (status == SEC_E_OK || status == SEC_I_CONTINUE_NEEDED || status == SEC_I_COMPLETE_NEEDED ||
                status == SEC_I_COMPLETE_AND_CONTINUE)) {
    s.context.set_valid();
  }
  if (status == SEC_I_COMPLETE_NEEDED || status == SEC_I_COMPLETE_AND_CONTINUE) {
    const SECURITY_STATUS completed = CompleteAuthToken(s.context.get(), &out_desc);
    if (completed != SEC_E_OK) {
      s.failed = true;
      return map_error(s.scope(Phase::kInitiate, "Kerberos authentication"), "CompleteAuthToken", completed);
    }
    status = status == SEC_I_COMPLETE_NEEDED ? SEC_E_OK : SEC_I_CONTINUE_NEEDED;
  }
  if (status != SEC_E_OK && status != SEC_I_CONTINUE_NEEDED) {
    s.failed = true;
    return map_error(s.scope(Phase::kInitiate, "Kerberos authentication"), "InitializeSecurityContextW", status);
  }
  output.resize(out_buffer.cbBuffer);
  if (status == SEC_E_OK) {
    // Before anything is sealed: the server must have proved it holds the SPN's key (AP-REP).
    s.failed = true;  // until every check passed
    WINCERT_TRY(s.check_established());
    s.failed = false;
    s.established = true;
  }
  return output;
}

bool GssContext::complete() const { return impl_->established; }
bool GssContext::delegated() const { return impl_->established && (impl_->attributes & ISC_RET_DELEGATE) != 0; }

std::string GssContext::client_principal() const {
  if (!impl_->client_name.empty()) return impl_->client_name;
  return impl_->user_display;
}

const std::string& GssContext::target_spn() const { return impl_->spn; }

Result<SealedMessage> GssContext::wrap(std::string_view plain) {
  Impl& s = *impl_;
  if (!s.established) return Error::failed_precondition("Kerberos: cannot seal before authentication completed");
  const ErrorScope scope{Phase::kMessage, "sealing a WinRM message", {}, {}};
  std::string data(plain);  // encrypted in place
  std::string token(std::max(s.sizes.cbSecurityTrailer, kMinSecurityTrailer), '\0');
  std::string padding(s.sizes.cbBlockSize, '\0');
  std::array<SecBuffer, 3> buffers{sec_buffer(SECBUFFER_TOKEN, token), sec_buffer(SECBUFFER_DATA, data),
                                   sec_buffer(SECBUFFER_PADDING, padding)};
  // A block size of 1 (AES, and what Wine reports) never pads; Wine ignores a PADDING buffer entirely.
  const ULONG count = s.sizes.cbBlockSize > 1 ? 3 : 2;
  SecBufferDesc desc{SECBUFFER_VERSION, count, buffers.data()};
  const SECURITY_STATUS status = EncryptMessage(s.context.get(), 0, &desc, 0);
  if (status != SEC_E_OK) return map_error(scope, "EncryptMessage", status);
  token.resize(buffers[0].cbBuffer);
  data.resize(buffers[1].cbBuffer);
  padding.resize(count == 3 ? buffers[2].cbBuffer : 0);
  SealedMessage sealed;
  if (running_under_wine()) {
    auto rotated = wine::rotate_wrap_token(data, token);
    if (!rotated) return rotated.error().context("sealing a WinRM message: ");
    sealed.header = std::move(rotated->header);
    sealed.payload = std::move(rotated->payload);
  } else {
    sealed.header = std::move(token);
    sealed.payload = std::move(data);
    sealed.payload += padding;
  }
  sealed.original_length = sealed.payload.size();
  return sealed;
}

Result<std::string> GssContext::unwrap(std::string_view header, std::string_view payload) {
  Impl& s = *impl_;
  if (!s.established) return Error::failed_precondition("Kerberos: cannot unseal before authentication completed");
  if (header.empty()) return Error::invalid_argument("unsealing a WinRM message: the security header is empty");
  const ErrorScope scope{Phase::kMessage, "unsealing a WinRM message", {}, {}};
  std::string token(header);
  std::string data(payload);
  if (running_under_wine()) {
    // Wine's DecryptMessage runs gss_unwrap over DATA || TOKEN: hand it the whole token in that split.
    std::string whole = token + data;
    data = whole.substr(0, payload.size());
    token = whole.substr(payload.size());
  }
  std::array<SecBuffer, 2> buffers{sec_buffer(SECBUFFER_TOKEN, token), sec_buffer(SECBUFFER_DATA, data)};
  SecBufferDesc desc{SECBUFFER_VERSION, static_cast<ULONG>(buffers.size()), buffers.data()};
  ULONG qop = 0;
  const SECURITY_STATUS status = DecryptMessage(s.context.get(), &desc, 0, &qop);
  if (status != SEC_E_OK) return map_error(scope, "DecryptMessage", status);
  if (qop == SECQOP_WRAP_NO_ENCRYPT)
    return Error::invalid_argument("unsealing a WinRM message: the peer sent it unencrypted");
  // The DATA buffer now holds the plaintext (SSPI may shorten it when the token carried filler).
  return std::string(static_cast<const char*>(buffers[1].pvBuffer), buffers[1].cbBuffer);
}

std::string_view GssContext::protocol_name() const {
  return impl_->options.scheme == HttpScheme::kKerberos ? kKerberosEncryptedProtocol : kSpnegoEncryptedProtocol;
}

Status store_ticket_in_ccache(std::string_view, const Secret&, const std::string& ccache) {
  // Windows keeps tickets in the LSA's logon session, not in a ccache the agent could name.
  return Error::failed_precondition("storing a Kerberos ticket in " + ccache +
                                    " is not supported on Windows (the logon session holds the tickets; give the user "
                                    "and password, or run the agent as the domain account)");
}

}  // namespace wincert::winrm::gss
