// Inventory of one large LocalMachine store through WinRM against winhost-sim, measured from the agent's side:
// wall time, bytes on the wire, CPU time and peak memory of this process. bench/inventory_scale.py runs it for
// 100 ... 10,000 certificates (one process per size, so peak memory is per size) and writes the results table.
//
//   wincert_bench_inventory_scale generate --count N --out MODEL.json
//   wincert_bench_inventory_scale inventory --endpoint URL --user U --password-env VAR [--store My]
//       [--mode inventory|streamed|dom]
//       (inventory: CertStore::inventory(), the whole StoreInventory held; streamed: CertStore::read_inventory()
//       drained one certificate at a time, none kept, as the jobs layer reads it; dom: the path before issue 14,
//       ScriptCaller::call's JSON tree of the whole output + parse_store_inventory)
//   wincert_bench_inventory_scale load --ports-file PORTS --user U --password-env VAR --operations N
//       (N inventories spread over the hosts of `winhost-sim --hosts`, one WinRS shell per host kept open as the
//       agent keeps it, all hosts at once; for bench/winhost_sim_cpu.py)
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <vector>

#include "agent/winrm_script_runner.hpp"
#include "certstore/openssl_util.hpp"
#include "certstore/remote/contract.hpp"
#include "certstore/remote/remote_backend.hpp"
#include "certstore/x509.hpp"
#include "common/encoding.hpp"
#include "winrm/http_auth.hpp"
#include "winrm/transport.hpp"
#include "winrm/winrs.hpp"

namespace {

namespace net = boost::asio;
namespace ossl = wincert::certstore::ossl;
using nlohmann::json;

std::string to_pem(EVP_PKEY* key) {
  ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

// A self-signed EC P-256 certificate per entry, each with its own key container (as a real store has).
json make_model(int count) {
  json my = json::array();
  json keys = json::object();
  for (int i = 0; i < count; ++i) {
    ossl::PKeyPtr key(EVP_EC_gen("P-256"));
    ossl::X509Ptr cert(X509_new());
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), i + 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600);
    const std::string cn = "host" + std::to_string(i) + ".example.com";
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    X509_set_pubkey(cert.get(), key.get());
    X509_sign(cert.get(), key.get(), EVP_sha256());
    unsigned char* der = nullptr;
    const int length = i2d_X509(cert.get(), &der);
    const std::string der_bytes(reinterpret_cast<char*>(der), static_cast<std::size_t>(length));
    OPENSSL_free(der);
    const std::string container = "bench-" + std::to_string(i);
    my.push_back({{"der", wincert::base64_encode(der_bytes)},
                  {"thumbprint", wincert::certstore::thumbprint_of(der_bytes)},
                  {"friendly_name", cn},
                  {"key", container}});
    keys[container] = {{"provider", "Microsoft Software Key Storage Provider"},
                       {"type", "KSP"},
                       {"private_key_pem", to_pem(key.get())}};
  }
  return {{"hostname", "BENCH01"}, {"stores", {{"My", my}}}, {"keys", keys}};
}

struct Usage {
  double cpu_ms = 0;
  long max_rss_kb = 0;
};
Usage usage() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const auto ms = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) * 1e3 + tv.tv_usec / 1e3; };
  return {ms(ru.ru_utime) + ms(ru.ru_stime), ru.ru_maxrss};
}

// What one inventory yielded (the entries themselves are not kept when streamed).
struct InventoryCounts {
  std::size_t certificates = 0;
  std::size_t with_key = 0;
  std::size_t problems = 0;
};

InventoryCounts counts_of(const wincert::certstore::StoreInventory& inventory) {
  InventoryCounts counts;
  counts.certificates = inventory.entries.size();
  for (const auto& entry : inventory.entries) counts.with_key += entry.has_private_key ? 1 : 0;
  counts.problems = inventory.problems.size();
  return counts;
}

// CertStore::inventory(): the whole inventory, held until counted.
net::awaitable<wincert::Result<InventoryCounts>> inventory_whole(wincert::certstore::CertStore& certs,
                                                                 std::string store) {
  auto inventory = co_await certs.inventory(std::move(store));
  if (!inventory.ok()) co_return inventory.error();
  co_return counts_of(*inventory);
}

// The inventory as it was read before issue 14: one JSON tree of the whole output, then every entry.
net::awaitable<wincert::Result<InventoryCounts>> inventory_dom(wincert::certstore::remote::ScriptCaller& caller,
                                                               std::string store) {
  namespace remote = wincert::certstore::remote;
  json args = {{remote::arg::kStoreName, store}};
  auto doc = co_await caller.call(remote::op::kStoreInventory, std::move(args), store);
  if (!doc.ok()) co_return doc.error();
  auto inventory = remote::parse_store_inventory(*doc, store);
  if (!inventory.ok()) co_return inventory.error();
  co_return counts_of(*inventory);
}

// CertStore::read_inventory(): one certificate at a time, each dropped once counted.
net::awaitable<wincert::Result<InventoryCounts>> inventory_streamed(wincert::certstore::CertStore& certs,
                                                                    std::string store) {
  auto reader = co_await certs.read_inventory(std::move(store));
  if (!reader.ok()) co_return reader.error();
  InventoryCounts counts;
  while (true) {
    auto entry = (*reader)->next();
    if (!entry.ok()) co_return entry.error();
    if (!entry->has_value()) break;
    ++counts.certificates;
    counts.with_key += (*entry)->has_private_key ? 1 : 0;
  }
  counts.problems = (*reader)->problems().size();
  co_return counts;
}

int run_inventory(const std::string& url, const std::string& user, const std::string& password_env,
                  const std::string& store, const std::string& mode) {
  const char* password = std::getenv(password_env.c_str());
  if (password == nullptr) {
    std::fprintf(stderr, "inventory: %s is not set\n", password_env.c_str());
    return 2;
  }
  net::io_context io;
  auto endpoint = wincert::winrm::parse_endpoint(url);
  if (!endpoint.ok()) {
    std::fprintf(stderr, "inventory: %s\n", endpoint.error().message.c_str());
    return 2;
  }
  auto transport = wincert::winrm::WsmanTransport::create(
      io.get_executor(), *endpoint, std::make_unique<wincert::winrm::BasicAuth>(user, wincert::Secret(password), true),
      {});
  if (!transport.ok()) {
    std::fprintf(stderr, "inventory: %s\n", transport.error().message.c_str());
    return 2;
  }
  wincert::winrm::WinrsSession session(**transport);
  wincert::agent::WinrmScriptRunner runner(session, endpoint->host);
  auto caller = std::make_shared<wincert::certstore::remote::ScriptCaller>(runner);
  wincert::certstore::remote::RemoteCertStore certs(caller);

  const Usage before = usage();
  const auto start = std::chrono::steady_clock::now();
  std::optional<wincert::Result<InventoryCounts>> result;
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        if (mode == "streamed") {
          result.emplace(co_await inventory_streamed(certs, store));
        } else if (mode == "dom") {
          result.emplace(co_await inventory_dom(*caller, store));
        } else {
          result.emplace(co_await inventory_whole(certs, store));
        }
        (void)co_await session.close();
      },
      net::detached);
  io.run();
  const double wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  const Usage after = usage();
  if (!result || !result->ok()) {
    std::fprintf(stderr, "inventory: %s\n", result ? result->error().message.c_str() : "did not finish");
    return 1;
  }
  const InventoryCounts& counts = **result;
  const auto& counters = (*transport)->counters();
  const json out = {{"mode", mode},
                    {"certificates", counts.certificates},
                    {"with_private_key", counts.with_key},
                    {"problems", counts.problems},
                    {"wall_ms", wall_ms},
                    {"cpu_ms", after.cpu_ms - before.cpu_ms},
                    {"rss_before_kb", before.max_rss_kb},
                    {"peak_rss_kb", after.max_rss_kb},
                    {"http_requests", counters.http_requests},
                    {"bytes_sent", counters.bytes_sent},
                    {"bytes_received", counters.bytes_received}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

// Runs `operations` inventories over the hosts listed in ports_file (one port per line, winhost-sim --hosts),
// every host at once, one after the other on each host's own shell. Prints counts and wall time as JSON.
int run_load(const std::string& ports_file, const std::string& user, const std::string& password_env,
             const std::string& store, int operations) {
  const char* password = std::getenv(password_env.c_str());
  if (password == nullptr) {
    std::fprintf(stderr, "load: %s is not set\n", password_env.c_str());
    return 2;
  }
  std::vector<std::string> ports;
  std::ifstream in(ports_file);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) ports.push_back(line);
  }
  if (ports.empty()) {
    std::fprintf(stderr, "load: no ports in %s\n", ports_file.c_str());
    return 2;
  }
  net::io_context io;
  std::size_t done = 0, failed = 0, certificates = 0;
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t h = 0; h < ports.size(); ++h) {
    const int share = operations / static_cast<int>(ports.size()) +
                      (static_cast<int>(h) < operations % static_cast<int>(ports.size()) ? 1 : 0);
    if (share == 0) continue;
    auto endpoint = wincert::winrm::parse_endpoint("http://127.0.0.1:" + ports[h] + "/wsman");
    if (!endpoint.ok()) {
      std::fprintf(stderr, "load: %s\n", endpoint.error().message.c_str());
      return 2;
    }
    net::co_spawn(
        io,
        [&, endpoint = *endpoint, share]() -> net::awaitable<void> {
          auto transport = wincert::winrm::WsmanTransport::create(
              io.get_executor(), endpoint,
              std::make_unique<wincert::winrm::BasicAuth>(user, wincert::Secret(password), true), {});
          if (!transport.ok()) {
            failed += static_cast<std::size_t>(share);
            co_return;
          }
          wincert::winrm::WinrsSession session(**transport);
          wincert::agent::WinrmScriptRunner runner(session, endpoint.host);
          auto caller = std::make_shared<wincert::certstore::remote::ScriptCaller>(runner);
          wincert::certstore::remote::RemoteCertStore certs(caller);
          for (int i = 0; i < share; ++i) {
            auto result = co_await certs.inventory(store);
            if (result.ok()) {
              ++done;
              certificates += result->entries.size();
            } else {
              if (failed++ == 0) std::fprintf(stderr, "load: %s\n", result.error().message.c_str());
            }
          }
          (void)co_await session.close();
        },
        net::detached);
  }
  io.run();
  const double wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  const json out = {{"hosts", ports.size()},        {"operations", done}, {"failed", failed},
                    {"certificates", certificates}, {"wall_ms", wall_ms}, {"client_cpu_ms", usage().cpu_ms}};
  std::printf("%s\n", out.dump().c_str());
  return failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"inventory of a large store through WinRM against winhost-sim"};
  app.require_subcommand(1);
  int count = 100;
  std::string out_file, url, user, password_env, store = "My";
  auto* generate = app.add_subcommand("generate", "write a winhost-sim model with COUNT certificates in My");
  generate->add_option("--count", count)->required();
  generate->add_option("--out", out_file)->required();
  auto* inventory = app.add_subcommand("inventory", "inventory one store and print the measurements as JSON");
  inventory->add_option("--endpoint", url)->required();
  inventory->add_option("--user", user)->required();
  inventory->add_option("--password-env", password_env)->required();
  inventory->add_option("--store", store);
  std::string mode = "inventory";
  inventory->add_option("--mode", mode, "inventory (whole), streamed (read_inventory) or dom (before issue 14)")
      ->check(CLI::IsMember({"inventory", "streamed", "dom"}));
  std::string ports_file;
  int operations = 0;
  auto* load = app.add_subcommand("load", "run OPERATIONS inventories over the hosts of winhost-sim --hosts");
  load->add_option("--ports-file", ports_file)->required();
  load->add_option("--user", user)->required();
  load->add_option("--password-env", password_env)->required();
  load->add_option("--operations", operations)->required()->check(CLI::Range(1, 10000000));
  load->add_option("--store", store);
  CLI11_PARSE(app, argc, argv);
  if (load->parsed()) return run_load(ports_file, user, password_env, store, operations);
  if (generate->parsed()) {
    std::ofstream(out_file) << make_model(count).dump();
    return 0;
  }
  return run_inventory(url, user, password_env, store, mode);
}
