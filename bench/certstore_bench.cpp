// certstore hot paths, measured on the golden contract data (certstore/scripts/*.contract.json).
#include "certstore/pkcs12.hpp"
#include "certstore/remote/remote_backend.hpp"
#include "certstore/x509.hpp"
#include "common/encoding.hpp"

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

namespace {

nlohmann::json contract(const std::string& op) {
  std::ifstream in(std::string(WINCERT_CERTSTORE_SCRIPT_DIR) + "/" + op + ".contract.json");
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str());
}

void BM_ParseCertificateDer(benchmark::State& state) {
  const auto doc = contract("store-inventory");
  const std::string der = *wincert::base64_decode(doc["output"]["Certificates"][0]["Base64"].get<std::string>());
  for (auto _ : state) {
    auto info = wincert::certstore::parse_certificate_der(der);
    benchmark::DoNotOptimize(info);
  }
}
BENCHMARK(BM_ParseCertificateDer);

void BM_OpenPfx(benchmark::State& state) {
  const auto args = contract("cert-add")["args"];
  const std::string der = *wincert::base64_decode(args["ContentsBase64"].get<std::string>());
  const wincert::Secret password(args["PfxPassword"].get<std::string>());
  for (auto _ : state) {
    auto pfx = wincert::certstore::open_pfx(der, password, "in this job");
    benchmark::DoNotOptimize(pfx);
  }
}
BENCHMARK(BM_OpenPfx)->Unit(benchmark::kMillisecond);

// A store of state.range(0) certificates as store-inventory prints it.
void BM_ParseStoreInventory(benchmark::State& state) {
  auto doc = contract("store-inventory")["output"];
  const auto one = doc["Certificates"];
  doc["Certificates"] = nlohmann::json::array();
  for (int i = 0; i < state.range(0); ++i) doc["Certificates"].push_back(one[static_cast<std::size_t>(i % 2)]);
  for (auto _ : state) {
    auto inventory = wincert::certstore::remote::parse_store_inventory(doc, "My");
    benchmark::DoNotOptimize(inventory);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ParseStoreInventory)->Arg(10)->Arg(500);

}  // namespace

BENCHMARK_MAIN();
