// Where a machine key lives on disk and who may read it. SQL Server's service account needs Read on the
// key file of its TLS certificate (the usual cause of "A specified logon session does not exist" when it
// has not), so binding a certificate grants it, as the extension's Set-KFSQLCertificateBinding does.
#pragma once

#include "certstore/local/system_store.hpp"
#include "common/result.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace wincert::certstore::local {

// %ProgramData%\Microsoft\Crypto: where Windows keeps machine keys (CNG: Keys, SystemKeys; CryptoAPI:
// RSA\MachineKeys).
std::string machine_crypto_directory();

// The file name Windows gives the key: NCRYPT_UNIQUE_NAME_PROPERTY of a CNG key, PP_UNIQUE_CONTAINER of a
// CSP container.
Result<std::string> key_unique_name(const KeyLink& link);
// The folders searched for a key's file, in order (CNG: Keys, SystemKeys, RSA\MachineKeys; CSP:
// RSA\MachineKeys), below crypto_directory.
std::vector<std::string> key_file_folders(const KeyLink& link, const std::string& crypto_directory);
// The key's file, or "" when no folder holds it (keys of a hardware provider, or Wine, which keeps CSP
// keys in its registry).
Result<std::string> find_key_file(const KeyLink& link, const std::string& crypto_directory);

// Adds an Allow Read entry for the account ("NT Service\MSSQLSERVER", "CORP\svc-sql") to the file's
// DACL, then reads the DACL back to check it is there.
Status grant_read_access(const std::string& path, const std::string& account);
// The file's DACL has an Allow entry for the account that includes read access.
Result<bool> account_can_read(const std::string& path, const std::string& account);

}  // namespace wincert::certstore::local
