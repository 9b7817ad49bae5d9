// Helpers for the winhost model tests: real certificates, keys and PFX files made with OpenSSL, the golden
// contract files of certstore/scripts, and a fresh default host.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "sim/winhost/model/certificate_host.hpp"
#include "sim/winhost/windows_model.hpp"

namespace wincert::sim::model::testing {

// An OpenSSL key pair or certificate kept as PEM / DER strings (no raw pointers in tests).
struct TestKey {
  std::string pem;  // PKCS#8 private key
};
TestKey make_rsa_key(int bits = 2048);
TestKey make_ec_key(const char* curve = "P-256");

struct TestCert {
  std::string der;
  TestKey key;
  std::string thumbprint;  // uppercase SHA-1
};
// A certificate for `subject_cn` signed by `issuer` (self-signed when issuer is null).
TestCert make_cert(const std::string& subject_cn, const TestKey& key, const TestCert* issuer, bool ca,
                   const std::vector<std::string>& dns_sans = {});
// A PFX (AES-256, SHA-256 MAC) of leaf + key + chain.
std::string make_pfx(const TestCert& leaf, const std::vector<TestCert>& chain, const std::string& password,
                     const std::string& friendly_name = "");

// Signs the CSR's public key and subject into a certificate (a CA doing its job), DER.
std::string issue_from_csr(const std::string& csr_der, const TestCert& issuer);

std::string b64(const std::string& bytes);
nlohmann::json contract(const std::string& op);  // certstore/scripts/<op>.contract.json
// Every object key of `expected` is in `actual` and vice versa, recursively (arrays: each element of
// actual against the first element of expected). Values are not compared.
void expect_same_shape(const nlohmann::json& actual, const nlohmann::json& expected, const std::string& path = "$");

// A chain: root CA -> issuing CA -> leaf (RSA or EC leaf), and a PFX of it.
struct Chain {
  TestCert root, issuing, leaf;
  std::string pfx;
  std::string password = "Pa$$w0rd @ \"quoted\"";
};
Chain make_chain(const std::string& cn, bool ec_leaf = false, const std::string& friendly = "");

class ModelTest : public ::testing::Test {
 protected:
  void SetUp() override;
  OperationOutcome run(const std::string& op, const nlohmann::json& args) { return model_->run_operation(op, args); }
  // Runs and expects success; returns the output document.
  nlohmann::json ok(const std::string& op, const nlohmann::json& args);
  // Runs and expects failure with this category; returns the message.
  std::string fails(const std::string& op, const nlohmann::json& args, const std::string& category);
  nlohmann::json& data() { return model_->data(); }
  nlohmann::json& store(const std::string& name) { return data()["stores"][name]; }
  // Imports a chain's PFX into a store via cert-add (no bindings).
  nlohmann::json add(const Chain& chain, const std::string& store_name, bool overwrite = false,
                     const std::string& provider = "");

  std::unique_ptr<WindowsModel> model_;
};

}  // namespace wincert::sim::model::testing
