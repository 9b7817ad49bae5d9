// Job configurations exactly as the Keyfactor Universal Orchestrator hands them to an extension
// (InventoryJobConfiguration, ManagementJobConfiguration, ReenrollmentJobConfiguration), parsed into
// one typed model. The input is untrusted: every malformed field becomes an Error naming the field,
// and secrets (ServerPassword, PrivateKeyPassword, certificate Contents) stay in Secret and are never
// echoed in an error message.
//
// Tolerated the way the UO/Newtonsoft tolerates it: a UTF-8 byte-order mark, `null` anywhere
// (treated as absent), keys matched case-insensitively, booleans as JSON bools or as "true"/"false"
// strings in any case, numbers as JSON numbers or numeric strings, and
// `CertificateStoreDetails.Properties` as a JSON *string* holding an object (an object is accepted too).
//
// Placeholder values ("WinRmPortGoesHere", "ProtocolGoesHere", ...) parse fine; they are rejected
// where they are used (target resolution, entry-parameter validation), naming the property.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/encoding.hpp"
#include "common/result.hpp"
#include "common/secret.hpp"

namespace wincert::jobs {

// CertStoreOperationType as Command sends it. Only Add and Remove are carried out by the WinCert,
// IISU and WinSql handlers; the other known numbers parse so the handler can say what it refuses.
enum class OperationType : int {
  kUnknown = 0,
  kInventory = 1,
  kAdd = 2,
  kRemove = 3,
  kCreate = 4,
  kCreateAdd = 5,
};
std::string_view operation_name(OperationType op);  // "Add", "Remove", ...

// Ordering for maps keyed by names that Command and Newtonsoft treat case-insensitively.
struct CaseInsensitiveLess {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const;
};

// One store property (custom field) as found in Properties: the key spelling is kept so messages
// name the property the way the store type in Command spells it ("WinRm Port" or "WinRM Port").
struct StoreProperty {
  std::string key;
  std::string value;
};

// CertificateStoreDetails.Properties, keys matched case-insensitively. The names are the ones in
// jobs/store_properties.hpp's table.
struct StoreProperties {
  std::optional<StoreProperty> winrm_protocol;  // "WinRM Protocol": http | https | ssh (raw text)
  std::optional<StoreProperty> winrm_port;      // "WinRM Port": raw text, validated on resolution
  bool spn_with_port = false;                   // "spnwithport": Kerberos SPN HTTP/host:port
  std::optional<std::string> server_username;   // copy of the credentials; the top level wins
  std::optional<Secret> server_password;
  bool server_use_ssl = true;                         // "ServerUseSsl": parsed, not used (protocol decides)
  bool restart_service = false;                       // "RestartService" (WinSql); see DIFFERENCES.md
  std::optional<StoreProperty> winrm_authentication;  // ours: basic|ntlm|kerberos|negotiate|certificate
  bool winrm_allow_unencrypted = false;               // ours: "WinRM AllowUnencrypted", Basic over http
  bool delete_private_key_on_remove = false;          // ours: "DeletePrivateKeyOnRemove", WinCert/WinSql Remove
  std::optional<StoreProperty> jea_endpoint_name;     // "JEAEndpointName" (extension 4.0): session configuration
  std::optional<StoreProperty> execution_mode;        // ours: "ExecutionMode" psrp | winrs (raw text)
  // Every other property, verbatim (scalars as text), for handlers and diagnostics.
  std::map<std::string, std::string, CaseInsensitiveLess> other;
};

struct CertificateStoreDetails {
  std::string client_machine;  // "host", "host:port", "host|LocalMachine", "localhost"
  std::string store_path;      // LocalMachine store name: My, WebHosting, Root, ...
  int type = 0;                // Command's numeric store-type id (informational)
  StoreProperties properties;
};

// What Command believes the store holds (LastInventory).
struct PreviousInventoryItem {
  std::string alias;
  bool private_key_entry = false;
  std::vector<std::string> thumbprints;
};

// ManagementJobCertificate. Contents is base64 PKCS#12 when a password is set, else base64 DER.
struct JobCertificate {
  std::optional<std::string> thumbprint;
  Secret contents;
  std::string alias;
  Secret private_key_password;
};

// Entry parameters (JobProperties of management and reenrollment jobs) the handlers use. Absent or
// null values are nullopt; validation happens where they are used (alias.hpp).
struct EntryParameters {
  std::optional<std::string> site_name;
  std::optional<std::string> port;
  std::optional<std::string> ip_address;
  std::optional<std::string> host_name;
  std::optional<std::string> sni_flag;
  std::optional<std::string> protocol;
  std::optional<std::string> provider_name;
  std::optional<std::string> instance_name;
  std::optional<std::string> renewal_thumbprint;
  std::optional<std::string> san;  // legacy "dns=a&ipaddress=b" string (removed from the manifest in 3.0)
};

// One subject alternative name with the type key normalised as the extension's SANBuilder does:
// dns -> dns; ip, ip4, ip6 -> ipaddress; email, rfc822 -> email; uri; upn; anything else lowercased.
struct SanEntry {
  std::string type;
  std::string value;
  bool operator==(const SanEntry&) const = default;
};
std::string normalize_san_key(std::string_view key);
// "dns=a.com&dns=b.com&ipaddress=10.0.0.1", the extension's SAN text (empty for no SANs).
std::string san_string(const std::vector<SanEntry>& sans);
// Parses the legacy SAN entry parameter ("dns=a.com&ipaddress=1.2.3.4"); keys normalised the same way.
Result<std::vector<SanEntry>> parse_legacy_san(std::string_view text);

// Reenrollment (on-device key generation) inputs.
struct ReenrollmentRequest {
  std::string subject;                  // JobProperties.subjectText
  std::optional<std::string> key_type;  // JobProperties.keyType ("RSA", "ECC", ...)
  std::optional<std::string> key_size;  // JobProperties.keySize ("2048", "P-256", "256")
  std::vector<SanEntry> sans;           // SANs map, else the legacy SAN entry parameter
};

struct JobConfig {
  std::string job_id;
  std::string job_type_id;
  std::string capability;  // "CertStores.IISU.Management"
  std::int64_t job_history_id = 0;
  bool job_cancelled = false;
  std::optional<OperationType> operation_type;
  bool overwrite = false;
  CertificateStoreDetails store;
  // Effective credentials: the top-level fields win over the copies inside Properties.
  std::optional<std::string> server_username;
  Secret server_password;
  std::vector<PreviousInventoryItem> last_inventory;
  std::optional<JobCertificate> job_certificate;
  std::string alias;  // reenrollment's top-level Alias
  // Every JobProperties entry with scalars as text (arrays/objects as JSON text); nulls left out.
  std::map<std::string, std::string, CaseInsensitiveLess> job_properties;
  EntryParameters entry;
  ReenrollmentRequest reenrollment;
  bool has_sans = false;  // a SANs map was present (even if empty)
};

// Takes the entries of LastInventory out of a job configuration while its text is parsed, so that the
// inventory of a large store exists once, as PreviousInventoryItems, and never also as a JSON tree (a 60 MB
// configuration took 9x its size in memory that way). Give callback() to parse_peer_json_as, then the reader
// to parse_job_config_document. It must outlive the parse (the callback refers to it).
class LastInventoryReader {
 public:
  LastInventoryReader() = default;
  LastInventoryReader(const LastInventoryReader&) = delete;
  LastInventoryReader& operator=(const LastInventoryReader&) = delete;

  nlohmann::ordered_json::parser_callback_t callback();

  // The entries taken, in document order, or the first one that could not be read.
  Result<std::vector<PreviousInventoryItem>> take();

 private:
  struct Level {
    bool is_array = false;
    bool holds_inventory = false;  // the array under LastInventory (at the top, or in the Job wrapper)
    std::string key;               // objects: the last key read
    std::size_t index = 0;         // arrays: the next element's index
  };
  bool on_event(nlohmann::ordered_json::parse_event_t event, nlohmann::ordered_json& parsed);
  std::vector<Level> stack_;
  std::vector<PreviousInventoryItem> items_;
  Status status_;
};

// Parses a job configuration. A leading UTF-8 BOM is skipped.
Result<JobConfig> parse_job_config(std::string_view json_text);
// The same for a document already parsed with parse_peer_json (from Command): moved in, not copied. With a
// reader, LastInventory holds what the reader took out of the document while it was parsed.
Result<JobConfig> parse_job_config_document(nlohmann::ordered_json root, LastInventoryReader* last_inventory = nullptr);

// Sets one value in a raw job configuration before parsing, for `replay JOB.json --set PATH=VALUE`.
// PATH is dot-separated (keys cannot contain '.'), matched case-insensitively against existing keys
// (a missing key is created with the given spelling). Descending into a value that is a JSON string
// holding an object (CertificateStoreDetails.Properties) edits that inner object and writes it back
// as a string. VALUE becomes a string when the current value is a string; a JSON literal (true,
// false, null, a number) when the current value is a bool or number, or when the key is new or null
// and VALUE reads as such a literal; a string otherwise. Returns the edited JSON text (without BOM).
Result<std::string> set_override(std::string_view json_text, std::string_view path, std::string_view value);
// "PATH=VALUE" form of the above (the first '=' separates them).
Result<std::string> apply_override(std::string_view json_text, std::string_view assignment);

}  // namespace wincert::jobs
