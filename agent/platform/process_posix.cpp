#include "agent/platform/process.hpp"

#include <sys/resource.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <cerrno>
#include <cstring>

namespace wincert::agent::process {

std::string disable_core_dumps() {
  std::string problems;
  const rlimit none{0, 0};
  if (::setrlimit(RLIMIT_CORE, &none) != 0)
    problems += std::string("setrlimit(RLIMIT_CORE, 0): ") + std::strerror(errno);
#ifdef __linux__
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
    problems += std::string(problems.empty() ? "" : "; ") + "prctl(PR_SET_DUMPABLE, 0): " + std::strerror(errno);
#endif
  return problems;
}

}  // namespace wincert::agent::process
