// What certstore does to a Windows machine, independent of how (remote PowerShell or local CryptoAPI):
// the LocalMachine certificate stores, IIS https bindings, and SQL Server's TLS certificate.
// Plain value types in, plain value types out; every operation is a coroutine returning Result.
#pragma once

#include "certstore/csr.hpp"
#include "certstore/x509.hpp"
#include "common/result.hpp"
#include "common/secret.hpp"

#include <boost/asio/awaitable.hpp>

#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace wincert::certstore {

template <typename T>
using Task = boost::asio::awaitable<Result<T>>;

// ---- certificate stores ----

struct InventoryEntry {
  std::string der;         // the certificate's DER bytes
  std::string thumbprint;  // SHA-1 uppercase hex, computed from der
  bool has_private_key = false;
  std::string provider_name;  // CNG KSP or CryptoAPI CSP holding the key ("" without a key)
  std::string friendly_name;
  std::vector<SubjectAltName> sans;  // from the DER (inventory_facts_der): what Command's SAN parameter shows
  std::string base64;  // the host's base64 of der when it is exactly base64_encode(der), else "": not re-encoded
};

struct StoreInventory {
  std::string store;  // "My", "WebHosting", ...
  std::vector<InventoryEntry> entries;
  std::vector<std::string> problems;  // entries the host returned that could not be parsed (one line each)
};

// A store's inventory handed out one certificate at a time (CertStore::read_inventory), so that a job can
// pass each one on to Command and drop it: a large store is never held decoded whole.
class InventoryReader {
 public:
  virtual ~InventoryReader() = default;
  // The next certificate that could be read, or nothing when there are no more. An entry that cannot be
  // read is skipped and noted in problems(); an Error means the rest of the inventory cannot be read
  // (the host's output is malformed), and the inventory as a whole has failed.
  virtual Result<std::optional<InventoryEntry>> next() = 0;
  // One line per entry the host returned that could not be read, so far.
  const std::vector<std::string>& problems() const { return problems_; }

 protected:
  std::vector<std::string> problems_;
};

// A reader over an inventory that was read whole (backends that list a store in one call).
std::unique_ptr<InventoryReader> read_from(StoreInventory inventory);

struct IisBindingRequest {
  std::string site = "Default Web Site";
  std::string ip = "*";  // "*", IPv4 or IPv6 (with or without brackets)
  int port = 443;
  std::string host;  // SNI host name; "" = all host names
  int ssl_flags = 0;
};

struct IisBinding {
  std::string site;
  std::string protocol;  // "https" (list returns others too)
  std::string ip;        // "*" or the address without brackets
  int port = 0;
  std::string host;
  std::string thumbprint;  // uppercase hex, "" when no certificate is bound
  std::string store;       // "My", "WebHosting"
  int ssl_flags = 0;
};

struct SqlBindingRequest {
  std::vector<std::string> instances{"MSSQLSERVER"};
  bool restart_service = false;
};

enum class AddOutcome { kAdded, kReplaced, kAlreadyPresent };

// ---- post-import steps: what a store type does with a certificate right after importing it ----

// Bind the certificate to an IIS https binding, then remove the certificate it replaces if no IIS
// binding uses that one any more.
struct IisBindingStep {
  IisBindingRequest binding;
  std::string replaced_thumbprint;  // "" = nothing to clean up
};

// Make the certificate SQL Server's TLS certificate on the listed instances.
struct SqlBindingStep {
  SqlBindingRequest binding;
};

// One step a backend carries out after the import of the same add (the remote backend sends the
// import and every step to the host in one script invocation). A new kind of step is a new
// alternative here plus its handling in each backend.
using PostImportStep = std::variant<IisBindingStep, SqlBindingStep>;

struct AddCertificateRequest {
  std::string store = "My";
  Secret contents_base64;              // PFX or DER in base64, as Command sends it
  Secret password;                     // the PFX password ("" = none)
  std::string label;                   // how messages name it (see certificate_label())
  bool overwrite = false;              // replace a certificate with the same thumbprint
  std::string provider_name;           // "" = Windows' default for the PFX
  bool add_chain_to_ca_store = false;  // intermediates from the PFX go to LocalMachine\CA
  bool private_key_required = false;   // bindings: refuse a PFX without a key before touching the host
  std::vector<PostImportStep> steps;   // at most one of each kind, in the same invocation as the import
};

struct SqlInstanceBinding {
  std::string instance;
  bool verified = false;  // the registry holds the new thumbprint after writing
  std::string key_file;   // the private key file the service account was granted read on
  bool restarted = false;
};

struct ReplacedCertificate {
  std::string thumbprint;
  bool removed = false;
  std::vector<std::string> still_bound_sites;  // why it stayed
};

// The outcome of an IisBindingStep.
struct IisBindingOutcome {
  IisBinding binding;
  std::optional<ReplacedCertificate> replaced;  // when the step named a different replaced certificate
};

// The outcome of a SqlBindingStep.
struct SqlBindingOutcome {
  std::vector<SqlInstanceBinding> instances;
};

// One per PostImportStep, in the order of the request's steps.
using PostImportOutcome = std::variant<IisBindingOutcome, SqlBindingOutcome>;

struct AddCertificateResult {
  std::string thumbprint;
  AddOutcome outcome = AddOutcome::kAdded;
  bool has_private_key = false;
  std::string provider_name;
  std::vector<std::string> chain_added;  // thumbprints placed in the CA store
  std::vector<PostImportOutcome> steps;  // one per request step, same order

  // The outcome of the step of kind T (nullptr when the request had none).
  template <typename T>
  const T* step() const {
    for (const auto& outcome : steps) {
      if (const T* found = std::get_if<T>(&outcome)) return found;
    }
    return nullptr;
  }
};

// The step of kind T in a request (nullptr when it has none).
template <typename T>
const T* find_step(const std::vector<PostImportStep>& steps) {
  for (const auto& step : steps) {
    if (const T* found = std::get_if<T>(&step)) return found;
  }
  return nullptr;
}

struct RemoveRequest {
  std::string store = "My";
  std::string thumbprint;
  // Off (the default) keeps the private key, as the extension does: an HSM-backed key may be shared with
  // other servers. On deletes the key when no other LocalMachine certificate uses it.
  bool delete_unused_key = false;
};

struct RemoveResult {
  bool found = false;
  bool removed = false;
  bool key_removed = false;  // false unless asked for, or when another certificate still uses the key
};

struct CsrRequest {
  std::string store = "My";
  std::string subject;        // as Command sends it, e.g. "CN=web01,O=Keyfactor\, Inc,C=US"
  std::string key_type;       // "RSA", "ECC", ...
  std::string key_size;       // "2048", "P-256", ...
  std::string provider_name;  // "" = default for the key type
  std::vector<SubjectAltName> sans;
};

struct InstallIssuedRequest {
  std::string store = "My";
  std::string certificate_der;  // the issued certificate
};

struct InstallIssuedResult {
  std::string thumbprint;
  bool has_private_key = false;  // the certificate found its generated key
};

class CertStore {
 public:
  virtual ~CertStore() = default;
  virtual Task<StoreInventory> inventory(std::string store) = 0;
  // The same one certificate at a time. By default over inventory(); the remote backend decodes each
  // certificate only when it is asked for.
  virtual Task<std::unique_ptr<InventoryReader>> read_inventory(std::string store);
  // Imports a PFX (or DER) into a LocalMachine store with a persisted machine key, honouring Overwrite,
  // then carries out the request's post-import steps (bindings, cleanup) in the same operation.
  virtual Task<AddCertificateResult> add(AddCertificateRequest request) = 0;
  // Removes a certificate; its private key only when request.delete_unused_key is set and no other
  // certificate uses the key.
  virtual Task<RemoveResult> remove(RemoveRequest request) = 0;
  // Creates a key on the device and a PKCS#10 request for it (on-device key generation).
  virtual Task<CertificateRequest> create_csr(CsrRequest request) = 0;
  // Installs the certificate issued for a create_csr() request onto its generated key.
  virtual Task<InstallIssuedResult> install_issued(InstallIssuedRequest request) = 0;
};

// ---- IIS ----

struct RemoveIfUnusedResult {
  bool removed = false;
  std::vector<std::string> still_bound_sites;
};

struct IisBindResult {
  IisBinding binding;
  bool replaced_existing = false;  // an https binding with the same IP:Port:Host was replaced
};

class IisBindings {
 public:
  virtual ~IisBindings() = default;
  virtual Task<std::vector<IisBinding>> list() = 0;
  // Binds thumbprint (in store) to the exact IP:Port:Host https binding of the site, replacing it.
  virtual Task<IisBindResult> bind(IisBindingRequest binding, std::string thumbprint, std::string store) = 0;
  // Removes the https binding IP:Port:Host of the site; false when there was none.
  virtual Task<bool> unbind(IisBindingRequest binding) = 0;
  // Removes the certificate only when no IIS binding uses it.
  virtual Task<RemoveIfUnusedResult> remove_certificate_if_unused(std::string store, std::string thumbprint) = 0;
};

// ---- SQL Server ----

struct SqlInstance {
  std::string name;             // "MSSQLSERVER", "SQLEXPRESS"
  std::string instance_id;      // "MSSQL16.MSSQLSERVER"
  std::string thumbprint;       // uppercase hex of SuperSocketNetLib\Certificate, "" when none
  std::string service_name;     // "MSSQLSERVER", "MSSQL$SQLEXPRESS"
  std::string service_account;  // "NT Service\MSSQLSERVER"
};

struct SqlUnbindOutcome {
  std::string instance;
  bool unbound = false;  // false when another certificate was bound (left alone)
  std::string previous_thumbprint;
  bool restarted = false;
};

struct SqlServiceState {
  std::string instance;
  std::string service_name;
  std::string status;  // "Running", ...
};

class SqlBindings {
 public:
  virtual ~SqlBindings() = default;
  virtual Task<std::vector<SqlInstance>> list_instances() = 0;
  virtual Task<std::vector<SqlInstanceBinding>> bind(SqlBindingRequest request, std::string thumbprint,
                                                     std::string store) = 0;
  // Clears the certificate only on instances where thumbprint is the one bound.
  virtual Task<std::vector<SqlUnbindOutcome>> unbind(SqlBindingRequest request, std::string thumbprint) = 0;
  virtual Task<std::vector<SqlServiceState>> restart(std::vector<std::string> instances) = 0;
};

// ---- one host ----

// Every certstore service of one host (one WinRM connection + shell, or this machine's local backend),
// by construction: the agent opens one per target without knowing store types, and each store type
// takes the services it declares (jobs/store_types/).
class HostSession {
 public:
  virtual ~HostSession() = default;
  virtual CertStore& certs() = 0;
  virtual IisBindings& iis() = 0;
  virtual SqlBindings& sql() = 0;
};

}  // namespace wincert::certstore
