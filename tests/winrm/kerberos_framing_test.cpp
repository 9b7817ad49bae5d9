// Kerberos sealing through the WinRM multipart/encrypted framing (winrm/encryption.hpp, §3.9): what
// actually goes over HTTP between our client and a GSSAPI acceptor.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tests/support/result_matchers.hpp"
#include "tests/winrm/kerberos_test_util.hpp"
#include "winrm/auth/channel_binding.hpp"
#include "winrm/encryption.hpp"

namespace wincert::testing {
namespace {

using winrm::gss::GssAcceptor;
using winrm::gss::GssContext;
using winrm::gss::HttpScheme;
using winrm::gss::Mechanism;

class KerberosFramingTest : public KerberosTest {
 protected:
  void establish(Mechanism mechanism, HttpScheme scheme) {
    auto options = password_client(mechanism);
    options.scheme = scheme;
    auto client = GssContext::create(options);
    ASSERT_TRUE(client.ok()) << client.error().message;
    client_ = std::move(client).value();
    winrm::gss::AcceptorOptions acceptor;
    acceptor.scheme = scheme;
    auto server = GssAcceptor::create(acceptor);
    ASSERT_TRUE(server.ok()) << server.error().message;
    server_ = std::move(server).value();
    const Status status = authenticate(*client_, *server_);
    ASSERT_TRUE(status.ok()) << status.error().message;
  }

  std::unique_ptr<GssContext> client_;
  std::unique_ptr<GssAcceptor> server_;
};

const std::string kSoap =
    "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Header/><s:Body>"
    "<rsp:Shell xmlns:rsp=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell\"/></s:Body></s:Envelope>";

TEST_F(KerberosFramingTest, NegotiateSchemeRequestAndResponse) {
  establish(Mechanism::kSpnego, HttpScheme::kNegotiate);
  auto request = winrm::build_encrypted_body(kSoap, *client_);
  ASSERT_TRUE(request.ok()) << request.error().message;
  EXPECT_NE(request->content_type.find("protocol=\"application/HTTP-SPNEGO-session-encrypted\""), std::string::npos);
  EXPECT_NE(request->body.find("Length=" + std::to_string(kSoap.size()) + "\r\n"), std::string::npos);
  // After "\tContent-Type: application/octet-stream\r\n" comes LE32(60) and the 60-byte header.
  const std::string octet = "\tContent-Type: application/octet-stream\r\n";
  const auto at = request->body.find(octet);
  ASSERT_NE(at, std::string::npos);
  const std::string length = request->body.substr(at + octet.size(), 4);
  EXPECT_EQ(length, std::string("\x3c\x00\x00\x00", 4));
  EXPECT_EQ(request->body.find("Envelope"), std::string::npos);

  auto received = winrm::parse_encrypted_body(request->body, request->content_type, *server_);
  ASSERT_TRUE(received.ok()) << received.error().message;
  EXPECT_EQ(*received, kSoap);

  const std::string reply_soap = kSoap + std::string(20000, ' ');
  auto response = winrm::build_encrypted_body(reply_soap, *server_);
  ASSERT_TRUE(response.ok());
  auto opened = winrm::parse_encrypted_body(response->body, response->content_type, *client_);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  EXPECT_EQ(*opened, reply_soap);
}

TEST_F(KerberosFramingTest, KerberosSchemeUsesTheKerberosProtocolName) {
  establish(Mechanism::kKerberos, HttpScheme::kKerberos);
  auto request = winrm::build_encrypted_body(kSoap, *client_);
  ASSERT_TRUE(request.ok());
  EXPECT_NE(request->content_type.find("application/HTTP-Kerberos-session-encrypted"), std::string::npos);
  auto received = winrm::parse_encrypted_body(request->body, request->content_type, *server_);
  ASSERT_TRUE(received.ok()) << received.error().message;
  EXPECT_EQ(*received, kSoap);
}

TEST_F(KerberosFramingTest, TamperedBodyIsAnError) {
  establish(Mechanism::kSpnego, HttpScheme::kNegotiate);
  auto request = winrm::build_encrypted_body(kSoap, *client_);
  ASSERT_TRUE(request.ok());
  std::string body = request->body;
  const auto closing = body.rfind("--Encrypted Boundary--");
  ASSERT_NE(closing, std::string::npos);
  body[closing - 5] ^= 0x20;  // inside the ciphertext
  auto received = winrm::parse_encrypted_body(body, request->content_type, *server_);
  ASSERT_FALSE(received.ok());
}

// HTTPS: the channel binding computed from a real server certificate (ECDSA P-384 / SHA-384, so the
// RFC 5929 hash is SHA-384) binds a Kerberos context end to end; another certificate does not.
std::string self_signed_p384_der(long serial) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-384"), EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  if (!key || !cert) return {};
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key.get());
  if (X509_sign(cert.get(), key.get(), EVP_sha384()) == 0) return {};
  unsigned char* der = nullptr;
  const int length = i2d_X509(cert.get(), &der);
  if (length <= 0) return {};
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(length));
  OPENSSL_free(der);
  return out;
}

TEST_F(KerberosFramingTest, TlsServerEndPointBindingFromARealCertificate) {
  const std::string cert = self_signed_p384_der(1);
  const std::string other_cert = self_signed_p384_der(2);
  ASSERT_FALSE(cert.empty());
  auto binding = winrm::tls_server_end_point_application_data_der(cert);
  auto other_binding = winrm::tls_server_end_point_application_data_der(other_cert);
  ASSERT_TRUE(binding.ok()) << binding.error().message;
  ASSERT_TRUE(other_binding.ok());
  EXPECT_EQ(binding->size(), std::string("tls-server-end-point:").size() + 48);  // SHA-384

  for (Mechanism mech : {Mechanism::kKerberos, Mechanism::kSpnego}) {
    auto options = password_client(mech);
    options.channel_binding = *binding;
    auto client = GssContext::create(options);
    ASSERT_TRUE(client.ok()) << client.error().message;
    winrm::gss::AcceptorOptions strict;
    strict.channel_binding = *binding;
    strict.require_channel_binding = true;
    auto server = GssAcceptor::create(strict);
    ASSERT_TRUE(server.ok());
    const Status status = authenticate(**client, **server);
    ASSERT_TRUE(status.ok()) << status.error().message;
    EXPECT_TRUE((*server)->channel_bound());

    // A TLS-intercepting proxy presents another certificate: the server's binding differs.
    auto proxied_client = GssContext::create(options);
    ASSERT_TRUE(proxied_client.ok());
    winrm::gss::AcceptorOptions behind_proxy;
    behind_proxy.channel_binding = *other_binding;
    auto proxied_server = GssAcceptor::create(behind_proxy);
    ASSERT_TRUE(proxied_server.ok());
    const Status refused = authenticate(**proxied_client, **proxied_server);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.error().message.find("channel bindings do not match"), std::string::npos)
        << refused.error().message;
    EXPECT_THAT(refused, ErrorWith(ErrorCode::kUnauthenticated,
                                   ::testing::Field(&ErrorDetail::system_kind, SystemStatusKind::kGss)));
  }
}

}  // namespace
}  // namespace wincert::testing
