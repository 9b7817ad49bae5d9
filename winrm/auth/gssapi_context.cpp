#include "winrm/auth/gssapi_context.hpp"

#include <krb5.h>

#include "common/encoding.hpp"
#include "winrm/auth/gssapi_internal.hpp"

namespace wincert::winrm::gss {

using detail::Credential;
using detail::Name;
using detail::OwnedBuffer;
using detail::SecurityContext;

namespace {

// The default realm from krb5.conf, or "" when none is configured.
std::string default_realm() {
  krb5_context context = nullptr;
  if (krb5_init_context(&context) != 0) return {};
  std::string realm;
  char* value = nullptr;
  if (krb5_get_default_realm(context, &value) == 0 && value != nullptr) {
    realm = value;
    krb5_free_default_realm(context, value);
  }
  krb5_free_context(context);
  return realm;
}

// A gss_OID_set over one static OID (no allocation, nothing to release).
struct OneMechSet {
  explicit OneMechSet(gss_OID mech) : oid(*mech), set{1, &oid} {}
  gss_OID_desc oid;
  gss_OID_set_desc set;
};

}  // namespace

struct GssContext::Impl {
  ClientOptions options;
  std::string spn;
  std::string user_principal;  // mapped from options.user; empty = default identity
  Name target;
  Credential credential;
  SecurityContext context;
  std::string channel_binding_data;
  gss_channel_bindings_struct bindings{};
  bool use_bindings = false;
  bool established = false;
  bool failed = false;  // GSSAPI contexts cannot continue after an error
  OM_uint32 flags = 0;
  std::string client_name;

  gss_OID mech() const {
    return options.mechanism == Mechanism::kSpnego ? detail::spnego_oid() : detail::kerberos_oid();
  }
  detail::ErrorScope scope(detail::Phase phase, std::string operation) const {
    return {phase, std::move(operation), user_principal, spn, {}};
  }

  Status import_target() {
    OM_uint32 minor = 0;
    OM_uint32 major = 0;
    if (options.target.spn_with_port) {
      // "HTTP/host:port" exists only as a Kerberos principal name; host-based names have no port.
      const std::string principal = spn;
      gss_buffer_desc text = detail::input_buffer(principal);
      major = gss_import_name(&minor, &text, GSS_KRB5_NT_PRINCIPAL_NAME, target.out());
    } else {
      const std::string hostbased = options.target.service + "@" + options.target.host;
      gss_buffer_desc text = detail::input_buffer(hostbased);
      major = gss_import_name(&minor, &text, GSS_C_NT_HOSTBASED_SERVICE, target.out());
    }
    if (GSS_ERROR(major))
      return detail::map_error(scope(detail::Phase::kInitiate, "importing the target name"), major, minor,
                               GSS_C_NO_OID);
    return {};
  }

  // gss_acquire_cred[_with_password] for one mechanism; asking for the lifetime makes MIT obtain the
  // TGT now, so a wrong password or an unreachable KDC surfaces here rather than in step().
  OM_uint32 acquire_for(gss_OID mechanism, Credential& out, OM_uint32& minor) const {
    OneMechSet mechs(mechanism);
    Name user_name;
    if (!user_principal.empty()) {
      gss_buffer_desc text = detail::input_buffer(user_principal);
      const OM_uint32 major = gss_import_name(&minor, &text, GSS_KRB5_NT_PRINCIPAL_NAME, user_name.out());
      if (GSS_ERROR(major)) return major;
    }
    OM_uint32 lifetime = 0;
    if (!options.password.empty()) {
      const std::string& password = options.password.reveal();
      gss_buffer_desc secret = detail::input_buffer(password);
      return gss_acquire_cred_with_password(&minor, user_name.get(), &secret, GSS_C_INDEFINITE, &mechs.set,
                                            GSS_C_INITIATE, out.out(), nullptr, &lifetime);
    }
    return gss_acquire_cred(&minor, user_name.get(), GSS_C_INDEFINITE, &mechs.set, GSS_C_INITIATE, out.out(), nullptr,
                            &lifetime);
  }

  Status acquire_credentials() {
    OM_uint32 minor = 0;
    OM_uint32 major = acquire_for(mech(), credential, minor);
    if (GSS_ERROR(major) && options.mechanism == Mechanism::kSpnego) {
      // SPNEGO reports whichever sub-mechanism failed last (often gss-ntlmssp rejecting the name type);
      // ask Kerberos alone for the error that explains the failure.
      Credential probe;
      OM_uint32 krb5_minor = 0;
      const OM_uint32 krb5_major = acquire_for(detail::kerberos_oid(), probe, krb5_minor);
      if (GSS_ERROR(krb5_major)) {
        return detail::map_error(scope(detail::Phase::kAcquire, "acquiring Kerberos credentials"), krb5_major,
                                 krb5_minor, detail::kerberos_oid());
      }
    }
    if (GSS_ERROR(major)) {
      return detail::map_error(scope(detail::Phase::kAcquire, "acquiring Kerberos credentials"), major, minor, mech());
    }
    if (options.mechanism == Mechanism::kSpnego) {
      // SPNEGO would also offer NTLM when gss-ntlmssp is installed; NTLM has its own native client.
      OneMechSet krb5_only(detail::kerberos_oid());
      major = gss_set_neg_mechs(&minor, credential.get(), &krb5_only.set);
      if (GSS_ERROR(major)) {
        return detail::map_error(scope(detail::Phase::kAcquire, "restricting SPNEGO to Kerberos"), major, minor,
                                 mech());
      }
    }
    return {};
  }

  // The principal the credential belongs to (e.g. the ccache's default principal).
  void resolve_client_name() {
    OM_uint32 minor = 0;
    Name name;
    if (!GSS_ERROR(gss_inquire_cred(&minor, credential.get(), name.out(), nullptr, nullptr, nullptr))) {
      client_name = name.display();
    }
  }
};

GssContext::GssContext(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GssContext::~GssContext() = default;

Result<std::unique_ptr<GssContext>> GssContext::create(ClientOptions options) {
  if (auto checked = check_client_options(options); !checked.ok()) return checked.error();
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->spn = service_principal(impl->options.target);
  if (!trim(impl->options.user).empty()) {
    impl->user_principal = map_user_principal(impl->options.user, default_realm());
  }
  if (impl->options.channel_binding) {
    impl->channel_binding_data = *impl->options.channel_binding;
    impl->bindings = detail::channel_bindings(impl->channel_binding_data);
    impl->use_bindings = true;
  }
  WINCERT_TRY(impl->import_target());
  WINCERT_TRY(impl->acquire_credentials());
  impl->resolve_client_name();
  return std::unique_ptr<GssContext>(new GssContext(std::move(impl)));
}

Result<std::string> GssContext::step(std::string_view input_token) {
  Impl& s = *impl_;
  if (s.established)
    return Error::invalid_argument("Kerberos: the server sent another token after authentication completed");
  if (s.failed) return Error::failed_precondition("Kerberos: this context already failed; authenticate on a new one");
  OM_uint32 minor = 0;
  gss_buffer_desc input = detail::input_buffer(input_token);
  OwnedBuffer output;
  gss_OID actual_mech = GSS_C_NO_OID;
  OM_uint32 requested = GSS_C_MUTUAL_FLAG | GSS_C_SEQUENCE_FLAG | GSS_C_CONF_FLAG | GSS_C_INTEG_FLAG;
  if (s.options.delegate) requested |= GSS_C_DELEG_FLAG;
  const OM_uint32 major = gss_init_sec_context(
      &minor, s.credential.get(), s.context.inout(), s.target.get(), s.mech(), requested, GSS_C_INDEFINITE,
      s.use_bindings ? &s.bindings : GSS_C_NO_CHANNEL_BINDINGS, input_token.empty() ? GSS_C_NO_BUFFER : &input,
      &actual_mech, output.get(), &s.flags, nullptr);
  if (GSS_ERROR(major)) {
    s.failed = true;
    return detail::map_error(s.scope(detail::Phase::kInitiate, "Kerberos authentication"), major, minor,
                             actual_mech != GSS_C_NO_OID ? actual_mech : s.mech());
  }
  if (major == GSS_S_COMPLETE) {
    // Before anything is sealed: the server must have proved it holds the SPN's key (AP-REP).
    s.failed = true;  // until every check below passed
    if ((s.flags & GSS_C_MUTUAL_FLAG) == 0) {
      return Error::unauthenticated("Kerberos authentication to " + s.spn +
                                    ": the server did not prove its identity (no mutual authentication)");
    }
    if ((s.flags & GSS_C_CONF_FLAG) == 0 || (s.flags & GSS_C_INTEG_FLAG) == 0) {
      return Error::failed_precondition("Kerberos authentication to " + s.spn +
                                        ": the context offers no message confidentiality/integrity");
    }
    s.failed = false;
    s.established = true;
  }
  return output.str();
}

bool GssContext::complete() const { return impl_->established; }
bool GssContext::delegated() const { return impl_->established && (impl_->flags & GSS_C_DELEG_FLAG) != 0; }

std::string GssContext::client_principal() const {
  if (!impl_->client_name.empty()) return impl_->client_name;
  return impl_->user_principal;
}

const std::string& GssContext::target_spn() const { return impl_->spn; }

Result<SealedMessage> GssContext::wrap(std::string_view plain) {
  if (!impl_->established) return Error::failed_precondition("Kerberos: cannot seal before authentication completed");
  return detail::wrap_winrm(impl_->context.get(), plain);
}

Result<std::string> GssContext::unwrap(std::string_view header, std::string_view payload) {
  if (!impl_->established) return Error::failed_precondition("Kerberos: cannot unseal before authentication completed");
  return detail::unwrap_winrm(impl_->context.get(), header, payload);
}

std::string_view GssContext::protocol_name() const { return detail::protocol_for(impl_->options.scheme); }

Status store_ticket_in_ccache(std::string_view user, const Secret& password, const std::string& ccache) {
  if (trim(user).empty() || password.empty()) {
    return Error::invalid_argument("Kerberos: storing a ticket needs a user and a password");
  }
  const std::string principal = map_user_principal(user, default_realm());
  const detail::ErrorScope scope{detail::Phase::kAcquire, "obtaining a Kerberos ticket", principal, {}, {}};
  OM_uint32 minor = 0;
  Name name;
  gss_buffer_desc text = detail::input_buffer(principal);
  OM_uint32 major = gss_import_name(&minor, &text, GSS_KRB5_NT_PRINCIPAL_NAME, name.out());
  if (GSS_ERROR(major)) return detail::map_error(scope, major, minor, GSS_C_NO_OID);
  OneMechSet mechs(detail::kerberos_oid());
  Credential credential;
  gss_buffer_desc secret = detail::input_buffer(password.reveal());
  OM_uint32 lifetime = 0;
  major = gss_acquire_cred_with_password(&minor, name.get(), &secret, GSS_C_INDEFINITE, &mechs.set, GSS_C_INITIATE,
                                         credential.out(), nullptr, &lifetime);
  if (GSS_ERROR(major)) return detail::map_error(scope, major, minor, detail::kerberos_oid());
  gss_key_value_element_desc element{"ccache", ccache.c_str()};
  gss_key_value_set_desc store{1, &element};
  major = gss_store_cred_into(&minor, credential.get(), GSS_C_INITIATE, detail::kerberos_oid(), 1, 1, &store, nullptr,
                              nullptr);
  if (GSS_ERROR(major)) {
    return detail::map_error({detail::Phase::kAcquire, "storing the Kerberos ticket in " + ccache, principal, {}, {}},
                             major, minor, detail::kerberos_oid());
  }
  return {};
}

}  // namespace wincert::winrm::gss
