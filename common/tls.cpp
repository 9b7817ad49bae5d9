#include "common/tls.hpp"

#include <openssl/x509_vfy.h>

#include "common/log.hpp"

namespace wincert::tls {

namespace ssl = boost::asio::ssl;

namespace {

// The system's CA certificates, loaded once for the process and shared (reference-counted, safe for
// concurrent verification) by every client context: loading them per context cost ~0.4 MB and the parsing
// of every CA certificate, and the agent makes one context per Command client and per WinRM https
// connection. Nothing adds to a context's store after configure_client, so sharing it changes nothing else.
X509_STORE* system_trust_store() {
  static X509_STORE* const store = [] {
    X509_STORE* s = X509_STORE_new();
    if (s != nullptr && X509_STORE_set_default_paths(s) != 1)
      logger("tls")->debug("no system CA store (the default CA file and directory of OpenSSL)");
    return s;
  }();
  return store;
}

}  // namespace

Status configure_client(ssl::context& context, const ClientSettings& s) {
  context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                      ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  boost::system::error_code ec;
  if (s.verify_peer) {
    context.set_verify_mode(ssl::verify_peer, ec);
    if (!s.ca_file.empty()) {
      context.load_verify_file(s.ca_file, ec);
      if (ec) {
        return Error::invalid_argument("cannot load CA file '" + s.ca_file + "': " + ec.message() + " (" +
                                       s.ca_file_option + " must be a PEM file of CA certificates)");
      }
    } else if (X509_STORE* store = system_trust_store()) {
      SSL_CTX_set1_cert_store(context.native_handle(), store);
    } else {
      context.set_default_verify_paths(ec);
      if (ec) logger("tls")->debug("no system CA store: {}", ec.message());
    }
  } else {
    context.set_verify_mode(ssl::verify_none, ec);
  }
  if (s.client_certificate.empty() != s.client_key.empty()) {
    return Error::invalid_argument("a client certificate needs both " + s.client_certificate_option + " and " +
                                   s.client_key_option);
  }
  if (!s.client_certificate.empty()) {
    context.use_certificate_chain_file(s.client_certificate, ec);
    if (ec) {
      return Error::invalid_argument("cannot load the client certificate '" + s.client_certificate + "': " +
                                     ec.message() + " (" + s.client_certificate_option + " must be a PEM certificate)");
    }
    context.use_private_key_file(s.client_key, ssl::context::pem, ec);
    if (ec) {
      return Error::invalid_argument("cannot load the client key '" + s.client_key + "': " + ec.message() + " (" +
                                     s.client_key_option + " must be an unencrypted PEM key matching " +
                                     s.client_certificate_option + ")");
    }
  }
  return {};
}

Status configure_server(ssl::context& context, const std::string& certificate_file, const std::string& key_file) {
  if (certificate_file.empty() || key_file.empty())
    return Error::invalid_argument("HTTPS needs both --tls-cert and --tls-key");
  context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                      ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  boost::system::error_code ec;
  context.use_certificate_chain_file(certificate_file, ec);
  if (ec) return Error::invalid_argument("cannot load the TLS certificate " + certificate_file + ": " + ec.message());
  context.use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec) return Error::invalid_argument("cannot load the TLS key " + key_file + ": " + ec.message());
  return {};
}

}  // namespace wincert::tls
