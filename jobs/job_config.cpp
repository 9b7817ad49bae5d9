#include "jobs/job_config.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <utility>

#include "common/peer_json.hpp"
#include "jobs/store_properties.hpp"

namespace wincert::jobs {

namespace {

// The names read below, each checked at compile time against jobs/store_properties.hpp's table.
consteval std::string_view store_property(std::string_view name) { return declared(PropertyScope::kStore, name); }
consteval std::string_view entry_param(std::string_view name) { return declared(PropertyScope::kEntry, name); }
consteval std::string_view command_param(std::string_view name) {
  return declared(PropertyScope::kCommandSupplied, name);
}

// ordered_json keeps the order of the SANs map as Command sent it (SANBuilder preserves it too).
using Json = nlohmann::ordered_json;

constexpr std::string_view kBom = "\xEF\xBB\xBF";

std::string_view strip_bom(std::string_view text) {
  if (text.substr(0, kBom.size()) == kBom) text.remove_prefix(kBom.size());
  return text;
}

std::string join_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return std::string(parent) + "." + std::string(key);
}

const char* json_type_name(const Json& j) {
  switch (j.type()) {
    case Json::value_t::object:
      return "an object";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      return "a number";
    default:
      return "null";
  }
}

// Parses JSON text under the job configuration's limits (size, depth, width); the error names the
// field and the byte offset but never quotes the input (it may hold a password).
Result<Json> parse_json(std::string_view text, std::string_view field) {
  return parse_peer_ordered_json(text, peer_json_limits::kJobConfiguration, field);
}

// The member whose key equals `key` ignoring case; nullptr when absent or null.
const Json* find_ci(const Json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (iequals(it.key(), key)) {
      if (it.value().is_null()) continue;  // a null spelling must not hide a non-null one
      return &it.value();
    }
  }
  return nullptr;
}

// A scalar as text: strings verbatim, integers without a decimal point, bools as true/false.
std::optional<std::string> scalar_text(const Json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_number_integer()) return std::to_string(j.get<std::int64_t>());
  if (j.is_number_unsigned()) return std::to_string(j.get<std::uint64_t>());
  if (j.is_number_float()) return j.dump();
  if (j.is_boolean()) return j.get<bool>() ? "true" : "false";
  return std::nullopt;
}

// Reads string fields. `secret` fields never have their value quoted in an error.
Result<std::optional<std::string>> get_string(const Json& object, std::string_view key, std::string_view path) {
  const Json* j = find_ci(object, key);
  if (!j) return std::optional<std::string>{};
  if (auto text = scalar_text(*j)) return std::optional<std::string>{std::move(*text)};
  return Error::invalid_argument(join_path(path, key) + " must be a string, not " + json_type_name(*j));
}

Result<std::optional<bool>> parse_bool_text(std::string_view raw, std::string_view field) {
  std::string_view text = trim(raw);
  if (text.empty()) return std::optional<bool>{};
  if (iequals(text, "true")) return std::optional<bool>{true};
  if (iequals(text, "false")) return std::optional<bool>{false};
  return Error::invalid_argument(std::string(field) + " must be true or false, got '" + std::string(text) + "'");
}

Result<std::optional<bool>> get_bool(const Json& object, std::string_view key, std::string_view path) {
  const Json* j = find_ci(object, key);
  if (!j) return std::optional<bool>{};
  if (j->is_boolean()) return std::optional<bool>{j->get<bool>()};
  if (j->is_string()) return parse_bool_text(j->get<std::string>(), join_path(path, key));
  return Error::invalid_argument(join_path(path, key) + " must be true or false, not " + json_type_name(*j));
}

Result<std::optional<std::int64_t>> get_int(const Json& object, std::string_view key, std::string_view path) {
  const Json* j = find_ci(object, key);
  if (!j) return std::optional<std::int64_t>{};
  if (j->is_number_integer()) return std::optional<std::int64_t>{j->get<std::int64_t>()};
  if (j->is_number_unsigned()) {
    auto v = j->get<std::uint64_t>();
    if (v <= static_cast<std::uint64_t>(INT64_MAX)) return std::optional<std::int64_t>{static_cast<std::int64_t>(v)};
  }
  if (j->is_string()) {
    std::string_view text = trim(j->get_ref<const std::string&>());
    if (text.empty()) return std::optional<std::int64_t>{};
    std::int64_t v = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec == std::errc() && ptr == text.data() + text.size()) return std::optional<std::int64_t>{v};
    return Error::invalid_argument(join_path(path, key) + " must be a whole number, got '" + std::string(text) + "'");
  }
  return Error::invalid_argument(join_path(path, key) + " must be a whole number, not " + json_type_name(*j));
}

// Assigns a parsed optional into a plain field when present.
template <typename T, typename U>
Status assign(Result<std::optional<T>> r, U& out) {
  if (!r.ok()) return r.error();
  if (r.value()) out = std::move(*r.value());
  return {};
}

Status parse_store_properties(const Json& props, std::string_view path, StoreProperties& out) {
  if (!props.is_object()) {
    return Error::invalid_argument(std::string(path) + " must be a JSON object (or a string holding one), not " +
                                   json_type_name(props));
  }
  auto keep_property = [&](std::string_view key, std::optional<StoreProperty>& slot) -> Status {
    for (auto it = props.begin(); it != props.end(); ++it) {
      if (!iequals(it.key(), key) || it.value().is_null()) continue;
      auto text = scalar_text(it.value());
      if (!text) {
        return Error::invalid_argument(join_path(path, it.key()) + " must be a string, not " +
                                       json_type_name(it.value()));
      }
      slot = StoreProperty{it.key(), std::move(*text)};
      return {};
    }
    return {};
  };
  WINCERT_TRY(keep_property(store_property(property::kWinRmProtocol), out.winrm_protocol));
  WINCERT_TRY(keep_property(store_property(property::kWinRmPort), out.winrm_port));
  WINCERT_TRY(keep_property(store_property(property::kWinRmAuthentication), out.winrm_authentication));
  WINCERT_TRY(keep_property(store_property(property::kJeaEndpointName), out.jea_endpoint_name));
  WINCERT_TRY(keep_property(store_property(property::kExecutionMode), out.execution_mode));
  WINCERT_TRY(assign(get_bool(props, store_property(property::kSpnWithPort), path), out.spn_with_port));
  WINCERT_TRY(assign(get_bool(props, store_property(property::kServerUseSsl), path), out.server_use_ssl));
  WINCERT_TRY(assign(get_bool(props, store_property(property::kRestartService), path), out.restart_service));
  WINCERT_TRY(
      assign(get_bool(props, store_property(property::kWinRmAllowUnencrypted), path), out.winrm_allow_unencrypted));
  WINCERT_TRY(assign(get_bool(props, store_property(property::kDeletePrivateKeyOnRemove), path),
                     out.delete_private_key_on_remove));

  constexpr std::string_view kUsername = store_property(property::kServerUsername);
  constexpr std::string_view kPassword = store_property(property::kServerPassword);
  auto user = get_string(props, kUsername, path);
  if (!user.ok()) return user.error();
  out.server_username = std::move(user.value());
  if (const Json* pw = find_ci(props, kPassword)) {
    if (!pw->is_string()) return Error::invalid_argument(join_path(path, kPassword) + " must be a string");
    out.server_password = Secret(pw->get<std::string>());
  }

  // Every other property, kept verbatim: the table's store properties are all read above.
  for (auto it = props.begin(); it != props.end(); ++it) {
    if (it.value().is_null()) continue;
    if (find_property_spec(PropertyScope::kStore, it.key())) continue;
    auto text = scalar_text(it.value());
    out.other.emplace(it.key(), text ? *text : it.value().dump());
  }
  return {};
}

Status parse_store_details(const Json& details, JobConfig& out) {
  static constexpr std::string_view kPath = "CertificateStoreDetails";
  if (!details.is_object()) {
    return Error::invalid_argument(std::string(kPath) + " must be an object, not " + json_type_name(details));
  }
  WINCERT_TRY(assign(get_string(details, "ClientMachine", kPath), out.store.client_machine));
  WINCERT_TRY(assign(get_string(details, "StorePath", kPath), out.store.store_path));
  std::int64_t type = 0;
  WINCERT_TRY(assign(get_int(details, "Type", kPath), type));
  out.store.type = static_cast<int>(type);

  if (const Json* props = find_ci(details, "Properties")) {
    const std::string path = std::string(kPath) + ".Properties";
    if (props->is_string()) {
      // The UO hands Properties over as JSON text inside JSON: parse it again.
      const auto& text = props->get_ref<const std::string&>();
      if (!trim(text).empty()) {
        auto inner = parse_json(text, path);
        if (!inner.ok()) return inner.error();
        WINCERT_TRY(parse_store_properties(inner.value(), path, out.store.properties));
      }
    } else {
      WINCERT_TRY(parse_store_properties(*props, path, out.store.properties));
    }
  }
  return {};
}

Status parse_job_certificate(const Json& cert, JobConfig& out) {
  static constexpr std::string_view kPath = "JobCertificate";
  if (!cert.is_object())
    return Error::invalid_argument("JobCertificate must be an object, not " + std::string(json_type_name(cert)));
  JobCertificate jc;
  auto thumb = get_string(cert, "Thumbprint", kPath);
  if (!thumb.ok()) return thumb.error();
  jc.thumbprint = std::move(thumb.value());
  WINCERT_TRY(assign(get_string(cert, "Alias", kPath), jc.alias));
  // Secrets: the value is never quoted, only the field named.
  if (const Json* contents = find_ci(cert, "Contents")) {
    if (!contents->is_string()) return Error::invalid_argument("JobCertificate.Contents must be a base64 string");
    jc.contents = Secret(contents->get<std::string>());
  }
  if (const Json* pw = find_ci(cert, "PrivateKeyPassword")) {
    if (!pw->is_string()) return Error::invalid_argument("JobCertificate.PrivateKeyPassword must be a string");
    jc.private_key_password = Secret(pw->get<std::string>());
  }
  out.job_certificate = std::move(jc);
  return {};
}

Result<PreviousInventoryItem> parse_previous_item(const Json& item, const std::string& path) {
  if (!item.is_object()) return Error::invalid_argument(path + " must be an object, not " + json_type_name(item));
  PreviousInventoryItem prev;
  WINCERT_TRY(assign(get_string(item, "Alias", path), prev.alias));
  WINCERT_TRY(assign(get_bool(item, "PrivateKeyEntry", path), prev.private_key_entry));
  if (const Json* thumbs = find_ci(item, "Thumbprints")) {
    if (!thumbs->is_array()) return Error::invalid_argument(path + ".Thumbprints must be an array");
    for (const Json& t : *thumbs) {
      if (t.is_null()) continue;
      if (!t.is_string()) return Error::invalid_argument(path + ".Thumbprints must hold strings");
      prev.thumbprints.push_back(t.get<std::string>());
    }
  }
  return prev;
}

std::string inventory_path(std::size_t index) { return "LastInventory[" + std::to_string(index) + "]"; }

Status parse_last_inventory(const Json& items, JobConfig& out) {
  if (!items.is_array())
    return Error::invalid_argument("LastInventory must be an array, not " + std::string(json_type_name(items)));
  std::size_t index = 0;
  for (const Json& item : items) {
    const std::size_t at = index++;
    if (item.is_null()) continue;
    WINCERT_ASSIGN_OR_RETURN(PreviousInventoryItem prev, parse_previous_item(item, inventory_path(at)));
    out.last_inventory.push_back(std::move(prev));
  }
  return {};
}

Status parse_sans(const Json& sans, std::string_view path, std::vector<SanEntry>& out) {
  if (!sans.is_object())
    return Error::invalid_argument(std::string(path) + " must be an object of SAN type -> values, not " +
                                   json_type_name(sans));
  for (auto it = sans.begin(); it != sans.end(); ++it) {
    const std::string field = join_path(path, it.key());
    const std::string type = normalize_san_key(it.key());
    auto add = [&](const Json& v) -> Status {
      if (v.is_null()) return {};
      if (!v.is_string()) return Error::invalid_argument(field + " must hold strings, not " + json_type_name(v));
      std::string_view value = trim(v.get_ref<const std::string&>());
      if (!value.empty()) out.push_back(SanEntry{type, std::string(value)});
      return {};
    };
    if (it.value().is_array()) {
      for (const Json& v : it.value()) WINCERT_TRY(add(v));
    } else {
      WINCERT_TRY(add(it.value()));  // a single string instead of a one-element list
    }
  }
  return {};
}

Status parse_job_properties(const Json& props, JobConfig& out) {
  if (!props.is_object())
    return Error::invalid_argument("JobProperties must be an object, not " + std::string(json_type_name(props)));
  for (auto it = props.begin(); it != props.end(); ++it) {
    if (it.value().is_null()) continue;
    auto text = scalar_text(it.value());
    out.job_properties.emplace(it.key(), text ? *text : it.value().dump());
  }
  auto entry = [&](std::string_view key, std::optional<std::string>& slot) -> Status {
    auto r = get_string(props, key, "JobProperties");
    if (!r.ok()) return r.error();
    slot = std::move(r.value());
    return {};
  };
  using namespace entry_parameter;
  EntryParameters& e = out.entry;
  WINCERT_TRY(entry(entry_param(kSiteName), e.site_name));
  WINCERT_TRY(entry(entry_param(kPort), e.port));
  WINCERT_TRY(entry(entry_param(kIpAddress), e.ip_address));
  WINCERT_TRY(entry(entry_param(kHostName), e.host_name));
  WINCERT_TRY(entry(entry_param(kSniFlag), e.sni_flag));
  WINCERT_TRY(entry(entry_param(kProtocol), e.protocol));
  WINCERT_TRY(entry(entry_param(kProviderName), e.provider_name));
  WINCERT_TRY(entry(entry_param(kInstanceName), e.instance_name));
  WINCERT_TRY(entry(command_param(kRenewalThumbprint), e.renewal_thumbprint));
  WINCERT_TRY(entry(command_param(kSan), e.san));

  ReenrollmentRequest& r = out.reenrollment;
  WINCERT_TRY(assign(get_string(props, command_param(kSubjectText), "JobProperties"), r.subject));
  WINCERT_TRY(entry(command_param(kKeyType), r.key_type));
  WINCERT_TRY(entry(command_param(kKeySize), r.key_size));
  return {};
}

Status parse_root(const Json& root, JobConfig& out) {
  if (!root.is_object())
    return Error::invalid_argument(std::string("the job configuration must be a JSON object, not ") +
                                   json_type_name(root));

  WINCERT_TRY(assign(get_string(root, "JobId", ""), out.job_id));
  WINCERT_TRY(assign(get_string(root, "JobTypeId", ""), out.job_type_id));
  WINCERT_TRY(assign(get_string(root, "Capability", ""), out.capability));
  WINCERT_TRY(assign(get_int(root, "JobHistoryId", ""), out.job_history_id));
  WINCERT_TRY(assign(get_bool(root, "JobCancelled", ""), out.job_cancelled));
  WINCERT_TRY(assign(get_bool(root, "Overwrite", ""), out.overwrite));
  WINCERT_TRY(assign(get_string(root, "Alias", ""), out.alias));

  auto op = get_int(root, "OperationType", "");
  if (!op.ok()) return op.error();
  if (op.value()) {
    const std::int64_t n = *op.value();
    if (n < 0 || n > 5) {
      return Error::invalid_argument("OperationType " + std::to_string(n) +
                                     " is not an operation wincert-agent knows (Add is 2, Remove is 3)");
    }
    out.operation_type = static_cast<OperationType>(n);
  }

  if (const Json* details = find_ci(root, "CertificateStoreDetails")) {
    WINCERT_TRY(parse_store_details(*details, out));
  }
  if (const Json* cert = find_ci(root, "JobCertificate")) WINCERT_TRY(parse_job_certificate(*cert, out));
  if (const Json* last = find_ci(root, "LastInventory")) WINCERT_TRY(parse_last_inventory(*last, out));
  if (const Json* props = find_ci(root, "JobProperties")) WINCERT_TRY(parse_job_properties(*props, out));

  // SANs: the first-class map (Command 3.0+) wins over the legacy SAN entry parameter.
  if (const Json* sans = find_ci(root, "SANs")) {
    out.has_sans = true;
    WINCERT_TRY(parse_sans(*sans, "SANs", out.reenrollment.sans));
  } else if (out.entry.san && !trim(*out.entry.san).empty()) {
    auto legacy = parse_legacy_san(*out.entry.san);
    if (!legacy.ok()) return legacy.error();
    out.reenrollment.sans = std::move(legacy.value());
  }

  // Credentials: the top-level fields (PAM-resolved by the UO) win over the copies in Properties.
  auto user = get_string(root, "ServerUsername", "");
  if (!user.ok()) return user.error();
  out.server_username = user.value() ? std::move(user.value()) : out.store.properties.server_username;
  if (const Json* pw = find_ci(root, "ServerPassword")) {
    if (!pw->is_string()) return Error::invalid_argument("ServerPassword must be a string");
    out.server_password = Secret(pw->get<std::string>());
  } else if (out.store.properties.server_password) {
    out.server_password = *out.store.properties.server_password;
  }
  return {};
}

// Splits a dotted override path.
std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = path.find('.', start);
    parts.emplace_back(path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

// A JSON literal for an override value, when VALUE reads as one.
std::optional<Json> literal_of(std::string_view value) {
  std::string_view t = trim(value);
  if (t == "true") return Json(true);
  if (t == "false") return Json(false);
  if (t == "null") return Json(nullptr);
  if (t.empty()) return std::nullopt;
  std::int64_t i = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), i);
  if (ec == std::errc() && p == t.data() + t.size()) return Json(i);
  return std::nullopt;
}

Status set_at(Json& node, const std::vector<std::string>& parts, std::size_t index, std::string_view value,
              const std::string& walked) {
  const std::string& key = parts[index];
  const std::string here = join_path(walked, key);
  if (key.empty()) return Error::invalid_argument("--set path '" + here + "' has an empty segment");
  if (node.is_null()) node = Json::object();
  if (!node.is_object()) {
    return Error::invalid_argument("--set path '" + here + "': '" + walked + "' is " + json_type_name(node) +
                                   ", not an object");
  }
  auto it = node.end();
  for (auto i = node.begin(); i != node.end(); ++i) {
    if (iequals(i.key(), key)) {
      it = i;
      break;
    }
  }
  Json& child = (it != node.end()) ? it.value() : node[key];

  if (index + 1 == parts.size()) {
    if (child.is_string()) {
      child = std::string(value);
    } else if (child.is_boolean() || child.is_number()) {
      auto lit = literal_of(value);
      if (!lit || lit->is_null())
        return Error::invalid_argument("--set " + here + " needs a " + json_type_name(child) + " value");
      child = *lit;
    } else {
      auto lit = literal_of(value);
      child = lit ? *lit : Json(std::string(value));
    }
    return {};
  }
  if (child.is_string()) {
    // A JSON object stored as text (CertificateStoreDetails.Properties): edit inside, write back as text.
    const auto& text = child.get_ref<const std::string&>();
    Json inner = Json::object();
    if (!trim(text).empty()) {
      auto parsed = parse_json(text, here);
      if (!parsed.ok()) return parsed.error();
      inner = std::move(parsed.value());
    }
    WINCERT_TRY(set_at(inner, parts, index + 1, value, here));
    child = inner.dump();
    return {};
  }
  return set_at(child, parts, index + 1, value, here);
}

}  // namespace

bool CaseInsensitiveLess::operator()(std::string_view a, std::string_view b) const {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) < std::tolower(static_cast<unsigned char>(y));
  });
}

std::string_view operation_name(OperationType op) {
  switch (op) {
    case OperationType::kUnknown:
      return "Unknown";
    case OperationType::kInventory:
      return "Inventory";
    case OperationType::kAdd:
      return "Add";
    case OperationType::kRemove:
      return "Remove";
    case OperationType::kCreate:
      return "Create";
    case OperationType::kCreateAdd:
      return "CreateAdd";
  }
  return "Unknown";
}

std::string normalize_san_key(std::string_view key) {
  std::string k = to_lower(trim(key));
  if (k == "ip" || k == "ip4" || k == "ip6" || k == "ipaddress") return "ipaddress";
  if (k == "email" || k == "rfc822") return "email";
  return k;  // dns, uri, upn and anything else (lowercased, as SANBuilder's fallback)
}

std::string san_string(const std::vector<SanEntry>& sans) {
  std::string out;
  for (const auto& san : sans) {
    if (!out.empty()) out += '&';
    out += san.type;
    out += '=';
    out += san.value;
  }
  return out;
}

Result<std::vector<SanEntry>> parse_legacy_san(std::string_view text) {
  std::vector<SanEntry> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t amp = text.find('&', start);
    std::string_view part =
        trim(text.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start));
    if (!part.empty()) {
      std::size_t eq = part.find('=');
      if (eq == std::string_view::npos || eq == 0) {
        return Error::invalid_argument("JobProperties.SAN entry '" + std::string(part) +
                                       "' is not type=value (e.g. dns=www.example.com&ipaddress=10.0.0.1)");
      }
      std::string_view value = trim(part.substr(eq + 1));
      if (!value.empty()) out.push_back(SanEntry{normalize_san_key(part.substr(0, eq)), std::string(value)});
    }
    if (amp == std::string_view::npos) break;
    start = amp + 1;
  }
  return out;
}

nlohmann::ordered_json::parser_callback_t LastInventoryReader::callback() {
  return [this](int /*depth*/, nlohmann::ordered_json::parse_event_t event, nlohmann::ordered_json& parsed) {
    return on_event(event, parsed);
  };
}

// Returns false for what leaves the tree: each element of the LastInventory array, read here instead.
bool LastInventoryReader::on_event(nlohmann::ordered_json::parse_event_t event, nlohmann::ordered_json& parsed) {
  using Event = nlohmann::ordered_json::parse_event_t;
  // An element of the inventory array is complete: read it (or skip a null), and drop it from the tree.
  auto take_element = [this](const Json& element) {
    const std::size_t index = stack_.back().index++;
    if (!status_.ok() || element.is_null()) return false;
    auto item = parse_previous_item(element, inventory_path(index));
    if (item.ok()) {
      items_.push_back(std::move(*item));
    } else {
      status_ = std::move(item).error();
    }
    return false;
  };
  switch (event) {
    case Event::object_start:
      stack_.push_back(Level{});
      return true;
    case Event::array_start: {
      // Only LastInventory of the configuration itself: at the top level, or in the "Job" wrapper.
      const bool at_top = stack_.size() == 1 || (stack_.size() == 2 && iequals(stack_.front().key, "Job"));
      const bool holds = at_top && !stack_.back().is_array && iequals(stack_.back().key, "LastInventory");
      stack_.push_back(Level{true, holds, {}, 0});
      return true;
    }
    case Event::key:
      if (!stack_.empty() && parsed.is_string()) stack_.back().key = parsed.get<std::string>();
      return true;
    case Event::object_end:
    case Event::array_end:
      if (!stack_.empty()) stack_.pop_back();
      [[fallthrough]];
    case Event::value:
      if (stack_.empty() || !stack_.back().is_array) return true;
      if (stack_.back().holds_inventory) return take_element(parsed);
      ++stack_.back().index;
      return true;
  }
  return true;
}

Result<std::vector<PreviousInventoryItem>> LastInventoryReader::take() {
  if (!status_.ok()) return status_.error();
  return std::move(items_);
}

Result<JobConfig> parse_job_config(std::string_view json_text) {
  LastInventoryReader last_inventory;
  auto root = parse_peer_ordered_json(strip_bom(json_text), peer_json_limits::kJobConfiguration,
                                      "the job configuration", last_inventory.callback());
  if (!root.ok()) return root.error();
  return parse_job_config_document(std::move(root.value()), &last_inventory);
}

Result<JobConfig> parse_job_config_document(nlohmann::ordered_json root, LastInventoryReader* last_inventory) {
  JobConfig config;
  // nlohmann may throw on type surprises we did not foresee; nothing may escape this border.
  try {
    Status s = parse_root(root, config);
    if (!s.ok()) return s.error();
  } catch (const std::exception&) {
    return Error::invalid_argument("the job configuration has a field of an unexpected type");
  }
  if (last_inventory != nullptr) {
    // The array left in the tree is empty (its entries were taken while parsing); a LastInventory that was
    // not an array was reported by parse_root.
    WINCERT_ASSIGN_OR_RETURN(std::vector<PreviousInventoryItem> taken, last_inventory->take());
    if (config.last_inventory.empty()) {
      config.last_inventory = std::move(taken);
    } else {
      config.last_inventory.insert(config.last_inventory.end(), std::make_move_iterator(taken.begin()),
                                   std::make_move_iterator(taken.end()));
    }
  }
  return config;
}

Result<std::string> set_override(std::string_view json_text, std::string_view path, std::string_view value) {
  auto root = parse_json(strip_bom(json_text), "the job configuration");
  if (!root.ok()) return root.error();
  if (trim(path).empty()) return Error::invalid_argument("--set needs PATH=VALUE, the path is empty");
  try {
    WINCERT_TRY(set_at(root.value(), split_path(trim(path)), 0, value, ""));
    return root.value().dump(2);
  } catch (const std::exception&) {
    return Error::invalid_argument("--set " + std::string(path) + " could not be applied");
  }
}

Result<std::string> apply_override(std::string_view json_text, std::string_view assignment) {
  std::size_t eq = assignment.find('=');
  if (eq == std::string_view::npos) {
    return Error::invalid_argument("--set '" + std::string(assignment) + "' is not PATH=VALUE");
  }
  return set_override(json_text, assignment.substr(0, eq), assignment.substr(eq + 1));
}

}  // namespace wincert::jobs
