// Windows-like authentication for winhost-sim beyond Basic (reference winrm.md §3): NTLM through the
// gss-ntlmssp GSSAPI acceptor (raw NTLMSSP tokens in the "Negotiate" scheme, users from NTLM_USER_FILE),
// Kerberos / SPNEGO through MIT GSSAPI with a keytab ("Kerberos" and "Negotiate" schemes), client
// certificates mapped to users (the wsman/secprofile/https/mutual header over TLS), HTTP message
// encryption exactly as Windows requires it (AllowUnencrypted=false: an unencrypted SOAP body on plain
// HTTP after NTLM/Kerberos is refused; encrypted requests get encrypted responses, faults included) and
// channel-binding enforcement (CbtHardeningLevel none | relaxed | strict).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "sim/winhost/auth.hpp"

namespace wincert::sim {

enum class CbtMode {
  kNone,     // channel bindings ignored
  kRelaxed,  // a client that sends bindings must send the right ones
  kStrict,   // a client without bindings is refused (TLS only)
};

Result<CbtMode> parse_cbt_mode(std::string_view text);

// The schemes the listener offers, from "--auth basic,ntlm,kerberos,negotiate,certificate".
//   basic: Basic; ntlm: raw NTLM in the Negotiate header; kerberos: the Kerberos header (and Kerberos
//   inside Negotiate); negotiate: the Negotiate header with SPNEGO/Kerberos or raw NTLM; certificate:
//   client certificates over TLS.
struct AuthSchemes {
  bool basic = false;
  bool ntlm = false;
  bool kerberos = false;
  bool negotiate = false;
  bool certificate = false;
  bool gss() const { return ntlm || kerberos || negotiate; }
};
Result<AuthSchemes> parse_auth_schemes(std::string_view list);

// Counters of the authentication layer (shared by all connections; read from any thread).
struct AuthStats {
  std::atomic<std::uint64_t> handshakes{0};           // security contexts established (NTLM/Kerberos)
  std::atomic<std::uint64_t> challenges{0};           // 401s that carried a continuation token
  std::atomic<std::uint64_t> refusals{0};             // 401s that refused (or listed the schemes)
  std::atomic<std::uint64_t> encrypted_requests{0};   // request bodies decrypted
  std::atomic<std::uint64_t> unencrypted_refused{0};  // clear SOAP bodies refused on HTTP
  std::atomic<std::uint64_t> unseal_failures{0};      // tampered / truncated encrypted bodies
  std::atomic<std::uint64_t> certificate_logons{0};
  nlohmann::json to_json() const;
};

struct WindowsAuthOptions {
  AuthSchemes schemes;
  std::shared_ptr<const UserDatabase> users;  // Basic (the same file is NTLM_USER_FILE for gss-ntlmssp)
  bool allow_unencrypted = false;             // AllowUnencrypted: Basic on HTTP and clear SOAP after NTLM/Kerberos
  std::string keytab;                         // Kerberos service keytab; empty = KRB5_KTNAME
  CbtMode cbt = CbtMode::kRelaxed;
  // The TLS listener's leaf certificate for channel binding; empty: the server's own per-connection
  // ConnectionInfo::tls_server_end_point (set it only to simulate a TLS-intercepting proxy).
  std::string server_certificate_der;
  // Client certificate map: SHA-1 thumbprint (upper-case hex) or subject (OpenSSL RFC 2253 text) -> user.
  std::map<std::string, std::string> certificate_map;
  std::shared_ptr<AuthStats> stats;  // optional
  // Fault injection (tests): after this many requests served on an authenticated connection the
  // server "loses" the security context once and answers 401 (as Windows does after a restart or a
  // ticket expiry); with refuse_after_drop the following re-authentication is refused as well.
  int drop_context_after = 0;
  bool refuse_after_drop = false;
};

// Loads the first certificate of a PEM file as DER (the listener's --tls-cert).
Result<std::string> load_certificate_der(const std::string& pem_path);

// Loads a certificate map file: a JSON object {"<SHA-1 thumbprint hex or subject>": "user", ...}.
Result<std::map<std::string, std::string>> load_certificate_map(const std::string& path);

// The user a client certificate (DER) maps to: by SHA-1 thumbprint first, then by subject.
std::optional<std::string> map_client_certificate(const std::string& certificate_der,
                                                  const std::map<std::string, std::string>& map);

// Prepares gss-ntlmssp for this process: NTLM_USER_FILE (the users file), NetBIOS names, and the mech
// registration when /etc/gss/mech.d has none. Call before the first GSSAPI call.
Status configure_gss_ntlmssp(const std::string& users_file, const std::string& netbios_computer,
                             const std::string& netbios_domain, const std::string& scratch_dir);

// Fails early when a scheme cannot work (no keytab keys, gss-ntlmssp missing).
Result<std::unique_ptr<Authenticator>> make_windows_authenticator(WindowsAuthOptions options);

}  // namespace wincert::sim
