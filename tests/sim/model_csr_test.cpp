// csr-create and csr-accept: real keys (RSA, EC P-256/384/521) kept as pending containers, real PKCS#10
// requests checked with OpenSSL, and the issued certificate linked back to its key.
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certstore/csr.hpp"
#include "common/encoding.hpp"
#include "model_test_support.hpp"
#include "sim/winhost/model/crypto.hpp"

namespace wincert::sim::model::testing {
namespace {

using nlohmann::json;

struct ReqDeleter {
  void operator()(X509_REQ* r) const { X509_REQ_free(r); }
};
struct KeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

// OpenSSL's own view of the request: signature, RFC 2253 subject, SAN text, key type.
struct OpenSslView {
  bool signature_ok = false;
  std::string subject;
  std::string sans;
  std::string key_type;
  int bits = 0;
};

OpenSslView inspect(const std::string& der) {
  OpenSslView v;
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<X509_REQ, ReqDeleter> req(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
  EXPECT_NE(req, nullptr);
  if (!req) return v;
  std::unique_ptr<EVP_PKEY, KeyDeleter> key(X509_REQ_get_pubkey(req.get()));
  v.signature_ok = X509_REQ_verify(req.get(), key.get()) == 1;
  v.key_type = EVP_PKEY_get0_type_name(key.get());
  v.bits = EVP_PKEY_get_bits(key.get());
  BIO* bio = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(bio, X509_REQ_get_subject_name(req.get()), 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  v.subject.assign(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req.get());
  for (int i = 0; exts && i < sk_X509_EXTENSION_num(exts); ++i) {
    X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts, i);
    if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_subject_alt_name) continue;
    BIO* out = BIO_new(BIO_s_mem());
    X509V3_EXT_print(out, ext, 0, 0);
    n = BIO_get_mem_data(out, &data);
    v.sans.assign(data, static_cast<std::size_t>(n));
    BIO_free(out);
  }
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  return v;
}

TEST_F(ModelTest, CsrCreateGoldenContractExampleEcP256WithEscapedCommaAndSans) {
  auto golden = contract("csr-create");
  auto out = ok("csr-create", golden["args"]);
  expect_same_shape(out, golden["output"]);
  EXPECT_EQ(out["ProviderName"], "Microsoft Software Key Storage Provider");
  auto der = base64_decode(out["Csr"].get<std::string>()).value();
  auto v = inspect(der);
  EXPECT_TRUE(v.signature_ok);
  EXPECT_EQ(v.subject, "CN=web01.example.com,O=Keyfactor\\, Inc,C=US");
  EXPECT_EQ(v.sans, "DNS:web01.example.com, DNS:web01, IP Address:2001:DB8:0:0:0:0:0:21");
  EXPECT_EQ(v.key_type, "EC");
  EXPECT_EQ(v.bits, 256);
  // Same facts as the golden example's CSR, through certstore's own parser.
  auto mine = certstore::parse_csr(der);
  auto theirs = certstore::parse_csr(golden["output"]["Csr"].get<std::string>());
  ASSERT_TRUE(mine && theirs);
  EXPECT_TRUE(mine->signature_valid);
  EXPECT_EQ(mine->subject, theirs->subject);
  EXPECT_EQ(mine->sans, theirs->sans);
  EXPECT_EQ(mine->key, theirs->key);

  // A pending key container with the requested provider, holding the key that signed the request.
  ASSERT_EQ(data()["keys"].size(), 1u);
  const auto& key = data()["keys"].begin().value();
  EXPECT_EQ(key["pending"], true);
  EXPECT_EQ(key["provider"], "Microsoft Software Key Storage Provider");
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<X509_REQ, ReqDeleter> req(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
  std::unique_ptr<EVP_PKEY, KeyDeleter> pub(X509_REQ_get_pubkey(req.get()));
  unsigned char* spki = nullptr;
  int n = i2d_PUBKEY(pub.get(), &spki);
  EXPECT_EQ(private_key_public_key(key["private_key_pem"].get<std::string>()),
            std::string(reinterpret_cast<char*>(spki), static_cast<std::size_t>(n)));
  OPENSSL_free(spki);
  EXPECT_TRUE(store("My").empty());  // nothing installed until csr-accept
}

TEST_F(ModelTest, CsrCreateRsaAndEveryEcCurve) {
  struct Case {
    const char* algorithm;
    int length;
    const char* type;
    int bits;
  };
  for (const Case& c : {Case{"RSA", 2048, "RSA", 2048}, Case{"RSA", 3072, "RSA", 3072},
                        Case{"ECDSA_P384", 384, "EC", 384}, Case{"ECDSA_P521", 521, "EC", 521}}) {
    auto out =
        ok("csr-create", {{"Subject", "CN=host.example.com,OU=Web;O=Example,L=Köln,C=DE"},
                          {"ProviderName", c.type == std::string("RSA") ? "Microsoft Strong Cryptographic Provider"
                                                                        : "Microsoft Software Key Storage Provider"},
                          {"KeyAlgorithm", c.algorithm},
                          {"KeyLength", c.length},
                          {"Sans",
                           {"dns=host.example.com", "ipaddress=192.0.2.7", "email=admin@example.com",
                            "upn=host$@corp.example.com", "url=https://host.example.com/"}}});
    auto v = inspect(base64_decode(out["Csr"].get<std::string>()).value());
    EXPECT_TRUE(v.signature_ok) << c.algorithm;
    EXPECT_EQ(v.key_type, c.type);
    EXPECT_EQ(v.bits, c.bits);
    EXPECT_EQ(v.subject, "CN=host.example.com,OU=Web,O=Example,L=Köln,C=DE");
    EXPECT_NE(v.sans.find("DNS:host.example.com, IP Address:192.0.2.7, email:admin@example.com, othername: "
                          "UPN::host$@corp.example.com, URI:https://host.example.com/"),
              std::string::npos)
        << "[" << v.sans << "]";
  }
  EXPECT_EQ(data()["keys"].size(), 4u);
}

TEST_F(ModelTest, CsrCreateErrors) {
  auto golden = contract("csr-create");
  json args = golden["args"];
  args["ProviderName"] = "Contoso HSM KSP";
  auto error = golden["error"]["output"]["error"];
  EXPECT_EQ(fails("csr-create", args, error["category"]), error["message"]);
  args["ProviderName"] = "";
  EXPECT_EQ(fails("csr-create", args, "InvalidArgument"), "ProviderName is empty");
  args = golden["args"];
  args["KeyAlgorithm"] = "ECC";
  EXPECT_EQ(fails("csr-create", args, "InvalidArgument"), "KeyAlgorithm 'ECC' is not one certreq accepts");
  // Legacy CSPs cannot make ECC keys: certreq fails.
  args = golden["args"];
  args["ProviderName"] = "Microsoft Enhanced RSA and AES Cryptographic Provider";
  EXPECT_NE(fails("csr-create", args, "CommandFailed").find("certreq -new failed"), std::string::npos);
  args = golden["args"];
  args["Subject"] = "CN=x,BOGUS=y";
  fails("csr-create", args, "CommandFailed");
  args = golden["args"];
  args["Sans"] = {"dns=a.example.com", "ipaddress=not-an-ip"};
  fails("csr-create", args, "CommandFailed");
  args = golden["args"];
  args["KeyAlgorithm"] = "RSA";
  args["KeyLength"] = 100;
  fails("csr-create", args, "CommandFailed");
  EXPECT_TRUE(data()["keys"].empty());  // no key is left behind by a failed request
}

TEST_F(ModelTest, CsrAcceptLinksTheIssuedCertificateToItsKeyAndMovesIt) {
  auto ca = make_cert("Model Issuing CA", make_ec_key(), nullptr, true);
  auto created = ok("csr-create", contract("csr-create")["args"]);
  auto issued = issue_from_csr(base64_decode(created["Csr"].get<std::string>()).value(), ca);
  auto out = ok("csr-accept", {{"CertificateBase64", b64(issued)}, {"StoreName", "WebHosting"}});
  expect_same_shape(out, contract("csr-accept")["output"]);
  EXPECT_EQ(
      out,
      (json{{"Thumbprint", certstore::thumbprint_of(issued)}, {"HasPrivateKey", true}, {"StoreName", "WebHosting"}}));
  EXPECT_TRUE(store("My").empty());
  ASSERT_EQ(store("WebHosting").size(), 1u);
  const std::string container = store("WebHosting")[0]["key"];
  EXPECT_EQ(data()["keys"][container]["pending"], false);
  auto inv = ok("store-inventory", {{"StoreName", "WebHosting"}});
  EXPECT_EQ(inv["Certificates"][0]["HasPrivateKey"], true);
  EXPECT_EQ(inv["Certificates"][0]["ProviderName"], "Microsoft Software Key Storage Provider");
  // The key was used once: accepting the same certificate again finds no pending request.
  auto error = contract("csr-accept")["error"]["output"]["error"];
  EXPECT_EQ(fails("csr-accept", {{"CertificateBase64", b64(issued)}, {"StoreName", "My"}}, error["category"]),
            error["message"]);
  // And it is usable for IIS straight away.
  ok("iis-bind", {{"SiteName", "Default Web Site"},
                  {"BindingInformation", "*:443:web01.example.com"},
                  {"SslFlags", 1},
                  {"Thumbprint", out["Thumbprint"]},
                  {"StoreName", "WebHosting"}});
}

TEST_F(ModelTest, CsrAcceptIntoMyAndErrors) {
  auto ca = make_cert("Model Issuing CA", make_rsa_key(), nullptr, true);
  auto created = ok("csr-create", {{"Subject", "CN=sql01.example.com"},
                                   {"ProviderName", "Microsoft Software Key Storage Provider"},
                                   {"KeyAlgorithm", "RSA"},
                                   {"KeyLength", 2048}});
  auto issued = issue_from_csr(base64_decode(created["Csr"].get<std::string>()).value(), ca);
  fails("csr-accept", {{"CertificateBase64", b64(issued)}, {"StoreName", "Nope"}}, "StoreNotFound");
  fails("csr-accept", {{"CertificateBase64", "%%%"}, {"StoreName", "My"}}, "NotSpecified");
  fails("csr-accept", {{"CertificateBase64", b64("not a certificate")}, {"StoreName", "My"}}, "NotSpecified");
  // A certificate for some other key.
  auto stranger = make_cert("stranger.example.com", make_rsa_key(), &ca, false);
  fails("csr-accept", {{"CertificateBase64", b64(stranger.der)}, {"StoreName", "My"}}, "CommandFailed");
  auto out = ok("csr-accept", {{"CertificateBase64", b64(issued)}, {"StoreName", "My"}});
  EXPECT_EQ(out["HasPrivateKey"], true);
  ASSERT_EQ(store("My").size(), 1u);
  // The installed certificate binds to SQL Server, whose key file gets the service account's ACL.
  auto bound =
      ok("sql-bind", {{"InstanceNames", {"MSSQLSERVER"}}, {"Thumbprint", out["Thumbprint"]}, {"StoreName", "My"}});
  EXPECT_EQ(bound["Instances"][0]["Verified"], true);
  EXPECT_EQ(data()["keys"][store("My")[0]["key"].get<std::string>()]["acl"], json::array({"NT Service\\MSSQLSERVER"}));
}

}  // namespace
}  // namespace wincert::sim::model::testing
