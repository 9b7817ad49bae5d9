#include "certstore/local/request_builder.hpp"

#include "certstore/openssl_util.hpp"
#include "common/encoding.hpp"

#include <algorithm>
#include <array>

namespace wincert::certstore::local {
namespace {

// OBJ_nid2obj's objects are static; ASN1_OBJECT_free leaves those alone, so one owner type fits both.
using Asn1ObjectPtr = std::unique_ptr<ASN1_OBJECT, ossl::Deleter<ASN1_OBJECT_free>>;
using X509NamePtr = std::unique_ptr<X509_NAME, ossl::Deleter<X509_NAME_free>>;

struct NamePart {
  std::string attribute;
  std::string value;
};

// Splits on commas outside quotes; a backslash escapes the next character (the rules certreq_subject()
// applies to the same text for the remote path).
Result<std::vector<NamePart>> split_subject(std::string_view subject) {
  const std::string_view text = trim(subject);
  if (text.empty()) return Error::invalid_argument("the subject is empty");
  std::vector<std::string> parts;
  std::string current;
  bool in_quotes = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\' && i + 1 < text.size()) {
      current += text[++i];
    } else if (c == '"') {
      in_quotes = !in_quotes;
    } else if (c == ',' && !in_quotes) {
      parts.push_back(std::move(current));
      current.clear();
    } else {
      current += c;
    }
  }
  if (in_quotes) return Error::invalid_argument("the subject '" + std::string(text) + "' has an unterminated quote");
  parts.push_back(std::move(current));

  std::vector<NamePart> out;
  for (const auto& part : parts) {
    const auto equals = part.find('=');
    if (equals == std::string::npos || trim(std::string_view(part).substr(0, equals)).empty()) {
      return Error::invalid_argument("the subject part '" + std::string(trim(part)) +
                                     "' is not of the form NAME=value");
    }
    out.push_back({std::string(trim(std::string_view(part).substr(0, equals))),
                   std::string(trim(std::string_view(part).substr(equals + 1)))});
  }
  return out;
}

// Windows' X.500 attribute keys (what CertNameToStr prints and Command sends) and OpenSSL's short names.
int attribute_nid(std::string_view attribute) {
  static const std::array<std::pair<const char*, int>, 22> kAttributes{{
      {"CN", NID_commonName},
      {"O", NID_organizationName},
      {"OU", NID_organizationalUnitName},
      {"L", NID_localityName},
      {"S", NID_stateOrProvinceName},
      {"ST", NID_stateOrProvinceName},
      {"C", NID_countryName},
      {"E", NID_pkcs9_emailAddress},
      {"EMAIL", NID_pkcs9_emailAddress},
      {"STREET", NID_streetAddress},
      {"DC", NID_domainComponent},
      {"SERIALNUMBER", NID_serialNumber},
      {"T", NID_title},
      {"TITLE", NID_title},
      {"G", NID_givenName},
      {"GIVENNAME", NID_givenName},
      {"SN", NID_surname},
      {"I", NID_initials},
      {"INITIALS", NID_initials},
      {"POSTALCODE", NID_postalCode},
      {"DESCRIPTION", NID_description},
      {"UID", NID_userId},
  }};
  for (const auto& [key, nid] : kAttributes) {
    if (iequals(attribute, key)) return nid;
  }
  return NID_undef;
}

// "OID.1.2.3" or "1.2.3" for attributes without a key.
Asn1ObjectPtr attribute_object(std::string_view attribute) {
  if (const int nid = attribute_nid(attribute); nid != NID_undef) return Asn1ObjectPtr(OBJ_nid2obj(nid));
  std::string dotted(istarts_with(attribute, "OID.") ? attribute.substr(4) : attribute);
  if (dotted.empty() ||
      !std::all_of(dotted.begin(), dotted.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; })) {
    return nullptr;
  }
  return Asn1ObjectPtr(OBJ_txt2obj(dotted.c_str(), 1));
}

bool is_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

Result<GENERAL_NAME*> general_name(const SubjectAltName& san) {
  const std::string value(trim(san.value));
  if (value.empty()) return Error::invalid_argument("a subject alternative name has an empty value");
  GENERAL_NAME* name = GENERAL_NAME_new();
  if (name == nullptr) return Error::resource_exhausted("out of memory building the subject alternative names");
  auto ia5 = [&](int type) -> Result<GENERAL_NAME*> {
    if (!is_ascii(value)) {
      GENERAL_NAME_free(name);
      return Error::invalid_argument("the subject alternative name '" + value +
                                     "' is not ASCII (international domain names go in their xn-- form)");
    }
    ASN1_IA5STRING* text = ASN1_IA5STRING_new();
    ASN1_STRING_set(text, value.data(), static_cast<int>(value.size()));
    GENERAL_NAME_set0_value(name, type, text);
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
      std::string address = value;
      if (address.size() > 2 && address.front() == '[' && address.back() == ']')
        address = address.substr(1, address.size() - 2);
      ASN1_OCTET_STRING* octets = a2i_IPADDRESS(address.c_str());
      if (octets == nullptr) {
        ERR_clear_error();
        GENERAL_NAME_free(name);
        return Error::invalid_argument("the subject alternative name '" + value + "' is not an IPv4 or IPv6 address");
      }
      GENERAL_NAME_set0_value(name, GEN_IPADD, octets);
      return name;
    }
    case SanType::kUpn: {
      ASN1_TYPE* upn = ASN1_TYPE_new();
      ASN1_UTF8STRING* text = ASN1_UTF8STRING_new();
      ASN1_STRING_set(text, value.data(), static_cast<int>(value.size()));
      ASN1_TYPE_set(upn, V_ASN1_UTF8STRING, text);
      GENERAL_NAME_set0_othername(name, OBJ_nid2obj(NID_ms_upn), upn);
      return name;
    }
    case SanType::kOther:
      break;
  }
  GENERAL_NAME_free(name);
  return Error::invalid_argument("the subject alternative name '" + value + "' has an unsupported type");
}

Status add_subject_alt_names(X509_REQ* request, const std::vector<SubjectAltName>& sans) {
  if (sans.empty()) return {};
  ossl::GeneralNamesPtr names(GENERAL_NAMES_new());
  for (const auto& san : sans) {
    auto name = general_name(san);
    if (!name) return name.error();
    sk_GENERAL_NAME_push(names.get(), *name);
  }
  X509_EXTENSION* extension = X509V3_EXT_i2d(NID_subject_alt_name, 0, names.get());
  if (extension == nullptr) return Error::internal("encoding the subject alternative names: " + ossl::drain_errors());
  STACK_OF(X509_EXTENSION)* extensions = sk_X509_EXTENSION_new_null();
  sk_X509_EXTENSION_push(extensions, extension);
  const int added = X509_REQ_add_extensions(request, extensions);
  sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
  if (added != 1) return Error::internal("adding the subject alternative names: " + ossl::drain_errors());
  return {};
}

const EVP_MD* message_digest(DigestAlgorithm digest) {
  switch (digest) {
    case DigestAlgorithm::kSha384:
      return EVP_sha384();
    case DigestAlgorithm::kSha512:
      return EVP_sha512();
    case DigestAlgorithm::kSha256:
      break;
  }
  return EVP_sha256();
}

int signature_nid(DigestAlgorithm digest, bool ecdsa) {
  switch (digest) {
    case DigestAlgorithm::kSha384:
      return ecdsa ? NID_ecdsa_with_SHA384 : NID_sha384WithRSAEncryption;
    case DigestAlgorithm::kSha512:
      return ecdsa ? NID_ecdsa_with_SHA512 : NID_sha512WithRSAEncryption;
    case DigestAlgorithm::kSha256:
      break;
  }
  return ecdsa ? NID_ecdsa_with_SHA256 : NID_sha256WithRSAEncryption;
}

}  // namespace

Result<std::string> encode_subject(std::string_view subject) {
  auto parts = split_subject(subject);
  if (!parts) return parts.error();
  X509NamePtr name(X509_NAME_new());
  // Reverse order: the most specific RDN (listed first) is encoded last.
  for (auto it = parts->rbegin(); it != parts->rend(); ++it) {
    auto object = attribute_object(it->attribute);
    if (!object) {
      return Error::invalid_argument("the subject attribute '" + it->attribute +
                                     "' is unknown (use CN, O, OU, L, S, C, E, DC, STREET, SERIALNUMBER, T, G, SN, I, "
                                     "PostalCode, UID or OID.n.n.n)");
    }
    if (X509_NAME_add_entry_by_OBJ(name.get(), object.get(), MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(it->value.data()),
                                   static_cast<int>(it->value.size()), -1, 0) != 1) {
      const std::string reason = ossl::drain_errors();
      return Error::invalid_argument("the subject part '" + it->attribute + "=" + it->value + "' cannot be encoded" +
                                     (reason.empty() ? std::string() : " (" + reason + ")"));
    }
  }
  unsigned char* der = nullptr;
  const int length = i2d_X509_NAME(name.get(), &der);
  if (length <= 0) return Error::internal("encoding the subject: " + ossl::drain_errors());
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length));
  OPENSSL_free(der);
  return out;
}

Result<std::string> build_signed_request(std::string_view subject, const std::vector<SubjectAltName>& sans,
                                         std::string_view public_key_der, DigestAlgorithm digest, bool ecdsa,
                                         const DigestSigner& sign) {
  auto subject_der = encode_subject(subject);
  if (!subject_der) return subject_der.error();
  const auto* p = reinterpret_cast<const unsigned char*>(subject_der->data());
  X509NamePtr name(d2i_X509_NAME(nullptr, &p, static_cast<long>(subject_der->size())));
  p = reinterpret_cast<const unsigned char*>(public_key_der.data());
  ossl::PKeyPtr public_key(d2i_PUBKEY(nullptr, &p, static_cast<long>(public_key_der.size())));
  if (!name || !public_key) return Error::internal("preparing the certificate request: " + ossl::drain_errors());

  ossl::X509ReqPtr request(X509_REQ_new());
  if (!request || X509_REQ_set_version(request.get(), 0) != 1 ||
      X509_REQ_set_subject_name(request.get(), name.get()) != 1 ||
      X509_REQ_set_pubkey(request.get(), public_key.get()) != 1) {
    return Error::internal("building the certificate request: " + ossl::drain_errors());
  }
  if (auto added = add_subject_alt_names(request.get(), sans); !added) return added.error();

  X509_ALGOR* algorithm = X509_ALGOR_new();
  X509_ALGOR_set0(algorithm, OBJ_nid2obj(signature_nid(digest, ecdsa)), ecdsa ? V_ASN1_UNDEF : V_ASN1_NULL, nullptr);
  const int algorithm_set = X509_REQ_set1_signature_algo(request.get(), algorithm);
  X509_ALGOR_free(algorithm);
  if (algorithm_set != 1) return Error::internal("setting the signature algorithm: " + ossl::drain_errors());

  // The CertificationRequestInfo bytes: the only thing the key signs.
  unsigned char* tbs = nullptr;
  const int tbs_length = i2d_re_X509_REQ_tbs(request.get(), &tbs);
  if (tbs_length <= 0) return Error::internal("encoding the certificate request: " + ossl::drain_errors());
  std::array<unsigned char, EVP_MAX_MD_SIZE> hash{};
  unsigned int hash_length = 0;
  const int hashed =
      EVP_Digest(tbs, static_cast<std::size_t>(tbs_length), hash.data(), &hash_length, message_digest(digest), nullptr);
  OPENSSL_free(tbs);
  if (hashed != 1) return Error::internal("hashing the certificate request: " + ossl::drain_errors());

  auto signature = sign(std::string_view(reinterpret_cast<const char*>(hash.data()), hash_length));
  if (!signature) return signature.error();
  ASN1_BIT_STRING* bits = ASN1_BIT_STRING_new();
  ASN1_BIT_STRING_set(bits, reinterpret_cast<unsigned char*>(signature->data()), static_cast<int>(signature->size()));
  bits->flags &= ~0x07L;  // a whole number of bytes: no unused bits
  bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
  X509_REQ_set0_signature(request.get(), bits);

  // The provider's signature must verify with the request's own public key, or the CA would refuse it.
  if (X509_REQ_verify(request.get(), public_key.get()) != 1) {
    return Error::failed_precondition("the key's signature on the certificate request does not verify (" +
                                      ossl::drain_errors() + ")");
  }
  unsigned char* der = nullptr;
  const int length = i2d_X509_REQ(request.get(), &der);
  if (length <= 0) return Error::internal("encoding the certificate request: " + ossl::drain_errors());
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length));
  OPENSSL_free(der);
  return out;
}

}  // namespace wincert::certstore::local
