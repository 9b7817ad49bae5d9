// The GSSAPI acceptor (server side): tests and winhost-sim use it to play a Windows host's HTTP service.
#include <array>

#include "winrm/auth/gssapi_context.hpp"
#include "winrm/auth/gssapi_internal.hpp"

namespace wincert::winrm::gss {

using detail::Credential;
using detail::Name;
using detail::OwnedBuffer;
using detail::SecurityContext;

namespace {

// The mechanism named in an RFC 2743 initial context token: 0x60 <DER length> 0x06 <len> <OID> ...
// (SPNEGO's glue reports the negotiated inner mechanism, so the outer one is read from the token.)
Mechanism initial_token_mechanism(std::string_view token) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(token[i]); };
  if (token.size() < 2 || byte(0) != 0x60) return Mechanism::kKerberos;
  std::size_t pos = 2;
  if ((byte(1) & 0x80) != 0) pos += byte(1) & 0x7f;  // long-form length
  if (pos + 2 > token.size() || byte(pos) != 0x06) return Mechanism::kKerberos;
  const std::size_t oid_length = byte(pos + 1);
  if (pos + 2 + oid_length > token.size()) return Mechanism::kKerberos;
  const gss_OID spnego = detail::spnego_oid();
  const std::string_view oid = token.substr(pos + 2, oid_length);
  const bool is_spnego = oid == std::string_view(static_cast<const char*>(spnego->elements), spnego->length);
  return is_spnego ? Mechanism::kSpnego : Mechanism::kKerberos;
}

}  // namespace

struct GssAcceptor::Impl {
  AcceptorOptions options;
  std::string keytab_display;
  Credential credential;
  SecurityContext context;
  std::string channel_binding_data;
  gss_channel_bindings_struct bindings{};
  bool use_bindings = false;
  bool established = false;
  bool failed = false;
  OM_uint32 flags = 0;
  Mechanism used_mechanism = Mechanism::kKerberos;
  std::string client;
  Credential delegated;

  detail::ErrorScope scope(detail::Phase phase, std::string operation) const {
    return {phase, std::move(operation), {}, {}, keytab_display};
  }

  Status acquire_credentials() {
    OM_uint32 minor = 0;
    std::array<gss_OID_desc, 2> oids{*detail::kerberos_oid(), *detail::spnego_oid()};
    gss_OID_set_desc mechs{oids.size(), oids.data()};
    std::string keytab = options.keytab;
    if (!keytab.empty() && keytab.find(':') == std::string::npos) keytab = "FILE:" + keytab;
    keytab_display = keytab.empty() ? "the default keytab (KRB5_KTNAME)" : keytab;
    gss_key_value_element_desc element{"keytab", keytab.c_str()};
    gss_key_value_set_desc store{1, &element};
    const OM_uint32 major =
        gss_acquire_cred_from(&minor, GSS_C_NO_NAME, GSS_C_INDEFINITE, &mechs, GSS_C_ACCEPT,
                              keytab.empty() ? GSS_C_NO_CRED_STORE : &store, credential.out(), nullptr, nullptr);
    if (GSS_ERROR(major)) {
      return detail::map_error(scope(detail::Phase::kAcceptorKeys, "Kerberos acceptor"), major, minor,
                               detail::kerberos_oid());
    }
    // Only Kerberos inside SPNEGO (gss-ntlmssp may be installed system-wide).
    gss_OID_set_desc krb5_only{1, detail::kerberos_oid()};
    OM_uint32 ignored = 0;
    (void)gss_set_neg_mechs(&ignored, credential.get(), &krb5_only);
    return {};
  }
};

GssAcceptor::GssAcceptor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GssAcceptor::~GssAcceptor() = default;

Result<std::unique_ptr<GssAcceptor>> GssAcceptor::create(AcceptorOptions options) {
  if (options.require_channel_binding && !options.channel_binding) {
    return Error::invalid_argument("Kerberos acceptor: channel binding required but no binding data given");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  if (impl->options.channel_binding) {
    impl->channel_binding_data = *impl->options.channel_binding;
    impl->bindings = detail::channel_bindings(impl->channel_binding_data);
    impl->use_bindings = true;
  }
  WINCERT_TRY(impl->acquire_credentials());
  return std::unique_ptr<GssAcceptor>(new GssAcceptor(std::move(impl)));
}

Result<std::string> GssAcceptor::step(std::string_view client_token) {
  Impl& s = *impl_;
  if (s.established) return Error::invalid_argument("Kerberos acceptor: token received after authentication completed");
  if (s.failed)
    return Error::failed_precondition("Kerberos acceptor: this context already failed; the client must start over");
  if (client_token.empty()) return Error::invalid_argument("Kerberos acceptor: empty token from the client");
  const bool first_token = s.context.get() == GSS_C_NO_CONTEXT;
  OM_uint32 minor = 0;
  gss_buffer_desc input = detail::input_buffer(client_token);
  Name client_name;
  gss_OID mech = GSS_C_NO_OID;
  OwnedBuffer output;
  const OM_uint32 major = gss_accept_sec_context(
      &minor, s.context.inout(), s.credential.get(), &input, s.use_bindings ? &s.bindings : GSS_C_NO_CHANNEL_BINDINGS,
      client_name.out(), &mech, output.get(), &s.flags, nullptr, s.delegated.out());
  if (GSS_ERROR(major)) {
    s.failed = true;
    return detail::map_error(s.scope(detail::Phase::kAccept, "accepting a Kerberos token"), major, minor,
                             mech != GSS_C_NO_OID ? mech : detail::kerberos_oid());
  }
  if (first_token) s.used_mechanism = initial_token_mechanism(client_token);
  if (major == GSS_S_COMPLETE) {
    if (s.options.require_channel_binding && (s.flags & GSS_C_CHANNEL_BOUND_FLAG) == 0) {
      s.failed = true;
      return Error::unauthenticated(
          "Kerberos acceptor: the client did not bind the TLS channel (channel binding required)");
    }
    s.client = client_name.display();
    s.established = true;
  }
  return output.str();
}

bool GssAcceptor::complete() const { return impl_->established; }
const std::string& GssAcceptor::client_principal() const { return impl_->client; }
Mechanism GssAcceptor::mechanism() const { return impl_->used_mechanism; }
bool GssAcceptor::delegated() const {
  return impl_->established && (impl_->flags & GSS_C_DELEG_FLAG) != 0 && impl_->delegated.get() != GSS_C_NO_CREDENTIAL;
}
bool GssAcceptor::channel_bound() const { return (impl_->flags & GSS_C_CHANNEL_BOUND_FLAG) != 0; }

Result<SealedMessage> GssAcceptor::wrap(std::string_view plain) {
  if (!impl_->established)
    return Error::failed_precondition("Kerberos acceptor: cannot seal before authentication completed");
  return detail::wrap_winrm(impl_->context.get(), plain);
}

Result<std::string> GssAcceptor::unwrap(std::string_view header, std::string_view payload) {
  if (!impl_->established)
    return Error::failed_precondition("Kerberos acceptor: cannot unseal before authentication completed");
  return detail::unwrap_winrm(impl_->context.get(), header, payload);
}

std::string_view GssAcceptor::protocol_name() const { return detail::protocol_for(impl_->options.scheme); }

}  // namespace wincert::winrm::gss
