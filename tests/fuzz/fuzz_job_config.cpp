// libFuzzer target: a job configuration as text (from Command or a replay job file), through the
// peer-JSON limits and the Universal Orchestrator configuration parser.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "jobs/job_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)wincert::jobs::parse_job_config(text);
  // A --set override descends into the Properties string: the same limits must hold there.
  (void)wincert::jobs::set_override(text, "CertificateStoreDetails.Properties.WinRm Port", "5986");
  return 0;
}
