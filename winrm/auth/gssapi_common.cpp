// GSSAPI plumbing shared by the initiator and the acceptor (see gssapi_internal.hpp).
#include "winrm/auth/gssapi_internal.hpp"

#include <krb5.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace wincert::winrm::gss::detail {
namespace {

gss_OID_desc kKerberosOid = {9, const_cast<char*>("\x2a\x86\x48\x86\xf7\x12\x01\x02\x02")};
gss_OID_desc kSpnegoOid = {6, const_cast<char*>("\x2b\x06\x01\x05\x05\x02")};

// All messages gss_display_status has for one code, joined with ", ".
std::string display_one(OM_uint32 code, int type, gss_OID mech) {
  std::string text;
  OM_uint32 context = 0;
  for (int guard = 0; guard < 8; ++guard) {
    OM_uint32 minor = 0;
    OwnedBuffer message;
    const OM_uint32 major = gss_display_status(&minor, code, type, mech, &context, message.get());
    if (GSS_ERROR(major)) break;
    if (message.size() > 0) {
      if (!text.empty()) text += ", ";
      text += message.str();
    }
    if (context == 0) break;
  }
  return text;
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

std::string who(const ErrorScope& scope) { return scope.user.empty() ? "the default identity" : scope.user; }

}  // namespace

gss_OID kerberos_oid() { return &kKerberosOid; }
gss_OID spnego_oid() { return &kSpnegoOid; }

bool same_oid(gss_const_OID a, gss_const_OID b) {
  if (a == b) return true;
  if (a == GSS_C_NO_OID || b == GSS_C_NO_OID) return false;
  return a->length == b->length && std::memcmp(a->elements, b->elements, a->length) == 0;
}

OwnedBuffer::~OwnedBuffer() {
  OM_uint32 minor = 0;
  if (buf_.value != nullptr) gss_release_buffer(&minor, &buf_);
}

std::string OwnedBuffer::str() const {
  if (buf_.value == nullptr) return {};
  return std::string(static_cast<const char*>(buf_.value), buf_.length);
}

Name::~Name() {
  OM_uint32 minor = 0;
  if (name_ != GSS_C_NO_NAME) gss_release_name(&minor, &name_);
}

gss_name_t* Name::out() {
  OM_uint32 minor = 0;
  if (name_ != GSS_C_NO_NAME) gss_release_name(&minor, &name_);
  return &name_;
}

std::string Name::display() const {
  if (name_ == GSS_C_NO_NAME) return {};
  OM_uint32 minor = 0;
  OwnedBuffer text;
  if (GSS_ERROR(gss_display_name(&minor, name_, text.get(), nullptr))) return {};
  return text.str();
}

Credential::~Credential() {
  OM_uint32 minor = 0;
  if (cred_ != GSS_C_NO_CREDENTIAL) gss_release_cred(&minor, &cred_);
}

gss_cred_id_t* Credential::out() {
  OM_uint32 minor = 0;
  if (cred_ != GSS_C_NO_CREDENTIAL) gss_release_cred(&minor, &cred_);
  return &cred_;
}

SecurityContext::~SecurityContext() {
  OM_uint32 minor = 0;
  if (ctx_ != GSS_C_NO_CONTEXT) gss_delete_sec_context(&minor, &ctx_, GSS_C_NO_BUFFER);
}

gss_buffer_desc input_buffer(std::string_view bytes) {
  return gss_buffer_desc{bytes.size(), const_cast<char*>(bytes.data())};
}

std::string status_text(OM_uint32 major, OM_uint32 minor, gss_OID mech) {
  std::string text = display_one(major, GSS_C_GSS_CODE, GSS_C_NO_OID);
  if (minor != 0) {
    const std::string minor_text = display_one(minor, GSS_C_MECH_CODE, mech);
    if (!minor_text.empty()) text += "; " + minor_text;
  }
  return text;
}

Error map_error(const ErrorScope& scope, OM_uint32 major, OM_uint32 minor, gss_OID mech) {
  const std::string details = status_text(major, minor, mech);
  const std::string gss = " [GSSAPI: " + details + "]";
  const std::string spn = scope.spn.empty() ? "the service" : scope.spn;
  const std::string keytab = scope.keytab.empty() ? "the keytab" : scope.keytab;
  const std::string& op = scope.operation;
  const auto code = static_cast<krb5_error_code>(minor);
  const std::string_view d = details;
  const bool accepting = scope.phase == Phase::kAccept || scope.phase == Phase::kAcceptorKeys;
  // Every failure carries the GSS major status; the code says what to do about it (KDC unreachable is
  // transient, bad or missing credentials are unauthenticated, keytab trouble is the acceptor's state).
  auto fail = [major](ErrorCode error_code, std::string message) {
    return Error::make(error_code, std::move(message)).with_system_status(SystemStatusKind::kGss, major);
  };

  // The minor code is the krb5 error for the Kerberos mechanism; GSSAPI's own status text (never one of our
  // Error messages) is the fallback when the mechanism glue (SPNEGO) renumbered it.
  const bool integrity = code == KRB5KDC_ERR_PREAUTH_FAILED || code == KRB5KRB_AP_ERR_BAD_INTEGRITY ||
                         contains(d, "Preauthentication failed") || contains(d, "Decrypt integrity check failed");
  if (integrity && scope.phase == Phase::kAcquire) {
    return fail(ErrorCode::kUnauthenticated,
                op + ": the KDC refused the password of " + who(scope) + " (wrong password?)" + gss);
  }
  if (integrity && accepting) {
    return fail(ErrorCode::kUnauthenticated, op + ": the client's ticket does not decrypt with the key in " + keytab +
                                                 " (the keytab is stale: re-export the SPN's key)" + gss);
  }
  if (integrity || code == KRB5KRB_AP_ERR_MODIFIED) {
    return fail(ErrorCode::kUnauthenticated, op + " with " + spn +
                                                 ": a token failed its integrity check (tampered, or the "
                                                 "server's key differs from the KDC's)" +
                                                 gss);
  }
  if (code == KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN ||
      (contains(d, "Client '") && contains(d, "not found in Kerberos database"))) {
    return fail(ErrorCode::kUnauthenticated, op + ": user " + who(scope) +
                                                 " is unknown to the KDC (check the user name and "
                                                 "its realm)" +
                                                 gss);
  }
  if (code == KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN ||
      (contains(d, "Server ") && contains(d, "not found in Kerberos database"))) {
    return fail(ErrorCode::kUnauthenticated,
                op + " for " + who(scope) + ": no service principal " + spn +
                    " is registered in the KDC (use the "
                    "host's FQDN rather than an IP or alias; check setspn, the service name and "
                    "--spn-with-port)" +
                    gss);
  }
  if (code == KRB5_KDC_UNREACH || code == KRB5_REALM_CANT_RESOLVE || code == KRB5_REALM_UNKNOWN ||
      contains(d, "Cannot contact any KDC") || contains(d, "Cannot find KDC")) {
    return fail(ErrorCode::kUnavailable, op + " for " + who(scope) +
                                             ": cannot reach a KDC for the realm (check the kdc "
                                             "entries in krb5.conf, DNS and that TCP/UDP port 88 is reachable)" +
                                             gss);
  }
  if (code == KRB5KRB_AP_ERR_SKEW || contains(d, "Clock skew too great")) {
    return fail(ErrorCode::kUnauthenticated,
                op + " for " + who(scope) +
                    ": the clocks of this machine, the KDC and the host "
                    "differ too much (synchronise time with NTP; Kerberos allows 5 minutes)" +
                    gss);
  }
  if (code == KRB5KDC_ERR_KEY_EXP || contains(d, "Password has expired")) {
    return fail(ErrorCode::kUnauthenticated, op + ": the password of " + who(scope) +
                                                 " has expired (change it, then update "
                                                 "the agent's configuration)" +
                                                 gss);
  }
  if (code == KRB5KDC_ERR_CLIENT_REVOKED || contains(d, "credentials have been revoked")) {
    return fail(ErrorCode::kUnauthenticated, op + ": the account " + who(scope) + " is disabled or locked out" + gss);
  }
  if (accepting && (contains(d, "not found in keytab") || code == KRB5_KT_NOTFOUND)) {
    return fail(ErrorCode::kFailedPrecondition, op + ": " + keytab +
                                                    " holds no key for the service principal the client asked "
                                                    "for (add the SPN's key with ktadd/ktpass)" +
                                                    gss);
  }
  if (accepting && (major == GSS_S_NO_CRED || code == KRB5_KT_END || code == ENOENT || code == EACCES)) {
    return fail(ErrorCode::kFailedPrecondition, op + ": cannot read service keys from " + keytab +
                                                    " (check the path, its "
                                                    "permissions and KRB5_KTNAME)" +
                                                    gss);
  }
  if (code == KRB5_FCC_NOFILE || code == KRB5_CC_NOTFOUND || major == GSS_S_NO_CRED ||
      contains(d, "No Kerberos credentials available") || contains(d, "No credentials cache found")) {
    return fail(ErrorCode::kFailedPrecondition,
                op + ": no Kerberos ticket or client keytab for " + who(scope) +
                    " (run kinit, "
                    "set KRB5CCNAME, configure a client keytab via KRB5_CLIENT_KTNAME, or give a "
                    "user and password)" +
                    gss);
  }
  if (code == KRB5_CONFIG_NODEFREALM || contains(d, "default realm")) {
    return fail(ErrorCode::kFailedPrecondition,
                op + " for " + who(scope) +
                    ": no Kerberos realm is known for the user (set default_realm in krb5.conf, or give the user as "
                    "user@REALM)" +
                    gss);
  }
  if (major == GSS_S_BAD_BINDINGS || contains(d, "hannel binding")) {
    return fail(ErrorCode::kUnauthenticated, op + (scope.spn.empty() ? "" : " with " + spn) +
                                                 ": channel bindings do not match (a TLS-intercepting "
                                                 "proxy, or the wrong server certificate)" +
                                                 gss);
  }
  if (code == KRB5KRB_AP_ERR_TKT_EXPIRED || major == GSS_S_CREDENTIALS_EXPIRED || major == GSS_S_CONTEXT_EXPIRED) {
    return fail(ErrorCode::kAborted, op + " for " + who(scope) +
                                         ": the Kerberos ticket has expired (it is renewed "
                                         "on retry)" +
                                         gss);
  }
  if (code == KRB5KRB_AP_ERR_REPEAT || major == GSS_S_DUPLICATE_TOKEN) {
    return fail(ErrorCode::kInvalidArgument, op + ": the peer replayed a Kerberos token" + gss);
  }
  if (major == GSS_S_DEFECTIVE_TOKEN || major == GSS_S_BAD_SIG || major == GSS_S_BAD_MIC) {
    return fail(ErrorCode::kInvalidArgument,
                op + (scope.spn.empty() ? "" : " with " + spn) + ": the peer sent a malformed or tampered token" + gss);
  }
  return fail(scope.phase == Phase::kMessage ? ErrorCode::kInvalidArgument : ErrorCode::kUnauthenticated,
              op + (accepting ? "" : " for " + who(scope)) + (scope.spn.empty() ? "" : " to " + spn) + " failed" + gss);
}

gss_channel_bindings_struct channel_bindings(const std::string& data) {
  gss_channel_bindings_struct cb{};
  cb.initiator_addrtype = GSS_C_AF_UNSPEC;
  cb.acceptor_addrtype = GSS_C_AF_UNSPEC;
  cb.application_data.length = data.size();
  cb.application_data.value = const_cast<char*>(data.data());
  return cb;
}

namespace {

// Frees the ALLOCATE'd iov buffers on every path.
class IovGuard {
 public:
  IovGuard(gss_iov_buffer_desc* iov, int count) : iov_(iov), count_(count) {}
  IovGuard(const IovGuard&) = delete;
  IovGuard& operator=(const IovGuard&) = delete;
  ~IovGuard() {
    OM_uint32 minor = 0;
    gss_release_iov_buffer(&minor, iov_, count_);
  }

 private:
  gss_iov_buffer_desc* iov_;
  int count_;
};

std::string iov_bytes(const gss_iov_buffer_desc& iov) {
  if (iov.buffer.value == nullptr) return {};
  return std::string(static_cast<const char*>(iov.buffer.value), iov.buffer.length);
}

}  // namespace

Result<SealedMessage> wrap_winrm(gss_ctx_id_t ctx, std::string_view plain) {
  std::string data(plain);  // encrypted in place
  std::array<gss_iov_buffer_desc, 3> iov{};
  iov[0].type = GSS_IOV_BUFFER_TYPE_HEADER | GSS_IOV_BUFFER_FLAG_ALLOCATE;
  iov[1].type = GSS_IOV_BUFFER_TYPE_DATA;
  iov[1].buffer = input_buffer(data);
  iov[2].type = GSS_IOV_BUFFER_TYPE_PADDING | GSS_IOV_BUFFER_FLAG_ALLOCATE;
  IovGuard guard(iov.data(), static_cast<int>(iov.size()));
  OM_uint32 minor = 0;
  int conf_state = 0;
  const OM_uint32 major =
      gss_wrap_iov(&minor, ctx, 1, GSS_C_QOP_DEFAULT, &conf_state, iov.data(), static_cast<int>(iov.size()));
  if (GSS_ERROR(major)) {
    return map_error({Phase::kMessage, "sealing a WinRM message", {}, {}, {}}, major, minor, GSS_C_NO_OID);
  }
  if (conf_state == 0) return Error::internal("sealing a WinRM message: GSSAPI did not encrypt it");
  SealedMessage sealed;
  sealed.header = iov_bytes(iov[0]);
  sealed.payload = std::move(data);
  sealed.payload += iov_bytes(iov[2]);
  sealed.original_length = sealed.payload.size();
  return sealed;
}

Result<std::string> unwrap_winrm(gss_ctx_id_t ctx, std::string_view header, std::string_view payload) {
  if (header.empty()) return Error::invalid_argument("unsealing a WinRM message: the security header is empty");
  std::string header_copy(header);  // GSSAPI decrypts and rotates in place
  std::string data(payload);
  std::array<gss_iov_buffer_desc, 2> iov{};
  iov[0].type = GSS_IOV_BUFFER_TYPE_HEADER;
  iov[0].buffer = input_buffer(header_copy);
  iov[1].type = GSS_IOV_BUFFER_TYPE_DATA;
  iov[1].buffer = input_buffer(data);
  OM_uint32 minor = 0;
  int conf_state = 0;
  gss_qop_t qop = 0;
  const OM_uint32 major = gss_unwrap_iov(&minor, ctx, &conf_state, &qop, iov.data(), static_cast<int>(iov.size()));
  if (GSS_ERROR(major)) {
    return map_error({Phase::kMessage, "unsealing a WinRM message", {}, {}, {}}, major, minor, GSS_C_NO_OID);
  }
  // Supplementary bits are not errors to GSSAPI, but WinRM messages are strictly ordered.
  if ((major & (GSS_S_DUPLICATE_TOKEN | GSS_S_OLD_TOKEN | GSS_S_UNSEQ_TOKEN | GSS_S_GAP_TOKEN)) != 0) {
    return Error::invalid_argument("unsealing a WinRM message: the message was replayed or arrived out of order");
  }
  if (conf_state == 0) return Error::invalid_argument("unsealing a WinRM message: the peer sent it unencrypted");
  // The DATA buffer now holds the plaintext (MIT may shorten it when the token carried filler).
  return std::string(static_cast<const char*>(iov[1].buffer.value), iov[1].buffer.length);
}

std::string_view protocol_for(HttpScheme scheme) {
  return scheme == HttpScheme::kKerberos ? kKerberosEncryptedProtocol : kSpnegoEncryptedProtocol;
}

}  // namespace wincert::winrm::gss::detail
