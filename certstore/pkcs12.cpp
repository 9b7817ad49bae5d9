#include "certstore/pkcs12.hpp"

#include "certstore/openssl_util.hpp"
#include "certstore/x509_internal.hpp"
#include "common/encoding.hpp"

#include <climits>
#include <mutex>

namespace wincert::certstore {
namespace {

const ossl::PfxLibraryContext& pfx_context() { return ossl::pfx_library_context(); }

std::string open_error_prefix(std::string_view label) {
  return "the PFX for certificate " + std::string(label) + " could not be opened: ";
}

Result<PfxCertificate> describe_pfx_certificate(X509* cert) {
  auto info = detail::describe(cert);
  if (!info) return info.error();
  PfxCertificate out;
  unsigned char* der = nullptr;
  const int length = i2d_X509(cert, &der);
  if (length > 0) out.der.assign(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length));
  OPENSSL_free(der);
  int alias_length = 0;
  const unsigned char* alias = X509_alias_get0(cert, &alias_length);
  if (alias != nullptr && alias_length > 0) {
    out.friendly_name.assign(reinterpret_cast<const char*>(alias), static_cast<std::size_t>(alias_length));
  }
  out.info = std::move(*info);
  return out;
}

// Without a key, the leaf is the certificate that issued none of the others (the end entity).
std::size_t end_entity_index(STACK_OF(X509) * certs) {
  const int count = sk_X509_num(certs);
  for (int i = 0; i < count; ++i) {
    bool issues_another = false;
    for (int j = 0; j < count && !issues_another; ++j) {
      if (i != j && X509_check_issued(sk_X509_value(certs, i), sk_X509_value(certs, j)) == X509_V_OK) {
        issues_another = true;
      }
    }
    if (!issues_another) return static_cast<std::size_t>(i);
  }
  return 0;
}

}  // namespace

bool legacy_pfx_algorithms_available() { return pfx_context().legacy_provider != nullptr; }

std::string certificate_label(std::string_view alias, std::string_view thumbprint) {
  if (!trim(alias).empty()) return "'" + std::string(trim(alias)) + "'";
  if (!trim(thumbprint).empty()) return "'" + std::string(trim(thumbprint)) + "'";
  return "in this job";
}

Result<PfxContents> open_pfx(std::string_view pfx_der, const Secret& password, std::string_view label) {
  const auto& ctx = pfx_context();
  if (!ctx.context) return Error::permanent("OpenSSL could not create a library context for PFX reading");
  if (pfx_der.empty()) return Error::invalid(open_error_prefix(label) + "the file is empty");
  if (pfx_der.size() > static_cast<std::size_t>(INT_MAX / 2)) {
    return Error::invalid(open_error_prefix(label) + "the file is too large");
  }
  ERR_clear_error();
  // Pre-creating the object binds it to our library context; d2i fills it in place.
  PKCS12* raw = PKCS12_init_ex(NID_pkcs7_data, ctx.context.get(), nullptr);
  const auto* p = reinterpret_cast<const unsigned char*>(pfx_der.data());
  PKCS12* parsed = d2i_PKCS12(&raw, &p, static_cast<long>(pfx_der.size()));
  if (parsed == nullptr) {
    PKCS12_free(raw);
    ossl::drain_errors();
    return Error::invalid(open_error_prefix(label) + "it is not a PKCS#12 (PFX) file or it is corrupt");
  }
  ossl::Pkcs12Ptr p12(parsed);

  const std::string& pass = password.reveal();
  // Windows treats "no password" and "empty password" alike; PKCS#12 encodes them differently.
  const char* pass_to_use = pass.c_str();
  if (PKCS12_mac_present(p12.get()) == 1) {
    if (PKCS12_verify_mac(p12.get(), pass.c_str(), static_cast<int>(pass.size())) != 1) {
      if (pass.empty() && PKCS12_verify_mac(p12.get(), nullptr, 0) == 1) {
        pass_to_use = nullptr;
      } else {
        ossl::drain_errors();
        return Error::invalid(open_error_prefix(label) + "wrong password or corrupt file");
      }
    }
  }

  EVP_PKEY* key_raw = nullptr;
  X509* cert_raw = nullptr;
  STACK_OF(X509)* others_raw = nullptr;
  const int parse_ok = PKCS12_parse(p12.get(), pass_to_use, &key_raw, &cert_raw, &others_raw);
  ossl::PKeyPtr key(key_raw);
  ossl::X509Ptr cert(cert_raw);
  ossl::X509StackPtr others(others_raw);
  if (parse_ok != 1) {
    const std::string reason = ossl::drain_errors();
    // An unsupported algorithm (no legacy provider) is not a password problem: say which.
    if (reason.find("unsupported") != std::string::npos) {
      return Error::invalid(open_error_prefix(label) + "it uses an encryption algorithm this agent cannot read (" +
                            reason + ")");
    }
    return Error::invalid(open_error_prefix(label) + "wrong password or corrupt file");
  }
  ERR_clear_error();

  PfxContents contents;
  contents.has_private_key = key != nullptr;
  if (key) contents.private_key = detail::key_parameters(key.get());
  if (!others) others.reset(sk_X509_new_null());
  std::size_t leaf_from_others = SIZE_MAX;
  if (cert) {
    contents.key_matches_leaf = key != nullptr && X509_check_private_key(cert.get(), key.get()) == 1;
    ERR_clear_error();
    auto leaf = describe_pfx_certificate(cert.get());
    if (!leaf) return leaf.error().context(open_error_prefix(label));
    contents.leaf = std::move(*leaf);
  } else if (sk_X509_num(others.get()) > 0) {
    leaf_from_others = end_entity_index(others.get());
  }
  for (int i = 0; i < sk_X509_num(others.get()); ++i) {
    auto item = describe_pfx_certificate(sk_X509_value(others.get(), i));
    if (!item) return item.error().context(open_error_prefix(label));
    if (static_cast<std::size_t>(i) == leaf_from_others) {
      contents.leaf = std::move(*item);
    } else {
      contents.chain.push_back(std::move(*item));
    }
  }
  if (!contents.leaf) {
    return Error::invalid(open_error_prefix(label) + "it holds no certificate" +
                          (contents.has_private_key ? " (only a private key)" : ""));
  }
  return contents;
}

Result<PfxContents> open_job_certificate(std::string_view contents_base64, const Secret& password,
                                         std::string_view label) {
  auto bytes = base64_decode(contents_base64);
  if (!bytes || bytes->empty()) {
    return Error::invalid("the contents of certificate " + std::string(label) +
                          " are not valid base64 (expected a PFX or a DER certificate)");
  }
  // A bare certificate (Command sends DER when the entry has no private key).
  if (password.empty()) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes->data());
    ossl::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(bytes->size())));
    if (cert && p == reinterpret_cast<const unsigned char*>(bytes->data()) + bytes->size()) {
      auto leaf = describe_pfx_certificate(cert.get());
      if (!leaf) return leaf.error();
      PfxContents contents;
      contents.leaf = std::move(*leaf);
      return contents;
    }
    ERR_clear_error();
  }
  return open_pfx(*bytes, password, label);
}

Status check_importable(const PfxContents& pfx, std::string_view label, bool private_key_required) {
  if (!pfx.leaf) return Error::invalid("the PFX for certificate " + std::string(label) + " holds no certificate");
  if (private_key_required && !pfx.has_private_key) {
    return Error::invalid("the PFX for certificate " + std::string(label) +
                          " holds no private key, and this store needs one (send the certificate with its key)");
  }
  if (pfx.has_private_key && !pfx.key_matches_leaf) {
    return Error::invalid("the PFX for certificate " + std::string(label) +
                          " holds a private key that does not belong to its certificate " + pfx.leaf->info.thumbprint);
  }
  return {};
}

}  // namespace wincert::certstore
