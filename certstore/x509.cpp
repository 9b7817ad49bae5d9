#include "certstore/x509.hpp"

#include "certstore/openssl_util.hpp"
#include "certstore/x509_internal.hpp"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include <array>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <optional>
#include <string_view>

namespace wincert::certstore {
namespace {

// The attribute names CertNameToStr (CERT_X500_NAME_STR) uses; others print as OID.n.n.n.
std::string windows_attribute_name(const ASN1_OBJECT* object) {
  switch (OBJ_obj2nid(object)) {
    case NID_commonName:
      return "CN";
    case NID_organizationName:
      return "O";
    case NID_organizationalUnitName:
      return "OU";
    case NID_localityName:
      return "L";
    case NID_stateOrProvinceName:
      return "S";
    case NID_countryName:
      return "C";
    case NID_pkcs9_emailAddress:
      return "E";
    case NID_streetAddress:
      return "STREET";
    case NID_domainComponent:
      return "DC";
    case NID_serialNumber:
      return "SERIALNUMBER";
    case NID_title:
      return "T";
    case NID_givenName:
      return "G";
    case NID_surname:
      return "SN";
    case NID_initials:
      return "I";
    case NID_postalCode:
      return "PostalCode";
    case NID_description:
      return "Description";
    case NID_userId:
      return "UID";
    default:
      break;
  }
  std::array<char, 128> oid{};
  OBJ_obj2txt(oid.data(), static_cast<int>(oid.size()), object, 1);
  return std::string("OID.") + oid.data();
}

// Windows quotes a value containing a separator or quote, doubling inner quotes.
std::string windows_quote(const std::string& value) {
  bool needs_quotes = value.empty() || value.front() == ' ' || value.back() == ' ' || value.front() == '#';
  for (char c : value) {
    if (c == ',' || c == '+' || c == '=' || c == '"' || c == '\n' || c == '\r' || c == '<' || c == '>' || c == ';') {
      needs_quotes = true;
    }
  }
  if (!needs_quotes) return value;
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string asn1_string_utf8(const ASN1_STRING* value) {
  unsigned char* utf8 = nullptr;
  const int length = ASN1_STRING_to_UTF8(&utf8, value);
  if (length < 0 || utf8 == nullptr) return {};
  std::string text(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(length));
  OPENSSL_free(utf8);
  return text;
}

std::string ipv6_text(const unsigned char* bytes) {
  std::array<unsigned, 8> groups{};
  for (std::size_t i = 0; i < 8; ++i) groups[i] = (unsigned{bytes[2 * i]} << 8) | bytes[2 * i + 1];
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first one on a tie.
  int best_start = -1, best_len = 0;
  for (int i = 0; i < 8;) {
    if (groups[static_cast<std::size_t>(i)] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && groups[static_cast<std::size_t>(j)] == 0) ++j;
    if (j - i > best_len && j - i >= 2) {
      best_start = i;
      best_len = j - i;
    }
    i = j;
  }
  std::string out;
  char buf[8];
  for (int i = 0; i < 8; ++i) {
    if (i == best_start) {
      out += "::";
      i += best_len - 1;
      continue;
    }
    if (!out.empty() && out.back() != ':') out += ':';
    std::snprintf(buf, sizeof buf, "%x", groups[static_cast<std::size_t>(i)]);
    out += buf;
  }
  return out;
}

std::string ip_text(const ASN1_OCTET_STRING* ip) {
  const unsigned char* data = ASN1_STRING_get0_data(ip);
  const int length = ASN1_STRING_length(ip);
  if (length == 4) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", data[0], data[1], data[2], data[3]);
    return buf;
  }
  if (length == 16) return ipv6_text(data);
  return "invalid IP (" + std::to_string(length) + " bytes)";
}

std::string iso8601(const ASN1_TIME* time) {
  std::tm tm{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return {};
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// ---- DER framing, for inventory_facts_der: just enough to find the subjectAltName extension ----

constexpr unsigned char kDerBoolean = 0x01;
constexpr unsigned char kDerInteger = 0x02;
constexpr unsigned char kDerBitString = 0x03;
constexpr unsigned char kDerOctetString = 0x04;
constexpr unsigned char kDerOid = 0x06;
constexpr unsigned char kDerSequence = 0x30;
constexpr unsigned char kDerVersion = 0xA0;                      // tbsCertificate [0] EXPLICIT version
constexpr unsigned char kDerIssuerUid = 0x81;                    // [1] IMPLICIT issuerUniqueID
constexpr unsigned char kDerSubjectUid = 0x82;                   // [2] IMPLICIT subjectUniqueID
constexpr unsigned char kDerExtensions = 0xA3;                   // [3] EXPLICIT extensions
constexpr std::string_view kSubjectAltNameOid = "\x55\x1D\x11";  // 2.5.29.17

struct DerElement {
  unsigned char tag = 0;
  std::string_view contents;
};

// Reads the element at the front of `in` and moves past it; nullopt when its framing is broken: a multi-byte
// tag (X.509 uses none), an indefinite (BER) or over-long length, contents running past the input.
std::optional<DerElement> read_der(std::string_view& in) {
  if (in.size() < 2) return std::nullopt;
  const auto tag = static_cast<unsigned char>(in[0]);
  if ((tag & 0x1F) == 0x1F) return std::nullopt;
  std::size_t length = static_cast<unsigned char>(in[1]);
  std::size_t header = 2;
  if ((length & 0x80) != 0) {
    const std::size_t count = length & 0x7F;
    if (count == 0 || count > 4 || in.size() < header + count) return std::nullopt;
    length = 0;
    for (std::size_t i = 0; i < count; ++i) length = (length << 8) | static_cast<unsigned char>(in[header + i]);
    header += count;
  }
  if (length > in.size() - header) return std::nullopt;
  DerElement element{tag, in.substr(header, length)};
  in.remove_prefix(header + length);
  return element;
}

// The contents of the subjectAltName extension's OCTET STRING in a tbsCertificate's contents ("" when it has
// none); nullopt when the fields are not tbsCertificate's, in order and with their types.
std::optional<std::string_view> subject_alt_name_of(std::string_view tbs) {
  auto field = read_der(tbs);
  if (field && field->tag == kDerVersion) field = read_der(tbs);
  // serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
  constexpr std::array<unsigned char, 6> kFields = {kDerInteger,  kDerSequence, kDerSequence,
                                                    kDerSequence, kDerSequence, kDerSequence};
  for (std::size_t i = 0; i < kFields.size(); ++i) {
    if (i > 0) field = read_der(tbs);
    if (!field || field->tag != kFields[i]) return std::nullopt;
  }
  std::string_view san;
  int san_count = 0;
  while (!tbs.empty()) {
    field = read_der(tbs);
    if (!field) return std::nullopt;
    if (field->tag == kDerIssuerUid || field->tag == kDerSubjectUid) continue;
    if (field->tag != kDerExtensions || !tbs.empty()) return std::nullopt;
    std::string_view wrapper = field->contents;
    auto list = read_der(wrapper);
    if (!list || list->tag != kDerSequence || !wrapper.empty()) return std::nullopt;
    std::string_view extensions = list->contents;
    while (!extensions.empty()) {
      // Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
      auto extension = read_der(extensions);
      if (!extension || extension->tag != kDerSequence) return std::nullopt;
      std::string_view parts = extension->contents;
      auto oid = read_der(parts);
      auto value = read_der(parts);
      if (value && value->tag == kDerBoolean) value = read_der(parts);
      if (!oid || oid->tag != kDerOid || !value || value->tag != kDerOctetString || !parts.empty()) return std::nullopt;
      if (oid->contents == kSubjectAltNameOid) {
        ++san_count;
        san = value->contents;
      }
    }
  }
  // Two subjectAltName extensions: no SANs, as X509_get_ext_d2i gives none for a repeated extension.
  return san_count == 1 ? san : std::string_view();
}

}  // namespace

// --- shared with pkcs12.cpp / csr.cpp through x509_internal.hpp ---
namespace detail {

std::string windows_name(const X509_NAME* name) {
  std::string out;
  const int count = X509_NAME_entry_count(name);
  // Windows lists the most specific RDN first: walk the encoding backwards, joining multi-valued RDNs.
  int current_set = -1;
  for (int i = count - 1; i >= 0; --i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, i);
    const int set = X509_NAME_ENTRY_set(entry);
    if (!out.empty()) out += (set == current_set) ? " + " : ", ";
    current_set = set;
    out += windows_attribute_name(X509_NAME_ENTRY_get_object(entry));
    out += '=';
    out += windows_quote(asn1_string_utf8(X509_NAME_ENTRY_get_data(entry)));
  }
  return out;
}

std::vector<SubjectAltName> sans_from(const GENERAL_NAMES* names) {
  std::vector<SubjectAltName> out;
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    SubjectAltName san;
    switch (name->type) {
      case GEN_DNS:
        san = {SanType::kDns, asn1_string_utf8(name->d.dNSName)};
        break;
      case GEN_EMAIL:
        san = {SanType::kEmail, asn1_string_utf8(name->d.rfc822Name)};
        break;
      case GEN_URI:
        san = {SanType::kUri, asn1_string_utf8(name->d.uniformResourceIdentifier)};
        break;
      case GEN_IPADD:
        san = {SanType::kIp, ip_text(name->d.iPAddress)};
        break;
      case GEN_OTHERNAME: {
        const OTHERNAME* other = name->d.otherName;
        if (OBJ_obj2nid(other->type_id) == NID_ms_upn && other->value != nullptr &&
            other->value->type == V_ASN1_UTF8STRING) {
          san = {SanType::kUpn, asn1_string_utf8(other->value->value.utf8string)};
        } else {
          std::array<char, 128> oid{};
          OBJ_obj2txt(oid.data(), static_cast<int>(oid.size()), other->type_id, 1);
          san = {SanType::kOther, std::string("otherName ") + oid.data()};
        }
        break;
      }
      case GEN_DIRNAME:
        san = {SanType::kOther, "DirName " + windows_name(name->d.directoryName)};
        break;
      default:
        san = {SanType::kOther, "unsupported name type " + std::to_string(name->type)};
        break;
    }
    out.push_back(std::move(san));
  }
  return out;
}

KeyParameters key_parameters(const EVP_PKEY* key) {
  KeyParameters params;
  if (key == nullptr) return params;
  params.bits = EVP_PKEY_get_bits(key);
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
      params.algorithm = KeyAlgorithm::kRsa;
      break;
    case EVP_PKEY_DSA:
      params.algorithm = KeyAlgorithm::kDsa;
      break;
    case EVP_PKEY_ED25519:
      params.algorithm = KeyAlgorithm::kEd25519;
      break;
    case EVP_PKEY_ED448:
      params.algorithm = KeyAlgorithm::kEd448;
      break;
    case EVP_PKEY_EC: {
      params.algorithm = KeyAlgorithm::kEc;
      std::array<char, 80> group{};
      std::size_t length = 0;
      if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group.data(), group.size(), &length) == 1) {
        const int nid = OBJ_sn2nid(group.data());
        const char* nist = nid != NID_undef ? EC_curve_nid2nist(nid) : nullptr;
        params.curve = nist != nullptr ? nist : group.data();
      }
      break;
    }
    default:
      params.algorithm = KeyAlgorithm::kOther;
      break;
  }
  return params;
}

Result<CertificateInfo> describe(X509* cert, std::string_view encoded) {
  CertificateInfo info;
  if (!encoded.empty()) {
    info.thumbprint = thumbprint_of(encoded);
  } else {
    unsigned char* der = nullptr;
    const int der_length = i2d_X509(cert, &der);
    if (der_length <= 0)
      return Error::invalid_argument("the certificate could not be re-encoded: " + ossl::drain_errors());
    info.thumbprint =
        thumbprint_of(std::string_view(reinterpret_cast<const char*>(der), static_cast<std::size_t>(der_length)));
    OPENSSL_free(der);
  }
  info.subject = windows_name(X509_get_subject_name(cert));
  info.issuer = windows_name(X509_get_issuer_name(cert));
  {
    ossl::BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
    if (serial) {
      ossl::OsslStringPtr hex(BN_bn2hex(serial.get()));
      info.serial = hex ? std::string(hex.get()) : std::string();
      if (info.serial.size() % 2 != 0) info.serial.insert(0, "0");
      // Windows shows the encoded bytes: a positive serial whose top bit is set keeps its leading 00.
      if (!info.serial.empty() && info.serial.front() >= '8' && info.serial.front() != '-') info.serial.insert(0, "00");
    }
  }
  info.not_before = iso8601(X509_get0_notBefore(cert));
  info.not_after = iso8601(X509_get0_notAfter(cert));
  ossl::GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  info.sans = sans_from(names.get());
  info.key = key_parameters(X509_get0_pubkey(cert));
  // Names and key identifiers only: verifying the signature costs ~100 µs per certificate (ECDSA), which an
  // inventory of thousands does not need.
  info.self_signed = X509_self_signed(cert, 0) == 1;
  ERR_clear_error();
  return info;
}

}  // namespace detail

std::string_view san_type_windows_label(SanType type) {
  switch (type) {
    case SanType::kDns:
      return "DNS Name";
    case SanType::kIp:
      return "IP Address";
    case SanType::kEmail:
      return "RFC822 Name";
    case SanType::kUri:
      return "URL";
    case SanType::kUpn:
      return "Principal Name";
    case SanType::kOther:
      break;
  }
  return "Other Name";
}

std::string_view san_type_key(SanType type) {
  switch (type) {
    case SanType::kDns:
      return "dns";
    case SanType::kIp:
      return "ip";
    case SanType::kEmail:
      return "email";
    case SanType::kUri:
      return "uri";
    case SanType::kUpn:
      return "upn";
    case SanType::kOther:
      break;
  }
  return "other";
}

std::string KeyParameters::display() const {
  switch (algorithm) {
    case KeyAlgorithm::kRsa:
      return "RSA " + std::to_string(bits);
    case KeyAlgorithm::kEc:
      return "EC " + (curve.empty() ? std::to_string(bits) : curve);
    case KeyAlgorithm::kDsa:
      return "DSA " + std::to_string(bits);
    case KeyAlgorithm::kEd25519:
      return "Ed25519";
    case KeyAlgorithm::kEd448:
      return "Ed448";
    case KeyAlgorithm::kOther:
      break;
  }
  return "unknown key type";
}

std::string thumbprint_of(std::string_view der) {
  // Fetched once: OpenSSL 3's one-shot SHA1() looks the digest up in the provider store on every call, which was
  // most of the cost of hashing a certificate (inventories hash thousands).
  static EVP_MD* const sha1 = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  unsigned char digest[SHA_DIGEST_LENGTH];
  unsigned int length = 0;
  if (sha1 == nullptr || EVP_Digest(der.data(), der.size(), digest, &length, sha1, nullptr) != 1 ||
      length != sizeof digest) {
    SHA1(reinterpret_cast<const unsigned char*>(der.data()), der.size(), digest);
  }
  return hex_upper(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

std::string normalize_thumbprint(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    // U+200E LEFT-TO-RIGHT MARK (E2 80 8E) and U+FEFF BOM ride along when copied from Windows dialogs.
    if (c == 0xE2 && i + 2 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0x80 &&
        static_cast<unsigned char>(text[i + 2]) == 0x8E) {
      i += 2;
      continue;
    }
    if (c == 0xEF && i + 2 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0xBB &&
        static_cast<unsigned char>(text[i + 2]) == 0xBF) {
      i += 2;
      continue;
    }
    if (c == ' ' || c == ':' || c == '\t') continue;
    if (!std::isxdigit(c)) return {};
    out += static_cast<char>(std::toupper(c));
  }
  return out.size() == 40 ? out : std::string();
}

Result<CertificateInfo> parse_certificate_der(std::string_view der) {
  if (der.empty()) return Error::invalid_argument("the certificate is empty");
  if (der.size() > static_cast<std::size_t>(INT32_MAX)) return Error::invalid_argument("the certificate is too large");
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ossl::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) {
    ossl::drain_errors();
    return Error::invalid_argument("the certificate is not valid DER X.509");
  }
  if (p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
    return Error::invalid_argument("the certificate has trailing bytes after the DER structure");
  }
  // Windows hashes the bytes it stores. OpenSSL re-encodes what it read as strict DER (e.g. it clears a
  // signature's unused bits), so the thumbprint is taken from the input, as inventory does.
  return detail::describe(cert.get(), der);
}

Result<InventoryFacts> inventory_facts_der(std::string_view der) {
  if (der.empty()) return Error::invalid_argument("the certificate is empty");
  const auto not_x509 = [] { return Error::invalid_argument("the certificate is not valid DER X.509"); };
  std::string_view rest = der;
  const auto certificate = read_der(rest);
  if (!certificate || certificate->tag != kDerSequence) return not_x509();
  // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
  std::string_view fields = certificate->contents;
  const auto tbs = read_der(fields);
  const auto algorithm = read_der(fields);
  const auto signature = read_der(fields);
  if (!tbs || tbs->tag != kDerSequence || !algorithm || algorithm->tag != kDerSequence || !signature ||
      signature->tag != kDerBitString || !fields.empty()) {
    return not_x509();
  }
  const auto san = subject_alt_name_of(tbs->contents);
  if (!san) return not_x509();
  if (!rest.empty()) return Error::invalid_argument("the certificate has trailing bytes after the DER structure");

  InventoryFacts facts;
  facts.thumbprint = thumbprint_of(der);
  if (!san->empty() && san->size() <= static_cast<std::size_t>(INT32_MAX)) {
    const auto* p = reinterpret_cast<const unsigned char*>(san->data());
    ossl::GeneralNamesPtr names(d2i_GENERAL_NAMES(nullptr, &p, static_cast<long>(san->size())));
    // As X509_get_ext_d2i in parse_certificate_der: an extension that does not decode gives no SANs (and, as
    // there, bytes after the GeneralNames are not looked at).
    if (names) facts.sans = detail::sans_from(names.get());
    ERR_clear_error();
  }
  return facts;
}

Result<CertificateInfo> parse_certificate_text(std::string_view base64_or_pem) {
  const std::string_view text = trim(base64_or_pem);
  if (text.starts_with("-----BEGIN")) {
    ossl::BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    ossl::X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) {
      ossl::drain_errors();
      return Error::invalid_argument("the PEM text does not hold a readable certificate");
    }
    return detail::describe(cert.get());
  }
  auto der = base64_decode(text);
  if (!der) return Error::invalid_argument("the certificate is neither PEM nor base64 DER");
  return parse_certificate_der(*der);
}

}  // namespace wincert::certstore
