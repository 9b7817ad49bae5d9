// store-inventory, cert-add, cert-remove, csr-create, csr-accept: what the scripts of the same names do
// on Windows, step for step (checks in the same order, the same messages and categories).
#include <optional>

#include "certstore/pkcs12.hpp"
#include "certstore/x509.hpp"
#include "common/encoding.hpp"
#include "common/secret.hpp"
#include "sim/winhost/model/crypto.hpp"
#include "sim/winhost/model/ops.hpp"

namespace wincert::sim::model::ops {

using nlohmann::json;

namespace {

std::string decode_base64_arg(const std::string& text) {
  auto bytes = base64_decode(text);
  if (!bytes) {
    fail("NotSpecified",
         "Exception calling \"FromBase64String\" with \"1\" argument(s): \"The input is not a valid Base-64 string as "
         "it contains a non-base 64 character, more than two padding characters, or an illegal character among the "
         "padding characters. \"");
  }
  return *bytes;
}

json cert_entry(const std::string& der, const std::string& friendly_name, const std::string& key_container) {
  json entry = {{"thumbprint", certstore::thumbprint_of(der)}, {"der", base64_encode(der)}};
  if (!friendly_name.empty()) entry["friendly_name"] = friendly_name;
  if (!key_container.empty()) entry["key"] = key_container;
  return entry;
}

// What X509Certificate2Collection.Import (or certutil -importpfx) finds in the bytes: the leaf first.
struct Item {
  std::string der;
  std::string subject;
  std::string issuer;
  std::string friendly_name;
  std::optional<std::string> private_key_pem;
};

// Why Windows could not open the bytes; each reason has its own Windows text and certutil exit code.
enum class OpenFailure { kNone, kNoObject, kWrongPassword, kOther };

std::string_view windows_text(OpenFailure failure) {
  switch (failure) {
    case OpenFailure::kNoObject:
      return "Cannot find the requested object.";
    case OpenFailure::kWrongPassword:
      return "The specified network password is not correct.";
    case OpenFailure::kNone:
    case OpenFailure::kOther:
      break;
  }
  return "An internal error occurred.";
}

// Opens the bytes the way Windows does; empty with `failure` set when they cannot be opened.
std::vector<Item> open_contents(const std::string& bytes, ContentType type, const Secret& password,
                                OpenFailure& failure) {
  std::vector<Item> out;
  if (type == ContentType::kCert) {
    auto info = certstore::parse_certificate_der(bytes);
    if (!info) {
      failure = OpenFailure::kNoObject;
      return out;
    }
    out.push_back({bytes, info->subject, info->issuer, {}, std::nullopt});
    return out;
  }
  if (type != ContentType::kPfx) {
    failure = OpenFailure::kNoObject;
    return out;
  }
  auto pfx = certstore::open_pfx(bytes, password, "in this job");
  if (!pfx) {
    // The error's code says "invalid PFX" for a wrong password and for broken files alike: ask the file.
    failure = pfx_password_is_wrong(bytes, password) ? OpenFailure::kWrongPassword : OpenFailure::kOther;
    return out;
  }
  std::optional<std::string> key;
  if (pfx->has_private_key && pfx->key_matches_leaf) {
    auto pem = pfx_private_key_pem(bytes, password);
    if (!pem) {
      failure = OpenFailure::kOther;
      return out;
    }
    key = std::move(*pem);
  }
  out.push_back({pfx->leaf->der, pfx->leaf->info.subject, pfx->leaf->info.issuer, pfx->leaf->friendly_name, key});
  for (const auto& c : pfx->chain) out.push_back({c.der, c.info.subject, c.info.issuer, c.friendly_name, std::nullopt});
  return out;
}

}  // namespace

json store_inventory(Host& host, const json& args) {
  const std::string store_name = arg_string(args, "StoreName");
  json& store = host.open_store(store_name, false);
  json certs = json::array();
  for (const auto& cert : store) {
    const std::string der = Host::der(cert);
    if (der.empty()) continue;  // an unreadable entry is not a certificate Windows would list
    certs.push_back(json{{"Base64", base64_encode(der)},
                         {"HasPrivateKey", Host::has_private_key(cert)},
                         {"ProviderName", Host::has_private_key(cert) ? host.provider_of(cert) : std::string()},
                         {"FriendlyName", cert.value("friendly_name", std::string())}});
  }
  return json{{"StoreName", store_name}, {"Certificates", certs}};
}

json cert_add(Host& host, const json& args) {
  const std::string store_name = arg_string(args, "StoreName");
  const std::string thumbprint = to_upper(arg_string(args, "Thumbprint"));
  const Secret password(arg_string(args, "PfxPassword"));
  const std::string provider = arg_string(args, "ProviderName");
  if (thumbprint.empty()) fail("InvalidArgument", "Thumbprint is empty");
  const std::string bytes = decode_base64_arg(arg_string(args, "ContentsBase64"));
  const ContentType type = content_type(bytes);

  host.open_store(store_name, true);
  std::string status = "Added";
  json chain_added = json::array();
  json* existing = Host::find_cert(*host.find_store(store_name), thumbprint);
  if (existing && !arg_bool(args, "Overwrite")) {
    status = "AlreadyPresent";
  } else {
    if (existing) {
      // X509Store.Remove: the certificate goes, its key container stays where it was.
      Host::remove_cert(*host.find_store(store_name), thumbprint);
      host.changed();
      status = "Replaced";
    }
    std::vector<Item> collection;  // what the chain step looks at
    OpenFailure failure = OpenFailure::kNone;
    if (!provider.empty()) {
      host.assert_provider(provider);
      if (type == ContentType::kPfx) {
        collection = open_contents(bytes, type, password, failure);
        if (collection.empty()) {
          const bool bad_password = failure == OpenFailure::kWrongPassword;
          fail("CommandFailed",
               "certutil could not import the certificate with provider '" + provider + "' (exit code " +
                   (bad_password
                        ? "-2147024810): CertUtil: -importPFX command FAILED: 0x80070056 (WIN32: 86 "
                          "ERROR_INVALID_PASSWORD)\r\nCertUtil: The specified network password is not correct."
                        : "-2146885630): CertUtil: -importPFX command FAILED: 0x80092002 (-2146885630 "
                          "CRYPT_E_BAD_ENCODE)\r\nCertUtil: An error occurred during encode or decode operation."));
        }
        const Item& leaf = collection.front();
        std::string container;
        if (leaf.private_key_pem) {
          if (host.is_legacy_csp(provider) && private_key_family(*leaf.private_key_pem) != "RSA") {
            fail("CommandFailed", "certutil could not import the certificate with provider '" + provider +
                                      "' (exit code -2146893816): CertUtil: -importPFX command FAILED: 0x80090008 "
                                      "(-2146893816 NTE_BAD_ALGID)\r\nCertUtil: Invalid algorithm specified.");
          }
          container = host.new_key_container(provider, *leaf.private_key_pem, false);
        }
        Host::add_cert(*host.find_store(store_name), cert_entry(leaf.der, leaf.friendly_name, container));
      } else if (type == ContentType::kCert) {
        // certutil -addstore: the certificate alone; the chain step finds nothing on this path.
        Host::add_cert(*host.find_store(store_name), cert_entry(bytes, {}, {}));
      } else {
        fail("CommandFailed", "certutil could not import the certificate with provider '" + provider +
                                  "' (exit code -2146885623): CertUtil: -addstore command FAILED: 0x80092009 "
                                  "(-2146885623 CRYPT_E_NO_MATCH)\r\nCertUtil: Cannot find the requested object.");
      }
      host.changed();
    } else {
      collection = open_contents(bytes, type, password, failure);
      if (collection.empty()) {
        fail("PfxInvalid", "Windows could not open the PFX: Exception calling \"Import\" with \"3\" argument(s): \"" +
                               std::string(windows_text(failure)) + "\r\n\"");
      }
      const Item* leaf = nullptr;
      for (const auto& item : collection) {
        if (certstore::thumbprint_of(item.der) == thumbprint) leaf = &item;
      }
      if (!leaf) fail("PfxInvalid", "the PFX does not contain the certificate " + thumbprint);
      // .NET with MachineKeySet|PersistKeySet, no provider named in the PFX: the software KSP holds the key.
      std::string container;
      if (leaf->private_key_pem) {
        container = host.new_key_container("Microsoft Software Key Storage Provider", *leaf->private_key_pem, false);
      }
      Host::add_cert(*host.find_store(store_name), cert_entry(leaf->der, leaf->friendly_name, container));
      host.changed();
    }
    if (arg_bool(args, "AddChainToCaStore")) {
      json& ca = host.open_store("CA", true);
      for (const auto& other : collection) {
        const std::string thumb = certstore::thumbprint_of(other.der);
        // Intermediates only: a self-signed root is a trust decision, not ours to make.
        if (thumb != thumbprint && other.subject != other.issuer && !Host::find_cert(ca, thumb)) {
          Host::add_cert(ca, cert_entry(other.der, {}, {}));
          chain_added.push_back(thumb);
          host.changed();
        }
      }
    }
  }

  json* installed = Host::find_cert(host.open_store(store_name, false), thumbprint);
  if (!installed) {
    fail("VerificationFailed",
         "certificate " + thumbprint + " is not in LocalMachine\\" + store_name + " after the import");
  }
  const json installed_copy = *installed;

  json binding = nullptr;
  if (const auto& iis = args.value("IisBinding", json()); iis.is_object() && !iis.empty()) {
    binding = host.set_iis_binding(arg_string(iis, "SiteName"), arg_string(iis, "BindingInformation"), thumbprint,
                                   store_name, arg_int(iis, "SslFlags"))["Binding"];
  }
  json sql_bindings = json::array();
  if (const auto& sql = args.value("SqlBinding", json()); sql.is_object() && !sql.empty()) {
    for (const auto& instance : arg_list(sql, "InstanceNames")) {
      const std::string name = instance.is_string() ? instance.get<std::string>() : instance.dump();
      sql_bindings.push_back(
          host.set_sql_certificate(name, thumbprint, installed_copy, arg_bool(sql, "RestartService")));
    }
  }

  json replaced = nullptr;
  const std::string replaced_thumbprint = to_upper(arg_string(args, "ReplacedThumbprint"));
  if (!replaced_thumbprint.empty() && replaced_thumbprint != thumbprint) {
    json bound_sites = json::array();
    for (auto& site : host.iis_bindings_using(replaced_thumbprint)) bound_sites.push_back(site);
    if (host.sql_installed()) {
      for (const auto& instance : host.sql_instances()) {
        if (instance.value("netlib", true) &&
            iequals(instance.value("certificate", std::string()), replaced_thumbprint)) {
          bound_sites.push_back("SQL Server instance " + instance.value("name", std::string()));
        }
      }
    }
    bool removed = false;
    if (bound_sites.empty()) {
      json& cleanup = host.open_store(store_name, true);
      if (Host::remove_cert(cleanup, replaced_thumbprint)) {
        removed = true;
        host.changed();
      }
    }
    replaced = json{{"Thumbprint", replaced_thumbprint}, {"Removed", removed}, {"BoundSites", bound_sites}};
  }

  return json{{"Thumbprint", thumbprint},
              {"Status", status},
              {"HasPrivateKey", Host::has_private_key(installed_copy)},
              {"ProviderName", host.provider_of(installed_copy)},
              {"ChainAdded", chain_added},
              {"Binding", binding},
              {"SqlBindings", sql_bindings},
              {"Replaced", replaced}};
}

json cert_remove(Host& host, const json& args) {
  const std::string store_name = arg_string(args, "StoreName");
  const std::string thumbprint = to_upper(arg_string(args, "Thumbprint"));
  // The key stays unless the agent asks (store property DeletePrivateKeyOnRemove), as in the extension.
  const bool delete_key = arg_bool(args, "DeleteKey");
  json& store = host.open_store(store_name, true);
  bool found = false, removed = false, key_removed = false;
  if (json* cert = Host::find_cert(store, thumbprint)) {
    found = true;
    const std::string container = host.key_of(*cert) ? (*cert)["key"].get<std::string>() : std::string();
    Host::remove_cert(store, thumbprint);
    removed = true;
    host.changed();
    if (delete_key && !container.empty()) {
      // Keep the key when any other LocalMachine certificate still points at the same container.
      bool shared = false;
      for (const json* other : host.all_certificates()) {
        if (Host::has_private_key(*other) && !iequals(Host::thumbprint(*other), thumbprint) &&
            other->value("key", std::string()) == container) {
          shared = true;
          break;
        }
      }
      if (!shared) {
        host.data()["keys"].erase(container);
        key_removed = true;
      }
    }
  }
  return json{{"Thumbprint", thumbprint}, {"Found", found}, {"Removed", removed}, {"KeyRemoved", key_removed}};
}

json csr_create(Host& host, const json& args) {
  const std::string provider = arg_string(args, "ProviderName");
  const std::string algorithm = to_upper(arg_string(args, "KeyAlgorithm"));
  const int key_length = arg_int(args, "KeyLength");
  if (provider.empty()) fail("InvalidArgument", "ProviderName is empty");
  if (algorithm != "RSA" && algorithm != "ECDSA_P256" && algorithm != "ECDSA_P384" && algorithm != "ECDSA_P521") {
    fail("InvalidArgument", "KeyAlgorithm '" + arg_string(args, "KeyAlgorithm") + "' is not one certreq accepts");
  }
  host.assert_provider(provider);
  auto certreq_failed = [](const std::string& code, const std::string& text) {
    fail("CommandFailed", "certreq -new failed (exit code " + code + "): " + text);
  };
  if (algorithm != "RSA" && host.is_legacy_csp(provider)) {
    certreq_failed("-2146893812",
                   "Provider type does not match registered value. 0x8009000c (-2146893812 NTE_PROV_TYPE_ENTRY_BAD)");
  }
  if (algorithm == "RSA" && (key_length < 512 || key_length > 16384 || key_length % 8 != 0)) {
    certreq_failed("-2147024809", "The parameter is incorrect. 0x80070057 (WIN32: 87 ERROR_INVALID_PARAMETER)");
  }
  auto subject = parse_certreq_subject(arg_string(args, "Subject"));
  if (!subject) {
    certreq_failed("-2146881269",
                   "The string contains an invalid X500 name attribute key, oid, value or delimiter. "
                   "0x8009400b (-2146881269 CERT_E_INVALID_X500_STRING) (" +
                       subject.error().message + ")");
  }
  std::vector<SanEntry> sans;
  for (const auto& entry : arg_list(args, "Sans")) {
    auto san = parse_certreq_san(entry.is_string() ? entry.get<std::string>() : entry.dump());
    if (!san) certreq_failed("-2147024809", "The parameter is incorrect. 0x80070057 (" + san.error().message + ")");
    sans.push_back(std::move(*san));
  }
  auto key = generate_key(algorithm, key_length);
  if (!key) certreq_failed("-2146893785", "Key generation failed: " + key.error().message);
  auto csr = make_csr(key->private_key_pem, *subject, sans);
  if (!csr) {
    certreq_failed("-2146881269",
                   "The string contains an invalid X500 name attribute key, oid, value or delimiter. "
                   "0x8009400b (-2146881269 CERT_E_INVALID_X500_STRING) (" +
                       csr.error().message + ")");
  }
  // certreq -new -machine keeps the new key as a pending request until certreq -accept.
  const std::string container = host.new_key_container(provider, key->private_key_pem, true);
  host.data()["keys"][container]["request"] = base64_encode(*csr);
  host.changed();
  return json{{"Csr", base64_encode(*csr)}, {"ProviderName", provider}};
}

json csr_accept(Host& host, const json& args) {
  const std::string store_name = arg_string(args, "StoreName");
  const std::string der = decode_base64_arg(arg_string(args, "CertificateBase64"));
  auto info = certstore::parse_certificate_der(der);
  if (!info) {
    fail("NotSpecified",
         "Exception calling \".ctor\" with \"1\" argument(s): \"Cannot find the requested object.\r\n\"");
  }
  const std::string thumbprint = info->thumbprint;
  host.open_store(store_name, false);
  // certreq -accept: the issued certificate must belong to a pending request's key.
  const std::string public_key = certificate_public_key(der);
  std::string container;
  auto& keys = host.data()["keys"];
  if (keys.is_object()) {
    for (auto& [name, key] : keys.items()) {
      if (key.is_object() && key.value("pending", false) &&
          private_key_public_key(key.value("private_key_pem", std::string())) == public_key && !public_key.empty()) {
        container = name;
        break;
      }
    }
  }
  if (container.empty()) {
    fail("CommandFailed", "certreq -accept failed (exit code -2146885628): Cannot find object or property. 0x80092004");
  }
  json& my = host.open_store("My", true);
  keys[container]["pending"] = false;
  keys[container].erase("request");
  Host::add_cert(my, cert_entry(der, {}, container));
  host.changed();
  json installed = *Host::find_cert(my, thumbprint);
  if (!iequals(store_name, "My")) {
    json& target = host.open_store(store_name, true);
    Host::add_cert(target, installed);
    Host::remove_cert(host.open_store("My", true), thumbprint);
  }
  return json{
      {"Thumbprint", thumbprint}, {"HasPrivateKey", Host::has_private_key(installed)}, {"StoreName", store_name}};
}

}  // namespace wincert::sim::model::ops
