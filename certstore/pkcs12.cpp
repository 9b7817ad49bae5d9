#include "certstore/pkcs12.hpp"

#include "certstore/openssl_util.hpp"
#include "certstore/x509_internal.hpp"
#include "common/encoding.hpp"

#include <openssl/pkcs12.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include <climits>
#include <cstring>
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

// --- iteration-count checks, before any key is derived ---

struct PbeParamDeleter {
  void operator()(PBEPARAM* p) const { PBEPARAM_free(p); }
  void operator()(PBE2PARAM* p) const { PBE2PARAM_free(p); }
  void operator()(PBKDF2PARAM* p) const { PBKDF2PARAM_free(p); }
};
struct AuthSafesDeleter {
  void operator()(STACK_OF(PKCS7) * p) const { sk_PKCS7_pop_free(p, PKCS7_free); }
};
struct BagsDeleter {
  void operator()(STACK_OF(PKCS12_SAFEBAG) * p) const { sk_PKCS12_SAFEBAG_pop_free(p, PKCS12_SAFEBAG_free); }
};
using AuthSafesPtr = std::unique_ptr<STACK_OF(PKCS7), AuthSafesDeleter>;
using BagsPtr = std::unique_ptr<STACK_OF(PKCS12_SAFEBAG), BagsDeleter>;

constexpr int kMaxSafeContentsDepth = 8;

// An INTEGER iteration count; absent means 1 (the ASN.1 default); unreadable or negative counts as too many.
std::int64_t iteration_value(const ASN1_INTEGER* iter) {
  if (iter == nullptr) return 1;
  std::int64_t value = 0;
  if (ASN1_INTEGER_get_int64(&value, iter) != 1 || value < 0) return INT64_MAX;
  return value;
}

// What one password-based algorithm will cost: its iteration count, or an error for a key-derivation
// function we do not accept. Parameters OpenSSL itself cannot read yield 0 (it refuses them without deriving).
Result<std::int64_t> derivation_iterations(const X509_ALGOR* alg, const std::string& what) {
  if (alg == nullptr) return std::int64_t{0};
  const int nid = OBJ_obj2nid(alg->algorithm);
  if (nid == NID_pbes2) {
    std::unique_ptr<PBE2PARAM, PbeParamDeleter> pbe2(
        static_cast<PBE2PARAM*>(ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter)));
    if (!pbe2 || pbe2->keyfunc == nullptr) return std::int64_t{0};
    if (OBJ_obj2nid(pbe2->keyfunc->algorithm) != NID_id_pbkdf2) {
      return Error::invalid_argument(what +
                                     " uses a key derivation function other than PBKDF2, which this agent does not "
                                     "accept in a PFX (re-export it with the usual PBKDF2 settings)");
    }
    std::unique_ptr<PBKDF2PARAM, PbeParamDeleter> kdf(
        static_cast<PBKDF2PARAM*>(ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), pbe2->keyfunc->parameter)));
    if (!kdf) return std::int64_t{0};
    return iteration_value(kdf->iter);
  }
  // PKCS#12 and PKCS#5 v1 PBE: PBEPARAM { salt, iterations }.
  std::unique_ptr<PBEPARAM, PbeParamDeleter> pbe(
      static_cast<PBEPARAM*>(ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBEPARAM), alg->parameter)));
  if (!pbe) return std::int64_t{0};
  return iteration_value(pbe->iter);
}

// Adds up what a file asks for and refuses it as soon as one derivation or the sum is above the limits.
class IterationBudget {
 public:
  IterationBudget(const PfxLimits& limits, std::string prefix) : limits_(limits), prefix_(std::move(prefix)) {}

  Status charge(std::int64_t iterations, std::string_view what) {
    if (iterations > limits_.max_iterations) {
      return Error::invalid_argument(prefix_ + "its " + std::string(what) + " iteration count " +
                                     count_text(iterations) + " is above this agent's limit of " +
                                     std::to_string(limits_.max_iterations) +
                                     " (a hostile or misconfigured file: re-export it with the usual settings)");
    }
    total_ += iterations;
    if (total_ > limits_.max_total_iterations) {
      return Error::invalid_argument(prefix_ + "its key derivations add up to more than " +
                                     std::to_string(limits_.max_total_iterations) +
                                     " iterations, above this agent's limit (a hostile or misconfigured file)");
    }
    return {};
  }
  Status count_bag() {
    if (++bags_ > limits_.max_bags) {
      return Error::invalid_argument(prefix_ + "it holds more than " + std::to_string(limits_.max_bags) + " parts");
    }
    return {};
  }
  Error refuse(std::string_view why) const { return Error::invalid_argument(prefix_ + std::string(why)); }
  Status charge_algorithm(const X509_ALGOR* alg, std::string_view what) {
    auto iterations = derivation_iterations(alg, prefix_ + "its " + std::string(what));
    if (!iterations) return iterations.error();
    return charge(*iterations, what);
  }

 private:
  static std::string count_text(std::int64_t n) { return n == INT64_MAX ? "(unreadable)" : std::to_string(n); }

  const PfxLimits& limits_;
  std::string prefix_;
  std::int64_t total_ = 0;
  std::size_t bags_ = 0;
};

// Shrouded keys in a list of bags (and in nested safe contents): their derivations, not yet run.
Status check_bags(const STACK_OF(PKCS12_SAFEBAG) * bags, IterationBudget& budget, int depth) {
  if (bags == nullptr) return {};
  for (int i = 0; i < sk_PKCS12_SAFEBAG_num(bags); ++i) {
    const PKCS12_SAFEBAG* bag = sk_PKCS12_SAFEBAG_value(bags, i);
    WINCERT_TRY(budget.count_bag());
    const int nid = PKCS12_SAFEBAG_get_nid(bag);
    if (nid == NID_pkcs8ShroudedKeyBag) {
      const X509_ALGOR* alg = nullptr;
      X509_SIG_get0(PKCS12_SAFEBAG_get0_pkcs8(bag), &alg, nullptr);
      WINCERT_TRY(budget.charge_algorithm(alg, "private key encryption"));
    } else if (nid == NID_safeContentsBag) {
      if (depth >= kMaxSafeContentsDepth) return budget.refuse("its parts are nested too deeply");
      WINCERT_TRY(check_bags(PKCS12_SAFEBAG_get0_safes(bag), budget, depth + 1));
    }
  }
  return {};
}

// Everything readable without the password: the MAC and the encryption of each encrypted part, and the
// shrouded keys of unencrypted parts. Returns the encrypted parts, to be looked into once the password is known.
Result<AuthSafesPtr> check_visible_costs(PKCS12* p12, IterationBudget& budget) {
  if (PKCS12_mac_present(p12) == 1) {
    const ASN1_INTEGER* mac_iterations = nullptr;
    PKCS12_get0_mac(nullptr, nullptr, nullptr, &mac_iterations, p12);
    WINCERT_TRY(budget.charge(iteration_value(mac_iterations), "MAC"));
  }
  AuthSafesPtr safes(PKCS12_unpack_authsafes(p12));
  if (!safes) return AuthSafesPtr{};  // PKCS12_parse reports the corrupt file
  for (int i = 0; i < sk_PKCS7_num(safes.get()); ++i) {
    PKCS7* part = sk_PKCS7_value(safes.get(), i);
    WINCERT_TRY(budget.count_bag());
    const int nid = OBJ_obj2nid(part->type);
    if (nid == NID_pkcs7_encrypted) {
      const X509_ALGOR* alg = nullptr;
      if (part->d.encrypted != nullptr && part->d.encrypted->enc_data != nullptr) {
        alg = part->d.encrypted->enc_data->algorithm;
      }
      WINCERT_TRY(budget.charge_algorithm(alg, "encrypted part"));
    } else if (nid == NID_pkcs7_data) {
      BagsPtr bags(PKCS12_unpack_p7data(part));
      WINCERT_TRY(check_bags(bags.get(), budget, 0));
    }
  }
  return safes;
}

// The shrouded keys inside encrypted parts: visible only after decrypting the part (whose cost is checked).
Status check_encrypted_costs(STACK_OF(PKCS7) * safes, const char* pass, IterationBudget& budget) {
  if (safes == nullptr) return {};
  const int pass_length = pass == nullptr ? 0 : static_cast<int>(std::strlen(pass));
  for (int i = 0; i < sk_PKCS7_num(safes); ++i) {
    PKCS7* part = sk_PKCS7_value(safes, i);
    if (OBJ_obj2nid(part->type) != NID_pkcs7_encrypted) continue;
    BagsPtr bags(PKCS12_unpack_p7encdata(part, pass, pass_length));
    if (!bags) continue;  // PKCS12_parse reports it
    WINCERT_TRY(check_bags(bags.get(), budget, 0));
  }
  ERR_clear_error();
  return {};
}

}  // namespace

bool legacy_pfx_algorithms_available() { return pfx_context().legacy_provider != nullptr; }

std::string certificate_label(std::string_view alias, std::string_view thumbprint) {
  if (!trim(alias).empty()) return "'" + std::string(trim(alias)) + "'";
  if (!trim(thumbprint).empty()) return "'" + std::string(trim(thumbprint)) + "'";
  return "in this job";
}

Result<PfxContents> open_pfx(std::string_view pfx_der, const Secret& password, std::string_view label,
                             const PfxLimits& limits) {
  const auto& ctx = pfx_context();
  if (!ctx.context) return Error::internal("OpenSSL could not create a library context for PFX reading");
  if (pfx_der.empty()) return Error::invalid_argument(open_error_prefix(label) + "the file is empty");
  if (pfx_der.size() > static_cast<std::size_t>(INT_MAX / 2)) {
    return Error::invalid_argument(open_error_prefix(label) + "the file is too large");
  }
  ERR_clear_error();
  // Pre-creating the object binds it to our library context; d2i fills it in place.
  PKCS12* raw = PKCS12_init_ex(NID_pkcs7_data, ctx.context.get(), nullptr);
  const auto* p = reinterpret_cast<const unsigned char*>(pfx_der.data());
  PKCS12* parsed = d2i_PKCS12(&raw, &p, static_cast<long>(pfx_der.size()));
  if (parsed == nullptr) {
    PKCS12_free(raw);
    ossl::drain_errors();
    return Error::invalid_argument(open_error_prefix(label) + "it is not a PKCS#12 (PFX) file or it is corrupt");
  }
  ossl::Pkcs12Ptr p12(parsed);

  // The file chooses its iteration counts: read them all before deriving any key.
  IterationBudget budget(limits, open_error_prefix(label));
  auto encrypted_parts = check_visible_costs(p12.get(), budget);
  if (!encrypted_parts) {
    ossl::drain_errors();
    return encrypted_parts.error();
  }

  const std::string& pass = password.reveal();
  // Windows treats "no password" and "empty password" alike; PKCS#12 encodes them differently.
  const char* pass_to_use = pass.c_str();
  const bool mac_present = PKCS12_mac_present(p12.get()) == 1;
  if (mac_present) {
    if (PKCS12_verify_mac(p12.get(), pass.c_str(), static_cast<int>(pass.size())) != 1) {
      if (pass.empty() && PKCS12_verify_mac(p12.get(), nullptr, 0) == 1) {
        pass_to_use = nullptr;
      } else {
        ossl::drain_errors();
        return Error::invalid_argument(open_error_prefix(label) + "wrong password or corrupt file");
      }
    }
  }

  // The password PKCS12_parse will use (it prefers the absent password for an empty one).
  const char* parse_pass = pass_to_use;
  if (pass.empty() && (!mac_present || pass_to_use == nullptr)) parse_pass = nullptr;
  if (auto ok = check_encrypted_costs(encrypted_parts->get(), parse_pass, budget); !ok) {
    ossl::drain_errors();
    return ok.error();
  }

  EVP_PKEY* key_raw = nullptr;
  X509* cert_raw = nullptr;
  STACK_OF(X509)* others_raw = nullptr;
  const int parse_ok = PKCS12_parse(p12.get(), pass_to_use, &key_raw, &cert_raw, &others_raw);
  ossl::PKeyPtr key(key_raw);
  ossl::X509Ptr cert(cert_raw);
  ossl::X509StackPtr others(others_raw);
  if (parse_ok != 1) {
    const auto errors = ossl::drain_error_queue();
    // An unsupported algorithm (no legacy provider) is not a password problem: say which (by OpenSSL's code).
    if (errors.unsupported_algorithm) {
      return Error::invalid_argument(open_error_prefix(label) +
                                     "it uses an encryption algorithm this agent cannot read (" + errors.text + ")");
    }
    return Error::invalid_argument(open_error_prefix(label) + "wrong password or corrupt file");
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
    return Error::invalid_argument(open_error_prefix(label) + "it holds no certificate" +
                                   (contents.has_private_key ? " (only a private key)" : ""));
  }
  return contents;
}

Result<PfxContents> open_job_certificate(const Secret& contents_base64, const Secret& password, std::string_view label,
                                         const PfxLimits& limits) {
  auto decoded = base64_decode(contents_base64.reveal());
  if (!decoded || decoded->empty()) {
    return Error::invalid_argument("the contents of certificate " + std::string(label) +
                                   " are not valid base64 (expected a PFX or a DER certificate)");
  }
  const Secret decoded_bytes(std::move(*decoded));  // the PFX's bytes are wiped when done, like its base64
  const std::string* bytes = &decoded_bytes.reveal();
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
  return open_pfx(*bytes, password, label, limits);
}

Status check_importable(const PfxContents& pfx, std::string_view label, bool private_key_required) {
  if (!pfx.leaf)
    return Error::invalid_argument("the PFX for certificate " + std::string(label) + " holds no certificate");
  if (private_key_required && !pfx.has_private_key) {
    return Error::invalid_argument(
        "the PFX for certificate " + std::string(label) +
        " holds no private key, and this store needs one (send the certificate with its key)");
  }
  if (pfx.has_private_key && !pfx.key_matches_leaf) {
    return Error::invalid_argument("the PFX for certificate " + std::string(label) +
                                   " holds a private key that does not belong to its certificate " +
                                   pfx.leaf->info.thumbprint);
  }
  return {};
}

}  // namespace wincert::certstore
