// Shared set-up for the Kerberos tests: one real MIT KDC per test process, a fresh ccache per test.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "tests/support/krb5_kdc.hpp"
#include "winrm/auth/gssapi_context.hpp"

namespace wincert::testing {

class KerberosTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!Krb5Kdc::binaries_available()) return;
    auto kdc = Krb5Kdc::start();
    if (!kdc) {
      start_error_ = new std::string(kdc.error().message);
      return;
    }
    kdc_ = std::move(kdc).value().release();
  }
  static void TearDownTestSuite() {
    delete kdc_;
    kdc_ = nullptr;
    delete start_error_;
    start_error_ = nullptr;
  }

  void SetUp() override {
    if (!Krb5Kdc::binaries_available()) GTEST_SKIP() << Krb5Kdc::missing_binaries();
    ASSERT_EQ(start_error_, nullptr) << "test KDC failed to start: " << *start_error_;
    ASSERT_NE(kdc_, nullptr);
    if (!kdc_->running()) {
      ASSERT_TRUE(kdc_->restart().ok());
    }
    kdc_->apply_environment();
    // A ccache of our own, so tests in one process never see each other's tickets.
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->test_suite_name()) + "." + info->name();
    for (char& c : name) {
      if (c == '/') c = '_';  // parameterised tests: "Suite/Test/0"
    }
    ccache_ = kdc_->dir() + "/cc-" + name;
    std::filesystem::remove(ccache_);
    ::setenv("KRB5CCNAME", ("FILE:" + ccache_).c_str(), 1);
  }

  Krb5Kdc& kdc() { return *kdc_; }
  const std::string& ccache() const { return ccache_; }

  winrm::gss::ClientOptions password_client(winrm::gss::Mechanism mech = winrm::gss::Mechanism::kSpnego) {
    winrm::gss::ClientOptions options;
    options.target.host = "localhost";
    options.mechanism = mech;
    options.user = kdc_->user_principal();
    options.password = Secret(kdc_->user_password());
    return options;
  }

  static inline Krb5Kdc* kdc_ = nullptr;
  static inline std::string* start_error_ = nullptr;
  std::string ccache_;
};

// Runs the token exchange until both sides are complete (or one fails). Returns the first error.
inline Status authenticate(winrm::gss::GssContext& client, winrm::gss::GssAcceptor& server) {
  auto token = client.step("");
  if (!token) return token.error();
  std::string to_server = *token;
  for (int leg = 0; leg < 6; ++leg) {
    if (!to_server.empty()) {
      auto reply = server.step(to_server);
      if (!reply) return reply.error();
      to_server.clear();
      if (!client.complete()) {
        auto next = client.step(*reply);
        if (!next) return next.error();
        to_server = *next;
      }
    }
    if (client.complete() && server.complete() && to_server.empty()) return {};
    if (to_server.empty() && !client.complete()) return Error::internal("client stalled without a token");
  }
  return Error::internal("authentication did not finish within 6 legs");
}

}  // namespace wincert::testing
