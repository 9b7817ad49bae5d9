#include "sim/winhost/model/crypto.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <climits>
#include <memory>

#include "certstore/openssl_util.hpp"
#include "common/encoding.hpp"

namespace wincert::sim::model {
namespace {

using namespace certstore::ossl;  // the RAII owners and error text certstore uses
using ReqPtr = X509ReqPtr;

// PFX files made by older Windows use RC2/3DES: read them in certstore's context that has the legacy provider.
const PfxLibraryContext& pfx_context() { return pfx_library_context(); }

const unsigned char* bytes_of(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

PKeyPtr load_private_key(std::string_view pem) {
  if (pem.size() > INT_MAX) return nullptr;
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return nullptr;
  PKeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  return key;
}

std::string public_key_der(const EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int length = i2d_PUBKEY(key, &der);
  std::string out;
  if (length > 0) out.assign(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length));
  OPENSSL_free(der);
  return out;
}

Result<std::string> private_key_to_pem(const EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return Error::internal("could not encode a private key: " + drain_errors());
  }
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(length));
}

// certreq's X.500 attribute keywords (CertStrToName) to OpenSSL NIDs.
int attribute_nid(std::string_view type) {
  const std::string t = to_upper(type);
  struct Entry {
    const char* name;
    int nid;
  };
  static const Entry kTable[] = {
      {"CN", NID_commonName},
      {"O", NID_organizationName},
      {"OU", NID_organizationalUnitName},
      {"L", NID_localityName},
      {"S", NID_stateOrProvinceName},
      {"ST", NID_stateOrProvinceName},
      {"C", NID_countryName},
      {"E", NID_pkcs9_emailAddress},
      {"EMAIL", NID_pkcs9_emailAddress},
      {"DC", NID_domainComponent},
      {"STREET", NID_streetAddress},
      {"T", NID_title},
      {"TITLE", NID_title},
      {"G", NID_givenName},
      {"GIVENNAME", NID_givenName},
      {"I", NID_initials},
      {"INITIALS", NID_initials},
      {"SN", NID_surname},
      {"SERIALNUMBER", NID_serialNumber},
      {"POSTALCODE", NID_postalCode},
      {"DESCRIPTION", NID_description},
  };
  for (const auto& e : kTable) {
    if (t == e.name) return e.nid;
  }
  return NID_undef;
}

ObjectPtr attribute_object(std::string_view type) {
  if (int nid = attribute_nid(type); nid != NID_undef) return ObjectPtr(OBJ_nid2obj(nid));
  std::string oid(type);
  if (istarts_with(oid, "OID.")) oid = oid.substr(4);
  if (oid.empty() || oid.find_first_not_of("0123456789.") != std::string::npos) return nullptr;
  ObjectPtr obj(OBJ_txt2obj(oid.c_str(), 1));
  ERR_clear_error();
  return obj;
}

}  // namespace

ContentType content_type(std::string_view bytes) {
  if (bytes.empty() || bytes.size() > INT_MAX) return ContentType::kUnknown;
  const unsigned char* p = bytes_of(bytes);
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(bytes.size())));
  if (cert && p == bytes_of(bytes) + bytes.size()) return ContentType::kCert;
  ERR_clear_error();
  p = bytes_of(bytes);
  Pkcs12Ptr p12(d2i_PKCS12(nullptr, &p, static_cast<long>(bytes.size())));
  ERR_clear_error();
  return p12 ? ContentType::kPfx : ContentType::kUnknown;
}

std::string certificate_public_key(std::string_view cert_der) {
  if (cert_der.empty() || cert_der.size() > INT_MAX) return {};
  const unsigned char* p = bytes_of(cert_der);
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(cert_der.size())));
  if (!cert) {
    ERR_clear_error();
    return {};
  }
  const EVP_PKEY* key = X509_get0_pubkey(cert.get());
  std::string out = key ? public_key_der(key) : std::string();
  ERR_clear_error();
  return out;
}

std::string private_key_public_key(std::string_view private_key_pem) {
  auto key = load_private_key(private_key_pem);
  return key ? public_key_der(key.get()) : std::string();
}

std::string private_key_family(std::string_view private_key_pem) {
  auto key = load_private_key(private_key_pem);
  if (!key) return {};
  if (EVP_PKEY_is_a(key.get(), "RSA")) return "RSA";
  if (EVP_PKEY_is_a(key.get(), "EC")) return "EC";
  return "OTHER";
}

Result<std::optional<std::string>> pfx_private_key_pem(std::string_view pfx_der, const Secret& password) {
  const auto& ctx = pfx_context();
  if (!ctx.context) return Error::internal("OpenSSL could not create a library context for PFX reading");
  if (pfx_der.empty() || pfx_der.size() > INT_MAX / 2) return Error::invalid_argument("the PFX is empty or too large");
  ERR_clear_error();
  PKCS12* raw = PKCS12_init_ex(NID_pkcs7_data, ctx.context.get(), nullptr);
  const unsigned char* p = bytes_of(pfx_der);
  PKCS12* parsed = d2i_PKCS12(&raw, &p, static_cast<long>(pfx_der.size()));
  if (parsed == nullptr) {
    PKCS12_free(raw);
    drain_errors();
    return Error::invalid_argument("the PFX is corrupt");
  }
  Pkcs12Ptr p12(parsed);
  const std::string& pass = password.reveal();
  const char* pass_to_use = pass.c_str();
  // Windows treats the empty and the absent password alike; PKCS#12 encodes them differently.
  if (pass.empty() && PKCS12_mac_present(p12.get()) == 1 && PKCS12_verify_mac(p12.get(), pass.c_str(), 0) != 1 &&
      PKCS12_verify_mac(p12.get(), nullptr, 0) == 1) {
    pass_to_use = nullptr;
  }
  EVP_PKEY* key_raw = nullptr;
  X509* cert_raw = nullptr;
  STACK_OF(X509)* others_raw = nullptr;
  const int ok = PKCS12_parse(p12.get(), pass_to_use, &key_raw, &cert_raw, &others_raw);
  PKeyPtr key(key_raw);
  X509Ptr cert(cert_raw);
  X509StackPtr others(others_raw);
  if (ok != 1) {
    drain_errors();
    return Error::invalid_argument("the PFX could not be decrypted");
  }
  ERR_clear_error();
  if (!key) return std::optional<std::string>{};
  WINCERT_ASSIGN_OR_RETURN(auto pem, private_key_to_pem(key.get()));
  return std::optional<std::string>(std::move(pem));
}

bool pfx_password_is_wrong(std::string_view pfx_der, const Secret& password) {
  const auto& ctx = pfx_context();
  if (!ctx.context || pfx_der.empty() || pfx_der.size() > INT_MAX / 2) return false;
  ERR_clear_error();
  PKCS12* raw = PKCS12_init_ex(NID_pkcs7_data, ctx.context.get(), nullptr);
  const unsigned char* p = bytes_of(pfx_der);
  PKCS12* parsed = d2i_PKCS12(&raw, &p, static_cast<long>(pfx_der.size()));
  if (parsed == nullptr) {
    PKCS12_free(raw);
    drain_errors();
    return false;
  }
  Pkcs12Ptr p12(parsed);
  const std::string& pass = password.reveal();
  bool wrong = false;
  if (PKCS12_mac_present(p12.get()) == 1) {
    wrong = PKCS12_verify_mac(p12.get(), pass.c_str(), static_cast<int>(pass.size())) != 1 &&
            !(pass.empty() && PKCS12_verify_mac(p12.get(), nullptr, 0) == 1);
  } else {
    EVP_PKEY* key_raw = nullptr;
    X509* cert_raw = nullptr;
    STACK_OF(X509)* others_raw = nullptr;
    wrong = PKCS12_parse(p12.get(), pass.empty() ? nullptr : pass.c_str(), &key_raw, &cert_raw, &others_raw) != 1;
    PKeyPtr key(key_raw);
    X509Ptr cert(cert_raw);
    X509StackPtr others(others_raw);
  }
  drain_errors();
  return wrong;
}

Result<GeneratedKey> generate_key(std::string_view key_algorithm, int key_length) {
  const std::string alg = to_upper(key_algorithm);
  PKeyPtr key;
  if (alg == "RSA") {
    if (key_length < 512 || key_length > 16384 || key_length % 8 != 0) {
      return Error::invalid_argument("RSA key length " + std::to_string(key_length) + " is not supported");
    }
    key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(key_length)));
  } else {
    const char* curve = alg == "ECDSA_P256"   ? "P-256"
                        : alg == "ECDSA_P384" ? "P-384"
                        : alg == "ECDSA_P521" ? "P-521"
                                              : nullptr;
    if (curve == nullptr)
      return Error::invalid_argument("key algorithm '" + std::string(key_algorithm) + "' is not supported");
    key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
  }
  if (!key) return Error::internal("key generation failed: " + drain_errors());
  WINCERT_ASSIGN_OR_RETURN(auto pem, private_key_to_pem(key.get()));
  return GeneratedKey{std::move(pem), public_key_der(key.get())};
}

Result<std::vector<NameAttribute>> parse_certreq_subject(std::string_view inf_subject) {
  // Inside the INF's Subject="..." a literal quote is written twice.
  std::string text;
  for (std::size_t i = 0; i < inf_subject.size(); ++i) {
    text += inf_subject[i];
    if (inf_subject[i] == '"' && i + 1 < inf_subject.size() && inf_subject[i + 1] == '"') ++i;
  }
  std::vector<NameAttribute> out;
  std::size_t i = 0;
  auto skip_spaces = [&] {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
  };
  while (true) {
    skip_spaces();
    if (i >= text.size()) break;
    const std::size_t eq = text.find('=', i);
    if (eq == std::string::npos) return Error::invalid_argument("'" + text.substr(i) + "' has no '='");
    std::string type(trim(std::string_view(text).substr(i, eq - i)));
    if (type.empty()) return Error::invalid_argument("an attribute without a name");
    i = eq + 1;
    skip_spaces();
    std::string value;
    if (i < text.size() && text[i] == '"') {
      ++i;
      bool closed = false;
      while (i < text.size()) {
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            value += '"';
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        value += text[i++];
      }
      if (!closed) return Error::invalid_argument("the value of " + type + " has no closing quote");
      skip_spaces();
      if (i < text.size() && text[i] != ',' && text[i] != ';' && text[i] != '+') {
        return Error::invalid_argument("text after the quoted value of " + type);
      }
    } else {
      const std::size_t end = text.find_first_of(",;+", i);
      value =
          std::string(trim(std::string_view(text).substr(i, end == std::string::npos ? std::string::npos : end - i)));
      i = end == std::string::npos ? text.size() : end;
    }
    out.push_back({std::move(type), std::move(value)});
    if (i < text.size()) ++i;  // the separator
  }
  return out;
}

Result<SanEntry> parse_certreq_san(std::string_view entry) {
  const std::size_t eq = entry.find('=');
  if (eq == std::string_view::npos) return Error::invalid_argument("SAN entry '" + std::string(entry) + "' has no '='");
  SanEntry san{to_lower(trim(entry.substr(0, eq))), std::string(trim(entry.substr(eq + 1)))};
  if (san.type != "dns" && san.type != "ipaddress" && san.type != "email" && san.type != "upn" && san.type != "url") {
    return Error::invalid_argument("SAN type '" + san.type + "' is not one certreq knows");
  }
  if (san.value.empty()) return Error::invalid_argument("SAN entry '" + std::string(entry) + "' has an empty value");
  return san;
}

Result<std::string> make_csr(std::string_view private_key_pem, const std::vector<NameAttribute>& subject,
                             const std::vector<SanEntry>& sans) {
  auto key = load_private_key(private_key_pem);
  if (!key) return Error::invalid_argument("the key container holds no readable private key");
  ReqPtr req(X509_REQ_new());
  NamePtr name(X509_NAME_new());
  if (!req || !name || X509_REQ_set_version(req.get(), 0) != 1) return Error::resource_exhausted("out of memory");
  // The text is most specific first; the DER starts with the least specific (C=, O=, ..., CN=).
  for (auto it = subject.rbegin(); it != subject.rend(); ++it) {
    auto obj = attribute_object(it->type);
    if (!obj) return Error::invalid_argument("unknown subject attribute '" + it->type + "'");
    if (X509_NAME_add_entry_by_OBJ(name.get(), obj.get(), MBSTRING_UTF8, bytes_of(it->value),
                                   static_cast<int>(it->value.size()), -1, 0) != 1) {
      drain_errors();
      return Error::invalid_argument("the value of " + it->type + " is not valid for that attribute");
    }
  }
  if (X509_REQ_set_subject_name(req.get(), name.get()) != 1 || X509_REQ_set_pubkey(req.get(), key.get()) != 1) {
    return Error::internal("could not build the request: " + drain_errors());
  }
  if (!sans.empty()) {
    GeneralNamesPtr names(GENERAL_NAMES_new());
    if (!names) return Error::resource_exhausted("out of memory");
    for (const auto& san : sans) {
      GeneralNamePtr gn;
      if (san.type == "ipaddress") {
        ASN1_OCTET_STRING* ip = a2i_IPADDRESS(san.value.c_str());
        if (ip == nullptr) {
          ERR_clear_error();
          return Error::invalid_argument("'" + san.value + "' is not an IP address");
        }
        gn.reset(GENERAL_NAME_new());
        if (!gn) {
          ASN1_OCTET_STRING_free(ip);
          return Error::resource_exhausted("out of memory");
        }
        GENERAL_NAME_set0_value(gn.get(), GEN_IPADD, ip);
      } else if (san.type == "upn") {
        ASN1_TYPE* value = ASN1_TYPE_new();
        ASN1_UTF8STRING* text = ASN1_UTF8STRING_new();
        ASN1_OBJECT* oid = OBJ_txt2obj("1.3.6.1.4.1.311.20.2.3", 1);
        gn.reset(GENERAL_NAME_new());
        if (!value || !text || !oid || !gn ||
            ASN1_STRING_set(text, san.value.data(), static_cast<int>(san.value.size())) != 1) {
          ASN1_TYPE_free(value);
          ASN1_UTF8STRING_free(text);
          ASN1_OBJECT_free(oid);
          return Error::resource_exhausted("out of memory");
        }
        ASN1_TYPE_set(value, V_ASN1_UTF8STRING, text);
        GENERAL_NAME_set0_othername(gn.get(), oid, value);
      } else {
        const int kind = san.type == "dns" ? GEN_DNS : san.type == "email" ? GEN_EMAIL : GEN_URI;
        ASN1_IA5STRING* text = ASN1_IA5STRING_new();
        gn.reset(GENERAL_NAME_new());
        if (!text || !gn || ASN1_STRING_set(text, san.value.data(), static_cast<int>(san.value.size())) != 1) {
          ASN1_IA5STRING_free(text);
          return Error::resource_exhausted("out of memory");
        }
        GENERAL_NAME_set0_value(gn.get(), kind, text);
      }
      if (sk_GENERAL_NAME_push(names.get(), gn.get()) <= 0) return Error::resource_exhausted("out of memory");
      (void)gn.release();
    }
    ExtensionStackPtr extensions(sk_X509_EXTENSION_new_null());
    ExtensionPtr ext(X509V3_EXT_i2d(NID_subject_alt_name, 0, names.get()));
    if (!extensions || !ext || sk_X509_EXTENSION_push(extensions.get(), ext.get()) <= 0) {
      return Error::internal("could not encode the SAN extension: " + drain_errors());
    }
    (void)ext.release();
    if (X509_REQ_add_extensions(req.get(), extensions.get()) != 1) {
      return Error::internal("could not add the SAN extension: " + drain_errors());
    }
  }
  if (X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) {
    return Error::internal("signing the request failed: " + drain_errors());
  }
  unsigned char* der = nullptr;
  const int length = i2d_X509_REQ(req.get(), &der);
  if (length <= 0) return Error::internal("could not encode the request: " + drain_errors());
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length));
  OPENSSL_free(der);
  return out;
}

}  // namespace wincert::sim::model
