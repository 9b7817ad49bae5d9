#include "sim/command/ca.hpp"

#include <openssl/pem.h>
#include <openssl/rand.h>

#include <charconv>
#include <filesystem>

#include "certstore/csr.hpp"
#include "certstore/openssl_util.hpp"
#include "common/encoding.hpp"
#include "sim/command/durable_file.hpp"

namespace wincert::sim::command {

namespace ossl = certstore::ossl;
using certstore::SanType;
using certstore::SubjectAltName;

struct CertificateAuthority::Keys {
  ossl::X509Ptr cert;
  ossl::PKeyPtr key;
};

namespace {

using X509NamePtr = std::unique_ptr<X509_NAME, ossl::Deleter<X509_NAME_free>>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, ossl::Deleter<X509_EXTENSION_free>>;
using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, ossl::Deleter<ASN1_INTEGER_free>>;

// OpenSSL failed on data this simulator made or checked itself: a bug or a broken library (internal).
// Input that OpenSSL rejects (a CA file, a CSR from a client) passes kInvalidArgument.
Error openssl_error(std::string what, ErrorCode code = ErrorCode::kInternal) {
  const std::string detail = ossl::drain_errors();
  return Error::make(code, detail.empty() ? what : what + ": " + detail);
}

// Maps the attribute names Windows and Command use to the names OpenSSL knows.
std::string openssl_attribute(std::string_view name) {
  const std::string upper = to_upper(name);
  if (upper == "S") return "ST";
  if (upper == "E" || upper == "EMAIL" || upper == "EMAILADDRESS") return "emailAddress";
  if (upper == "SERIALNUMBER") return "serialNumber";
  if (upper == "G" || upper == "GIVENNAME") return "GN";
  if (upper == "STREET") return "street";
  if (upper == "T" || upper == "TITLE") return "title";
  if (upper == "CN" || upper == "O" || upper == "OU" || upper == "L" || upper == "ST" || upper == "C" ||
      upper == "DC" || upper == "SN")
    return upper;
  return std::string(name);  // an OID in dotted form, or a name OpenSSL may know
}

// "CN=a, O=""Keyfactor, Inc"", C=US" or with backslash escapes -> X509_NAME in DER order (least specific first).
Result<X509NamePtr> parse_subject(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> rdns;
  std::string current;
  bool in_quotes = false;
  auto flush = [&]() -> Status {
    const std::string_view rdn = trim(current);
    if (rdn.empty()) {
      current.clear();
      return {};
    }
    const auto eq = rdn.find('=');
    if (eq == std::string_view::npos || eq == 0)
      return Error::invalid_argument("the subject part '" + std::string(rdn) + "' is not NAME=VALUE");
    std::string value(trim(rdn.substr(eq + 1)));
    rdns.emplace_back(std::string(trim(rdn.substr(0, eq))), std::move(value));
    current.clear();
    return {};
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\' && i + 1 < text.size()) {
      current += text[++i];
    } else if (c == '"') {
      if (in_quotes && i + 1 < text.size() && text[i + 1] == '"') {
        ++i;  // a doubled quote inside quotes is the quotes certreq wants: keep them out of the value
      } else {
        in_quotes = !in_quotes;
      }
    } else if (c == ',' && !in_quotes) {
      WINCERT_TRY(flush());
    } else {
      current += c;
    }
  }
  if (in_quotes) return Error::invalid_argument("the subject has an unclosed quote");
  WINCERT_TRY(flush());
  if (rdns.empty()) return Error::invalid_argument("the subject is empty");
  X509NamePtr name(X509_NAME_new());
  for (auto it = rdns.rbegin(); it != rdns.rend(); ++it) {
    const std::string attribute = openssl_attribute(it->first);
    if (X509_NAME_add_entry_by_txt(name.get(), attribute.c_str(), MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(it->second.data()),
                                   static_cast<int>(it->second.size()), -1, 0) != 1) {
      ossl::drain_errors();
      return Error::invalid_argument("the subject attribute '" + it->first + "' is unknown or its value is invalid");
    }
  }
  return name;
}

Result<ossl::PKeyPtr> generate_key(std::string_view key_type, std::string_view key_size) {
  if (iequals(key_type, "RSA")) {
    int bits = 2048;
    if (!key_size.empty()) {
      auto [end, ec] = std::from_chars(key_size.data(), key_size.data() + key_size.size(), bits);
      if (ec != std::errc() || end != key_size.data() + key_size.size())
        return Error::invalid_argument("RSA key size '" + std::string(key_size) + "' is not a number");
    }
    if (bits < 1024 || bits > 8192) return Error::invalid_argument("RSA key size must be between 1024 and 8192 bits");
    ossl::PKeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)));
    if (!key) return openssl_error("RSA key generation failed");
    return key;
  }
  if (iequals(key_type, "EC") || iequals(key_type, "ECC") || iequals(key_type, "ECDSA")) {
    std::string digits;
    for (char c : key_size) {
      if (c >= '0' && c <= '9') digits += c;
    }
    const char* curve = digits == "384"                     ? "P-384"
                        : digits == "521"                   ? "P-521"
                        : digits == "256" || digits.empty() ? "P-256"
                                                            : nullptr;
    if (curve == nullptr)
      return Error::invalid_argument("EC curve '" + std::string(key_size) + "' is not P-256, P-384 or P-521");
    ossl::PKeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
    if (!key) return openssl_error("EC key generation failed");
    return key;
  }
  return Error::invalid_argument("key type '" + std::string(key_type) + "' is not RSA or ECC");
}

Status add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) return openssl_error("cannot add the certificate extension");
  return {};
}

Status set_random_serial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return openssl_error("no random bytes for the serial number");
  bytes[0] &= 0x7F;  // positive
  bytes[0] |= 0x10;  // and full length, so Windows shows 32 hex digits
  ossl::BignumPtr bn(BN_bin2bn(bytes, sizeof bytes, nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr)
    return openssl_error("cannot set the serial number");
  return {};
}

GENERAL_NAME* make_general_name(const SubjectAltName& san) {
  GENERAL_NAME* name = GENERAL_NAME_new();
  if (name == nullptr) return nullptr;
  auto ia5 = [&](int type) -> GENERAL_NAME* {
    ASN1_IA5STRING* s = ASN1_IA5STRING_new();
    if (s == nullptr || ASN1_STRING_set(s, san.value.data(), static_cast<int>(san.value.size())) != 1) {
      ASN1_IA5STRING_free(s);
      GENERAL_NAME_free(name);
      return nullptr;
    }
    GENERAL_NAME_set0_value(name, type, s);
    return name;
  };
  switch (san.type) {
    case SanType::kDns:
      return ia5(GEN_DNS);
    case SanType::kEmail:
      return ia5(GEN_EMAIL);
    case SanType::kUri:
      return ia5(GEN_URI);
    case SanType::kIp: {
      ASN1_OCTET_STRING* ip = a2i_IPADDRESS(san.value.c_str());
      if (ip == nullptr) break;
      GENERAL_NAME_set0_value(name, GEN_IPADD, ip);
      return name;
    }
    case SanType::kUpn: {
      ASN1_TYPE* value = ASN1_TYPE_new();
      ASN1_UTF8STRING* text = ASN1_UTF8STRING_new();
      if (value == nullptr || text == nullptr ||
          ASN1_STRING_set(text, san.value.data(), static_cast<int>(san.value.size())) != 1) {
        ASN1_TYPE_free(value);
        ASN1_UTF8STRING_free(text);
        break;
      }
      ASN1_TYPE_set(value, V_ASN1_UTF8STRING, text);
      if (GENERAL_NAME_set0_othername(name, OBJ_nid2obj(NID_ms_upn), value) != 1) {
        ASN1_TYPE_free(value);
        break;
      }
      return name;
    }
    case SanType::kOther:
      break;
  }
  GENERAL_NAME_free(name);
  ossl::drain_errors();
  return nullptr;
}

Status add_sans(X509* cert, const std::vector<SubjectAltName>& sans, bool critical) {
  if (sans.empty()) return {};
  ossl::GeneralNamesPtr names(GENERAL_NAMES_new());
  for (const auto& san : sans) {
    GENERAL_NAME* name = make_general_name(san);
    if (name == nullptr)
      return Error::invalid_argument("the subject alternative name '" + san.value + "' is not valid for its type");
    sk_GENERAL_NAME_push(names.get(), name);
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), critical ? 1 : 0, X509V3_ADD_DEFAULT) != 1)
    return openssl_error("cannot add the subjectAltName extension");
  return {};
}

std::string der_of(X509* cert) {
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert, &der);
  std::string out;
  if (len > 0) out.assign(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

Result<IssuedCertificate> describe(X509* cert) {
  IssuedCertificate out;
  out.der = der_of(cert);
  WINCERT_ASSIGN_OR_RETURN(auto info, certstore::parse_certificate_der(out.der));
  out.info = std::move(info);
  return out;
}

// Builds and signs an end-entity certificate for `public_key` with the given subject.
Result<ossl::X509Ptr> build_leaf(X509* ca_cert, const X509_NAME* subject, EVP_PKEY* public_key, int validity_days,
                                 CertificateUse use) {
  if (validity_days < 1 || validity_days > 36500) return Error::invalid_argument("validity must be 1..36500 days");
  ossl::X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1) return openssl_error("cannot create a certificate");
  WINCERT_TRY(set_random_serial(cert.get()));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -300);  // tolerate small clock differences
  X509_time_adj_ex(X509_getm_notAfter(cert.get()), validity_days, 0, nullptr);
  if (X509_set_subject_name(cert.get(), subject) != 1 ||
      X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert)) != 1 ||
      X509_set_pubkey(cert.get(), public_key) != 1)
    return openssl_error("cannot fill in the certificate");
  const bool rsa = EVP_PKEY_is_a(public_key, "RSA") == 1;
  WINCERT_TRY(add_extension(cert.get(), ca_cert, NID_basic_constraints, "critical,CA:FALSE"));
  WINCERT_TRY(
      add_extension(cert.get(), ca_cert, NID_key_usage,
                    rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature,keyAgreement"));
  const char* eku = use == CertificateUse::kClientOnly   ? "clientAuth"
                    : use == CertificateUse::kServerOnly ? "serverAuth"
                                                         : "serverAuth,clientAuth";
  WINCERT_TRY(add_extension(cert.get(), ca_cert, NID_ext_key_usage, eku));
  WINCERT_TRY(add_extension(cert.get(), ca_cert, NID_subject_key_identifier, "hash"));
  WINCERT_TRY(add_extension(cert.get(), ca_cert, NID_authority_key_identifier, "keyid:always"));
  return cert;
}

Status sign(X509* cert, EVP_PKEY* key) {
  if (X509_sign(cert, key, EVP_sha256()) <= 0) return openssl_error("signing the certificate failed");
  return {};
}

}  // namespace

CertificateAuthority::CertificateAuthority(std::unique_ptr<Keys> keys) : keys_(std::move(keys)) {}
CertificateAuthority::CertificateAuthority(CertificateAuthority&&) noexcept = default;
CertificateAuthority& CertificateAuthority::operator=(CertificateAuthority&&) noexcept = default;
CertificateAuthority::~CertificateAuthority() = default;

Result<CertificateAuthority> CertificateAuthority::load_or_create(const std::string& state_dir,
                                                                  const std::string& cert_file,
                                                                  const std::string& key_file) {
  namespace fs = std::filesystem;
  if (cert_file.empty() != key_file.empty()) return Error::invalid_argument("--ca-cert and --ca-key go together");
  const std::string cert_path = cert_file.empty() ? (fs::path(state_dir) / "ca.pem").string() : cert_file;
  const std::string key_path = key_file.empty() ? (fs::path(state_dir) / "ca.key").string() : key_file;
  auto keys = std::make_unique<Keys>();
  std::error_code ec;
  if (cert_file.empty() && !fs::exists(cert_path, ec)) {
    // First start: a self-signed RSA CA valid for ten years.
    WINCERT_ASSIGN_OR_RETURN(auto key, generate_key("RSA", "2048"));
    ossl::X509Ptr cert(X509_new());
    WINCERT_ASSIGN_OR_RETURN(auto name, parse_subject("CN=command-sim CA, O=wincert-agent simulator"));
    if (!cert || X509_set_version(cert.get(), 2) != 1) return openssl_error("cannot create the CA certificate");
    WINCERT_TRY(set_random_serial(cert.get()));
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -300);
    X509_time_adj_ex(X509_getm_notAfter(cert.get()), 3650, 0, nullptr);
    if (X509_set_subject_name(cert.get(), name.get()) != 1 || X509_set_issuer_name(cert.get(), name.get()) != 1 ||
        X509_set_pubkey(cert.get(), key.get()) != 1)
      return openssl_error("cannot fill in the CA certificate");
    WINCERT_TRY(add_extension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE"));
    WINCERT_TRY(add_extension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature"));
    WINCERT_TRY(add_extension(cert.get(), cert.get(), NID_subject_key_identifier, "hash"));
    WINCERT_TRY(add_extension(cert.get(), cert.get(), NID_authority_key_identifier, "keyid:always"));
    WINCERT_TRY(sign(cert.get(), key.get()));
    ossl::BioPtr key_bio(BIO_new(BIO_s_mem()));
    ossl::BioPtr cert_bio(BIO_new(BIO_s_mem()));
    if (PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
        PEM_write_bio_X509(cert_bio.get(), cert.get()) != 1)
      return openssl_error("cannot encode the CA");
    char* data = nullptr;
    long len = BIO_get_mem_data(key_bio.get(), &data);
    Secret key_pem(std::string(data, static_cast<std::size_t>(len)));
    len = BIO_get_mem_data(cert_bio.get(), &data);
    const std::string cert_pem(data, static_cast<std::size_t>(len));
    // The key first: a certificate without its key would make the next start fail.
    WINCERT_TRY(write_file_durably(key_path, key_pem.reveal(), 0600));
    WINCERT_TRY(write_file_durably(cert_path, cert_pem, 0644));
    keys->cert = std::move(cert);
    keys->key = std::move(key);
  } else {
    WINCERT_ASSIGN_OR_RETURN(auto cert_pem, read_small_file(cert_path, 1 << 20));
    WINCERT_ASSIGN_OR_RETURN(auto key_pem, read_small_file(key_path, 1 << 20));
    const Secret key_text(std::move(key_pem));
    ossl::BioPtr cert_bio(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
    ossl::BioPtr key_bio(BIO_new_mem_buf(key_text.reveal().data(), static_cast<int>(key_text.reveal().size())));
    keys->cert.reset(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
    if (!keys->cert)
      return openssl_error("the CA certificate " + cert_path + " is not a PEM certificate",
                           ErrorCode::kInvalidArgument);
    keys->key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
    if (!keys->key)
      return openssl_error("the CA key " + key_path + " is not an unencrypted PEM private key",
                           ErrorCode::kInvalidArgument);
    if (X509_check_private_key(keys->cert.get(), keys->key.get()) != 1)
      return openssl_error("the CA key " + key_path + " does not belong to " + cert_path, ErrorCode::kInvalidArgument);
  }
  CertificateAuthority ca(std::move(keys));
  WINCERT_ASSIGN_OR_RETURN(auto described, describe(ca.keys_->cert.get()));
  ca.der_ = std::move(described.der);
  ca.info_ = std::move(described.info);
  return ca;
}

std::string CertificateAuthority::certificate_pem() const {
  ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), keys_->cert.get());
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

Result<IssuedCertificate> CertificateAuthority::sign_request(std::string_view csr, int validity_days,
                                                             CertificateUse use) const {
  WINCERT_ASSIGN_OR_RETURN(auto parsed, certstore::parse_csr(csr));
  if (!parsed.signature_valid) return Error::invalid_argument("the certificate request's signature does not verify");
  const auto* p = reinterpret_cast<const unsigned char*>(parsed.der.data());
  ossl::X509ReqPtr req(d2i_X509_REQ(nullptr, &p, static_cast<long>(parsed.der.size())));
  if (!req) return openssl_error("the certificate request cannot be decoded", ErrorCode::kInvalidArgument);
  EVP_PKEY* public_key = X509_REQ_get0_pubkey(req.get());
  if (public_key == nullptr) return Error::invalid_argument("the certificate request has no public key");
  WINCERT_ASSIGN_OR_RETURN(
      auto cert, build_leaf(keys_->cert.get(), X509_REQ_get_subject_name(req.get()), public_key, validity_days, use));
  // The SANs exactly as requested (the extension is copied, not rebuilt, so nothing is lost in translation).
  using ExtensionStackPtr = std::unique_ptr<STACK_OF(X509_EXTENSION), decltype([](STACK_OF(X509_EXTENSION) * s) {
                                              sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free);
                                            })>;
  ExtensionStackPtr requested(X509_REQ_get_extensions(req.get()));
  if (requested) {
    for (int i = 0; i < sk_X509_EXTENSION_num(requested.get()); ++i) {
      X509_EXTENSION* ext = sk_X509_EXTENSION_value(requested.get(), i);
      if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_subject_alt_name) continue;
      // RFC 5280: with an empty subject the SAN extension must be critical.
      if (X509_NAME_entry_count(X509_REQ_get_subject_name(req.get())) == 0) X509_EXTENSION_set_critical(ext, 1);
      if (X509_add_ext(cert.get(), ext, -1) != 1) return openssl_error("cannot copy the requested SANs");
    }
  }
  ERR_clear_error();
  WINCERT_TRY(sign(cert.get(), keys_->key.get()));
  return describe(cert.get());
}

Result<IssuedKeyPair> CertificateAuthority::issue(const NewKeyRequest& request) const {
  WINCERT_ASSIGN_OR_RETURN(auto key, generate_key(request.key_type, request.key_size));
  WINCERT_ASSIGN_OR_RETURN(auto name, parse_subject(request.subject));
  WINCERT_ASSIGN_OR_RETURN(auto cert,
                           build_leaf(keys_->cert.get(), name.get(), key.get(), request.validity_days, request.use));
  WINCERT_TRY(add_sans(cert.get(), request.sans, X509_NAME_entry_count(name.get()) == 0));
  WINCERT_TRY(sign(cert.get(), keys_->key.get()));
  WINCERT_ASSIGN_OR_RETURN(auto described, describe(cert.get()));
  ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return openssl_error("cannot encode the private key");
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  IssuedKeyPair out{std::move(described), Secret(std::string(data, static_cast<std::size_t>(len)))};
  OPENSSL_cleanse(data, static_cast<std::size_t>(len));
  return out;
}

Result<std::string> CertificateAuthority::make_pfx(const IssuedKeyPair& pair, const Secret& password,
                                                   std::string_view friendly_name, bool legacy_encryption) const {
  const std::string& pem = pair.private_key_pem.reveal();
  ossl::BioPtr key_bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  ossl::PKeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!key) return openssl_error("cannot read the private key");
  const auto* p = reinterpret_cast<const unsigned char*>(pair.certificate.der.data());
  ossl::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(pair.certificate.der.size())));
  if (!cert) return openssl_error("cannot read the certificate");
  ossl::X509StackPtr chain(sk_X509_new_null());
  X509_up_ref(keys_->cert.get());
  sk_X509_push(chain.get(), keys_->cert.get());
  const std::string name(friendly_name);
  const int nid = legacy_encryption ? NID_pbe_WithSHA1And3_Key_TripleDES_CBC : 0;
  ossl::Pkcs12Ptr p12(PKCS12_create(password.reveal().c_str(), name.empty() ? nullptr : name.c_str(), key.get(),
                                    cert.get(), chain.get(), nid, nid, 0, 0, 0));
  if (!p12) return openssl_error("cannot build the PFX");
  unsigned char* der = nullptr;
  const int len = i2d_PKCS12(p12.get(), &der);
  if (len <= 0) return openssl_error("cannot encode the PFX");
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

Result<std::vector<SubjectAltName>> sans_from_dictionary(
    const std::vector<std::pair<std::string, std::string>>& entries) {
  std::vector<SubjectAltName> out;
  for (const auto& [key, value] : entries) {
    auto type = certstore::san_type_from_key(key);
    if (!type) return Error::invalid_argument("unknown SAN type '" + key + "' (dns, ip, email, uri, upn)");
    out.push_back({*type, value});
  }
  return out;
}

}  // namespace wincert::sim::command
