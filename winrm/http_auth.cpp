#include "winrm/http_auth.hpp"

#include "common/encoding.hpp"

namespace wincert::winrm {

BasicAuth::BasicAuth(std::string user, Secret password, bool allow_unencrypted)
    : user_(std::move(user)), allow_unencrypted_(allow_unencrypted) {
  std::string credentials = user_ + ":" + password.reveal();
  header_value_ = Secret("Basic " + base64_encode(credentials));
  OPENSSL_cleanse(credentials.data(), credentials.size());
}

Status BasicAuth::check_transport(const ConnectionInfo& connection) const {
  if (!connection.tls && !allow_unencrypted_) {
    return Error::failed_precondition(
        "Basic over HTTP sends the password in clear; use https or --allow-unencrypted (the host must have "
        "AllowUnencrypted=true)");
  }
  if (user_.empty()) return Error::invalid_argument("Basic authentication needs a user name (--user)");
  return {};
}

Status BasicAuth::reset(const ConnectionInfo& connection) { return check_transport(connection); }

Result<std::optional<std::string>> BasicAuth::authorization() {
  return std::optional<std::string>(header_value_.reveal());
}

Result<ChallengeOutcome> BasicAuth::on_challenge(const std::vector<std::string>& www_authenticate) {
  (void)www_authenticate;
  // Basic has no second leg: a 401 after sending credentials means they were refused.
  return ChallengeOutcome::kFailed;
}

}  // namespace wincert::winrm
