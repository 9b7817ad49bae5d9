// Decoding of PowerShell CLIXML written to stderr (reference winrm.md §2.4).
// powershell.exe with redirected streams writes "#< CLIXML" followed by an <Objs> document holding the
// error/warning/verbose/debug/information records (and progress records, which we drop).
// Pure code, no I/O; never throws: malformed CLIXML falls back to the raw text in other_text.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace wincert::winrm {

struct ClixmlStreams {
  // One entry per <S S="..."> record (one line of output): all _xHHHH_ escapes decoded, CRLF normalised to
  // "\n", the record's own trailing line break removed.
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
  std::vector<std::string> verbose;
  std::vector<std::string> debug;
  std::vector<std::string> information;
  // Text that was not CLIXML (plain stderr before/between/after blocks, or a block that failed to parse),
  // kept as is.
  std::string other_text;

  // The error records as one text, like pypsrp's sanitise_clixml: one record per line, surrounding
  // whitespace trimmed. Empty when there is no error record.
  std::string error_text() const;
  // error_text(), or other_text trimmed when there are no error records: what to show a person.
  std::string readable_errors() const;
  bool has_errors() const { return !errors.empty(); }
};

// Decodes the whole accumulated stderr of a command. Input without the "#< CLIXML" marker comes back
// entirely as other_text.
ClixmlStreams decode_clixml(std::string_view stderr_bytes);

// Decodes every _xHHHH_ escape of a CLIXML string (_x005F_ is '_', surrogate pairs arrive as two escapes and
// become one UTF-8 code point, invalid escapes stay literal). Exposed for tests.
std::string decode_clixml_string(std::string_view text);

// The inverse, as PowerShell's serializer and pypsrp write strings: C0 controls, DEL..U+009F and U+FFFE/U+FFFF
// become _xHHHH_ (upper-case hex), characters beyond U+FFFF become two surrogate escapes, and every "_x"/"_X"
// gets its underscore escaped (_x005F_) so it cannot be read back as an escape. Invalid UTF-8 bytes become
// U+FFFD. XML escaping of < > & is left to the caller.
std::string encode_clixml_string(std::string_view utf8);

}  // namespace wincert::winrm
