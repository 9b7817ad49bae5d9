#include "certstore/csr.hpp"

#include "certstore/openssl_util.hpp"
#include "certstore/x509_internal.hpp"
#include "common/encoding.hpp"

#include <openssl/pem.h>

#include <algorithm>
#include <charconv>

namespace wincert::certstore {
namespace {

using ReqExtensionsPtr =
    std::unique_ptr<STACK_OF(X509_EXTENSION),
                    decltype([](STACK_OF(X509_EXTENSION) * s) { sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free); })>;

Result<CsrInfo> describe_request(X509_REQ* req) {
  CsrInfo info;
  unsigned char* der = nullptr;
  const int length = i2d_X509_REQ(req, &der);
  if (length > 0) info.der.assign(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length));
  OPENSSL_free(der);
  info.subject = detail::windows_name(X509_REQ_get_subject_name(req));
  EVP_PKEY* key = X509_REQ_get0_pubkey(req);
  if (key == nullptr) {
    ossl::drain_errors();
    return Error::invalid_argument("the certificate request has no readable public key");
  }
  info.key = detail::key_parameters(key);
  info.signature_valid = X509_REQ_verify(req, key) == 1;
  ReqExtensionsPtr extensions(X509_REQ_get_extensions(req));
  if (extensions) {
    ossl::GeneralNamesPtr names(
        static_cast<GENERAL_NAMES*>(X509V3_get_d2i(extensions.get(), NID_subject_alt_name, nullptr, nullptr)));
    info.sans = detail::sans_from(names.get());
  }
  ERR_clear_error();
  return info;
}

// Keeps only the characters that identify a curve: "P-256", "secp256r1", "nistp256", "256" -> "256".
std::string curve_digits(std::string_view text) {
  const std::string lower = to_lower(trim(text));
  if (lower == "prime256v1") return "256";
  std::string digits;
  for (char c : lower) {
    if (c >= '0' && c <= '9') digits += c;
  }
  // Koblitz curves (secp256k1) are not the NIST curves Windows' providers offer.
  if (lower.ends_with("k1")) return {};
  // secp256r1 -> "2561": drop the trailing "r1" digit.
  if (lower.ends_with("r1") && !digits.empty()) digits.pop_back();
  return digits;
}

bool is_ec_type(std::string_view key_type) {
  return iequals(key_type, "ECC") || iequals(key_type, "EC") || iequals(key_type, "ECDSA");
}

}  // namespace

Result<CsrInfo> parse_csr(std::string_view text_or_der) {
  const std::string_view text = trim(text_or_der);
  if (text.empty()) return Error::invalid_argument("the certificate request is empty");
  if (text.size() > 1 << 20) return Error::invalid_argument("the certificate request is too large");
  ossl::X509ReqPtr req;
  if (text.starts_with("-----BEGIN")) {
    ossl::BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    // PEM_read_bio_X509_REQ accepts both "CERTIFICATE REQUEST" and "NEW CERTIFICATE REQUEST".
    req.reset(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  } else {
    std::string der;
    if (auto decoded = base64_decode(text)) {
      der = std::move(*decoded);
    } else {
      der.assign(text_or_der);
    }
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    req.reset(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
  }
  if (!req) {
    ossl::drain_errors();
    return Error::invalid_argument("the certificate request is not a readable PKCS#10 CSR");
  }
  return describe_request(req.get());
}

Status check_csr(const CsrInfo& csr, const CsrExpectation& expected) {
  if (!csr.signature_valid) return Error::invalid_argument("the certificate request's signature does not verify");
  if (expected.subject) {
    // Compare in Windows form: parse the expectation through certreq_subject's splitting is overkill;
    // the device reports Windows form, and callers pass Windows form.
    if (csr.subject != *expected.subject) {
      return Error::invalid_argument("the certificate request's subject is '" + csr.subject + "', expected '" +
                                     *expected.subject + "'");
    }
  }
  for (const auto& san : expected.sans) {
    if (std::find(csr.sans.begin(), csr.sans.end(), san) == csr.sans.end()) {
      return Error::invalid_argument("the certificate request lacks the SAN " + std::string(san_type_key(san.type)) +
                                     "=" + san.value);
    }
  }
  if (expected.key) {
    const auto& want = *expected.key;
    const bool same_algorithm = csr.key.algorithm == want.algorithm;
    const bool same_size =
        want.algorithm == KeyAlgorithm::kEc ? csr.key.curve == want.curve : csr.key.bits == want.bits;
    if (!same_algorithm || !same_size) {
      return Error::invalid_argument("the certificate request's key is " + csr.key.display() + ", expected " +
                                     want.display());
    }
  }
  return {};
}

Result<CertreqKeySpec> certreq_key_spec(std::string_view key_type_in, std::string_view key_size_in) {
  const std::string_view key_type = trim(key_type_in);
  const std::string_view key_size = trim(key_size_in);
  if (key_type.empty() || iequals(key_type, "RSA")) {
    int bits = 2048;
    if (!key_size.empty() && key_size != "0") {
      const auto [end, ec] = std::from_chars(key_size.data(), key_size.data() + key_size.size(), bits);
      if (ec != std::errc() || end != key_size.data() + key_size.size()) {
        return Error::invalid_argument("the RSA key size '" + std::string(key_size) + "' is not a number of bits");
      }
    }
    if (bits < 1024 || bits > 16384 || bits % 8 != 0) {
      return Error::invalid_argument("the RSA key size " + std::to_string(bits) +
                                     " is not supported (use 2048, 3072 or 4096 bits)");
    }
    return CertreqKeySpec{"RSA", bits};
  }
  std::string curve;
  if (is_ec_type(key_type)) {
    curve = curve_digits(key_size);
  } else if (istarts_with(key_type, "ECDSA_P") || istarts_with(key_type, "P-") || istarts_with(key_type, "secp") ||
             istarts_with(key_type, "nistp") || iequals(key_type, "prime256v1")) {
    curve = curve_digits(key_type);  // the curve came as the key type ("ECDSA_P384", "P-384")
  } else {
    return Error::invalid_argument("the key type '" + std::string(key_type) +
                                   "' is not supported for on-device key generation (use RSA or ECC)");
  }
  if (curve == "256" || curve == "384" || curve == "521") {
    return CertreqKeySpec{"ECDSA_P" + curve, std::stoi(curve)};
  }
  return Error::invalid_argument("the ECC curve '" + std::string(key_size.empty() ? key_type : key_size) +
                                 "' is not supported (use P-256, P-384 or P-521)");
}

Result<std::string> certreq_provider(std::string_view requested, const CertreqKeySpec& spec) {
  const bool ecc = spec.key_algorithm != "RSA";
  const std::string provider(trim(requested));
  if (provider.empty()) {
    return std::string(ecc ? "Microsoft Software Key Storage Provider" : "Microsoft Strong Cryptographic Provider");
  }
  // Legacy CryptoAPI CSPs ("... Cryptographic Provider") cannot generate ECC keys; only KSPs can.
  if (ecc && to_lower(provider).find("cryptographic provider") != std::string::npos) {
    return Error::invalid_argument("the crypto provider '" + provider + "' is a legacy CSP and cannot create " +
                                   spec.key_algorithm +
                                   " keys; use a key storage provider such as "
                                   "'Microsoft Software Key Storage Provider'");
  }
  return provider;
}

Result<std::string> certreq_subject(std::string_view subject) {
  const std::string_view text = trim(subject);
  if (text.empty()) return Error::invalid_argument("the subject is empty");
  std::vector<std::string> rdns;
  std::vector<bool> needs_quotes;
  std::string current;
  bool quoted_value = false, in_quotes = false, special = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\' && i + 1 < text.size()) {
      const char next = text[++i];
      if (next == ',' || next == '+' || next == ';' || next == '"') special = true;
      current += next;
      continue;
    }
    if (c == '"') {
      in_quotes = !in_quotes;
      quoted_value = true;
      continue;
    }
    if (c == ',' && !in_quotes) {
      rdns.emplace_back(trim(current));
      needs_quotes.push_back(special || quoted_value);
      current.clear();
      special = quoted_value = false;
      continue;
    }
    current += c;
  }
  if (in_quotes) return Error::invalid_argument("the subject '" + std::string(text) + "' has an unterminated quote");
  rdns.emplace_back(trim(current));
  needs_quotes.push_back(special || quoted_value);

  std::string out;
  for (std::size_t i = 0; i < rdns.size(); ++i) {
    const auto& rdn = rdns[i];
    const auto equals = rdn.find('=');
    if (equals == std::string::npos || equals == 0) {
      return Error::invalid_argument("the subject part '" + rdn + "' is not of the form NAME=value");
    }
    if (!out.empty()) out += ',';
    if (!needs_quotes[i]) {
      out += rdn;
      continue;
    }
    // Inside the INF's Subject="..." a doubled quote is a literal quote, so certreq sees O="Keyfactor, Inc".
    std::string value(trim(std::string_view(rdn).substr(equals + 1)));
    std::string escaped;
    for (char c : value) {
      if (c == '"')
        escaped += "\"\"\"\"";
      else
        escaped += c;
    }
    out += std::string(trim(std::string_view(rdn).substr(0, equals))) + "=\"\"" + escaped + "\"\"";
  }
  return out;
}

Result<std::vector<std::string>> certreq_san_entries(const std::vector<SubjectAltName>& sans) {
  std::vector<std::string> out;
  for (const auto& san : sans) {
    const std::string value(trim(san.value));
    if (value.empty()) return Error::invalid_argument("a subject alternative name has an empty value");
    if (value.find_first_of("&\"\r\n") != std::string::npos) {
      return Error::invalid_argument("the subject alternative name '" + value +
                                     "' contains a character certreq cannot take (& \" or a line break)");
    }
    switch (san.type) {
      case SanType::kDns:
        out.push_back("dns=" + value);
        break;
      case SanType::kIp:
        out.push_back("ipaddress=" + value);
        break;
      case SanType::kEmail:
        out.push_back("email=" + value);
        break;
      case SanType::kUpn:
        out.push_back("upn=" + value);
        break;
      case SanType::kUri:
        out.push_back("url=" + value);
        break;
      case SanType::kOther:
        return Error::invalid_argument("the subject alternative name '" + value + "' has an unsupported type");
    }
  }
  return out;
}

std::optional<SanType> san_type_from_key(std::string_view key_in) {
  const std::string key = to_lower(trim(key_in));
  if (key == "dns") return SanType::kDns;
  if (key == "ip" || key == "ip4" || key == "ip6" || key == "ipaddress") return SanType::kIp;
  if (key == "email" || key == "rfc822") return SanType::kEmail;
  if (key == "uri" || key == "url") return SanType::kUri;
  if (key == "upn") return SanType::kUpn;
  return std::nullopt;
}

std::string CertificateRequest::base64() const { return base64_encode(info.der); }

std::string CertificateRequest::pem() const {
  const std::string body = base64();
  std::string out = "-----BEGIN CERTIFICATE REQUEST-----\n";
  for (std::size_t i = 0; i < body.size(); i += 64) out += body.substr(i, 64) + "\n";
  out += "-----END CERTIFICATE REQUEST-----\n";
  return out;
}

Result<CertificateRequest> parse_certificate_request(std::string_view text_or_der, std::string provider_name) {
  WINCERT_ASSIGN_OR_RETURN(auto info, parse_csr(text_or_der));
  return CertificateRequest{std::move(info), std::move(provider_name)};
}

}  // namespace wincert::certstore
