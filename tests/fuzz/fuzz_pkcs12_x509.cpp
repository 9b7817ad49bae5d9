// libFuzzer target: hostile PKCS#12 (PFX), X.509 and CSR inputs through the certstore parsers. The PFX
// iteration limits are set low here, so a file asking for millions of key-derivation rounds is refused
// before any round runs and the fuzzer cannot hang on one input (the agent's own limit is 10^7).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "certstore/csr.hpp"
#include "certstore/pkcs12.hpp"
#include "certstore/x509.hpp"
#include "common/encoding.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace wincert;
  using namespace wincert::certstore;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const PfxLimits limits{4096, 16384, 64};

  // PFX, with the empty password (two MAC attempts) and a non-empty one.
  for (const char* password : {"", "password"}) {
    auto pfx = open_pfx(input, Secret(password), "'fuzz'", limits);
    if (pfx.ok()) {
      if (!pfx->leaf) __builtin_trap();  // open_pfx promises a leaf
      (void)check_importable(*pfx, "'fuzz'", true);
    }
  }
  // The job entry point: base64 of the input, as a PFX or a bare DER certificate.
  (void)open_job_certificate(Secret(base64_encode(input)), Secret(""), "'fuzz'", limits);

  // X.509 as DER and as text (base64 or PEM), and a CSR (PEM, base64 or DER).
  auto facts = inventory_facts_der(input);  // what inventory decodes instead of the full parse
  if (auto info = parse_certificate_der(input); info.ok()) {
    (void)thumbprint_of(input);
    // When both read it, they read the same facts (the walk refuses some BER the full parse takes, e.g.
    // indefinite lengths: Windows stores hold DER).
    if (facts.ok() && (facts->thumbprint != info->thumbprint || facts->sans != info->sans)) std::abort();
  }
  (void)parse_certificate_text(input);
  (void)parse_csr(input);
  (void)normalize_thumbprint(input);
  return 0;
}
