// Shared pieces of the GSSAPI initiator and acceptor: RAII over GSSAPI handles, status text, error
// classification and the WinRM (SSPI-layout) wrap/unwrap. Private to winrm/auth/gssapi_*.cpp.
#pragma once

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>

#include <string>
#include <string_view>

#include "common/result.hpp"
#include "winrm/auth/gssapi_context.hpp"
#include "winrm/encryption.hpp"

namespace wincert::winrm::gss::detail {

// OIDs: Kerberos 1.2.840.113554.1.2.2, SPNEGO 1.3.6.1.5.5.2.
gss_OID kerberos_oid();
gss_OID spnego_oid();
bool same_oid(gss_const_OID a, gss_const_OID b);

// A gss_buffer_desc that GSSAPI allocated (output tokens, display strings).
class OwnedBuffer {
 public:
  OwnedBuffer() = default;
  OwnedBuffer(const OwnedBuffer&) = delete;
  OwnedBuffer& operator=(const OwnedBuffer&) = delete;
  ~OwnedBuffer();
  gss_buffer_t get() { return &buf_; }
  std::string str() const;
  std::size_t size() const { return buf_.length; }

 private:
  gss_buffer_desc buf_{0, nullptr};
};

class Name {
 public:
  Name() = default;
  Name(const Name&) = delete;
  Name& operator=(const Name&) = delete;
  ~Name();
  gss_name_t get() const { return name_; }
  gss_name_t* out();  // releases the current name first
  std::string display() const;

 private:
  gss_name_t name_ = GSS_C_NO_NAME;
};

class Credential {
 public:
  Credential() = default;
  Credential(const Credential&) = delete;
  Credential& operator=(const Credential&) = delete;
  ~Credential();
  gss_cred_id_t get() const { return cred_; }
  gss_cred_id_t* out();

 private:
  gss_cred_id_t cred_ = GSS_C_NO_CREDENTIAL;
};

class SecurityContext {
 public:
  SecurityContext() = default;
  SecurityContext(const SecurityContext&) = delete;
  SecurityContext& operator=(const SecurityContext&) = delete;
  ~SecurityContext();
  gss_ctx_id_t get() const { return ctx_; }
  gss_ctx_id_t* inout() { return &ctx_; }

 private:
  gss_ctx_id_t ctx_ = GSS_C_NO_CONTEXT;
};

// A non-owning input buffer over bytes the caller keeps alive.
gss_buffer_desc input_buffer(std::string_view bytes);

// "major text; minor text" from gss_display_status (all messages of both codes).
std::string status_text(OM_uint32 major, OM_uint32 minor, gss_OID mech);

// Where a failure happened: the same krb5 code means different things in each phase (an integrity
// failure is a wrong password while acquiring, a forged reply while initiating, a stale keytab while
// accepting).
enum class Phase {
  kAcquire,       // client credentials (AS exchange with a password, ccache, client keytab)
  kInitiate,      // client context legs (TGS exchange, AP-REQ/AP-REP)
  kAcceptorKeys,  // loading the service keytab
  kAccept,        // acceptor legs
  kMessage,       // wrap/unwrap
};

// Who was involved, for one actionable error line.
struct ErrorScope {
  Phase phase = Phase::kInitiate;
  std::string operation;  // "acquiring Kerberos credentials", "Kerberos authentication", ...
  std::string user;       // client principal; empty = the default identity
  std::string spn;        // target SPN, may be empty
  std::string keytab;     // acceptor keytab, may be empty
};

// Maps a GSSAPI failure to one line: a plain explanation for the common cases (wrong password,
// unknown user, unknown SPN, KDC unreachable, clock skew, no ticket, keytab problems), then the GSSAPI
// text in brackets. Never includes tokens or passwords (GSSAPI texts contain neither).
Error map_error(const ErrorScope& scope, OM_uint32 major, OM_uint32 minor, gss_OID mech);

// gss_channel_bindings_struct with only application_data set (§3.5); `data` must outlive the use.
gss_channel_bindings_struct channel_bindings(const std::string& data);

// WinRM sealing over an established context (see GssContext::wrap / unwrap).
Result<SealedMessage> wrap_winrm(gss_ctx_id_t ctx, std::string_view plain);
Result<std::string> unwrap_winrm(gss_ctx_id_t ctx, std::string_view header, std::string_view payload);

std::string_view protocol_for(HttpScheme scheme);

}  // namespace wincert::winrm::gss::detail
