// The three sides of the remote contract must agree: each script's text (what it reads from $a and the
// properties it emits), its golden certstore/scripts/NAME.contract.json, and the C++ table the remote
// backend is written against (certstore/remote/contract.hpp).
#include "certstore/remote/contract.hpp"
#include "certstore/scripts.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <algorithm>
#include <set>
#include <sstream>

namespace wincert::certstore::remote {
namespace {

using testing::argument_paths;
using testing::load_contract;
using testing::output_names;
using testing::read_file;
using testing::scripts_dir;

std::string script_text(const std::string& op) { return read_file(scripts_dir() + "/" + op + ".ps1"); }

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
    for (auto dot = path.find('.'); dot != std::string::npos; dot = path.find('.', dot + 1)) paths.insert(path.substr(0, dot));
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

std::set<std::string> as_set(const std::vector<std::string_view>& items) {
  return {items.begin(), items.end()};
}

std::vector<std::string> script_ops() {
  std::vector<std::string> ops;
  for (const auto& entry : std::filesystem::directory_iterator(scripts_dir())) {
    if (entry.path().extension() == ".ps1") ops.push_back(entry.path().stem().string());
  }
  std::sort(ops.begin(), ops.end());
  return ops;
}

TEST(ScriptContract, EveryScriptHasAContractATableEntryAndIsEmbedded) {
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
    const auto embedded_text = script_for(op);
    ASSERT_TRUE(embedded_text.has_value());
    EXPECT_EQ(*embedded_text, script_text(op)) << "the binary embeds a stale copy";
  }
  EXPECT_FALSE(script_for("no-such-op").has_value());
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
    // Windows PowerShell 5.1: none of PowerShell 7's operators.
    const std::string code = without_comments(text);
    for (const char* pwsh7_only : {"??", "?.", "&&", "||", "-Parallel", "ConvertFrom-Json -AsHashtable"}) {
      EXPECT_EQ(code.find(pwsh7_only), std::string::npos) << pwsh7_only;
    }
    EXPECT_FALSE(std::regex_search(code, std::regex(R"(\)\s+\?\s+\S.*\s:\s)"))) << "ternary operator";
  }
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
