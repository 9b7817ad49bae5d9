#include "agent/platform/process.hpp"

namespace wincert::agent::process {

// Windows Error Reporting keeps no full user-mode dump unless an administrator configured LocalDumps;
// the service has nothing to switch off here.
std::string disable_core_dumps() { return {}; }

}  // namespace wincert::agent::process
