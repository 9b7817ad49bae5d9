// Owner-only access on Windows, the counterpart of POSIX mode 0600/0700 for the agent's secrets, outbox
// and log: a protected DACL (nothing inherited from %ProgramData%, whose default lets Users read) that
// grants full control to SYSTEM, Administrators, the account the agent runs as, and optionally the
// service's account. And the check that refuses a file others can read, as the POSIX mode check does.
#pragma once

#include <optional>
#include <string>

#include "common/result.hpp"

namespace wincert::win32_acl {

// Replaces the DACL of a file or directory (directories: inherited by what is created in them).
// also_grant: an account name ("DOMAIN\\svc-wincert", ".\\svc") or SID string ("S-1-5-...") given
// full control too; "" for none.
Status restrict_to_owner(const std::string& path, const std::string& also_grant = {});

// Which principal other than SYSTEM, Administrators, the current account or the file's owner may read
// the file ("Everyone (S-1-1-0)"), as a sentence naming the path and the fix; nullopt when none may. A
// missing DACL (everyone may do anything) counts as exposed. A path whose ACL cannot be read is not
// judged here (the caller's open reports it).
std::optional<std::string> read_exposure(const std::string& path);

}  // namespace wincert::win32_acl
