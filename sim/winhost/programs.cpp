#include "sim/winhost/programs.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

#include "common/encoding.hpp"
#include "sim/winhost/windows_model.hpp"
#include "winrm/powershell_bootstrap.hpp"

namespace wincert::sim {

bool CaseInsensitiveLess::operator()(const std::string& a, const std::string& b) const {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) < std::tolower(static_cast<unsigned char>(y));
  });
}

namespace {

using Kind = OutputStep::Kind;

// Output of redirected cmd/PowerShell is encoded in the shell's codepage; characters the OEM codepage
// cannot show become '?' (we only model 65001 exactly; any other codepage keeps ASCII).
std::string to_codepage(std::string_view utf8, int codepage) {
  if (codepage == 65001) return std::string(utf8);
  std::string out;
  out.reserve(utf8.size());
  for (std::size_t i = 0; i < utf8.size();) {
    auto c = static_cast<unsigned char>(utf8[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    std::size_t len = (c >= 0xF0) ? 4 : (c >= 0xE0) ? 3 : (c >= 0xC0) ? 2 : 1;
    out.push_back('?');
    i += len;
  }
  return out;
}

std::string user_name_only(const std::string& owner) {
  auto bs = owner.find('\\');
  return bs == std::string::npos ? owner : owner.substr(bs + 1);
}

std::string basename_lower(std::string_view path) {
  std::string p(path);
  if (p.size() >= 2 && p.front() == '"' && p.back() == '"') p = p.substr(1, p.size() - 2);
  auto slash = p.find_last_of("\\/");
  if (slash != std::string::npos) p = p.substr(slash + 1);
  p = to_lower(p);
  for (std::string_view ext : {".exe", ".com"})
    if (p.size() > ext.size() && p.ends_with(ext)) p.resize(p.size() - ext.size());
  return p;
}

bool is_absolute_windows_path(std::string_view p) {
  if (!p.empty() && p.front() == '"') p.remove_prefix(1);
  return (p.size() >= 3 && std::isalpha(static_cast<unsigned char>(p[0])) && p[1] == ':' &&
          (p[2] == '\\' || p[2] == '/')) ||
         p.starts_with("\\\\");
}

const std::vector<std::string>& external_programs() {
  static const std::vector<std::string> names = {"cmd",  "powershell", "ping",     "timeout",
                                                 "more", "findstr",    "hostname", "whoami"};
  return names;
}

bool is_external_program(const std::string& name) {
  const auto& names = external_programs();
  return std::find(names.begin(), names.end(), name) != names.end();
}

struct Run {
  std::vector<OutputStep> steps;
  int exit_code = 0;
  bool exit_requested = false;  // `exit` ends the enclosing cmd.exe

  void out(std::string s) {
    if (!s.empty()) steps.push_back({Kind::kStdout, std::move(s), 0});
  }
  void err(std::string s) {
    if (!s.empty()) steps.push_back({Kind::kStderr, std::move(s), 0});
  }
  void sleep(long long ms) {
    if (ms > 0) steps.push_back({Kind::kSleep, {}, ms});
  }
  void append(Run&& other) {
    for (auto& s : other.steps) steps.push_back(std::move(s));
  }
};

// First whitespace-delimited token of a line (quotes kept together) and the raw rest after it.
std::string_view ltrim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

// Trailing spaces stay in the rest: cmd.exe hands them on (`echo out && ...` prints "out ").
std::pair<std::string, std::string> first_token(std::string_view line) {
  line = ltrim(line);
  std::size_t i = 0;
  bool quoted = false;
  while (i < line.size()) {
    char c = line[i];
    if (c == '"')
      quoted = !quoted;
    else if (!quoted && (c == ' ' || c == '\t'))
      break;
    ++i;
  }
  std::string rest = i < line.size() ? std::string(line.substr(i + 1)) : std::string();
  return {std::string(line.substr(0, i)), rest};
}

std::string strip_quotes(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

// ---------------------------------------------------------------------------------------------
// External programs shared by cmd.exe and direct process creation.

std::string normalize_crlf(std::string_view in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
      out += "\r\n";
    else
      out.push_back(in[i]);
  }
  if (!out.empty() && !out.ends_with("\r\n")) out += "\r\n";
  return out;
}

std::optional<Run> run_more(const std::string* input) {
  if (!input) return std::nullopt;
  Run r;
  r.out(normalize_crlf(*input));
  return r;
}

std::optional<Run> run_findstr(const std::string& args, const std::string* input) {
  auto argv = split_windows_args(args);
  std::string pattern;
  for (auto& a : argv)
    if (!a.starts_with("/")) {
      pattern = a;
      break;
    }
  if (pattern.empty()) {
    Run r;
    r.err("FINDSTR: Bad command line\r\n");
    r.exit_code = 2;
    return r;
  }
  if (!input) return std::nullopt;
  bool match_all = pattern == "^" || pattern == "." || pattern == "^.*" || pattern == ".*" || pattern == "$";
  Run r;
  std::string out;
  bool any = false;
  std::size_t start = 0;
  const std::string& in = *input;
  while (start < in.size()) {
    auto nl = in.find('\n', start);
    std::string line = in.substr(start, nl == std::string::npos ? std::string::npos : nl - start + 1);
    start = nl == std::string::npos ? in.size() : nl + 1;
    std::string content = line;
    while (!content.empty() && (content.back() == '\n' || content.back() == '\r')) content.pop_back();
    if (match_all || content.find(pattern) != std::string::npos) {
      any = true;
      out += content + "\r\n";
    }
  }
  r.out(out);
  r.exit_code = any ? 0 : 1;
  return r;
}

Run run_timeout(const std::string& args) {
  auto argv = split_windows_args(args);
  long long seconds = -2;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    std::string a = to_lower(argv[i]);
    if (a == "/t" && i + 1 < argv.size()) {
      try {
        seconds = std::stoll(argv[++i]);
      } catch (...) {
        seconds = -2;
      }
    } else if (a != "/nobreak" && seconds == -2) {
      try {
        seconds = std::stoll(a);
      } catch (...) {
      }
    }
  }
  Run r;
  if (seconds < -1 || seconds > 99999) {
    r.err(
        "ERROR: Invalid syntax. Default option is not allowed more than '1' time(s).\r\nType \"TIMEOUT /?\" for "
        "usage.\r\n");
    r.exit_code = 1;
    return r;
  }
  if (seconds == -1) seconds = 86400;  // "wait for a key": a day is forever enough for a test
  r.sleep(seconds * 1000);
  r.out("\r\nWaiting for 0 seconds, press a key to continue ...\r\n");
  return r;
}

Run run_ping(const std::string& args) {
  auto argv = split_windows_args(args);
  long long count = 4;
  std::string host;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    std::string a = to_lower(argv[i]);
    if ((a == "-n" || a == "/n") && i + 1 < argv.size()) {
      try {
        count = std::stoll(argv[++i]);
      } catch (...) {
        count = 4;
      }
    } else if ((a == "-w" || a == "-l" || a == "-i" || a == "/w" || a == "/l") && i + 1 < argv.size()) {
      ++i;
    } else if (!a.starts_with("-") && !a.starts_with("/")) {
      host = argv[i];
    }
  }
  Run r;
  if (host.empty() || count < 1 || count > 100000) {
    r.out("\r\nUsage: ping [-t] [-a] [-n count] [-l size] [-f] [-i TTL] [-v TOS]\r\n            target_name\r\n");
    r.exit_code = 1;
    return r;
  }
  // Echo requests go out one second apart: N pings take about N-1 seconds. Output arrives at the end.
  r.sleep((count - 1) * 1000);
  std::string out = "\r\nPinging " + host + " with 32 bytes of data:\r\n";
  for (long long i = 0; i < count; ++i) out += "Reply from " + host + ": bytes=32 time<1ms TTL=128\r\n";
  out += "\r\nPing statistics for " + host + ":\r\n    Packets: Sent = " + std::to_string(count) +
         ", Received = " + std::to_string(count) +
         ", Lost = 0 (0% loss),\r\nApproximate round trip times in milli-seconds:\r\n    Minimum = 0ms, Maximum = 0ms, "
         "Average = 0ms\r\n";
  r.out(out);
  return r;
}

std::string whoami_text(const ProcessContext& ctx) {
  std::string domain = ctx.user.find('\\') != std::string::npos ? ctx.user.substr(0, ctx.user.find('\\'))
                                                                : (ctx.model ? ctx.model->hostname() : "winhost01");
  return to_lower(domain + "\\" + user_name_only(ctx.user)) + "\r\n";
}

std::optional<Run> run_cmd_process(const ProcessContext& ctx, Environment env, const std::string& args,
                                   const std::string* input);

// An external program by name; `args` is the raw argument text. nullopt: needs stdin that is not there yet.
std::optional<Run> run_external(const ProcessContext& ctx, const Environment& env, const std::string& name,
                                const std::string& args, const std::string* input) {
  if (name == "cmd") return run_cmd_process(ctx, env, args, input);
  if (name == "powershell") {
    auto r = run_powershell(ctx, args, input);
    if (!r) return std::nullopt;
    Run out;
    if (ctx.ps_start_ms > 0) {  // the process start (--ps-start-ms), before any output
      OutputStep start;
      start.kind = OutputStep::Kind::kSleep;
      start.sleep_ms = ctx.ps_start_ms;
      out.steps.push_back(std::move(start));
    }
    out.steps.insert(out.steps.end(), std::make_move_iterator(r->steps.begin()),
                     std::make_move_iterator(r->steps.end()));
    out.exit_code = r->exit_code;
    return out;
  }
  if (name == "ping") return run_ping(args);
  if (name == "timeout") return run_timeout(args);
  if (name == "more") return run_more(input);
  if (name == "findstr") return run_findstr(args, input);
  Run r;
  if (name == "hostname")
    r.out((ctx.model ? ctx.model->hostname() : "WINHOST01") + "\r\n");
  else if (name == "whoami")
    r.out(whoami_text(ctx));
  return r;
}

// ---------------------------------------------------------------------------------------------
// cmd.exe

std::string expand_variables(std::string_view line, const Environment& env) {
  std::string out;
  std::size_t i = 0;
  while (i < line.size()) {
    if (line[i] == '%') {
      auto close = line.find('%', i + 1);
      if (close != std::string_view::npos && close > i + 1) {
        std::string name(line.substr(i + 1, close - i - 1));
        auto it = env.find(name);
        if (it != env.end()) {
          out += it->second;
          i = close + 1;
          continue;
        }
      }
    }
    out.push_back(line[i]);
    ++i;
  }
  return out;
}

struct CmdSegment {
  std::string op_before;  // "", "&", "&&", "||", "|"
  std::string text;
};

std::vector<CmdSegment> split_cmd_operators(std::string_view line) {
  std::vector<CmdSegment> segs(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    std::string& cur = segs.back().text;
    if (c == '"') {
      quoted = !quoted;
      cur.push_back(c);
    } else if (!quoted && c == '^' && i + 1 < line.size()) {
      cur.push_back(line[++i]);
    } else if (!quoted && c == '&' && !cur.empty() && (cur.back() == '>' || cur.back() == '<')) {
      cur.push_back(c);  // part of a redirection such as >&2
    } else if (!quoted && (c == '&' || c == '|')) {
      std::string op(1, c);
      if (i + 1 < line.size() && line[i + 1] == c) {
        op.push_back(c);
        ++i;
      }
      segs.push_back(CmdSegment{op, {}});
    } else {
      cur.push_back(c);
    }
  }
  return segs;
}

enum class Target { kStdout, kStderr, kNull };

struct Redirections {
  Target stdout_to = Target::kStdout;
  Target stderr_to = Target::kStderr;
};

// Removes redirections (">&2", "2>&1", ">nul", "2> file") from a simple command and reports them.
std::string strip_redirections(const std::string& text, Redirections& redir) {
  std::string out;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '"') quoted = !quoted;
    if (quoted || c != '>') {
      out.push_back(c);
      continue;
    }
    int fd = 1;
    if (!out.empty() && (out.back() == '1' || out.back() == '2') &&
        (out.size() == 1 || out[out.size() - 2] == ' ' || out[out.size() - 2] == '\t')) {
      fd = out.back() - '0';
      out.pop_back();
    }
    std::size_t j = i + 1;
    if (j < text.size() && text[j] == '>') ++j;  // append
    Target target = Target::kNull;
    if (j < text.size() && text[j] == '&') {
      ++j;
      if (j < text.size() && (text[j] == '1' || text[j] == '2')) {
        target = text[j] == '1' ? Target::kStdout : Target::kStderr;
        ++j;
      }
    } else {
      while (j < text.size() && (text[j] == ' ' || text[j] == '\t')) ++j;
      bool q = false;
      while (j < text.size() && (q || (text[j] != ' ' && text[j] != '\t'))) {
        if (text[j] == '"') q = !q;
        ++j;
      }
      target = Target::kNull;  // files and nul: the simulated host has no file system to write to
    }
    if (fd == 1)
      redir.stdout_to = target;
    else
      redir.stderr_to = target;
    i = j - 1;
  }
  return out;
}

// Applies redirections to a finished simple command's steps.
void apply_redirections(Run& run, const Redirections& redir) {
  std::vector<OutputStep> kept;
  for (auto& s : run.steps) {
    if (s.kind == Kind::kSleep) {
      kept.push_back(std::move(s));
      continue;
    }
    Target t = s.kind == Kind::kStdout ? redir.stdout_to : redir.stderr_to;
    if (t == Target::kNull) continue;
    s.kind = t == Target::kStdout ? Kind::kStdout : Kind::kStderr;
    kept.push_back(std::move(s));
  }
  run.steps = std::move(kept);
}

bool is_echo(std::string_view cmd) {
  if (!istarts_with(cmd, "echo")) return false;
  if (cmd.size() == 4) return true;
  char d = cmd[4];
  return d == ' ' || d == '\t' || d == '.' || d == ',' || d == ';' || d == ':' || d == '=' || d == '(' || d == '/';
}

std::string not_recognized(const std::string& name) {
  return "'" + name + "' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n";
}

std::optional<Run> run_cmd_simple(const ProcessContext& ctx, Environment& env, std::string text,
                                  const std::string* input) {
  Redirections redir;
  text = strip_redirections(text, redir);
  std::string_view line = text;
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t' || line.front() == '@')) line.remove_prefix(1);
  Run r;
  if (trim(line).empty()) return r;
  if (is_echo(line)) {
    std::string_view rest = line.substr(4);
    if (trim(rest).empty() && (rest.empty() || rest[0] == ' ' || rest[0] == '\t')) {
      r.out("ECHO is on.\r\n");
    } else {
      rest.remove_prefix(1);
      std::string lower = to_lower(trim(rest));
      if (lower != "on" && lower != "off") r.out(to_codepage(rest, ctx.codepage) + "\r\n");
    }
    apply_redirections(r, redir);
    return r;
  }
  auto [token, rest] = first_token(line);
  std::string name = to_lower(strip_quotes(token));
  if (name == "exit") {
    auto argv = split_windows_args(rest);
    std::size_t i = 0;
    if (i < argv.size() && iequals(argv[i], "/b")) ++i;
    r.exit_code = 0;
    if (i < argv.size()) {
      int code = 0;
      const std::string& a = argv[i];
      auto [p, ec] = std::from_chars(a.data(), a.data() + a.size(), code);
      r.exit_code = (ec == std::errc() && p == a.data() + a.size()) ? code : 0;
    }
    r.exit_requested = true;
    return r;
  }
  if (name == "rem") return r;
  if (name == "set") {
    std::string arg = std::string(trim(rest));
    if (arg.size() >= 2 && arg.front() == '"' && arg.back() == '"') arg = arg.substr(1, arg.size() - 2);
    if (arg.empty()) {
      std::string out;
      for (auto& [k, v] : env) out += k + "=" + v + "\r\n";
      r.out(to_codepage(out, ctx.codepage));
    } else if (istarts_with(arg, "/")) {
      // set /a, set /p: not modelled
    } else if (auto eq = arg.find('='); eq != std::string::npos) {
      std::string key = arg.substr(0, eq), value = arg.substr(eq + 1);
      if (value.empty())
        env.erase(key);
      else
        env[key] = value;
    } else {
      std::string out;
      for (auto& [k, v] : env)
        if (istarts_with(k, arg)) out += k + "=" + v + "\r\n";
      if (out.empty()) {
        r.err("Environment variable " + arg + " not defined\r\n");
        r.exit_code = 1;
      } else {
        r.out(to_codepage(out, ctx.codepage));
      }
    }
    apply_redirections(r, redir);
    return r;
  }
  if (name == "type") {
    std::string arg = strip_quotes(std::string(trim(rest)));
    if (iequals(arg, "con") || iequals(arg, "conin$")) {
      if (!input) return std::nullopt;
      r.out(*input);
    } else if (arg.empty()) {
      r.err("The syntax of the command is incorrect.\r\n");
      r.exit_code = 1;
    } else {
      r.err("The system cannot find the file specified.\r\n");
      r.exit_code = 1;
    }
    apply_redirections(r, redir);
    return r;
  }
  if (name == "ver") {
    r.out("\r\nMicrosoft Windows [Version " + (ctx.model ? ctx.model->os_version() : std::string("10.0.20348")) +
          "]\r\n");
    apply_redirections(r, redir);
    return r;
  }
  if (name == "cd" || name == "chdir") {
    if (trim(rest).empty()) {
      auto it = env.find("USERPROFILE");
      r.out((ctx.working_directory.empty() && it != env.end() ? it->second : ctx.working_directory) + "\r\n");
    }
    apply_redirections(r, redir);
    return r;
  }
  std::string program = basename_lower(token);
  bool path_given = token.find('\\') != std::string::npos || token.find('/') != std::string::npos;
  if (is_external_program(program) && (!path_given || is_absolute_windows_path(token))) {
    auto ext = run_external(ctx, env, program, rest, input);
    if (!ext) return std::nullopt;
    ext->exit_requested = false;  // `exit` in a child cmd.exe ends only the child
    apply_redirections(*ext, redir);
    return ext;
  }
  r.err(not_recognized(strip_quotes(token)));
  r.exit_code = 1;
  apply_redirections(r, redir);
  return r;
}

// Runs one cmd.exe command line (what follows /c) in `env`.
std::optional<Run> run_cmd_line(const ProcessContext& ctx, Environment& env, const std::string& raw_line,
                                const std::string* input) {
  std::string line = expand_variables(raw_line, env);
  auto segs = split_cmd_operators(line);
  Run total;
  int last = 0;
  bool stdin_used = false;
  static const std::string kEmpty;
  for (std::size_t i = 0; i < segs.size(); ++i) {
    const auto& seg = segs[i];
    if (seg.op_before == "&&" && last != 0) continue;
    if (seg.op_before == "||" && last == 0) continue;
    if (seg.op_before == "|") continue;  // consumed with its left side below
    // Gather a pipeline: this segment and any following "|" segments.
    std::size_t end = i + 1;
    while (end < segs.size() && segs[end].op_before == "|") ++end;
    const std::string* stage_input = stdin_used ? &kEmpty : input;
    std::optional<Run> r;
    std::string piped;
    for (std::size_t k = i; k < end; ++k) {
      auto stage = run_cmd_simple(ctx, env, segs[k].text, stage_input);
      if (!stage) return std::nullopt;
      if (k == i && stage_input == input) stdin_used = true;
      if (k + 1 < end) {
        // Its stdout feeds the next stage; stderr and sleeps stay in the output.
        piped.clear();
        std::vector<OutputStep> kept;
        for (auto& s : stage->steps) {
          if (s.kind == Kind::kStdout)
            piped += s.data;
          else
            kept.push_back(std::move(s));
        }
        stage->steps = std::move(kept);
        total.append(std::move(*stage));
        stage_input = &piped;
        if (stage->exit_requested) break;
      } else {
        r = std::move(stage);
      }
    }
    if (!r) break;
    last = r->exit_code;
    bool stop = r->exit_requested;
    total.append(std::move(*r));
    if (stop) break;
  }
  total.exit_code = last;
  return total;
}

// cmd.exe with its own arguments ("/c echo hi", "/q /c ...", or nothing: read commands from stdin).
std::optional<Run> run_cmd_process(const ProcessContext& ctx, Environment env, const std::string& args,
                                   const std::string* input) {
  std::string_view rest = ltrim(args);
  while (!rest.empty() && rest.front() == '/') {
    std::size_t n = 1;
    while (n < rest.size() && rest[n] != ' ' && rest[n] != '\t') ++n;
    std::string sw = to_lower(rest.substr(0, n));
    rest = ltrim(rest.substr(n));
    if (sw == "/c" || sw == "/k" || sw == "/r") {
      std::string line(rest);
      // cmd.exe strips one pair of quotes around the whole command (the /s rule for simple cases).
      std::string_view quoted = trim(line);
      if (quoted.size() >= 2 && quoted.front() == '"' && quoted.back() == '"')
        line = std::string(quoted.substr(1, quoted.size() - 2));
      return run_cmd_line(ctx, env, line, input);
    }
  }
  // Interactive cmd.exe with redirected stdin runs each input line.
  if (!input) return std::nullopt;
  Run total;
  int last = 0;
  std::size_t start = 0;
  static const std::string kEmpty;
  while (start < input->size()) {
    auto nl = input->find('\n', start);
    std::string line = input->substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    start = nl == std::string::npos ? input->size() : nl + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto r = run_cmd_line(ctx, env, line, &kEmpty);
    if (!r) break;
    last = r->exit_code;
    bool stop = r->exit_requested;
    total.append(std::move(*r));
    if (stop) break;
  }
  total.exit_code = last;
  return total;
}

ProgramResult to_result(Run&& r) { return ProgramResult{std::move(r.steps), r.exit_code}; }

// ---------------------------------------------------------------------------------------------
// PowerShell

// CLIXML string escaping: XML escapes plus _xHHHH_ for control characters and a literal "_x".
std::string clixml_escape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    auto uc = static_cast<unsigned char>(c);
    if (c == '_' && i + 1 < s.size() && s[i + 1] == 'x') {
      out += "_x005F_";
    } else if (uc < 0x20) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "_x%04X_", uc);
      out += buf;
    } else if (c == '&') {
      out += "&amp;";
    } else if (c == '<') {
      out += "&lt;";
    } else if (c == '>') {
      out += "&gt;";
    } else if (c == '"') {
      out += "&quot;";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

struct PsToken {
  std::string text;
  bool quoted = false;
};

std::vector<PsToken> ps_tokenize(std::string_view s) {
  std::vector<PsToken> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    if (i >= s.size()) break;
    PsToken t;
    if (s[i] == '\'') {
      t.quoted = true;
      ++i;
      while (i < s.size()) {
        if (s[i] == '\'' && i + 1 < s.size() && s[i + 1] == '\'') {
          t.text.push_back('\'');
          i += 2;
          continue;
        }
        if (s[i] == '\'') {
          ++i;
          break;
        }
        t.text.push_back(s[i++]);
      }
    } else if (s[i] == '"') {
      t.quoted = true;
      ++i;
      while (i < s.size()) {
        if (s[i] == '`' && i + 1 < s.size()) {
          char e = s[i + 1];
          t.text.push_back(e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e == '0' ? '\0' : e);
          i += 2;
          continue;
        }
        if (s[i] == '"' && i + 1 < s.size() && s[i + 1] == '"') {
          t.text.push_back('"');
          i += 2;
          continue;
        }
        if (s[i] == '"') {
          ++i;
          break;
        }
        t.text.push_back(s[i++]);
      }
    } else {
      while (i < s.size() && s[i] != ' ' && s[i] != '\t') t.text.push_back(s[i++]);
    }
    out.push_back(std::move(t));
  }
  return out;
}

struct PsStatement {
  std::string text;
  int line = 1;
  int column = 1;
};

// Splits a script into statements at newlines and ';' outside quotes; drops comments.
std::vector<PsStatement> ps_statements(std::string_view script) {
  std::vector<PsStatement> out;
  PsStatement cur;
  int line = 1, col = 0;
  char quote = 0;
  bool in_comment = false, in_block_comment = false;
  auto flush = [&] {
    std::string_view t = trim(cur.text);
    if (!t.empty()) {
      auto lead = cur.text.find_first_not_of(" \t");
      cur.column += static_cast<int>(lead);
      cur.text = std::string(t);
      out.push_back(cur);
    }
    cur = PsStatement{{}, line, col + 1};
  };
  cur = PsStatement{{}, 1, 1};
  for (std::size_t i = 0; i < script.size(); ++i) {
    char c = script[i];
    ++col;
    if (in_block_comment) {
      if (c == '#' && i + 1 < script.size() && script[i + 1] == '>') {
        in_block_comment = false;
        ++i;
      }
      if (c == '\n') {
        ++line;
        col = 0;
      }
      continue;
    }
    if (c == '\n') {
      in_comment = false;
      quote = 0;
      flush();
      ++line;
      col = 0;
      cur.line = line;
      cur.column = 1;
      continue;
    }
    if (in_comment || c == '\r') continue;
    if (quote) {
      cur.text.push_back(c);
      if (c == quote) quote = 0;
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      cur.text.push_back(c);
      continue;
    }
    if (c == '<' && i + 1 < script.size() && script[i + 1] == '#') {
      in_block_comment = true;
      ++i;
      continue;
    }
    if (c == '#') {
      in_comment = true;
      continue;
    }
    if (c == ';') {
      flush();
      continue;
    }
    cur.text.push_back(c);
  }
  flush();
  return out;
}

class PsInterpreter {
 public:
  PsInterpreter(const ProcessContext& ctx, bool clixml) : ctx_(ctx), clixml_(clixml) {}

  ProgramResult run(std::string_view script) {
    for (const auto& st : ps_statements(script)) {
      if (!execute(st)) break;
    }
    finish();
    return ProgramResult{std::move(steps_), exit_code_ ? *exit_code_ : (had_error_ ? 1 : 0)};
  }

  // Reports an operation failure like PowerShell reports a terminating error.
  void error_record(const std::vector<std::string>& lines) {
    had_error_ = true;
    if (clixml_) {
      for (auto& l : lines) errors_.push_back(l);
    } else {
      std::string text;
      for (auto& l : lines) text += l + "\r\n";
      err(text);
    }
  }
  void out(const std::string& s) {
    if (!s.empty()) steps_.push_back({Kind::kStdout, to_codepage(s, ctx_.codepage), 0});
  }
  void finish() {
    if (clixml_ && (!errors_.empty() || !warnings_.empty())) err(clixml_error_stream(errors_, warnings_));
    errors_.clear();
    warnings_.clear();
  }
  std::vector<OutputStep> take_steps() { return std::move(steps_); }

 private:
  void err(const std::string& s) {
    if (!s.empty()) steps_.push_back({Kind::kStderr, to_codepage(s, ctx_.codepage), 0});
  }

  static std::vector<std::string> values(const std::vector<PsToken>& toks, std::size_t from,
                                         const std::vector<std::string>& switches,
                                         const std::vector<std::string>& valued, bool* flag_seen = nullptr) {
    std::vector<std::string> out;
    for (std::size_t i = from; i < toks.size(); ++i) {
      const auto& t = toks[i];
      if (!t.quoted && t.text.size() > 1 && t.text[0] == '-') {
        std::string p = to_lower(t.text.substr(1));
        bool is_switch = std::any_of(switches.begin(), switches.end(), [&](auto& s) { return s.starts_with(p); });
        bool is_valued = std::any_of(valued.begin(), valued.end(), [&](auto& s) { return s.starts_with(p); });
        if (is_switch) {
          if (flag_seen) *flag_seen = true;
          continue;
        }
        if (is_valued) {
          // -Object/-Message/-InputObject carry the value itself; the others are styling we skip.
          if (i + 1 < toks.size()) {
            if (p.starts_with("o") || p.starts_with("m") || p.starts_with("i")) out.push_back(toks[i + 1].text);
            ++i;
          }
          continue;
        }
      }
      out.push_back(t.text);
    }
    return out;
  }

  static std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + v[i];
    return s;
  }

  // Returns false when the script ends (exit).
  bool execute(const PsStatement& st) {
    std::string_view text = st.text;
    if (text.front() == '$' || text.front() == '[') return true;  // assignments and casts: no output we model
    auto toks = ps_tokenize(text);
    if (toks.empty()) return true;
    if (toks[0].quoted) {
      for (auto& t : toks) out(t.text + "\r\n");
      return true;
    }
    std::string cmd = to_lower(toks[0].text);
    if (cmd == "write-output" || cmd == "echo" || cmd == "write") {
      for (auto& v : values(toks, 1, {"noenumerate"}, {"inputobject"})) out(v + "\r\n");
    } else if (cmd == "write-host") {
      bool no_newline = false;
      auto v =
          values(toks, 1, {"nonewline"}, {"object", "foregroundcolor", "backgroundcolor", "separator"}, &no_newline);
      out(join(v));
      if (!no_newline) out("\n");
    } else if (cmd == "write-information") {
      out(join(values(toks, 1, {}, {"messagedata", "tags"})) + "\n");
    } else if (cmd == "write-error") {
      auto msg = join(values(toks, 1, {}, {"message", "category", "errorid", "targetobject", "exception"}));
      error_record({std::string(text) + " : " + msg,
                    "    + CategoryInfo          : NotSpecified: (:) [Write-Error], WriteErrorException",
                    "    + FullyQualifiedErrorId : Microsoft.PowerShell.Commands.WriteErrorException", " "});
    } else if (cmd == "write-warning") {
      auto msg = join(values(toks, 1, {}, {"message"}));
      if (clixml_)
        warnings_.push_back(msg);
      else
        out("WARNING: " + msg + "\r\n");
    } else if (cmd == "write-verbose" || cmd == "write-debug" || cmd == "write-progress") {
      // silent with the default preferences
    } else if (cmd == "start-sleep" || cmd == "sleep") {
      double seconds = 0;
      bool millis = false;
      for (std::size_t i = 1; i < toks.size(); ++i) {
        std::string a = to_lower(toks[i].text);
        if (!toks[i].quoted && a.starts_with("-m")) {
          millis = true;
          continue;
        }
        if (!toks[i].quoted && a.starts_with("-s")) {
          millis = false;
          continue;
        }
        try {
          seconds = std::stod(a);
        } catch (...) {
        }
      }
      long long ms = static_cast<long long>(std::llround(millis ? seconds : seconds * 1000));
      if (ms > 0) steps_.push_back({Kind::kSleep, {}, std::min(ms, 86400000LL)});
    } else if (cmd == "exit") {
      int code = 0;
      if (toks.size() > 1) {
        try {
          code = std::stoi(toks[1].text);
        } catch (...) {
          code = 0;
        }
      }
      exit_code_ = code;
      return false;
    } else if (cmd == "hostname" || cmd == "hostname.exe") {
      out((ctx_.model ? ctx_.model->hostname() : std::string("WINHOST01")) + "\r\n");
    } else {
      const std::string& name = toks[0].text;
      std::string tildes(name.size(), '~');
      error_record({name + " : The term '" + name +
                        "' is not recognized as the name of a cmdlet, function, script file, or operable program. "
                        "Check ",
                    "the spelling of the name, or if a path was included, verify that the path is correct and try "
                    "again.",
                    "At line:" + std::to_string(st.line) + " char:" + std::to_string(st.column),
                    "+ " + std::string(text), "+ " + tildes,
                    "    + CategoryInfo          : ObjectNotFound: (" + name + ":String) [], CommandNotFoundException",
                    "    + FullyQualifiedErrorId : CommandNotFoundException", " "});
    }
    return true;
  }

  const ProcessContext& ctx_;
  bool clixml_;
  std::vector<OutputStep> steps_;
  std::vector<std::string> errors_, warnings_;
  bool had_error_ = false;
  std::optional<int> exit_code_;
};

ProgramResult powershell_failure(const ProcessContext& ctx, const std::string& message, bool clixml, int exit_code) {
  PsInterpreter ps(ctx, clixml);
  ps.error_record({message, " "});
  ps.finish();
  return ProgramResult{ps.take_steps(), exit_code};
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::vector<std::string> split_windows_args(const std::string& line) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i >= line.size()) break;
    std::string arg;
    bool quoted = false;
    while (i < line.size() && (quoted || (line[i] != ' ' && line[i] != '\t'))) {
      if (line[i] == '\\') {
        std::size_t n = 0;
        while (i < line.size() && line[i] == '\\') {
          ++n;
          ++i;
        }
        if (i < line.size() && line[i] == '"') {
          arg.append(n / 2, '\\');
          if (n % 2) {
            arg.push_back('"');
            ++i;
          }
        } else {
          arg.append(n, '\\');
        }
        continue;
      }
      if (line[i] == '"') {
        if (quoted && i + 1 < line.size() && line[i + 1] == '"') {
          arg.push_back('"');
          i += 2;
          continue;
        }
        quoted = !quoted;
        ++i;
        continue;
      }
      arg.push_back(line[i++]);
    }
    out.push_back(std::move(arg));
  }
  return out;
}

std::string clixml_error_stream(const std::vector<std::string>& error_lines,
                                const std::vector<std::string>& warning_lines) {
  std::string s = "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\">";
  for (const auto& l : warning_lines) s += "<S S=\"warning\">" + clixml_escape(l) + "_x000D__x000A_</S>";
  for (const auto& l : error_lines) s += "<S S=\"Error\">" + clixml_escape(l) + "_x000D__x000A_</S>";
  s += "</Objs>";
  return s;
}

Environment process_environment(const ProcessContext& ctx) {
  std::string host = ctx.model ? ctx.model->hostname() : std::string("WINHOST01");
  std::string user = user_name_only(ctx.user);
  std::string domain = ctx.user.find('\\') != std::string::npos ? ctx.user.substr(0, ctx.user.find('\\')) : host;
  std::string profile = "C:\\Users\\" + user;
  Environment env{{"ALLUSERSPROFILE", "C:\\ProgramData"},
                  {"APPDATA", profile + "\\AppData\\Roaming"},
                  {"CommonProgramFiles", "C:\\Program Files\\Common Files"},
                  {"COMPUTERNAME", host},
                  {"ComSpec", "C:\\Windows\\system32\\cmd.exe"},
                  {"LOCALAPPDATA", profile + "\\AppData\\Local"},
                  {"NUMBER_OF_PROCESSORS", "2"},
                  {"OS", "Windows_NT"},
                  {"Path",
                   "C:\\Windows\\system32;C:\\Windows;C:\\Windows\\System32\\Wbem;"
                   "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\;C:\\Windows\\System32\\OpenSSH\\"},
                  {"PATHEXT", ".COM;.EXE;.BAT;.CMD;.VBS;.VBE;.JS;.JSE;.WSF;.WSH;.MSC"},
                  {"PROCESSOR_ARCHITECTURE", "AMD64"},
                  {"ProgramData", "C:\\ProgramData"},
                  {"ProgramFiles", "C:\\Program Files"},
                  {"ProgramFiles(x86)", "C:\\Program Files (x86)"},
                  {"PROMPT", "$P$G"},
                  {"PSModulePath", "C:\\Windows\\system32\\WindowsPowerShell\\v1.0\\Modules\\"},
                  {"PUBLIC", "C:\\Users\\Public"},
                  {"SystemDrive", "C:"},
                  {"SystemRoot", "C:\\Windows"},
                  {"TEMP", profile + "\\AppData\\Local\\Temp"},
                  {"TMP", profile + "\\AppData\\Local\\Temp"},
                  {"USERDOMAIN", domain},
                  {"USERNAME", user},
                  {"USERPROFILE", profile},
                  {"windir", "C:\\Windows"}};
  for (const auto& [k, v] : ctx.shell_environment) env[k] = v;
  return env;
}

bool direct_executable_exists(const std::string& command) {
  auto argv = split_windows_args(command);
  if (argv.empty()) return false;
  return is_absolute_windows_path(argv[0]) && is_external_program(basename_lower(argv[0]));
}

namespace {

// UTF-16 code units of one argument. ASCII (the base64 of -EncodedCommand, tens of KB per operation) is counted
// without converting it: the conversion was 4% of winhost-sim's CPU per inventory.
std::size_t utf16_length(const std::string& text) {
  for (unsigned char c : text) {
    if (c >= 0x80) return utf8_to_utf16le(text).size() / 2;
  }
  return text.size();
}

}  // namespace

std::size_t command_line_length(const std::string& command, const std::vector<std::string>& arguments) {
  std::size_t n = utf16_length(command);
  for (const auto& a : arguments) n += 1 + utf16_length(a);
  return n;
}

std::optional<ProgramResult> run_command_line(const ProcessContext& ctx, const std::string& command,
                                              const std::vector<std::string>& arguments, bool skip_cmd_shell,
                                              const std::string* stdin_data) {
  std::string line = command;
  for (const auto& a : arguments) line += " " + a;
  Environment env = process_environment(ctx);
  if (!skip_cmd_shell && command_line_length(command, arguments) > kMaxCmdLine) {
    Run r;
    r.err("The command line is too long.\r\n");
    r.exit_code = 1;
    return to_result(std::move(r));
  }
  if (!skip_cmd_shell) {
    auto r = run_cmd_line(ctx, env, line, stdin_data);
    if (!r) return std::nullopt;
    return to_result(std::move(*r));
  }
  // Direct process creation: no cmd.exe parsing, no %VAR% expansion, no operators.
  auto [token, rest] = first_token(line);
  auto r = run_external(ctx, env, basename_lower(token), rest, stdin_data);
  if (!r) return std::nullopt;
  return to_result(std::move(*r));
}

std::optional<ProgramResult> run_powershell(const ProcessContext& ctx, const std::string& argument_line,
                                            const std::string* stdin_data) {
  auto argv = split_windows_args(argument_line);
  std::optional<std::string> encoded;
  std::optional<std::string> command;
  bool from_stdin = false;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const std::string& t = argv[i];
    if (t == "-") {
      from_stdin = true;
      break;
    }
    if (t.size() > 1 && (t[0] == '-' || t[0] == '/')) {
      std::string p = to_lower(t.substr(1));
      auto is = [&](std::string_view full, std::size_t min_len) { return p.size() >= min_len && full.starts_with(p); };
      if (p == "e" || p == "ec" || is("encodedcommand", 2)) {
        if (i + 1 < argv.size()) encoded = argv[++i];
        continue;
      }
      if (p == "ep" || is("executionpolicy", 2) || is("inputformat", 2) || is("outputformat", 1) ||
          is("windowstyle", 1) || is("version", 1) || is("configurationname", 4) || is("psconsolefile", 2)) {
        ++i;
        continue;
      }
      if (is("noprofile", 3) || is("noninteractive", 4) || is("nologo", 3) || is("noexit", 3) || p == "sta" ||
          p == "mta")
        continue;
      if (is("command", 1)) {
        std::string c;
        for (std::size_t k = i + 1; k < argv.size(); ++k) c += (k > i + 1 ? " " : "") + argv[k];
        if (c == "-")
          from_stdin = true;
        else
          command = c;
        break;
      }
      if (is("file", 1)) {
        std::string f = i + 1 < argv.size() ? argv[i + 1] : std::string();
        Run r;
        r.err(to_codepage("The argument '" + f +
                              "' to the -File parameter does not exist. Provide the path to an "
                              "existing '.ps1' file as an argument to the -File parameter.\r\n",
                          ctx.codepage));
        r.exit_code = -196608;
        return to_result(std::move(r));
      }
    }
    // Anything else starts the command text (powershell.exe Write-Host hi).
    std::string c;
    for (std::size_t k = i; k < argv.size(); ++k) c += (k > i ? " " : "") + argv[k];
    command = c;
    break;
  }
  if (encoded) {
    auto text = winrm::decode_command(*encoded);
    if (!text) {
      Run r;
      r.err(
          "Cannot process the command because the value specified with -EncodedCommand is not properly encoded. "
          "The value must be Base64 encoded.\r\n");
      r.exit_code = -196608;
      return to_result(std::move(r));
    }
    if (auto boot = winrm::parse_bootstrap(*text)) {
      if (boot->mode == winrm::BootstrapMode::kInline && boot->payload)
        return run_powershell_script(ctx, boot->payload->script, boot->payload->args_json, true);
      if (!stdin_data) return std::nullopt;
      auto payload = winrm::decode_payload(*stdin_data);
      if (!payload)
        return powershell_failure(ctx,
                                  "Exception calling \"FromBase64String\" with \"1\" argument(s): \"The input is not a "
                                  "valid Base-64 string as it contains a non-base 64 character.\"",
                                  true, 1);
      return run_powershell_script(ctx, payload->script, payload->args_json, true);
    }
    return run_powershell_script(ctx, *text, "{}", true);
  }
  if (command) return run_powershell_script(ctx, *command, "{}", false);
  // `powershell -` or no command at all: commands come from stdin.
  (void)from_stdin;
  if (!stdin_data) return std::nullopt;
  return run_powershell_script(ctx, *stdin_data, "{}", false);
}

ProgramResult run_powershell_script(const ProcessContext& ctx, const std::string& script_in,
                                    const std::string& args_json, bool encoded) {
  std::string_view script = script_in;
  if (script.starts_with("\xEF\xBB\xBF")) script.remove_prefix(3);
  std::string_view first_line = script.substr(0, script.find('\n'));
  first_line = trim(first_line);
  constexpr std::string_view kOpMarker = "# wincert-op:";
  if (!istarts_with(first_line, kOpMarker)) {
    PsInterpreter ps(ctx, encoded);
    return ps.run(script);
  }
  std::string op(trim(first_line.substr(kOpMarker.size())));
  auto args = nlohmann::json::parse(args_json.empty() ? std::string("{}") : args_json, nullptr, false);
  OperationOutcome outcome;
  if (args.is_discarded())
    outcome = OperationOutcome::failure("The argument object is not valid JSON.", "InvalidArgument");
  else if (!ctx.model)
    outcome = OperationOutcome::failure("No Windows model is loaded on this host.", "NotImplemented");
  else
    outcome = ctx.model->run_operation(op, args);

  PsInterpreter ps(ctx, encoded);
  constexpr auto kReplace = nlohmann::json::error_handler_t::replace;
  if (outcome.ok) {
    ps.out(outcome.result.dump(-1, ' ', false, kReplace) + "\r\n");
    ps.finish();
    return ProgramResult{ps.take_steps(), 0};
  }
  nlohmann::json err = {{"error", {{"message", outcome.error.message}, {"category", outcome.error.category}}}};
  ps.out(err.dump(-1, ' ', false, kReplace) + "\r\n");
  ps.error_record({outcome.error.message,
                   "    + CategoryInfo          : " + outcome.error.category + ": (:) [], RuntimeException",
                   "    + FullyQualifiedErrorId : " + op, " "});
  ps.finish();
  return ProgramResult{ps.take_steps(), 1};
}

}  // namespace wincert::sim
