// A throwaway MIT Kerberos realm for tests: krb5.conf, kdc.conf, a database, principals, keytabs and a
// krb5kdc child process listening on a free loopback port (TCP and UDP). Everything lives in one temp
// directory that is removed with the object; the KDC is stopped in the destructor.
//
//   auto kdc = wincert::testing::Krb5Kdc::start();      // Result<std::unique_ptr<Krb5Kdc>>
//   if (!kdc) GTEST_SKIP() / FAIL() << kdc.error().message;
//   (*kdc)->apply_environment();                         // KRB5_CONFIG, KRB5_KTNAME, KRB5CCNAME, ...
//
// Principals created by default (realm TEST.LOCAL): the user (`user_principal()`, with a password), the
// agent identity (`agent_principal()`, key only in `client_keytab()`), HTTP/localhost and
// HTTP/localhost:5985 (both in `service_keytab()`).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace wincert::testing {

struct Krb5KdcOptions {
  std::string realm = "TEST.LOCAL";
  std::string user = "alice";
  std::string user_password = "Alice-Passw0rd!";
  std::string agent = "agent";  // the client identity whose key goes into the client keytab
  std::vector<std::string> service_principals = {"HTTP/localhost", "HTTP/localhost:5985"};
  // Seconds of clock difference the KDC and acceptors tolerate (krb5.conf clockskew).
  int clock_skew_seconds = 300;
  // How long start() waits for krb5kdc to accept connections.
  std::chrono::milliseconds start_timeout{20000};
};

class Krb5Kdc {
 public:
  // True when krb5kdc, kdb5_util and kadmin.local are installed (tests skip otherwise).
  static bool binaries_available();
  // Why binaries_available() is false, for GTEST_SKIP.
  static std::string missing_binaries();

  // Creates the realm and starts the KDC. Retries on another port if the chosen one was taken.
  static Result<std::unique_ptr<Krb5Kdc>> start(Krb5KdcOptions options = {});

  Krb5Kdc(const Krb5Kdc&) = delete;
  Krb5Kdc& operator=(const Krb5Kdc&) = delete;
  ~Krb5Kdc();

  // Stops the KDC process (idempotent). The files stay until destruction; restart() starts it again.
  void stop();
  Status restart();
  bool running() const { return pid_ > 0; }

  // Sets KRB5_CONFIG, KRB5_KTNAME (service keytab), KRB5_CLIENT_KTNAME (client keytab), KRB5CCNAME
  // (FILE: ccache in the temp dir, not created until someone stores a ticket), KRB5RCACHEDIR and
  // KRB5_TRACE when requested; clears KRB5_KDC_PROFILE leftovers. Call before any GSSAPI call.
  void apply_environment() const;

  // Runs one kadmin.local query ("addprinc -pw X bob", "ktadd -k FILE -norandkey HTTP/h", ...).
  Status kadmin(const std::string& query) const;
  Status add_user(const std::string& name, const std::string& password) const;
  Status add_service(const std::string& principal, const std::string& keytab_path) const;

  // Writes a krb5.conf for this realm pointing at `kdc_port` (e.g. a closed port) and returns its path.
  std::string write_client_config(const std::string& file_name, unsigned short kdc_port) const;

  const std::string& realm() const { return options_.realm; }
  const std::string& dir() const { return dir_; }
  unsigned short port() const { return port_; }
  std::string krb5_conf() const { return dir_ + "/krb5.conf"; }
  std::string kdc_conf() const { return dir_ + "/kdc.conf"; }
  std::string service_keytab() const { return dir_ + "/http.keytab"; }
  std::string client_keytab() const { return dir_ + "/client.keytab"; }
  std::string ccache_path() const { return dir_ + "/ccache"; }  // KRB5CCNAME=FILE:<this>
  std::string kdc_log() const { return dir_ + "/kdc.log"; }
  std::string user_principal() const { return options_.user + "@" + options_.realm; }
  const std::string& user_password() const { return options_.user_password; }
  std::string agent_principal() const { return options_.agent + "@" + options_.realm; }

 private:
  explicit Krb5Kdc(Krb5KdcOptions options);
  Status create_realm();
  Status write_configs(unsigned short port);
  Status start_process();
  // Runs a tool with the realm environment, output appended to dir/tools.log; fails after a deadline.
  Status run_tool(const std::vector<std::string>& argv) const;

  Krb5KdcOptions options_;
  std::string dir_;
  unsigned short port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace wincert::testing
