// The three sides of the remote contract must agree: each op's assembled script (built from the
// WincertOps module, certstore/ps/), its golden certstore/scripts/NAME.contract.json, and the C++ table the
// remote backend is written against (certstore/remote/contract.hpp). Also checks the module's shape: one
// definition per function, Windows-only APIs only in seams, scripts carrying only what they use.
#include "certstore/remote/contract.hpp"
#include "certstore/scripts.hpp"
#include "test_support.hpp"
#include "tests/support/result_matchers.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

namespace wincert::certstore::remote {
namespace {

using testing::argument_paths;
using testing::load_contract;
using testing::output_names;
using testing::read_file;
using testing::scripts_dir;

const std::string kModulePath = std::string(WINCERT_CERTSTORE_PS_DIR) + "/WincertOps.psm1";

// The assembled script the agent sends for an op (empty for an unknown op).
std::string script_text(const std::string& op) { return std::string(script_for(op).value_or("")); }

std::string without_comments(const std::string& text) {
  std::string out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const auto first = line.find_first_not_of(" \t");
    if (first != std::string::npos && line[first] == '#') continue;
    out += line + "\n";
  }
  return out;
}

// Every "$a.Name" / "$a.Parent.Child" the script reads.
std::set<std::string> script_argument_paths(const std::string& text) {
  std::set<std::string> paths;
  const std::regex access(R"(\$a\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*))");
  const std::string code = without_comments(text);
  for (std::sregex_iterator it(code.begin(), code.end(), access), end; it != end; ++it) {
    const std::string path = (*it)[1];
    paths.insert(path);
    // "$a.IisBinding.SiteName" also reads "IisBinding".
    for (auto dot = path.find('.'); dot != std::string::npos; dot = path.find('.', dot + 1))
      paths.insert(path.substr(0, dot));
  }
  return paths;
}

// Property names of every [pscustomobject]@{ ... } literal (the only way scripts build output objects;
// internal records use plain hashtables).
std::set<std::string> script_output_names(const std::string& text) {
  std::set<std::string> names;
  const std::string code = without_comments(text);
  const std::regex property(R"(^\s*([A-Za-z][A-Za-z0-9]*)\s*=)");
  const std::string opener = "[pscustomobject]@{";
  for (std::size_t start = code.find(opener); start != std::string::npos; start = code.find(opener, start + 1)) {
    // Only lines that begin directly inside this literal (depth 1) are its properties; nested literals
    // are found by the next iterations.
    int depth = 1;
    int line_start_depth = 1;
    std::string line;
    for (std::size_t pos = start + opener.size(); pos < code.size() && depth > 0; ++pos) {
      const char c = code[pos];
      if (c == '{') ++depth;
      if (c == '}') --depth;
      if (c == '\n') {
        std::smatch match;
        if (line_start_depth == 1 && std::regex_search(line, match, property)) names.insert(match[1]);
        line.clear();
        line_start_depth = depth;
      } else {
        line += c;
      }
    }
  }
  return names;
}

std::set<std::string> as_set(const std::vector<std::string_view>& items) { return {items.begin(), items.end()}; }

// One function of the module with the region it sits in ("helper", "seam" or "op").
struct ModuleFunction {
  std::string kind;
  std::string region;  // the op name for ops, else the function name
  std::string name;
  std::string code;  // the region's lines, comments dropped
};

std::vector<ModuleFunction> module_functions(const std::string& text) {
  std::vector<ModuleFunction> functions;
  const std::regex region_start(R"(^#region (helper|seam|op) ([A-Za-z0-9-]+)$)");
  const std::regex function_line(R"(^function ([A-Za-z][A-Za-z0-9-]*))");
  std::istringstream lines(text);
  std::optional<ModuleFunction> current;
  for (std::string line; std::getline(lines, line);) {
    std::smatch match;
    if (!current && std::regex_match(line, match, region_start)) {
      current = ModuleFunction{match[1], match[2], "", ""};
    } else if (current && line == "#endregion") {
      functions.push_back(*current);
      current.reset();
    } else if (current) {
      if (std::regex_search(line, match, function_line)) current->name = match[1];
      current->code += line + "\n";
    }
  }
  for (auto& function : functions) function.code = without_comments(function.code);
  return functions;
}

std::vector<std::string> script_ops() {
  std::vector<std::string> ops;
  for (const auto& function : module_functions(read_file(kModulePath))) {
    if (function.kind == "op") ops.push_back(function.region);
  }
  std::sort(ops.begin(), ops.end());
  return ops;
}

// Whole-word occurrences of a PowerShell function name (names hold dashes, so \b is not enough).
std::size_t count_references(const std::string& code, const std::string& name) {
  const std::regex word("(^|[^\\w$-])" + name + "(?![\\w-])");
  return static_cast<std::size_t>(
      std::distance(std::sregex_iterator(code.begin(), code.end(), word), std::sregex_iterator()));
}

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EXPECT_EQ(EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr), 1);
  std::string hex;
  char byte[3];
  for (unsigned int i = 0; i < length; ++i) {
    std::snprintf(byte, sizeof byte, "%02x", digest[i]);
    hex += byte;
  }
  return hex;
}

TEST(ScriptContract, EveryOpHasAContractATableEntryAndIsEmbedded) {
  const auto ops = script_ops();
  ASSERT_EQ(ops.size(), 15u);
  std::vector<std::string> table_ops;
  for (const auto& fields : op_fields()) table_ops.emplace_back(fields.op);
  std::sort(table_ops.begin(), table_ops.end());
  EXPECT_EQ(ops, table_ops);
  std::vector<std::string> embedded;
  for (auto op : embedded_ops()) embedded.emplace_back(op);
  EXPECT_EQ(ops, embedded);
  for (const auto& op : ops) {
    SCOPED_TRACE(op);
    EXPECT_TRUE(std::filesystem::exists(scripts_dir() + "/" + op + ".contract.json"));
    EXPECT_TRUE(script_for(op).has_value());
  }
  EXPECT_FALSE(script_for("no-such-op").has_value());
  EXPECT_EQ(module_text(), read_file(kModulePath)) << "the binary embeds a stale copy of the module";
  EXPECT_EQ(module_version(), sha256_hex(module_text()));
  EXPECT_EQ(module_version().size(), 64u);
}

TEST(ScriptContract, ScriptsFollowTheExecutionContract) {
  for (const auto& op : script_ops()) {
    SCOPED_TRACE(op);
    const std::string text = script_text(op);
    EXPECT_TRUE(text.starts_with("# wincert-op: " + op + "\n")) << "first line must name the op";
    EXPECT_NE(text.find("\nparam([string]$ArgsJson)\n"), std::string::npos);
    EXPECT_NE(text.find("$ArgsJson | ConvertFrom-Json"), std::string::npos);
    EXPECT_NE(text.find("\ntry {\n"), std::string::npos);
    EXPECT_NE(text.find("\n} catch {\n"), std::string::npos);
    EXPECT_NE(text.find("@{ error = @{ message = "), std::string::npos) << "failure must be the JSON error object";
    EXPECT_NE(text.find("    exit 1\n}"), std::string::npos) << "failure must exit non-zero";
    if (op != "echo") {
      EXPECT_NE(text.find("ConvertTo-Json -Compress -Depth 6"), std::string::npos);
    }
  }
}

TEST(ScriptContract, ModuleAvoidsPowerShell7OnlySyntax) {
  // Windows PowerShell 5.1: none of PowerShell 7's operators (the module and every assembled script).
  std::vector<std::pair<std::string, std::string>> texts = {{"WincertOps.psm1", read_file(kModulePath)}};
  for (const auto& op : script_ops()) texts.emplace_back(op, script_text(op));
  for (const auto& [name, text] : texts) {
    SCOPED_TRACE(name);
    const std::string code = without_comments(text);
    for (const char* pwsh7_only : {"??", "?.", "&&", "||", "-Parallel", "ConvertFrom-Json -AsHashtable"}) {
      EXPECT_EQ(code.find(pwsh7_only), std::string::npos) << pwsh7_only;
    }
    EXPECT_FALSE(std::regex_search(code, std::regex(R"(\)\s+\?\s+\S.*\s:\s)"))) << "ternary operator";
  }
}

TEST(ScriptContract, ModuleDefinesEveryFunctionOnceInItsOwnRegion) {
  const std::string text = read_file(kModulePath);
  const auto functions = module_functions(text);
  std::map<std::string, int> definitions;
  const std::regex function_line(R"((^|\n)\s*function ([A-Za-z][A-Za-z0-9-]*))");
  for (std::sregex_iterator it(text.begin(), text.end(), function_line), end; it != end; ++it) ++definitions[(*it)[2]];
  EXPECT_EQ(definitions.size(), functions.size()) << "a function outside its #region";
  for (const auto& [name, count] : definitions) EXPECT_EQ(count, 1) << name << " is defined more than once";
  for (const auto& function : functions) {
    SCOPED_TRACE(function.region);
    EXPECT_FALSE(function.name.empty());
    if (function.kind == "op") {
      EXPECT_TRUE(function.name.starts_with("Invoke-Wincert")) << function.name;
    } else {
      EXPECT_EQ(function.name, function.region);
    }
  }
}

TEST(ScriptContract, OnlySeamsTouchWindowsOnlyApis) {
  // What Pester cannot run on Linux lives behind the seams (certstore/ps/README.md); ops and helpers call them.
  const std::vector<std::string> windows_only = {"X509Store(",       "Get-ChildItem",
                                                 "Get-Service -",    "Get-CimInstance",
                                                 "Get-Item ",        "Get-ItemProperty",
                                                 "Set-ItemProperty", "Get-Acl",
                                                 "Set-Acl",          "Microsoft.Web.Administration.ServerManager",
                                                 "Process]::Start",  ".PrivateKey",
                                                 "GetRSAPrivateKey", "Dns]::GetHostEntry"};
  // String literals (messages such as "Set-Acl failed") are not calls.
  const std::regex string_literal(R"('[^']*'|"[^"]*")");
  for (const auto& function : module_functions(read_file(kModulePath))) {
    if (function.kind == "seam") continue;
    SCOPED_TRACE(function.name);
    const std::string code = std::regex_replace(function.code, string_literal, "''");
    for (const auto& api : windows_only) EXPECT_EQ(code.find(api), std::string::npos) << api;
    EXPECT_EQ(function.code.find("Cert:\\"), std::string::npos) << "the Cert: drive is a path, in a string";
  }
}

TEST(ScriptContract, ModuleBuildsListsWithoutArrayAppend) {
  // `$array +=` copies the array: O(n^2) over a store of thousands of certificates.
  EXPECT_EQ(without_comments(read_file(kModulePath)).find("+="), std::string::npos);
}

TEST(ScriptContract, AssembledScriptsCarryExactlyTheFunctionsTheyUse) {
  const auto functions = module_functions(read_file(kModulePath));
  const std::regex function_line(R"((^|\n)function ([A-Za-z][A-Za-z0-9-]*))");
  for (const auto& op : script_ops()) {
    SCOPED_TRACE(op);
    const std::string code = without_comments(script_text(op));
    std::map<std::string, int> defined;
    for (std::sregex_iterator it(code.begin(), code.end(), function_line), end; it != end; ++it) ++defined[(*it)[2]];
    for (const auto& function : functions) {
      const auto found = defined.find(function.name);
      const int count = found == defined.end() ? 0 : found->second;
      EXPECT_LE(count, 1) << function.name << " twice";
      // Defined exactly when referenced beyond its own definition line.
      const bool used = count_references(code, function.name) > static_cast<std::size_t>(count);
      EXPECT_EQ(count == 1, used) << function.name << (used ? " is called but missing" : " is carried but unused");
    }
  }
  std::set<std::string> echo_functions;
  const std::string echo = script_text("echo");
  for (std::sregex_iterator it(echo.begin(), echo.end(), function_line), end; it != end; ++it)
    echo_functions.insert((*it)[2]);
  EXPECT_EQ(echo_functions, (std::set<std::string>{"New-OpError", "ConvertTo-AsciiJson", "ConvertTo-OpErrorJson",
                                                   "Invoke-WincertEcho"}));
}

TEST(ScriptContract, ArgumentNamesMatchScriptGoldenAndCpp) {
  for (const auto& fields : op_fields()) {
    const std::string op(fields.op);
    SCOPED_TRACE(op);
    const auto contract = load_contract(op);
    EXPECT_EQ(contract["op"], op);
    if (fields.free_form) continue;
    const auto from_script = script_argument_paths(script_text(op));
    const auto from_golden = argument_paths(contract["args"]);
    const auto from_cpp = as_set(fields.args);
    EXPECT_EQ(from_script, from_golden) << "script vs " << op << ".contract.json args";
    EXPECT_EQ(from_golden, from_cpp) << op << ".contract.json args vs remote/contract.cpp";
  }
}

TEST(ScriptContract, OutputNamesMatchScriptGoldenAndCpp) {
  for (const auto& fields : op_fields()) {
    const std::string op(fields.op);
    SCOPED_TRACE(op);
    const auto contract = load_contract(op);
    if (fields.free_form) {
      EXPECT_EQ(contract["output"], contract["args"]) << "echo returns its argument unchanged";
      continue;
    }
    const auto from_script = script_output_names(script_text(op));
    const auto from_golden = output_names(contract["output"]);
    const auto from_cpp = as_set(fields.outputs);
    EXPECT_EQ(from_script, from_golden) << "script vs " << op << ".contract.json output";
    EXPECT_EQ(from_golden, from_cpp) << op << ".contract.json output vs remote/contract.cpp";
  }
}

TEST(ScriptContract, ErrorExamplesUseCategoriesTheScriptRaises) {
  for (const auto& fields : op_fields()) {
    const std::string op(fields.op);
    SCOPED_TRACE(op);
    const auto contract = load_contract(op);
    if (!contract.contains("error")) continue;
    const auto& error = contract["error"];
    EXPECT_NE(error["exit_code"].get<int>(), 0);
    const auto& body = error["output"]["error"];
    ASSERT_TRUE(body["message"].is_string());
    ASSERT_TRUE(body["category"].is_string());
    const std::string category_name = body["category"];
    EXPECT_NE(script_text(op).find("'" + category_name + "'"), std::string::npos)
        << "the script never raises category " << category_name;
  }
}

// Every category the module raises (New-OpError 'X', $category = 'X') and every golden error example maps
// to a code through the one table; none falls through to the default.
TEST(ScriptContract, EveryCategoryTheScriptsRaiseHasACode) {
  std::set<std::string> raised;
  const std::string module = read_file(kModulePath);
  const std::regex raise(R"((?:New-OpError\s+|\$category\s*=\s*)'(\w+)')");
  for (auto it = std::sregex_iterator(module.begin(), module.end(), raise); it != std::sregex_iterator(); ++it) {
    raised.insert((*it)[1].str());
  }
  for (const auto& fields : op_fields()) {
    const auto contract = load_contract(std::string(fields.op));
    if (contract.contains("error")) raised.insert(contract["error"]["output"]["error"]["category"].get<std::string>());
  }
  EXPECT_GE(raised.size(), 10u) << "the regex no longer finds the module's categories";
  for (const auto& name : raised) {
    EXPECT_TRUE(mapped_code_for_category(name).has_value()) << "category " << name << " has no code";
  }
}

TEST(ScriptContract, CategoriesMapToTheirCodes) {
  const std::map<std::string_view, ErrorCode> expected = {
      {category::kStoreNotFound, ErrorCode::kNotFound},
      {category::kCertificateNotFound, ErrorCode::kNotFound},
      {category::kProviderNotFound, ErrorCode::kNotFound},
      {category::kSiteNotFound, ErrorCode::kNotFound},
      {category::kInstanceNotFound, ErrorCode::kNotFound},
      {category::kIisNotInstalled, ErrorCode::kFailedPrecondition},
      {category::kInvalidArgument, ErrorCode::kInvalidArgument},
      {category::kPfxInvalid, ErrorCode::kInvalidArgument},
      {category::kCommandFailed, ErrorCode::kFailedPrecondition},
      {category::kVerificationFailed, ErrorCode::kFailedPrecondition},
      {category::kTimeout, ErrorCode::kDeadlineExceeded},
      // PowerShell's own ErrorCategory names, passed through for errors outside New-OpError.
      {"PermissionDenied", ErrorCode::kPermissionDenied},
      {"ObjectNotFound", ErrorCode::kNotFound},
      {"ResourceExists", ErrorCode::kAlreadyExists},
      {"ResourceUnavailable", ErrorCode::kUnavailable},
      {"OperationStopped", ErrorCode::kUnavailable},
      {"OperationTimeout", ErrorCode::kDeadlineExceeded},
      {"AuthenticationError", ErrorCode::kUnauthenticated},
      {"NotInstalled", ErrorCode::kFailedPrecondition},
      {"ParserError", ErrorCode::kInternal},
  };
  for (const auto& [name, code] : expected) {
    SCOPED_TRACE(std::string(name));
    EXPECT_EQ(mapped_code_for_category(name), code);
    EXPECT_EQ(error_code_for_category(name), code);
  }
  // Only a timeout or an unavailable host is worth another attempt among the scripts' own categories.
  EXPECT_TRUE(is_transient(error_code_for_category(category::kTimeout)));
  EXPECT_FALSE(is_transient(error_code_for_category(category::kCommandFailed)));
  // Unknown and empty categories: a host-side failure for a person, never retried.
  EXPECT_EQ(mapped_code_for_category("NotSpecified"), std::nullopt);
  EXPECT_EQ(error_code_for_category("NotSpecified"), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(error_code_for_category(""), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(error_code_for_category("storenotfound"), ErrorCode::kFailedPrecondition) << "names are exact";
}

TEST(ScriptContract, CertAddStatusValuesAreTheOnesTheBackendKnows) {
  const std::string text = script_text("cert-add");
  for (const auto status : {add_status::kAdded, add_status::kReplaced, add_status::kAlreadyPresent}) {
    EXPECT_NE(text.find("$status = '" + std::string(status) + "'"), std::string::npos) << status;
  }
  EXPECT_EQ(load_contract("cert-add")["output"]["Status"], add_status::kAdded);
}

TEST(ScriptContract, ExtractorsSeeNestedArgumentsAndIgnoreInternalHashtables) {
  const std::string sample =
      "# $a.InComment is ignored\n"
      "$x = $a.IisBinding.SiteName\n"
      "$internal = @{ NotOutput = 1 }\n"
      "$result = [pscustomobject]@{\n"
      "    Outer = [pscustomobject]@{\n"
      "        Inner = 1\n"
      "    }\n"
      "    Second = @{ Hidden = 2 }\n"
      "}\n";
  EXPECT_EQ(script_argument_paths(sample), (std::set<std::string>{"IisBinding", "IisBinding.SiteName"}));
  EXPECT_EQ(script_output_names(sample), (std::set<std::string>{"Outer", "Inner", "Second"}));
}

}  // namespace
}  // namespace wincert::certstore::remote
