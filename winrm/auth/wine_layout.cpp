#include "winrm/auth/wine_layout.hpp"

#include <cstddef>
#include <cstdint>

namespace wincert::winrm::gss::wine {
namespace {

constexpr std::size_t kTokenHeaderBytes = 16;  // RFC 4121 4.2.6.2
constexpr std::size_t kConfounderBytes = 16;   // the AES block size (all CFX enctypes Windows uses)
constexpr unsigned char kFlagSealed = 0x02;

bool is_wrap_token(std::string_view bytes) {
  return bytes.size() >= kTokenHeaderBytes && static_cast<unsigned char>(bytes[0]) == 0x05 &&
         static_cast<unsigned char>(bytes[1]) == 0x04;
}

std::uint16_t read_be16(std::string_view bytes, std::size_t at) {
  return static_cast<std::uint16_t>((static_cast<unsigned char>(bytes[at]) << 8) |
                                    static_cast<unsigned char>(bytes[at + 1]));
}

}  // namespace

Result<SealedParts> rotate_wrap_token(std::string_view data_part, std::string_view token_part) {
  if (is_wrap_token(token_part) && read_be16(token_part, 6) != 0) {
    return SealedParts{std::string(token_part), std::string(data_part)};  // already header || payload
  }
  const std::string token = std::string(data_part) + std::string(token_part);
  if (!is_wrap_token(token)) {
    return Error::failed_precondition(
        "the Kerberos SSP returned a sealed message that is not an RFC 4121 wrap token "
        "(RC4 contexts are not supported under Wine)");
  }
  if ((static_cast<unsigned char>(token[2]) & kFlagSealed) == 0) {
    return Error::internal("the Kerberos SSP did not encrypt the message (wrap token without the Sealed flag)");
  }
  const std::size_t ec = read_be16(token, 4);
  const std::size_t rrc = read_be16(token, 6);
  std::string cipher = token.substr(kTokenHeaderBytes);
  // The trailer: filler (EC), the encrypted header copy and the checksum, i.e. all but confounder and data.
  if (cipher.size() < kConfounderBytes + data_part.size() + ec + kTokenHeaderBytes) {
    return Error::internal("the Kerberos SSP returned a wrap token too short for its data");
  }
  if (rrc != 0) {  // undo any rotation first (RFC 4121 4.2.5: rotate right by RRC)
    const std::size_t shift = rrc % cipher.size();
    cipher = cipher.substr(shift) + cipher.substr(0, shift);
  }
  const std::size_t trailer = cipher.size() - kConfounderBytes - data_part.size();
  if (trailer > 0xFFFF) return Error::internal("the Kerberos SSP returned an implausible wrap token trailer");
  cipher = cipher.substr(cipher.size() - trailer) + cipher.substr(0, cipher.size() - trailer);
  std::string header = token.substr(0, kTokenHeaderBytes);
  header[6] = static_cast<char>((trailer >> 8) & 0xFF);
  header[7] = static_cast<char>(trailer & 0xFF);
  const std::size_t in_header = trailer + kConfounderBytes;
  return SealedParts{header + cipher.substr(0, in_header), cipher.substr(in_header)};
}

}  // namespace wincert::winrm::gss::wine
