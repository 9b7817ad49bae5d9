// Local (agent-mode) inventory of one LocalMachine store holding thousands of certificates: fills a
// dedicated store ("WincertBench") with OpenSSL-made certificates (some linked to machine keys), times
// inventory_now() a few times (wall: steady_clock; CPU: GetProcessTimes, user + kernel), prints a Markdown
// table, and deletes the store and keys again. A plain program, not Google Benchmark (not cross-built).
//   local_inventory_bench.exe [--count 5000] [--keyed 100] [--runs 5] [--store WincertBench]
#include "certstore/local/machine_key.hpp"
#include "certstore/local/operations.hpp"
#include "certstore/local/registry.hpp"
#include "certstore/local/system_store.hpp"
#include "certstore/openssl_util.hpp"
#include "common/win32_text.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using namespace wincert;
using namespace wincert::certstore;
using namespace wincert::certstore::local;
using Clock = std::chrono::steady_clock;

struct Settings {
  int count = 5000;
  int keyed = 100;
  int runs = 5;
  std::string store = "WincertBench";
};

bool running_under_wine() {
  const HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
  return ntdll != nullptr && GetProcAddress(ntdll, "wine_get_version") != nullptr;
}

// User + kernel time of this process.
std::chrono::microseconds process_cpu_time() {
  FILETIME created, exited, kernel, user;
  GetProcessTimes(GetCurrentProcess(), &created, &exited, &kernel, &user);
  const auto ticks = [](const FILETIME& t) {
    return (static_cast<unsigned long long>(t.dwHighDateTime) << 32) | t.dwLowDateTime;
  };
  return std::chrono::microseconds((ticks(kernel) + ticks(user)) / 10);  // 100 ns units
}

double ms(std::chrono::microseconds d) { return static_cast<double>(d.count()) / 1000.0; }
double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

void add_name_entry(X509_NAME* name, const char* field, const std::string& value) {
  X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                             0);
}

void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX context;
  X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str());
  if (extension != nullptr) {
    X509_add_ext(cert, extension, -1);
    X509_EXTENSION_free(extension);
  }
}

// A server certificate for subject_key, as a CA would issue it (random serial, SANs, EKU), in DER.
std::string issue(EVP_PKEY* subject_key, const std::string& host, X509* ca, EVP_PKEY* ca_key) {
  ossl::X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7F;
  BIGNUM* number = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(number, X509_get_serialNumber(cert.get()));
  BN_free(number);
  X509_NAME* name = X509_get_subject_name(cert.get());
  add_name_entry(name, "O", "wincert bench");
  add_name_entry(name, "CN", host);
  X509_set_issuer_name(cert.get(), ca != nullptr ? X509_get_subject_name(ca) : name);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600);
  X509_set_pubkey(cert.get(), subject_key);
  X509* issuer = ca != nullptr ? ca : cert.get();
  if (ca == nullptr) {
    add_extension(cert.get(), issuer, NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert.get(), issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_extension(cert.get(), issuer, NID_basic_constraints, "critical,CA:FALSE");
    add_extension(cert.get(), issuer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    add_extension(cert.get(), issuer, NID_ext_key_usage, "serverAuth,clientAuth");
    add_extension(cert.get(), issuer, NID_subject_alt_name, "DNS:" + host + ",DNS:www." + host);
  }
  X509_sign(cert.get(), ca_key != nullptr ? ca_key : subject_key, EVP_sha256());
  unsigned char* der = nullptr;
  const int length = i2d_X509(cert.get(), &der);
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length > 0 ? length : 0));
  OPENSSL_free(der);
  return out;
}

void delete_store(const std::string& store) {
  const std::wstring name = widen(store);
  // CERT_STORE_DELETE_FLAG deletes the system store (its registry key) and returns no handle.
  CertOpenStore(CERT_STORE_PROV_SYSTEM_W, 0, 0, CERT_SYSTEM_STORE_LOCAL_MACHINE | CERT_STORE_DELETE_FLAG, name.c_str());
  // Wine 8 empties the store but leaves its key behind; on Windows this finds nothing left.
  static_cast<void>(delete_registry_tree(HKEY_LOCAL_MACHINE, "SOFTWARE\\Microsoft\\SystemCertificates\\" + store));
}

Settings parse(int argc, char** argv) {
  Settings settings;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--count") settings.count = std::atoi(argv[i + 1]);
    if (flag == "--keyed") settings.keyed = std::atoi(argv[i + 1]);
    if (flag == "--runs") settings.runs = std::atoi(argv[i + 1]);
    if (flag == "--store") settings.store = argv[i + 1];
  }
  settings.keyed = std::clamp(settings.keyed, 0, settings.count);
  return settings;
}

}  // namespace

int main(int argc, char** argv) {
  const Settings settings = parse(argc, argv);
  const bool wine = running_under_wine();
  // Wine's KSP keeps no persisted keys; its AES CSP does (see certstore/local/README.md).
  const std::string provider_name =
      wine ? "Microsoft Enhanced RSA and AES Cryptographic Provider" : std::string(kDefaultKeyStorageProvider);
  auto provider = find_provider(provider_name);
  if (!provider) {
    std::fprintf(stderr, "%s\n", provider.error().message.c_str());
    return 1;
  }
  delete_store(settings.store);  // a leftover of an interrupted run

  // --- certificates: one CA (P-256), leaves with their own P-256 keys; keyed leaves share one RSA key,
  // imported once per certificate (a container each), which is what inventory meets on a real host.
  const auto generate_start = Clock::now();
  ossl::PKeyPtr ca_key(EVP_EC_gen("P-256"));
  const std::string ca_der = issue(ca_key.get(), "wincert bench CA", nullptr, nullptr);
  const unsigned char* ca_bytes = reinterpret_cast<const unsigned char*>(ca_der.data());
  ossl::X509Ptr ca(d2i_X509(nullptr, &ca_bytes, static_cast<long>(ca_der.size())));
  ossl::PKeyPtr rsa_key(EVP_RSA_gen(2048));
  std::vector<std::string> ders;
  ders.reserve(static_cast<std::size_t>(settings.count));
  for (int i = 0; i < settings.count; ++i) {
    const std::string host = "host" + std::to_string(i) + ".bench.wincert.test";
    if (i < settings.keyed) {
      ders.push_back(issue(rsa_key.get(), host, ca.get(), ca_key.get()));
    } else {
      ossl::PKeyPtr leaf_key(EVP_EC_gen("P-256"));
      ders.push_back(issue(leaf_key.get(), host, ca.get(), ca_key.get()));
    }
  }
  const auto generate_time = Clock::now() - generate_start;

  // --- fill the store
  const auto fill_start = Clock::now();
  std::vector<KeyLink> keys;
  {
    auto store = open_machine_store(settings.store, StoreAccess::kOpenOrCreate);
    if (!store) {
      std::fprintf(stderr, "%s\n", store.error().message.c_str());
      return 1;
    }
    for (int i = 0; i < settings.count; ++i) {
      auto context = certificate_from_der(ders[static_cast<std::size_t>(i)]);
      if (!context) {
        std::fprintf(stderr, "%s\n", context.error().message.c_str());
        return 1;
      }
      if (i < settings.keyed) {
        auto key = MachineKey::import(*provider, rsa_key.get(), "wincert-bench-" + std::to_string(i));
        if (!key) {
          std::fprintf(stderr, "%s\n", key.error().message.c_str());
          return 1;
        }
        keys.push_back(key->link());
        if (auto linked = set_key_link(context->get(), key->link()); !linked) {
          std::fprintf(stderr, "%s\n", linked.error().message.c_str());
          return 1;
        }
      }
      if (auto added = add_to_store(store->get(), context->get(), CERT_STORE_ADD_NEW); !added) {
        std::fprintf(stderr, "%s\n", added.error().message.c_str());
        return 1;
      }
    }
    if (auto committed = commit_changes(store->get(), settings.store); !committed) {
      std::fprintf(stderr, "%s\n", committed.error().message.c_str());
      return 1;
    }
  }
  const auto fill_time = Clock::now() - fill_start;

  // --- inventory
  std::printf("platform: %s; store LocalMachine\\%s: %d certificates, %d linked to keys in '%s'\n",
              wine ? "Wine" : "Windows", settings.store.c_str(), settings.count, settings.keyed,
              provider->name.c_str());
  std::printf("generate %.0f ms (OpenSSL), fill %.0f ms (%.1f ms per certificate)\n\n", ms(generate_time),
              ms(fill_time), ms(fill_time) / settings.count);
  std::printf("| run | entries | with key | wall ms | CPU ms | wall µs / cert | CPU µs / cert |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|\n");
  int status = 0;
  std::vector<double> walls, cpus;
  for (int run = 1; run <= settings.runs; ++run) {
    const auto cpu_start = process_cpu_time();
    const auto wall_start = Clock::now();
    auto inventory = inventory_now(settings.store);
    const auto wall = Clock::now() - wall_start;
    const auto cpu = process_cpu_time() - cpu_start;
    if (!inventory) {
      std::fprintf(stderr, "%s\n", inventory.error().message.c_str());
      status = 1;
      break;
    }
    const auto with_key = std::count_if(inventory->entries.begin(), inventory->entries.end(),
                                        [](const InventoryEntry& e) { return e.has_private_key; });
    if (static_cast<int>(inventory->entries.size()) != settings.count || with_key != settings.keyed) status = 1;
    walls.push_back(ms(wall));
    cpus.push_back(ms(cpu));
    std::printf("| %d | %zu | %ld | %.0f | %.0f | %.0f | %.0f |\n", run, inventory->entries.size(),
                static_cast<long>(with_key), ms(wall), ms(cpu), ms(wall) * 1000.0 / settings.count,
                ms(cpu) * 1000.0 / settings.count);
  }
  if (!walls.empty()) {
    std::sort(walls.begin(), walls.end());
    std::sort(cpus.begin(), cpus.end());
    const double wall_median = walls[walls.size() / 2], cpu_median = cpus[cpus.size() / 2];
    std::printf("\nmedian: wall %.0f ms (%.0f µs per certificate), CPU %.0f ms (%.0f µs per certificate)\n",
                wall_median, wall_median * 1000.0 / settings.count, cpu_median, cpu_median * 1000.0 / settings.count);
  }
  if (status != 0) std::fprintf(stderr, "the inventory did not return every certificate (see the table)\n");

  // --- clean up
  for (const auto& key : keys) discard_machine_key(key);
  delete_store(settings.store);
  return status;
}
