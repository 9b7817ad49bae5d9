#include "certstore/remote/remote_backend.hpp"

#include "certstore/iis.hpp"
#include "certstore/pkcs12.hpp"
#include "certstore/remote/contract.hpp"
#include "certstore/remote/inventory_scan.hpp"
#include "certstore/scripts.hpp"
#include "common/encoding.hpp"
#include "common/peer_json.hpp"
#include "common/worker_pool.hpp"

#include <boost/asio/this_coro.hpp>

#include <algorithm>

namespace wincert::certstore::remote {

using nlohmann::json;

namespace {

// --- reading untrusted script output: wrong types become Errors, never exceptions ---

Result<std::string> get_string(const json& obj, std::string_view key, bool required = false) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return Error::invalid_argument("the field '" + std::string(key) + "' is missing");
    return std::string();
  }
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<long long>());
  return Error::invalid_argument("the field '" + std::string(key) + "' is not text");
}

Result<bool> get_bool(const json& obj, std::string_view key) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return false;
  if (it->is_boolean()) return it->get<bool>();
  return Error::invalid_argument("the field '" + std::string(key) + "' is not true/false");
}

Result<int> get_int(const json& obj, std::string_view key) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return 0;
  if (it->is_number_integer()) {
    const auto value = it->get<long long>();
    if (value < INT32_MIN || value > INT32_MAX)
      return Error::invalid_argument("the field '" + std::string(key) + "' is out of range");
    return static_cast<int>(value);
  }
  if (it->is_string()) {
    try {
      return std::stoi(it->get<std::string>());
    } catch (const std::exception&) {
    }
  }
  return Error::invalid_argument("the field '" + std::string(key) + "' is not a number");
}

// PowerShell 5.1's ConvertTo-Json writes a one-element collection as a bare object in some paths;
// accept both so a host with one certificate still parses.
std::vector<const json*> as_list(const json& obj, std::string_view key) {
  std::vector<const json*> out;
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (it->is_array()) {
    for (const auto& item : *it) out.push_back(&item);
  } else if (it->is_object() && it->contains("value") && it->contains("Count") && (*it)["value"].is_array()) {
    // PowerShell 5.1's ETS wrapper around arrays ({"value":[...],"Count":n}) when System.Array type data is loaded.
    for (const auto& item : (*it)["value"]) out.push_back(&item);
  } else {
    out.push_back(&*it);
  }
  return out;
}

Result<std::vector<std::string>> get_string_list(const json& obj, std::string_view key) {
  std::vector<std::string> out;
  for (const json* item : as_list(obj, key)) {
    if (!item->is_string())
      return Error::invalid_argument("the field '" + std::string(key) + "' is not a list of text");
    out.push_back(item->get<std::string>());
  }
  return out;
}

// Error text from a host in one line: line breaks and runs of blanks collapse to one space.
std::string one_line(std::string_view raw, std::size_t limit = 400) {
  std::string text;
  for (char c : trim(raw)) {
    const bool blank = c == '\r' || c == '\n' || c == '\t' || c == ' ';
    if (blank && (text.empty() || text.back() == ' ')) continue;
    text += blank ? ' ' : c;
  }
  if (text.size() > limit) text = text.substr(0, limit) + "...";
  return text;
}

std::string scrub_secret(std::string text, const Secret* secret) {
  if (secret == nullptr || secret->empty()) return text;
  const std::string& value = secret->reveal();
  for (auto pos = text.find(value); pos != std::string::npos; pos = text.find(value, pos)) {
    text.replace(pos, value.size(), "***");
    pos += 3;
  }
  return text;
}

// A script prints one JSON document; tolerate stray lines before it (a tool writing to stdout).
// Nothing when there is no document; an error when the output is beyond what a script may print
// (the host is a peer: too large, too deep or too wide is refused before any value is built).
Result<std::optional<json>> parse_document(std::string_view text) {
  constexpr std::string_view kWhat = "the script's output";
  WINCERT_TRY(check_peer_json(text, peer_json_limits::kScriptOutput, kWhat));
  auto whole = json::parse(text, nullptr, false);
  if (!whole.is_discarded()) return std::optional<json>(std::move(whole));
  std::size_t end = text.size();
  while (end > 0) {
    const auto start = text.rfind('\n', end - 1);
    const auto line = trim(text.substr(start == std::string_view::npos ? 0 : start + 1,
                                       end - (start == std::string_view::npos ? 0 : start + 1)));
    if (!line.empty()) {
      WINCERT_TRY(check_peer_json(line, peer_json_limits::kScriptOutput, kWhat));
      auto parsed = json::parse(line, nullptr, false);
      if (!parsed.is_discarded() && parsed.is_object()) return std::optional<json>(std::move(parsed));
      return std::optional<json>();
    }
    if (start == std::string_view::npos) break;
    end = start;
  }
  return std::optional<json>();
}

std::string where(std::string_view op_name, std::string_view store, std::string_view host) {
  std::string text = std::string(op_name) + " failed";
  if (!store.empty()) text += " on store '" + std::string(store) + "'";
  text += " on host '" + std::string(host) + "': ";
  return text;
}

Result<json> require_object(Result<json> doc) {
  if (!doc) return doc;
  if (!doc->is_object()) return Error::invalid_argument("the script's output is not a JSON object");
  return doc;
}

std::string error_context(std::string_view op_name, std::string_view store, std::string_view host) {
  return where(op_name, store, host);
}

// Windows and SQL's registry write thumbprints in any case and sometimes with spaces.
std::string thumbprint_or_empty(std::string_view raw) {
  if (trim(raw).empty()) return {};
  const auto normalized = normalize_thumbprint(raw);
  return normalized.empty() ? to_upper(trim(raw)) : normalized;
}

Result<IisBinding> binding_from(const json& doc) {
  if (!doc.is_object()) return Error::invalid_argument("an IIS binding entry is not an object");
  IisBinding binding;
  WINCERT_ASSIGN_OR_RETURN(auto site, get_string(doc, out::kSiteName, true));
  binding.site = std::move(site);
  WINCERT_ASSIGN_OR_RETURN(auto protocol, get_string(doc, out::kProtocol));
  binding.protocol = to_lower(protocol);
  WINCERT_ASSIGN_OR_RETURN(auto info, get_string(doc, out::kBindingInformation, true));
  if (binding.protocol == "http" || binding.protocol == "https") {
    auto address = parse_binding_information(info);
    if (!address) return address.error().context("site '" + binding.site + "': ");
    binding.ip = address->ip;
    binding.port = address->port;
    binding.host = address->host;
  } else {
    binding.host = info;  // net.tcp and friends: keep the raw text, there is no IP:Port:Host
    binding.ip.clear();
  }
  WINCERT_ASSIGN_OR_RETURN(auto hash, get_string(doc, out::kCertificateHash));
  binding.thumbprint = thumbprint_or_empty(hash);
  WINCERT_ASSIGN_OR_RETURN(auto store, get_string(doc, out::kCertificateStoreName));
  binding.store = std::move(store);
  WINCERT_ASSIGN_OR_RETURN(auto flags, get_int(doc, out::kSslFlags));
  binding.ssl_flags = flags;
  return binding;
}

Result<std::vector<SqlInstanceBinding>> sql_bindings_from(const json& doc, std::string_view key) {
  std::vector<SqlInstanceBinding> out_list;
  for (const json* item : as_list(doc, key)) {
    if (!item->is_object()) return Error::invalid_argument("a SQL binding entry is not an object");
    SqlInstanceBinding binding;
    WINCERT_ASSIGN_OR_RETURN(binding.instance, get_string(*item, out::kInstanceName, true));
    WINCERT_ASSIGN_OR_RETURN(binding.verified, get_bool(*item, out::kVerified));
    WINCERT_ASSIGN_OR_RETURN(binding.key_file, get_string(*item, out::kKeyFile));
    WINCERT_ASSIGN_OR_RETURN(binding.restarted, get_bool(*item, out::kRestarted));
    out_list.push_back(std::move(binding));
  }
  return out_list;
}

json instance_names(const std::vector<std::string>& names) {
  json list = json::array();
  for (const auto& name : names) {
    if (!trim(name).empty()) list.push_back(std::string(trim(name)));
  }
  if (list.empty()) list.push_back("MSSQLSERVER");
  return list;
}

Result<std::string> binding_information_for(const IisBindingRequest& request) {
  return format_binding_information(BindingAddress{request.ip, request.port, request.host});
}

Status check_sql_bindings(const std::vector<SqlInstanceBinding>& bindings, std::string_view thumbprint,
                          std::string_view host) {
  for (const auto& binding : bindings) {
    if (!binding.verified) {
      return Error::failed_precondition("binding certificate " + std::string(thumbprint) + " to SQL Server instance '" +
                                        binding.instance + "' on host '" + std::string(host) +
                                        "' could not be verified: the registry does not hold the new thumbprint");
    }
  }
  return {};
}

// One element of store-inventory's Certificates (numbered from 1, as problem lines name it): the entry,
// or nothing and one line in problems (what Command is told about a certificate it will not see).
std::optional<InventoryEntry> inventory_entry_from(const json& item, std::size_t number,
                                                   std::vector<std::string>& problems) {
  const std::string where_text = "entry " + std::to_string(number);
  if (!item.is_object()) {
    problems.push_back(where_text + ": not an object");
    return std::nullopt;
  }
  auto base64 = get_string(item, out::kBase64, true);
  if (!base64) {
    problems.push_back(where_text + ": " + base64.error().message);
    return std::nullopt;
  }
  auto der = base64_decode(*base64);
  if (!der) {
    problems.push_back(where_text + ": the certificate is not valid base64");
    return std::nullopt;
  }
  // The thumbprint and the SANs are all Command's inventory takes from the DER: no full X.509 parse.
  auto info = inventory_facts_der(*der);
  if (!info) {
    problems.push_back(where_text + ": " + info.error().message);
    return std::nullopt;
  }
  InventoryEntry entry;
  auto has_key = get_bool(item, out::kHasPrivateKey);
  auto provider = get_string(item, out::kProviderName);
  auto friendly = get_string(item, out::kFriendlyName);
  if (!has_key || !provider || !friendly) {
    problems.push_back(where_text + " (" + info->thumbprint + "): malformed properties");
    return std::nullopt;
  }
  if (is_canonical_base64(*base64, der->size())) entry.base64 = std::move(*base64);
  entry.der = std::move(*der);
  entry.thumbprint = info->thumbprint;
  entry.has_private_key = *has_key;
  entry.provider_name = *provider;
  entry.friendly_name = *friendly;
  entry.sans = std::move(info->sans);
  return entry;
}

}  // namespace

Result<std::optional<json>> parse_script_document(std::string_view stdout_text) { return parse_document(stdout_text); }

// ---------------------------------------------------------------------------------------------------

boost::asio::awaitable<Result<json>> ScriptCaller::call(std::string_view op_name, json args, std::string_view store,
                                                        const Secret* scrub) {
  WINCERT_CO_ASSIGN_OR_RETURN(auto output, co_await run(op_name, std::move(args), store));
  co_return document_of(op_name, store, output, scrub);
}

boost::asio::awaitable<Result<ScriptOutput>> ScriptCaller::run(std::string_view op_name, json args,
                                                               std::string_view store) {
  const auto script = script_for(op_name);
  if (!script) {
    co_return Error::internal("internal error: no embedded script for the operation '" + std::string(op_name) + "'");
  }
  auto ran = co_await runner_.run(op_name, *script, args);
  if (!ran) co_return ran.error().context(where(op_name, store, runner_.host()));
  co_return std::move(*ran);
}

Result<json> ScriptCaller::document_of(std::string_view op_name, std::string_view store, const ScriptOutput& output,
                                       const Secret* scrub) const {
  const std::string host_name = runner_.host();
  auto parsed = parse_document(output.stdout_text);
  if (!parsed) return parsed.error().context(where(op_name, store, host_name));
  std::optional<json>& doc = parsed.value();
  const json* error_doc = nullptr;
  if (doc && doc->is_object()) {
    const auto it = doc->find(out::kError);
    if (it != doc->end() && it->is_object()) error_doc = &*it;
  }
  if (output.exit_code != 0 || error_doc != nullptr) {
    std::string message, category_name;
    if (error_doc != nullptr) {
      message = get_string(*error_doc, out::kErrorMessage).ok() ? *get_string(*error_doc, out::kErrorMessage) : "";
      category_name =
          get_string(*error_doc, out::kErrorCategory).ok() ? *get_string(*error_doc, out::kErrorCategory) : "";
    }
    if (message.empty()) message = output.error_text;
    if (message.empty())
      message = "the script exited with code " + std::to_string(output.exit_code) + " and no message";
    std::string text = where(op_name, store, host_name) + scrub_secret(one_line(message), scrub);
    // The code comes from the category alone (one table, certstore/remote/contract.cpp), never from the text;
    // the category is peer text, so the message and the detail get it bounded and on one line.
    const ErrorCode code = error_code_for_category(category_name);
    if (category_name.empty()) return Error::make(code, std::move(text));
    std::string shown_category = one_line(category_name, 60);
    text += " [" + shown_category + "]";
    return Error::make(code, std::move(text)).with_script_category(std::move(shown_category));
  }
  if (!doc) {
    return Error::invalid_argument(where(op_name, store, host_name) + "the script printed no JSON document (" +
                                   scrub_secret(one_line(output.stdout_text, 120), scrub) + ")");
  }
  return std::move(*doc);  // moved, never copied: the document may be megabytes
}

boost::asio::awaitable<Result<HostInfo>> ScriptCaller::host_info() {
  if (host_info_) co_return *host_info_;
  WINCERT_CO_ASSIGN_OR_RETURN(auto doc, co_await call(op::kHostInfo, json::object()));
  auto info = parse_host_info(doc);
  if (!info) co_return info.error().context(where(op::kHostInfo, {}, host()));
  host_info_ = *info;
  co_return *info;
}

Result<HostInfo> parse_host_info(const json& doc) {
  if (!doc.is_object()) return Error::invalid_argument("host-info did not return an object");
  HostInfo info;
  WINCERT_ASSIGN_OR_RETURN(info.hostname, get_string(doc, out::kHostname));
  WINCERT_ASSIGN_OR_RETURN(info.os_build, get_int(doc, out::kOsBuild));
  WINCERT_ASSIGN_OR_RETURN(info.os_version, get_string(doc, out::kOsVersion));
  WINCERT_ASSIGN_OR_RETURN(info.ps_version, get_string(doc, out::kPsVersion));
  if (info.os_build <= 0) return Error::invalid_argument("host-info returned no OS build number");
  return info;
}

Result<StoreInventory> parse_store_inventory(const json& doc, std::string_view store) {
  if (!doc.is_object()) return Error::invalid_argument("store-inventory did not return an object");
  StoreInventory inventory;
  inventory.store = std::string(store);
  std::size_t number = 0;
  for (const json* item : as_list(doc, out::kCertificates)) {
    if (auto entry = inventory_entry_from(*item, ++number, inventory.problems)) {
      inventory.entries.push_back(std::move(*entry));
    }
  }
  return inventory;
}

namespace {

// store-inventory's output of the plain shape, over its text: each element parsed alone when asked for.
class StreamedInventoryReader final : public InventoryReader {
 public:
  StreamedInventoryReader(InventoryScan scan, std::string error_context)
      : scan_(std::move(scan)),
        context_(std::move(error_context)),
        element_limits_{peer_json_limits::kScriptOutput.max_bytes, scan_.element_max_depth(),
                        peer_json_limits::kScriptOutput.max_object_members} {}

  Result<std::optional<InventoryEntry>> next() override {
    while (true) {
      auto element = scan_.next();
      if (!element) return element.error().context(context_);
      if (!element->has_value()) return std::optional<InventoryEntry>();
      const std::size_t number = scan_.elements_read();
      auto item = parse_peer_json_as<json>(**element, element_limits_,
                                           "entry " + std::to_string(number) + " of the script's output");
      if (!item) return item.error().context(context_);
      if (auto entry = inventory_entry_from(*item, number, problems_)) return entry;
    }
  }

 private:
  InventoryScan scan_;
  std::string context_;
  PeerJsonLimits element_limits_;
};

}  // namespace

std::unique_ptr<InventoryReader> stream_store_inventory(std::string& stdout_text, std::string error_context) {
  auto scan = InventoryScan::open(stdout_text);
  if (!scan) return nullptr;
  return std::make_unique<StreamedInventoryReader>(std::move(*scan), std::move(error_context));
}

Result<IisBinding> parse_iis_binding(const json& doc) { return binding_from(doc); }

Result<std::vector<SqlInstance>> parse_sql_instances(const json& doc) {
  if (!doc.is_object()) return Error::invalid_argument("sql-list-instances did not return an object");
  std::vector<SqlInstance> instances;
  for (const json* item : as_list(doc, out::kInstances)) {
    if (!item->is_object()) return Error::invalid_argument("a SQL instance entry is not an object");
    SqlInstance instance;
    WINCERT_ASSIGN_OR_RETURN(instance.name, get_string(*item, out::kInstanceName, true));
    WINCERT_ASSIGN_OR_RETURN(instance.instance_id, get_string(*item, out::kInstanceId));
    WINCERT_ASSIGN_OR_RETURN(const std::string cert, get_string(*item, out::kCertificate));
    instance.thumbprint = thumbprint_or_empty(cert);
    WINCERT_ASSIGN_OR_RETURN(instance.service_name, get_string(*item, out::kServiceName));
    WINCERT_ASSIGN_OR_RETURN(instance.service_account, get_string(*item, out::kServiceAccount));
    instances.push_back(std::move(instance));
  }
  return instances;
}

// --- CertStore ---

Task<StoreInventory> RemoteCertStore::inventory(std::string store) {
  WINCERT_CO_ASSIGN_OR_RETURN(auto reader, co_await read_inventory(store));
  StoreInventory inventory;
  inventory.store = std::move(store);
  while (true) {
    WINCERT_CO_ASSIGN_OR_RETURN(auto entry, reader->next());
    if (!entry) break;
    inventory.entries.push_back(std::move(*entry));
  }
  inventory.problems = reader->problems();
  co_return inventory;
}

Task<std::unique_ptr<InventoryReader>> RemoteCertStore::read_inventory(std::string store) {
  json args = {{arg::kStoreName, store}};
  WINCERT_CO_ASSIGN_OR_RETURN(auto output, co_await caller_->run(op::kStoreInventory, std::move(args), store));
  const std::string context = where(op::kStoreInventory, store, caller_->host());
  if (output.exit_code == 0) {
    if (auto reader = stream_store_inventory(output.stdout_text, context)) co_return reader;
  }
  // Every other output (a failure, stray lines, PowerShell's other shapes, ...) is read whole, exactly as call()
  // reads it: the reader is then over the decoded inventory.
  WINCERT_CO_ASSIGN_OR_RETURN(auto doc, caller_->document_of(op::kStoreInventory, store, output));
  auto parsed = parse_store_inventory(doc, store);
  if (!parsed) co_return parsed.error().context(context);
  co_return read_from(std::move(*parsed));
}

Task<AddCertificateResult> RemoteCertStore::add(AddCertificateRequest request) {
  const std::string label = request.label.empty() ? std::string("in this job") : request.label;
  // Open the PFX here first: a wrong password or a key-less PFX fails before the host is touched,
  // and the thumbprint lets the script honour Overwrite. Key derivation costs up to seconds: a worker
  // thread does it while this I/O thread carries on (the request stays in this suspended frame).
  auto open_pfx_now = [&request, &label] {
    return open_job_certificate(request.contents_base64, request.password, label);
  };
  WINCERT_CO_ASSIGN_OR_RETURN(auto pfx, co_await run_on_worker(open_pfx_now));
  WINCERT_CO_TRY(check_importable(pfx, label, request.private_key_required));
  const std::string thumbprint = pfx.leaf->info.thumbprint;

  json args = {
      {arg::kStoreName, request.store},
      {arg::kContentsBase64, request.contents_base64.reveal()},
      {arg::kPfxPassword, request.password.reveal()},
      {arg::kThumbprint, thumbprint},
      {arg::kOverwrite, request.overwrite},
      {arg::kProviderName, request.provider_name},
      {arg::kAddChainToCaStore, request.add_chain_to_ca_store},
      {arg::kReplacedThumbprint, ""},
      {arg::kIisBinding, nullptr},
      {arg::kSqlBinding, nullptr},
  };
  // The cert-add script takes at most one binding of each kind, fused with the import.
  const IisBindingStep* iis_step = nullptr;
  const SqlBindingStep* sql_step = nullptr;
  for (const PostImportStep& step : request.steps) {
    const bool repeated = std::holds_alternative<IisBindingStep>(step) ? iis_step != nullptr : sql_step != nullptr;
    if (repeated) {
      co_return Error::invalid_argument("certificate " + thumbprint +
                                        ": an add carries at most one IIS binding and one SQL Server binding step");
    }
    if (const auto* iis = std::get_if<IisBindingStep>(&step)) iis_step = iis;
    if (const auto* sql = std::get_if<SqlBindingStep>(&step)) sql_step = sql;
  }
  if (iis_step) {
    const IisBindingRequest& binding = iis_step->binding;
    if (!pfx.has_private_key) {
      co_return Error::invalid_argument("certificate " + thumbprint +
                                        " cannot be bound in IIS: the job sent it without a private key");
    }
    WINCERT_CO_ASSIGN_OR_RETURN(auto info, co_await caller_->host_info());
    if (auto flags_ok = validate_ssl_flags(binding.ssl_flags, info.os_build); !flags_ok) {
      co_return flags_ok.error().context("IIS binding on site '" + binding.site + "' on host '" + caller_->host() +
                                         "': ");
    }
    WINCERT_CO_ASSIGN_OR_RETURN(auto binding_information, binding_information_for(binding));
    args[arg::kIisBinding] = {{arg::kSiteName, binding.site},
                              {arg::kBindingInformation, binding_information},
                              {arg::kSslFlags, binding.ssl_flags}};
    args[arg::kReplacedThumbprint] = normalize_thumbprint(iis_step->replaced_thumbprint);
  }
  if (sql_step) {
    args[arg::kSqlBinding] = {{arg::kInstanceNames, instance_names(sql_step->binding.instances)},
                              {arg::kRestartService, sql_step->binding.restart_service}};
  }

  WINCERT_CO_ASSIGN_OR_RETURN(auto doc, require_object(co_await caller_->call(op::kCertAdd, std::move(args),
                                                                              request.store, &request.password)));
  const std::string context = error_context(op::kCertAdd, request.store, caller_->host());

  AddCertificateResult result;
  auto reported = get_string(doc, out::kThumbprint, true);
  if (!reported) co_return reported.error().context(context);
  result.thumbprint = thumbprint_or_empty(*reported);
  if (result.thumbprint != thumbprint) {
    co_return Error::failed_precondition(context + "the host reports thumbprint " + result.thumbprint +
                                         " but the PFX's is " + thumbprint);
  }
  auto status = get_string(doc, out::kStatus, true);
  if (!status) co_return status.error().context(context);
  if (*status == add_status::kAdded)
    result.outcome = AddOutcome::kAdded;
  else if (*status == add_status::kReplaced)
    result.outcome = AddOutcome::kReplaced;
  else if (*status == add_status::kAlreadyPresent)
    result.outcome = AddOutcome::kAlreadyPresent;
  else
    co_return Error::invalid_argument(context + "unknown status '" + one_line(*status, 40) + "'");
  if (result.outcome == AddOutcome::kReplaced && !request.overwrite) {
    co_return Error::failed_precondition(context +
                                         "the host replaced an existing certificate although Overwrite was false");
  }
  auto has_key = get_bool(doc, out::kHasPrivateKey);
  auto provider = get_string(doc, out::kProviderName);
  auto chain = get_string_list(doc, out::kChainAdded);
  if (!has_key) co_return has_key.error().context(context);
  if (!provider) co_return provider.error().context(context);
  if (!chain) co_return chain.error().context(context);
  result.has_private_key = *has_key;
  result.provider_name = *provider;
  for (const auto& item : *chain) result.chain_added.push_back(thumbprint_or_empty(item));
  if (pfx.has_private_key && !result.has_private_key && result.outcome != AddOutcome::kAlreadyPresent) {
    co_return Error::failed_precondition(context + "certificate " + thumbprint +
                                         " was imported but Windows did not keep its private key");
  }

  // The host's answer per step, in the request's order.
  for (const PostImportStep& step : request.steps) {
    if (std::holds_alternative<IisBindingStep>(step)) {
      const auto it = doc.find(out::kBinding);
      if (it == doc.end() || !it->is_object()) {
        co_return Error::invalid_argument(context + "the IIS binding result is missing");
      }
      auto binding = binding_from(*it);
      if (!binding) co_return binding.error().context(context);
      if (binding->thumbprint != thumbprint) {
        co_return Error::failed_precondition(context + "site '" + binding->site + "' is bound to " +
                                             binding->thumbprint + " instead of " + thumbprint);
      }
      IisBindingOutcome outcome{std::move(*binding), std::nullopt};
      if (const auto replaced_it = doc.find(out::kReplaced); replaced_it != doc.end() && replaced_it->is_object()) {
        ReplacedCertificate replaced;
        auto old_thumbprint = get_string(*replaced_it, out::kThumbprint);
        auto removed = get_bool(*replaced_it, out::kRemoved);
        auto sites = get_string_list(*replaced_it, out::kBoundSites);
        if (!old_thumbprint || !removed || !sites)
          co_return Error::invalid_argument(context + "the replaced-certificate result is malformed");
        replaced.thumbprint = thumbprint_or_empty(*old_thumbprint);
        replaced.removed = *removed;
        replaced.still_bound_sites = *sites;
        outcome.replaced = std::move(replaced);
      }
      result.steps.emplace_back(std::in_place_type<IisBindingOutcome>, std::move(outcome));
    } else {
      auto bindings = sql_bindings_from(doc, out::kSqlBindings);
      if (!bindings) co_return bindings.error().context(context);
      WINCERT_CO_TRY(check_sql_bindings(*bindings, thumbprint, caller_->host()));
      result.steps.emplace_back(std::in_place_type<SqlBindingOutcome>, SqlBindingOutcome{std::move(*bindings)});
    }
  }
  co_return result;
}

Task<RemoveResult> RemoteCertStore::remove(RemoveRequest request) {
  const std::string& store = request.store;
  const std::string thumbprint = normalize_thumbprint(request.thumbprint);
  if (thumbprint.empty()) {
    co_return Error::invalid_argument("cannot remove '" + one_line(request.thumbprint, 80) + "' from store '" + store +
                                      "': it is not a 40-digit SHA-1 thumbprint");
  }
  // The private key stays unless the store opted in (deleting a shared HSM key must be explicit).
  json args = {{arg::kStoreName, store}, {arg::kThumbprint, thumbprint}, {arg::kDeleteKey, request.delete_unused_key}};
  WINCERT_CO_ASSIGN_OR_RETURN(auto doc,
                              require_object(co_await caller_->call(op::kCertRemove, std::move(args), store)));
  RemoveResult result;
  auto found = get_bool(doc, out::kFound);
  auto removed = get_bool(doc, out::kRemoved);
  auto key_removed = get_bool(doc, out::kKeyRemoved);
  if (!found || !removed || !key_removed) {
    co_return Error::invalid_argument(where(op::kCertRemove, store, caller_->host()) + "malformed result");
  }
  result.found = *found;
  result.removed = *removed;
  result.key_removed = *key_removed;
  co_return result;
}

Task<CertificateRequest> RemoteCertStore::create_csr(CsrRequest request) {
  WINCERT_CO_ASSIGN_OR_RETURN(auto spec, certreq_key_spec(request.key_type, request.key_size));
  WINCERT_CO_ASSIGN_OR_RETURN(auto provider, certreq_provider(request.provider_name, spec));
  WINCERT_CO_ASSIGN_OR_RETURN(auto subject, certreq_subject(request.subject));
  WINCERT_CO_ASSIGN_OR_RETURN(auto sans, certreq_san_entries(request.sans));

  json args = {{arg::kSubject, subject},
               {arg::kProviderName, provider},
               {arg::kKeyAlgorithm, spec.key_algorithm},
               {arg::kKeyLength, spec.key_length},
               {arg::kSans, sans}};
  WINCERT_CO_ASSIGN_OR_RETURN(auto doc,
                              require_object(co_await caller_->call(op::kCsrCreate, std::move(args), request.store)));
  const std::string context = where(op::kCsrCreate, request.store, caller_->host());
  auto csr_text = get_string(doc, out::kCsr, true);
  if (!csr_text) co_return csr_text.error().context(context);
  auto info = parse_csr(*csr_text);
  if (!info) co_return info.error().context(context);
  // The device made the key: check it made the one the job asked for.
  CsrExpectation expected;
  expected.sans = request.sans;
  if (spec.key_algorithm == "RSA") {
    expected.key = KeyParameters{KeyAlgorithm::kRsa, spec.key_length, {}};
  } else {
    expected.key = KeyParameters{KeyAlgorithm::kEc, spec.key_length, "P-" + std::to_string(spec.key_length)};
  }
  if (auto checked = check_csr(*info, expected); !checked) co_return checked.error().context(context);

  CertificateRequest result;
  auto used_provider = get_string(doc, out::kProviderName);
  result.provider_name = used_provider.ok() && !used_provider->empty() ? *used_provider : provider;
  result.info = std::move(*info);
  co_return result;
}

Task<InstallIssuedResult> RemoteCertStore::install_issued(InstallIssuedRequest request) {
  auto info = parse_certificate_der(request.certificate_der);
  if (!info) co_return info.error().context("the issued certificate cannot be installed: ");
  json args = {{arg::kCertificateBase64, base64_encode(request.certificate_der)}, {arg::kStoreName, request.store}};
  WINCERT_CO_ASSIGN_OR_RETURN(auto doc,
                              require_object(co_await caller_->call(op::kCsrAccept, std::move(args), request.store)));
  const std::string context = where(op::kCsrAccept, request.store, caller_->host());
  auto thumbprint = get_string(doc, out::kThumbprint, true);
  auto has_key = get_bool(doc, out::kHasPrivateKey);
  if (!thumbprint) co_return thumbprint.error().context(context);
  if (!has_key) co_return has_key.error().context(context);
  InstallIssuedResult result{thumbprint_or_empty(*thumbprint), *has_key};
  if (result.thumbprint != info->thumbprint) {
    co_return Error::failed_precondition(context + "the host installed " + result.thumbprint + " instead of " +
                                         info->thumbprint);
  }
  if (!result.has_private_key) {
    co_return Error::failed_precondition(context + "certificate " + result.thumbprint +
                                         " was installed but is not linked to the key generated for its request");
  }
  co_return result;
}

// --- IIS ---

Task<std::vector<IisBinding>> RemoteIisBindings::list() {
  WINCERT_CO_ASSIGN_OR_RETURN(auto doc, require_object(co_await caller_->call(op::kIisListBindings, json::object())));
  std::vector<IisBinding> bindings;
  for (const json* item : as_list(doc, out::kBindings)) {
    auto binding = binding_from(*item);
    if (!binding) co_return binding.error().context(where(op::kIisListBindings, {}, caller_->host()));
    bindings.push_back(std::move(*binding));
  }
  co_return bindings;
}

Task<IisBindResult> RemoteIisBindings::bind(IisBindingRequest binding, std::string thumbprint_in, std::string store) {
  const std::string thumbprint = normalize_thumbprint(thumbprint_in);
  if (thumbprint.empty())
    co_return Error::invalid_argument("cannot bind '" + one_line(thumbprint_in, 80) + "': not a thumbprint");
  WINCERT_CO_ASSIGN_OR_RETURN(auto info, co_await caller_->host_info());
  if (auto flags_ok = validate_ssl_flags(binding.ssl_flags, info.os_build); !flags_ok) {
    co_return flags_ok.error().context("IIS binding on site '" + binding.site + "' on host '" + caller_->host() +
                                       "': ");
  }
  WINCERT_CO_ASSIGN_OR_RETURN(auto binding_information, binding_information_for(binding));
  json args = {{arg::kSiteName, binding.site},
               {arg::kBindingInformation, binding_information},
               {arg::kSslFlags, binding.ssl_flags},
               {arg::kThumbprint, thumbprint},
               {arg::kStoreName, store}};
  WINCERT_CO_ASSIGN_OR_RETURN(auto doc, require_object(co_await caller_->call(op::kIisBind, std::move(args), store)));
  const std::string context = where(op::kIisBind, store, caller_->host());
  const auto it = doc.find(out::kBinding);
  if (it == doc.end()) co_return Error::invalid_argument(context + "the binding result is missing");
  auto parsed = binding_from(*it);
  if (!parsed) co_return parsed.error().context(context);
  if (parsed->thumbprint != thumbprint) {
    co_return Error::failed_precondition(context + "site '" + parsed->site + "' is bound to " + parsed->thumbprint +
                                         " instead of " + thumbprint);
  }
  auto replaced = get_bool(doc, out::kReplacedExisting);
  if (!replaced) co_return replaced.error().context(context);
  co_return IisBindResult{std::move(*parsed), *replaced};
}

Task<bool> RemoteIisBindings::unbind(IisBindingRequest binding) {
  WINCERT_CO_ASSIGN_OR_RETURN(auto binding_information, binding_information_for(binding));
  json args = {{arg::kSiteName, binding.site}, {arg::kBindingInformation, binding_information}};
  WINCERT_CO_ASSIGN_OR_RETURN(auto doc, require_object(co_await caller_->call(op::kIisUnbind, std::move(args))));
  auto removed = get_bool(doc, out::kRemoved);
  if (!removed) co_return removed.error().context(where(op::kIisUnbind, {}, caller_->host()));
  co_return *removed;
}

Task<RemoveIfUnusedResult> RemoteIisBindings::remove_certificate_if_unused(std::string store,
                                                                           std::string thumbprint_in) {
  const std::string thumbprint = normalize_thumbprint(thumbprint_in);
  if (thumbprint.empty())
    co_return Error::invalid_argument("cannot remove '" + one_line(thumbprint_in, 80) + "': not a thumbprint");
  json args = {{arg::kStoreName, store}, {arg::kThumbprint, thumbprint}};
  WINCERT_CO_ASSIGN_OR_RETURN(
      auto doc, require_object(co_await caller_->call(op::kIisRemoveCertIfUnused, std::move(args), store)));
  auto removed = get_bool(doc, out::kRemoved);
  auto sites = get_string_list(doc, out::kBoundSites);
  if (!removed || !sites)
    co_return Error::invalid_argument(where(op::kIisRemoveCertIfUnused, store, caller_->host()) + "malformed result");
  RemoveIfUnusedResult result{*removed, *sites};
  if (result.removed && !result.still_bound_sites.empty()) {
    co_return Error::failed_precondition(where(op::kIisRemoveCertIfUnused, store, caller_->host()) +
                                         "the host removed certificate " + thumbprint + " although it is still bound");
  }
  co_return result;
}

// --- SQL Server ---

Task<std::vector<SqlInstance>> RemoteSqlBindings::list_instances() {
  WINCERT_CO_ASSIGN_OR_RETURN(auto doc, require_object(co_await caller_->call(op::kSqlListInstances, json::object())));
  auto instances = parse_sql_instances(doc);
  if (!instances) co_return instances.error().context(where(op::kSqlListInstances, {}, caller_->host()));
  co_return std::move(*instances);
}

Task<std::vector<SqlInstanceBinding>> RemoteSqlBindings::bind(SqlBindingRequest request, std::string thumbprint_in,
                                                              std::string store) {
  const std::string thumbprint = normalize_thumbprint(thumbprint_in);
  if (thumbprint.empty())
    co_return Error::invalid_argument("cannot bind '" + one_line(thumbprint_in, 80) + "': not a thumbprint");
  json args = {{arg::kInstanceNames, instance_names(request.instances)},
               {arg::kThumbprint, thumbprint},
               {arg::kStoreName, store},
               {arg::kRestartService, request.restart_service}};
  WINCERT_CO_ASSIGN_OR_RETURN(auto doc, require_object(co_await caller_->call(op::kSqlBind, std::move(args), store)));
  auto bindings = sql_bindings_from(doc, out::kInstances);
  if (!bindings) co_return bindings.error().context(where(op::kSqlBind, store, caller_->host()));
  WINCERT_CO_TRY(check_sql_bindings(*bindings, thumbprint, caller_->host()));
  co_return std::move(*bindings);
}

Task<std::vector<SqlUnbindOutcome>> RemoteSqlBindings::unbind(SqlBindingRequest request, std::string thumbprint_in) {
  const std::string thumbprint = normalize_thumbprint(thumbprint_in);
  if (thumbprint.empty())
    co_return Error::invalid_argument("cannot unbind '" + one_line(thumbprint_in, 80) + "': not a thumbprint");
  json args = {{arg::kInstanceNames, instance_names(request.instances)},
               {arg::kThumbprint, thumbprint},
               {arg::kRestartService, request.restart_service}};
  WINCERT_CO_ASSIGN_OR_RETURN(auto doc, require_object(co_await caller_->call(op::kSqlUnbind, std::move(args))));
  std::vector<SqlUnbindOutcome> outcomes;
  for (const json* item : as_list(doc, out::kInstances)) {
    if (!item->is_object())
      co_return Error::invalid_argument(where(op::kSqlUnbind, {}, caller_->host()) + "malformed result");
    auto name = get_string(*item, out::kInstanceName, true);
    auto unbound = get_bool(*item, out::kUnbound);
    auto previous = get_string(*item, out::kPreviousCertificate);
    auto restarted = get_bool(*item, out::kRestarted);
    if (!name || !unbound || !previous || !restarted) {
      co_return Error::invalid_argument(where(op::kSqlUnbind, {}, caller_->host()) + "malformed result");
    }
    SqlUnbindOutcome outcome{*name, *unbound, thumbprint_or_empty(*previous), *restarted};
    // Our rule, checked here too: never clear an instance bound to some other certificate.
    if (outcome.unbound && outcome.previous_thumbprint != thumbprint) {
      co_return Error::failed_precondition(where(op::kSqlUnbind, {}, caller_->host()) + "instance '" +
                                           outcome.instance + "' was bound to " + outcome.previous_thumbprint +
                                           ", not " + thumbprint + ", yet the host cleared it");
    }
    outcomes.push_back(std::move(outcome));
  }
  co_return outcomes;
}

Task<std::vector<SqlServiceState>> RemoteSqlBindings::restart(std::vector<std::string> instances) {
  json args = {{arg::kInstanceNames, instance_names(instances)}, {arg::kTimeoutSeconds, kSqlRestartTimeoutSeconds}};
  WINCERT_CO_ASSIGN_OR_RETURN(auto doc, require_object(co_await caller_->call(op::kSqlRestart, std::move(args))));
  std::vector<SqlServiceState> states;
  for (const json* item : as_list(doc, out::kInstances)) {
    if (!item->is_object())
      co_return Error::invalid_argument(where(op::kSqlRestart, {}, caller_->host()) + "malformed result");
    auto name = get_string(*item, out::kInstanceName, true);
    auto service = get_string(*item, out::kServiceName);
    auto status = get_string(*item, out::kStatus);
    if (!name || !service || !status)
      co_return Error::invalid_argument(where(op::kSqlRestart, {}, caller_->host()) + "malformed result");
    states.push_back({*name, *service, *status});
  }
  co_return states;
}

}  // namespace wincert::certstore::remote
