// What a PFX may cost: iteration counts above the limits are refused before any key is derived (a
// 2.5 KB file with a MAC count of 2^28 once froze the agent for half a minute), and an allowed but slow
// file is opened on the worker pool while the I/O thread keeps its rhythm.
#include "certstore/openssl_util.hpp"
#include "certstore/pkcs12.hpp"
#include "certstore/remote/remote_backend.hpp"
#include "common/encoding.hpp"
#include "test_support.hpp"
#include "tests/support/result_matchers.hpp"

#include <gtest/gtest.h>
#include <openssl/pkcs12.h>
#include <openssl/pkcs7.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>

namespace wincert::certstore {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::int64_t kHostileCount = std::int64_t{1} << 28;

struct Made {
  ossl::Pkcs12Ptr p12;
  std::string thumbprint;
};

// A self-signed EC P-256 certificate and key in a PFX (AES-256-CBC PBES2, SHA-256 MAC) with the given counts.
Made make_p12(const std::string& password, int iterations, int mac_iterations) {
  ossl::PKeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  ossl::X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 77);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("cost.example.com"), -1,
                             -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key.get());
  X509_sign(cert.get(), key.get(), EVP_sha256());
  Made made;
  made.p12.reset(PKCS12_create_ex(password.c_str(), "cost", key.get(), cert.get(), nullptr, NID_undef, NID_undef,
                                  iterations, mac_iterations, 0, nullptr, nullptr));
  EXPECT_TRUE(made.p12) << ossl::drain_errors();
  unsigned char* der = nullptr;
  const int length = i2d_X509(cert.get(), &der);
  made.thumbprint =
      thumbprint_of(std::string_view(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length)));
  OPENSSL_free(der);
  return made;
}

std::string der_of(PKCS12* p12) {
  unsigned char* der = nullptr;
  const int length = i2d_PKCS12(p12, &der);
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length));
  OPENSSL_free(der);
  return out;
}

// An attacker writes any count without paying for it: the victim derives the key before it can know the
// MAC is wrong. Here the count is rewritten in a cheap file.
std::string with_mac_iterations(std::int64_t count) {
  auto made = make_p12("pw", 1, 2);  // 2: a count of 1 is left out of the file
  const ASN1_INTEGER* iterations = nullptr;
  PKCS12_get0_mac(nullptr, nullptr, nullptr, &iterations, made.p12.get());
  if (iterations == nullptr) {
    ADD_FAILURE() << "no MAC iteration count to rewrite";
    return {};
  }
  ASN1_INTEGER_set_int64(const_cast<ASN1_INTEGER*>(iterations), count);
  return der_of(made.p12.get());
}

X509_ALGOR* hostile_pbes2() {
  return PKCS5_pbe2_set_iv(EVP_aes_256_cbc(), static_cast<int>(kHostileCount), nullptr, 0, nullptr, NID_hmacWithSHA256);
}

struct AuthSafesFree {
  void operator()(STACK_OF(PKCS7) * p) const { sk_PKCS7_pop_free(p, PKCS7_free); }
};
struct BagsFree {
  void operator()(STACK_OF(PKCS12_SAFEBAG) * p) const { sk_PKCS12_SAFEBAG_pop_free(p, PKCS12_SAFEBAG_free); }
};

// The certificates' encrypted part (or the shrouded key) re-labelled with a 2^28-iteration PBKDF2; the MAC
// (one iteration) is recomputed so the file is otherwise valid.
std::string with_hostile_encryption(bool key_bag) {
  auto made = make_p12("pw", 1, 1);
  std::unique_ptr<STACK_OF(PKCS7), AuthSafesFree> safes(PKCS12_unpack_authsafes(made.p12.get()));
  EXPECT_TRUE(safes);
  bool changed = false;
  for (int i = 0; i < sk_PKCS7_num(safes.get()); ++i) {
    PKCS7* part = sk_PKCS7_value(safes.get(), i);
    const int nid = OBJ_obj2nid(part->type);
    if (!key_bag && nid == NID_pkcs7_encrypted) {
      X509_ALGOR_free(part->d.encrypted->enc_data->algorithm);
      part->d.encrypted->enc_data->algorithm = hostile_pbes2();
      changed = true;
    } else if (key_bag && nid == NID_pkcs7_data) {
      std::unique_ptr<STACK_OF(PKCS12_SAFEBAG), BagsFree> bags(PKCS12_unpack_p7data(part));
      for (int b = 0; bags && b < sk_PKCS12_SAFEBAG_num(bags.get()); ++b) {
        PKCS12_SAFEBAG* bag = sk_PKCS12_SAFEBAG_value(bags.get(), b);
        if (PKCS12_SAFEBAG_get_nid(bag) != NID_pkcs8ShroudedKeyBag) continue;
        X509_ALGOR* alg = nullptr;
        X509_SIG_getm(const_cast<X509_SIG*>(PKCS12_SAFEBAG_get0_pkcs8(bag)), &alg, nullptr);
        X509_ALGOR* hostile = hostile_pbes2();
        X509_ALGOR_copy(alg, hostile);
        X509_ALGOR_free(hostile);
        changed = true;
      }
      PKCS7* repacked = PKCS12_pack_p7data(bags.get());
      sk_PKCS7_set(safes.get(), i, repacked);
      PKCS7_free(part);
    }
  }
  EXPECT_TRUE(changed);
  EXPECT_EQ(PKCS12_pack_authsafes(made.p12.get(), safes.get()), 1);
  EXPECT_EQ(PKCS12_set_mac(made.p12.get(), "pw", -1, nullptr, 0, 1, EVP_sha256()), 1);
  return der_of(made.p12.get());
}

template <class F>
std::chrono::milliseconds time_of(F f) {
  const auto start = Clock::now();
  f();
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

TEST(PfxCost, AHostileMacIterationCountIsRefusedAtOnce) {
  const std::string der = with_mac_iterations(kHostileCount);
  Result<PfxContents> pfx = Error::internal("not run");
  const auto took = time_of([&] { pfx = open_pfx(der, Secret("pw"), "'hostile'"); });
  ASSERT_FALSE(pfx.ok());
  EXPECT_LT(took, 1000ms) << "the MAC key was derived before the count was checked";
  EXPECT_THAT(pfx, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_EQ(pfx.error().message,
            "the PFX for certificate 'hostile' could not be opened: its MAC iteration count 268435456 is above this "
            "agent's limit of 10000000 (a hostile or misconfigured file: re-export it with the usual settings)");
  EXPECT_EQ(pfx.error().message.find("pw"), std::string::npos);
  // The same through the job entry point, and with an empty password (two MAC attempts otherwise).
  const auto job = open_job_certificate(Secret(base64_encode(der)), Secret(""), "in this job");
  ASSERT_FALSE(job.ok());
  EXPECT_THAT(job, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(job.error().message.find("MAC iteration count 268435456"), std::string::npos) << job.error().message;
}

TEST(PfxCost, HostileEncryptionIterationCountsAreRefusedAtOnce) {
  for (const bool key_bag : {false, true}) {
    const std::string der = with_hostile_encryption(key_bag);
    Result<PfxContents> pfx = Error::internal("not run");
    const auto took = time_of([&] { pfx = open_pfx(der, Secret("pw"), "'enc'"); });
    ASSERT_FALSE(pfx.ok()) << key_bag;
    EXPECT_LT(took, 1000ms) << key_bag;
    EXPECT_THAT(pfx, HasCode(ErrorCode::kInvalidArgument)) << key_bag;
    const std::string what = key_bag ? "private key encryption" : "encrypted part";
    EXPECT_NE(pfx.error().message.find("its " + what + " iteration count 268435456 is above this agent's limit"),
              std::string::npos)
        << pfx.error().message;
  }
}

TEST(PfxCost, LimitsAreConfigurableAndAddUp) {
  auto made = make_p12("pw", 3000, 3000);
  const std::string der = der_of(made.p12.get());
  ASSERT_TRUE(open_pfx(der, Secret("pw"), "x").ok());
  PfxLimits one{2999, 1'000'000, 64};
  auto single = open_pfx(der, Secret("pw"), "x", one);
  ASSERT_FALSE(single.ok());
  EXPECT_THAT(single, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(single.error().message.find("MAC iteration count 3000 is above this agent's limit of 2999"),
            std::string::npos)
      << single.error().message;
  // MAC + certificates' part + shrouded key = 9000.
  PfxLimits total{3000, 8999, 64};
  auto summed = open_pfx(der, Secret("pw"), "x", total);
  ASSERT_FALSE(summed.ok());
  EXPECT_THAT(summed, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(summed.error().message.find("add up to more than 8999 iterations"), std::string::npos)
      << summed.error().message;
  EXPECT_TRUE(open_pfx(der, Secret("pw"), "x", PfxLimits{3000, 9000, 64}).ok());
  auto few_parts = open_pfx(der, Secret("pw"), "x", PfxLimits{3000, 9000, 1});
  ASSERT_FALSE(few_parts.ok());
  EXPECT_THAT(few_parts, HasCode(ErrorCode::kInvalidArgument));
  EXPECT_NE(few_parts.error().message.find("holds more than 1 parts"), std::string::npos);
}

// The agent's heartbeats and other jobs share the I/O thread with RemoteCertStore::add: a slow (allowed)
// PFX must not stall it. A ticker stands in for the heartbeat and records its largest gap.
TEST(PfxCost, ASlowPfxDoesNotStallTheIoThread) {
  constexpr int kSlowIterations = 2'000'000;  // allowed; about ten million hash rounds to open
  auto made = make_p12("slow pw", kSlowIterations, kSlowIterations);
  const std::string der = der_of(made.p12.get());

  testing::FakeRunner runner;  // no answer for cert-add: the call fails after the PFX was opened
  auto caller = std::make_shared<remote::ScriptCaller>(runner);
  remote::RemoteCertStore store{caller};
  AddCertificateRequest request;
  request.store = "My";
  request.contents_base64 = Secret(base64_encode(der));
  request.password = Secret("slow pw");
  request.label = "'slow'";

  net::io_context io;
  constexpr auto kTick = 50ms;
  bool done = false;
  std::chrono::milliseconds add_took{0};
  std::chrono::milliseconds worst_gap{0};
  int ticks = 0;
  std::optional<Result<AddCertificateResult>> added;
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        // Start once the ticker is ticking, so a stall falls between two of its ticks.
        net::steady_timer settle(io);
        settle.expires_after(4 * kTick);
        co_await settle.async_wait(net::use_awaitable);
        const auto start = Clock::now();
        added.emplace(co_await store.add(std::move(request)));
        add_took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
        done = true;
      },
      net::detached);
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        net::steady_timer timer(io);
        auto last = Clock::now();
        while (!done) {
          timer.expires_after(kTick);
          co_await timer.async_wait(net::use_awaitable);
          const auto now = Clock::now();
          worst_gap = std::max(worst_gap, std::chrono::duration_cast<std::chrono::milliseconds>(now - last));
          last = now;
          ++ticks;
        }
      },
      net::detached);
  io.run();

  ASSERT_TRUE(added.has_value());
  ASSERT_FALSE(added->ok());  // the fake host has no answer; the PFX itself opened
  EXPECT_THAT(*added, HasCode(ErrorCode::kInternal));
  EXPECT_NE(added->error().message.find("no answer for cert-add"), std::string::npos) << added->error().message;
  ASSERT_EQ(runner.calls.size(), 1u);
  EXPECT_EQ(runner.calls[0].args["Thumbprint"], made.thumbprint);
  // Generous on a loaded 2-core machine: the point is seconds versus a tick.
  const auto allowed_gap = kTick + 450ms;
  ASSERT_GT(add_took, 2 * allowed_gap) << "the PFX opened too fast to show anything; raise kSlowIterations";
  EXPECT_LT(worst_gap, allowed_gap) << "the I/O thread stalled while the PFX was opened (" << ticks << " ticks in "
                                    << add_took.count() << " ms)";
}

}  // namespace
}  // namespace wincert::certstore
