// Wine's Kerberos SSP seals WinRM messages in a layout no other peer uses; this converts it to the one
// Windows (and the MIT client, winrm/auth/gssapi_common.cpp) puts on the wire (shared/reference/winrm.md
// §3.9). Pure byte handling, no Windows API, so it is testable anywhere.
//
// Wine (8.x) implements EncryptMessage for contexts that are not DCE-style with a plain gss_wrap(): the
// RFC 4121 wrap token T = header(16) || E(confounder || data || filler || header copy) || checksum, with
// RRC = 0, handed back as DATA = T[0, len(data)) and TOKEN = the rest. WinRM wants the trailer rotated
// into the header (RRC = trailer length), so that header = token header || trailer || confounder and the
// payload is exactly the encrypted data.
#pragma once

#include <string>
#include <string_view>

#include "common/result.hpp"

namespace wincert::winrm::gss::wine {

struct SealedParts {
  std::string header;   // the security header (60 bytes for AES with SHA-1 checksums)
  std::string payload;  // the encrypted data, as long as the plaintext
};

// data_part || token_part must be one sealed RFC 4121 wrap token (AES: 16-byte confounder) whose DATA part
// is as long as the plaintext. A token already in the WinRM layout (token_part is the header: it starts
// with the wrap token ID and has RRC != 0) is returned unchanged.
Result<SealedParts> rotate_wrap_token(std::string_view data_part, std::string_view token_part);

}  // namespace wincert::winrm::gss::wine
