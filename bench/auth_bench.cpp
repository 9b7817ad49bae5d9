// NTLM session security throughput: seal + unseal of one message (client wrap, server unwrap), and the
// same through the multipart/encrypted framing, for 1 KiB, 64 KiB and 1 MiB messages.
#include <benchmark/benchmark.h>

#include <optional>
#include <string>

#include "winrm/auth/ntlm.hpp"
#include "winrm/auth/ntlm_messages.hpp"
#include "winrm/auth/ntlm_session.hpp"
#include "winrm/encryption.hpp"

namespace {

using namespace wincert::winrm;

struct SessionPair {
  std::optional<ntlm::Session> client;
  std::optional<ntlm::Session> server;
  SessionPair() {
    ntlm::Digest16 key{};
    key.fill(0x5C);
    auto c = ntlm::Session::create(key, ntlm::kWinrmClientFlags, ntlm::Role::kInitiator);
    auto s = ntlm::Session::create(key, ntlm::kWinrmClientFlags, ntlm::Role::kAcceptor);
    if (c.ok() && s.ok()) {
      client.emplace(std::move(*c));
      server.emplace(std::move(*s));
    }
  }
};

std::string message_of(std::size_t size) {
  std::string m(size, '\0');
  for (std::size_t i = 0; i < size; ++i) m[i] = static_cast<char>('a' + i % 26);
  return m;
}

void BM_NtlmSealUnseal(benchmark::State& state) {
  SessionPair pair;
  if (!pair.client) {
    state.SkipWithError("NTLM crypto unavailable");
    return;
  }
  const std::string message = message_of(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    auto wrapped = pair.client->wrap(ntlm_crypto::view(message));
    auto plain = pair.server->unwrap(wrapped->signature, wrapped->sealed);
    if (!plain.ok()) {
      state.SkipWithError(plain.error().message.c_str());
      return;
    }
    benchmark::DoNotOptimize(plain->data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_NtlmSealUnseal)->Arg(1 << 10)->Arg(64 << 10)->Arg(1 << 20);

void BM_NtlmEncryptedBodyRoundTrip(benchmark::State& state) {
  SessionPair pair;
  if (!pair.client) {
    state.SkipWithError("NTLM crypto unavailable");
    return;
  }
  ntlm::NtlmSealer client(std::move(*pair.client));
  ntlm::NtlmSealer server(std::move(*pair.server));
  const std::string message = message_of(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    auto body = build_encrypted_body(message, client);
    auto plain = parse_encrypted_body(body->body, body->content_type, server);
    if (!plain.ok()) {
      state.SkipWithError(plain.error().message.c_str());
      return;
    }
    benchmark::DoNotOptimize(plain->data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_NtlmEncryptedBodyRoundTrip)->Arg(1 << 10)->Arg(64 << 10)->Arg(1 << 20);

// Client-side cost of one NTLM handshake (NEGOTIATE + AUTHENTICATE against a CHALLENGE).
void BM_NtlmClientHandshake(benchmark::State& state) {
  // A CHALLENGE with a timestamp (so the MIC path runs), built once.
  ntlm::TargetInfo info;
  info.set(ntlm::AvId::kNbDomainName, {'D', 0});
  info.set(ntlm::AvId::kTimestamp, {0, 0, 0, 0, 0x88, 0x1e, 0xd6, 0x01});
  const wincert::Bytes encoded = info.encode();
  wincert::Bytes challenge = {'N',  'T',  'L',  'M',  'S', 'S', 'P', 0, 2, 0, 0, 0, 0, 0, 0, 0, 56, 0, 0, 0,
                              0x35, 0x82, 0x8a, 0xe2, 1,   2,   3,   4, 5, 6, 7, 8, 0, 0, 0, 0, 0,  0, 0, 0};
  for (auto b : {static_cast<std::uint8_t>(encoded.size()), std::uint8_t{0}, static_cast<std::uint8_t>(encoded.size()),
                 std::uint8_t{0}, std::uint8_t{56}, std::uint8_t{0}, std::uint8_t{0}, std::uint8_t{0}})
    challenge.push_back(b);
  challenge.insert(challenge.end(), {10, 0, 0x39, 0x38, 0, 0, 0, 15});
  challenge.insert(challenge.end(), encoded.begin(), encoded.end());
  for (auto _ : state) {
    ntlm::ClientOptions options;
    options.target_spn = "HTTP/host.example";
    ntlm::Client client(ntlm::Credentials{"user", "DOMAIN", wincert::Secret("password")}, options);
    auto negotiate = client.negotiate();
    auto authenticate = client.authenticate(challenge);
    if (!authenticate.ok()) {
      state.SkipWithError(authenticate.error().message.c_str());
      return;
    }
    benchmark::DoNotOptimize(authenticate->data());
  }
}
BENCHMARK(BM_NtlmClientHandshake);

}  // namespace

BENCHMARK_MAIN();
