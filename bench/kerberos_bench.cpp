// Kerberos (MIT GSSAPI, AES256-CTS-HMAC-SHA1-96) WinRM message sealing throughput: client wrap + server
// unwrap of one message, for 1 KiB, 64 KiB and 1 MiB, over a context established against a real
// temporary KDC (tests/support/krb5_kdc). Also the cost of one full authentication (TGS + AP exchange
// with a cached TGT), which every new WinRM connection pays.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "tests/support/krb5_kdc.hpp"
#include "winrm/auth/gssapi_context.hpp"

namespace {

using wincert::Secret;
using wincert::testing::Krb5Kdc;
using namespace wincert::winrm::gss;

// One realm for the whole benchmark run.
Krb5Kdc* realm(benchmark::State& state) {
  static std::unique_ptr<Krb5Kdc> kdc;
  static std::string failure;
  if (!kdc && failure.empty()) {
    auto started = Krb5Kdc::start();
    if (started) {
      kdc = std::move(started).value();
      kdc->apply_environment();
      const std::string ccache = "FILE:" + kdc->ccache_path();
      auto stored = store_ticket_in_ccache(kdc->user_principal(), Secret(kdc->user_password()), ccache);
      if (!stored.ok()) failure = stored.error().message;
    } else {
      failure = started.error().message;
    }
  }
  if (!failure.empty()) state.SkipWithError(failure.c_str());
  return kdc.get();
}

struct Established {
  std::unique_ptr<GssContext> client;
  std::unique_ptr<GssAcceptor> server;
};

// Authenticates with the cached TGT (the default identity); returns false on any failure.
bool establish(Mechanism mechanism, Established& out) {
  ClientOptions options;
  options.target.host = "localhost";
  options.mechanism = mechanism;
  auto client = GssContext::create(options);
  auto server = GssAcceptor::create({});
  if (!client || !server) return false;
  out.client = std::move(client).value();
  out.server = std::move(server).value();
  auto token = out.client->step("");
  for (int leg = 0; token && !token->empty() && leg < 4; ++leg) {
    auto reply = out.server->step(*token);
    if (!reply) return false;
    if (out.client->complete()) break;
    token = out.client->step(*reply);
  }
  return token.ok() && out.client->complete() && out.server->complete();
}

std::string message_of(std::size_t size) {
  std::string m(size, '\0');
  for (std::size_t i = 0; i < size; ++i) m[i] = static_cast<char>('a' + i % 26);
  return m;
}

void BM_KerberosSealUnseal(benchmark::State& state) {
  if (realm(state) == nullptr) return;
  Established pair;
  if (!establish(Mechanism::kSpnego, pair)) {
    state.SkipWithError("Kerberos context could not be established");
    return;
  }
  const std::string plain = message_of(static_cast<std::size_t>(state.range(0)));
  std::size_t header_bytes = 0;
  for (auto _ : state) {
    auto sealed = pair.client->wrap(plain);
    if (!sealed) {
      state.SkipWithError("wrap failed");
      return;
    }
    header_bytes = sealed->header.size();
    auto opened = pair.server->unwrap(sealed->header, sealed->payload);
    if (!opened || opened->size() != plain.size()) {
      state.SkipWithError("unwrap failed");
      return;
    }
    benchmark::DoNotOptimize(opened->data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
  state.counters["header_bytes"] = static_cast<double>(header_bytes);
}
BENCHMARK(BM_KerberosSealUnseal)->Arg(1 << 10)->Arg(64 << 10)->Arg(1 << 20)->Unit(benchmark::kMicrosecond);

void BM_KerberosSealOnly(benchmark::State& state) {
  if (realm(state) == nullptr) return;
  Established pair;
  if (!establish(Mechanism::kKerberos, pair)) {
    state.SkipWithError("Kerberos context could not be established");
    return;
  }
  const std::string plain = message_of(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    auto sealed = pair.client->wrap(plain);
    if (!sealed) {
      state.SkipWithError("wrap failed");
      return;
    }
    benchmark::DoNotOptimize(sealed->payload.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_KerberosSealOnly)->Arg(1 << 10)->Arg(64 << 10)->Arg(1 << 20)->Unit(benchmark::kMicrosecond);

// One new connection's authentication: credential lookup, TGS-REQ to the KDC (loopback TCP), AP-REQ,
// AP-REP verification, both sides.
void BM_KerberosHandshake(benchmark::State& state) {
  if (realm(state) == nullptr) return;
  const auto mechanism = state.range(0) == 0 ? Mechanism::kKerberos : Mechanism::kSpnego;
  for (auto _ : state) {
    Established pair;
    if (!establish(mechanism, pair)) {
      state.SkipWithError("Kerberos context could not be established");
      return;
    }
  }
  state.SetLabel(mechanism == Mechanism::kKerberos ? "kerberos" : "spnego");
}
BENCHMARK(BM_KerberosHandshake)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
